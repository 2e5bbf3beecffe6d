"""One report: the period's figures, the previous period's for comparison, and the summary."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Collection, Container, Iterator, Mapping

from sqlalchemy import Connection, Engine

from report.figures import (CUSTOMER_ROWS, HEADLINE_SECTIONS, HISTORY_BEFORE_S, SECTIONS, Period, compare, compute,
                            summary)
from report.effectiveness import effectiveness
from report.load import Scope, load
from report.render import FORMS
from report.team_load import crossings
from scoring.events import iso
from scoring.tiers import TierRules
from store import db

DEFAULT_DAYS = 90
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
"""The days a report may cover (WhatsApp began in 2009): a previous period of equal length
always stays within what dates can hold."""


@dataclass(frozen=True)
class Request:
    """A report as asked for: by `wapulse report` options or `GET /api/report` parameters."""

    period: Period
    scope: Scope
    with_previous: bool = True
    form: str = "md"
    now: int | None = None  # when it is asked for: reminders whose outcome is not known yet are told apart

    @property
    def file_name(self) -> str:
        last = datetime.fromtimestamp(self.period.end - 1, UTC).date()
        return f"wapulse-report-{iso(self.period.start)[:10]}-to-{last.isoformat()}.{self.form}"


OPTIONS = ("from", "to", "compare", "number", "owner", "format")


def request_of(options: Mapping[str, str | None], now: int, reps: Collection[str], numbers: Container[str],
               rep_numbers: frozenset[str], prefix: str = "") -> Request:
    """Checks options named from, to, compare, number, owner and format (shown with `prefix`,
    "--" on the command line), a number against the business numbers the store knows (`numbers`);
    raises ValueError saying what is wrong."""
    compare, form = options.get("compare") or "previous", options.get("format") or "md"
    number, owner = options.get("number") or None, options.get("owner") or None
    if compare not in ("previous", "none"):
        raise ValueError(f"{prefix}compare must be previous or none")
    if form not in FORMS:
        raise ValueError(f"{prefix}format must be one of {', '.join(FORMS)}")
    if number is not None and not (number.isdigit() and len(number) <= 64):
        raise ValueError(f"{prefix}number {number!r} is not a business phone number id (digits)")
    if number is not None and number not in numbers:
        raise ValueError(f"{prefix}number {number!r} is not a business number the store knows (nothing went through it)")
    if owner is not None and owner not in reps:
        raise ValueError(f"{prefix}owner {owner!r} is not a rep ([[reps]] ids in wapulse.toml)")
    period = period_of(options.get("from"), options.get("to"), now, prefix)
    return Request(period, Scope(number, owner, rep_numbers), compare == "previous", form, now)


def produce(engine: Engine, request: Request, rules: TierRules) -> bytes:
    """The report in the form asked for, from one consistent read of the store."""
    return FORMS[request.form].render(report_of(engine, request, rules))


def report_of(engine: Engine, request: Request, rules: TierRules) -> dict:
    """The report as the form asked for renders it (build's dict), from one consistent read."""
    with db.read_snapshot(engine) as connection:
        return build(connection, request.period, request.scope, rules, request.with_previous,
                     FORMS[request.form].needs_customer_rows, request.now)


def period_of(first_day: str | None, last_day: str | None, now: int, prefix: str = "--") -> Period:
    """`from` and `to` (UTC dates, both days included); by default the 90 days up to today.
    Raises ValueError saying what is wrong."""
    days = []
    for name, value in ((f"{prefix}from", first_day), (f"{prefix}to", last_day)):
        try:
            day = date.fromisoformat(value) if value else None
        except ValueError:
            raise ValueError(f"{name} {value!r} is not a date such as 2026-07-01") from None
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ValueError(f"{name} {day} is outside {EARLIEST} to {LATEST}")
        days.append(day)
    first, last = days
    last = last or datetime.fromtimestamp(now, UTC).date()
    first = first or max(EARLIEST, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise ValueError(f"{prefix}from {first} is after {prefix}to {last}")
    start = datetime.combine(first, datetime.min.time(), UTC)
    return Period(int(start.timestamp()), int((datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=1)).timestamp()))


def build(connection: Connection, period: Period, scope: Scope, rules: TierRules, with_previous: bool = True,
          customer_rows: bool = False, now: int | None = None) -> dict:
    """The whole report as the JSON form holds it (every figure, stable keys), and one row per
    customer under CUSTOMER_ROWS when asked. `now` (by default the period's end) tells the
    reminders whose 30 days have not run out yet."""
    thresholds = asdict(rules)
    periods = [period.previous(), period] if with_previous else [period]
    with _no_cycle_collection():
        activities = load(connection, periods, periods[0].start - HISTORY_BEFORE_S, scope)
        current = compute(activities[-1], period, thresholds, SECTIONS + ((CUSTOMER_ROWS,) if customer_rows else ()))
        comparison = None
        if with_previous:
            comparison = compare(current, compute(activities[0], periods[0], thresholds, HEADLINE_SECTIONS))
        people = {person.id: person for person in activities[-1].people}
        reminders = effectiveness(crossings(connection, period, people), period.end if now is None else now)
    return {
        "scope": {"number": scope.number, "owner": scope.owner},
        "summary": summary(current, comparison),
        "comparison": comparison,
        **current,
        "reminders": reminders,
    }


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A report allocates millions of small tuples, and the cyclic garbage collector would walk
    them all again and again as they pile up (a third of the time); the report makes no cycles,
    so reference counting frees all of it."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
