"""What the desk's customer pages read: the board (a rep's customers by tier, filtered, searched,
sorted and paged in SQL) and one customer's timeline (their messages, ours with how far they got,
tier changes, follow-ups and what was done about them), newest first, a page at a time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from sqlalchemy import Connection, and_, exists, func, or_, select

from scoring.events import EventKind
from scoring.followups import RULE_TITLES, Action
from scoring.reminders import Rule
from scoring.signals import normalise
from scoring.tiers import Tier
from store.models import Customer, CustomerAlias, EventRow, OutboundMessageRow, Reminder, ReminderAction, TierChangeRow

customers, aliases, events = Customer.__table__, CustomerAlias.__table__, EventRow.__table__
HELD_BACK = Action.HELD_BACK.value  # a reminder kept back to measure the others: never anyone's follow-up
outbound, tier_changes = OutboundMessageRow.__table__, TierChangeRow.__table__
reminders, actions = Reminder.__table__, ReminderAction.__table__
BOARD_PAGE = 50
TIMELINE_PAGE = 50
SORTS = {
    "last_contact": (customers.c.last_inbound_at.desc().nulls_last(), customers.c.id),
    "churn_risk": (customers.c.churn_risk.desc().nulls_last(), customers.c.last_inbound_at.desc().nulls_last(),
                   customers.c.id),
    "intent": (customers.c.intent.desc().nulls_last(), customers.c.last_inbound_at.desc().nulls_last(), customers.c.id),
    "value": (customers.c.expected_orders.desc().nulls_last(), customers.c.last_inbound_at.desc().nulls_last(),
              customers.c.id),
    "name": (func.lower(func.coalesce(customers.c.name, customers.c.key)), customers.c.id),
}
"""How the board sorts; churn risk, intent and value (orders to expect in 90 days) are the keys
workers.figures keeps on each row, at most a few minutes behind."""


@dataclass(frozen=True)
class BoardQuery:
    owner: str | None = None  # None: everyone's (a manager)
    tier: str | None = None
    number: str | None = None  # business phone number id
    country: str | None = None
    campaign: str | None = None  # a campaign tag of ours they received
    signal: str | None = None
    search: str | None = None  # name, number, BSUID or username
    sort: str = "last_contact"
    page: int = 1


def board(connection: Connection, query: BoardQuery) -> tuple[list, int, dict[str, int]]:
    """A page of customers, how many match, and how many match in each tier (the tier filter
    aside, so the counts show where the rest are)."""
    conditions = _conditions(query)
    counts = dict(connection.execute(
        select(customers.c.tier, func.count()).where(*conditions).group_by(customers.c.tier)).all())
    if query.tier:
        conditions.append(customers.c.tier == query.tier)
    total = sum(counts.values()) if not query.tier else counts.get(query.tier, 0)
    rows = connection.execute(
        select(customers.c.id, customers.c.key, customers.c.name, customers.c.wa_id, customers.c.user_id,
               customers.c.username, customers.c.country, customers.c.timezone, customers.c.tier,
               customers.c.tier_since, customers.c.owner, customers.c.last_inbound_at, customers.c.last_outbound_at,
               customers.c.interactions, customers.c.phone_number_id, customers.c.opted_out, customers.c.unreachable,
               customers.c.churn_risk, customers.c.intent, customers.c.expected_orders)
        .where(*conditions).order_by(*SORTS.get(query.sort, SORTS["last_contact"]))
        .limit(BOARD_PAGE).offset((max(query.page, 1) - 1) * BOARD_PAGE)
    ).all()
    return rows, total, {tier.value: counts.get(tier.value, 0) for tier in Tier}


def _conditions(query: BoardQuery) -> list:
    conditions = []
    if query.owner is not None:
        conditions.append(customers.c.owner == query.owner)
    if query.number:
        conditions.append(customers.c.phone_number_id == query.number)
    if query.country:
        conditions.append(customers.c.country == query.country.upper())
    if query.campaign:
        conditions.append(exists().where(outbound.c.customer_id == customers.c.id, outbound.c.campaign == query.campaign))
    if query.signal:
        conditions.append(customers.c.state["signals"][query.signal].as_string().is_not(None))
    if query.search:
        text = query.search.strip()
        digits = re.sub(r"[\s+().-]", "", text)  # a number as people write it: +49 151 0310-9757
        conditions.append(or_(
            customers.c.search_name.contains(normalise(text), autoescape=True),  # Lucía, lucia and LUCIA alike
            customers.c.key == text,
            customers.c.id.in_(select(aliases.c.customer_id).where(aliases.c.value.in_({text, digits}))),
            # with or without its country code
            customers.c.wa_id.contains(digits, autoescape=True) if digits.isdigit() else customers.c.key == text,
            func.lower(customers.c.username).contains(text.lower(), autoescape=True),
        ))
    return conditions


def choices(connection: Connection, owner: str | None) -> dict[str, list[str]]:
    """The values the board's filters offer for these customers: business numbers, countries,
    campaign tags."""
    scope = [customers.c.owner == owner] if owner is not None else []
    numbers = connection.execute(select(customers.c.phone_number_id).where(
        customers.c.phone_number_id.is_not(None), *scope).distinct().order_by(customers.c.phone_number_id)).scalars()
    countries = connection.execute(select(customers.c.country).where(
        customers.c.country.is_not(None), *scope).distinct().order_by(customers.c.country)).scalars()
    campaigns = connection.execute(select(outbound.c.campaign).join(customers, customers.c.id == outbound.c.customer_id)
                                   .where(outbound.c.campaign.is_not(None), *scope).distinct()
                                   .order_by(outbound.c.campaign)).scalars()
    return {"numbers": list(numbers), "countries": list(countries), "campaigns": list(campaigns)}


def customer_row(connection: Connection, key: str):
    """A customer by key or any alias they had (wa_id with or without +, BSUID, username)."""
    row = connection.execute(select(customers).where(customers.c.key == key)).first()
    if row is not None:
        return row
    owner = connection.execute(select(aliases.c.customer_id).where(
        aliases.c.value.in_({key, key.lstrip("+")})).limit(1)).scalar()
    return connection.execute(select(customers).where(customers.c.id == owner)).first() if owner is not None else None


@dataclass(frozen=True)
class Moment:
    """One line of a customer's timeline."""

    at: int
    what: str  # message, ours, tier, followup, preference, identity
    title: str
    detail: str = ""
    until: int | None = None  # a snooze's end


