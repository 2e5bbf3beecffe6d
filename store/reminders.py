"""Reminders from the tier history: planned once per crossing, delivered once per channel.

A tier change is planned once its customer is settled: every body handed off before the last
batch that wrote them has committed (workers.inbox.unsettled_from), so that with several
workers committing out of order a change that a batch still running takes back owes nothing, as
with one worker. Each rule a change fires owes a reminder to each recipient, with an id made
from the crossing, so a change derived again later owes one that exists already. Rules of time
are owed the same way, by whichever transaction finds them due first; on PostgreSQL the others
skip the rows it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

from sqlalchemy import Connection, and_, bindparam, func, or_, select, true, update

from scoring.reminders import (
    OPTED_OUT, OWNER, UNDELIVERABLE, CustomerFacts, ReminderRules, Rule, compose, reminder_id, rules_for_change, time_rule_instants,
)
from scoring.events import EventKind
from scoring.followups import Action, State
from scoring.reps import OwnerPolicy, Rep
from scoring.tiers import Cause, Tier
from store.db import in_chunks
from store.history import tier_changes
from store.models import Customer, CustomerAlias, EventRow, Reminder, ReminderDelivery

customers, aliases, reminders, deliveries, events = (
    Customer.__table__, CustomerAlias.__table__, Reminder.__table__, ReminderDelivery.__table__, EventRow.__table__,
)
PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
"""Delivery states; cancelled: its follow-up was closed before it went out."""


@dataclass(frozen=True)
class ReminderSetup:
    rules: ReminderRules
    reps: Mapping[str, Rep]
    owners: OwnerPolicy

    @cached_property
    def rep_numbers(self) -> frozenset[str]:
        """The reps' own WhatsApp numbers: a rep who writes to the business number (to open her
        window for WhatsApp reminders) is not a customer to be reminded of."""
        return frozenset(channel.settings["to"] for rep in self.reps.values() for channel in rep.channels
                         if channel.type == "whatsapp")


def plan_reminders(connection: Connection, setup: ReminderSetup, now: int, touched: Iterable[int] = ()) -> list[int]:
    """For `touched` customers (just written, their rows locked by the caller): a default owner,
    the instant of their next rule of time, and the reminder an opt-out owes. Returns the ids of
    the deliveries created. Callers hold `store.db.write_transaction`."""
    touched = sorted(touched)
    _give_default_owners(connection, touched, setup.owners)
    _schedule_time_rules(connection, touched, setup.rules)
    return _plan_opt_outs(connection, setup, now, touched)


def plan_settled(connection: Connection, setup: ReminderSetup, now: int, unsettled_from: int | None) -> list[int]:
    """Owe what the tier changes not planned yet and the rules of time now due fire, for the
    customers last written before inbox position `unsettled_from` (all of them when None).
    Returns the ids of the deliveries created."""
    settled = true() if unsettled_from is None else or_(customers.c.written_through.is_(None),
                                                          customers.c.written_through < unsettled_from)
    return _plan_tier_changes(connection, setup, now, settled) + _plan_time_rules(connection, setup, now, settled)


def _plan_tier_changes(connection: Connection, setup: ReminderSetup, now: int, settled) -> list[int]:
    changes = connection.execute(
        select(tier_changes).join(customers, customers.c.id == tier_changes.c.customer_id)
        .where(tier_changes.c.planned.is_(False), settled).order_by(tier_changes.c.id)
        .with_for_update(of=tier_changes, skip_locked=True)
    ).all()
    owed = [
        (change, rule)
        for change in changes
        if now - change.at <= setup.rules.max_age_s
        for rule in rules_for_change(_tier(change.from_tier), Tier(change.to_tier), Cause(change.cause))
        if rule in setup.rules.enabled
    ]
    people = _customers(connection, {change.customer_id for change, _ in owed}, setup.owners)
    created: list[int] = []
    for change, rule in owed:
        crossing = Crossing(change.customer_id, rule, change.at, _tier(change.from_tier), Tier(change.to_tier),
                            UNDELIVERABLE if rule == Rule.UNREACHABLE else None)
        created += _owe(connection, setup, crossing, people[change.customer_id], now)
    for chunk in in_chunks([change.id for change in changes]):
        connection.execute(update(tier_changes).where(tier_changes.c.id.in_(chunk)).values(planned=True))
    return created


def _schedule_time_rules(connection: Connection, customer_ids: list[int], rules: ReminderRules) -> None:
    _set_next_reminders(connection, {
        row.id: min((at for _, at in _instants(row, rules)), default=None)
        for chunk in in_chunks(customer_ids)
        for row in connection.execute(select(*_TIME_COLUMNS).where(customers.c.id.in_(chunk)))
    })


def _set_next_reminders(connection: Connection, next_at: dict[int, int | None]) -> None:
    """Each customer's next rule-of-time instant, in one statement."""
    if next_at:
        connection.execute(
            update(customers).where(customers.c.id == bindparam("customer_id"))
            .values(next_reminder_at=bindparam("next_reminder_at")),
            [{"customer_id": customer_id, "next_reminder_at": at} for customer_id, at in next_at.items()],
        )


