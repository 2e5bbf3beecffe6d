"""One batch of parsed webhook bodies written in one transaction, exactly once in effect.

Bodies are archived under their delivery id and events under their natural key, both only if
new, so a batch that is run again (worker killed after commit, Meta redelivering) changes
nothing. Only new events reach the customers they concern: a customer whose new events all sort
after the last one applied is folded forward; one that got an older event is refolded from its
checkpoint (the fold some hours back) when the event is newer than that, and from all of its
stored events when it is older or the customer was merged. Callers hold
`store.db.write_transaction`.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from sqlalchemy import Connection, bindparam, case, delete, insert, select, text, update

from cloudapi.parse import Item
from scoring.customer import CustomerState, current_identifiers, event_order
from scoring.events import Event, EventKind, Identity, OutboundMessage
from scoring.signals import normalise
from scoring.tiers import (
    Cause, Checkpoint, Fold, Tier, TierFacts, TierRules, TierTrack, apply_events, fold_with_tiers, outbound_as_of,
)
from store.db import in_chunks
from store.history import rewind_time, rows_of, take_recorded, tier_changes, tier_columns
from store.identity import ALIAS_KINDS, locate
from store.models import Customer, CustomerAlias, EventRow, OutboundMessageRow, RawBody, Reminder

OUTBOUND_KINDS = (EventKind.STATUS, EventKind.ECHO)  # events about a message of ours

raw_bodies, events, customers = RawBody.__table__, EventRow.__table__, Customer.__table__
aliases, outbound_messages, reminders = CustomerAlias.__table__, OutboundMessageRow.__table__, Reminder.__table__


@dataclass(frozen=True, slots=True)
class Delivery:
    """One handed-off body: its inbox id, arrival time (ms), bytes and what parsing made of it."""

    delivery_id: str
    received_at_ms: int
    sha256: str
    body: bytes
    valid_json: bool
    items: tuple[Item, ...] = ()
    error: str | None = None  # why it could not be processed: kept as a dead letter, no events


@dataclass
class BatchResult:
    bodies: int = 0
    events: int = 0
    duplicates: int = 0
    types: Counter = field(default_factory=Counter)  # (kind, type) of the new events
    customers: set[int] = field(default_factory=set)
    tier_changes: int = 0
    dead_letters: int = 0  # bodies archived unprocessed: not JSON, or failing to process


MAX_SIDE_BY_SIDE_ITEMS = 300
"""A batch with more items than this writes alone (`write_transaction(exclusive=True)`): each
item's identifiers take a lock of PostgreSQL's shared lock table (64 a connection by default), and
locking a row writes to it, which a backlog of batches touching thousands of customers each would
pay for with nothing to gain."""


def writes_alone(deliveries: Sequence[Delivery]) -> bool:
    return sum(len(delivery.items) for delivery in deliveries) > MAX_SIDE_BY_SIDE_ITEMS


def write_batch(connection: Connection, deliveries: Sequence[Delivery], rules: TierRules, now: int | None,
                position: int | None = None, alone: bool = False) -> BatchResult:
    """Archive, dedupe, resolve identities and update customers and their tiers (as of `now`) for
    a batch of deliveries; `position`: how far in the inbox the batch reaches, kept on the
    customers it writes (workers.inbox.position); `alone`: the caller holds the write lock alone,
    so the batch takes no lock of its own."""
    body_ids = _archive(connection, deliveries)
    archived = [(body_ids[d.delivery_id], item) for d in deliveries if d.delivery_id in body_ids for item in d.items]
    dead = sum(1 for d in deliveries if d.delivery_id in body_ids and (not d.valid_json or d.error))
    return write_items(connection, archived, rules, now, BatchResult(bodies=len(body_ids), dead_letters=dead), position,
                       alone)


def write_items(
    connection: Connection, archived: list[tuple[int, Item]], rules: TierRules, now: int | None, result: BatchResult,
    position: int | None = None, alone: bool = False,
) -> BatchResult:
    """The events of bodies already archived (raw body id, item): the part `rebuild` replays."""
    candidates = [(body_id, _fitting(item)) for body_id, item in archived]
    alone = alone or connection.dialect.name != "postgresql"  # SQLite has one writer
    identities = _IdentityResolver(connection, alone)
    identities.preload(item for _, item in candidates)  # first: it waits for batches about the same people
    fresh = _fresh_items(connection, candidates, result)
    if not fresh:
        return result
    resolved = [(body_id, item, identities.resolve(item)) for body_id, item in fresh]
    identities.flush()
    rows, new_events = [], defaultdict(list)
    for body_id, item, provisional in resolved:
        event = item.event
        customer_id = identities.final(provisional)  # created in the flush, or merged away by a later item
        result.types[(event.kind.value, event.type)] += 1
        rows.append(
            {
                "key": event.key,
                "customer_id": customer_id,
                "raw_body_id": body_id,
                "phone_number_id": event.phone_number_id,
                "kind": event.kind.value,
                "type": event.type[:64],
                "at": event.at,
                "message_id": event.message_id if event.message_id and event.kind in OUTBOUND_KINDS else None,
                "data": event.to_record(),
            }
        )
        if customer_id is not None:
            new_events[customer_id].append(event)
    for chunk in in_chunks(rows):
        connection.execute(insert(events), chunk)
    result.events = len(rows)
    result.customers = set(new_events) | identities.refold
    result.tier_changes = _update_customers(connection, result.customers, new_events, identities, rules, now, position,
                                            alone)
    return result


# ---- the archive and dedupe --------------------------------------------------------------------


def _archive(connection: Connection, deliveries: Sequence[Delivery]) -> dict[str, int]:
    """Raw body id per delivery that is new; deliveries already archived are left out."""
    already = {
        row.delivery_id
        for chunk in in_chunks([d.delivery_id for d in deliveries])
        for row in connection.execute(select(raw_bodies.c.delivery_id).where(raw_bodies.c.delivery_id.in_(chunk)))
    }
    rows = [
        {"delivery_id": d.delivery_id, "received_at": d.received_at_ms, "sha256": d.sha256,
         "valid_json": d.valid_json, "error": d.error, "body": d.body}
        for d in deliveries
        if d.delivery_id not in already
    ]
    if not rows:
        return {}
    inserted = connection.execute(
        insert(raw_bodies).returning(raw_bodies.c.delivery_id, raw_bodies.c.id, sort_by_parameter_order=True), rows
    )
    return {row.delivery_id: row.id for row in inserted}


def _fresh_items(connection: Connection, candidates: list[tuple[int, Item]], result: BatchResult) -> list[tuple[int, Item]]:
    """Items whose event key is neither stored nor earlier in this batch, in event order."""
    keys = sorted({item.event.key for _, item in candidates})
    seen = {
        row.key
        for chunk in in_chunks(keys)
        for row in connection.execute(select(events.c.key).where(events.c.key.in_(chunk)))
    }
    fresh = []
    for body_id, item in candidates:
        key = item.event.key
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        fresh.append((body_id, item))
    return sorted(fresh, key=lambda pair: event_order(pair[1].event))


# ---- identity ---------------------------------------------------------------------------------


class _IdentityResolver:
    """Maps each event to one customer, creating customers and merging them as aliases overlap.

    A customer new in the batch gets a provisional (negative) id; `flush` inserts them all in one
    statement, and `final` turns any id handed out into the stored customer it ended as."""

    def __init__(self, connection: Connection, alone: bool):
        self.connection, self.alone = connection, alone
        self.provisional: dict[int, tuple[str, int]] = {}  # provisional id -> (key, first seen at)
        self.created: dict[int, int] = {}  # provisional id -> stored id, after the flush
        self.alias_owner: dict[tuple[str, str], int] = {}
        self.alias_first_at: dict[tuple[str, str], int] = {}
        self.changed_aliases: set[tuple[str, str]] = set()
        self.new_aliases: set[tuple[str, str]] = set()
        self.refold: set[int] = set()  # merged customers: their events must be folded again
        self.merged_into: dict[int, int] = {}

    def preload(self, items: Iterable[Item]) -> None:
        """Read who the batch's aliases and messages belong to, and lock those customers' rows (in id
        order) before anything is written: a batch then waits for another that shares a customer
        before it has written anything that the other could wait on, so no two wait in a circle.
        Read again after the wait, since the other may have created, merged or moved them; a
        customer found only then is taken without waiting (out of order, a wait could close a
        circle), or the batch is run again."""
        wanted: dict[str, set[str]] = defaultdict(set)
        message_ids: set[str] = set()
        for item in items:
            for identity in (item.identity, item.event.new_identity):
                for kind, value in _aliases_of(identity):
                    wanted[kind].add(value)
            if item.event.message_id and item.event.kind in (EventKind.STATUS, EventKind.ECHO):
                message_ids.add(item.event.message_id)
        if self.alone:  # no other batch writes meanwhile
            self._read_owners(wanted, message_ids)
            return
        _lock_identities(self.connection, [(kind, value) for kind, values in wanted.items() for value in values])
        locked: set[int] = set()
        while True:
            self._read_owners(wanted, message_ids)
            owners = (set(self.alias_owner.values()) | set(self.message_owner.values())) - locked
            if not owners:
                return
            _lock_customers(self.connection, owners, wait=not locked)
            locked |= owners

    def _read_owners(self, wanted: dict[str, set[str]], message_ids: set[str]) -> None:
        self.alias_owner, self.alias_first_at = {}, {}
        for kind, values in wanted.items():
            for chunk in in_chunks(sorted(values)):
                query = select(aliases).where(aliases.c.kind == kind, aliases.c.value.in_(chunk))
                for row in self.connection.execute(query):
                    self.alias_owner[(row.kind, row.value)] = row.customer_id
                    self.alias_first_at[(row.kind, row.value)] = row.first_at
        self.message_owner = {
            row.message_id: row.customer_id
            for chunk in in_chunks(sorted(message_ids))
            for row in self.connection.execute(
                select(outbound_messages.c.message_id, outbound_messages.c.customer_id).where(
                    outbound_messages.c.message_id.in_(chunk)
                )
            )
        }

    def resolve(self, item: Item) -> int | None:
        event = item.event
        hints = _aliases_of(item.identity)
        if not hints:
            owner = self.message_owner.get(event.message_id) if event.message_id else None
            return owner
        customer_id = self._attach(hints, event.at)
        if event.new_identity is not None:
            customer_id = self._attach([*hints, *_aliases_of(event.new_identity)], event.at)
        if event.message_id and event.kind in (EventKind.STATUS, EventKind.ECHO):
            self.message_owner.setdefault(event.message_id, customer_id)
        return customer_id

    def _attach(self, hints: list[tuple[str, str]], at: int) -> int:
        """The one customer these aliases belong to, after creating or merging as needed."""
        # stored customers first, oldest first: a merge never moves stored rows to a provisional id
        owners = sorted({self.alias_owner[h] for h in hints if h in self.alias_owner}, key=lambda c: (c < 0, abs(c)))
        if not owners:
            customer_id = self._create(hints[0][1], at)
        else:
            customer_id = owners[0]
            for absorbed in owners[1:]:
                self._merge(absorbed, into=customer_id)
        for alias in hints:
            if alias not in self.alias_owner:
                self.alias_owner[alias] = customer_id
                self.alias_first_at[alias] = at
                self.new_aliases.add(alias)
            elif at < self.alias_first_at[alias]:
                self.alias_first_at[alias] = at
                self.changed_aliases.add(alias)
        return customer_id

    def _create(self, key: str, at: int) -> int:
        provisional = -(len(self.provisional) + 1)
        self.provisional[provisional] = (key, at)
        return provisional

    def _merge(self, absorbed: int, into: int) -> None:
        """Everything of `absorbed` now belongs to `into`, which will be refolded."""
        if absorbed > 0:  # a provisional customer has nothing stored yet
            for table in (aliases, events, outbound_messages, tier_changes, reminders):
                self.connection.execute(update(table).where(table.c.customer_id == absorbed).values(customer_id=into))
            self.connection.execute(delete(customers).where(customers.c.id == absorbed))
        for alias, owner in self.alias_owner.items():
            if owner == absorbed:
                self.alias_owner[alias] = into
        for message_id, owner in self.message_owner.items():
            if owner == absorbed:
                self.message_owner[message_id] = into
        self.merged_into[absorbed] = into
        self.refold.discard(absorbed)
        self.refold.add(into)

    def final(self, customer_id: int | None) -> int | None:
        """The customer an id resolved earlier in the batch belongs to now, after any merges."""
        while customer_id in self.merged_into:
            customer_id = self.merged_into[customer_id]
        return self.created.get(customer_id, customer_id)

    def flush(self) -> None:
        """Insert the batch's new customers, then write the aliases it created or saw earlier than
        before."""
        surviving = [(provisional, key, at) for provisional, (key, at) in self.provisional.items()
                     if provisional not in self.merged_into]
        if surviving:
            inserted = self.connection.execute(
                insert(customers).returning(customers.c.id, sort_by_parameter_order=True),
                [{"key": f"new:{key}", "first_seen_at": at, "state": {}} for _, key, at in surviving],
            )
            self.created = {provisional: row.id for (provisional, _, _), row in zip(surviving, inserted)}
        self.refold = {self.final(customer_id) for customer_id in self.refold}
        if self.new_aliases:
            rows = [
                {"kind": k, "value": v, "customer_id": self.final(self.alias_owner[(k, v)]),
                 "first_at": self.alias_first_at[(k, v)]}
                for k, v in sorted(self.new_aliases)
            ]
            self.connection.execute(insert(aliases), rows)
        for kind, value in sorted(self.changed_aliases - self.new_aliases):
            at = self.alias_first_at[(kind, value)]
            self.connection.execute(  # the earlier of the two: another batch may have moved it meanwhile
                update(aliases)
                .where(aliases.c.kind == kind, aliases.c.value == value)
                .values(first_at=case((aliases.c.first_at > at, at), else_=aliases.c.first_at))
            )


MAX_ALIAS_LENGTH = {"wa_id": 32, "user_id": 160, "parent_user_id": 160, "username": 160}
"""Longer values cannot be real identifiers (a BSUID is a country code and up to 128 characters)."""


def _aliases_of(identity: Identity | None) -> list[tuple[str, str]]:
    """Aliases that identify a person; a username only counts when nothing stronger is given,
    because usernames can be given up and taken by someone else."""
    if identity is None:
        return []
    given = [
        (kind, value)
        for kind in ALIAS_KINDS
        if (value := getattr(identity, kind)) and len(value) <= MAX_ALIAS_LENGTH[kind]
    ]
    strong = [(kind, value) for kind, value in given if kind != "username"]
    return strong or given


# ---- customers --------------------------------------------------------------------------------


def _update_customers(
    connection: Connection,
    touched: set[int],
    new_events: dict[int, list[Event]],
    identities: _IdentityResolver,
    rules: TierRules,
    now: int | None,
    position: int | None,
    alone: bool,
) -> int:
    """Fold new events into each touched customer (forward when they all come after what was
    applied, again from a checkpoint or from scratch otherwise), with their tiers; returns the
    number of tier changes.

    The customers' rows are locked first, in id order, and read as the last writer left them:
    everything this fold reads about them comes after the lock, so two batches that share a
    customer fold one after the other, each on the other's result."""
    query = select(*_customer_columns).order_by(customers.c.id)
    query = query if alone else query.with_for_update(key_share=True)
    rows = {
        row.id: row
        for chunk in in_chunks(sorted(touched))
        for row in connection.execute(query.where(customers.c.id.in_(chunk)))
    }
    alias_rows: dict[int, list] = defaultdict(list)
    for chunk in in_chunks(sorted(rows)):
        for alias in connection.execute(select(aliases).where(aliases.c.customer_id.in_(chunk))):
            alias_rows[alias.customer_id].append(alias)
    history, updates, checkpoints = [], [], []
    outbound = _load_outbound(connection, [event for fresh in new_events.values() for event in fresh])
    outbound_owner: dict[str, int] = {}  # the outbound messages this batch changed, and whose they are
    states = {customer_id: CustomerState.from_json(row.state) for customer_id, row in rows.items()}
    late = {
        customer_id
        for customer_id, state in states.items()
        if customer_id in identities.refold or not (fresh := new_events.get(customer_id)) or not state.comes_after(fresh[0])
    }
    stored_checkpoints = _load_checkpoints(connection, [cid for cid in late if cid not in identities.refold])
    rewound = rewind_time(connection, {
        customer_id: new_events[customer_id][0].at
        for customer_id, row in rows.items()
        if customer_id not in late and row.tier_since is not None and new_events[customer_id][0].at < row.tier_since
    })
    for customer_id, row in rows.items():
        fresh = new_events.get(customer_id, [])  # already in event order
        if customer_id not in late:
            state = states[customer_id]
            track = rewound.get(customer_id) or TierTrack(Tier(row.tier) if row.tier else None, row.tier_since)
            history += rows_of(customer_id, apply_events(state, outbound, track, fresh, rules, now))
            outbound_owner.update((message_id, customer_id) for message_id in _outbound_ids(fresh) if message_id in outbound)
        else:
            stored = stored_checkpoints.get(customer_id)  # none is loaded for a merged customer
            start = stored if stored is not None and fresh and fresh[0].at > stored.through else None
            refold = _refold(connection, customer_id, start, rules, now)
            new_cause = Cause.MERGE if customer_id in identities.refold else None
            history += rows_of(customer_id, refold.changes, take_recorded(connection, customer_id, after=_through(start)),
                               new_cause)
            state, track = refold.state, refold.track
            outbound.update(refold.outbound)
            outbound_owner.update((message_id, customer_id) for message_id in refold.outbound)
            if customer_id in identities.refold or refold.checkpoint is not stored:  # a merge voids the old one
                checkpoints.append({"customer_id": customer_id,
                                    "checkpoint": refold.checkpoint.to_json() if refold.checkpoint else None})
        columns = _columns(row, state, alias_rows[customer_id]) | tier_columns(track, TierFacts.of(state), rules)
        updates.append({"customer_id": customer_id, **columns, "written_through": position})
    for changed in (updates, checkpoints):
        if changed:
            connection.execute(
                update(customers)
                .where(customers.c.id == bindparam("customer_id"))
                .values({name: bindparam(name) for name in changed[0] if name != "customer_id"}),
                changed,
            )
    if history:
        connection.execute(insert(tier_changes), history)
    _save_outbound(connection, {message_id: outbound[message_id] for message_id in outbound_owner}, outbound_owner)
    return len(history)


