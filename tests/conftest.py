"""Shared fixtures: real Redis, real SQLite and PostgreSQL, the real web server over HTTP.

Redis: database 15 of TEST_REDIS_URL's server (a private redis-server is started when none
answers), flushed around each test. Databases: a fresh SQLite file per test, and a throwaway
PostgreSQL schema per session (emptied per test) when TEST_POSTGRES_URL is set or a server
answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import requests
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import text

from cloudapi.signature import SIGNATURE_HEADER, sign
from store import db
from wapulse.services import ensure_redis
import workers.context
from workers import inbox
from workers.reminders import REMINDER_QUEUE

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = ("erasure", "retired_activity", "figure_base", "sign_in_link", "rep_account", "reminder_action", "reminder_delivery", "reminder", "tier_change", "event", "outbound_message", "customer_alias",
          "customer", "raw_body")


def postgres_available() -> bool:
    try:
        plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain.split("?")[0], connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def redis_server() -> str:
    ensure_redis(REDIS_URL, home=ROOT / "var" / "test-redis")
    return REDIS_URL


@pytest.fixture
def redis(redis_server) -> Redis:
    connection = Redis.from_url(redis_server)
    connection.flushdb()
    yield connection
    connection.flushdb()


@contextmanager
def throwaway_schema(prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL schema of POSTGRES_URL, dropped when the block ends;
    skips the test when no PostgreSQL answers."""
    if not postgres_available():
        pytest.skip("no PostgreSQL answers (set TEST_POSTGRES_URL)")
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = db.make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_schema_url():
    with throwaway_schema("wapulse_test") as url:
        db.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wapulse.db'}"
        db.upgrade(url)
        return url
    url = request.getfixturevalue("postgres_schema_url")
    with db.engine_for(url).begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture(scope="session")
def no_config(tmp_path_factory) -> str:
    """An empty wapulse.toml: a test sees no reps, rules or templates but its own, even when the
    checkout holds a wapulse.toml of its user's (the file wapulse reads when none is named)."""
    path = tmp_path_factory.mktemp("config") / "wapulse.toml"
    path.write_text("")
    return str(path)


@pytest.fixture
def env(monkeypatch, database_url, redis, no_config) -> dict:
    """The environment every wapulse process of the test sees, with per-process caches reset."""
    values = {
        "WAPULSE_CONFIG": no_config,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WAPULSE_STALE_AFTER_MS": "60000",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WAPULSE_NOW", raising=False)
    monkeypatch.setattr(workers.context, "_installed", None)  # the first job builds it from this environment
    return values


def reread_environment() -> None:
    """The next job this process runs builds its context from the environment as it is then, as
    a restarted worker would."""
    workers.context._installed = None


@pytest.fixture
def engine(env):
    return db.engine_for(env["DATABASE_URL"])


@pytest.fixture
def drain(env, redis):
    """Run the real RQ worker (burst) until every handed-off body is committed."""
    return lambda: process_until_drained(redis, timeout_s=120)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def web_server(redis_server) -> str:
    """`wapulse web` (granian, as the Procfile starts it) on a free port; yields the webhook URL."""
    port = _free_port()
    process_env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "wapulse.cli", "web"], env=process_env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_served(url, process)
    yield f"{url}/webhook"
    process.terminate()
    process.wait(timeout=10)


def wait_until_served(url: str, process: subprocess.Popen) -> None:
    """Until the server at `url` answers `/health`; its own error if it exits first."""
    for _ in range(200):
        try:
            requests.get(f"{url}/health", timeout=1)
            return
        except requests.ConnectionError:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else f"exited with {process.returncode}")
            time.sleep(0.1)


def post_signed(url: str, body: bytes, secret: str = APP_SECRET, **headers) -> requests.Response:
    """POST a body the way Meta does: JSON content type and X-Hub-Signature-256 over the bytes."""
    all_headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body), **headers}
    return requests.post(url, data=body, headers=all_headers, timeout=10)


class Recorder(BaseHTTPRequestHandler):
    """A rep's endpoint: keeps every POST (headers and body) and answers 200."""

    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    Recorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Recorder.received
    server.shutdown()


def process_until_drained(redis: Redis, timeout_s: float = 600) -> None:
    """Run the queues' jobs in this process (the real RQ worker, burst) until the inbox is empty.

    A drain job that fails stops the wait with its error instead of retrying until the timeout.
    """
    failures: list[str] = []

    def remember_failure(job, exc_type, exc_value, traceback) -> bool:
        failures.append(f"{exc_type.__name__}: {str(exc_value).splitlines()[0] if str(exc_value) else ''}")
        return True  # and let RQ record it as usual

    deadline = time.monotonic() + timeout_s
    while True:
        inbox.request_drain_if_backlog(redis)
        worker = SimpleWorker([inbox.INGEST_QUEUE, REMINDER_QUEUE], connection=redis,
                              exception_handlers=[remember_failure])
        worker.work(burst=True, logging_level="WARNING")
        if inbox.backlog(redis) == 0:
            return
        if failures:
            raise RuntimeError(f"a drain job failed, {inbox.backlog(redis)} bodies wait in the inbox: {failures[-1]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the inbox still holds {inbox.backlog(redis)} bodies after {timeout_s:.0f}s")
        time.sleep(0.2)


# ---- the fault suite's table (`make faults`: pytest -m fault) ----------------------------------

_FAULTS: dict[str, str] = {}  # test id -> the fault it tries
_OUTCOMES: dict[str, list[str]] = {}  # the fault -> the outcome of each of its cases


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if marker := item.get_closest_marker("fault"):
            _FAULTS[item.nodeid] = marker.args[0]


def pytest_runtest_logreport(report) -> None:
    what = _FAULTS.get(report.nodeid)
    if what and (report.when == "call" or report.outcome != "passed"):
        _OUTCOMES.setdefault(what, []).append(report.outcome)


def pytest_terminal_summary(terminalreporter, config) -> None:
    """What the fault suite tried and whether wapulse survived it: every case passed."""
    if "fault" not in (config.option.markexpr or "") or not _OUTCOMES:
        return
    width = max(map(len, _OUTCOMES))
    terminalreporter.write_sep("=", "faults tried")
    terminalreporter.write_line(f"{'fault'.ljust(width)}  cases  survived")
    for what, outcomes in _OUTCOMES.items():
        passed, skipped = outcomes.count("passed"), outcomes.count("skipped")
        verdict = "yes" if passed and passed + skipped == len(outcomes) else "skipped" if skipped == len(outcomes) else "NO"
        terminalreporter.write_line(f"{what.ljust(width)}  {len(outcomes):5d}  {verdict}")
