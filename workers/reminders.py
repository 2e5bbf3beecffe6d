"""Reminder jobs: planning inside the write transactions that record tier changes, and delivery
on a queue of its own.

Delivery claims each due delivery row before sending (pending -> sending, a conditional UPDATE:
of two workers racing, one wins), so a reminder goes out at most once per channel; timeouts, 5xx
and 429 put it back with a backoff, any other refusal marks it failed for `wapulse reminders`.
A delivery left `sending` by a worker that died is put back after `STUCK_AFTER_S`: the receiver
may then see it twice, and the webhook channel's `id` and `Idempotency-Key` let it tell.
"""

from __future__ import annotations

import logging
from typing import Iterable

from jinja2 import Environment, StrictUndefined
from redis import Redis
from rq import Queue
from sqlalchemy import Connection, and_, select, update

from store.db import engine_for
from store.models import Reminder, ReminderDelivery
from store.reminders import FAILED, PENDING, SENDING, SENT, plan_reminders
from workers import channels
from workers.runtime import redis_connection, settings

log = logging.getLogger(__name__)

REMINDER_QUEUE = "wapulse-reminders"
DELIVERY_REQUESTED = "wapulse:reminders:delivery-requested"
DELIVERY_JOB = "workers.reminders.deliver_due"
BACKOFF_S = (10, 30, 120, 600, 1800, 3600)  # after the 1st, 2nd... failed attempt
MAX_ATTEMPTS = len(BACKOFF_S) + 1
STUCK_AFTER_S = 600
CLAIM_BATCH = 50
reminders, deliveries = Reminder.__table__, ReminderDelivery.__table__

TEXT = Environment(undefined=StrictUndefined, autoescape=False).from_string(
    "{{ headline }}: {{ customer.name or customer.key }}"
    "{% if customer.wa_id %} (+{{ customer.wa_id }}){% endif %}"
    "{% if days_silent is not none %}, {{ days_silent }} days silent{% endif %}."
    "{% if signals %} Last signals: {{ signals | join(', ') }}.{% endif %}"
    "{% if customer_local_time %} Their local time: {{ customer_local_time[11:16] }}.{% endif %}"
    " {{ 'Outside the 24-hour window: a template is needed.' if template_required"
    " else 'Within the 24-hour window: a free-form message is allowed.' }}"
    " Next: {{ suggested_action }}"
)
HEADLINES = {
    "went_cold": "Went cold", "cooling": "Cooling down", "heating": "Heating up", "reactivated": "Came back",
    "unreachable": "Unreachable", "unanswered": "Question unanswered", "window_closing": "Window closing",
}


def plan_within(connection: Connection, touched: Iterable[int] = ()) -> bool:
    """Plan reminders inside the caller's write transaction, `touched` being the customers it
    wrote; True when some are due to be sent."""
    config = settings()
    if not config.reps:
        return False
    return bool(plan_reminders(connection, config.reminder_setup, config.now_ts(), touched))


def request_delivery(redis: Redis) -> None:
    """Enqueue one delivery job unless one is already waiting."""
    if redis.set(DELIVERY_REQUESTED, 1, nx=True, ex=60):
        Queue(REMINDER_QUEUE, connection=redis).enqueue(DELIVERY_JOB, job_timeout=600, result_ttl=0,
                                                        description="deliver due reminders")


def deliver_due() -> dict:
    """RQ job (and cron every minute): send every delivery that is due, each claimed first."""
    redis_connection().delete(DELIVERY_REQUESTED)
    engine, now = engine_for(settings().database_url), settings().now_ts()
    counts = {SENT: 0, PENDING: 0, FAILED: 0}
    with engine.begin() as connection:  # put back what a dead worker left half-sent
        connection.execute(update(deliveries).where(deliveries.c.status == SENDING,
                                                    deliveries.c.due_at <= now - STUCK_AFTER_S).values(status=PENDING))
    while due := _due(engine, now):
        for delivery_id in due:
            if (outcome := _deliver(engine, delivery_id, now)) is not None:
                counts[outcome] += 1
    return counts


def _due(engine, now: int) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(
            select(deliveries.c.id).where(deliveries.c.status == PENDING, deliveries.c.due_at <= now)
            .order_by(deliveries.c.due_at, deliveries.c.id).limit(CLAIM_BATCH)
        ).scalars())


def _deliver(engine, delivery_id: int, now: int) -> str | None:
    """Claim, send, record; None when another worker claimed it first."""
    with engine.begin() as connection:
        claimed = connection.execute(
            update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.status == PENDING)
            .values(status=SENDING, attempts=deliveries.c.attempts + 1, due_at=now)
        ).rowcount
        if not claimed:
            return None
        row = connection.execute(
            select(deliveries, reminders.c.content).join(
                reminders, and_(reminders.c.id == deliveries.c.reminder_id, reminders.c.rep == deliveries.c.rep))
            .where(deliveries.c.id == delivery_id)
        ).one()
    outcome, error, due_at = _send(row, now)
    with engine.begin() as connection:
        connection.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
            status=outcome, last_error=error, due_at=due_at, sent_at=now if outcome == SENT else None))
    if error:
        log.warning("reminder delivery %d on %s: %s (%s)", delivery_id, row.channel, error, outcome)
    return outcome


def _send(row, now: int) -> tuple[str, str | None, int]:
    """(status, error, due_at) after one attempt."""
    rep = settings().reps.get(row.rep)
    labels = rep.channel_labels() if rep else []
    if row.channel not in labels:
        return FAILED, f"rep {row.rep} has no channel {row.channel} any more", now
    channel = rep.channels[labels.index(row.channel)]
    content = row.content
    try:
        mail = channels.MailSettings(settings().smtp_url, settings().mail_from) if settings().smtp_url else None
        headline = HEADLINES[content["rule"]]
        channels.send(channel, content, headline, TEXT.render(headline=headline, **content), mail)
    except channels.RetryLater as error:
        if row.attempts >= MAX_ATTEMPTS:
            return FAILED, f"gave up after {row.attempts} attempts: {error}", now
        return PENDING, str(error), now + BACKOFF_S[row.attempts - 1]
    except channels.Refused as error:
        return FAILED, str(error), now
    return SENT, None, now

