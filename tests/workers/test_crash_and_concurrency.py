"""Workers that die mid-batch, and workers that race on one customer, in real processes."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

import store.batch
import workers.ingest
from scoring.events import iso
from store import db
from tests.conftest import FIXTURES, ROOT, reread_environment
from tests.peers import hang, peer
from tests.workers.test_reminders import SHEENA_AT
from tests.workers.test_ingest import all_bodies, customer, hand_off_all, snapshot
from workers import inbox
from workers.context import installed

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
    reread_environment()
    hand_off_all(redis, bodies)
    drain()
    monkeypatch.setenv("DATABASE_URL", test_url)
    reread_environment()
    return snapshot(db.engine_for(url))


@pytest.mark.fault("worker SIGKILLed mid-batch (between fold and write, before commit, before acknowledgement)")
@pytest.mark.slow
@pytest.mark.parametrize("moment", ["between_fold_and_write", "before_commit", "before_ack"])
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
    reread_environment()
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


def shared_customers_traffic(start: int, span_s: int, shuffled: bool, customers: int = 12,
                             per_customer: int = 20) -> list[bytes]:
    """Messages from a few customers (some questions) over `span_s` from `start`, every one in its
    own body, in time order or shuffled: racing batches keep sharing customers, and commit out
    of order, so they refold."""
    template = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
    rng, bodies = random.Random(18), []
    for person in range(customers):
        wa_id, bsuid = f"3465510{person:04d}", f"ES.{person:019d}"
        for n in range(per_customer):
            body = json.loads(json.dumps(template))
            value = body["entry"][0]["changes"][0]["value"]
            value["contacts"][0] = {"wa_id": wa_id, "user_id": bsuid, "profile": {"name": f"Buyer {person}"}}
            at = start + rng.randrange(span_s)
            value["messages"][0].update({"from": wa_id, "from_user_id": bsuid, "id": f"wamid.shared{person:02d}{n:03d}",
                                         "timestamp": str(at), "text": {"body": "price?" if rng.random() < 0.3 else "ok"}})
            bodies.append((at, json.dumps(body, separators=(",", ":")).encode()))
    if shuffled:
        rng.shuffle(bodies)
    else:
        bodies.sort()
    return [body for _, body in bodies]


def owed_reminders(engine) -> list[tuple]:
    with engine.connect() as connection:
        return sorted(connection.execute(text("SELECT c.key, r.rep, r.rule, r.at FROM reminder r "
                                              "JOIN customer c ON c.id = r.customer_id")).all())


def race(redis, bodies: list[bytes], settings: dict, workers: int = 4) -> None:
    """`workers` worker processes, batches of 3, each with a drain job of its own."""
    hand_off_all(redis, bodies)
    for _ in range(workers - 1):
        inbox.enqueue_drain(redis)
    processes = [worker_process({"WAPULSE_BATCH_SIZE": "3", **settings}) for _ in range(workers)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read().decode()[-2000:]
    assert len(redis.xinfo_consumers(inbox.INBOX, inbox.GROUP)) >= workers - 1  # they really raced


def with_reps(monkeypatch, tmp_path, now: int) -> dict:
    """One rep who owns every customer (who owns whom must not depend on order), as of `now`.

    One reply SLA for every tier: with the clock fixed ahead of the traffic, a question would
    otherwise be overdue at the SLA of each tier its customer passes through on the way (in any
    run that commits in more than one batch), where live, the clock moves with the traffic."""
    config = tmp_path / "wapulse.toml"
    config.write_text('[[reps]]\nid = "ana"\nchannels = [{ type = "webhook", url = "http://127.0.0.1:9/", secret = "s" }]\n'
                      '\n[owners]\ndefault = "ana"\n\n[reminders]\nsla_minutes = { hot = 5, other = 5 }\n')
    settings = {"WAPULSE_CONFIG": str(config), "WAPULSE_NOW": iso(now)}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reread_environment()
    return settings


@pytest.mark.slow
def test_four_workers_racing_on_shared_customers_end_as_one_ordered_pass(redis, engine, drain, monkeypatch, tmp_path):
    """A month of shuffled messages and every fixture: counters and tier history as one worker
    taking the bodies in order leaves them, in a database of its own."""
    settings = with_reps(monkeypatch, tmp_path, SHEENA_AT + 31 * 86_400)
    bodies = shared_customers_traffic(SHEENA_AT, 30 * 86_400, shuffled=True) + all_bodies()
    expected = reference_state(bodies, redis, drain, monkeypatch, tmp_path)
    race(redis, bodies, settings)
    drain()
    assert inbox.backlog(redis) == 0
    assert without_deliveries(snapshot(engine)) == without_deliveries(expected)


@pytest.mark.slow
def test_racing_workers_owe_the_reminders_one_worker_owes_and_none_a_batch_still_running_takes_back(
    redis, engine, drain, monkeypatch, tmp_path
):
    """Live traffic of the last three hours, arriving in time order: one worker owes a reminder
    for each crossing, none taken back. Racing workers commit batches out of order, so a later
    batch may cross a threshold before an earlier one refolds it away; a crossing is planned only
    once every body before it has committed, so they owe the same reminders."""
    end = SHEENA_AT + 30 * 86_400
    settings = with_reps(monkeypatch, tmp_path, end + 600)
    bodies = shared_customers_traffic(end - 3 * 3600, 3 * 3600, shuffled=False)
    reference_state(bodies, redis, drain, monkeypatch, tmp_path)
    expected = owed_reminders(db.engine_for(f"sqlite:///{tmp_path / 'reference.db'}"))
    assert {rule for _, _, rule, _ in expected} >= {"heating", "unanswered"}
    race(redis, bodies, settings)
    assert owed_reminders(engine) == expected


def without_deliveries(cards: list[dict]) -> list[dict]:
    """Customer cards less their reminders' deliveries, whose ids and attempts differ by run."""
    return [{name: value for name, value in card.items() if name != "reminders"} for card in cards]


def test_two_batches_with_one_body_at_once_conflict_and_the_loser_runs_again(engine, monkeypatch, caplog):
    """A worker claims the entries of one it took for dead while that one is still committing
    them: both archive the body at once, the second to commit hits its unique delivery id, is
    run again, and then finds it archived: the body and its event count once."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: its batches never run at once")
    both_read = threading.Barrier(2, timeout=10)
    archive = store.batch._archive
    first_attempts: set[int] = set()

    def archive_together(connection, deliveries):
        if threading.get_ident() not in first_attempts:  # each first attempt waits until both have looked
            first_attempts.add(threading.get_ident())
            connection.execute(text("SELECT count(*) FROM raw_body")).scalar_one()
            both_read.wait()
        return archive(connection, deliveries)

    monkeypatch.setattr(store.batch, "_archive", archive_together)
    entry = ("1794328383000-0", {b"b": numbered_messages(1)[0], b"v": inbox.VALID})
    with caplog.at_level(logging.INFO, logger="store.db"):
        threads = [threading.Thread(target=workers.ingest.process_entries, args=(installed(), [entry], None)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert any("write conflict (unique violation)" in record.getMessage() for record in caplog.records)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM raw_body")).scalar_one() == 1
        assert connection.execute(text("SELECT count(*) FROM event")).scalar_one() == 1
    assert customer(engine, "16505551234")["counters"]["inbound"] == 1