def _plan_time_rules(connection: Connection, setup: ReminderSetup, now: int, settled) -> list[int]:
    """The settled customers whose next rule of time is due: owe it (unless it is old news), then
    move their instant to the next rule still ahead. Customers another transaction holds are
    left to it, or to the next look."""
    due = connection.execute(select(*_TIME_COLUMNS).where(customers.c.next_reminder_at <= now, settled)
                             .order_by(customers.c.id).with_for_update(key_share=True, skip_locked=True)).all()
    people = _customers(connection, {row.id for row in due}, setup.owners)
    created, ahead = [], {}
    for row in due:
        instants = _instants(row, setup.rules)
        tier = _tier(row.tier) or Tier.UNENGAGED
        for rule, at in instants:
            if at <= now and now - at <= setup.rules.max_age_s:
                created += _owe(connection, setup, Crossing(row.id, rule, at, tier, tier), people[row.id], now)
        ahead[row.id] = min((at for _, at in instants if at > now), default=None)
    _set_next_reminders(connection, ahead)
    return created


def _plan_opt_outs(connection: Connection, setup: ReminderSetup, now: int, customer_ids: list[int]) -> list[int]:
    """`unreachable` also fires when a customer opts out of marketing (a 131050 failure or a
    `stop` preference), at the instant of the opt-out: its id makes a second look owe nothing."""
    if Rule.UNREACHABLE not in setup.rules.enabled:
        return []
    opted_out = [
        (row.id, _tier(row.tier) or Tier.UNENGAGED, (row.state or {}).get("consent_at"))
        for chunk in in_chunks(customer_ids)
        for row in connection.execute(select(customers.c.id, customers.c.tier, customers.c.state)
                                      .where(customers.c.id.in_(chunk), customers.c.opted_out.is_(True)))
    ]
    recent = [(customer_id, tier, at) for customer_id, tier, at in opted_out
              if at is not None and now - at <= setup.rules.max_age_s]
    people = _customers(connection, {customer_id for customer_id, _, _ in recent}, setup.owners)
    return [
        delivery
        for customer_id, tier, at in recent
        for delivery in _owe(connection, setup, Crossing(customer_id, Rule.UNREACHABLE, at, tier, tier, OPTED_OUT),
                             people[customer_id], now)
    ]


_TIME_COLUMNS = (customers.c.id, customers.c.tier, customers.c.question_since, customers.c.awaiting_reply_since,
                 customers.c.last_inbound_at)


def _instants(row, rules: ReminderRules) -> list[tuple[Rule, int]]:
    return time_rule_instants(_tier(row.tier), row.question_since, row.awaiting_reply_since, row.last_inbound_at, rules)


def _tier(value: str | None) -> Tier | None:
    return Tier(value) if value else None


@dataclass(frozen=True)
class Crossing:
    customer_id: int
    rule: Rule
    at: int
    from_tier: Tier | None
    to_tier: Tier
    reason: str | None = None  # why an `unreachable` customer is: UNDELIVERABLE or OPTED_OUT


def _owe(connection: Connection, setup: ReminderSetup, crossing: Crossing, person: tuple[CustomerFacts, str | None],
         now: int) -> list[int]:
    facts, owner = person
    if facts.wa_id in setup.rep_numbers:
        return []
    key = reminder_id(facts.key, crossing.rule, crossing.at)
    recipients = [owner if who == OWNER else who for who in setup.rules.recipients_of(crossing.rule)]
    owed_to = [rep for rep in dict.fromkeys(recipients) if rep in setup.reps]
    already = set(connection.execute(select(reminders.c.rep).where(reminders.c.id == key)).scalars())
    held_back = setup.rules.holds_back(key, crossing.rule)
    created = []
    for rep_id in owed_to:
        if rep_id in already:
            continue
        rep = setup.reps[rep_id]
        content = compose(key, crossing.rule, rep_id, crossing.from_tier, crossing.to_tier, crossing.at, facts,
                          setup.rules, now, crossing.reason)
        closed = {"state": State.CLOSED.value, "closed_at": now, "close_reason": Action.HELD_BACK.value} if held_back else {}
        connection.execute(reminders.insert().values(id=key, rep=rep_id, customer_id=crossing.customer_id,
                                                     rule=crossing.rule.value, at=crossing.at, created_at=now,
                                                     content=content, **closed))
        if not held_back:  # kept, closed and never sent: what report.effectiveness compares with
            created += queue_deliveries(connection, rep, key, crossing.rule, now)
    return created


