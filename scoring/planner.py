"""What a batch of new events does to the customers it concerns, decided without I/O.

The store reads a snapshot of those customers; the functions here decide whom each event belongs
to (creating customers, and merging them when one person's identifiers turn out to be two
records), whether each customer folds forward, refolds from their checkpoint or refolds whole,
and what their state, tier history and checkpoint become. The store then writes the plan after
checking that no other writer changed those customers since the snapshot (their revision).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Iterable, Mapping

from scoring.customer import CustomerState
from scoring.events import Event, EventKind, Identity, Item, OutboundMessage
from scoring.tiers import Cause, Checkpoint, Floor, Tier, TierChange, TierRules, TierTrack, apply_events, fold_with_tiers

ALIAS_KINDS = ("wa_id", "user_id", "parent_user_id", "username")
"""In order of preference when two aliases were first seen at the same instant."""
MAX_ALIAS_LENGTH = {"wa_id": 32, "user_id": 160, "parent_user_id": 160, "username": 160}
"""Longer values cannot be real identifiers (a BSUID is a country code and up to 128 characters)."""
OUTBOUND_KINDS = frozenset({EventKind.STATUS, EventKind.ECHO})  # events about a message of ours

Alias = tuple[str, str]  # (kind, value)


def aliases_of(identity: Identity | None) -> list[Alias]:
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


def outbound_ids(events: Iterable[Event]) -> set[str]:
    """The outbound messages of ours that these events are about."""
    return {e.message_id for e in events if e.message_id and e.kind in OUTBOUND_KINDS}


# ---- identity ---------------------------------------------------------------------------------


@dataclass
class KnownOwners:
    """What the store holds about the batch's people: who owns each alias (and since when) and
    each outbound message."""

    alias_owner: dict[Alias, int] = field(default_factory=dict)
    alias_first_at: dict[Alias, int] = field(default_factory=dict)
    message_owner: dict[str, int] = field(default_factory=dict)


@dataclass
class Resolution:
    """Whom each item belongs to. Ids below zero are customers new in the batch (`new_customers`:
    their key and first instant); `merged_into` maps each absorbed customer to the one that
    takes everything of theirs; `merged` holds the customers a merge made, to refold whole."""

    customer_of: list[int | None]  # per item, after every merge
    new_customers: dict[int, tuple[str, int]]
    merged_into: dict[int, int]  # stored customers only: a new one absorbed has nothing to move
    merged: set[int]
    alias_owner: dict[Alias, int]  # every alias the batch names, after every merge
    alias_first_at: dict[Alias, int]
    new_aliases: set[Alias]
    earlier_aliases: set[Alias]  # stored aliases the batch saw before their recorded first instant

    def aliases_by_customer(self) -> dict[int, dict[Alias, int]]:
        """The batch's aliases of each customer, with their first instants."""
        owned: dict[int, dict[Alias, int]] = defaultdict(dict)
        for alias, owner in self.alias_owner.items():
            owned[owner][alias] = self.alias_first_at[alias]
        return owned


def resolve_identities(items: Iterable[Item], known: KnownOwners) -> Resolution:
    """Map each item (in event order) to one customer, creating customers for people not known
    and merging customers whose identifiers the items show to be one person."""
    resolver = _Resolver(known)
    provisional = [resolver.resolve(item) for item in items]
    return resolver.resolution(provisional)


class _Resolver:
    def __init__(self, known: KnownOwners):
        self.alias_owner = dict(known.alias_owner)
        self.alias_first_at = dict(known.alias_first_at)
        self.message_owner = dict(known.message_owner)
        self.new_customers: dict[int, tuple[str, int]] = {}
        self.merged_into: dict[int, int] = {}
        self.merged: set[int] = set()
        self.new_aliases: set[Alias] = set()
        self.earlier_aliases: set[Alias] = set()

    def resolve(self, item: Item) -> int | None:
        event = item.event
        hints = aliases_of(item.identity)
        if not hints:
            return self.message_owner.get(event.message_id) if event.message_id else None
        customer_id = self._attach(hints, event.at)
        if event.new_identity is not None:
            customer_id = self._attach([*hints, *aliases_of(event.new_identity)], event.at)
        if event.message_id and event.kind in OUTBOUND_KINDS:
            self.message_owner.setdefault(event.message_id, customer_id)
        return customer_id

    def _attach(self, hints: list[Alias], at: int) -> int:
        """The one customer these aliases belong to, after creating or merging as needed."""
        # stored customers first, oldest first: a merge never moves stored rows to a new customer
        owners = sorted({self.alias_owner[h] for h in hints if h in self.alias_owner}, key=lambda c: (c < 0, abs(c)))
        if not owners:
            customer_id = -(len(self.new_customers) + 1)
            self.new_customers[customer_id] = (hints[0][1], at)
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
                self.earlier_aliases.add(alias)
        return customer_id

    def _merge(self, absorbed: int, into: int) -> None:
        for owners in (self.alias_owner, self.message_owner):
            for key, owner in owners.items():
                if owner == absorbed:
                    owners[key] = into
        self.merged_into[absorbed] = into
        self.merged.discard(absorbed)
        self.merged.add(into)

    def _final(self, customer_id: int | None) -> int | None:
        while customer_id in self.merged_into:
            customer_id = self.merged_into[customer_id]
        return customer_id

    def resolution(self, provisional: list[int | None]) -> Resolution:
        return Resolution(
            customer_of=[self._final(customer_id) for customer_id in provisional],
            new_customers={cid: first for cid, first in self.new_customers.items() if cid not in self.merged_into},
            merged_into={cid: self._final(cid) for cid in self.merged_into if cid > 0},
            merged={self._final(cid) for cid in self.merged},
            alias_owner=self.alias_owner,
            alias_first_at=self.alias_first_at,
            new_aliases=self.new_aliases,
            earlier_aliases=self.earlier_aliases - self.new_aliases,
        )