def timeline(connection: Connection, customer_id: int, before: int | None, names: Mapping[str, str]) -> list[Moment]:
    """The newest TIMELINE_PAGE moments before `before` (all of them that share the last one's
    instant too, so that the next page, before that instant, misses none); `names` are the reps'
    names by id."""
    def newest(query, column):
        if before is not None:
            query = query.where(column < before)
        return connection.execute(query.order_by(column.desc()).limit(TIMELINE_PAGE + 1)).all()

    moments = [_event_moment(row) for row in newest(
        select(events.c.kind, events.c.type, events.c.at, events.c.data)
        .where(events.c.customer_id == customer_id, events.c.kind.in_(
            [EventKind.MESSAGE.value, EventKind.PREFERENCE.value, EventKind.IDENTITY.value])), events.c.at)]
    moments += [_outbound_moment(row) for row in newest(
        select(outbound).where(outbound.c.customer_id == customer_id), outbound.c.at)]
    moments += [Moment(row.at, "tier", f"{(row.from_tier or 'new').capitalize()} → {row.to_tier}",
                       _CAUSES.get(row.cause, row.cause)) for row in newest(
        select(tier_changes).where(tier_changes.c.customer_id == customer_id), tier_changes.c.at)]
    moments += [moment for row in newest(
        select(actions, reminders.c.rule).join(reminders, and_(reminders.c.id == actions.c.reminder_id,
                                                               reminders.c.rep == actions.c.rep))
        .where(reminders.c.customer_id == customer_id), actions.c.at)
        if (moment := _action_moment(row, names)) is not None]
    moments += [Moment(row.created_at, "followup", f"{_title(row.rule)}: a follow-up for {names.get(row.rep, row.rep)}")
                for row in newest(select(reminders).where(reminders.c.customer_id == customer_id,
                                                          reminders.c.close_reason.is_distinct_from(HELD_BACK)),
                                  reminders.c.created_at)]
    moments.sort(key=lambda moment: moment.at, reverse=True)
    if len(moments) <= TIMELINE_PAGE:
        return moments
    last = moments[TIMELINE_PAGE - 1].at
    return [moment for moment in moments if moment.at >= last]


_CAUSES = {"event": "by their activity", "time": "as time passed", "unreachable": "a delivery failed for good",
           "merge": "when two records of one person were merged", "rebuild": "found by a rebuild"}
_STATUS = {0: "not yet sent", 1: "sent", 2: "delivered", 3: "read", 4: "played"}


def _event_moment(row) -> Moment:
    data = row.data or {}
    if row.kind == EventKind.MESSAGE.value:
        signals = ", ".join(signal.replace("_", " ") for signal in data.get("sig", []))
        return Moment(row.at, "message", f"They sent {_type(row.type)}", signals)
    if row.kind == EventKind.PREFERENCE.value:
        return Moment(row.at, "preference", "Marketing messages: " + ("stopped" if row.type == "stop" else row.type))
    return Moment(row.at, "identity", "Their number or WhatsApp id changed")


def _outbound_moment(row) -> Moment:
    status = f"failed (error {row.error_code})" if row.failed else _STATUS.get(row.rank, "sent")
    return Moment(row.at, "ours", "We sent a message", status + (f" · campaign {row.campaign}" if row.campaign else ""))


def _action_moment(row, names: Mapping[str, str]) -> Moment | None:
    """What was done about a follow-up, in words; None for the receiving side of a reassignment
    (the giving side already says it)."""
    detail = row.detail or {}
    who = names.get(row.actor, row.actor) if row.actor else "wapulse"
    words = {
        Action.DONE: f"{who} marked it done",
        Action.SNOOZE: f"{who} snoozed it",
        Action.WOKE: "back after its snooze, sent again",
        Action.REASSIGN: f"{who} gave the customer to {names.get(detail.get('to'), detail.get('to'))}",
        Action.TEMPLATE: f"{who} sent the template {detail.get('template', '')}",
        Action.REPLIED: "closed: we replied",
        Action.CAME_BACK: "closed: they wrote again",
    }
    if row.action == Action.REASSIGN and "to" not in detail:
        return None
    return Moment(row.at, "followup", f"{_title(row.rule)}: {words.get(Action(row.action), row.action)}",
                  until=detail.get("until"))


def _title(rule: str) -> str:
    return RULE_TITLES.get(Rule(rule), rule) if rule in {r.value for r in Rule} else rule


def _type(message_type: str) -> str:
    return {"text": "a text", "image": "a photo", "audio": "an audio", "video": "a video", "document": "a document",
            "sticker": "a sticker", "location": "a location", "contacts": "contacts", "reaction": "a reaction",
            "interactive": "a reply to a list or button", "button": "a button reply", "order": "an order",
            "edit": "an edit", "revoke": "a deleted message"}.get(message_type, f"a {message_type} message")
