"""Retention on a store holding data older and newer than each limit: what is past its limit
goes, the rest and every counter and tier stay."""

from __future__ import annotations

import importlib
import json

import pytest
from rq import cron as rq_cron
from sqlalchemy import func, select, update

from scoring.events import iso
from store.models import Customer, EventRow, RawBody, Reminder, ReminderAction, ReminderDelivery, RetiredActivity
from tests.conftest import FIXTURES, reread_environment
from tests.workers.test_erasure import kept_counts, past_report
from tests.workers.test_ingest import (
    SCENARIO, body_with, hand_off_all, no_batch_failed, snapshot, snapshot_of_ordered_arrival,
)
from tests.workers.test_tiers import process, set_now
from workers import cron_config
from workers.context import Context, installed
from workers.rebuild import rebuild
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

    assert apply_retention(installed()) == {"raw_bodies": 1, "events": 0, "reminders": 1}

    with engine.connect() as connection:
        kept = connection.execute(select(bodies.c.received_at).order_by(bodies.c.id)).scalars().all()
        left = connection.execute(select(follow_ups.c.id).order_by(follow_ups.c.id)).scalars().all()
    assert kept == [(NOW - 29 * DAY) * 1000, (NOW - DAY) * 1000]
    assert left == ["r1", "r2"]  # closed 59 days ago, and open however old
    assert count(engine, ReminderDelivery.__table__) == count(engine, ReminderAction.__table__) == 2
    assert cards(engine) == before
    assert apply_retention(installed()) == {"raw_bodies": 0, "events": 0, "reminders": 0}  # nothing more is due


def test_without_retention_nothing_is_deleted(redis, engine, drain, monkeypatch, tmp_path):
    configure(monkeypatch, tmp_path, "")
    set_now(monkeypatch, NOW + 1000 * DAY)
    process(redis, drain, [(FIXTURES / "cloudapi" / "messages__text.json").read_bytes()])
    assert apply_retention(installed()) == {"raw_bodies": 0, "events": 0, "reminders": 0}
    assert count(engine, RawBody.__table__) == 1