_customer_columns = [column for column in customers.c if column.name != "checkpoint"]  # read only when refolding


def _through(start: Checkpoint | None) -> int | None:
    return start.through if start else None


def _load_checkpoints(connection: Connection, customer_ids: list[int]) -> dict[int, Checkpoint]:
    return {
        row.id: checkpoint
        for chunk in in_chunks(sorted(customer_ids))
        for row in connection.execute(select(customers.c.id, customers.c.checkpoint).where(customers.c.id.in_(chunk)))
        if (checkpoint := Checkpoint.from_json(row.checkpoint)) is not None
    }


def _refold(connection: Connection, customer_id: int, start: Checkpoint | None, rules: TierRules, now: int | None) -> Fold:
    """Fold the customer's stored events after `start` (all of them without one) onto it; the
    outbound messages those events touch start as their own earlier statuses left them."""
    later = _stored_events(connection, events.c.customer_id == customer_id,
                           *([events.c.at > start.through] if start else []))
    outbound_at_start = {}
    if start is not None and (touched := sorted(_outbound_ids(later))):
        outbound_at_start = outbound_as_of(
            earlier
            for chunk in in_chunks(touched)
            for earlier in _stored_events(connection, events.c.message_id.in_(chunk), events.c.customer_id == customer_id,
                                          events.c.at <= start.through)
        )
    return fold_with_tiers(later, rules, now, start, outbound_at_start)


