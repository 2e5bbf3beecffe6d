"""Reminder rules: which tier crossings a rep hears about, and what they are told
to do next.

A reminder is owed once per crossing: its id is derived from the customer, the rule and the
instant of the crossing, so a crossing derived again (a late event refolds the customer, a
replay, a rebuild) owes the same reminder, never a second one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Mapping
from zoneinfo import ZoneInfo

from scoring.events import iso
from scoring.tiers import Cause, Tier

HOUR = 3600


class Rule(StrEnum):
    WENT_COLD = "went_cold"
    COOLING = "cooling"
    HEATING = "heating"
    UNANSWERED = "unanswered"
    WINDOW_CLOSING = "window_closing"
    REACTIVATED = "reactivated"
    UNREACHABLE = "unreachable"


HOLD_BACK_RULES = frozenset({Rule.WENT_COLD, Rule.COOLING})
"""The rules whose effect wapulse measures (report.effectiveness), and so may hold back."""

OWNER = "owner"
"""In a rule's recipients: the customer's own rep."""

UNDELIVERABLE, OPTED_OUT = "undeliverable", "opted_out"
"""Why a customer is `unreachable`: a delivery failed with 131026, or they stopped marketing messages."""

UNREACHABLE_ACTIONS = {
    UNDELIVERABLE: "Our messages no longer reach this number: find another way to reach them, or archive them.",
    OPTED_OUT: "They asked for no marketing: answer what they write, and send them no campaign.",
}
"""The next step for an unreachable customer depends on why, not on their tier."""

SUGGESTED_ACTIONS = {
    Tier.HOT: "Answer now and move to close: confirm quantity, price and delivery date.",
    Tier.WARM: "Share a relevant case or ask what is holding them back.",
    Tier.COLD: "Send something of value (news, a greeting, a useful tip); no hard promotion.",
    Tier.DEAD: "Archive them unless there is a big launch worth one last message.",
    Tier.UNENGAGED: "Try one short, personal opener; archive if it stays unanswered.",
}


def rules_for_change(from_tier: Tier | None, to_tier: Tier, cause: Cause) -> list[Rule]:
    """The rules one recorded tier change fires, in a fixed order."""
    fired = []
    if to_tier == Tier.COLD:
        fired.append(Rule.WENT_COLD)
    if from_tier == Tier.HOT and to_tier == Tier.WARM:
        fired.append(Rule.COOLING)
    if to_tier == Tier.HOT:
        fired.append(Rule.HEATING)
    if from_tier in (Tier.COLD, Tier.DEAD) and to_tier in (Tier.WARM, Tier.HOT):
        fired.append(Rule.REACTIVATED)
    if to_tier == Tier.DEAD and cause == Cause.UNREACHABLE:
        fired.append(Rule.UNREACHABLE)
    return fired


def reminder_id(customer_key: str, rule: Rule, at: int) -> str:
    """The idempotency key of a crossing: stable across refolds, replays and rebuilds."""
    digest = hashlib.sha256(f"{customer_key}\x1f{rule.value}\x1f{at}".encode()).hexdigest()
    return f"rem_{digest[:24]}"


@dataclass(frozen=True)
class ReminderRules:
    """`[reminders]` of wapulse.toml: the rules in force, who hears about each, the reply SLAs and
    how old a crossing may be when it is noticed and still be worth a reminder."""

    enabled: frozenset[Rule] = frozenset(Rule)
    recipients: Mapping[Rule, tuple[str, ...]] = field(default_factory=dict)  # rule -> rep ids or OWNER
    sla_hot_s: int = 5 * 60
    sla_other_s: int = 60 * 60
    window_closing_lead_s: int = 2 * HOUR
    max_age_s: int = 24 * HOUR  # a replay or a rebuild of old traffic reminds nobody of old news
    actions: Mapping[Tier, str] = field(default_factory=lambda: dict(SUGGESTED_ACTIONS))
    hold_back_percent: int = 0  # of went_cold and cooling crossings, held back to measure what reminders do

    def holds_back(self, reminder: str, rule: Rule) -> bool:
        """Whether this crossing's reminder is held back: a fixed share of the measured rules'
        crossings, chosen by the reminder's id, so a replay or rebuild holds back the same ones."""
        return rule in HOLD_BACK_RULES and int(reminder[-8:], 16) % 100 < self.hold_back_percent

    def recipients_of(self, rule: Rule) -> tuple[str, ...]:
        return self.recipients.get(rule, (OWNER,))

    def action_for(self, tier: Tier) -> str:
        return self.actions.get(tier, SUGGESTED_ACTIONS[tier])

    @classmethod
    def from_config(cls, table: Mapping, rep_ids: frozenset[str]) -> ReminderRules:
        """Raises ValueError naming the bad key."""
        known = {"rules", "to", "sla_minutes", "window_closing_hours", "max_age_hours", "actions", "hold_back_percent",
                 "headlines", "templates"}  # the last two: the wording, read by workers.wording
        if unknown := set(table) - known:
            raise ValueError(f"[reminders] has unknown keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
        names = table.get("rules", [rule.value for rule in Rule])
        if not isinstance(names, list):
            raise ValueError("[reminders] rules must be a list of rule names")
        enabled = frozenset(_rule(name, "[reminders] rules") for name in names)
        recipients = {}
        for name, who in _mapping(table.get("to", {}), "[reminders.to]").items():
            rule = _rule(name, "[reminders.to]")
            people = [who] if isinstance(who, str) else who
            if not isinstance(people, list) or not people or not all(isinstance(p, str) for p in people):
                raise ValueError(f"[reminders.to] {name} must be \"owner\", a rep id, or a list of them")
            if strangers := [p for p in people if p != OWNER and p not in rep_ids]:
                raise ValueError(f"[reminders.to] {name} names {strangers}, which are not reps ([[reps]] ids)")
            recipients[rule] = tuple(dict.fromkeys(people))
        sla = _mapping(table.get("sla_minutes", {}), "[reminders.sla_minutes]")
        if unknown := set(sla) - {"hot", "other"}:
            raise ValueError(f"[reminders.sla_minutes] has unknown keys {sorted(unknown)}; known: hot, other")
        actions = {}
        for name, text in _mapping(table.get("actions", {}), "[reminders.actions]").items():
            if name not in {tier.value for tier in Tier} or not isinstance(text, str) or not text.strip():
                raise ValueError(f"[reminders.actions] {name} must be a tier name with a non-empty text")
            actions[Tier(name)] = text.strip()
        return cls(
            enabled=enabled,
            recipients=recipients,
            sla_hot_s=_positive(sla.get("hot", 5), "[reminders.sla_minutes] hot") * 60,
            sla_other_s=_positive(sla.get("other", 60), "[reminders.sla_minutes] other") * 60,
            window_closing_lead_s=_positive(table.get("window_closing_hours", 2), "[reminders] window_closing_hours")
            * HOUR,
            max_age_s=_positive(table.get("max_age_hours", 24), "[reminders] max_age_hours") * HOUR,
            actions={**SUGGESTED_ACTIONS, **actions},
            hold_back_percent=_percent(table.get("hold_back_percent", 0), "[reminders] hold_back_percent"),
        )


def _rule(name, where: str) -> Rule:
    try:
        return Rule(name)
    except ValueError:
        raise ValueError(f"{where}: {name!r} is not a rule; rules: {', '.join(rule.value for rule in Rule)}") from None


def _mapping(value, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a table")
    return value


def _percent(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 50:
        raise ValueError(f"{where} = {value!r} must be a whole number from 0 to 50")
    return value


def _positive(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} = {value!r} must be a whole number of at least 1")
    return value


SERVICE_WINDOW_S = 24 * HOUR
"""Meta's customer-service window: free-form messages only within 24 h of their last message."""


def time_rule_instants(
    tier: Tier | None, question_since: int | None, awaiting_since: int | None, last_inbound_at: int | None,
    rules: ReminderRules,
) -> list[tuple[Rule, int]]:
    """When the rules of time fire for a customer as they stand (our reply clears both):
    `unanswered` an SLA after their first unanswered question (the hot SLA for a hot customer),
    `window_closing` the lead time before 24 hours after their last message, if it waits on us."""
    instants = []
    if question_since is not None and Rule.UNANSWERED in rules.enabled:
        sla = rules.sla_hot_s if tier == Tier.HOT else rules.sla_other_s
        instants.append((Rule.UNANSWERED, question_since + sla))
    if awaiting_since is not None and last_inbound_at is not None and Rule.WINDOW_CLOSING in rules.enabled:
        instants.append((Rule.WINDOW_CLOSING, last_inbound_at + SERVICE_WINDOW_S - rules.window_closing_lead_s))
    return instants


@dataclass(frozen=True)
class CustomerFacts:
    """What a reminder says about its customer, read from their row when the crossing is planned."""

    key: str
    wa_id: str | None
    user_id: str | None
    name: str | None
    timezone: str | None
    last_inbound_at: int | None
    last_signals: tuple[str, ...]
    last_outbound_at: int | None = None
    last_outbound_campaign: str | None = None  # biz_opaque_callback_data of our last message
    phone_number_id: str | None = None  # the business number they write to


def compose(
    reminder: str, rule: Rule, rep: str, from_tier: Tier | None, to_tier: Tier, at: int, customer: CustomerFacts,
    rules: ReminderRules, now: int, reason: str | None = None,
) -> dict:
    """The reminder as every channel carries it (the webhook channel sends it as it is)."""
    silent_s = now - customer.last_inbound_at if customer.last_inbound_at is not None else None
    content = {
        "type": "reminder",
        "id": reminder,
        "rule": rule.value,
        "at": iso(at),
        "rep": rep,
        "customer": {"key": customer.key, "wa_id": customer.wa_id, "user_id": customer.user_id, "name": customer.name},
        "phone_number_id": customer.phone_number_id,
        "from": from_tier.value if from_tier else None,
        "to": to_tier.value,
        "days_silent": silent_s // 86_400 if silent_s is not None else None,
        "signals": list(customer.last_signals),
        "customer_local_time": _local(now, customer.timezone),
        "template_required": silent_s is None or silent_s >= SERVICE_WINDOW_S,
        "suggested_action": UNREACHABLE_ACTIONS.get(reason) if rule == Rule.UNREACHABLE and reason in UNREACHABLE_ACTIONS
        else rules.action_for(to_tier),
        "reason": reason,
    }
    if rule == Rule.REACTIVATED:  # credited to the last message we sent before they came back
        sent_before = customer.last_outbound_at is not None and customer.last_outbound_at <= at
        content["credited_to"] = {
            "sent_at": iso(customer.last_outbound_at) if sent_before else None,
            "campaign": customer.last_outbound_campaign if sent_before else None,
        }
    return content



def _local(at: int, timezone: str | None) -> str | None:
    """The customer's wall clock at `at` (ISO-8601 with offset), when their zone is known."""
    if not timezone:
        return None
    return datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(timezone)).isoformat()
