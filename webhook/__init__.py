"""The web app: Meta's webhook (verify, hand off, answer), health and the API (webhook.api).

The POST path does only what acknowledging needs, in a WSGI function in front of Flask: a size
and type check, the HMAC over the raw bytes, a JSON syntax check that builds no objects, and one
Redis round trip. Parsing and SQL happen in the workers.
"""

from __future__ import annotations

import json
import logging

import msgspec
from flask import Flask, Response, request
from redis import Redis
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from cloudapi.signature import SIGNATURE_HEADER, is_valid
from webhook import api
from workers import inbox
from workers.settings import MAX_BODY_BYTES, Settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhook"
RETRY_AFTER_S = "5"
_TOO_LARGE = ("413 Content Too Large", "body over 4 MiB")
_UNAVAILABLE = ("503 Service Unavailable", "temporarily unavailable")
_SIGNATURE_ENVIRON = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")


class _AnyJson(msgspec.Struct):
    """Decoding into an empty struct checks the JSON syntax and skips every value unbuilt."""


_json_syntax = msgspec.json.Decoder(_AnyJson)


def is_json(body: bytes) -> bool:
    """Whether `body` is JSON. Objects pass the fast check; anything msgspec refuses is given a
    second opinion from the standard library, so no JSON that Python accepts is ever refused."""
    try:
        _json_syntax.decode(body)
        return True
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    try:
        json.loads(body)
        return True
    except ValueError:
        return False


def create_app(settings: Settings | None = None, redis: Redis | None = None) -> Flask:
    settings = settings or Settings.from_env()
    secret = settings.require_secret()
    redis = redis or Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    app = Flask(__name__)
    app.wsgi_app = Intake(app.wsgi_app, secret, inbox.HandOff(redis))

    @app.get(WEBHOOK_PATH)
    def verify_subscription():
        args = request.args
        if (
            settings.verify_token
            and args.get("hub.mode") == "subscribe"
            and args.get("hub.verify_token") == settings.verify_token
        ):
            return Response(args.get("hub.challenge", ""), 200, mimetype="text/plain")
        return _plain("verification failed", 403)

    @app.get("/health")
    def health():
        try:
            waiting = inbox.backlog(redis)
        except RedisError:
            return {"status": "redis unavailable"}, 503
        return {"status": "ok", "inbox": waiting}

    api.register(app, settings)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _plain(error.description or error.name, error.code or 400)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        """Never a 500: anything unexpected is refused as unavailable, so the caller retries."""
        route = request.url_rule.rule if request.url_rule else "an unknown route"  # the path may name a customer
        log.exception("unexpected error on %s %s", request.method, route)
        return _plain("temporarily unavailable", 503, retry_after=True)

    return app


class Intake:
    """POST /webhook as a plain WSGI function in front of Flask; everything else goes to Flask.

    Acknowledging is the hot path Meta times, and Flask's request and response objects cost more
    CPU than every check here together; the checks are the same and so are the answers.
    """

    def __init__(self, app, secret: str, hand_off: inbox.HandOff):
        self._app = app
        self._secret = secret
        self._hand_off = hand_off

    def __call__(self, environ: dict, start_response):
        if environ.get("PATH_INFO") != WEBHOOK_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self._app(environ, start_response)
        try:
            status, text = self._receive(environ)
        except Exception:
            log.exception("unexpected error on a webhook POST")
            status, text = _UNAVAILABLE
        payload = text.encode() + b"\n"
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(payload)))]
        if status == _UNAVAILABLE[0]:
            headers.append(("Retry-After", RETRY_AFTER_S))
        start_response(status, headers)
        return [payload]

    def _receive(self, environ: dict) -> tuple[str, str]:
        """The status line and text of the answer to one POST."""
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared and not declared.isdigit():
            return "400 Bad Request", "Content-Length is not a number"
        if not declared and not environ.get("wsgi.input_terminated"):
            return "411 Length Required", "Content-Length is required"
        if declared and int(declared) > MAX_BODY_BYTES:
            return _TOO_LARGE
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            return "415 Unsupported Media Type", "Content-Type must be application/json"
        body = _read(environ["wsgi.input"], int(declared) if declared else None)
        if len(body) > MAX_BODY_BYTES:
            return _TOO_LARGE
        if declared and len(body) != int(declared):
            return "400 Bad Request", "body shorter than its Content-Length"
        if not is_valid(self._secret, body, environ.get(_SIGNATURE_ENVIRON)):
            log.warning("refused a webhook POST with a missing or wrong %s", SIGNATURE_HEADER)
            return "401 Unauthorized", "invalid signature"
        valid_json = is_json(body)
        try:
            self._hand_off(body, valid_json=valid_json)
        except RedisError as error:
            log.error("could not hand off a webhook body (%s): answered 503 so Meta retries", type(error).__name__)
            return _UNAVAILABLE
        if not valid_json:
            return "400 Bad Request", "body is not JSON (kept as a dead letter)"
        return "200 OK", "ok"


def _read(stream, length: int | None) -> bytes:
    """The whole body: `length` bytes, or, when the server framed a chunked body, up to one byte
    past the limit (WSGI streams may return fewer bytes than asked before their end)."""
    chunks, missing = [], MAX_BODY_BYTES + 1 if length is None else length
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            break
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _plain(text: str, status: int, retry_after: bool = False) -> Response:
    response = Response(text + "\n", status, mimetype="text/plain")
    if retry_after:
        response.headers["Retry-After"] = RETRY_AFTER_S
    return response