def _outbound_ids(fresh: list[Event]) -> set[str]:
    return {e.message_id for e in fresh if e.message_id and e.kind in OUTBOUND_KINDS}


def _stored_events(connection: Connection, *conditions) -> list[Event]:
    stored = connection.execute(
        select(events.c.key, events.c.kind, events.c.type, events.c.at, events.c.phone_number_id, events.c.data).where(
            *conditions
        )
    )
    return [Event.from_record(r.key, r.kind, r.type, r.at, r.phone_number_id, r.data) for r in stored]


def _load_outbound(connection: Connection, fresh: list[Event]) -> dict[str, OutboundMessage]:
    ids = sorted(_outbound_ids(fresh))
    return {
        row.message_id: OutboundMessage(
            message_id=row.message_id, at=row.at, rank=row.rank, failed=row.failed, campaign=row.campaign,
            error_code=row.error_code, phone_number_id=row.phone_number_id,
        )
        for chunk in in_chunks(ids)
        for row in connection.execute(select(outbound_messages).where(outbound_messages.c.message_id.in_(chunk)))
    }


def _save_outbound(connection: Connection, outbound: dict[str, OutboundMessage], owner: dict[str, int]) -> None:
    """Replace the rows of the outbound messages a batch changed, in two statements."""
    if not outbound:
        return
    for chunk in in_chunks(sorted(outbound)):
        connection.execute(delete(outbound_messages).where(outbound_messages.c.message_id.in_(chunk)))
    connection.execute(
        insert(outbound_messages),
        [
            {
                "message_id": m.message_id, "customer_id": owner[m.message_id], "at": m.at, "rank": m.rank,
                "failed": m.failed, "error_code": m.error_code, "campaign": m.campaign,
                "phone_number_id": m.phone_number_id,
            }
            for m in outbound.values()
        ],
    )


