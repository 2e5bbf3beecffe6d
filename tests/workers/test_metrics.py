"""`/metrics` and `/health` of a real stack: `wapulse web` (granian) and two worker processes
sharing one metrics folder, scraped with prometheus_client's own parser while bodies flow."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from store.models import EventRow
from tests.conftest import APP_SECRET, ROOT, _free_port, post_signed, wait_until_served
from tests.workers.test_ingest import all_bodies
from webhook import create_app
from workers import inbox
from workers.settings import Settings

TOKEN = "metrics-token-for-tests"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def total(scraped: dict, name: str, **labels) -> float:
    return sum(value for (sample, pairs), value in scraped.items()
               if sample == name and all(dict(pairs).get(key) == want for key, want in labels.items()))


@pytest.fixture
def stack(env, tmp_path):
    """`wapulse web` and `wapulse worker --processes 2` on the test's database and Redis, counting
    into a metrics folder of their own."""
    port = _free_port()
    process_env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "WAPULSE_API_TOKEN": TOKEN,
                   "PORT": str(port), "WEB_CONCURRENCY": "2", "WHATSAPP_APP_SECRET": APP_SECRET}
    (tmp_path / "metrics").mkdir()
    started = [subprocess.Popen([sys.executable, "-m", "wapulse.cli", *command], env=process_env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{command[0]}.log").open("w"))
               for command in (["web"], ["worker", "--processes", "2"])]  # logs to files: a full pipe would stop them
    url = f"http://127.0.0.1:{port}"
    wait_until_served(url, started[0])
    yield url
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def test_metrics_scraped_while_bodies_flow_through_two_worker_processes_add_up(stack, engine, redis):
    def scrape() -> dict:
        answer = requests.get(f"{stack}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
        return samples(answer.text)

    assert requests.get(f"{stack}/metrics", timeout=5).status_code == 401
    bodies = all_bodies()
    during = []
    for number, body in enumerate(bodies):
        assert post_signed(f"{stack}/webhook", body).status_code == 200
        if number % 20 == 0:
            during.append(scrape())  # parsed while the workers commit
    assert post_signed(f"{stack}/webhook", b"{}", secret="wrong").status_code == 401
    deadline = time.monotonic() + 120
    while inbox.backlog(redis) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert inbox.backlog(redis) == 0  # a batch counts before it deletes its entries: every count is in
    final = scrape()
    assert total(final, "wapulse_webhook_answers_total", code="200") == len(bodies)
    assert total(final, "wapulse_webhook_answers_total", code="401") == 1
    with engine.connect() as connection:
        by_kind = dict(connection.execute(select(EventRow.kind, func.count()).group_by(EventRow.kind)).all())
    assert {kind: total(final, "wapulse_events_committed_total", kind=kind) for kind in by_kind} == by_kind
    assert total(final, "wapulse_batch_bodies_sum") == len(bodies)
    assert total(final, "wapulse_batch_commit_seconds_count") == total(final, "wapulse_batch_bodies_count") >= 2
    assert total(final, "wapulse_dead_letters_total") == 0
    assert (total(final, "wapulse_inbox_depth"), total(final, "wapulse_inbox_oldest_age_seconds")) == (0, 0)
    assert all(total(scraped, "wapulse_redis_up") == 1 for scraped in during)
    health = requests.get(f"{stack}/health", timeout=5).json()
    assert health == {"status": "ok", "redis": "ok", "database": "ok", "inbox": 0, "oldest_waiting_s": 0}


def test_health_says_which_store_does_not_answer(env, monkeypatch, redis):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    inbox.hand_off(redis, b'{"object": "whatsapp_business_account"}')
    answer = create_app(Settings.from_env()).test_client().get("/health")
    assert answer.status_code == 200  # POSTs are still acknowledged: a load balancer must keep sending them
    assert (answer.json["status"], answer.json["redis"], answer.json["database"]) == ("degraded", "ok", "unavailable")
    assert answer.json["inbox"] == 1 and answer.json["oldest_waiting_s"] >= 0


def test_a_metrics_token_of_its_own_opens_the_scrape_and_nothing_else(env, monkeypatch, redis):
    monkeypatch.setenv("WAPULSE_API_TOKEN", "api-token-with-power-to-erase")
    monkeypatch.setenv("WAPULSE_METRICS_TOKEN", "scrape-only")
    client = create_app(Settings.from_env()).test_client()
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-only"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer api-token-with-power-to-erase"}).status_code == 401
    assert client.delete("/api/customers/16505551234", headers={"Authorization": "Bearer scrape-only"}).status_code == 401
