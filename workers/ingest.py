"""Ingestion: drain the inbox in batches, each committed in one transaction.

Its job (`workers.jobs.drain_inbox`) takes no arguments: the bodies stay in Redis and in the
archive, never in job data.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import os
import socket
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from cloudapi.body import decode, is_json
from cloudapi.parse import parse_body
from scoring.events import Item
from scoring.signals import SignalMatcher
from store.batch import BatchResult, Delivery, commit, prepare
from store.db import read_snapshot, retry_on_conflict, write_transaction
from workers import inbox, metrics
from workers.context import Context
from workers.erasure import without_the_erased
from workers.reminders import plan_settled_reminders, plan_within, request_delivery

log = logging.getLogger(__name__)

DRAIN_BUDGET_S = 60.0  # then hand over to a fresh job, so no job runs into its timeout
TRANSIENT_ERRORS = (OperationalError, InterfaceError, RedisError)
"""Failures of the database or Redis themselves: retry later rather than blame a body."""

DOCUMENTED_MESSAGE_TYPES = frozenset(
    {"text", "image", "video", "audio", "document", "sticker", "location", "contacts", "interactive",
     "button", "reaction", "order", "edit", "revoke", "media_placeholder"}
)


@dataclass
class DrainTotals:
    bodies: int = 0
    events: int = 0
    duplicates: int = 0
    unknown: int = 0
    dead_letters: int = 0

    @classmethod
    def of(cls, result: BatchResult) -> DrainTotals:
        unknown = sum(
            n for (kind, type_), n in result.types.items() if kind == "message" and type_ not in DOCUMENTED_MESSAGE_TYPES
        )
        return cls(result.bodies, result.events, result.duplicates, unknown, result.dead_letters)

    def add(self, other: DrainTotals) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


_PROCESS_TOKEN = secrets.token_hex(4)
"""In the consumer's name beside host and pid: two containers may share both (a fixed hostname,
pid 1), and two consumers of one name would take each other's unacknowledged entries."""


def drain_inbox(context: Context) -> dict:
    """Process handed-off bodies until the inbox is empty or the time budget is spent."""
    redis = context.redis
    redis.delete(inbox.DRAIN_REQUESTED)  # bodies arriving from now on request a new drain
    inbox.ensure_group(redis)
    consumer = f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"
    deadline = time.monotonic() + DRAIN_BUDGET_S
    totals = DrainTotals()
    own = True  # first what this process read before and left unacknowledged, until none is left
    while True:
        entries = _own_pending(redis, consumer, context.settings.batch_size) if own else []
        own = bool(entries)
        if not (entries := entries or _next_entries(context, consumer)):
            break
        batch = commit_isolating_poison(context, entries)
        totals.add(batch)
        ids = [entry_id for entry_id, _ in entries]
        pipeline = redis.pipeline(transaction=True)
        pipeline.xack(inbox.INBOX, inbox.GROUP, *ids)
        pipeline.xdel(inbox.INBOX, *ids)
        for name, value in vars(batch).items():
            pipeline.hincrby(inbox.STATS, name, value)
        pipeline.execute()
        plan_settled_reminders(context, from_inbox=True)  # this batch's customers may be settled now, and others' with them
        if time.monotonic() > deadline:
            inbox.request_drain_if_backlog(redis)
            break
    return vars(totals)


def _own_pending(redis, consumer: str, count: int) -> list[tuple[bytes, dict]]:
    """Entries this process read and did not acknowledge: a drain of it failed half-way (Redis
    restarted, the database refused it). Nothing else holds them, so they are taken again at
    once, not after `stale_after_ms` like those of a worker that may still be at work on them."""
    response = redis.xreadgroup(inbox.GROUP, consumer, {inbox.INBOX: "0"}, count=count)
    pending = response[0][1] if response else []
    if vanished := [entry_id for entry_id, fields in pending if not fields]:  # deleted since: nothing to do
        redis.xack(inbox.INBOX, inbox.GROUP, *vanished)
    return [(entry_id, fields) for entry_id, fields in pending if fields]


def _next_entries(context: Context, consumer: str) -> list[tuple[bytes, dict]]:
    """Entries abandoned by a dead worker first, then new ones."""
    redis, batch_size = context.redis, context.settings.batch_size
    response = redis.xautoclaim(
        inbox.INBOX, inbox.GROUP, consumer, min_idle_time=context.settings.stale_after_ms, start_id="0-0",
        count=batch_size,
    )
    claimed, vanished = response[1], response[2] if len(response) > 2 else []  # Redis 6.2 sends no third
    if vanished:
        redis.xack(inbox.INBOX, inbox.GROUP, *vanished)
    if claimed:
        log.warning("claimed %d inbox entries left unacknowledged by a stopped worker", len(claimed))
        return claimed
    response = redis.xreadgroup(inbox.GROUP, consumer, {inbox.INBOX: ">"}, count=batch_size)
    return response[0][1] if response else []


def commit_here(context: Context, bodies: Iterable[bytes], batch_size: int) -> DrainTotals:
    """Commit bodies in this process, `batch_size` at a time, through the worker's own code
    (parse, keyword signals, the write transaction, reminder planning, dead letters), as if
    handed off: but not through Redis, so the workers of a stack that runs meanwhile, on another
    database maybe, never take them (a replay, an imported chat)."""
    totals, batch = DrainTotals(), []
    received_ms, first = time.time_ns() // 1_000_000, secrets.randbits(40) * 10**6  # ids no inbox gives out
    for number, body in enumerate(bodies):
        batch.append((f"{received_ms}-{first + number}", {b"b": body, b"v": inbox.VALID if is_json(body) else inbox.INVALID}))
        if len(batch) >= batch_size:
            totals.add(_commit_here(context, batch))
            batch = []
    if batch:
        totals.add(_commit_here(context, batch))
    return totals