def _lock_identities(connection: Connection, identities: list[tuple[str, str]]) -> None:
    """Take a transaction lock on each alias (a 64-bit hash of it), in one order for every batch
    (PostgreSQL): two batches about one person, even one new to both, go one after the other, so
    neither creates a customer the other is creating, nor stores an event the other is storing."""
    if not identities:
        return
    keys = sorted({int.from_bytes(hashlib.blake2b(f"{kind}\x1f{value}".encode(), digest_size=8).digest(), "big",
                                  signed=True) for kind, value in identities})
    connection.execute(text("SELECT count(pg_advisory_xact_lock(key)) FROM unnest(CAST(:keys AS bigint[])) AS key"),
                       {"keys": keys})


def _lock_customers(connection: Connection, customer_ids: Iterable[int], wait: bool = True) -> None:
    """Lock these customers' rows for this transaction, in id order (PostgreSQL). Without `wait`, a
    row another transaction holds fails the transaction at once (store.db.retry_on_conflict runs
    it again)."""
    for chunk in in_chunks(sorted(customer_ids)):
        connection.execute(select(customers.c.id).where(customers.c.id.in_(chunk))
                           .order_by(customers.c.id).with_for_update(key_share=True, nowait=not wait)).all()


def _columns(row, state: CustomerState, alias_rows: list) -> dict:
    """The customer's queryable columns: key and current identifiers from its aliases, place from
    its number, and the state's headline instants."""
    by_first_seen = sorted(alias_rows, key=lambda a: (a.first_at, ALIAS_KINDS.index(a.kind), a.value))
    latest = current_identifiers([(a.kind, a.value, a.first_at) for a in alias_rows], state.changed_to)
    if (latest.get("wa_id"), latest.get("user_id")) == (row.wa_id, row.user_id) and (row.country or row.timezone):
        country, timezone = row.country, row.timezone  # located before, from the same identifiers
    else:
        country, timezone = locate(latest.get("wa_id"), latest.get("user_id"))
    return {
        "key": by_first_seen[0].value if by_first_seen else row.key,
        "wa_id": latest.get("wa_id"),
        "user_id": latest.get("user_id"),
        "parent_user_id": latest.get("parent_user_id"),
        "username": (state.username or latest.get("username") or "")[:160] or None,
        "name": (state.name or "")[:255] or None,
        "search_name": normalise(state.name)[:255] or None if state.name else None,
        "phone_number_id": state.phone_number_id,
        "country": country,
        "timezone": timezone,
        "first_seen_at": state.first_seen_at,
        "last_inbound_at": state.last_inbound_at,
        "last_outbound_at": state.last_outbound_at,
        "opted_out": state.opted_out,
        "awaiting_reply_since": state.awaiting_reply_since,
        "question_since": state.question_since,
        "unreachable": state.unreachable,
        "state": state.to_json(),
        "figures_at": None,  # what the desk sorts by is to be worked out again (workers.figures)
    }


