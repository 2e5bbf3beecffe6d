"""Reminder jobs: planning inside the write transactions that record tier changes, and delivery
on a queue of its own.

Delivery claims each due delivery row before sending (pending -> sending, a conditional UPDATE:
of two workers racing, one wins), so a reminder goes out at most once per channel; the ones held
by quiet hours or a daily digest go out together as one digest; timeouts, 5xx
and 429 put it back with a backoff, any other refusal marks it failed for `wapulse reminders`.
A delivery left `sending` by a worker that died is put back after `STUCK_AFTER_S`: the receiver
may then see it twice, and the webhook channel's `id` and `Idempotency-Key` let it tell.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Iterable

from jinja2 import TemplateError
from redis import Redis
from rq import Queue
from sqlalchemy import Connection, and_, select, update

from store import followups
from store.db import retry_on_conflict, write_transaction
from store.models import Reminder, ReminderDelivery
from scoring.reminders import SERVICE_WINDOW_S
from store.reminders import FAILED, PENDING, SENDING, SENT, last_message_from, plan_reminders, plan_settled
from workers import channels, inbox, metrics
from workers.context import Context
from workers.settings import Settings
from workers.wording import Wording

log = logging.getLogger(__name__)

REMINDER_QUEUE = "wapulse-reminders"
DELIVERY_REQUESTED = "wapulse:reminders:delivery-requested"
DELIVERY_JOB = "workers.jobs.deliver_due"
BACKOFF_S = (10, 30, 120, 600, 1800, 3600)  # after the 1st, 2nd... failed attempt
MAX_ATTEMPTS = len(BACKOFF_S) + 1
STUCK_AFTER_S = 600
CLAIM_BATCH = 50
DELIVERY_BUDGET_S = 240  # then a fresh job goes on, so that with the longest deadline (300 s) a job ends in time
DELIVERY_JOB_TIMEOUT_S = 600  # RQ stops a delivery job that runs longer: from requests and from cron alike
DIGEST_MAX = 10  # reminders in one digest: what a person reads at once (and a WhatsApp text holds)
reminders, deliveries = Reminder.__table__, ReminderDelivery.__table__



def plan_within(connection: Connection, config: Settings, now: int, touched: Iterable[int] = ()) -> bool:
    """Inside the caller's write transaction, for `touched`, the customers it wrote: settle the
    follow-ups their behaviour answered, and owe what is theirs alone (see
    store.reminders.plan_reminders). True when deliveries are due."""
    if not config.reps:
        return False
    touched = sorted(touched)
    followups.settle(connection, touched, now)
    return bool(plan_reminders(connection, config.reminder_setup, now, touched))


def plan_settled_within(connection: Connection, config: Settings, now: int, unsettled_from: int | None) -> bool:
    """Owe the reminders of settled customers (store.reminders.plan_settled) and wake the snoozed
    follow-ups whose time has come, in the caller's transaction. True when deliveries are due."""
    if not config.reps:
        return False
    return bool(plan_settled(connection, config.reminder_setup, now, unsettled_from)
                + followups.wake(connection, config.reminder_setup, now))


def plan_settled_reminders(context: Context, from_inbox: bool) -> None:
    """After a batch is acknowledged (and from cron): plan for the customers that every body
    before them has now reached, in a short transaction of its own; not `from_inbox` (a replay
    in this process) every customer counts as settled, and delivery is left to the workers."""
    if not context.settings.reps:
        return
    unsettled_from = inbox.unsettled_from(context.redis) if from_inbox else None

    def plan() -> bool:
        with write_transaction(context.engine) as connection:
            return plan_settled_within(connection, context.settings, context.now_ts(), unsettled_from)

    if retry_on_conflict(plan) and from_inbox:
        request_delivery(context.redis)


def request_delivery(redis: Redis) -> None:
    """Enqueue one delivery job unless one is already waiting."""
    if redis.set(DELIVERY_REQUESTED, 1, nx=True, ex=60):
        Queue(REMINDER_QUEUE, connection=redis).enqueue(DELIVERY_JOB, job_timeout=DELIVERY_JOB_TIMEOUT_S, result_ttl=0,
                                                        description="deliver due reminders")


