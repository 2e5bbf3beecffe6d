"""Follow-ups in the store: the open reminders a rep works through, what they do about them
(done, snooze, reassign), and what wapulse does by itself (settle one when the customer's
behaviour answers it, wake a snoozed one and send it again). The rules are scoring.followups'."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import Connection, case, delete, func, select, tuple_, update

from scoring.followups import URGENCY, Action, State, settled_by
from scoring.reminders import Rule
from store.db import in_chunks
from store.models import Customer, Reminder, ReminderAction, ReminderDelivery
from store.reminders import CANCELLED, PENDING, ReminderSetup, queue_deliveries

reminders, actions, deliveries = Reminder.__table__, ReminderAction.__table__, ReminderDelivery.__table__
customers = Customer.__table__
FOLLOWUP_PAGE = 200  # open follow-ups a page lists at most: enough for any rep's day
_URGENCY_RANK = case({rule.value: rank for rank, rule in enumerate(URGENCY)}, value=reminders.c.rule, else_=len(URGENCY))
_FOLLOWUP_COLUMNS = (
    reminders.c.id, reminders.c.rep, reminders.c.rule, reminders.c.at, reminders.c.created_at, reminders.c.state,
    reminders.c.snoozed_until,
    reminders.c.content, reminders.c.customer_id, customers.c.key, customers.c.name, customers.c.wa_id,
    customers.c.user_id, customers.c.username, customers.c.tier, customers.c.owner, customers.c.country,
    customers.c.timezone, customers.c.last_inbound_at, customers.c.awaiting_reply_since, customers.c.question_since,
    customers.c.opted_out, customers.c.unreachable, customers.c.phone_number_id, customers.c.state.label("facts"),
)


def followups(connection: Connection, rep: str | None, state: State, limit: int = FOLLOWUP_PAGE) -> list:
    """A rep's follow-ups in one state (every rep's for None) with their customers, most urgent
    first (snoozed ones: the soonest back first)."""
    query = (select(*_FOLLOWUP_COLUMNS).join(customers, customers.c.id == reminders.c.customer_id)
             .where(reminders.c.state == state.value))
    if rep is not None:
        query = query.where(reminders.c.rep == rep)
    order = (reminders.c.snoozed_until,) if state == State.SNOOZED else (_URGENCY_RANK, reminders.c.at)
    return connection.execute(query.order_by(*order, reminders.c.id).limit(limit)).all()


def of_customer(connection: Connection, customer_id: int) -> list:
    """The customer's follow-ups not closed yet, every rep's, most urgent first."""
    return connection.execute(
        select(*_FOLLOWUP_COLUMNS).join(customers, customers.c.id == reminders.c.customer_id)
        .where(reminders.c.customer_id == customer_id, reminders.c.state != State.CLOSED.value)
        .order_by(_URGENCY_RANK, reminders.c.at, reminders.c.rep)
    ).all()


def count_open(connection: Connection, rep: str | None) -> int:
    query = select(func.count()).select_from(reminders).where(reminders.c.state == State.OPEN.value)
    return connection.execute(query.where(reminders.c.rep == rep) if rep is not None else query).scalar_one()


def followup(connection: Connection, reminder: str, rep: str):
    """One follow-up with its customer, or None."""
    return connection.execute(select(*_FOLLOWUP_COLUMNS).join(customers, customers.c.id == reminders.c.customer_id)
                              .where(reminders.c.id == reminder, reminders.c.rep == rep)).first()


def close(connection: Connection, reminder: str, rep: str, action: Action, actor: str | None, now: int,
          detail: dict | None = None) -> bool:
    """Close an open or snoozed follow-up, record why and cancel what was still to go out to the
    rep about it; False if it was closed already."""
    closed = connection.execute(
        update(reminders).where(reminders.c.id == reminder, reminders.c.rep == rep,
                                reminders.c.state != State.CLOSED.value)
        .values(state=State.CLOSED.value, closed_at=now, closed_by=actor, close_reason=action.value, snoozed_until=None)
    ).rowcount == 1
    if closed:
        _cancel_pending(connection, reminder, rep)
        record(connection, reminder, rep, actor, action, now, detail or {})
    return closed


def snooze(connection: Connection, reminder: str, rep: str, actor: str, until: int, now: int) -> bool:
    """Put an open or snoozed follow-up off until `until`; its deliveries still pending wait too."""
    snoozed = connection.execute(
        update(reminders).where(reminders.c.id == reminder, reminders.c.rep == rep,
                                reminders.c.state != State.CLOSED.value)
        .values(state=State.SNOOZED.value, snoozed_until=until)
    ).rowcount == 1
    if snoozed:
        _cancel_pending(connection, reminder, rep)
        record(connection, reminder, rep, actor, Action.SNOOZE, now, {"until": until})
    return snoozed


def reassign(connection: Connection, setup: ReminderSetup, customer_id: int, to_rep: str, actor: str,
             now: int) -> list[int]:
    """The customer goes to `to_rep`, with every follow-up their owner still has open or snoozed
    about them: closed for the owner, owed anew to `to_rep` (and sent on their channels).
    Returns the deliveries queued."""
    owner = connection.execute(select(customers.c.owner).where(customers.c.id == customer_id)).scalar()
    connection.execute(update(customers).where(customers.c.id == customer_id).values(owner=to_rep))
    if owner is None or owner == to_rep:
        return []
    moving = connection.execute(
        select(reminders).where(reminders.c.customer_id == customer_id, reminders.c.rep == owner,
                                reminders.c.state != State.CLOSED.value)
    ).all()
    queued = []
    for row in moving:
        close(connection, row.id, owner, Action.REASSIGN, actor, now, {"to": to_rep})
        if connection.execute(select(reminders.c.id).where(reminders.c.id == row.id, reminders.c.rep == to_rep)).first():
            continue  # they were owed it already
        connection.execute(reminders.insert().values(
            id=row.id, rep=to_rep, customer_id=customer_id, rule=row.rule, at=row.at, created_at=now,
            content={**row.content, "rep": to_rep}, state=State.OPEN.value))
        record(connection, row.id, to_rep, actor, Action.REASSIGN, now, {"from": owner})
        queued += queue_deliveries(connection, setup.reps[to_rep], row.id, Rule(row.rule), now)
    return queued


def settle(connection: Connection, customer_ids: Iterable[int], now: int) -> int:
    """Close the follow-ups of these customers that their behaviour has answered (scoring's
    `settled_by`): our reply, or their coming back. Returns how many were closed."""
    closed = 0
    for chunk in in_chunks(sorted(customer_ids)):
        rows = connection.execute(
            select(reminders.c.id, reminders.c.rep, reminders.c.rule, reminders.c.at, customers.c.awaiting_reply_since,
                   customers.c.last_inbound_at)
            .join(customers, customers.c.id == reminders.c.customer_id)
            .where(reminders.c.customer_id.in_(chunk), reminders.c.state != State.CLOSED.value)
        ).all()
        for row in rows:
            if (action := settled_by(Rule(row.rule), row.at, row.awaiting_reply_since, row.last_inbound_at)) is not None:
                closed += close(connection, row.id, row.rep, action, None, now)
    return closed


def wake(connection: Connection, setup: ReminderSetup, now: int) -> list[int]:
    """Snoozed follow-ups whose snooze has ended: open again, and sent again on their rep's
    channels as a new wave. Returns the deliveries queued. Of two transactions waking at once
    (PostgreSQL), each takes the follow-ups the other has not locked."""
    queued = []
    for row in connection.execute(select(reminders).where(reminders.c.state == State.SNOOZED.value,
                                                          reminders.c.snoozed_until <= now)
                                  .with_for_update(skip_locked=True)).all():
        connection.execute(update(reminders).where(reminders.c.id == row.id, reminders.c.rep == row.rep)
                           .values(state=State.OPEN.value, snoozed_until=None))
        record(connection, row.id, row.rep, None, Action.WOKE, now, {})
        rep = setup.reps.get(row.rep)
        if rep is not None:
            wave = connection.execute(select(func.max(deliveries.c.wave)).where(
                deliveries.c.reminder_id == row.id, deliveries.c.rep == row.rep)).scalar()
            queued += queue_deliveries(connection, rep, row.id, Rule(row.rule), now, (wave or 0) + 1)
    return queued


def _cancel_pending(connection: Connection, reminder: str, rep: str) -> None:
    connection.execute(update(deliveries).where(deliveries.c.reminder_id == reminder, deliveries.c.rep == rep,
                                                deliveries.c.status == PENDING).values(status=CANCELLED))


def record(connection: Connection, reminder: str, rep: str, actor: str | None, action: Action, now: int,
           detail: dict) -> None:
    """Keep what was done about a follow-up (a template sent, say) with who did it and when."""
    connection.execute(actions.insert().values(reminder_id=reminder, rep=rep, actor=actor, action=action.value,
                                               at=now, detail=detail))


def delete_with_history(connection: Connection, pairs: list[tuple[str, str]]) -> None:
    """Delete follow-ups ((reminder id, rep) pairs) with their actions and deliveries."""
    for chunk in in_chunks(pairs):
        for table in (deliveries, actions, reminders):
            key = (table.c.id if table is reminders else table.c.reminder_id, table.c.rep)
            connection.execute(delete(table).where(tuple_(*key).in_(chunk)))
