"""The durable handoff between the webhook and the workers: a Redis stream with a consumer group.

The webhook appends the raw body (one XADD) and, only when no drain job is already waiting,
enqueues one; so under load one RQ job drains many bodies instead of one forked job per POST.
A worker reads entries through the consumer group, commits their effects, then acknowledges and
deletes them: an entry whose worker died stays pending and is claimed again by the next drain,
and the store's idempotent writes make that second pass change nothing it already did.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from redis import Redis
from redis.connection import Connection
from redis.exceptions import ConnectionError, NoScriptError, ResponseError
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


# XADD and the drain request in one atomic step and one reply: a MULTI/EXEC pipeline costs four
# replies and about three times the client CPU, which is most of what acknowledging a POST costs.
_HAND_OFF_SCRIPT = """
local entry_id = redis.call('XADD', KEYS[1], '*', 'b', ARGV[1], 'v', ARGV[2])
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return {entry_id, 1} end
return {entry_id, 0}
"""
_HAND_OFF_SHA = hashlib.sha1(_HAND_OFF_SCRIPT.encode()).hexdigest()


class HandOff:
    """Appends bodies to the inbox and makes sure a drain job will pick them up.

    Each calling thread keeps its own connection (made from the client's pool settings, so the
    URL, password, database and TLS are redis-py's) and sends one pre-packed EVALSHA on it: the
    webhook's threads skip the pool and the command machinery, whose CPU per call is larger than
    the round trip itself.
    """

    def __init__(self, redis: Redis):
        self._redis = redis
        self._local = threading.local()

    def __call__(self, body: bytes, *, valid_json: bool = True) -> str:
        """Returns the entry id. Raises a `redis.exceptions.RedisError` when Redis cannot take the
        body: the caller must then refuse it (503), so that Meta delivers it again."""
        arguments = (body, VALID if valid_json else INVALID, DRAIN_REQUEST_TTL_S)
        try:
            entry_id, drain_requested_now = self._evalsha(arguments)
        except ConnectionError:  # a connection Redis closed while idle: one fresh attempt
            entry_id, drain_requested_now = self._evalsha(arguments)
        if drain_requested_now:
            enqueue_drain(self._redis)
        return entry_id if isinstance(entry_id, str) else entry_id.decode()

    def _evalsha(self, arguments: tuple) -> list:
        connection = self._connection()
        command = connection.pack_command("EVALSHA", _HAND_OFF_SHA, 2, INBOX, DRAIN_REQUESTED, *arguments)
        try:
            try:
                return _round_trip(connection, command)
            except NoScriptError:  # Redis restarted or flushed its scripts
                self._redis.script_load(_HAND_OFF_SCRIPT)
                return _round_trip(connection, command)
        except BaseException:
            connection.disconnect()  # a reply may still be in flight: never reuse the socket
            raise

    def _connection(self) -> Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pool = self._redis.connection_pool
            connection = self._local.connection = pool.connection_class(**pool.connection_kwargs)
        return connection


def _round_trip(connection: Connection, command: list) -> list:
    connection.send_packed_command(command, check_health=False)
    return connection.read_response()


def hand_off(redis: Redis, body: bytes, *, valid_json: bool = True) -> str:
    """Hand off one body over a connection of its own; loops and servers keep a `HandOff`."""
    return HandOff(redis)(body, valid_json=valid_json)


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
