"""Tiers: where a customer stands, and when time alone moves them.

With the facts of a customer fixed, their tier can only slide one way as time passes (hot → warm
→ cold → dead), and only at the instants `last interaction + N days`. So the next change is known
in advance: the store keeps it as `next_tier_at`, the sweep visits only customers whose instant
has come, and every change carries the instant the threshold was crossed, whoever notices it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import reduce
from typing import Iterable, Mapping, NamedTuple

from scoring.customer import CustomerState, combine, event_order
from scoring.events import Event, EventKind, OutboundMessage

DAY = 86_400
REORDER_WINDOW_S = 3600
"""How much older than a customer's newest event a late event may be and still refold only the
customer's recent events: the fold up to this far back is kept as their checkpoint. Meta's
deliveries overtake each other by seconds to minutes; an event later than this (Meta retrying
after an outage of ours) refolds the customer's whole history, once."""


class Tier(StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"
    DEAD = "dead"
    UNENGAGED = "unengaged"  # never interacted with us: kept out of the four tiers


class Cause(StrEnum):
    EVENT = "event"  # an event of theirs (or ours) reclassified them
    TIME = "time"  # a threshold passed with no event
    UNREACHABLE = "unreachable"  # a delivery failed with 131026
    MERGE = "merge"  # the change appeared when two records of one person were merged
    REBUILD = "rebuild"  # the change appeared when `wapulse rebuild` re-derived the history


@dataclass(frozen=True, slots=True)
class TierRules:
    """Thresholds: hot within `hot_days` with `hot_min_interactions` in all, warm within
    `warm_days`, cold within `cold_days`, dead beyond."""

    hot_days: int = 7
    warm_days: int = 30
    cold_days: int = 90
    hot_min_interactions: int = 5

    @classmethod
    def from_config(cls, table: Mapping) -> TierRules:
        """The `[tiers]` table of wapulse.toml: a preset, then per-threshold overrides.

        Raises ValueError naming the bad key."""
        unknown = set(table) - {"preset"} - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"[tiers] has unknown keys {sorted(unknown)}; known: preset, "
                             + ", ".join(f.name for f in fields(cls)))
        preset = table.get("preset", "default")
        if preset not in PRESETS:
            raise ValueError(f"[tiers] preset = {preset!r} is not one of {sorted(PRESETS)}")
        values = {f.name: getattr(PRESETS[preset], f.name) for f in fields(cls)}
        for name in values:
            if name in table:
                value = table[name]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"[tiers] {name} = {value!r} must be a whole number of at least 1")
                values[name] = value
        rules = cls(**values)
        if not rules.hot_days < rules.warm_days < rules.cold_days:
            raise ValueError(
                f"[tiers] needs hot_days < warm_days < cold_days, got {rules.hot_days}, {rules.warm_days}, "
                f"{rules.cold_days}"
            )
        return rules

    def boundaries(self, last_interaction_at: int) -> tuple[int, int, int]:
        return (last_interaction_at + self.hot_days * DAY, last_interaction_at + self.warm_days * DAY,
                last_interaction_at + self.cold_days * DAY)


PRESETS = {
    "default": TierRules(7, 30, 90, 5),
    "b2b_long_cycle": TierRules(14, 90, 180, 5),
    "fast_moving": TierRules(3, 14, 45, 5),
}


@dataclass(frozen=True, slots=True)
class TierFacts:
    """The only facts a tier depends on; the store keeps them as columns, so the sweep needs
    nothing else."""

    interactions: int
    last_interaction_at: int | None
    unreachable: bool

    @classmethod
    def of(cls, state: CustomerState) -> TierFacts:
        return cls(state.inbound, state.last_inbound_at, state.unreachable)


def classify(facts: TierFacts, at: int, rules: TierRules) -> Tier:
    """The tier at instant `at`. "Within N days" means less than N × 24 h since the last
    interaction; at exactly N days the customer has crossed into the next tier."""
    if facts.unreachable:
        return Tier.DEAD
    if facts.last_interaction_at is None:
        return Tier.UNENGAGED
    age = at - facts.last_interaction_at
    if age < rules.hot_days * DAY and facts.interactions >= rules.hot_min_interactions:
        return Tier.HOT
    if age < rules.warm_days * DAY:
        return Tier.WARM
    if age < rules.cold_days * DAY:
        return Tier.COLD
    return Tier.DEAD


