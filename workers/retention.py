"""Retention: how long wapulse keeps what it no longer needs, from `[retention]` in wapulse.toml,
applied every day by `rq cron` (workers/cron_config.py) and by `wapulse retention` by hand.

    [retention]
    raw_bodies_days = 90   # archived webhook bodies (the only place message text is kept)
    events_days = 400      # events (what happened, without text), once their fold is kept
    reminders_days = 365   # follow-ups closed that long ago, with their actions and deliveries

Unset, a kind is kept for good. Counters and tiers are folds of events: before a customer's old
events go, their fold is kept as the customer's floor (`scoring.tiers.Floor`), and every later
refold starts there instead of from scratch, so the counters and tiers stay what the events made
them. The report's day counts keep the messages as anonymous numbers (`RetiredActivity`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from report.figures import content_kind
from scoring.events import EventKind
from scoring.planner import track_before
from scoring.tiers import Floor, raise_floor
from store import retention as store
from store.batch import tier_histories
from store.db import retry_on_conflict, write_transaction
from workers.context import Context

DAY_S = 86_400
KINDS = ("raw_bodies_days", "events_days", "reminders_days")
MIN_EVENTS_DAYS = 14
"""Twice Meta's 7-day retry window: an event that arrives late is then all but always newer than
its customer's floor and refolds exactly; one older than the floor (a replay of old traffic) is
combined into the floor (`scoring.customer.combine`)."""


@dataclass(frozen=True)
class Retention:
    raw_bodies_days: int | None = None
    events_days: int | None = None
    reminders_days: int | None = None

    @classmethod
    def from_config(cls, table: Mapping, reminder_max_age_s: int) -> Retention:
        """Raises ValueError naming what is wrong."""
        if unknown := sorted(set(table) - set(KINDS)):
            raise ValueError(f"[retention] does not know {', '.join(unknown)} (known: {', '.join(KINDS)})")
        days = {name: _days(table, name) for name in KINDS}
        if days["reminders_days"] is not None and days["reminders_days"] * DAY_S <= reminder_max_age_s:
            raise ValueError("[retention] reminders_days must be longer than [reminders] max_age_hours: a follow-up "
                             "deleted sooner could be owed again by a replay")
        if days["events_days"] is not None and days["events_days"] < MIN_EVENTS_DAYS:
            raise ValueError(f"[retention] events_days must be {MIN_EVENTS_DAYS} or more: Meta retries a webhook for "
                             "up to 7 days, and an event that late must still find the events it is folded among")
        return cls(**days)


def _days(table: Mapping, name: str) -> int | None:
    value = table.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"[retention] {name} must be a whole number of days, 1 or more")
    return value


def apply_retention(context: Context) -> dict:
    """Delete what the settings' retention no longer keeps, as of the context's now, a chunk per
    short transaction. Returns how many of each went."""
    retention, now = context.settings.retention, context.now_ts()
    deleted = {"raw_bodies": 0, "events": 0, "reminders": 0}
    if retention.raw_bodies_days is not None:
        deleted["raw_bodies"] = purge_bodies(context, (now - retention.raw_bodies_days * DAY_S) * 1000)
    if retention.events_days is not None:
        deleted["events"] = retire_events(context, now - retention.events_days * DAY_S - 1)
    if retention.reminders_days is not None:
        cutoff = now - retention.reminders_days * DAY_S
        deleted["reminders"] = _in_chunks(context, lambda connection: store.delete_follow_ups_closed_before(
            connection, cutoff))
    return deleted


def purge_bodies(context: Context, received_before_ms: int) -> int:
    """Delete the archived bodies received before the instant (Unix ms); returns how many."""
    return _in_chunks(context, lambda connection: store.delete_bodies_before(connection, received_before_ms))


def retire_events(context: Context, through: int) -> int:
    """Delete every event at or before the instant, a few hundred customers per transaction, each
    customer's floor raised over them first and their messages added to the report's day counts.
    Returns how many events went."""

    def chunk(connection) -> int:
        customer_ids = store.customers_with_events_through(connection, through)
        if not customer_ids:
            return 0
        rows = store.customer_rows(connection, customer_ids)
        histories = tier_histories(connection, customer_ids)
        retired = store.events_through(connection, customer_ids, through)
        floors, below = {}, []
        for row in rows:
            floor = Floor.from_json(row.floor)
            if floor is None or floor.through < through:  # a shorter limit than before: nothing new to fold
                after = [event for event in retired[row.id] if floor is None or event.at > floor.through]
                floor = raise_floor(floor, after, through, track_before(histories[row.id], through))
            floors[row.id] = floor
            if row.checkpoint is not None and row.checkpoint["through"] < floor.through:
                below.append(row.id)
        owners = {row.id: row.owner or "" for row in rows}
        store.keep_day_counts(connection, message_counts(
            (owners[customer_id], event.at, event.signals, event.phone_number_id)
            for customer_id, customer_events in retired.items() for event in customer_events
            if event.kind is EventKind.MESSAGE))
        return store.retire_events(connection, floors, below, through)

    return _in_chunks(context, chunk) + _in_chunks(
        context, lambda connection: store.delete_events_of_no_customer(connection, through))


def message_counts(messages) -> Counter:
    """Customers' messages (owner, instant, signals, business number) as the report's day counts
    keep them once their events are gone: per UTC day, number, owner and content kind."""
    return Counter((at - at % DAY_S, number or "", owner, "in", content_kind(frozenset(signals)))
                   for owner, at, signals, number in messages)


def _in_chunks(context: Context, delete_chunk) -> int:
    total = 0

    def one() -> int:
        with write_transaction(context.engine) as connection:
            return delete_chunk(connection)

    while deleted := retry_on_conflict(one):
        total += deleted
    return total