def deliver_due(context: Context) -> dict:
    """Send every delivery that is due, each claimed first;
    deliveries held for one channel (quiet hours, a daily digest) go together as one digest.

    Sends run side by side, at most `deliveries_in_flight` at once and each within
    `delivery_deadline_s`; a free sender claims the next delivery at once, so a slow rep's
    endpoint holds one sender for a bounded time and no one else's reminder waits behind it.
    This job runs on its own queue and worker: ingestion never waits on it."""
    context.redis.delete(DELIVERY_REQUESTED)
    config, engine, now = context.settings, context.engine, context.now_ts()
    with engine.begin() as connection:  # put back what a dead worker left half-sent, unless it has no attempt left
        stuck = and_(deliveries.c.status == SENDING, deliveries.c.due_at <= now - STUCK_AFTER_S)
        connection.execute(update(deliveries).where(stuck, deliveries.c.attempts >= MAX_ATTEMPTS).values(
            status=FAILED, last_error=f"gave up after {MAX_ATTEMPTS} attempts: the worker sending it stopped"))
        connection.execute(update(deliveries).where(stuck).values(status=PENDING))
    counts = Counter({SENT: 0, PENDING: 0, FAILED: 0})
    waiting: list[list[int]] = []  # groups found due, claimed only when a sender is free
    sending: set[Future] = set()
    stop_at = time.monotonic() + DELIVERY_BUDGET_S
    with ThreadPoolExecutor(config.deliveries_in_flight, thread_name_prefix="reminder-send") as senders:
        while True:
            while len(sending) < config.deliveries_in_flight and time.monotonic() < stop_at:
                if not waiting and not (waiting := _due(engine, now)):
                    break
                if rows := _claim(engine, waiting.pop(0), context.now_ts()):
                    sending.add(senders.submit(_send, context, rows))
            if not sending:
                break
            done, sending = wait(sending, return_when=FIRST_COMPLETED)
            for future in done:
                counts.update(future.result())
    if time.monotonic() >= stop_at and _due(engine, now):
        request_delivery(context.redis)  # a fresh job takes the rest, well before this one's timeout
    return dict(counts)


def _due(engine, now: int) -> list[list[int]]:
    """The next due deliveries, as groups to send: a held one brings every held delivery due on
    its rep's same channel; any other goes alone."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(deliveries.c.id, deliveries.c.rep, deliveries.c.channel, deliveries.c.held)
            .where(deliveries.c.status == PENDING, deliveries.c.due_at <= now)
            .order_by(deliveries.c.due_at, deliveries.c.id).limit(CLAIM_BATCH)
        ).all()
        groups, digests = [], set()
        for row in rows:
            if not row.held:
                groups.append([row.id])
            elif (row.rep, row.channel) not in digests:
                digests.add((row.rep, row.channel))
                groups.append(list(connection.execute(
                    select(deliveries.c.id).where(deliveries.c.status == PENDING, deliveries.c.due_at <= now,
                                                  deliveries.c.held.is_(True), deliveries.c.rep == row.rep,
                                                  deliveries.c.channel == row.channel)
                    .order_by(deliveries.c.id).limit(DIGEST_MAX)
                ).scalars()))
        return groups


def _claim(engine, group: list[int], now: int) -> list:
    """Claim the deliveries of a group still pending (another worker may have taken some): the
    rows claimed, with their reminders' content, oldest first."""
    with engine.begin() as connection:
        claimed = connection.execute(
            update(deliveries).where(deliveries.c.id.in_(group), deliveries.c.status == PENDING)
            .values(status=SENDING, attempts=deliveries.c.attempts + 1, due_at=now).returning(deliveries.c.id)
        ).scalars().all()
        if not claimed:
            return []
        return connection.execute(
            select(deliveries, reminders.c.content).join(
                reminders, and_(reminders.c.id == deliveries.c.reminder_id, reminders.c.rep == deliveries.c.rep))
            .where(deliveries.c.id.in_(claimed)).order_by(deliveries.c.id)
        ).all()