@dataclass(frozen=True, slots=True)
class TierChange:
    from_tier: Tier | None  # None: the customer's first classification
    to_tier: Tier
    at: int
    cause: Cause


@dataclass(slots=True)
class TierTrack:
    """A customer's current tier and since when; moved forward by events and by time."""

    tier: Tier | None = None
    since: int | None = None

    def next_change_at(self, facts: TierFacts, rules: TierRules) -> int | None:
        """When time alone will next change the tier, or None if it never will."""
        if self.tier is None or facts.unreachable or facts.last_interaction_at is None:
            return None
        for boundary in rules.boundaries(facts.last_interaction_at):
            if boundary > (self.since or 0) and classify(facts, boundary, rules) != self.tier:
                return boundary
        return None

    def advance(self, facts: TierFacts, until: int, rules: TierRules, *, inclusive: bool) -> list[TierChange]:
        """The changes time makes up to `until` (up to and including it when `inclusive`)."""
        changes = []
        while (at := self.next_change_at(facts, rules)) is not None and (at < until or (inclusive and at == until)):
            changes.append(self._move(classify(facts, at, rules), at, Cause.TIME))
        return changes

    def settle(self, facts: TierFacts, at: int, rules: TierRules, cause: Cause) -> list[TierChange]:
        """The change, if any, that new facts make at instant `at`."""
        tier = classify(facts, at, rules)
        if tier == self.tier:
            return []
        return [self._move(tier, at, cause)]

    def _move(self, tier: Tier, at: int, cause: Cause) -> TierChange:
        change = TierChange(self.tier, tier, at, cause)
        self.tier, self.since = tier, at
        return change


def apply_events(
    state: CustomerState,
    outbound: dict[str, OutboundMessage],
    track: TierTrack,
    events: Iterable[Event],
    rules: TierRules,
    now: int | None,
) -> list[TierChange]:
    """Fold events (in event order, all after what `state` has applied) into the state and the
    tier track, then let time run to `now`. Returns every tier change, oldest first."""
    changes: list[TierChange] = []
    for event in sorted(events, key=event_order):
        before = TierFacts.of(state)
        changes += track.advance(before, event.at, rules, inclusive=False)
        state.apply(event, outbound)
        facts = TierFacts.of(state)
        changes += track.settle(facts, event.at, rules, _cause(before, facts, track))
    if now is not None and track.tier is not None:
        changes += track.advance(TierFacts.of(state), now, rules, inclusive=True)
    return changes


def _cause(before: TierFacts, after: TierFacts, track: TierTrack) -> Cause:
    """Why a change at an event's instant happened: the event, or a threshold falling on the very
    same second (the event changed none of the facts)."""
    if after.unreachable and not before.unreachable:
        return Cause.UNREACHABLE
    if after == before and track.tier is not None:
        return Cause.TIME
    return Cause.EVENT


@dataclass(frozen=True)
class Checkpoint:
    """A customer's fold after every one of their events at or before `through`, and their tier
    then. An event that arrives late but after `through` is folded in from here, so the cost of
    reordering grows with the customer's recent events, not with their whole history."""

    through: int
    state: dict  # CustomerState JSON
    tier: Tier | None
    since: int | None

    def to_json(self) -> dict:
        return {"through": self.through, "state": self.state, "tier": self.tier, "since": self.since}

    @classmethod
    def from_json(cls, data: Mapping | None) -> Checkpoint | None:
        if not data:
            return None
        return cls(data["through"], data["state"], Tier(data["tier"]) if data["tier"] else None, data["since"])


@dataclass(frozen=True)
class Floor:
    """What retention keeps of a customer's events at or before `through` once it deletes them:
    the fold they made, the tier then, and our messages as those events left them (a later status
    of one must find it as it was). A refold that cannot start from the checkpoint starts here
    instead of from scratch, so counters and tiers stay what the deleted events made them."""

    through: int
    state: dict  # CustomerState JSON
    tier: Tier | None
    since: int | None
    outbound: dict[str, list]  # message id -> [at, rank, failed, error code, campaign, business number]

    def start(self) -> Checkpoint:
        return Checkpoint(self.through, self.state, self.tier, self.since)

    def messages(self) -> dict[str, OutboundMessage]:
        return {mid: OutboundMessage(message_id=mid, at=at, rank=rank, failed=failed, error_code=error_code,
                                     campaign=campaign, phone_number_id=number)
                for mid, (at, rank, failed, error_code, campaign, number) in self.outbound.items()}

    def to_json(self) -> dict:
        return {**self.start().to_json(), "outbound": self.outbound}

    @classmethod
    def from_json(cls, data: Mapping | None) -> Floor | None:
        if not data:
            return None
        start = Checkpoint.from_json(data)
        return cls(start.through, start.state, start.tier, start.since, data["outbound"])


