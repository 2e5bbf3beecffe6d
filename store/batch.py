"""One batch of parsed webhook bodies: read, planned outside the write lock, written in one
short transaction, exactly once in effect.

`prepare` reads what the batch needs (which bodies and events are new, who owns the aliases and
messages it names, a snapshot of each customer it touches with their revision) and has
`scoring.planner` decide whom each event belongs to and what each customer becomes; no lock is
held meanwhile, so worker processes fold side by side. `commit` then writes the plan
in a write transaction (`store.db.write_transaction`): customers another writer changed since
(their revision moved) are read and planned again, and new people another batch met first are
given to the customers it made; each customer is then written only at the revision it was
planned from. Anything else that moved (a customer merged away, a write landing between the check
and the write, an alias, event or body another batch stored first) raises `StaleSnapshot` or a
unique violation, and `retry_on_conflict` runs the batch again. No row is locked before it is
written, so batches about a thousand customers each do not write every row twice.

Bodies are archived under their delivery id and events under their natural key, both
only if new, so a batch that is run again (worker killed after commit, Meta redelivering)
changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from sqlalchemy import Connection, Text, case, cast, delete, insert, select, update

from scoring.customer import CustomerState, current_identifiers, event_order
from scoring.events import Event, Item, OutboundMessage
from scoring.planner import (
    ALIAS_KINDS, OUTBOUND_KINDS, Alias, Approach, CustomerPlan, KnownOwners, Resolution, Snapshot, aliases_of,
    folds_forward, outbound_ids, plan_customer, refold_start, resolve_identities, rewind_instant, track_before,
)
from scoring.signals import normalise
from scoring.tiers import Checkpoint, Floor, Tier, TierFacts, TierRules, TierTrack, join_floors, outbound_as_of
from store.db import StaleSnapshot, execute_many, in_chunks, insert_many, json_text
from store.history import rows_of, tier_changes, tier_columns
from store.identity import locate
from store.models import Customer, CustomerAlias, EventRow, OutboundMessageRow, RawBody, Reminder

raw_bodies, events, customers = RawBody.__table__, EventRow.__table__, Customer.__table__


def first_revision() -> int:
    """A new customer's first revision, drawn at random: a batch that read a customer whose id
    SQLite later gave to a new one (after a merge deleted the highest id) sees the revision move
    (all but surely), so it never writes the old person's plan onto the new person's row."""
    return secrets.randbelow(2**31 - 2) + 1
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


BodyRef = str | int  # a new body's delivery id, or the id of a body already archived (a rebuild)


@dataclass
class PreparedBatch:
    """A batch read and planned, ready to be written."""

    bodies: list[Delivery]  # not archived when read
    candidates: list[tuple[BodyRef, Item]]  # every item of theirs
    fresh: list[tuple[BodyRef, Item]]  # items whose events were not stored when read, in event order
    duplicates: int
    resolution: Resolution = field(default_factory=lambda: resolve_identities([], KnownOwners()))
    new_events: dict[int, list[Event]] = field(default_factory=dict)  # by customer (below zero: new), in event order
    revisions: dict[int, int] = field(default_factory=dict)  # every stored customer read: touched, or merged away
    plans: dict[int, CustomerPlan] = field(default_factory=dict)
    columns: dict[int, dict] = field(default_factory=dict)
    past_retention: set[str] = field(default_factory=set)  # keys of events older than their customer's floor

    @property
    def touched(self) -> set[int]:
        return set(self.new_events) | self.resolution.merged

    @property
    def read(self) -> set[int]:
        """The stored customers the batch must read: those it touches and those merged away."""
        return {c for c in self.touched if c > 0} | set(self.resolution.merged_into)


def prepare(connection: Connection, deliveries: Sequence[Delivery], rules: TierRules, now: int | None) -> PreparedBatch:
    """Read and plan a batch of deliveries; writes nothing, so it needs no write lock."""
    already = {
        row.delivery_id
        for chunk in in_chunks([d.delivery_id for d in deliveries])
        for row in connection.execute(select(raw_bodies.c.delivery_id).where(raw_bodies.c.delivery_id.in_(chunk)))
    }
    bodies = [d for d in deliveries if d.delivery_id not in already]
    return prepare_items(connection, [(d.delivery_id, item) for d in bodies for item in d.items], rules, now, bodies)


def prepare_items(connection: Connection, candidates: list[tuple[BodyRef, Item]], rules: TierRules, now: int | None,
                  bodies: list[Delivery] | None = None) -> PreparedBatch:
    """Read and plan the items of bodies (`bodies`: those to archive with them)."""
    candidates = [(ref, _fitting(item)) for ref, item in candidates]
    fresh, duplicates = _fresh_items(connection, candidates)
    prepared = PreparedBatch(bodies or [], candidates, fresh, duplicates)
    _resolve(connection, prepared)
    rows = _read_customers(connection, prepared.read)
    prepared.revisions = {customer_id: row.revision for customer_id, row in rows.items()}
    _plan(connection, prepared, prepared.touched, rows, rules, now)
    return prepared


def commit(connection: Connection, prepared: PreparedBatch, rules: TierRules, now: int | None,
           position: int | None = None) -> BatchResult:
    """Write a prepared batch in the caller's write transaction; `position`: how far in the inbox
    the batch reaches, kept on the customers it writes (workers.inbox.position)."""
    current = _current_revisions(connection, prepared.revisions)
    if current != prepared.revisions or _someone_new_is_known(connection, prepared):
        _resolve_again(connection, prepared, rules, now)
        current = _current_revisions(connection, prepared.revisions)
    body_ids = _archive(connection, prepared.bodies)
    _replan_changed(connection, prepared, current, rules, now)
    resolution = prepared.resolution
    created = _apply_identities(connection, resolution, prepared.revisions)

    def final(customer_id: int | None) -> int | None:
        return created.get(customer_id, customer_id)

    result = BatchResult(bodies=len(prepared.bodies), duplicates=prepared.duplicates,
                         dead_letters=sum(1 for d in prepared.bodies if not d.valid_json or d.error))
    rows = []
    for (ref, item), customer_id in zip(prepared.fresh, resolution.customer_of):
        event = item.event
        if event.key in prepared.past_retention:
            result.duplicates += 1
            continue
        result.types[(event.kind.value, event.type)] += 1
        rows.append({
            "key": event.key, "customer_id": final(customer_id),
            "raw_body_id": body_ids[ref] if isinstance(ref, str) else ref,
            "phone_number_id": event.phone_number_id, "kind": event.kind.value, "type": event.type[:64], "at": event.at,
            "message_id": event.message_id if event.message_id and event.kind in OUTBOUND_KINDS else None,
            "data": json_text(event.to_record()),
        })
    insert_many(connection, events, rows)
    result.events = len(rows)
    result.customers = {final(customer_id) for customer_id in prepared.touched}
    result.tier_changes = _write_customers(connection, prepared, final, position)
    return result


# ---- reading ----------------------------------------------------------------------------------


def _resolve(connection: Connection, prepared: PreparedBatch) -> None:
    """Whom each fresh item belongs to, from the owners stored now."""
    items = [item for _, item in prepared.fresh]
    prepared.resolution = resolve_identities(items, _known_owners(connection, items))
    new_events: dict[int, list[Event]] = defaultdict(list)
    for item, customer_id in zip(items, prepared.resolution.customer_of):
        if customer_id is not None:
            new_events[customer_id].append(item.event)
    prepared.new_events = dict(new_events)


def _resolve_again(connection: Connection, prepared: PreparedBatch, rules: TierRules, now: int | None) -> None:
    """Another batch wrote meanwhile (met some of the batch's new people first, or wrote, merged
    away or replaced a customer it read): under the write lock, whom the events belong to is
    decided again from the owners stored now, and only the customers whose events or merges that
    changes are planned again, rather than running the whole batch again (`_replan_changed` then
    plans again those whose rows moved)."""
    before, merged_before = _event_keys(prepared.new_events), prepared.resolution.merged
    plans, columns = prepared.plans, prepared.columns
    new_by_events = {keys: customer_id for customer_id, keys in before.items()
                     if customer_id < 0 and customer_id not in merged_before}
    _resolve(connection, prepared)
    prepared.plans, prepared.columns, again = {}, {}, set()
    now_keys = _event_keys(prepared.new_events)
    for customer_id in prepared.touched:
        keys = now_keys.get(customer_id, ())
        was = customer_id if customer_id > 0 else new_by_events.get(keys)
        if (was in plans and before.get(was) == keys and was not in merged_before
                and customer_id not in prepared.resolution.merged):
            prepared.plans[customer_id], prepared.columns[customer_id] = plans[was], columns[was]
        else:
            again.add(customer_id)
    rows = _read_customers(connection, {c for c in again if c > 0} | set(prepared.resolution.merged_into))
    kept = prepared.read - rows.keys()  # each planned from the revision it was read at
    prepared.revisions = {c: r for c, r in prepared.revisions.items() if c in kept}
    prepared.revisions.update((customer_id, row.revision) for customer_id, row in rows.items())
    _plan(connection, prepared, again, rows, rules, now)


def _event_keys(new_events: dict[int, list[Event]]) -> dict[int, tuple[str, ...]]:
    return {customer_id: tuple(event.key for event in events) for customer_id, events in new_events.items()}


def _read_customers(connection: Connection, customer_ids: set[int]) -> dict:
    rows = _customer_rows(connection, customer_ids)
    if len(rows) < len(customer_ids):
        raise StaleSnapshot("a customer the batch names was merged away meanwhile")
    return rows


def _fresh_items(connection: Connection, candidates: list[tuple[BodyRef, Item]]) -> tuple[list[tuple[BodyRef, Item]], int]:
    """Items whose event key is neither stored nor earlier in this batch, in event order, and the
    number of the others."""
    keys = sorted({item.event.key for _, item in candidates})
    seen = {
        row.key
        for chunk in in_chunks(keys)
        for row in connection.execute(select(events.c.key).where(events.c.key.in_(chunk)))
    }
    fresh = []
    for ref, item in candidates:
        if item.event.key not in seen:
            seen.add(item.event.key)
            fresh.append((ref, item))
    return sorted(fresh, key=lambda pair: event_order(pair[1].event)), len(candidates) - len(fresh)


def _known_owners(connection: Connection, items: list[Item]) -> KnownOwners:
    """Who owns the aliases and outbound messages the items name."""
    wanted: dict[str, set[str]] = defaultdict(set)
    message_ids: set[str] = set()
    for item in items:
        for identity in (item.identity, item.event.new_identity):
            for kind, value in aliases_of(identity):
                wanted[kind].add(value)
        if item.event.message_id and item.event.kind in OUTBOUND_KINDS:
            message_ids.add(item.event.message_id)
    known = KnownOwners()
    for kind, values in wanted.items():
        for chunk in in_chunks(sorted(values)):
            for row in connection.execute(select(aliases).where(aliases.c.kind == kind, aliases.c.value.in_(chunk))):
                known.alias_owner[(row.kind, row.value)] = row.customer_id
                known.alias_first_at[(row.kind, row.value)] = row.first_at
    for chunk in in_chunks(sorted(message_ids)):
        query = select(outbound_messages.c.message_id, outbound_messages.c.customer_id).where(
            outbound_messages.c.message_id.in_(chunk))
        known.message_owner.update(connection.execute(query).all())
    return known


_customer_columns = [  # the checkpoint and floor are read only when refolding; the state as text, for CustomerState.decode
    cast(column, Text).label("state") if column.name == "state" else column
    for column in customers.c if column.name not in ("checkpoint", "floor")
]


def _customer_rows(connection: Connection, customer_ids: Iterable[int]) -> dict:
    return {
        row.id: row
        for chunk in in_chunks(sorted(customer_ids))
        for row in connection.execute(select(*_customer_columns).where(customers.c.id.in_(chunk)))
    }


def _plan(connection: Connection, prepared: PreparedBatch, planned: set[int], rows: dict, rules: TierRules,
          now: int | None) -> None:
    """Snapshot and plan the customers `planned` (stored ones from `rows`), into `prepared`."""
    resolution, absorbed_by = prepared.resolution, defaultdict(list)
    for absorbed, into in resolution.merged_into.items():
        absorbed_by[into].append(absorbed)
    new_events = _within_retention(prepared, planned, rows, absorbed_by)
    planned = {c for c in planned if new_events.get(c) or c in resolution.merged}  # nothing left: nothing to fold
    snapshots = _snapshots(connection, planned, rows, new_events, resolution.merged, absorbed_by, rules)
    stored_aliases = _alias_rows(connection, [c for group in ([c, *absorbed_by[c]] for c in planned if c > 0) for c in group])
    batch_aliases = resolution.aliases_by_customer()
    for customer_id in planned:
        fresh = new_events.get(customer_id, [])
        plan = plan_customer(snapshots[customer_id], fresh, customer_id in resolution.merged, rules, now)
        known = {alias: first_at for c in (customer_id, *absorbed_by[customer_id]) for alias, first_at in stored_aliases[c]}
        for alias, first_at in batch_aliases.get(customer_id, {}).items():
            known[alias] = min(first_at, known.get(alias, first_at))
        prepared.plans[customer_id] = plan
        prepared.columns[customer_id] = (_columns(rows.get(customer_id), plan.state, known)
                                         | tier_columns(plan.track, TierFacts.of(plan.state), rules))


def _within_retention(prepared: PreparedBatch, planned: set[int], rows: dict,
                      absorbed_by: dict[int, list[int]]) -> dict[int, list[Event]]:
    """Each planned customer's new events, less those at or before their floor (`floor_through`,
    of any record a merge joins): retention retired that far back, so such an event (a retired
    one delivered again, or a replay of old traffic) is past retention, and the floor's counts
    final. They are kept out of the write too (`prepared.past_retention`)."""
    kept = {}
    for customer_id in planned:
        fresh = prepared.new_events.get(customer_id, [])
        floors = [rows[c].floor_through for c in (customer_id, *absorbed_by.get(customer_id, ()))
                  if c in rows and rows[c].floor_through is not None]
        if floors:
            floor = max(floors)
            prepared.past_retention |= {event.key for event in fresh if event.at <= floor}
            fresh = [event for event in fresh if event.at > floor]
        kept[customer_id] = fresh
    return kept


def _snapshots(connection: Connection, planned: set[int], rows: dict, new_events: dict[int, list[Event]],
               merged: set[int], absorbed_by: dict[int, list[int]], rules: TierRules) -> dict[int, Snapshot]:
    """What each customer's fold needs, as `scoring.planner` decides it: a few statements for the
    customers folding forward, a few more for each that refolds."""
    states = {cid: CustomerState.decode(rows[cid].state) if cid in rows else CustomerState() for cid in planned}
    forward = {cid for cid in planned if folds_forward(states[cid], new_events.get(cid, []), cid in merged)}
    outbound = _load_outbound(connection, outbound_ids(e for cid in forward for e in new_events[cid]))
    rewinds = {cid: at for cid in forward if cid in rows
               and (at := rewind_instant(new_events[cid], rows[cid].tier_since)) is not None}
    history = tier_histories(connection, sorted(rewinds))
    snapshots = {}
    for cid in forward:
        row = rows.get(cid)
        if cid in rewinds:
            track = track_before(history[cid], rewinds[cid])
        else:
            track = TierTrack(Tier(row.tier) if row is not None and row.tier else None, row.tier_since if row else None)
        mine = {mid: outbound[mid] for mid in outbound_ids(new_events[cid]) if mid in outbound}
        snapshots[cid] = Snapshot(states[cid], track, mine, rewound_after=rewinds.get(cid))
    late = planned - forward
    checkpoints = _load_checkpoints(connection, [cid for cid in late if cid > 0 and cid not in merged])
    floors = _load_floors(connection, [c for cid in late for c in (cid, *absorbed_by.get(cid, ())) if c > 0])
    for cid in late:
        fresh = new_events.get(cid, [])
        owners = [c for c in (cid, *absorbed_by.get(cid, ())) if c > 0]
        start, floor = refold_start(checkpoints.get(cid), fresh, cid in merged), floors.get(cid)
        joined = None
        if start is None and (owned := [floors[c] for c in owners if c in floors]):
            joined = _joined_floor(connection, owners, floors, owned, rules)
            floor = joined or floor
            start = floor.start()
        after = [events.c.at > start.through] if start else []
        stored = _stored_events(connection, events.c.customer_id.in_(owners), *after) if owners else []
        at_start = {}
        if start is not None and (touched := sorted(outbound_ids([*stored, *fresh]))):
            earlier = [] if start.through == (floor.through if floor else None) else [
                event
                for chunk in in_chunks(touched)
                for event in _stored_events(connection, events.c.message_id.in_(chunk),
                                           events.c.customer_id.in_(owners), events.c.at <= start.through)
            ]
            at_start = {mid: message for mid, message in outbound_as_of(earlier, floor).items() if mid in touched}
        snapshots[cid] = Snapshot(
            states[cid], TierTrack(), at_start, Approach.FROM_CHECKPOINT if start else Approach.WHOLE, start=start,
            stored_checkpoint=checkpoints.get(cid), stored=stored, recorded=_recorded_causes(connection, owners, start),
            floor=joined,
        )
    return snapshots


def _joined_floor(connection: Connection, owners: list[int], floors: dict[int, Floor], owned: list[Floor],
                  rules: TierRules) -> Floor | None:
    """The floor a refold of the customer must start from when it is not their stored one as it
    stands: a merge joins floors (or one floor and a record without), adding the kept events of
    the records up to the latest floor (`scoring.tiers.join_floors`). None: the stored one."""
    through = max(floor.through for floor in owned)
    loose: list[Event] = []  # the batch's own events are all after the floor (`_within_retention`)
    for owner in owners:
        if owner in floors and floors[owner].through == through:
            continue  # its events up to the floor are in it
        kept = [events.c.at > floors[owner].through] if owner in floors else []
        loose += _stored_events(connection, events.c.customer_id == owner, events.c.at <= through, *kept)
    if not loose and len(owned) == 1 and owners[0] in floors:
        return None
    return join_floors(owned, loose, rules)


def _alias_rows(connection: Connection, customer_ids: list[int]) -> dict[int, list[tuple[Alias, int]]]:
    found: dict[int, list[tuple[Alias, int]]] = defaultdict(list)
    for chunk in in_chunks(sorted(set(customer_ids))):
        for row in connection.execute(select(aliases).where(aliases.c.customer_id.in_(chunk))):
            found[row.customer_id].append(((row.kind, row.value), row.first_at))
    return found


def tier_histories(connection: Connection, customer_ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    history: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for chunk in in_chunks(customer_ids):
        query = (select(tier_changes.c.customer_id, tier_changes.c.to_tier, tier_changes.c.at)
                 .where(tier_changes.c.customer_id.in_(chunk)).order_by(tier_changes.c.at, tier_changes.c.id))
        for row in connection.execute(query):
            history[row.customer_id].append((row.to_tier, row.at))
    return history


def _recorded_causes(connection: Connection, owners: list[int], start: Checkpoint | None) -> dict[tuple[str, int], str]:
    """(to tier, instant) → cause of the recorded changes a refold from `start` re-derives."""
    if not owners:
        return {}
    query = select(tier_changes.c.to_tier, tier_changes.c.at, tier_changes.c.cause).where(
        tier_changes.c.customer_id.in_(owners), *([tier_changes.c.at > start.through] if start else []))
    return {(row.to_tier, row.at): row.cause for row in connection.execute(query)}


def _load_floors(connection: Connection, customer_ids: list[int]) -> dict[int, Floor]:
    return {
        row.id: floor
        for chunk in in_chunks(sorted(set(customer_ids)))
        for row in connection.execute(select(customers.c.id, customers.c.floor).where(customers.c.id.in_(chunk),
                                                                                       customers.c.floor.is_not(None)))
        if (floor := Floor.from_json(row.floor)) is not None
    }


def _load_checkpoints(connection: Connection, customer_ids: list[int]) -> dict[int, Checkpoint]:
    return {
        row.id: checkpoint
        for chunk in in_chunks(sorted(customer_ids))
        for row in connection.execute(select(customers.c.id, customers.c.checkpoint).where(customers.c.id.in_(chunk)))
        if (checkpoint := Checkpoint.from_json(row.checkpoint)) is not None
    }


def _stored_events(connection: Connection, *conditions) -> list[Event]:
    stored = connection.execute(
        select(events.c.key, events.c.kind, events.c.type, events.c.at, events.c.phone_number_id, events.c.data).where(
            *conditions
        )
    )
    return [Event.from_record(r.key, r.kind, r.type, r.at, r.phone_number_id, r.data) for r in stored]


def _load_outbound(connection: Connection, message_ids: set[str]) -> dict[str, OutboundMessage]:
    return {
        row.message_id: OutboundMessage(
            message_id=row.message_id, at=row.at, rank=row.rank, failed=row.failed, campaign=row.campaign,
            error_code=row.error_code, phone_number_id=row.phone_number_id,
        )
        for chunk in in_chunks(sorted(message_ids))
        for row in connection.execute(select(outbound_messages).where(outbound_messages.c.message_id.in_(chunk)))
    }


# ---- writing ----------------------------------------------------------------------------------


def _archive(connection: Connection, bodies: list[Delivery]) -> dict[str, int]:
    """Raw body id of each new delivery (a delivery another batch archived meanwhile fails the
    insert on its unique key, and the batch is run again)."""
    if not bodies:
        return {}
    rows = [{"delivery_id": d.delivery_id, "received_at": d.received_at_ms, "sha256": d.sha256,
             "valid_json": d.valid_json, "error": d.error, "body": d.body} for d in bodies]
    inserted = connection.execute(
        insert(raw_bodies).returning(raw_bodies.c.delivery_id, raw_bodies.c.id, sort_by_parameter_order=True), rows
    )
    return {row.delivery_id: row.id for row in inserted}


def _current_revisions(connection: Connection, customer_ids: Iterable[int]) -> dict[int, int]:
    """The revision of each of these customers that still exists. One that differs from what the
    batch read was written since, or deleted, or its id given to a new customer (SQLite hands a
    deleted highest id out again, at a `first_revision`)."""
    current = {}
    for chunk in in_chunks(sorted(customer_ids)):
        current.update(connection.execute(select(customers.c.id, customers.c.revision).where(customers.c.id.in_(chunk))).all())
    return current


def _someone_new_is_known(connection: Connection, prepared: PreparedBatch) -> bool:
    """Whether any alias the batch would create is stored now, or any message of ours its items
    name and no customer owned when they were read."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, value in prepared.resolution.new_aliases:
        by_kind[kind].append(value)
    unowned = sorted({item.event.message_id for (_, item), owner in zip(prepared.fresh, prepared.resolution.customer_of)
                      if owner is None and item.event.message_id and item.event.kind in OUTBOUND_KINDS})
    queries = [select(aliases.c.value).where(aliases.c.kind == kind, aliases.c.value.in_(chunk))
               for kind, values in by_kind.items() for chunk in in_chunks(sorted(values))]
    queries += [select(outbound_messages.c.message_id).where(outbound_messages.c.message_id.in_(chunk))
                for chunk in in_chunks(unowned)]
    return any(connection.execute(query.limit(1)).first() for query in queries)


