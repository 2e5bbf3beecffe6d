"""Reading what the report needs from the store, in a few set-wise queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from report.figures import Activity, Message, Period, Person, Sent, READ
from scoring.events import EventKind
from store.models import Customer, EventRow, OutboundMessageRow, RawBody, TierChangeRow

customers, events, outbound, tier_changes, raw_bodies = (
    Customer.__table__, EventRow.__table__, OutboundMessageRow.__table__, TierChangeRow.__table__, RawBody.__table__,
)
EXCLUDED_KINDS = {
    EventKind.ERROR.value: "errors about a business number (no customer)",
    EventKind.IDENTITY.value: "number or BSUID changes (not activity)",
    EventKind.PREFERENCE.value: "marketing opt-outs and opt-ins (not interactions)",
}


@dataclass(frozen=True)
class Scope:
    """Which customers a report covers."""

    number: str | None = None  # a business phone number id
    owner: str | None = None  # a rep id
    not_customers: frozenset[str] = frozenset()  # wa_ids that are reps' own numbers


def load(connection: Connection, period: Period, since: int, scope: Scope) -> Activity:
    """The people in scope and their events from `since` (before the period: touch counts and
    waits that began earlier) to the period's end."""
    query = select(customers.c.id, customers.c.key, customers.c.name, customers.c.country, customers.c.timezone,
                   customers.c.owner, customers.c.phone_number_id, customers.c.wa_id)
    if scope.number:
        query = query.where(customers.c.phone_number_id == scope.number)
    if scope.owner:
        query = query.where(customers.c.owner == scope.owner)
    rows = [row for row in connection.execute(query) if row.wa_id not in scope.not_customers]
    tiers = _tiers_at(connection, (period.start, period.end))
    people = [
        Person(row.id, row.key, row.name, row.country, row.timezone, row.owner, row.phone_number_id,
               tiers[period.start].get(row.id), tiers[period.end].get(row.id))
        for row in rows
    ]
    ids = {person.id for person in people}
    messages = [
        Message(row.customer_id, row.at, frozenset(row.data.get("sig", ())))
        for row in connection.execute(
            select(events.c.customer_id, events.c.at, events.c.data)
            .where(events.c.kind == EventKind.MESSAGE.value, events.c.at >= since, events.c.at < period.end)
        )
        if row.customer_id in ids
    ]
    sent = [
        Sent(row.customer_id, row.at, row.rank, row.failed, row.error_code, row.campaign)
        for row in connection.execute(
            select(outbound.c.customer_id, outbound.c.at, outbound.c.rank, outbound.c.failed, outbound.c.error_code,
                   outbound.c.campaign).where(outbound.c.at >= since, outbound.c.at < period.end)
        )
        if row.customer_id in ids
    ]
    readers = frozenset(connection.execute(select(outbound.c.customer_id).where(outbound.c.rank >= READ).distinct())
                        .scalars()) & ids
    return Activity(people, messages, sent, readers, _excluded(connection, period))


def _tiers_at(connection: Connection, instants: tuple[int, ...]) -> dict[int, dict[int, str]]:
    """Each customer's tier just before each instant, from the tier history."""
    at_instant: dict[int, dict[int, str]] = {instant: {} for instant in instants}
    history = connection.execute(
        select(tier_changes.c.customer_id, tier_changes.c.to_tier, tier_changes.c.at)
        .where(tier_changes.c.at < max(instants)).order_by(tier_changes.c.at, tier_changes.c.id)
    )
    for row in history:
        for instant, tiers in at_instant.items():
            if row.at < instant:
                tiers[row.customer_id] = row.to_tier
    return at_instant


def _excluded(connection: Connection, period: Period) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for kind, count in connection.execute(
        select(events.c.kind, func.count()).where(events.c.at >= period.start, events.c.at < period.end)
        .group_by(events.c.kind)
    ):
        if kind in EXCLUDED_KINDS:
            counts[EXCLUDED_KINDS[kind]] += count
    dead_letters = connection.execute(
        select(func.count()).select_from(raw_bodies).where(
            raw_bodies.c.valid_json.is_(False), raw_bodies.c.received_at >= period.start * 1000,
            raw_bodies.c.received_at < period.end * 1000)
    ).scalar()
    if dead_letters:
        counts["bodies that were not JSON (dead letters)"] = dead_letters
    return dict(counts)
