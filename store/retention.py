"""Retention's reads and deletes, in the caller's write transaction: archived bodies received
before an instant, follow-ups closed before one (with their actions and deliveries), and events
at or before one (with the floors that keep what they made, and the report's day counts)."""

from __future__ import annotations

import msgspec
from sqlalchemy import Connection, Text, cast, delete, null, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from scoring.events import Event, EventKind
from scoring.tiers import Floor
from store import followups
from store.db import execute_many, in_chunks, json_text
from store.models import Customer, EventRow, RawBody, Reminder, RetiredActivity

raw_bodies, reminders, events, customers = RawBody.__table__, Reminder.__table__, EventRow.__table__, Customer.__table__
retired_activity = RetiredActivity.__table__
CHUNK = 900  # rows a transaction deletes at most (ids in one IN list): short transactions, ingestion never waits long
CUSTOMERS = 200  # customers whose old events one transaction retires


def delete_bodies_before(connection: Connection, received_before_ms: int) -> int:
    """Up to CHUNK archived bodies received before the instant (Unix ms); returns how many."""
    oldest = select(raw_bodies.c.id).where(raw_bodies.c.received_at < received_before_ms).limit(CHUNK)
    ids = list(connection.execute(oldest).scalars())
    if ids:
        connection.execute(delete(raw_bodies).where(raw_bodies.c.id.in_(ids)))
    return len(ids)


def delete_follow_ups_closed_before(connection: Connection, closed_before: int) -> int:
    """Up to CHUNK follow-ups closed before the instant, with their actions and deliveries;
    open and snoozed ones stay however old. Returns how many."""
    pairs = [tuple(pair) for pair in connection.execute(
        select(reminders.c.id, reminders.c.rep).where(reminders.c.closed_at < closed_before).limit(CHUNK))]
    followups.delete_with_history(connection, pairs)
    return len(pairs)


def customers_with_events_through(connection: Connection, through: int) -> list[int]:
    """Up to CUSTOMERS customers with events at or before the instant (the oldest events first),
    locked against a batch writing them meanwhile, in id order (as batches lock them)."""
    found: list[int] = []
    oldest = (select(events.c.customer_id).where(events.c.at <= through, events.c.customer_id.is_not(None))
              .order_by(events.c.at).limit(CHUNK))
    for customer_id in connection.execute(oldest).scalars():
        if customer_id not in found:
            found.append(customer_id)
    ids = sorted(found[:CUSTOMERS])
    if ids and connection.dialect.name == "postgresql":
        connection.execute(select(customers.c.id).where(customers.c.id.in_(ids)).order_by(customers.c.id)
                           .with_for_update(key_share=True))  # FOR NO KEY UPDATE: batches' event inserts go on
    return ids


def customer_rows(connection: Connection, customer_ids: list[int]) -> list:
    """Their id, owner, floor and checkpoint."""
    return connection.execute(select(customers.c.id, customers.c.owner, customers.c.floor, customers.c.checkpoint)
                              .where(customers.c.id.in_(customer_ids)).order_by(customers.c.id)).all()


def events_through(connection: Connection, customer_ids: list[int], through: int) -> dict[int, list[Event]]:
    """Their stored events at or before `through`, by customer, in one read."""
    found: dict[int, list[Event]] = {customer_id: [] for customer_id in customer_ids}
    for row in connection.execute(select(events.c.customer_id, events.c.key, events.c.kind, events.c.type, events.c.at,
                                         events.c.phone_number_id, events.c.data)
                                  .where(events.c.customer_id.in_(customer_ids), events.c.at <= through)):
        found[row.customer_id].append(Event.from_record(row.key, row.kind, row.type, row.at, row.phone_number_id,
                                                        row.data))
    return found


def messages_where(connection: Connection, *conditions) -> list[tuple[int, int, list[str], str | None]]:
    """Customers' messages as the report counts them: (customer id, instant, signals, business number)."""
    rows = connection.execute(select(events.c.customer_id, events.c.at, cast(events.c.data["sig"], Text),
                                     events.c.phone_number_id)
                              .where(events.c.kind == EventKind.MESSAGE.value, *conditions))
    return [(customer_id, at, _signals(signals), number) for customer_id, at, signals, number in rows]


def _signals(encoded: str | None) -> list[str]:
    return msgspec.json.decode(encoded) if encoded and encoded != "null" else []


def retire_events(connection: Connection, floors: dict[int, Floor], checkpoints_before: list[int], through: int) -> int:
    """Store each customer's floor, drop the checkpoints of `checkpoints_before` (they lie below
    the floor, and a refold from one would need deleted events), move their revisions on (a batch
    that read them before plans them again) and delete their events at or before `through`.
    Returns how many events went."""
    execute_many(connection, customers, "UPDATE {table} SET {sets}, revision = revision + 1 WHERE id = {key}",
                 ["floor", "floor_through"],
                 [(json_text(floor.to_json()), floor.through, customer_id)
                  for customer_id, floor in sorted(floors.items())])
    for chunk in in_chunks(sorted(checkpoints_before)):
        connection.execute(update(customers).where(customers.c.id.in_(chunk)).values(checkpoint=null()))
    deleted = 0
    for chunk in in_chunks(sorted(floors)):
        deleted += connection.execute(delete(events).where(events.c.customer_id.in_(chunk),
                                                           events.c.at <= through)).rowcount
    return deleted


def delete_events_of_no_customer(connection: Connection, through: int) -> int:
    """Up to CHUNK events at or before the instant that belong to no customer (errors about a
    business number, history back-fill progress); returns how many."""
    oldest = select(events.c.id).where(events.c.at <= through, events.c.customer_id.is_(None)).limit(CHUNK)
    ids = list(connection.execute(oldest).scalars())
    if ids:
        connection.execute(delete(events).where(events.c.id.in_(ids)))
    return len(ids)


def keep_day_counts(connection: Connection, counts: dict[tuple[int, str, str, str, str], int]) -> None:
    """Add to the day counts deleted events leave the report (keyed as `RetiredActivity`'s columns)."""
    if not counts:
        return
    insert = postgres_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(retired_activity)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "phone_number_id", "owner", "direction", "kind"],
        set_={"messages": retired_activity.c.messages + statement.excluded.messages})
    connection.execute(statement, [
        {"day": day, "phone_number_id": number, "owner": owner, "direction": direction, "kind": kind, "messages": n}
        for (day, number, owner, direction, kind), n in sorted(counts.items())
    ])
