"""The Flask app: Meta's webhook (verify, hand off, answer) and health.

The POST path does only what acknowledging needs: a size and type check, the HMAC over the raw
bytes, a JSON syntax check that builds no objects, and one Redis round trip. Parsing and SQL
happen in the workers.
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
from workers import inbox
from workers.settings import MAX_BODY_BYTES, Settings

log = logging.getLogger(__name__)


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
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.get("/webhook")
    def verify_subscription():
        args = request.args
        if (
            settings.verify_token
            and args.get("hub.mode") == "subscribe"
            and args.get("hub.verify_token") == settings.verify_token
        ):
            return Response(args.get("hub.challenge", ""), 200, mimetype="text/plain")
        return _plain("verification failed", 403)

    @app.post("/webhook")
    def receive():
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _plain("body over 4 MiB", 413)
        if request.mimetype != "application/json":
            return _plain("Content-Type must be application/json", 415)
        body = request.get_data(cache=False)
        if not is_valid(secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("refused a webhook POST with a missing or wrong %s", SIGNATURE_HEADER)
            return _plain("invalid signature", 401)
        valid_json = is_json(body)
        try:
            inbox.hand_off(redis, body, valid_json=valid_json)
        except RedisError as error:
            log.error("could not hand off a webhook body (%s): answered 503 so Meta retries", type(error).__name__)
            return _plain("temporarily unavailable", 503, retry_after=True)
        if not valid_json:
            return _plain("body is not JSON (kept as a dead letter)", 400)
        return _plain("ok", 200)

    @app.get("/health")
    def health():
        try:
            waiting = inbox.backlog(redis)
        except RedisError:
            return {"status": "redis unavailable"}, 503
        return {"status": "ok", "inbox": waiting}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _plain(error.description or error.name, error.code or 400)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        """Never a 500 to Meta: anything unexpected is refused as unavailable, so Meta retries."""
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _plain("temporarily unavailable", 503, retry_after=True)

    return app


def _plain(text: str, status: int, retry_after: bool = False) -> Response:
    response = Response(text + "\n", status, mimetype="text/plain")
    if retry_after:
        response.headers["Retry-After"] = "5"
    return response
