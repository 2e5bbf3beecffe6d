"""The Flask app: Meta's subscription handshake, health, the API (webhook.api) and the desk
(webhook.desk).

Meta's POST /webhook never reaches it: `webhook.intake`, the ASGI application in front of it,
reads every body within a deadline and acknowledges those POSTs itself (size, type, the HMAC
over the raw bytes, a JSON syntax check that builds no objects, one Redis round trip). Parsing
and SQL happen in the workers.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from redis import Redis
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from webhook import api, desk
from workers import inbox
from workers.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhook"
RETRY_AFTER_S = "5"


def create_app(settings: Settings | None = None, redis: Redis | None = None) -> Flask:
    settings = settings or Settings.from_env()
    redis = redis or Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    app = Flask(__name__)

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
        """Whether Redis and the database answer, and how long the oldest acknowledged body has
        waited for a worker. 503 only when Redis is down, when no POST can be acknowledged: with
        the database down Meta's POSTs are still taken (the inbox holds them), so the status is
        "degraded" and a load balancer keeps sending them here."""
        from workers.metrics import oldest_waiting_s

        answer: dict = {"redis": "ok", "database": "ok"}
        try:
            answer.update(inbox=inbox.backlog(redis), oldest_waiting_s=round(oldest_waiting_s(redis), 3))
        except RedisError:
            answer["redis"] = "unavailable"
        if not _database_answers(settings):
            answer["database"] = "unavailable"
        if answer["redis"] != "ok":
            return {"status": "unavailable", **answer}, 503
        return {"status": "ok" if answer["database"] == "ok" else "degraded", **answer}, 200

    @app.get("/metrics")
    def scrape():
        """Prometheus's scrape, behind a bearer token: WAPULSE_METRICS_TOKEN when set (a scraper
        then holds no token that could erase customers), else the API's. `wapulse metrics` serves
        the same without one, on an address of its own."""
        if settings.metrics_token:
            refused = api.refusal(settings.metrics_token, "WAPULSE_METRICS_TOKEN")
        else:
            refused = api.refusal(settings.api_token)
        if refused:
            return refused
        from workers import metrics

        return Response(metrics.exposition(redis), 200, content_type=metrics.CONTENT_TYPE)

    api.register(app, settings)
    desk.init_app(app, settings, redis)

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


def _database_answers(settings: Settings) -> bool:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import engine_for

    try:
        with engine_for(settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


def _plain(text: str, status: int, retry_after: bool = False) -> Response:
    response = Response(text + "\n", status, mimetype="text/plain")
    if retry_after:
        response.headers["Retry-After"] = RETRY_AFTER_S
    return response
