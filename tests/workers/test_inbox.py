"""The hand-off from webhook to workers (workers/inbox.py), against the real Redis."""

from __future__ import annotations

import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from workers import inbox

BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def test_each_body_lands_once_with_its_validity_and_one_drain_job_is_enqueued(redis):
    hand_off = inbox.HandOff(redis)
    ids = [hand_off(BODY), hand_off(b"{not json", valid_json=False), hand_off(BODY)]
    entries = redis.xrange(inbox.INBOX)
    assert [entry_id.decode() for entry_id, _ in entries] == ids
    assert [fields[b"v"] for _, fields in entries] == [inbox.VALID, inbox.INVALID, inbox.VALID]
    assert Queue(inbox.INGEST_QUEUE, connection=redis).count == 1
    assert 0 < redis.ttl(inbox.DRAIN_REQUESTED) <= inbox.DRAIN_REQUEST_TTL_S


def test_the_same_hand_off_recovers_from_killed_connections_and_flushed_scripts(redis):
    hand_off = inbox.HandOff(redis)
    hand_off(BODY)
    redis.script_flush()
    redis.client_kill_filter(_type="normal", skipme=True)
    hand_off(BODY)
    assert redis.xlen(inbox.INBOX) == 2


def test_an_unreachable_redis_raises_so_the_caller_refuses_the_body():
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with pytest.raises(RedisError):
        inbox.HandOff(unreachable)(BODY)
