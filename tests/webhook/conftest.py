"""The desk as reps use it: a served app (werkzeug in a thread, the real Flask app over real HTTP)
on the test's database, three people (two reps and a manager), and customers with follow-ups."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass

import pytest
import requests
from werkzeug.serving import make_server

from store.accounts import set_password
from store.db import write_transaction
from tests.conftest import FIXTURES
from tests.workers.test_tiers import process, set_now
from webhook import create_app
from workers.jobs import refresh_figures
from workers.settings import Settings

SECRET_KEY = "desk-secret-key-for-tests-0123456789abcdef"
PASSWORDS = {"ana": "ana-password-1", "ben": "ben-password-1", "maria": "maria-password-1"}
PEOPLE = """
[[reps]]
id = "ana"
name = "Ana Ruiz"
timezone = "Europe/Madrid"
channels = [{ type = "slack", url = "http://127.0.0.1:9/ana" }]

[[reps]]
id = "ben"
name = "Ben Okafor"
timezone = "Africa/Lagos"
channels = [{ type = "slack", url = "http://127.0.0.1:9/ben" }]

[[reps]]
id = "maria"
name = "María López"
role = "manager"

[owners]
default = ["ana", "ben"]

[[templates]]
name = "spring_offer"
language = "es"
campaign = "spring_reactivation"
parameters = ["{first_name}", "{rep}"]
label = "Spring offer"
"""
GRAPH = "https://graph.example.test/v24.0"
SHEENA_AT = 1794328383  # fixtures/cloudapi/messages__text.json: "Does it come in another color?"
NOW = SHEENA_AT + 2 * 3600  # her question has waited past the 60-minute SLA


def body_from(who: str, name: str, message_id: str, at: int, text: str = "What is the price?") -> bytes:
    """A text from a customer, as Meta sends it."""
    body = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": name}, "wa_id": who}]
    value["messages"][0].update({"from": who, "id": message_id, "timestamp": str(at), "text": {"body": text}})
    value["messages"][0].pop("from_user_id", None)
    return json.dumps(body).encode()


@dataclass
class Desk:
    url: str
    engine: object

    def session(self, who: str | None = None) -> requests.Session:
        """A browser-like session, signed in as `who` (by password) when given."""
        session = requests.Session()
        if who is not None:
            answer = session.post(f"{self.url}/signin", data={"rep": who, "password": PASSWORDS[who],
                                                                "csrf_token": self.csrf(session, "/signin")})
            assert answer.status_code == 200 and answer.url.endswith("/followups"), answer.text[:300]
        return session

    def csrf(self, session: requests.Session, path: str) -> str:
        page = session.get(self.url + path)
        return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def desk(env, monkeypatch, tmp_path, redis, drain, engine) -> Desk:
    config = tmp_path / "wapulse.toml"
    config.write_text(PEOPLE)
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    monkeypatch.setenv("WAPULSE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "graph-token")
    monkeypatch.setenv("WHATSAPP_GRAPH_URL", GRAPH)
    set_now(monkeypatch, NOW)
    with write_transaction(engine) as connection:
        for who, password in PASSWORDS.items():
            set_password(connection, who, password, NOW - 86_400)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])  # Sheena: ana's (first in turn)
    process(redis, drain, [body_from("34600000002", "Bob <script>alert(1)</script>", "wamid.bob1", NOW - 3 * 3600)])
    refresh_figures()  # the cron job that ranks customers and keeps the board's sort keys
    server = make_server("127.0.0.1", 0, create_app(Settings.from_env()), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("WAPULSE_PUBLIC_URL", url)  # where `wapulse reps link` points
    yield Desk(url, engine)
    server.shutdown()