# ---- how each customer is folded -------------------------------------------------------------


class Approach(StrEnum):
    FORWARD = "forward"  # every new event sorts after the last one applied
    FROM_CHECKPOINT = "from_checkpoint"  # a late event, but after the checkpoint: refold the recent part
    WHOLE = "whole"  # older than the checkpoint, or a merge: refold every stored event


def folds_forward(state: CustomerState, fresh: list[Event], merged: bool) -> bool:
    """Whether the new events (in event order) can be applied onto the state as it stands."""
    return not merged and bool(fresh) and state.comes_after(fresh[0])


def refold_start(checkpoint: Checkpoint | None, fresh: list[Event], merged: bool) -> Checkpoint | None:
    """Where a refold starts: the checkpoint when every new event comes after it, else None (the
    customer's floor when retention left one, else scratch)."""
    if merged or checkpoint is None or not fresh or fresh[0].at <= checkpoint.through:
        return None
    return checkpoint


def rewind_instant(fresh: list[Event], tier_since: int | None) -> int | None:
    """For a forward fold: the instant after which the changes time already made go (the sweep
    moved the tier past the first new event from facts that event changes), or None."""
    if tier_since is not None and fresh and fresh[0].at < tier_since:
        return fresh[0].at
    return None


def track_before(history: Iterable[tuple[str, int]], at: int) -> TierTrack:
    """The tier as it stood at `at`, from recorded changes (to tier, instant) in order."""
    track = TierTrack()
    for to_tier, changed_at in history:
        if changed_at <= at:
            track = TierTrack(Tier(to_tier), changed_at)
    return track


@dataclass
class Snapshot:
    """One customer as the store holds them, with what their fold needs.

    A forward fold needs `state`, `track` (already rewound when `rewind_instant` said so) and the
    outbound messages the new events are about. A refold needs `start` (None: from scratch), the
    stored events after it, the outbound messages those touch as they stood at the start, and the
    causes of the recorded tier changes it replaces ((to tier, instant) → cause)."""

    state: CustomerState
    track: TierTrack
    outbound: dict[str, OutboundMessage]
    approach: Approach = Approach.FORWARD
    rewound_after: int | None = None
    start: Checkpoint | None = None
    stored_checkpoint: Checkpoint | None = None
    stored: list[Event] = field(default_factory=list)
    recorded: Mapping[tuple[str, int], str] = field(default_factory=dict)
    floor: Floor | None = None


@dataclass
class CustomerPlan:
    state: CustomerState
    track: TierTrack
    changes: list[TierChange]  # the tier history to append, with the causes to record
    outbound: dict[str, OutboundMessage]  # the outbound messages of theirs this fold changed
    history_after: int | None  # recorded changes after this instant are replaced (0: all); None: kept
    checkpoint: Checkpoint | None  # the checkpoint to store
    checkpoint_changed: bool
    floor: Floor | None = None  # a new floor to store (None: the stored one stays)


def plan_customer(snapshot: Snapshot, fresh: list[Event], merged: bool, rules: TierRules, now: int | None) -> CustomerPlan:
    """The customer after their new events (in event order), as of `now`."""
    if snapshot.approach is Approach.FORWARD:
        state, track, outbound = snapshot.state, snapshot.track, dict(snapshot.outbound)
        changes = apply_events(state, outbound, track, fresh, rules, now)
        touched = outbound_ids(fresh) & outbound.keys()
        return CustomerPlan(state, track, changes, {mid: outbound[mid] for mid in touched}, snapshot.rewound_after,
                            snapshot.stored_checkpoint, checkpoint_changed=False)
    start = snapshot.start
    after_start = [event for event in fresh if start is None or event.at > start.through]  # older: in the floor
    refold = fold_with_tiers([*snapshot.stored, *after_start], rules, now, start, snapshot.outbound)
    new_cause = Cause.MERGE if merged else None
    changes = [_with_recorded_cause(change, snapshot.recorded, new_cause) for change in refold.changes]
    return CustomerPlan(refold.state, refold.track, changes, refold.outbound, start.through if start else 0,
                        refold.checkpoint, checkpoint_changed=merged or refold.checkpoint is not snapshot.stored_checkpoint,
                        floor=snapshot.floor)


def _with_recorded_cause(change: TierChange, recorded: Mapping[tuple[str, int], str], new_cause: Cause | None) -> TierChange:
    """A re-derived change already on record keeps the cause it was recorded with; one found only
    now takes `new_cause` when given (a merge), else its own."""
    cause = recorded.get((change.to_tier.value, change.at))
    if cause is not None:
        return replace(change, cause=Cause(cause))
    return replace(change, cause=new_cause) if new_cause else change
