"""Batches read and planned side by side, written one after the other: what the second writer does
with what the first changed since it read."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, update

import store.batch
from scoring.tiers import TierRules
from store.batch import Delivery, commit, prepare
from store.db import StaleSnapshot, read_snapshot, write_transaction
from store.models import Customer, EventRow
from tests.conftest import FIXTURES
from workers import inbox
from workers.ingest import _delivery
from workers.settings import Settings

RULES = TierRules()
MATCHER = Settings().signal_matcher
T0 = 1_794_328_383
TEMPLATE = json.loads((FIXTURES / "cloudapi" / "messages__text.json").read_bytes())


def body(entry_id: str, *messages: tuple[str, str, int]) -> Delivery:
    """An inbox delivery of text messages (sender's number, message id, instant)."""
    value = json.loads(json.dumps(TEMPLATE))
    change = value["entry"][0]["changes"][0]["value"]
    change["contacts"] = [{"profile": {"name": f"Buyer {wa_id[-2:]}"}, "wa_id": wa_id} for wa_id, _, _ in messages]
    change["messages"] = [{"from": wa_id, "id": message_id, "timestamp": str(at), "type": "text",
                           "text": {"body": "How much is it?"}} for wa_id, message_id, at in messages]
    return _delivery(MATCHER, entry_id, {b"b": json.dumps(value).encode(), b"v": inbox.VALID})


def from_bsuid(entry_id: str, message_id: str, at: int, user_id: str, wa_id: str | None = None) -> Delivery:
    """A text message from a BSUID, with a number or without one."""
    value = json.loads(json.dumps(TEMPLATE))
    change = value["entry"][0]["changes"][0]["value"]
    change["contacts"] = [{"profile": {"name": "Buyer"}, "user_id": user_id, **({"wa_id": wa_id} if wa_id else {})}]
    change["messages"] = [{**({"from": wa_id} if wa_id else {}), "from_user_id": user_id, "id": message_id,
                           "timestamp": str(at), "type": "text", "text": {"body": "Any news?"}}]
    return _delivery(MATCHER, entry_id, {b"b": json.dumps(value).encode(), b"v": inbox.VALID})


def read_then_write(engine, *batches: list[Delivery]):
    """Prepare every batch first (none sees the others), then commit them in order."""
    prepared = []
    for deliveries in batches:
        with read_snapshot(engine) as connection:
            prepared.append(prepare(connection, deliveries, RULES, None))
    results = []
    for batch in prepared:
        with write_transaction(engine) as connection:
            results.append(commit(connection, batch, RULES, None))
    return prepared, results


def inbound_by_number(engine) -> dict[str, int]:
    """Each customer's inbound messages, by key."""
    with engine.connect() as connection:
        return dict(connection.execute(select(Customer.key, Customer.interactions)).all())


def test_a_batch_meeting_a_new_person_another_batch_created_meanwhile_joins_them_and_keeps_its_other_plans(engine):
    first = [body("1794328383000-0", ("34600000001", "wamid.a1", T0))]
    second = [body("1794328383001-0", ("34600000001", "wamid.b1", T0 + 10), ("34600000002", "wamid.b2", T0 + 20))]
    with read_snapshot(engine) as connection:
        prepared_first = prepare(connection, first, RULES, None)
        prepared_second = prepare(connection, second, RULES, None)
    planned_for_the_other = prepared_second.plans[-2]  # 34600000002, the second person it met
    with write_transaction(engine) as connection:
        commit(connection, prepared_first, RULES, None)
    with write_transaction(engine) as connection:
        result = commit(connection, prepared_second, RULES, None)
    assert inbound_by_number(engine) == {"34600000001": 2, "34600000002": 1}
    assert result.events == 2 and len(result.customers) == 2
    assert prepared_second.plans[-1] is planned_for_the_other  # still new, planned once


def test_a_customer_another_batch_wrote_meanwhile_is_planned_again_from_what_it_wrote(engine):
    read_then_write(engine, [body("1794328383000-0", ("34600000001", "wamid.a0", T0))])
    later = [body("1794328383001-0", ("34600000001", "wamid.a1", T0 + 10))]
    latest = [body("1794328383002-0", ("34600000001", "wamid.a2", T0 + 20))]
    read_then_write(engine, later, latest)  # both read one revision; the second plans again from the next
    assert inbound_by_number(engine) == {"34600000001": 3}


def test_a_write_landing_between_the_check_and_the_write_fails_the_batch_and_changes_nothing(engine, monkeypatch):
    read_then_write(engine, [body("1794328383000-0", ("34600000001", "wamid.a0", T0))])
    with read_snapshot(engine) as connection:
        prepared = prepare(connection, [body("1794328383001-0", ("34600000001", "wamid.a1", T0 + 10))], RULES, None)
    with write_transaction(engine) as connection:  # another batch, after this one's check
        connection.execute(update(Customer).values(revision=Customer.revision + 1))
    monkeypatch.setattr(store.batch, "_current_revisions", lambda connection, read: dict(read))  # the check saw nothing
    with pytest.raises(StaleSnapshot), write_transaction(engine) as connection:
        commit(connection, prepared, RULES, None)
    assert inbound_by_number(engine) == {"34600000001": 1}
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(EventRow)).scalar_one() == 1


def test_a_batch_whose_customer_was_merged_away_and_whose_id_went_to_someone_new_finds_the_merged_customer(engine):
    """SQLite gives a deleted highest id to the next customer: the batch must not write its plan
    for the person merged away onto the new person who took the id."""
    read_then_write(engine, [body("1794328383000-0", ("34600000001", "wamid.p", T0))],
                    [from_bsuid("1794328383001-0", "wamid.q", T0 + 1, "ES.4242")])
    with read_snapshot(engine) as connection:  # about the BSUID's customer, the newest
        late = prepare(connection, [from_bsuid("1794328383002-0", "wamid.q2", T0 + 2, "ES.4242")], RULES, None)
    read_then_write(engine, [from_bsuid("1794328383003-0", "wamid.pq", T0 + 3, "ES.4242", wa_id="34600000001")],
                    [body("1794328383004-0", ("34600000003", "wamid.r", T0 + 4))])  # a merge, then someone new
    with write_transaction(engine) as connection:
        commit(connection, late, RULES, None)
    assert inbound_by_number(engine) == {"34600000001": 4, "34600000003": 1}
