"""The durable handoff between the webhook and the workers: a Redis stream with a consumer group.

The webhook appends the raw body (one XADD) and, only when no drain job is already waiting,
enqueues one; so under load one RQ job drains many bodies instead of one forked job per POST.
A worker reads entries through the consumer group, commits their effects, then acknowledges and
deletes them: an entry whose worker died stays pending and is claimed again by the next drain,
and the store's idempotent writes make that second pass change nothing it already did.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import ResponseError
from rq import Queue, Retry

log = logging.getLogger(__name__)

INBOX = "wapulse:inbox"
GROUP = "ingest"
DRAIN_REQUESTED = "wapulse:ingest:drain-requested"
DRAIN_REQUEST_TTL_S = 30  # a lost enqueue blocks new drain jobs for at most this long
STATS = "wapulse:stats"
INGEST_QUEUE = "wapulse-ingest"
DRAIN_JOB = "workers.ingest.drain_inbox"
VALID, INVALID = b"1", b"0"


def hand_off(redis: Redis, body: bytes, *, valid_json: bool = True) -> str:
    """Append a body to the inbox and make sure a drain job will pick it up; returns its entry id.

    Raises a `redis.exceptions.RedisError` when Redis cannot take it: the caller must then refuse
    the body (503), so that Meta delivers it again.
    """
    pipeline = redis.pipeline(transaction=True)
    pipeline.xadd(INBOX, {"b": body, "v": VALID if valid_json else INVALID})
    pipeline.set(DRAIN_REQUESTED, 1, nx=True, ex=DRAIN_REQUEST_TTL_S)
    entry_id, drain_requested_now = pipeline.execute()
    if drain_requested_now:
        enqueue_drain(redis)
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def enqueue_drain(redis: Redis) -> None:
    """Enqueue one drain job; if that fails the request flag is dropped so the next body retries."""
    try:
        Queue(INGEST_QUEUE, connection=redis).enqueue(
            DRAIN_JOB,
            job_timeout=600,
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
            retry=Retry(max=5, interval=[1, 5, 15, 60, 300]),
            description="drain the webhook inbox",
        )
    except Exception:
        redis.delete(DRAIN_REQUESTED)
        raise


def request_drain_if_backlog(redis: Redis) -> bool:
    """Enqueue a drain when bodies wait with no job to take them (after a crash or a restart)."""
    ensure_group(redis)
    if backlog(redis) == 0:
        return False
    if redis.set(DRAIN_REQUESTED, 1, nx=True, ex=DRAIN_REQUEST_TTL_S):
        enqueue_drain(redis)
    return True


def ensure_group(redis: Redis) -> None:
    """Create the consumer group from the start of the stream (so no earlier entry is skipped)."""
    try:
        redis.xgroup_create(INBOX, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def backlog(redis: Redis) -> int:
    """Entries in the inbox, read or not: zero once everything handed off is committed."""
    return int(redis.xlen(INBOX))