@pytest.mark.parametrize("table, message", [
    ("events_days = 7", "events_days must be 14 or more"),
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


# ---- events: deleted once their fold is kept as the customer's floor ---------------------------

THROUGH = 1_794_100_000  # the middle of the two-week timeline: events at or before it go
EVENTS_NOW = THROUGH + 1 + 14 * DAY  # with events_days = 14
EVENTS = "[retention]\nevents_days = 14\n"
BRAZIL = "5511987654321"


def events_at_or_before(engine, at: int) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(EventRow.__table__)
                                  .where(EventRow.__table__.c.at <= at)).scalar_one()


def floors(engine) -> dict[str, dict]:
    with engine.connect() as connection:
        return dict(connection.execute(select(Customer.key, Customer.floor).where(Customer.floor.is_not(None))).all())


def read_moved_past_the_limit(bodies: list[bytes]) -> tuple[list[bytes], bytes]:
    """The timeline without Brazil's first read status, and that status moved to after THROUGH,
    for a message of ours sent before it: a refold after the floor must find the message as the
    deleted events left it (delivered, not read)."""
    for index, body in enumerate(bodies):
        statuses = json.loads(body)["entry"][0]["changes"][0]["value"].get("statuses", [])
        if [(status.get("recipient_id"), status["status"]) for status in statuses] == [(BRAZIL, "read")]:
            moved = {**statuses[0], "timestamp": str(THROUGH + 3 * DAY)}
            return bodies[:index] + bodies[index + 1:], body_with("statuses", moved)
    raise AssertionError("the timeline has no read status for Brazil")


def test_events_past_the_limit_go_and_later_refolds_start_from_their_floor_exactly(
        redis, engine, drain, monkeypatch, tmp_path, caplog):
    """The two-week timeline with its first half retired. Counters, tiers and tier history stay
    as they were; late bodies afterwards (a message and a status older than the customer's
    checkpoint, a read of a message sent before the limit) refold from the floor and end exactly
    as the whole timeline arriving in order into a store that kept everything."""
    bodies, moved = read_moved_past_the_limit(SCENARIO.read_bytes().splitlines())
    late = [bodies[27], bodies[34], moved]  # a message of Spain's and a read of Brazil's, after the limit
    configure(monkeypatch, tmp_path, EVENTS)
    set_now(monkeypatch, EVENTS_NOW)
    process(redis, drain, [body for body in bodies if body not in late])
    before = snapshot(engine)

    assert apply_retention(installed())["events"] == events_at_or_before_count(bodies)
    assert THROUGH < min(map(first_instant, late))
    assert events_at_or_before(engine, THROUGH) == 0
    assert set(floors(engine)) == {"34655123456", BRAZIL, "33687654321"}  # the customers with events that old
    assert all(floor["through"] == THROUGH for floor in floors(engine).values())
    assert snapshot(engine) == before

    for body in late:
        hand_off_all(redis, [body])
        drain()
    assert no_batch_failed(caplog)
    assert snapshot(engine) == snapshot_of_ordered_arrival(redis, drain, tmp_path, monkeypatch, bodies + [moved])


def events_at_or_before_count(bodies: list[bytes]) -> int:
    """Events at or before THROUGH in the timeline, counted from the bodies: each message once
    (one is delivered twice), each status of a message once."""
    found = set()
    for body in map(json.loads, bodies):
        value = body["entry"][0]["changes"][0]["value"]
        found |= {(item["id"], item.get("status")) for item in value.get("messages", []) + value.get("statuses", [])
                  if int(item["timestamp"]) <= THROUGH}
    return len(found)


def first_instant(body: bytes) -> int:
    value = json.loads(body)["entry"][0]["changes"][0]["value"]
    return min(int(item["timestamp"]) for item in value.get("messages", []) + value.get("statuses", []))


def test_the_report_for_a_retired_period_keeps_its_day_counts(redis, engine, drain, monkeypatch, tmp_path):
    configure(monkeypatch, tmp_path, EVENTS)
    set_now(monkeypatch, EVENTS_NOW)
    process(redis, drain, SCENARIO.read_bytes().splitlines())
    report = past_report(engine)
    apply_retention(installed())
    assert events_at_or_before(engine, THROUGH) == 0
    assert kept_counts(past_report(engine)) == kept_counts(report)
    apply_retention(installed())  # again: nothing counted twice
    assert kept_counts(past_report(engine)) == kept_counts(report)


def message(who: str, message_id: str, at: int, text: str = "hello") -> bytes:
    return body_with("messages", {"from": who, "id": message_id, "timestamp": str(at), "type": "text",
                                  "text": {"body": text}})


def test_two_records_with_floors_merged_later_keep_every_count(redis, engine, drain, monkeypatch, tmp_path):
    """A number and the number it changed to both have floors when the change arrives (late,
    itself older than the floors): the records are joined, and the merged customer counts every
    message of both."""
    change = json.loads((FIXTURES / "cloudapi" / "messages__system__user_changed_number.json").read_bytes())
    system = change["entry"][0]["changes"][0]["value"]["messages"][0]
    old, new = system["from"], system["system"]["wa_id"]
    system["timestamp"] = str(THROUGH - 2 * DAY)
    configure(monkeypatch, tmp_path, EVENTS)
    set_now(monkeypatch, EVENTS_NOW)
    process(redis, drain, [message(old, "wamid.o1", THROUGH - 5 * DAY, "what is the price?"),
                           message(new, "wamid.n1", THROUGH - DAY)])
    apply_retention(installed())
    assert set(floors(engine)) == {old, new}
    process(redis, drain, [json.dumps(change).encode()])
    process(redis, drain, [message(new, "wamid.n2", THROUGH + DAY)])

    views = snapshot(engine)
    assert len(views) == 1
    counters = views[0]["counters"]
    assert counters["inbound"] == 3 and counters["active_days"] == 3
    assert views[0]["signals"] == {"price_inquiry": 1, "question": 1}
    assert views[0]["wa_id"] == new and views[0]["key"] == old
    assert views[0]["last_inbound_at"] == iso(THROUGH + DAY)
    assert events_at_or_before(engine, THROUGH) == 0  # the late change joins them, but is past retention itself
    apply_retention(installed())
    assert events_at_or_before(engine, THROUGH) == 0 and snapshot(engine) == views


@pytest.mark.parametrize("path", ["forward", "refold"])
def test_an_event_at_or_before_the_floor_that_arrives_later_is_past_retention(path, redis, engine, drain, monkeypatch,
                                                                            tmp_path):
    """A retired event delivered again (a replay of an old recording), or one never seen that is
    as old (newer than the customer's last event: the forward path; or older: a refold), is
    neither stored nor counted: the floor's counts are final, and none is counted twice."""
    who = "34600000002"
    configure(monkeypatch, tmp_path, EVENTS)
    set_now(monkeypatch, EVENTS_NOW)
    retired = message(who, "wamid.a", THROUGH - 3 * DAY)
    process(redis, drain, [message(who, "wamid.first", THROUGH - 6 * DAY), retired]
            + ([message(who, "wamid.b", THROUGH + DAY)] if path == "refold" else []))
    apply_retention(installed())
    view = snapshot(engine)[0]
    process(redis, drain, [retired])  # the same body again
    process(redis, drain, [message(who, "wamid.new-but-old", THROUGH - DAY)])  # forward: after wamid.a
    process(redis, drain, [message(who, "wamid.older", THROUGH - 10 * DAY)])
    assert snapshot(engine)[0] == view and events_at_or_before(engine, THROUGH) == 0
    process(redis, drain, [message(who, "wamid.c", THROUGH + 3 * DAY), message(who, "wamid.d", THROUGH + 2 * DAY)])
    assert snapshot(engine)[0]["counters"]["inbound"] == view["counters"]["inbound"] + 2
    apply_retention(installed())
    with engine.connect() as connection:
        retired_messages = connection.execute(select(func.sum(RetiredActivity.messages))).scalar_one()
    assert retired_messages == 2  # wamid.first and wamid.a, once each


def test_events_of_no_customer_are_retired_too(redis, engine, drain, monkeypatch, tmp_path):
    """Errors about a business number belong to no customer: among the oldest events they stop
    nothing, and go like the rest."""
    configure(monkeypatch, tmp_path, EVENTS)
    set_now(monkeypatch, THROUGH - 5 * DAY)
    throughput = (FIXTURES / "cloudapi" / "messages__errors__throughput_130429.json").read_bytes()
    process(redis, drain, [throughput, message("34600000004", "wamid.a", THROUGH - 4 * DAY),
                           message("34600000004", "wamid.b", THROUGH + DAY)])
    events = EventRow.__table__
    with engine.begin() as connection:  # an error is dated when it arrived: this one arrived long ago
        connection.execute(update(events).where(events.c.customer_id.is_(None)).values(at=THROUGH - 5 * DAY))
    set_now(monkeypatch, EVENTS_NOW)
    assert apply_retention(installed())["events"] == 2
    assert events_at_or_before(engine, THROUGH) == 0


def test_rebuild_is_refused_once_events_were_retired_and_changes_nothing(redis, engine, drain, monkeypatch, tmp_path):
    configure(monkeypatch, tmp_path, EVENTS)
    set_now(monkeypatch, EVENTS_NOW)
    process(redis, drain, SCENARIO.read_bytes().splitlines())
    apply_retention(installed())
    before = snapshot(engine)
    with pytest.raises(ConfigError, match="cannot re-derive customers whose old events"):
        rebuild(installed())
    assert snapshot(engine) == before