def queue_deliveries(connection: Connection, rep: Rep, reminder: str, rule: Rule, now: int, wave: int = 0) -> list[int]:
    """A delivery of the reminder on each of the rep's channels, due now or when the rep's quiet
    hours or daily digest let it go; `wave` counts the times it goes out (a snooze that ends sends
    it again). Returns the deliveries' ids."""
    held_until = rep.hold_until(now, rule)
    return [
        connection.execute(
            deliveries.insert().values(reminder_id=reminder, rep=rep.id, channel=label, status=PENDING, wave=wave,
                                       due_at=held_until or now, held=held_until is not None, attempts=0)
            .returning(deliveries.c.id)
        ).scalar_one()
        for label in rep.channel_labels()
    ]


def _give_default_owners(connection: Connection, customer_ids: list[int], owners: OwnerPolicy) -> None:
    """Customers just written who have no owner get the default of the number they write to (a
    rep, or one of a list in turn by customer id), so that every customer is some rep's from the
    start."""
    given = {
        row.id: owner
        for chunk in in_chunks(customer_ids)
        for row in connection.execute(select(customers.c.id, customers.c.phone_number_id)
                                      .where(customers.c.id.in_(chunk), customers.c.owner.is_(None)))
        if (owner := owners.pick(row.phone_number_id, row.id))
    }
    if given:
        connection.execute(update(customers).where(customers.c.id == bindparam("customer_id"))
                           .values(owner=bindparam("owner")),
                           [{"customer_id": customer_id, "owner": owner} for customer_id, owner in given.items()])


def _customers(connection: Connection, ids: set[int], owners: OwnerPolicy) -> dict[int, tuple[CustomerFacts, str | None]]:
    """Each customer's facts and owner; one without an owner gets the default of their number."""
    _give_default_owners(connection, sorted(ids), owners)
    found = {}
    for chunk in in_chunks(sorted(ids)):
        for row in connection.execute(select(customers).where(customers.c.id.in_(chunk))):
            state = row.state or {}
            facts = CustomerFacts(row.key, row.wa_id, row.user_id, row.name, row.timezone, row.last_inbound_at,
                                  tuple(state.get("last_signals") or ()), row.last_outbound_at,
                                  state.get("last_outbound_campaign"), row.phone_number_id)
            found[row.id] = (facts, row.owner)
    return found


def delivery_rows(connection: Connection, status: str | None = None, customer_id: int | None = None) -> list:
    """Deliveries with their reminders (rule, crossing instant, content), newest first."""
    query = select(deliveries, reminders.c.rule, reminders.c.at, reminders.c.customer_id, reminders.c.content).join(
        reminders, and_(reminders.c.id == deliveries.c.reminder_id, reminders.c.rep == deliveries.c.rep))
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if customer_id is not None:
        query = query.where(reminders.c.customer_id == customer_id)
    return connection.execute(query.order_by(deliveries.c.id.desc())).all()


def last_message_from(connection: Connection, wa_id: str, phone_number_id: str) -> int | None:
    """When the person behind `wa_id` last wrote to this business number (a rep's own 24-hour
    window for free-form WhatsApp messages), or None if they never did."""
    customer_id = select(aliases.c.customer_id).where(aliases.c.kind == "wa_id", aliases.c.value == wa_id)
    return connection.execute(
        select(func.max(events.c.at)).where(events.c.customer_id.in_(customer_id), events.c.kind == EventKind.MESSAGE.value,
                                            events.c.phone_number_id == phone_number_id)
    ).scalar()


def retry_delivery(connection: Connection, delivery_id: int, now: int) -> bool:
    """Put a failed delivery back in line, due now; False when there is no failed one by that id."""
    return connection.execute(
        update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.status == FAILED)
        .values(status=PENDING, due_at=now, attempts=0, last_error=None)
    ).rowcount == 1


def assign_owners(connection: Connection, pairs: list[tuple[str, str]]) -> list[str]:
    """Set owners from (customer key, wa_id or BSUID; rep id) pairs. Returns the customers no
    one is known as; when there are any, nothing is changed."""
    wanted = {customer: rep for customer, rep in pairs}
    found: dict[str, int] = {}
    for chunk in in_chunks(sorted(wanted)):
        found.update(connection.execute(select(customers.c.key, customers.c.id).where(customers.c.key.in_(chunk))).all())
        found.update(connection.execute(
            select(aliases.c.value, aliases.c.customer_id).where(aliases.c.value.in_([v.lstrip("+") for v in chunk]))
        ).all())
    unknown = [customer for customer in wanted if customer.lstrip("+") not in found and customer not in found]
    if unknown:
        return unknown
    for customer, rep in wanted.items():
        customer_id = found.get(customer, found.get(customer.lstrip("+")))
        connection.execute(update(customers).where(customers.c.id == customer_id).values(owner=rep))
    return []