def _replan_changed(connection: Connection, prepared: PreparedBatch, current: dict[int, int], rules: TierRules,
                    now: int | None) -> None:
    """Plan again, from their rows as they are now, the customers another writer changed since
    the batch read them; a customer merged away, or one whose merge the batch planned, changes the
    batch too much: it is run again. (A writer that commits after this check makes the write
    itself miss, since each customer is written only at the revision it was planned from.)
    `current`: the revisions stored now (`_current_revisions`)."""
    changed = {customer_id for customer_id, revision in prepared.revisions.items() if current.get(customer_id) != revision}
    if not changed:
        return
    resolution = prepared.resolution
    if len(current) < len(prepared.revisions) or changed & (resolution.merged | set(resolution.merged_into)):
        raise StaleSnapshot("customers the batch merges were changed meanwhile")
    rows = _customer_rows(connection, changed)
    prepared.revisions.update((customer_id, row.revision) for customer_id, row in rows.items())
    _plan(connection, prepared, changed, rows, rules, now)


def _apply_identities(connection: Connection, resolution: Resolution, revisions: dict[int, int]) -> dict[int, int]:
    """Merge, create the batch's new customers (adding their first revisions to `revisions`, by
    their ids below zero) and write its aliases; returns the stored id of each new customer."""
    for absorbed, into in sorted(resolution.merged_into.items()):
        for table in (aliases, events, outbound_messages, tier_changes, reminders):
            connection.execute(update(table).where(table.c.customer_id == absorbed).values(customer_id=into))
        gone = connection.execute(delete(customers).where(customers.c.id == absorbed,
                                                          customers.c.revision == revisions[absorbed]))
        if not gone.rowcount:
            raise StaleSnapshot("another batch wrote a customer being merged away")
    created = {}
    if resolution.new_customers:
        new = sorted(resolution.new_customers.items(), reverse=True)  # -1, -2...: in the order they were met
        revisions.update((provisional, first_revision()) for provisional, _ in new)
        inserted = connection.execute(
            insert(customers).returning(customers.c.id, sort_by_parameter_order=True),
            [{"key": f"new:{key}", "first_seen_at": at, "state": {}, "revision": revisions[provisional]}
             for provisional, (key, at) in new],
        )
        created = {provisional: row.id for (provisional, _), row in zip(new, inserted)}
    if resolution.new_aliases:  # in one order for every batch: two that race wait in line, not in a circle
        insert_many(connection, aliases, [
            {"kind": kind, "value": value, "customer_id": created.get(owner, owner),
             "first_at": resolution.alias_first_at[(kind, value)]}
            for kind, value in sorted(resolution.new_aliases)
            for owner in [resolution.alias_owner[(kind, value)]]
        ])
    for kind, value in sorted(resolution.earlier_aliases):
        at = resolution.alias_first_at[(kind, value)]
        connection.execute(  # the earlier of the two: another batch may have moved it meanwhile
            update(aliases)
            .where(aliases.c.kind == kind, aliases.c.value == value)
            .values(first_at=case((aliases.c.first_at > at, at), else_=aliases.c.first_at))
        )
    return created


