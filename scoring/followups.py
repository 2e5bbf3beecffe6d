"""Reminders as follow-ups in the desk: their states, what a rep may do about them, when a snooze
ends, and which behaviour of the customer settles one by itself. Plain values in, plain values
out: the store applies them, the pages show them.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from scoring.reminders import Rule
from scoring.reps import Rep


class State(StrEnum):
    OPEN = "open"
    SNOOZED = "snoozed"
    CLOSED = "closed"


class Action(StrEnum):
    """What happened to a follow-up, as its history shows it."""

    DONE = "done"  # its rep is done with it
    SNOOZE = "snooze"  # put off until an instant
    WOKE = "woke"  # the snooze ended: open again, and sent again on the rep's channels
    REASSIGN = "reassign"  # the customer, with this follow-up, went to another rep
    TEMPLATE = "template"  # an approved template was sent to the customer from the desk
    REPLIED = "replied"  # our reply closed it (unanswered, window_closing)
    CAME_BACK = "came_back"  # the customer wrote again (went_cold, cooling)


URGENCY = (Rule.WINDOW_CLOSING, Rule.UNANSWERED, Rule.HEATING, Rule.REACTIVATED, Rule.COOLING, Rule.WENT_COLD,
           Rule.UNREACHABLE)
"""Most urgent first: a window about to close and a question waiting cannot wait; a customer
heating up or back is an opportunity now; cooling and cold ones can wait a day; an unreachable
one can only be cleaned up."""


class Snooze(StrEnum):
    HOUR = "hour"
    TOMORROW = "tomorrow"
    NEXT_WEEK = "next_week"


SNOOZE_LABELS = {Snooze.HOUR: "1 hour", Snooze.TOMORROW: "Tomorrow 9:00", Snooze.NEXT_WEEK: "Next week"}
MORNING = time(9, 0)


def snooze_until(choice: Snooze, now: int, timezone: str) -> int:
    """When a follow-up snoozed at `now` comes back: in an hour, tomorrow at 9:00 on the rep's
    clock, or on Monday at 9:00 of the week after this one."""
    if choice == Snooze.HOUR:
        return now + 3600
    zone = ZoneInfo(timezone)
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    day = today + timedelta(days=1) if choice == Snooze.TOMORROW else today + timedelta(days=7 - today.weekday())
    return int(datetime.combine(day, MORNING, zone).timestamp())


def settled_by(rule: Rule, at: int, awaiting_reply_since: int | None, last_inbound_at: int | None) -> Action | None:
    """The customer's behaviour that closes a follow-up by itself, if it happened: our reply ends
    the wait an `unanswered` or `window_closing` was about (the wait that began before it is
    over), and a message of theirs after a `went_cold` or `cooling` means they are back."""
    if rule in (Rule.UNANSWERED, Rule.WINDOW_CLOSING):
        if awaiting_reply_since is None or awaiting_reply_since > at:
            return Action.REPLIED
    elif rule in (Rule.WENT_COLD, Rule.COOLING):
        if last_inbound_at is not None and last_inbound_at > at:
            return Action.CAME_BACK
    return None


def may_work(person: Rep, reminder_rep: str) -> bool:
    """Done and snooze: the follow-up's own rep, or a manager."""
    return person.is_manager or person.id == reminder_rep


def may_reassign(person: Rep, owner: str | None) -> bool:
    """Reassign: the customer's owner, or a manager."""
    return person.is_manager or (owner is not None and person.id == owner)
