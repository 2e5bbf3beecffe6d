"""One report: the period's figures, the previous period's for comparison, and the summary."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection

from report.figures import Period, compare, compute, summary
from report.load import Scope, load
from scoring.tiers import TierRules

HISTORY_BEFORE_S = 90 * 86_400  # events this long before the period count for touches and waits begun earlier
DEFAULT_DAYS = 90


def period_of(first_day: str | None, last_day: str | None, now: int) -> Period:
    """`--from` and `--to` (UTC dates, both days included); by default the 90 days up to today.
    Raises ValueError saying what is wrong."""
    days = []
    for name, value in (("--from", first_day), ("--to", last_day)):
        try:
            days.append(date.fromisoformat(value) if value else None)
        except ValueError:
            raise ValueError(f"{name} {value!r} is not a date such as 2026-07-01") from None
    first, last = days
    last = last or datetime.fromtimestamp(now, UTC).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    start = datetime.combine(first, datetime.min.time(), UTC)
    return Period(int(start.timestamp()), int((datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=1)).timestamp()))


def build(connection: Connection, period: Period, scope: Scope, rules: TierRules, with_previous: bool = True) -> dict:
    """The whole report as the JSON form holds it (every figure, stable keys)."""
    thresholds = asdict(rules)
    current = compute(load(connection, period, period.start - HISTORY_BEFORE_S, scope), period, thresholds)
    comparison = None
    if with_previous:
        before = period.previous()
        previous = compute(load(connection, before, before.start - HISTORY_BEFORE_S, scope), before, thresholds)
        comparison = compare(current, previous)
    return {
        "scope": {"number": scope.number, "owner": scope.owner},
        "summary": summary(current, comparison),
        "comparison": comparison,
        **current,
    }