def _write_customers(connection: Connection, prepared: PreparedBatch, final, position: int | None) -> int:
    """Write each touched customer's columns, checkpoint, floor, tier history and outbound messages;
    returns the number of tier changes."""
    updates, checkpoints, floors, history, outbound, owner, replaced = [], [], [], [], {}, {}, defaultdict(list)
    for provisional, plan in sorted(prepared.plans.items()):
        customer_id = final(provisional)
        revision = prepared.revisions[provisional]
        updates.append({"customer_id": customer_id, **prepared.columns[provisional], "revision": revision + 1,
                        "written_through": position, "planned_from": revision})
        if plan.checkpoint_changed:
            checkpoints.append((json_text(plan.checkpoint.to_json()) if plan.checkpoint else None, customer_id))
        if plan.floor is not None:
            floors.append((json_text(plan.floor.to_json()), plan.floor.through, customer_id))
        if plan.history_after is not None:
            replaced[plan.history_after].append(customer_id)
        history += rows_of(customer_id, plan.changes)
        outbound.update(plan.outbound)
        owner.update((message_id, customer_id) for message_id in plan.outbound)
    for after, customer_ids in replaced.items():
        for chunk in in_chunks(sorted(customer_ids)):
            connection.execute(delete(tier_changes).where(tier_changes.c.customer_id.in_(chunk), tier_changes.c.at > after))
    if updates:  # each only if still at the revision it was planned from
        names = [name for name in updates[0] if name not in ("customer_id", "planned_from")]
        written = execute_many(connection, customers, "UPDATE {table} SET {sets} WHERE id = {key} AND revision = {key}",
                               names, [(*(row[name] for name in names), row["customer_id"], row["planned_from"])
                                       for row in updates])
        if written < len(updates):
            raise StaleSnapshot("another batch wrote a customer between the check and the write")
    execute_many(connection, customers, "UPDATE {table} SET {sets} WHERE id = {key}", ["checkpoint"], checkpoints)
    execute_many(connection, customers, "UPDATE {table} SET {sets} WHERE id = {key}", ["floor", "floor_through"], floors)
    insert_many(connection, tier_changes, history)
    _save_outbound(connection, outbound, owner)
    return len(history)


