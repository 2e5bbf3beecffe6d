"""The hand-off from webhook to workers (workers/inbox.py), against the real Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from tests.conftest import REDIS_URL
from tests.peers import peer
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


# ---- the web server's hand-off, on the event loop --------------------------------------------------


def run_hand_offs(hand_off: inbox.AsyncHandOff, bodies: list[tuple[bytes, bool]]) -> list:
    async def all_at_once():
        return await asyncio.gather(*(hand_off(body, valid_json=valid) for body, valid in bodies), return_exceptions=True)

    return asyncio.run(all_at_once())


def test_concurrent_bodies_share_one_connection_and_each_lands_once_with_its_own_entry(redis):
    bodies = [(BODY.replace(b"[]", f'[{n}]'.encode()), n % 7 != 0) for n in range(500)]
    ids = run_hand_offs(inbox.AsyncHandOff(REDIS_URL, enqueue_with=redis), bodies)
    entries = {entry_id.decode(): (fields[b"b"], fields[b"v"] == inbox.VALID) for entry_id, fields in redis.xrange(inbox.INBOX)}
    assert [entries[entry_id] for entry_id in ids] == bodies  # each caller got the reply to its own body
    assert Queue(inbox.INGEST_QUEUE, connection=redis).count == 1
    assert len([client for client in redis.client_list() if client["cmd"] in ("evalsha", "eval")]) <= 1


def test_the_loops_hand_off_recovers_from_killed_connections_and_flushed_scripts(redis):
    hand_off = inbox.AsyncHandOff(REDIS_URL, enqueue_with=redis)

    async def twice():
        await hand_off(BODY)
        redis.script_flush()
        redis.client_kill_filter(_type="normal", skipme=True)
        await hand_off(BODY)

    asyncio.run(twice())
    assert redis.xlen(inbox.INBOX) == 2


def test_a_redis_that_does_not_answer_or_is_not_there_raises_in_time_so_the_caller_refuses_the_body(redis):
    def swallow(connection, peer):
        while connection.recv(65536):
            pass

    with peer(swallow) as silent:
        for url in (f"redis://127.0.0.1:{silent.port}/0", "redis://127.0.0.1:1/0"):
            (failure,) = run_hand_offs(inbox.AsyncHandOff(url, enqueue_with=redis, timeout_s=0.5), [(BODY, True)])
            assert isinstance(failure, RedisError)


def test_a_batch_waits_for_earlier_entries_but_not_twice_for_one_a_stopped_worker_left(redis, monkeypatch):
    inbox.ensure_group(redis)
    first, later = inbox.hand_off(redis, b"{}"), inbox.hand_off(redis, b"{}")
    assert inbox.wait_for_turn(redis, first, timeout_s=0)  # nothing before it
    assert not inbox.wait_for_turn(redis, later, timeout_s=0.05)  # the first is not committed
    naps = []
    monkeypatch.setattr(inbox.time, "sleep", naps.append)
    assert not inbox.wait_for_turn(redis, later) and naps == []  # waited out once: not again
    redis.xdel(inbox.INBOX, first)  # committed
    assert inbox.wait_for_turn(redis, later)
