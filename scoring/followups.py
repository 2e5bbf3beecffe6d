"""Reminders as follow-ups in the desk: their states, what a rep may do about them, when a snooze
ends, and which behaviour of the customer settles one by itself. Plain values in, plain values
out: the store applies them, the pages show them.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Mapping
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
    HELD_BACK = "held_back"  # never sent: one of the crossings `[reminders] hold_back_percent` keeps as a yardstick


URGENCY = (Rule.WINDOW_CLOSING, Rule.UNANSWERED, Rule.HEATING, Rule.REACTIVATED, Rule.COOLING, Rule.WENT_COLD,
           Rule.UNREACHABLE)
"""Most urgent first: a window about to close and a question waiting cannot wait; a customer
heating up or back is an opportunity now; cooling and cold ones can wait a day; an unreachable
one can only be cleaned up."""


RULE_TITLES = {
    Rule.UNANSWERED: "Question unanswered", Rule.WINDOW_CLOSING: "Window closing", Rule.WENT_COLD: "Went cold",
    Rule.COOLING: "Cooling down", Rule.HEATING: "Heating up", Rule.REACTIVATED: "Back again",
    Rule.UNREACHABLE: "Unreachable",
}
"""What each rule is called where people read it."""


class Snooze(StrEnum):
    HOUR = "hour"
    TOMORROW = "tomorrow"
    NEXT_WEEK = "next_week"


SNOOZE_LABELS = {Snooze.HOUR: "1 hour", Snooze.TOMORROW: "Tomorrow 9:00", Snooze.NEXT_WEEK: "Monday 9:00"}
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


TEMPLATE_FIELDS = ("name", "first_name", "wa_id", "country", "rep")
"""What a template's parameters may be filled with, from the customer and their rep."""


@dataclass(frozen=True)
class MessageTemplate:
    """`[[templates]]`: an approved WhatsApp template a rep may send a customer from the desk."""

    name: str  # as approved in WhatsApp Manager
    language: str  # its language code there: en, es, pt_BR...
    campaign: str | None  # biz_opaque_callback_data: the report credits a comeback to it
    parameters: tuple[str, ...]  # body parameters, in order, such as "{first_name}"
    label: str  # what the desk calls it

    def fill(self, fields: Mapping[str, str | None]) -> list[str]:
        """The body parameters for one customer; a field they lack reads as "there"."""
        known = {name: (fields.get(name) or "").strip() or "there" for name in TEMPLATE_FIELDS}
        return [parameter.format_map(known) for parameter in self.parameters]

    @classmethod
    def from_config(cls, table: Mapping, where: str) -> MessageTemplate:
        """Raises ValueError naming the bad key."""
        if unknown := set(table) - {"name", "language", "campaign", "parameters", "label"}:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}; known: campaign, label, language, name, "
                             "parameters")
        name, language = table.get("name"), table.get("language", "en")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,512}", name):
            raise ValueError(f"{where} name must be the template's name as approved (lowercase, digits, _)")
        if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", language):
            raise ValueError(f"{where} ({name}) language must be a code such as en, es or pt_BR")
        campaign = table.get("campaign")
        if campaign is not None and (not isinstance(campaign, str) or not 0 < len(campaign) <= 512):
            raise ValueError(f"{where} ({name}) campaign must be a tag of 1 to 512 characters")
        parameters = table.get("parameters", [])
        if not isinstance(parameters, list) or not all(isinstance(p, str) for p in parameters):
            raise ValueError(f"{where} ({name}) parameters must be a list of texts such as \"{{first_name}}\"")
        for parameter in parameters:
            if unknown_fields := {field for _, field, _, _ in string.Formatter().parse(parameter) if field} - set(
                    TEMPLATE_FIELDS):
                raise ValueError(f"{where} ({name}) parameters name {sorted(unknown_fields)}; known: "
                                 f"{', '.join(TEMPLATE_FIELDS)}")
        return cls(name, language, campaign, tuple(parameters), str(table.get("label") or name.replace("_", " ")))
