"""The manager's team figures, from plain values (no I/O): per rep and per business number, each
beside the same figure for the whole team.

A customer belongs to their owner (the rep) and to the business number they last wrote to; a
follow-up belongs to its rep, and to its customer's number.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median
from typing import Callable, Iterable, Sequence

from report.effectiveness import Crossing, effectiveness
from report.figures import Activity, Period, compute, share
from scoring.customer import QUESTION_SIGNALS
from scoring.tiers import Tier

TEAM = "team"
FLOWS = {"hot_to_warm": (Tier.HOT, Tier.WARM), "warm_to_cold": (Tier.WARM, Tier.COLD), "cold_to_dead": (Tier.COLD, Tier.DEAD)}
WARMTH = {Tier.DEAD.value: 0, Tier.UNENGAGED.value: 0, Tier.COLD.value: 1, Tier.WARM.value: 2, Tier.HOT.value: 3}
"""How warm each tier is: a change to a warmer tier is a customer coming back up."""


@dataclass(frozen=True, slots=True)
class TierMove:
    customer: int
    from_tier: str | None
    to_tier: str
    at: int


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One follow-up owed to a rep: when it was made, when that rep first did something about it
    (done, snooze, template, reassign; None: nothing yet), and whether it is open now."""

    reminder: str
    rep: str
    customer: int
    created_at: int
    first_action_at: int | None
    open: bool


@dataclass
class TeamFacts:
    activity: Activity  # the people (with owner and number) and their messages and ours, for the period and before
    tiers_now: dict[int, str]
    moves: Sequence[TierMove]  # tier changes in the period
    tier_history: dict[int, list[tuple[int, str]]]  # customer -> (instant, tier) in order, up to the period's end
    followups: Sequence[FollowUp]  # open now, or made in the period
    crossings: Sequence[Crossing] = field(default_factory=list)


@dataclass(frozen=True)
class Slas:
    hot_s: int
    other_s: int


def team(facts: TeamFacts, period: Period, now: int, thresholds: dict, slas: Slas) -> dict:
    """{"team": figures, "by_rep": {rep: figures}, "by_number": {number: figures}}."""
    people = {person.id: person for person in facts.activity.people}
    number_of = {person.id: person.number or "" for person in facts.activity.people}
    by_rep = defaultdict(set)
    by_number = defaultdict(set)
    for person in facts.activity.people:
        by_rep[person.owner or ""].add(person.id)
        by_number[person.number or ""].add(person.id)
    reps = sorted(set(by_rep) | {f.rep for f in facts.followups} - {""})
    figures = _Figures(facts, period, now, thresholds, slas)
    return {
        TEAM: figures.of(set(people), lambda followup: True, lambda crossing: True),
        "by_rep": {rep: figures.of(by_rep.get(rep, set()), lambda f, rep=rep: f.rep == rep,
                                   lambda c, rep=rep: (c.rep or "") == rep) for rep in reps},
        "by_number": {number: figures.of(group, lambda f, group=group: f.customer in group,
                                         lambda c, group=group: c.customer in group)
                      for number, group in sorted(by_number.items()) if number},
        "period": {"start": period.start, "end": period.end},
        "numbers": sorted({number for number in number_of.values() if number}),
    }


class _Figures:
    def __init__(self, facts: TeamFacts, period: Period, now: int, thresholds: dict, slas: Slas) -> None:
        self.facts, self.period, self.now, self.thresholds, self.slas = facts, period, now, thresholds, slas

    def of(self, customers: set[int], has_followup: Callable[[FollowUp], bool],
           has_crossing: Callable[[Crossing], bool]) -> dict:
        facts, period = self.facts, self.period
        activity = Activity([p for p in facts.activity.people if p.id in customers], facts.activity.messages,
                            facts.activity.sent, facts.activity.readers)
        replies = compute(activity, period, self.thresholds, ("reply_rate", "reply_speed"))
        followups = [f for f in facts.followups if has_followup(f)]
        return {
            "customers": len(customers),
            "tiers": _tiers({c: facts.tiers_now.get(c) for c in customers}),
            "flow": _flow(m for m in facts.moves if m.customer in customers),
            "open_followups": _open(followups),
            "action_median_s": _action_median(followups, period),
            "sla": _sla(activity, facts.tier_history, period, self.now, self.slas),
            "reply_rate": {key: replies["reply_rate"][key] for key in ("messaged", "replied", "rate")},
            "reply_speed": {key: replies["reply_speed"][key] for key in ("answers", "unanswered", "median_s")},
            "effectiveness": effectiveness([c for c in facts.crossings if has_crossing(c)], self.now, per_rep=False),
        }