def _commit_here(context: Context, entries: list[tuple[str, dict]]) -> DrainTotals:
    """One batch, then the reminders its customers owe (no other batch of it is still running)."""
    totals = commit_isolating_poison(context, entries, from_inbox=False)
    plan_settled_reminders(context, from_inbox=False)
    return totals


def commit_isolating_poison(context: Context, entries: list[tuple[bytes, dict]], from_inbox: bool = True,
                            in_turn: bool = True) -> DrainTotals:
    """Commit a batch; if it fails for a reason other than an unavailable database or Redis, find
    the bodies that fail alone and keep them as dead letters, so one body can never block the
    inbox. Transient failures propagate: the entries stay pending and are retried. Entries not
    `from_inbox` (a replay in this process) leave their customers settled at once; a whole batch
    from the inbox commits `in_turn` (its bodies one by one do not wait: the first is in turn)."""
    position = max(inbox.position(entry_id) for entry_id, _ in entries) if from_inbox else None
    try:
        return DrainTotals.of(process_entries(context, entries, position, in_turn=from_inbox and in_turn))
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:
        if len(entries) > 1:
            log.warning("a batch of %d bodies failed (%s): committing them one by one", len(entries), describe_error(error))
            totals = DrainTotals()
            for entry in entries:
                totals.add(commit_isolating_poison(context, [entry], from_inbox, in_turn=False))
            return totals
        (entry_id, fields), reason = entries[0], describe_error(error)
        log.error("inbox entry %s could not be processed (%s): kept as a dead letter", _text(entry_id), reason)
        dead_letter = _delivery(context.settings.signal_matcher, entry_id, fields, parse=False, error=reason)
        return DrainTotals.of(commit_deliveries(context, [dead_letter], position))


def process_entries(context: Context, entries: list[tuple[bytes, dict]], position: int | None,
                    in_turn: bool = False) -> BatchResult:
    """Parse entries (outside any lock) and commit their effects in one transaction; `in_turn`:
    after the batches holding earlier inbox entries (`inbox.wait_for_turn`)."""
    first = min(entries, key=lambda entry: inbox.position(entry[0]))[0]
    turn = (lambda: inbox.wait_for_turn(context.redis, first)) if in_turn else None
    matcher = context.settings.signal_matcher
    deliveries = [_delivery(matcher, entry_id, fields) for entry_id, fields in entries]
    return commit_deliveries(context, deliveries, position, turn)


def commit_deliveries(context: Context, deliveries: list[Delivery], position: int | None, turn=None) -> BatchResult:
    """Read and plan deliveries outside the write lock, then write them in one short write
    transaction; all of it again when another writer changed what they read. `position`: how far
    in the inbox they reach (None: not from the inbox); `turn`: waited for before writing."""
    engine, rules, now = context.engine, context.settings.tier_rules, context.now_ts()

    def attempt() -> tuple[BatchResult, bool]:
        with read_snapshot(engine) as connection:
            prepared = prepare(connection, without_the_erased(connection, deliveries, context.settings.secret_key),
                               rules, now)
        if turn is not None:
            turn()
        started = time.perf_counter()
        with write_transaction(engine) as connection:
            result = commit(connection, prepared, rules, now, position)
            reminders_due = plan_within(connection, context.settings, now, result.customers)
        metrics.BATCH_COMMIT.observe(time.perf_counter() - started)  # a transaction that conflicted is not timed
        return result, reminders_due

    result, reminders_due = retry_on_conflict(attempt)
    _count(result, len(deliveries))
    if reminders_due:
        request_delivery(context.redis)
    return result


def _count(result: BatchResult, bodies: int) -> None:
    metrics.BATCH_BODIES.observe(bodies)
    by_kind = Counter()
    for (kind, _), count in result.types.items():
        by_kind[kind] += count
    for kind, count in by_kind.items():
        metrics.EVENTS.labels(kind=kind).inc(count)
    if result.dead_letters:
        metrics.DEAD_LETTERS.inc(result.dead_letters)


def describe_error(error: Exception) -> str:
    """Exception type and where it was raised: enough to debug, and no data from the body."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(error).__name__}{where}"[:255]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _delivery(matcher: SignalMatcher, entry_id: bytes | str, fields: dict, parse: bool = True,
              error: str | None = None) -> Delivery:
    entry_id = _text(entry_id)
    body = fields[b"b"]
    received_at_ms = int(entry_id.split("-", 1)[0])
    valid_json = fields.get(b"v", inbox.VALID) == inbox.VALID
    label = f"inbox entry {entry_id}"
    items = parse_items(body, received_at_ms // 1000, label, matcher) if valid_json and parse else ()
    return Delivery(
        delivery_id=entry_id,
        received_at_ms=received_at_ms,
        sha256=hashlib.sha256(body).hexdigest(),
        body=body,
        valid_json=valid_json,
        items=items,
        error=error,
    )


def parse_items(body: bytes, received_at: int, label: str, matcher: SignalMatcher) -> tuple[Item, ...]:
    """A body's items with their keyword signals; the text is matched here and goes no further."""
    parsed = parse_body(decode(body), received_at)
    if parsed.problems:
        log.warning("%s: skipped %d malformed items: %s", label, len(parsed.problems), "; ".join(parsed.problems[:5]))
    return tuple(
        item if not item.text else Item(item.identity, item.event.with_signals(matcher.match(item.text)))
        for item in parsed.items
    )


def recover_inbox(context: Context) -> bool:
    """Start a drain when bodies wait with no drain job queued (a worker died, Redis restarted, a
    lost enqueue). Returns whether there was a backlog."""
    return inbox.request_drain_if_backlog(context.redis)