def _packed(outbound: Mapping[str, OutboundMessage]) -> dict[str, list]:
    return {mid: [m.at, m.rank, m.failed, m.error_code, m.campaign, m.phone_number_id] for mid, m in sorted(outbound.items())}


def raise_floor(floor: Floor | None, events: Iterable[Event], through: int, track: TierTrack) -> Floor:
    """The floor moved up to `through` over the customer's events after the old floor and at or
    before `through` (which retention deletes next); `track` is their tier as recorded then."""
    state = CustomerState.from_json(copy.deepcopy(floor.state)) if floor else CustomerState()
    outbound = floor.messages() if floor else {}
    for event in sorted(events, key=event_order):
        state.apply(event, outbound)
    return Floor(through, state.to_json(), track.tier, track.since, _packed(outbound))


def join_floors(floors: list[Floor], loose: Iterable[Event], rules: TierRules) -> Floor:
    """One floor, at the latest of `floors`, from them and from events at or before it that none
    of them holds: the kept events of a record that a merge joins to one with a later floor (or
    to one with a floor, when it has none). Their folds are combined (`scoring.customer.combine`),
    as the events the floors stand for are gone; the tier then is what the combined facts say,
    since the latest floor's change when it is the same tier."""
    latest = max(floors, key=lambda floor: floor.through)
    outbound: dict[str, OutboundMessage] = {}
    for floor in floors:
        outbound.update(floor.messages())
    extra = CustomerState()
    for event in sorted(loose, key=event_order):
        extra.apply(event, outbound)
    state = reduce(combine, [CustomerState.from_json(copy.deepcopy(floor.state)) for floor in floors] + [extra])
    tier, since = latest.tier, latest.since
    if any(floor.tier is not None for floor in floors) or extra.last_event_at is not None:
        tier = classify(TierFacts.of(state), latest.through, rules)
        since = latest.since if tier == latest.tier else latest.through
    return Floor(latest.through, state.to_json(), tier, since, _packed(outbound))


class Fold(NamedTuple):
    state: CustomerState
    outbound: dict[str, OutboundMessage]
    track: TierTrack
    changes: list[TierChange]  # every change after the starting checkpoint, oldest first
    checkpoint: Checkpoint | None


def fold_with_tiers(
    events: Iterable[Event],
    rules: TierRules,
    now: int | None,
    start: Checkpoint | None = None,
    outbound_at_start: Mapping[str, OutboundMessage] | None = None,
    window: int = REORDER_WINDOW_S,
) -> Fold:
    """A customer from `start` (or from scratch) through `events`, which all come after
    `start.through`; `outbound_at_start` holds the outbound messages those events refer to, as
    they stood then. Returns the state, those messages, the tier and its changes, and a new
    checkpoint `window` seconds before the newest event (or `start` when none is that old)."""
    state = CustomerState.from_json(copy.deepcopy(start.state)) if start else CustomerState()
    track = TierTrack(start.tier, start.since) if start else TierTrack()
    outbound = {mid: copy.copy(message) for mid, message in (outbound_at_start or {}).items()}
    ordered = sorted(events, key=event_order)
    horizon = ordered[-1].at - window if ordered else None
    settled = [event for event in ordered if event.at <= horizon]
    changes = apply_events(state, outbound, track, settled, rules, now=None)
    checkpoint = Checkpoint(horizon, copy.deepcopy(state.to_json()), track.tier, track.since) if settled else start
    changes += apply_events(state, outbound, track, ordered[len(settled):], rules, now)
    return Fold(state, outbound, track, changes, checkpoint)


def outbound_as_of(events: Iterable[Event], floor: Floor | None = None) -> dict[str, OutboundMessage]:
    """Outbound messages as their own statuses and echoes (`events`) leave them, from where the
    customer's floor left them: what a message is depends on its own events only (a status
    counted in the floor and still stored is applied again harmlessly: ranks only rise)."""
    state, outbound = CustomerState(), floor.messages() if floor else {}
    for event in sorted(events, key=event_order):
        if event.kind in (EventKind.STATUS, EventKind.ECHO):
            state.apply(event, outbound)
    return outbound
