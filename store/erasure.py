"""Erasure's tables and SQL: what one customer left in the store, and deleting it.

The decisions (what a body keeps, what the report keeps) are `workers.erasure`'s; everything
here runs in the caller's write transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import Connection, delete, or_, select, text, update

from store import followups
from store.db import in_chunks
from store.models import (
    Customer, CustomerAlias, Erasure, EventRow, OutboundMessageRow, RawBody, Reminder, TierChangeRow,
)
from store.queries import customer_id_for
from store.retention import messages_where

customers, aliases, events, outbound = (
    Customer.__table__, CustomerAlias.__table__, EventRow.__table__, OutboundMessageRow.__table__,
)
raw_bodies, tier_changes, reminders = RawBody.__table__, TierChangeRow.__table__, Reminder.__table__
erasures = Erasure.__table__


@dataclass(frozen=True)
class Person:
    """What identifies a customer: their row, every identifier they have been seen with, and
    their name, all of which an erasure must find and remove."""

    id: int
    owner: str | None
    identifiers: frozenset[str]


@dataclass(frozen=True)
class Removed:
    events: int
    bodies_deleted: int
    bodies_redacted: int
    tier_changes: int
    reminders: int


def person(connection: Connection, key_or_alias: str) -> Person | None:
    """A customer by key or by any identifier they have had (wa_id with or without +, BSUID,
    username), locked against a batch writing them meanwhile."""
    customer_id = customer_id_for(connection, key_or_alias)
    if customer_id is None:
        return None
    row = connection.execute(select(customers.c.key, customers.c.owner, customers.c.username)
                             .where(customers.c.id == customer_id).with_for_update()).one()
    values = set(connection.execute(select(aliases.c.value).where(aliases.c.customer_id == customer_id)).scalars())
    values |= {f"+{value}" for value in values if value.isdigit()} | {row.key}
    if row.username:  # an alias only when nothing stronger came with it, but theirs all the same
        values.add(row.username)
    return Person(customer_id, row.owner, frozenset(values))


def messages_of(connection: Connection, customer_id: int) -> list[tuple[int, list[str], str | None]]:
    """Their messages as the report counts them: (instant, signals, business number)."""
    return [(at, signals, number) for _, at, signals, number in messages_where(connection, events.c.customer_id == customer_id)]


def sent_to(connection: Connection, customer_id: int) -> list[tuple[int, str | None]]:
    """Our messages to them: (instant, business number)."""
    return list(connection.execute(select(outbound.c.at, outbound.c.phone_number_id)
                                   .where(outbound.c.customer_id == customer_id)))


def bodies_naming(connection: Connection, who: Person, searched: Iterable[str]) -> list:
    """Archived bodies that hold their events, and any other that contains one of the `searched`
    identifiers byte for byte (a redelivery whose events were already known, a dead letter):
    a scan of the archive, which an erasure may afford."""
    holding = select(events.c.raw_body_id).where(events.c.customer_id == who.id, events.c.raw_body_id.is_not(None))
    postgres = connection.dialect.name == "postgresql"
    needles = {f"n{i}": identifier.encode() for i, identifier in enumerate(sorted(searched))}
    contains = [text(f"position(:{name} in body) > 0" if postgres else f"instr(body, :{name}) > 0")
                .bindparams(**{name: value}) for name, value in needles.items()]
    query = select(raw_bodies.c.id, raw_bodies.c.body, raw_bodies.c.valid_json).where(
        or_(raw_bodies.c.id.in_(holding), *contains)).order_by(raw_bodies.c.id)
    return connection.execute(query).all()


def remove(connection: Connection, who: Person, bodies: dict[int, bytes | None]) -> Removed:
    """Delete every row about them; of the archived `bodies`, delete those mapped to None and
    replace the others' bytes."""
    their_reminders = select(reminders.c.id, reminders.c.rep).where(reminders.c.customer_id == who.id)
    pairs = [tuple(pair) for pair in connection.execute(their_reminders)]
    followups.delete_with_history(connection, pairs)
    changes = connection.execute(delete(tier_changes).where(tier_changes.c.customer_id == who.id)).rowcount
    connection.execute(delete(outbound).where(outbound.c.customer_id == who.id))
    removed_events = connection.execute(delete(events).where(events.c.customer_id == who.id)).rowcount
    connection.execute(delete(aliases).where(aliases.c.customer_id == who.id))
    connection.execute(delete(customers).where(customers.c.id == who.id))
    gone = [body_id for body_id, body in bodies.items() if body is None]
    for chunk in in_chunks(gone):
        connection.execute(delete(raw_bodies).where(raw_bodies.c.id.in_(chunk)))
    for body_id, body in bodies.items():
        if body is not None:
            connection.execute(update(raw_bodies).where(raw_bodies.c.id == body_id)
                               .values(body=body, sha256=hashlib.sha256(body).hexdigest()))
    return Removed(removed_events, len(gone), len(bodies) - len(gone), changes, len(pairs))


def any_erased(connection: Connection) -> bool:
    return connection.execute(select(erasures.c.id).limit(1)).first() is not None


def erased_at(connection: Connection, hashes: Iterable[str]) -> dict[str, int]:
    """When each of these identifier hashes was last erased, for those in the log."""
    found: dict[str, int] = {}
    for chunk in in_chunks(sorted(set(hashes))):
        for value, at in connection.execute(select(erasures.c.identifier_hash, erasures.c.erased_at)
                                            .where(erasures.c.identifier_hash.in_(chunk))):
            found[value] = max(at, found.get(value, at))
    return found


def log(connection: Connection, hashes: Iterable[str], now: int) -> None:
    connection.execute(erasures.insert(), [{"identifier_hash": value, "erased_at": now} for value in sorted(hashes)])