def _send(context: Context, rows: list) -> Counter:
    """Send claimed deliveries (one, or a digest) and record the outcome on each: a failure
    worth retrying backs each row off by its own attempts, from the moment the attempt ended,
    and gives up on those out of them."""
    failure = _attempt(context, rows)
    ended = context.now_ts()
    counts = Counter()
    with context.engine.begin() as connection:
        for row in rows:
            if failure is None:
                status, error, due_at = SENT, None, ended
            elif isinstance(failure, channels.RetryLater) and row.attempts < MAX_ATTEMPTS:
                status, error, due_at = PENDING, str(failure), ended + BACKOFF_S[row.attempts - 1]
            elif isinstance(failure, channels.RetryLater):
                status, error, due_at = FAILED, f"gave up after {row.attempts} attempts: {failure}", ended
            else:
                status, error, due_at = FAILED, str(failure), ended
            connection.execute(update(deliveries).where(deliveries.c.id == row.id).values(
                status=status, last_error=error, due_at=due_at, sent_at=ended if status == SENT else None))
            counts[status] += 1
            metrics.REMINDERS.labels(rule=row.content.get("rule", "unknown"), outcome=status).inc()
    if failure is not None:
        log.warning("reminder deliveries %s on %s: %s", [row.id for row in rows], rows[0].channel, failure)
    return counts


def _attempt(context: Context, rows: list) -> channels.RetryLater | channels.Refused | None:
    """One attempt at sending: None when it went, else why not."""
    config, first = context.settings, rows[0]
    rep = config.reps.get(first.rep)
    labels = rep.channel_labels() if rep else []
    if first.channel not in labels:
        return channels.Refused(f"rep {first.rep} has no channel {first.channel} any more")
    channel = rep.channels[labels.index(first.channel)]
    accounts = channels.Accounts(
        mail=channels.MailSettings(config.smtp_url, config.mail_from) if config.smtp_url else None,
        whatsapp=channels.WhatsAppSettings(config.whatsapp_token, config.graph_url, config.alert_sender)
        if config.whatsapp_token else None,
    )
    try:
        outgoing = _outgoing(config.reminder_wording, rep.name, [_as_sent(row) for row in rows])
        free_form = _rep_window_open(context.engine, channel, outgoing, accounts, context.now_ts())
        channels.send(channel, outgoing, accounts, config.delivery_deadline_s, free_form=free_form)
    except TemplateError as error:  # a custom template that the start-up samples did not trip
        return channels.Refused(f"the wording fails on this reminder: {error}")
    except (channels.RetryLater, channels.Refused) as error:
        return error
    except Exception as error:  # a failure nobody foresaw costs this delivery an attempt, not the job
        log.exception("reminder deliveries %s on %s failed unexpectedly", [row.id for row in rows], first.channel)
        return channels.RetryLater(type(error).__name__)
    return None


def _as_sent(row) -> dict:
    """A reminder's content as this delivery sends it: one that goes out again after a snooze is
    a new message to its receiver, with an id (and Idempotency-Key) of its own."""
    return row.content if not row.wave else {**row.content, "id": f"{row.content['id']}.{row.wave}"}


def _outgoing(wording: Wording, rep_name: str, contents: list[dict]) -> channels.Outgoing:
    if len(contents) == 1:
        (content,) = contents
        text = wording.render(content)
        return channels.Outgoing(content["id"], content, wording.headline(content), text, text,
                                 content.get("phone_number_id"))
    headline, text, summary = wording.digest(rep_name, contents)
    key = "dig_" + hashlib.sha256("\x1f".join(content["id"] for content in contents).encode()).hexdigest()[:24]
    body = {"type": "digest", "id": key, "rep": contents[0]["rep"], "count": len(contents), "reminders": contents}
    return channels.Outgoing(key, body, headline, text, summary, contents[0].get("phone_number_id"))


def _rep_window_open(engine, channel, outgoing: channels.Outgoing, accounts: channels.Accounts, now: int) -> bool:
    """Whether a WhatsApp rep wrote to the sending number within 24 hours (free-form allowed)."""
    if channel.type != "whatsapp":
        return False
    sender = channels.whatsapp_sender(channel.settings, accounts.whatsapp, outgoing)
    if not sender:
        return False
    with engine.connect() as connection:
        last = last_message_from(connection, channel.settings["to"], sender)
    return last is not None and now - last < SERVICE_WINDOW_S
