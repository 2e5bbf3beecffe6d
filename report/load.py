"""Reading what the report needs from the store, in a few set-wise queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import msgspec
from sqlalchemy import Connection, Engine, Select, Table, Text, cast, func, select

from report.figures import Activity, Message, Period, Person, Retired, Sent, READ
from scoring.events import EventKind
from store import db
from store.models import Customer, EventRow, OutboundMessageRow, RawBody, RetiredActivity, TierChangeRow

customers, events, outbound, tier_changes, raw_bodies = (
    Customer.__table__, EventRow.__table__, OutboundMessageRow.__table__, TierChangeRow.__table__, RawBody.__table__,
)
retired_activity = RetiredActivity.__table__
EXCLUDED_KINDS = {
    EventKind.ERROR.value: "errors about a business number (no customer)",
    EventKind.IDENTITY.value: "number or BSUID changes (not activity)",
    EventKind.PREFERENCE.value: "marketing opt-outs and opt-ins (not interactions)",
    EventKind.BACKFILL.value: "history back-fill progress reports (not activity)",
}


@dataclass(frozen=True)
class Scope:
    """Which customers a report covers."""

    number: str | None = None  # a business phone number id
    owner: str | None = None  # a rep id
    not_customers: frozenset[str] = frozenset()  # wa_ids that are reps' own numbers


@dataclass(frozen=True)
class StoredNumbers:
    """The business phone number ids the store knows (a customer's, an event's, a message of ours'
    or the counts retired events left), asked one at a time: listing them would read every event."""

    engine: Engine

    def __contains__(self, number: object) -> bool:
        with self.engine.connect() as connection:
            return any(connection.execute(select(table.c.phone_number_id).where(table.c.phone_number_id == number).limit(1))
                       .first() for table in (customers, events, outbound, retired_activity))


def load(connection: Connection, periods: Sequence[Period], since: int, scope: Scope) -> list[Activity]:
    """One Activity per period, all sharing the events read once: from `since` (before the
    periods: touch counts and waits that began earlier) to the end of the latest period."""
    until = max(period.end for period in periods)
    rows, reps = [], []
    for row in connection.execute(_people_query(scope)):
        (reps if row.wa_id in scope.not_customers else rows).append(row)
    ids, rep_ids = {row.id for row in rows}, {row.id for row in reps}
    tiers = _tiers_at(connection, sorted({p.start for p in periods} | {p.end for p in periods}))
    signals, numbers = _SignalSets(), _Shared()
    messages, from_reps = [], []
    for customer, at, data, number in db.fetch_tuples(connection, select(
            events.c.customer_id, events.c.at, cast(events.c.data["sig"], Text), events.c.phone_number_id)
            .where(events.c.kind == EventKind.MESSAGE.value, *_on_number(events, scope),
                   *_window(connection, events, since, until))):
        if customer in ids:
            messages.append(Message(customer, at, signals[data], numbers[number]))
        elif customer in rep_ids:
            from_reps.append(at)
    sent = [
        Sent(customer, at, rank, failed, error_code, campaign, numbers[number])
        for customer, at, rank, failed, error_code, campaign, number in db.fetch_tuples(connection, select(
            outbound.c.customer_id, outbound.c.at, outbound.c.rank, outbound.c.failed, outbound.c.error_code,
            outbound.c.campaign, outbound.c.phone_number_id)
            .where(outbound.c.at >= since, outbound.c.at < until, *_on_number(outbound, scope)))
        if customer in ids
    ]
    readers = frozenset(connection.execute(select(outbound.c.customer_id).where(outbound.c.rank >= READ).distinct())
                        .scalars()) & ids
    excluded = _excluded(connection, periods, scope, from_reps)
    imported = _imported(connection, periods, scope, ids)
    wabas = _wabas(connection, [number for number in numbers if number])
    retired = _retired(connection, min(period.start for period in periods), until, scope)
    return [
        Activity([Person(row.id, row.key, row.name, row.country, row.timezone, row.owner, row.phone_number_id,
                         tiers[period.start].get(row.id), tiers[period.end].get(row.id)) for row in rows],
                 messages, sent, readers, excluded[period], wabas, retired, imported[period])
        for period in periods
    ]


def _people_query(scope: Scope) -> Select:
    """The customers in scope: for a number, everyone who ever dealt with it (not only those who
    dealt with it last)."""
    query = select(customers.c.id, customers.c.key, customers.c.name, customers.c.country, customers.c.timezone,
                   customers.c.owner, customers.c.phone_number_id, customers.c.wa_id)
    if scope.number:
        query = query.where(customers.c.id.in_(
            select(events.c.customer_id).where(events.c.phone_number_id == scope.number).distinct()))
    if scope.owner:
        query = query.where(customers.c.owner == scope.owner)
    return query


def _retired(connection: Connection, since: int, until: int, scope: Scope) -> list[Retired]:
    """The day counts deleted events left, in scope (their number and owner as they were)."""
    table = retired_activity
    query = select(table.c.day, table.c.direction, table.c.kind, func.sum(table.c.messages)).where(
        table.c.day >= since, table.c.day < until, *_on_number(table, scope),
        *([table.c.owner == scope.owner] if scope.owner else [])).group_by(table.c.day, table.c.direction, table.c.kind)
    return [Retired(day, direction, kind, int(messages)) for day, direction, kind, messages in connection.execute(query)]


def _on_number(table: Table, scope: Scope) -> list:
    """With a number in scope, only the events (or messages of ours) that went through it."""
    return [table.c.phone_number_id == scope.number] if scope.number else []


def _wabas(connection: Connection, numbers: list[str]) -> dict[str, str]:
    """Each business number's WABA, from one of its events that recorded it (events stored
    before wapulse kept WABAs have none: `wapulse rebuild` adds them)."""
    wabas = {}
    for number in numbers:
        waba = connection.execute(select(events.c.data["waba"].as_string()).where(
            events.c.phone_number_id == number, events.c.data["waba"].as_string().is_not(None)).limit(1)).scalar()
        if waba is not None:
            wabas[number] = waba
    return wabas


def _window(connection: Connection, table: Table, since: int | None, until: int) -> list:
    """`since <= at < until` for a table's rows (no lower bound for None). SQLite's planner takes an index on `at` for any
    range, and a window covering most of the history is then read row by row in index order,
    three times slower than a scan: `at + 0` hides the index from it in that case. (PostgreSQL's
    planner weighs this itself from its statistics.)"""
    at = table.c.at
    if connection.dialect.name == "sqlite":
        oldest = connection.execute(select(func.min(at))).scalar()
        newest = connection.execute(select(func.max(at))).scalar()  # apart: SQLite seeks min or max alone
        if oldest is not None and (min(newest, until) - max(oldest, since or oldest)) * 2 > newest - oldest:
            at = at + 0
    return [at < until] if since is None else [at >= since, at < until]


class _Shared(dict):
    """One string object for every row with the same value (a business number read millions of
    times), instead of one per row."""

    def __missing__(self, value: str | None) -> str | None:
        self[value] = value
        return value


class _SignalSets(dict):
    """Signals by the JSON text of an event's `sig` list, one frozenset shared by every message
    with the same list: a report reads millions of messages and a few dozen distinct lists."""

    def __init__(self) -> None:
        super().__init__({None: frozenset(), "null": frozenset()})  # no list (SQLite says "null")

    def __missing__(self, signals: str) -> frozenset[str]:
        found = self[signals] = msgspec.json.decode(signals, type=frozenset[str])
        return found


def _tiers_at(connection: Connection, instants: list[int]) -> dict[int, dict[int, str]]:
    """Each customer's tier just before each instant, from the tier history read once in order."""
    at_instant: dict[int, dict[int, str]] = {}
    current: dict[int, str] = {}
    pending = iter(instants)
    next_instant = next(pending)
    history = db.fetch_tuples(connection, select(
        tier_changes.c.at, tier_changes.c.id, tier_changes.c.customer_id, tier_changes.c.to_tier)
        .where(*_window(connection, tier_changes, None, instants[-1])))
    history.sort()  # by instant, then order of arrival; sorted here, as SQLite would walk the index for it
    for at, _, customer, tier in history:
        while at >= next_instant:
            at_instant[next_instant] = dict(current)
            next_instant = next(pending)
        current[customer] = tier
    for instant in [next_instant, *pending]:
        at_instant[instant] = dict(current)
    return at_instant


