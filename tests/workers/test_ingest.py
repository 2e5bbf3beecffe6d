"""Bodies through the real HTTP endpoint, Redis and RQ worker into the real databases."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import workers.ingest
from scoring.figures import FigureRules
from scoring.tiers import REORDER_WINDOW_S
from store import db, queries
from store.models import Customer, CustomerAlias, EventRow, RawBody
from tests.cloudapi.expected_fixtures import CUSTOMER_COUNTRY, EXPECTED
from tests.conftest import FIXTURES, post_signed, reread_environment
from workers import inbox

BODIES = sorted((FIXTURES / "cloudapi").glob("*.json"))
SCENARIO = FIXTURES / "scenarios" / "messages__timeline__two_weeks.jsonl"
VIEW_NOW = 1_795_000_000  # figures are shown as of this instant (2026-11-18), whatever the real clock


def stored_events(engine) -> list[tuple]:
    """(kind, type, every alias of the event's customer) for each stored event, in insertion order."""
    events, aliases = EventRow.__table__, CustomerAlias.__table__
    with engine.connect() as connection:
        owners: dict[int, set[str]] = {}
        for alias in connection.execute(select(aliases)):
            owners.setdefault(alias.customer_id, set()).add(alias.value)
        rows = connection.execute(select(events).order_by(events.c.id)).all()
    return [(row.kind, row.type, owners.get(row.customer_id, set())) for row in rows]


def snapshot(engine) -> list[dict]:
    """Every customer's card, tier history included, as of one fixed instant."""
    keys = sorted(view["key"] for view in queries.list_customers(engine, VIEW_NOW, FigureRules()))
    return [queries.find_customer(engine, key, VIEW_NOW, FigureRules()) for key in keys]


@pytest.mark.parametrize("path", BODIES, ids=lambda path: path.stem)
def test_every_fixture_through_http_and_the_worker_is_stored_once_under_the_right_customer(
    path, web_server, engine, drain
):
    assert post_signed(web_server, path.read_bytes()).status_code == 200
    drain()
    expected = EXPECTED[path.stem]
    stored = stored_events(engine)
    assert sorted((kind, type_) for kind, type_, _ in stored) == sorted((kind, type_) for kind, type_, _ in expected)
    for kind, type_, customer in expected:
        owners = [aliases for k, t, aliases in stored if (k, t) == (kind, type_)]
        if customer is None:
            assert set() in owners
        else:
            assert any(customer in aliases for aliases in owners), (kind, type_, customer)
    with engine.connect() as connection:
        assert connection.execute(select(RawBody.__table__.c.body)).scalar_one() == path.read_bytes()
        for row in connection.execute(select(Customer.__table__)):
            if row.wa_id in CUSTOMER_COUNTRY or row.user_id in CUSTOMER_COUNTRY:
                assert row.country == CUSTOMER_COUNTRY.get(row.wa_id) or CUSTOMER_COUNTRY.get(row.user_id)
                assert row.timezone


def hand_off_all(redis, bodies: list[bytes]) -> None:
    hand_off = inbox.HandOff(redis)
    for body in bodies:
        hand_off(body)


def all_bodies() -> list[bytes]:
    return [path.read_bytes() for path in BODIES] + SCENARIO.read_bytes().splitlines()


def no_batch_failed(caplog) -> bool:
    """A batch that failed and was committed body by body would hide a bug behind the right state."""
    return not [record for record in caplog.records if "failed" in record.getMessage()]


def test_redelivering_every_body_three_times_in_shuffled_order_gives_the_same_state(redis, engine, drain, caplog):
    bodies = all_bodies()
    hand_off_all(redis, bodies)
    drain()
    once = snapshot(engine)
    with engine.connect() as connection:
        events_once = connection.execute(select(EventRow.__table__.c.key)).scalars().all()
    shuffled = bodies * 3
    random.Random(20261122).shuffle(shuffled)
    hand_off_all(redis, shuffled)
    drain()
    assert snapshot(engine) == once
    assert no_batch_failed(caplog)
    with engine.connect() as connection:
        assert sorted(connection.execute(select(EventRow.__table__.c.key)).scalars()) == sorted(events_once)


def test_shuffled_arrival_gives_the_same_state_as_ordered_arrival(redis, engine, drain, tmp_path, monkeypatch, caplog):
    bodies = all_bodies()
    shuffled = bodies[:]
    random.Random(3).shuffle(shuffled)
    for batch in (shuffled[i : i + 7] for i in range(0, len(shuffled), 7)):  # many small batches
        hand_off_all(redis, batch)
        drain()
    assert snapshot(engine) == snapshot_of_ordered_arrival(redis, drain, tmp_path, monkeypatch, bodies)
    assert no_batch_failed(caplog)


def snapshot_of_ordered_arrival(redis, drain, tmp_path, monkeypatch, bodies: list[bytes]) -> list[dict]:
    """The snapshot of `bodies` arriving in one batch, in order, in a fresh SQLite database."""
    fresh = f"sqlite:///{tmp_path / 'ordered.db'}"
    db.upgrade(fresh)
    monkeypatch.setenv("DATABASE_URL", fresh)
    reread_environment()
    hand_off_all(redis, bodies)
    drain()
    return snapshot(db.engine_for(fresh))


def test_late_bodies_refold_from_the_checkpoint_or_whole_and_end_as_ordered_arrival(
    redis, engine, drain, tmp_path, monkeypatch, caplog
):
    """Neighbours swapped (late by minutes: refolded from the checkpoint) and the first body last
    (late by weeks: refolded whole), one body per batch, end as arrival in order does."""
    bodies = SCENARIO.read_bytes().splitlines()
    late = bodies[1:]
    for i in range(0, len(late) - 1, 2):
        late[i], late[i + 1] = late[i + 1], late[i]
    for body in late + bodies[:1]:
        hand_off_all(redis, [body])
        drain()
    customers = Customer.__table__
    with engine.connect() as connection:
        checkpoint = connection.execute(select(customers.c.checkpoint).where(customers.c.wa_id == "34655123456")).scalar_one()
    assert checkpoint is not None and checkpoint["through"] > 1_793_607_247
    assert snapshot(engine) == snapshot_of_ordered_arrival(redis, drain, tmp_path, monkeypatch, bodies)
    assert no_batch_failed(caplog)


def body_with(field: str, update: dict) -> bytes:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}, field: [update]}
    if field == "messages":
        value["contacts"] = [{"profile": {"name": "Ana"}, "wa_id": update["from"]}]
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}).encode()


