"""Workers that die mid-batch, and workers that race on one customer, in real processes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.events import iso
from store import db
from tests.conftest import FIXTURES, ROOT
from tests.peers import hang, peer
from tests.workers.test_reminders import SHEENA_AT
from tests.workers.test_ingest import all_bodies, customer, hand_off_all, snapshot
from workers import inbox, runtime

CRASH_HOOK = Path(__file__).parent / "crash_hook"


def worker_process(extra_env: dict, *options: str) -> subprocess.Popen:
    """`wapulse worker --burst` on the ingest queue."""
    return spawn_worker(extra_env, *options, burst=True)


def spawn_worker(extra_env: dict, *options: str, burst: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{CRASH_HOOK}{os.pathsep}{ROOT}", **extra_env}
    command = [sys.executable, "-m", "wapulse.cli", "worker", *(["--burst"] if burst else []), *options]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def reference_state(bodies, redis, drain, monkeypatch, tmp_path) -> list[dict]:
    """The state a clean run reaches, in a database of its own."""
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    db.upgrade(url)
    test_url = os.environ["DATABASE_URL"]
    monkeypatch.setenv("DATABASE_URL", url)
    runtime.settings.cache_clear()
    hand_off_all(redis, bodies)
    drain()
    monkeypatch.setenv("DATABASE_URL", test_url)
    runtime.settings.cache_clear()
    return snapshot(db.engine_for(url))


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before_commit", "before_ack"])
def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    moment, redis, engine, drain, monkeypatch, tmp_path
):
    bodies = all_bodies()
    expected = reference_state(bodies, redis, drain, monkeypatch, tmp_path)
    hand_off_all(redis, bodies)
    victim = worker_process({"WAPULSE_TEST_KILL_AT": moment, "WAPULSE_BATCH_SIZE": "10"})
    assert victim.wait(timeout=120) == -9, victim.stderr.read().decode()[-2000:]
    assert inbox.backlog(redis) > 0  # the dead worker's entries are still there, unacknowledged
    monkeypatch.setenv("WAPULSE_STALE_AFTER_MS", "0")  # the next drain claims them at once
    runtime.settings.cache_clear()
    drain()
    assert inbox.backlog(redis) == 0
    assert snapshot(engine) == expected


def numbered_messages(count: int) -> list[bytes]:
    """`count` text messages from one customer, each in its own body, timestamps shuffled."""
    template = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
    base = int(template["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"])
    bodies = []
    for n in range(count):
        body = json.loads(json.dumps(template))
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message.update(id=f"wamid.race{n:05d}", timestamp=str(base + n * 60))
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    random.Random(count).shuffle(bodies)
    return bodies


@pytest.mark.slow
@pytest.mark.parametrize("started_as", ["two commands", "one worker pool"])
def test_concurrent_workers_on_one_customer_lose_no_increments(started_as, redis, engine, drain):
    """Two worker processes, started apart or as the Procfile starts them (`--processes 2`)."""
    bodies = numbered_messages(400)
    hand_off_all(redis, bodies)
    inbox.enqueue_drain(redis)  # a second drain job, so that both workers take one
    settings = {"WAPULSE_BATCH_SIZE": "4"}
    if started_as == "two commands":
        workers = [worker_process(settings) for _ in range(2)]
    else:
        workers = [worker_process(settings, "--processes", "2")]
    for process in workers:
        assert process.wait(timeout=300) == 0, process.stderr.read().decode()[-2000:]
    drain()
    consumers = redis.xinfo_consumers(inbox.INBOX, inbox.GROUP)
    assert len(consumers) >= 2  # both processes really took entries
    sender = json.loads(bodies[0])["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    view = customer(engine, sender)
    assert view["counters"]["inbound"] == 400
    assert sum(view["counters"]["interactions_by_week"].values()) == 400


@pytest.mark.slow
def test_ingestion_goes_on_while_every_reminder_endpoint_hangs(redis, engine, tmp_path):
    """The workers as the Procfile starts them: a reminder sent to an endpoint that never answers
    holds the reminders worker, and the ingest worker drains new bodies all the while."""
    sheena = (FIXTURES / "cloudapi" / "messages__text.json").read_bytes()  # a question: unanswered after an hour
    config = tmp_path / "wapulse.toml"
    with peer(hang) as silent:
        config.write_text(f'[[reps]]\nid = "ana"\nchannels = [{{ type = "webhook", url = "{silent.url}", secret = "s" }}]\n'
                          '\n[owners]\ndefault = "ana"\n')
        settings = {"WAPULSE_CONFIG": str(config), "WAPULSE_NOW": iso(SHEENA_AT + 2 * 3600),
                    "WAPULSE_DELIVERY_DEADLINE_S": "300"}
        reminders = spawn_worker(settings, "--queue", "reminders", burst=False)
        try:
            hand_off_all(redis, [sheena])
            assert worker_process(settings).wait(timeout=120) == 0
            silent.wait_for(1)  # the reminder is on its way to a peer that will not answer
            hand_off_all(redis, numbered_messages(20))
            assert worker_process(settings).wait(timeout=120) == 0
            assert inbox.backlog(redis) == 0
            assert silent.open >= 1 and reminders.poll() is None  # still waiting on the endpoint
        finally:
            reminders.kill()
            reminders.wait()
    assert customer(engine, "16505551234")["counters"]["inbound"] == 21