def _save_outbound(connection: Connection, outbound: dict[str, OutboundMessage], owner: dict[str, int]) -> None:
    """Replace the rows of the outbound messages a batch changed, in two statements."""
    if not outbound:
        return
    for chunk in in_chunks(sorted(outbound)):
        connection.execute(delete(outbound_messages).where(outbound_messages.c.message_id.in_(chunk)))
    insert_many(connection, outbound_messages, [
        {"message_id": m.message_id, "customer_id": owner[m.message_id], "at": m.at, "rank": m.rank, "failed": m.failed,
         "error_code": m.error_code, "campaign": m.campaign, "phone_number_id": m.phone_number_id}
        for m in outbound.values()
    ])


def _columns(row, state: CustomerState, known_aliases: dict[Alias, int]) -> dict:
    """The customer's queryable columns: key and current identifiers from its aliases (alias →
    first instant), place from its number, and the state's headline instants."""
    by_first_seen = sorted(known_aliases, key=lambda a: (known_aliases[a], ALIAS_KINDS.index(a[0]), a[1]))
    latest = current_identifiers([(kind, value, at) for (kind, value), at in known_aliases.items()], state.changed_to)
    if row is not None and (latest.get("wa_id"), latest.get("user_id")) == (row.wa_id, row.user_id) and (
            row.country or row.timezone):
        country, timezone = row.country, row.timezone  # located before, from the same identifiers
    else:
        country, timezone = locate(latest.get("wa_id"), latest.get("user_id"))
    return {
        "key": by_first_seen[0][1] if by_first_seen else row.key,
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
        "state": state.encode(),
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