def _imported(connection: Connection, periods: Sequence[Period], scope: Scope, ids: set[int]) -> dict[Period, dict]:
    """Per period, the customers' messages and ours in scope that came from chat exports
    (`wapulse import-chat`) rather than from Meta."""
    counts = {period: {"from_customers": 0, "of_ours": 0} for period in periods}
    since, until = min(p.start for p in periods), max(p.end for p in periods)
    for customer, kind, at in connection.execute(select(events.c.customer_id, events.c.kind, events.c.at).where(
            events.c.kind.in_([EventKind.MESSAGE.value, EventKind.ECHO.value]),
            events.c.data["imp"].as_integer() == 1, *_on_number(events, scope),
            *_window(connection, events, since, until))):
        if customer in ids:
            for period, found in counts.items():
                if at in period:
                    found["from_customers" if kind == EventKind.MESSAGE.value else "of_ours"] += 1
    return counts


def _excluded(connection: Connection, periods: Sequence[Period], scope: Scope,
              from_reps: list[int]) -> dict[Period, dict[str, int]]:
    """Per period, the events in scope the report leaves out, counted by reason. Errors about a
    business number belong to no owner, and a body that is not JSON to no number: they count
    where the scope would hold them."""
    counts: dict[Period, dict[str, int]] = {period: defaultdict(int) for period in periods}

    def count(at: int, reason: str) -> None:
        for period, reasons in counts.items():
            if at in period:
                reasons[reason] += 1

    since, until = min(p.start for p in periods), max(p.end for p in periods)
    owned = [events.c.customer_id.in_(select(customers.c.id).where(customers.c.owner == scope.owner))] if scope.owner else []
    for kind, at in connection.execute(select(events.c.kind, events.c.at).where(
            events.c.kind.in_(EXCLUDED_KINDS), *_on_number(events, scope), *owned,
            *_window(connection, events, since, until))):
        count(at, EXCLUDED_KINDS[kind])
    for at in from_reps:
        count(at, "messages from reps' own numbers (not customers)")
    if not (scope.number or scope.owner):
        for (received_ms,) in connection.execute(select(raw_bodies.c.received_at).where(
                raw_bodies.c.valid_json.is_(False), raw_bodies.c.received_at >= since * 1000,
                raw_bodies.c.received_at < until * 1000)):
            count(received_ms // 1000, "bodies that were not JSON (dead letters)")
    return {period: dict(sorted(reasons.items())) for period, reasons in counts.items()}