def _tiers(tiers: dict[int, str | None]) -> dict[str, int]:
    counted = {tier.value: 0 for tier in Tier}
    for tier in tiers.values():
        if tier in counted:
            counted[tier] += 1
    return counted


def _flow(moves: Iterable[TierMove]) -> dict[str, int]:
    flow = {name: 0 for name in FLOWS} | {"up": 0}
    for move in moves:
        for name, (from_tier, to_tier) in FLOWS.items():
            if (move.from_tier, move.to_tier) == (from_tier.value, to_tier.value):
                flow[name] += 1
        if move.from_tier is not None and WARMTH.get(move.to_tier, 0) > WARMTH.get(move.from_tier, 0):
            flow["up"] += 1
    return flow


def _open(followups: list[FollowUp]) -> dict:
    open_now = [f for f in followups if f.open]
    oldest = min(open_now, key=lambda f: (f.created_at, f.reminder), default=None)
    return {"count": len(open_now), "oldest_created_at": oldest.created_at if oldest else None,
            "oldest_customer": oldest.customer if oldest else None}


def _action_median(followups: list[FollowUp], period: Period) -> dict:
    """From a follow-up's making to its rep's first action, for those made in the period."""
    made = [f for f in followups if f.created_at in period]
    waits = [f.first_action_at - f.created_at for f in made if f.first_action_at is not None]
    return {"followups": len(made), "acted": len(waits), "median_s": median(waits) if waits else None}


def _sla(activity: Activity, history: dict[int, list[tuple[int, str]]], period: Period, now: int, slas: Slas) -> dict:
    """Of the questions that began waiting on us in the period (a message asking something, the
    first since our last message), how many we answered within the SLA of the customer's tier
    then: `slas.hot_s` for a hot customer, `slas.other_s` otherwise. A question still within its
    SLA now is not counted yet."""
    customers = {person.id for person in activity.people}
    timelines: dict[int, list[tuple[int, int, frozenset[str]]]] = defaultdict(list)
    for message in activity.messages:
        if message.customer in customers and message.at < period.end:
            timelines[message.customer].append((message.at, 0, message.signals))
    for sent in activity.sent:
        if sent.customer in customers and sent.customer in timelines:
            timelines[sent.customer].append((sent.at, 1, frozenset()))
    asked = kept = 0
    for customer, timeline in timelines.items():
        timeline.sort(key=lambda item: item[:2])
        for since, answered_at in _questions(timeline):
            if since not in period:
                continue
            limit = slas.hot_s if _tier_at(history.get(customer, []), since) == Tier.HOT.value else slas.other_s
            if answered_at is None and now - since < limit:
                continue  # still within its SLA
            asked += 1
            kept += answered_at is not None and answered_at - since <= limit
    return {"questions": asked, "kept": kept, "share": share(kept, asked)}


def _questions(timeline: list[tuple[int, int, frozenset[str]]]) -> list[tuple[int, int | None]]:
    """(asked at, answered at or None) for each question wait in a customer's timeline."""
    found, since = [], None
    for at, ours, signals in timeline:
        if ours:
            if since is not None:
                found.append((since, at))
            since = None
        elif since is None and signals & QUESTION_SIGNALS:
            since = at
    if since is not None:
        found.append((since, None))
    return found


def _tier_at(history: list[tuple[int, str]], at: int) -> str | None:
    tier = None
    for changed_at, to_tier in history:
        if changed_at > at:
            break
        tier = to_tier
    return tier