MAX_NUMBER_ID_LENGTH, MAX_CAMPAIGN_LENGTH = 64, 512  # the widths of their columns


def _fitting(item: Item) -> Item:
    """The item with identifiers its columns can hold. Longer ones, never seen from Meta, keep
    their meaning as a stable hash (the same long id always gives the same short one); a
    campaign tag is cut."""
    event = item.event
    fitted = replace(
        event, key=_bounded(event.key),
        message_id=_bounded(event.message_id) if event.message_id else None,
        phone_number_id=_bounded(event.phone_number_id, MAX_NUMBER_ID_LENGTH) if event.phone_number_id else None,
        campaign=event.campaign[:MAX_CAMPAIGN_LENGTH] if event.campaign is not None else None,
    ) if _overlong(event) else event
    return item if fitted is event else Item(item.identity, fitted, item.text)


def _overlong(event: Event) -> bool:
    return (len(event.key) > 255 or len(event.message_id or "") > 255
            or len(event.phone_number_id or "") > MAX_NUMBER_ID_LENGTH or len(event.campaign or "") > MAX_CAMPAIGN_LENGTH)


def _bounded(value: str, limit: int = 255) -> str:
    """`value` if it fits `limit` characters, else a prefix and its SHA-256 (keys have been cut
    this way since the first schema: 180 characters, '#', 64 hex digits)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()
    keep = 180 if limit == 255 else limit // 2
    return value[:keep] + "#" + digest[: limit - keep - 1]
