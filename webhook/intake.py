"""The ASGI application `wapulse web` serves (granian): it reads every request body in full on
the event loop, within a deadline and a size limit, before anything else sees it.

A body that arrives slowly, or never, costs a waiting coroutine, not a thread: a hundred
connections that promise 1,000 bytes and send 10 hold nothing Meta's deliveries need, and each
is answered 408 when its deadline passes. Meta's POST /webhook is acknowledged right here
(size, type, the HMAC over the raw bytes, a JSON syntax check, one Redis round trip), as the one
hot path; every other request goes, body already in hand, to the Flask app (`webhook.create_app`)
on a pool of threads through a2wsgi.
"""

from __future__ import annotations

import asyncio
import logging

from a2wsgi import WSGIMiddleware
from redis import Redis
from redis.exceptions import RedisError

from cloudapi.signature import SIGNATURE_HEADER, is_valid
from cloudapi.body import is_json
from webhook import RETRY_AFTER_S, WEBHOOK_PATH, create_app
from workers import inbox, metrics
from workers.settings import MAX_BODY_BYTES, Settings

log = logging.getLogger(__name__)

Answer = tuple[int, str]
_UNAVAILABLE: Answer = (503, "temporarily unavailable")
_SIGNATURE = SIGNATURE_HEADER.lower().encode()
MAX_OTHER_BODY_BYTES = 1024 * 1024  # the API and the pages: 10,000 owners in one POST are about 600 KB
BUFFER_BUDGET_BYTES = 256 * 1024 * 1024  # bodies a process holds at once, from arrival to answer
CLIENT_BUDGET_BYTES = 16 * 1024 * 1024  # of those, from one client address: Meta's come from many


class BodyNotReceived(Exception):
    """The client stopped sending before its body was complete: nothing to answer."""


class OverBudget(Exception):
    """Taking this body would hold more than the process's budget of buffered bytes, or more than
    its client's share of it."""


class BufferBudget:
    """The bytes of request bodies a process holds at once, in all and per client address: a body
    counts from its first byte until its request is answered. One address (an attacker sending
    large unsigned bodies) can take no more than its share, so Meta's deliveries, which come
    from many addresses, still find room."""

    def __init__(self, total: int = BUFFER_BUDGET_BYTES, per_client: int = CLIENT_BUDGET_BYTES):
        self.total, self.per_client = total, per_client
        self.held = 0
        self._by_client: dict[str, int] = {}

    def reserve(self, client: str) -> Reservation:
        return Reservation(self, client)

    def _take(self, client: str, size: int) -> None:
        mine = self._by_client.get(client, 0)
        if self.held + size > self.total or mine + size > self.per_client:
            raise OverBudget
        self.held += size
        self._by_client[client] = mine + size

    def _give_back(self, client: str, size: int) -> None:
        self.held -= size
        if (mine := self._by_client.pop(client, 0) - size) > 0:
            self._by_client[client] = mine


class Reservation:
    """What one request holds of the budget."""

    def __init__(self, budget: BufferBudget, client: str):
        self._budget, self._client, self.size = budget, client, 0

    def take(self, size: int) -> None:
        """Raises OverBudget, taking nothing, when `size` more bytes would go past a limit."""
        self._budget._take(self._client, size)
        self.size += size

    def release(self) -> None:
        self._budget._give_back(self._client, self.size)
        self.size = 0


def create_intake(settings: Settings | None = None) -> Intake:
    """granian's factory (`--factory webhook.intake:create_intake`), settings from the environment."""
    settings = settings or Settings.from_env()
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    hand_off = inbox.AsyncHandOff(settings.redis_url, enqueue_with=redis)
    return Intake(create_app(settings, redis), settings.require_secret(), hand_off, settings.body_deadline_s,
                  settings.web_threads)