def test_a_late_status_of_a_message_sent_before_the_checkpoint_counts_once(redis, engine, drain, tmp_path, monkeypatch):
    """Our message was sent before the checkpoint and delivered after it. The late read refolds the
    customer whole and leaves a checkpoint; the later delivered status refolds from there, with
    the message as it stood at the checkpoint (sent)."""
    t0, who = 1_793_600_000, "34600000001"
    text = lambda n, at: body_with("messages", {"from": who, "id": f"wamid.in{n}", "timestamp": str(at), "type": "text",
                                                "text": {"body": "hello"}})
    status = lambda value, at: body_with("statuses", {"id": "wamid.out1", "status": value, "timestamp": str(at),
                                                      "recipient_id": who})
    newest = t0 + 10 * 3600
    in_order = [text(1, t0), status("sent", t0 + 60), status("delivered", newest - REORDER_WINDOW_S // 3),
                status("read", newest - REORDER_WINDOW_S // 4), text(2, newest)]
    for body in [in_order[n] for n in (0, 1, 4, 3, 2)]:
        hand_off_all(redis, [body])
        drain()
    card = snapshot(engine)[0]
    assert (card["counters"]["outbound"], card["counters"]["delivered"], card["counters"]["read"]) == (1, 1, 1)
    assert snapshot(engine) == snapshot_of_ordered_arrival(redis, drain, tmp_path, monkeypatch, in_order)


def customer(engine, key: str) -> dict:
    view = queries.find_customer(engine, key, VIEW_NOW, FigureRules())
    assert view is not None, key
    return view


def test_the_two_week_timeline_adds_up(redis, engine, drain):
    hand_off_all(redis, SCENARIO.read_bytes().splitlines())
    drain()
    lines = [json.loads(line) for line in SCENARIO.read_bytes().splitlines()]
    inbound: dict[str, set[str]] = {}
    for body in lines:
        for entry in body["entry"]:
            for change in entry["changes"]:
                for message in change["value"].get("messages", []):
                    who = message.get("from") or message.get("from_user_id")
                    inbound.setdefault(who, set()).add(message["id"])
    for who, ids in inbound.items():
        view = customer(engine, who)
        assert view["counters"]["inbound"] == len(ids), who
        assert view["counters"]["active_days"] >= 1
    spain = next(view for view in snapshot(engine) if view["country"] == "ES")
    assert spain["orders"]["count"] == 1 and spain["orders"]["value"]
    assert spain["counters"]["replies"] >= 1 and spain["counters"]["read"] >= 1
    assert spain["signals"].get("question", 0) >= 1
    unreachable = [view for view in snapshot(engine) if view["unreachable"]]
    assert [view["country"] for view in unreachable] == ["FR"]
    bsuid_only = [view for view in snapshot(engine) if view["wa_id"] is None and view["user_id"]]
    assert bsuid_only and all(view["username"] for view in bsuid_only)


def test_statuses_out_of_order_end_in_the_right_state(redis, engine, drain):
    template = json.loads((FIXTURES / "cloudapi" / "messages__status-sent.json").read_bytes())
    status = template["entry"][0]["changes"][0]["value"]["statuses"][0]
    bodies = []
    for value, offset in (("read", 30), ("sent", 0), ("delivered", 10), ("read", 30), ("sent", 0)):
        body = json.loads(json.dumps(template))
        item = body["entry"][0]["changes"][0]["value"]["statuses"][0]
        item.update(status=value, timestamp=str(int(status["timestamp"]) + offset))
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    for body in bodies:  # one by one: each arrives in its own batch
        hand_off_all(redis, [body])
        drain()
    view = customer(engine, status["recipient_id"])
    counters = view["counters"]
    assert (counters["outbound"], counters["delivered"], counters["read"], counters["failed"]) == (1, 1, 1, 0)


def test_a_body_that_is_not_json_is_archived_as_a_dead_letter_and_changes_nothing(redis, engine, drain):
    inbox.hand_off(redis, b"{not json", valid_json=False)
    drain()
    with engine.connect() as connection:
        rows = connection.execute(select(RawBody.__table__)).all()
        assert [(row.body, row.valid_json) for row in rows] == [(b"{not json", False)]
        assert connection.execute(select(EventRow.__table__)).all() == []


@pytest.mark.parametrize("together", [False, True], ids=["one body a batch", "one batch"])
def test_number_and_bsuid_changes_keep_one_customer_with_all_counters(together, redis, engine, drain, caplog):
    change = json.loads((FIXTURES / "cloudapi" / "messages__system__user_changed_number.json").read_bytes())
    system = change["entry"][0]["changes"][0]["value"]["messages"][0]
    old, new = system["from"], system["system"]["wa_id"]
    text = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())

    def message_from(wa_id: str, message_id: str, at: int) -> bytes:
        body = json.loads(json.dumps(text))
        value = body["entry"][0]["changes"][0]["value"]
        value["contacts"] = [{"profile": {"name": "Changed Number"}, "wa_id": wa_id}]
        value["messages"][0].update({"from": wa_id, "id": message_id, "timestamp": str(at)})
        value["messages"][0].pop("from_user_id", None)
        return json.dumps(body, separators=(",", ":")).encode()

    at = int(system["timestamp"])
    bodies = [message_from(new, "wamid.after", at - 30), message_from(old, "wamid.before", at - 60),
              json.dumps(change, separators=(",", ":")).encode()]
    if together:  # the merge happens after the new number's message was resolved, in one batch
        hand_off_all(redis, [message_from(old, "wamid.first", at - 120)])
        drain()
        hand_off_all(redis, bodies)
        drain()
    else:  # the new number writes before we learn it is the same person
        for body in bodies:
            hand_off_all(redis, [body])
            drain()
    assert queries.dead_letters(engine) == []
    assert no_batch_failed(caplog)
    views = snapshot(engine)
    assert len(views) == 1
    assert views[0]["counters"]["inbound"] == 2 + together
    assert views[0]["wa_id"] == new and views[0]["key"] == old
    assert customer(engine, old) == customer(engine, new) == customer(engine, "+" + new)


def test_a_body_that_fails_processing_is_kept_as_a_dead_letter_and_blocks_nothing(redis, engine, drain, monkeypatch):
    real_prepare = workers.ingest.prepare

    def prepare_failing_on_poison(connection, deliveries, *rest):
        if any(b"POISON" in delivery.body and delivery.items for delivery in deliveries):
            raise ValueError("a bug met this body")
        return real_prepare(connection, deliveries, *rest)

    monkeypatch.setattr(workers.ingest, "prepare", prepare_failing_on_poison)
    poison = (FIXTURES / "cloudapi" / "messages__text.json").read_bytes().replace(b'"text":{"body":"', b'"text":{"body":"POISON ')
    good = [path.read_bytes() for path in BODIES[:20]]
    hand_off_all(redis, good[:10] + [poison] + good[10:])
    drain()
    assert inbox.backlog(redis) == 0
    letters = queries.dead_letters(engine)
    assert [letter["reason"] for letter in letters] == ["ValueError at test_ingest.py:" + letters[0]["reason"].rsplit(":", 1)[1]]
    with engine.connect() as connection:
        assert connection.execute(select(RawBody.__table__)).all().__len__() == 21
    assert sum(len(EXPECTED[path.stem]) for path in BODIES[:20]) == len(stored_events(engine))


def test_an_unavailable_database_leaves_the_bodies_waiting_instead_of_dead_lettering_them(redis, engine, drain, monkeypatch):
    def database_down(*args):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    real_commit = workers.ingest.commit
    monkeypatch.setattr(workers.ingest, "commit", database_down)
    hand_off_all(redis, [path.read_bytes() for path in BODIES[:3]])
    with pytest.raises(RuntimeError, match="a drain job failed.*OperationalError"):
        drain()
    assert inbox.backlog(redis) == 3
    monkeypatch.setattr(workers.ingest, "commit", real_commit)  # the database is back
    monkeypatch.setenv("WAPULSE_STALE_AFTER_MS", "0")
    reread_environment()
    drain()
    assert inbox.backlog(redis) == 0 and queries.dead_letters(engine) == []


@pytest.mark.parametrize("previous, current", [("US.9000000000000000001", "US.1000000000000000002"),
                                               ("US.1000000000000000002", "US.9000000000000000001")])
def test_after_a_bsuid_update_the_customer_shows_the_current_bsuid_however_the_two_sort(
    previous, current, redis, engine, drain
):
    """Both BSUIDs are first seen at the instant of the update: the one it names as current wins."""
    update = {"wa_id": "12195555358", "timestamp": "1795503670",
              "user_id": {"previous": previous, "current": current},
              "parent_user_id": {"previous": previous.replace("US.", "US.ENT."), "current": current.replace("US.", "US.ENT.")}}
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"}, "user_id_update": [update]}
    hand_off_all(redis, [json.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "102290129340398", "changes": [{"value": value, "field": "user_id_update"}]}]}).encode()])
    drain()
    view = customer(engine, previous)
    assert (view["key"], view["user_id"], view["parent_user_id"]) == ("12195555358", current, current.replace("US.", "US.ENT."))


def test_a_backlog_batch_about_hundreds_of_new_people_counts_everyone(redis, engine, drain):
    """A backlog's batch: one body naming hundreds of people none of whom is known yet."""
    template = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())
    value = template["entry"][0]["changes"][0]["value"]
    message = value["messages"][0]
    people = [f"3465520{n:04d}" for n in range(301)]
    value["contacts"] = [{"profile": {"name": f"Buyer {n}"}, "wa_id": wa_id} for n, wa_id in enumerate(people)]
    value["messages"] = [{**{k: v for k, v in message.items() if k != "from_user_id"}, "from": wa_id,
                          "id": f"wamid.backlog{n:04d}"} for n, wa_id in enumerate(people)]
    body = json.dumps(template).encode()
    hand_off_all(redis, [body])
    drain()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Customer.__table__)).scalar_one() == len(people)
        assert connection.execute(select(func.count()).select_from(EventRow.__table__)).scalar_one() == len(people)
    assert queries.dead_letters(engine) == []
