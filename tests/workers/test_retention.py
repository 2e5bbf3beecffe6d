"""Retention on a store holding data older and newer than each limit: what is past its limit
goes, the rest and every counter and tier stay."""

from __future__ import annotations

import importlib

import pytest
from rq import cron as rq_cron
from sqlalchemy import func, select, update

from store.models import Customer, RawBody, Reminder, ReminderAction, ReminderDelivery
from tests.conftest import FIXTURES, reread_environment
from tests.workers.test_ingest import snapshot
from tests.workers.test_tiers import process, set_now
from workers import cron_config
from workers.context import Context, installed
from workers.retention import apply_retention
from workers.settings import ConfigError

DAY = 86_400
NOW = 1_800_000_000
RETENTION = "[retention]\nraw_bodies_days = 30\nreminders_days = 60\n"
OWNERS = '[[reps]]\nid = "ana"\nchannels = [{ type = "slack", url = "http://127.0.0.1:9/" }]\n\n[owners]\ndefault = "ana"\n'


def configure(monkeypatch, tmp_path, text: str) -> None:
    config = tmp_path / "wapulse.toml"
    config.write_text(OWNERS + text)
    monkeypatch.setenv("WAPULSE_CONFIG", str(config))
    reread_environment()


def cards(engine) -> list[dict]:
    """Every customer's counters, tiers and history (their reminder deliveries aside)."""
    return [{name: value for name, value in card.items() if name != "reminders"} for card in snapshot(engine)]


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_retention_deletes_what_is_past_each_limit_and_keeps_counters_and_tiers(redis, engine, drain, monkeypatch,
                                                                                tmp_path):
    configure(monkeypatch, tmp_path, RETENTION)
    set_now(monkeypatch, NOW)
    names = ("messages__text.json", "messages__image.json", "messages__status-delivered.json")
    process(redis, drain, [(FIXTURES / "cloudapi" / name).read_bytes() for name in names])
    bodies, follow_ups = RawBody.__table__, Reminder.__table__
    with engine.begin() as connection:
        ids = connection.execute(select(bodies.c.id).order_by(bodies.c.id)).scalars().all()
        for body_id, age_days in zip(ids, (31, 29, 1)):  # one past the limit, one just inside, one new
            connection.execute(update(bodies).where(bodies.c.id == body_id)
                               .values(received_at=(NOW - age_days * DAY) * 1000))
        customer, key = connection.execute(select(Customer.id, Customer.key).order_by(Customer.id).limit(1)).one()
        for number, (state, closed_days_ago) in enumerate([("closed", 61), ("closed", 59), ("open", None)]):
            connection.execute(follow_ups.insert().values(
                id=f"r{number}", rep="ana", customer_id=customer, rule="went_cold",
                at=NOW - 100 * DAY, created_at=NOW - 100 * DAY, content={"customer": {"key": key}}, state=state,
                closed_at=None if closed_days_ago is None else NOW - closed_days_ago * DAY))
            connection.execute(ReminderDelivery.__table__.insert().values(
                reminder_id=f"r{number}", rep="ana", channel="slack", status="sent", due_at=NOW - 100 * DAY))
            connection.execute(ReminderAction.__table__.insert().values(
                reminder_id=f"r{number}", rep="ana", actor="ana", action="done", at=NOW - 90 * DAY, detail={}))
    before = cards(engine)

    assert apply_retention(installed()) == {"raw_bodies": 1, "reminders": 1}

    with engine.connect() as connection:
        kept = connection.execute(select(bodies.c.received_at).order_by(bodies.c.id)).scalars().all()
        left = connection.execute(select(follow_ups.c.id).order_by(follow_ups.c.id)).scalars().all()
    assert kept == [(NOW - 29 * DAY) * 1000, (NOW - DAY) * 1000]
    assert left == ["r1", "r2"]  # closed 59 days ago, and open however old
    assert count(engine, ReminderDelivery.__table__) == count(engine, ReminderAction.__table__) == 2
    assert cards(engine) == before
    assert apply_retention(installed()) == {"raw_bodies": 0, "reminders": 0}  # nothing more is due


def test_without_retention_nothing_is_deleted(redis, engine, drain, monkeypatch, tmp_path):
    configure(monkeypatch, tmp_path, "")
    set_now(monkeypatch, NOW + 1000 * DAY)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])
    assert apply_retention(installed()) == {"raw_bodies": 0, "reminders": 0}
    assert count(engine, RawBody.__table__) == 1


@pytest.mark.parametrize("table, message", [
    ("events_days = 90", "events are what counters, tiers and the report are computed from"),
    ("raw_bodies_days = 0", "raw_bodies_days must be a whole number of days, 1 or more"),
    ("reminders_days = 1.5", "reminders_days must be a whole number of days"),
    ("reminders_days = 1\n\n[reminders]\nmax_age_hours = 48", "must be longer than [reminders] max_age_hours"),
    ("bodies_days = 3", "does not know bodies_days"),
])
def test_a_retention_the_store_cannot_keep_right_stops_start_up(env, monkeypatch, tmp_path, table, message):
    configure(monkeypatch, tmp_path, f"[retention]\n{table}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Context.from_env()


def test_cron_applies_retention_every_day():
    rq_cron._job_data_registry.clear()
    importlib.reload(cron_config)
    jobs = {job["name"]: job for job in rq_cron._job_data_registry}
    rq_cron._job_data_registry.clear()
    assert jobs["apply-retention"]["cron"] == "40 3 * * *"
