"""The durable handoff between the webhook and the workers: a Redis stream with a consumer group.

The webhook appends the raw body (one XADD) and, only when no drain job is already waiting,
enqueues one; so under load one RQ job drains many bodies instead of one forked job per POST.
A worker reads entries through the consumer group, commits their effects, then acknowledges and
deletes them: an entry whose worker died stays pending and is claimed again by the next drain,
and the store's idempotent writes make that second pass change nothing it already did.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import threading
import time
from collections import deque

import hiredis
from redis import Redis
from redis.connection import Connection, SSLConnection, parse_url
from redis.exceptions import ConnectionError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Retry

log = logging.getLogger(__name__)

INBOX = "wapulse:inbox"
GROUP = "ingest"
DRAIN_REQUESTED = "wapulse:ingest:drain-requested"
DRAIN_REQUEST_TTL_S = 30  # a lost enqueue blocks new drain jobs for at most this long
STATS = "wapulse:stats"
INGEST_QUEUE = "wapulse-ingest"
DRAIN_JOB = "workers.jobs.drain_inbox"
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


class AsyncHandOff:
    """The same handoff for the web server's event loop, over one connection per process.

    Every POST's EVALSHA is written to that connection as it comes, without waiting for the
    replies before it, and Redis answers a connection's commands in order: each reply goes to
    the oldest waiting POST. Concurrent POSTs thus share round trips and system calls, and
    neither a connection pool nor a client's command machinery costs them CPU (with redis-py's
    asyncio client the ack path answered half as many POSTs a second: bench/webhook.py).
    """

    def __init__(self, url: str, enqueue_with: Redis, timeout_s: float = 5.0):
        self._target = parse_url(url)
        self._enqueue_with = enqueue_with  # RQ enqueues synchronously: rare, so in a thread
        self._timeout_s = timeout_s
        self._connection: _Pipeline | None = None
        self._connecting = asyncio.Lock()

    async def __call__(self, body: bytes, *, valid_json: bool = True) -> str:
        """Returns the entry id; raises a `redis.exceptions.RedisError` when Redis cannot take
        the body in time (the caller answers 503)."""
        arguments = (INBOX, DRAIN_REQUESTED, body, VALID if valid_json else INVALID, DRAIN_REQUEST_TTL_S)
        try:
            entry_id, drain_requested_now = await self._ask(b"EVALSHA", _HAND_OFF_SHA, 2, *arguments)
        except NoScriptError:  # Redis restarted or flushed its scripts: EVAL runs and caches it
            entry_id, drain_requested_now = await self._ask(b"EVAL", _HAND_OFF_SCRIPT, 2, *arguments)
        if drain_requested_now:
            await asyncio.to_thread(enqueue_drain, self._enqueue_with)
        return entry_id.decode()

    async def _ask(self, *command):
        try:
            return await self._ask_once(command)
        except ConnectionError:  # a connection Redis closed while idle: one fresh attempt
            return await self._ask_once(command)

    async def _ask_once(self, command: tuple):
        connection = await self._connect()
        try:
            return await asyncio.wait_for(connection.ask(command), self._timeout_s)
        except TimeoutError:
            connection.close()  # replies may still come for what was sent: start afresh
            raise RedisTimeoutError(f"no reply from Redis within {self._timeout_s:g} s") from None

    async def _connect(self) -> _Pipeline:
        if self._connection is not None and self._connection.open:
            return self._connection
        async with self._connecting:
            if self._connection is None or not self._connection.open:
                try:
                    self._connection = await asyncio.wait_for(_Pipeline.open_to(self._target), self._timeout_s)
                except TimeoutError:
                    raise RedisTimeoutError(f"no connection to Redis within {self._timeout_s:g} s") from None
        return self._connection


class _Pipeline(asyncio.Protocol):
    """One Redis connection on the event loop: commands written as they come, replies handed to
    their callers in order (hiredis parses them)."""

    def __init__(self):
        self._reader = hiredis.Reader()
        self._waiting: deque[asyncio.Future] = deque()
        self._transport: asyncio.Transport | None = None

    @classmethod
    async def open_to(cls, target: dict) -> _Pipeline:
        """Connect as the URL says (TCP, TLS or a Unix socket), log in and select the database."""
        loop = asyncio.get_running_loop()
        try:
            if "path" in target:
                _, pipeline = await loop.create_unix_connection(cls, target["path"])
            else:
                tls = ssl.create_default_context() if target.get("connection_class") is SSLConnection else None
                _, pipeline = await loop.create_connection(cls, target.get("host", "localhost"),
                                                           target.get("port", 6379), ssl=tls)
        except OSError as error:
            raise ConnectionError(f"cannot connect to Redis: {error.strerror or error}") from None
        try:
            if target.get("password"):
                await pipeline.ask((b"AUTH", *filter(None, (target.get("username"), target["password"]))))
            if target.get("db"):
                await pipeline.ask((b"SELECT", target["db"]))
        except BaseException:
            pipeline.close()
            raise
        return pipeline

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def ask(self, command: tuple) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if not self.open:
            future.set_exception(ConnectionError("the connection to Redis is closed"))
            return future
        self._waiting.append(future)
        self._transport.write(_resp(command))
        return future

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            future = self._waiting.popleft()
            if future.done():  # its caller gave up waiting
                continue
            if isinstance(reply, hiredis.ReplyError):
                error = str(reply)
                future.set_exception(NoScriptError(error) if error.startswith("NOSCRIPT") else ResponseError(error))
            else:
                future.set_result(reply)

    def connection_lost(self, error: Exception | None) -> None:
        self._transport = None
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("Redis closed the connection"))


def _resp(command: tuple) -> bytes:
    """A command in Redis's wire format (RESP): an array of bulk strings."""
    parts = [value if isinstance(value, bytes) else str(value).encode() for value in command]
    return b"".join([b"*%d\r\n" % len(parts), *(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)])


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


