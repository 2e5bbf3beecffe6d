"""The two apps the webhook bench serves next to ours, as WSGI factories read from the same
environment as `webhook:create_app` (WHATSAPP_APP_SECRET, REDIS_URL).

- `bare_flask`: reads the body and answers 200; no signature, no Redis. The ceiling of a Flask
  webhook on a given server.
- `pywa_flask`: pywa on Flask, as a pywa user who must not lose updates would write it: the
  signature checked (`validate_updates` with `app_secret`), pywa's in-memory duplicate skipping
  off (it forgets on restart and is per process, so it cannot stand in for durable dedup), and a
  raw-update handler that appends each body to a Redis stream before pywa answers 200.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request
from pywa import WhatsApp
from pywa.types import RawUpdate
from redis import Redis

PYWA_STREAM = "bench:pywa"
WEBHOOK_PATH = "/webhook"


def bare_flask() -> Flask:
    app = Flask(__name__)

    @app.post(WEBHOOK_PATH)
    def receive():
        request.get_data(cache=False)
        return Response("ok\n", 200, mimetype="text/plain")

    return app


def pywa_flask() -> Flask:
    """No phone id, token or callback URL: pywa registers its routes on the Flask app and never
    calls Meta's API."""
    app = Flask(__name__)
    redis = Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2)
    whatsapp = WhatsApp(
        server=app,
        webhook_endpoint=WEBHOOK_PATH,
        verify_token="bench",
        app_secret=os.environ["WHATSAPP_APP_SECRET"],
        validate_updates=True,
        skip_duplicate_updates=False,
    )

    @whatsapp.on_raw_update
    def keep(_: WhatsApp, update: RawUpdate) -> None:
        redis.xadd(PYWA_STREAM, {"b": update.raw})

    return app