class Intake:
    def __init__(self, flask_app, secret: str, hand_off: inbox.AsyncHandOff, body_deadline_s: float, threads: int):
        self._flask = WSGIMiddleware(flask_app, workers=threads)
        self._secret = secret
        self._hand_off = hand_off
        self._body_deadline_s = body_deadline_s
        self.budget = BufferBudget()

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._flask(scope, receive, send)  # a2wsgi answers startup and shutdown
            return
        if scope["type"] != "http":
            return
        if scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            send = _counting_answers(send)  # every answer to Meta's POST, the 503 of an unexpected error too
        try:
            await self._serve(scope, receive, send)
        except BodyNotReceived:
            return
        except Exception:  # never a 500: anything unexpected is refused as unavailable, so Meta retries
            log.exception("unexpected error on %s %s", scope.get("method"), _route(scope))
            await _answer(send, *_UNAVAILABLE)

    async def _serve(self, scope: dict, receive, send) -> None:
        headers = dict(scope["headers"])
        acknowledging = scope["path"] == WEBHOOK_PATH and scope["method"] == "POST"
        limit = MAX_BODY_BYTES if acknowledging else MAX_OTHER_BODY_BYTES
        refusal = _refusal_before_reading(headers, acknowledging, limit)
        if refusal:
            await _answer(send, *refusal)
            return
        reservation = self.budget.reserve((scope.get("client") or ("unknown",))[0])
        try:
            await self._read_and_answer(scope, headers, acknowledging, limit, receive, send, reservation)
        finally:
            reservation.release()

    async def _read_and_answer(self, scope: dict, headers: dict, acknowledging: bool, limit: int, receive, send,
                               reservation: Reservation) -> None:
        try:
            async with asyncio.timeout(self._body_deadline_s):
                body = await _read_body(receive, limit, reservation)
        except TimeoutError:
            await _answer(send, 408, f"body not received within {self._body_deadline_s:g} s", close=True)
            return
        except OverBudget:
            log.warning("refused a request: bodies held reached this process's budget or its client's share")
            await _answer(send, *_UNAVAILABLE, close=True)
            return
        if body is None:
            await _answer(send, *_too_large(limit), close=True)
            return
        declared = headers.get(b"content-length")
        if declared is not None and len(body) != int(declared):
            await _answer(send, 400, "body shorter than its Content-Length")
            return
        if acknowledging:
            await _answer(send, *await self._acknowledge(body, headers.get(_SIGNATURE)))
        else:
            await self._flask(scope, _replaying(body, receive), send)

    async def _acknowledge(self, body: bytes, signature: bytes | None) -> Answer:
        """The answer to Meta's POST, the body handed off to the inbox first when it is signed."""
        if not is_valid(self._secret, body, signature.decode("latin-1") if signature else None):
            log.warning("refused a webhook POST with a missing or wrong %s", SIGNATURE_HEADER)
            return 401, "invalid signature"
        valid_json = is_json(body)
        try:
            await self._hand_off(body, valid_json=valid_json)
        except RedisError as error:
            log.error("could not hand off a webhook body (%s): answered 503 so Meta retries", type(error).__name__)
            return _UNAVAILABLE
        if not valid_json:
            return 400, "body is not JSON (kept as a dead letter)"
        return 200, "ok"


def _counting_answers(send):
    """`send`, counting the status it answers Meta's POST with (metrics.ACKNOWLEDGED)."""

    async def counted(message: dict) -> None:
        if message["type"] == "http.response.start":
            metrics.ACKNOWLEDGED.labels(code=str(message["status"])).inc()
        await send(message)

    return counted


def _refusal_before_reading(headers: dict[bytes, bytes], acknowledging: bool, limit: int) -> Answer | None:
    """What the headers alone decide: a length that is no number or is too large, and for Meta's
    POST a missing length or a content type other than JSON."""
    declared = headers.get(b"content-length")
    if declared is not None and not declared.isdigit():
        return 400, "Content-Length is not a number"
    if declared is not None and int(declared) > limit:
        return _too_large(limit)
    if not acknowledging:
        return None
    if declared is None and b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
        return 411, "Content-Length is required"
    if headers.get(b"content-type", b"").partition(b";")[0].strip().lower() != b"application/json":
        return 415, "Content-Type must be application/json"
    return None


async def _read_body(receive, limit: int, reservation: Reservation) -> bytes | None:
    """The whole body, or None past `limit` bytes; each chunk is taken from the budget (the caller
    gives it back once the request is answered). Raises BodyNotReceived when the client leaves,
    OverBudget when the budget has no room."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyNotReceived
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        reservation.take(len(chunk))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> Answer:
    return 413, f"body over {limit // (1024 * 1024)} MiB"


def _replaying(body: bytes, receive):
    """An ASGI `receive` that gives the body read already, then waits on the client as usual."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> dict:
        return pending.pop() if pending else await receive()

    return replay


async def _answer(send, status: int, text: str, close: bool = False) -> None:
    payload = text.encode() + b"\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(payload)).encode())]
    if status == _UNAVAILABLE[0]:
        headers.append((b"retry-after", RETRY_AFTER_S.encode()))
    if close:  # the rest of a body we stopped reading must not be taken for the next request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _route(scope: dict) -> str:
    """The first segment of the path, for a log line: the rest may name a customer."""
    return "/" + scope.get("path", "/").lstrip("/").split("/", 1)[0][:32]