def position(entry_id: bytes | str) -> int:
    """An inbox entry id ("ms-seq") as one number that sorts the same way."""
    ms, _, seq = (entry_id.decode() if isinstance(entry_id, bytes) else entry_id).partition("-")
    return int(ms) * 1_000_000 + min(int(seq or 0), 999_999)


TURN_WAIT_S = 5.0
"""How long a batch waits for the batches before it to commit: past that (a worker stopped mid-
batch), it commits anyway; only refolds, not results, depend on the order."""


_abandoned: set[int] = set()  # oldest entries this process already waited out: left by a stopped worker


def wait_for_turn(redis: Redis, first_entry_id: bytes | str, timeout_s: float = TURN_WAIT_S) -> bool:
    """Wait until every entry before `first_entry_id` is committed, so that worker processes
    commit batches in inbox order: a batch committed before an earlier one would make the
    earlier one's events late for the customers they share, and late events cost a refold.
    Returns whether the turn came before the timeout. An oldest entry once waited out (its
    worker stopped; it waits to be claimed) is not waited for again."""
    mine, pause = position(first_entry_id), 0.0005
    deadline = time.monotonic() + timeout_s
    while (oldest := unsettled_from(redis)) is not None and oldest < mine:
        if oldest in _abandoned:
            return False
        if time.monotonic() > deadline:
            _abandoned.difference_update([gone for gone in _abandoned if gone < oldest])  # claimed since
            _abandoned.add(oldest)
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.004)
    return True


def unsettled_from(redis: Redis) -> int | None:
    """The position of the oldest entry not committed yet (a worker deletes an entry once its
    batch has committed), or None when every body handed off is committed: customers written
    from before it are settled, since no batch still running can refold them."""
    first = redis.xrange(INBOX, count=1)
    return position(first[0][0]) if first else None
