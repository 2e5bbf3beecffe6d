"""Retention's deletes, in the caller's write transaction: archived bodies received before an
instant, and follow-ups closed before one, with their actions and deliveries."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from store import followups
from store.models import RawBody, Reminder

raw_bodies, reminders = RawBody.__table__, Reminder.__table__
CHUNK = 5_000  # rows a transaction deletes at most: short transactions, so ingestion never waits long


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
