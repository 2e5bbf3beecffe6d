"""Retention: how long wapulse keeps what it no longer needs, from `[retention]` in wapulse.toml,
applied every day by `rq cron` (workers/cron_config.py) and by `wapulse retention` by hand.

    [retention]
    raw_bodies_days = 90   # archived webhook bodies (the only place message text is kept)
    reminders_days = 365   # follow-ups closed that long ago, with their actions and deliveries

Unset, a kind is kept for good. Counters, tiers and the report are computed from events, which
the archive's retention does not touch; a rebuild, though, can only replay what is archived.
Events themselves are kept for as long as their customer (erase one to remove theirs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from store import retention as store
from store.db import retry_on_conflict, write_transaction
from workers.context import Context

DAY_S = 86_400


@dataclass(frozen=True)
class Retention:
    raw_bodies_days: int | None = None
    reminders_days: int | None = None

    @classmethod
    def from_config(cls, table: Mapping, reminder_max_age_s: int) -> Retention:
        """Raises ValueError naming what is wrong."""
        if "events_days" in table:
            raise ValueError("[retention] events_days: events are what counters, tiers and the report are computed "
                             "from, and are kept as long as their customer (wapulse erase removes one's)")
        if unknown := sorted(set(table) - {"raw_bodies_days", "reminders_days"}):
            raise ValueError(f"[retention] does not know {', '.join(unknown)} (known: raw_bodies_days, reminders_days)")
        days = {name: _days(table, name) for name in ("raw_bodies_days", "reminders_days")}
        if days["reminders_days"] is not None and days["reminders_days"] * DAY_S <= reminder_max_age_s:
            raise ValueError("[retention] reminders_days must be longer than [reminders] max_age_hours: a follow-up "
                             "deleted sooner could be owed again by a replay")
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
    deleted = {"raw_bodies": 0, "reminders": 0}
    if retention.raw_bodies_days is not None:
        deleted["raw_bodies"] = purge_bodies(context, (now - retention.raw_bodies_days * DAY_S) * 1000)
    if retention.reminders_days is not None:
        cutoff = now - retention.reminders_days * DAY_S
        deleted["reminders"] = _in_chunks(context, lambda connection: store.delete_follow_ups_closed_before(
            connection, cutoff))
    return deleted


def purge_bodies(context: Context, received_before_ms: int) -> int:
    """Delete the archived bodies received before the instant (Unix ms); returns how many."""
    return _in_chunks(context, lambda connection: store.delete_bodies_before(connection, received_before_ms))


def _in_chunks(context: Context, delete_chunk) -> int:
    total = 0

    def one() -> int:
        with write_transaction(context.engine) as connection:
            return delete_chunk(connection)

    while deleted := retry_on_conflict(one):
        total += deleted
    return total
