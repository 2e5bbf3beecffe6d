"""The activity report's figures, from plain values (no I/O): people, their messages and ours.

Every figure is a count of stored events over a half-open period [start, end), so the same
events always give the same report; events from HISTORY_BEFORE_S before the period count for
what began earlier (touches in a row, waits for our answer). A share whose base is zero is None
(shown as "n/a").
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from heapq import nsmallest
from operator import attrgetter
from statistics import median
from typing import Iterable, NamedTuple, Sequence, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from scoring.events import STATUS_RANK, UNREACHABLE_ERROR, Status, iso
from scoring.tiers import Tier

DELIVERED = STATUS_RANK[Status.DELIVERED]
READ = STATUS_RANK[Status.READ]
TIERS = [Tier.HOT.value, Tier.WARM.value, Tier.COLD.value, Tier.DEAD.value, Tier.UNENGAGED.value]
NEW = "new"
"""In place of a tier at the period's start: a customer first seen during the period."""
EXPECTED_SHARES = {"hot": (0.10, 0.15), "warm": (0.20, 0.25), "cold": (0.25, 0.30), "dead": (0.30, 0.40)}
"""The share of the base practitioners expect in each tier (the four tiers, unengaged apart)."""
TIER_RULES = {
    "hot": "interacted within {hot_days} days, {hot_min_interactions} interactions or more",
    "warm": "interacted within {warm_days} days (and not hot)",
    "cold": "last interaction {warm_days} to {cold_days} days ago",
    "dead": "no interaction for {cold_days} days or more, or unreachable",
    "unengaged": "we reached them; they never answered",
}
ACTIONS = {
    "hot": ("Answer the same day and move to close", "daily"),
    "warm": ("Share a case or ask what holds them back", "weekly"),
    "cold": ("Send value (news, greetings), no hard promotion", "monthly"),
    "dead": ("Archive unless there is a big launch", "archived"),
}
CONTENT_TYPES = {
    "commerce": {"price_inquiry", "spec_question", "sample_request", "order_intent", "product_inquiry", "order"},
    "questions": {"question"},
    "rapport": {"rapport", "voice", "image", "sticker", "reaction"},
}
"""Content interaction types by signal, the first that fits a message taking it (so "how much?"
is commerce, not a plain question, and the shares add up to 100%); a message with none of these
signals is passive text."""
CONTENT_KINDS = ("passive_text", "questions", "commerce", "rapport")


def content_kind(signals: frozenset[str]) -> str:
    return next((kind for kind, kind_signals in CONTENT_TYPES.items() if signals & kind_signals), "passive_text")


FOLLOW_UP_TOUCHES = (1, 2, 3)
HISTORY_BEFORE_S = 90 * 86_400  # how far before the period touches and waits are followed back
WEEK_S = 7 * 86_400
HOT_ANSWER_S = 5 * 60
ACTION_LIST_CAP = 50
SILENT_S = 60 * 86_400
QUARTER_HOUR_S = 900
"""Every UTC offset and every offset change falls on a quarter hour: within one, the local weekday and hour stay put."""
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


@dataclass(frozen=True, slots=True)
class Person:
    """A customer as the report sees them; tiers as of the period's start and end."""

    id: int
    key: str
    name: str | None = None
    country: str | None = None
    timezone: str | None = None
    owner: str | None = None
    number: str | None = None  # the business phone number id they write to
    tier_at_start: str | None = None
    tier_at_end: str | None = None


class Message(NamedTuple):
    """One message (or reaction, order...) from a customer. (Tuples: a report reads millions.)"""

    customer: int
    at: int
    signals: frozenset[str] = frozenset()
    number: str | None = None  # the business phone number id it was written to


class Sent(NamedTuple):
    """One message of ours, as far as its statuses took it."""

    customer: int
    at: int
    rank: int = 1  # 1 sent, 2 delivered, 3 read, 4 played
    failed: bool = False
    error_code: int | None = None
    campaign: str | None = None
    number: str | None = None  # the business phone number id it went from


class Retired(NamedTuple):
    """Messages whose events are gone (their customer erased, or past `[retention] events_days`),
    as the store keeps them: a count per UTC day."""

    day: int
    direction: str  # "in": theirs, "out": ours
    kind: str  # a content kind for "in"
    messages: int


@dataclass(frozen=True)
class Period:
    start: int
    end: int  # exclusive

    def __contains__(self, at: int) -> bool:
        return self.start <= at < self.end

    def previous(self) -> Period:
        return Period(2 * self.start - self.end, self.start)


@dataclass
class Activity:
    """What the report reads: the people in scope and the events of the period (and, for touch
    counts and first answers, those before it that were loaded)."""

    people: Sequence[Person]
    messages: Sequence[Message]
    sent: Sequence[Sent]
    readers: frozenset[int] = frozenset()  # customers who have ever sent a read receipt
    excluded: dict[str, int] = field(default_factory=dict)  # events left out, by reason
    wabas: dict[str, str] = field(default_factory=dict)  # business phone number id: its WABA id, where known
    retired: Sequence[Retired] = ()  # what deleted events left to the day counts (the trend and content)
    imported: dict[str, int] = field(default_factory=dict)  # messages of the period from chat exports, each way


Name = TypeVar("Name")


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def percent(value: float | None) -> str:
    """A share as the readable forms show it."""
    return "n/a" if value is None else f"{value * 100:.1f}%"


def leaders(amounts: dict[Name, int], places: int = 1) -> list[Name]:
    """The names with the `places` largest amounts (above zero), in the order given, and every
    name tied with the last of them: a tie is never settled by which name sorts first. No name
    when more than `places` names all tie, as then none stands out."""
    ranked = sorted(amounts.values(), reverse=True)
    if not ranked or ranked[0] <= 0 or (len(ranked) > places and ranked[0] == ranked[-1]):
        return []
    cut = max(ranked[min(places, len(ranked)) - 1], 1)
    return [name for name, amount in amounts.items() if amount >= cut]


def listed(names: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c" (one name at least)."""
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]


SECTIONS = ("source", "segmentation", "reply_rate", "frequency", "content", "funnel", "reactivation", "local_time",
            "reply_speed", "action_plan", "trend")
HEADLINE_SECTIONS = ("source", "segmentation", "reply_rate", "funnel")
"""The sections `compare` reads: all a previous period needs."""
CUSTOMER_ROWS = "customers"
"""Not a section of its own: one row per customer in scope, for the CSV form."""


def compute(activity: Activity, period: Period, tier_thresholds: dict, sections: Sequence[str] = SECTIONS) -> dict:
    """The sections named (by default all but the summary and the comparison), keyed as the JSON
    form keeps them. Events at or after the period's end are ignored, so one Activity can serve
    a period and the one before it."""
    people = {person.id: person for person in activity.people}
    inbound = _by_customer(activity.messages, people, period.start - HISTORY_BEFORE_S, period.end)
    outbound = _by_customer(activity.sent, people, period.start - HISTORY_BEFORE_S, period.end)
    in_period = _since(inbound, period.start)
    sent_in_period = _since(outbound, period.start)
    figures = {
        "source": lambda: _source(activity, period, in_period, sent_in_period),
        "segmentation": lambda: _segmentation(activity.people, tier_thresholds, inbound, period),
        "reply_rate": lambda: _reply_rate(people, inbound, outbound, sent_in_period, period, activity.readers),
        "frequency": lambda: _frequency(people, in_period, period),
        "content": lambda: _content(in_period, [row for row in activity.retired if row.day in period]),
        "funnel": lambda: _funnel(people, in_period, sent_in_period),
        "reactivation": lambda: _reactivation(people, inbound, outbound, period),
        "local_time": lambda: _local_time(people, in_period),
        "reply_speed": lambda: _reply_speed(people, inbound, in_period, outbound, period),
        "action_plan": lambda: _action_plan(people, inbound, in_period),
        "trend": lambda: _trend(in_period, sent_in_period, period, [row for row in activity.retired if row.day in period]),
        CUSTOMER_ROWS: lambda: _customer_rows(people, inbound, in_period, sent_in_period),
    }
    return {name: figures[name]() for name in sections}


_at = attrgetter("at")


def _by_customer(items: Iterable, people: dict, start: int, end: int) -> dict[int, list]:
    """Messages (or ours) of the people in scope in [start, end), per customer, oldest first."""
    grouped: dict[int, list] = defaultdict(list)
    for item in items:
        if start <= item.at < end and item.customer in people:
            grouped[item.customer].append(item)
    for values in grouped.values():
        values.sort(key=_at)
    return grouped


def _since(grouped: dict[int, list], start: int) -> dict[int, list]:
    """The same lists cut to what happened from `start` on; customers left with nothing dropped."""
    cut = {}
    for customer, items in grouped.items():
        first = bisect_left(items, start, key=_at)
        if first < len(items):
            cut[customer] = items[first:]
    return cut


def _source(activity: Activity, period: Period, in_period: dict, sent_in_period: dict) -> dict:
    active = in_period.keys() | sent_in_period.keys()
    numbers = {item.number for grouped in (in_period, sent_in_period) for items in grouped.values() for item in items
               if item.number}
    wabas: dict[str, list[str]] = defaultdict(list)
    for number in sorted(numbers):
        wabas[activity.wabas.get(number, "unknown")].append(number)
    return {
        "period": {"from": iso(period.start), "to": iso(period.end)},
        "numbers": sorted(numbers),
        "wabas": dict(sorted(wabas.items())),
        "customers": len(active),
        "events": {"inbound": sum(map(len, in_period.values())), "outbound": sum(map(len, sent_in_period.values()))},
        "excluded": dict(sorted(activity.excluded.items())),
        "imported": {"from_customers": 0, "of_ours": 0, **activity.imported},
    }


def _segmentation(people: Sequence[Person], thresholds: dict, inbound: dict, period: Period) -> dict:
    tiered = [p for p in people if p.tier_at_end]
    silent = sum(1 for p in tiered if p.id not in inbound or inbound[p.id][-1].at < period.end - SILENT_S)
    counts = Counter(p.tier_at_end for p in tiered)
    four = sum(counts[t] for t in EXPECTED_SHARES)
    tiers = {}
    for tier in TIERS:
        entry = {"rule": TIER_RULES[tier].format(**thresholds), "count": counts[tier],
                 "share": share(counts[tier], len(tiered))}
        if tier in EXPECTED_SHARES:  # practitioners' ranges are shares of the four tiers, unengaged apart
            low, high = EXPECTED_SHARES[tier]
            entry["share_of_four"] = share(counts[tier], four)
            entry["expected"] = [low, high]
            entry["outside_expected"] = entry["share_of_four"] is not None and not low <= entry["share_of_four"] <= high
        tiers[tier] = entry
    return {
        "customers": len(tiered),
        "tiers": tiers,
        "silent_over_60_days": {"count": silent, "share": share(silent, len(tiered))},
        "by_country": _tier_breakdown(tiered, lambda p: p.country or "unknown"),
        "by_owner": _tier_breakdown(tiered, lambda p: p.owner or "none"),
    }


def _tier_breakdown(people: Sequence[Person], key) -> dict:
    table: dict[str, Counter] = defaultdict(Counter)
    for person in people:
        table[key(person)][person.tier_at_end] += 1
    return {name: {tier: counts[tier] for tier in TIERS} | {"total": sum(counts.values())}
            for name, counts in sorted(table.items(), key=lambda item: (-sum(item[1].values()), item[0]))}


def _reply_rate(people: dict, inbound: dict, outbound: dict, sent_in_period: dict, period: Period,
                readers: frozenset[int]) -> dict:
    messaged = set(sent_in_period)
    replied = {c for c in messaged if inbound.get(c) and inbound[c][-1].at > sent_in_period[c][0].at}
    per_tier = {}  # by the tier at the start: replying is what moves a customer up
    for tier in TIERS + [NEW]:
        group = {c for c in messaged if _tier_at_start(people[c]) == tier}
        per_tier[tier] = {"messaged": len(group), "replied": len(group & replied), "rate": share(len(group & replied), len(group))}
    sent = [s for ss in sent_in_period.values() for s in ss]
    delivered = [s for s in sent if s.rank >= DELIVERED]
    readable = [s for s in delivered if s.customer in readers]
    return {
        "messaged": len(messaged), "replied": len(replied), "rate": share(len(replied), len(messaged)),
        "by_tier": per_tier,
        "touches": _touches(inbound, outbound, sent_in_period, period),
        "messages": {
            "sent": len(sent), "delivered": len(delivered), "delivered_rate": share(len(delivered), len(sent)),
            "read": sum(1 for s in readable if s.rank >= READ), "read_rate": share(sum(1 for s in readable if s.rank >= READ), len(readable)),
            "read_rate_base": len(readable),
            "customers_without_read_receipts": len({s.customer for s in delivered} - readers),
        },
    }


def _tier_at_start(person: Person) -> str:
    return person.tier_at_start or NEW


def _touches(inbound: dict, outbound: dict, sent_in_period: dict, period: Period) -> dict:
    """Reply rate after the 1st, 2nd, 3rd message of ours in a row (a reply starts the count
    again): of the touches made in the period, how many got a reply before the next touch."""
    made, answered = Counter(), Counter()
    for customer in sent_in_period:
        timeline = sorted([(m.at, 0) for m in inbound.get(customer, ())] + [(s.at, 1) for s in outbound[customer]])
        touch, waiting = 0, None
        for at, ours in timeline:
            if ours:
                touch += 1
                waiting = touch if at in period and touch in FOLLOW_UP_TOUCHES else None
                if waiting:
                    made[waiting] += 1
            else:
                if waiting:
                    answered[waiting] += 1
                touch, waiting = 0, None
    return {str(n): {"touches": made[n], "replied": answered[n], "rate": share(answered[n], made[n])} for n in FOLLOW_UP_TOUCHES}


def _frequency(people: dict, in_period: dict, period: Period) -> dict:
    """high: 3 or more interactions a week over the period; medium: 1 to 3; low: under 1 (but some)."""
    weeks = (period.end - period.start) / WEEK_S
    bands: dict[str, Counter] = {"high": Counter(), "medium": Counter(), "low": Counter()}
    for customer, messages in in_period.items():
        per_week = len(messages) / weeks
        band = "high" if per_week >= 3 else "medium" if per_week >= 1 else "low"
        bands[band][people[customer].tier_at_end or "none"] += 1
    total = sum(sum(c.values()) for c in bands.values())
    return {band: {"count": sum(c.values()), "share": share(sum(c.values()), total), "by_tier": dict(sorted(c.items()))}
            for band, c in bands.items()}


def _content(in_period: dict, retired: Sequence[Retired]) -> dict:
    counts, customers = Counter(), defaultdict(set)
    for row in retired:
        if row.direction == "in":
            counts[row.kind] += row.messages
    kinds_of: dict[frozenset[str], str] = {}  # messages share a few dozen signal sets
    for customer, messages in in_period.items():
        for message in messages:
            if (kind := kinds_of.get(message.signals)) is None:
                kind = kinds_of[message.signals] = content_kind(message.signals)
            counts[kind] += 1
            customers[kind].add(customer)
    total = sum(counts.values())
    return {kind: {"messages": counts[kind], "share": share(counts[kind], total), "customers": len(customers[kind])}
            for kind in CONTENT_KINDS}


FUNNEL_STEPS = ("reached", "replied", "inquired", "ordered")


def _funnel(people: dict, in_period: dict, sent_in_period: dict) -> dict:
    """Customer by customer, and per business number each customer's conversation with that number."""
    furthest = {c: _furthest_step(sent, in_period.get(c, ())) for c, sent in sent_in_period.items()}
    per_number: dict[str, list[int]] = defaultdict(list)
    for customer, sent in sent_in_period.items():
        theirs = in_period.get(customer, ())
        numbers = {message.number for message in sent}
        if len(numbers) == 1 and all(message.number in numbers for message in theirs):  # one conversation, the usual
            per_number[numbers.pop() or "unknown"].append(furthest[customer])
            continue
        ours: dict[str | None, list[Sent]] = defaultdict(list)
        for message in sent:
            ours[message.number].append(message)
        for number, from_number in ours.items():
            per_number[number or "unknown"].append(
                _furthest_step(from_number, [m for m in theirs if m.number == number]))
    by_owner = _groups(people, "owner")
    return {
        **_steps(list(furthest.values())),
        "by_number": {number: _steps(found) for number, found in sorted(per_number.items())},
        "by_owner": {owner: _steps([furthest[c] for c in group if c in furthest]) for owner, group in by_owner.items()},
    }


def _steps(furthest: list[int]) -> dict:
    """The funnel of a group, from how far down each of its conversations got."""
    reached_exactly = Counter(furthest)
    counts = [sum(n for step, n in reached_exactly.items() if step > i) for i in range(len(FUNNEL_STEPS))]
    result: dict = {name: {"count": counts[i], "conversion": share(counts[i], counts[i - 1]) if i else None}
                    for i, name in enumerate(FUNNEL_STEPS)}
    result["biggest_loss"] = leaders({name: counts[i - 1] - counts[i] for i, name in enumerate(FUNNEL_STEPS)
                                      if i and counts[i - 1]})
    result["reached_to_ordered"] = share(counts[-1], counts[0])
    return result


def _groups(people: dict, attribute: str) -> dict[str, set[int]]:
    """Customer ids by a person attribute (number, owner), sorted by its value; people without one left out."""
    groups: dict[str, set[int]] = defaultdict(set)
    for customer, person in people.items():
        if value := getattr(person, attribute):
            groups[value].add(customer)
    return dict(sorted(groups.items()))


def _furthest_step(sent: list[Sent], messages: list[Message]) -> int:
    """How far down the funnel one customer got in the period: 0 not reached (nothing delivered,
    or unreachable), 1 reached, 2 replied, 3 inquired, 4 ordered (an order is a commerce signal,
    so the steps nest)."""
    if not any(s.rank >= DELIVERED for s in sent) or any(s.error_code == UNREACHABLE_ERROR for s in sent):
        return 0
    if not messages or messages[-1].at <= sent[0].at:
        return 1
    if not any(m.signals & CONTENT_TYPES["commerce"] for m in messages):
        return 2
    return 4 if any("order" in m.signals for m in messages) else 3


def _reactivation(people: dict, inbound: dict, outbound: dict, period: Period) -> dict:
    """Customers cold or dead when the period began who wrote again in it: how long after our
    last message before their comeback, and which campaign tag that message carried. Per tag,
    of the dormant customers whose last message from us in the period carried it (before any
    comeback), how many replied and how many were warm or hot at the end."""
    dormant = [c for c, p in people.items() if p.tier_at_start in ("cold", "dead")]
    back, waits, tags = [], [], defaultdict(lambda: {"messaged": 0, "replied": 0, "reactivated": 0})
    for customer in dormant:
        first_back = next((m.at for m in inbound.get(customer, ()) if m.at in period), None)
        ours = [s for s in outbound.get(customer, ()) if s.at in period and (first_back is None or s.at < first_back)]
        if first_back is not None:
            before = [s for s in outbound.get(customer, ()) if s.at < first_back]
            back.append(customer)
            if before:
                waits.append(first_back - before[-1].at)
        if ours:
            tag = tags[ours[-1].campaign or "(no tag)"]
            tag["messaged"] += 1
            tag["replied"] += first_back is not None
            tag["reactivated"] += people[customer].tier_at_end in ("warm", "hot")
    table = {name: {**counts, "reply_rate": share(counts["replied"], counts["messaged"]),
                    "reactivation_rate": share(counts["reactivated"], counts["messaged"])}
             for name, counts in sorted(tags.items())}
    return {
        "dormant_at_start": len(dormant), "came_back": len(back), "rate": share(len(back), len(dormant)),
        "time_to_come_back_median_s": median(waits) if waits else None,
        "by_campaign": table, "significance": _significance(table),
    }


def _significance(table: dict) -> str:
    """A plain note on whether the tags' reactivation rates differ beyond chance (Fisher's exact
    test of the two largest samples)."""
    from scipy.stats import fisher_exact  # imported here: only reports need it

    tags = sorted(table.items(), key=lambda item: -item[1]["messaged"])[:2]
    if len(tags) < 2:
        return "one campaign tag or none: nothing to compare"
    (a, first), (b, second) = tags
    _, p_value = fisher_exact([[first["reactivated"], first["messaged"] - first["reactivated"]],
                               [second["reactivated"], second["messaged"] - second["reactivated"]]])
    small = min(first["messaged"], second["messaged"]) < 30
    verdict = "a real difference" if p_value < 0.05 else "no clear difference"
    return (f"{a} vs {b}: p = {p_value:.3f} (Fisher's exact test), {verdict}"
            + ("; samples under 30 customers: read with care" if small else ""))


def _local_time(people: dict, in_period: dict) -> dict:
    """Inbound messages by weekday and hour on each customer's own clock, and per region (the
    first part of their time zone) the three hours they write most, with any hour tied with the
    third (none when more than three hours all tie)."""
    instants: dict[str, list[int]] = defaultdict(list)
    for customer, messages in in_period.items():
        instants[people[customer].timezone or ""].extend(m.at for m in messages)
    unknown = len(instants.pop("", ()))
    heatmap = np.zeros((len(WEEKDAYS), 24), dtype=np.int64)
    by_region: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(24, dtype=np.int64))
    for zone, ats in instants.items():
        quarters, counts = np.unique(np.array(ats, dtype=np.int64) // QUARTER_HOUR_S, return_counts=True)
        clock = [datetime.fromtimestamp(int(q) * QUARTER_HOUR_S, ZoneInfo(zone)) for q in quarters]
        weekdays, hours = np.array([t.weekday() for t in clock]), np.array([t.hour for t in clock])
        np.add.at(heatmap, (weekdays, hours), counts)
        np.add.at(by_region[zone.split("/")[0]], hours, counts)
    by_region = {region: dict(enumerate(hours.tolist())) for region, hours in by_region.items()}
    return {
        "weekdays": WEEKDAYS, "heatmap": heatmap.tolist(), "without_time_zone": unknown,
        "best_hours": {region: leaders({hour: n for hour, n in sorted(hours.items(), key=lambda kv: (-kv[1], kv[0])) if n},
                                       places=3)
                       for region, hours in sorted(by_region.items())},
    }


def _reply_speed(people: dict, inbound: dict, in_period: dict, outbound: dict, period: Period) -> dict:
    """From a customer's first message that waits on us to our next message, for waits that
    began in the period; a wait we had not answered by the period's end is unanswered (None).
    Tiers as at the period's start. Hot customers answered within 5 minutes: of the hot
    customers who waited on us, those whose every wait was answered that fast."""
    waits: dict[int, list[int | None]] = defaultdict(list)
    for customer in in_period:
        timeline = sorted([(m.at, 0) for m in inbound[customer]] + [(s.at, 1) for s in outbound.get(customer, ())])
        waiting_since = None
        for at, ours in timeline:
            if not ours and waiting_since is None:
                waiting_since = at
            elif ours and waiting_since is not None:
                if waiting_since in period:
                    waits[customer].append(at - waiting_since)
                waiting_since = None
        if waiting_since is not None and waiting_since in period:
            waits[customer].append(None)

    def figures(group: Iterable[int]) -> dict:
        found = [w for c in group for w in waits[c]]
        values = sorted(w for w in found if w is not None)
        return {"answers": len(values), "unanswered": len(found) - len(values),
                "median_s": median(values) if values else None, "p90_s": _p90(values)}

    waited = {c: people[c] for c in waits}
    hot = [c for c, person in waited.items() if person.tier_at_start == Tier.HOT.value]
    fast = sum(1 for c in hot if all(w is not None and w <= HOT_ANSWER_S for w in waits[c]))
    return {
        **figures(waits),
        "by_tier": {tier: figures(c for c, person in waited.items() if _tier_at_start(person) == tier)
                    for tier in TIERS + [NEW]},
        "by_owner": {owner: figures(group) for owner, group in _groups(waited, "owner").items()},
        "hot_within_5_min": {"customers": len(hot), "answered_within_5_min": fast, "share": share(fast, len(hot))},
    }


def _p90(values: list[int]) -> int | None:
    """The nearest-rank 90th percentile: the smallest value at least 90% of them do not exceed."""
    if not values:
        return None
    return values[max(0, -(-9 * len(values) // 10) - 1)]


def _action_plan(people: dict, inbound: dict, in_period: dict) -> dict:
    """Per tier, the customers to act on first: most orders in the period, then most
    interactions, then the latest contact."""

    def value(customer: int) -> tuple:
        messages = in_period.get(customer, ())
        last_at = inbound[customer][-1].at if customer in inbound else 0
        return -sum(1 for m in messages if "order" in m.signals), -len(messages), -last_at, people[customer].key

    plan = {}
    by_tier = _groups(people, "tier_at_end")
    for tier, (action, cadence) in ACTIONS.items():
        group = by_tier.get(tier, set())
        first = nsmallest(ACTION_LIST_CAP, group, key=value)
        plan[tier] = {"action": action, "cadence": cadence, "customers": len(group),
                      "list": [_action_row(people[c], inbound.get(c), in_period.get(c, ())) for c in first]}
    return plan


def _action_row(person: Person, messages: list[Message] | None, in_period: list[Message]) -> dict:
    last = messages[-1] if messages else None
    return {
        "key": person.key, "name": person.name, "owner": person.owner,
        "last_contact": iso(last.at) if last else None,
        "last_signals": sorted(last.signals) if last else [],
        "orders": sum(1 for m in in_period if "order" in m.signals), "interactions": len(in_period),
    }


def _trend(in_period: dict, sent_in_period: dict, period: Period, retired: Sequence[Retired]) -> list[dict]:
    """Week by week from the period's start (the last week may be shorter): messages from
    customers, messages of ours (erased customers' and retired events' too), and how many customers wrote."""
    weeks = range(period.start, period.end, WEEK_S)
    inbound, outbound, writers = [0] * len(weeks), [0] * len(weeks), [set() for _ in weeks]
    for customer, messages in in_period.items():
        for message in messages:
            week = (message.at - period.start) // WEEK_S
            inbound[week] += 1
            writers[week].add(customer)
    for sent in sent_in_period.values():
        for message in sent:
            outbound[(message.at - period.start) // WEEK_S] += 1
    for row in retired:
        (inbound if row.direction == "in" else outbound)[(row.day - period.start) // WEEK_S] += row.messages
    return [{"from": iso(start), "days": (min(start + WEEK_S, period.end) - start) // 86_400, "inbound": inbound[i],
             "outbound": outbound[i], "customers_writing": len(writers[i])} for i, start in enumerate(weeks)]


def _customer_rows(people: dict, inbound: dict, in_period: dict, sent_in_period: dict) -> list[dict]:
    rows = []
    for customer, person in sorted(people.items(), key=lambda item: item[1].key):
        messages, ours = in_period.get(customer, ()), sent_in_period.get(customer, ())
        step = _furthest_step(ours, messages) if ours else 0
        last = inbound[customer][-1] if customer in inbound else None
        rows.append({
            "key": person.key, "name": person.name, "country": person.country, "time_zone": person.timezone,
            "owner": person.owner, "business_number": person.number,
            "tier_at_start": person.tier_at_start, "tier_at_end": person.tier_at_end,
            "interactions": len(messages), "our_messages": len(ours),
            "funnel_step": FUNNEL_STEPS[step - 1] if step else "not reached",
            "orders": sum(1 for m in messages if "order" in m.signals),
            "last_contact": iso(last.at) if last else None, "last_signals": " ".join(sorted(last.signals)) if last else "",
        })
    return rows


def compare(current: dict, previous: dict) -> dict:
    """The headline figures against the previous period of equal length (shares in points)."""

    def points(now: float | None, then: float | None) -> float | None:
        return round((now - then) * 100, 1) if now is not None and then is not None else None

    def hot(sections: dict) -> float | None:
        return sections["segmentation"]["tiers"]["hot"]["share"]

    return {
        "customers": {"now": current["source"]["customers"], "before": previous["source"]["customers"],
                      "change": current["source"]["customers"] - previous["source"]["customers"]},
        "reply_rate_points": points(current["reply_rate"]["rate"], previous["reply_rate"]["rate"]),
        "hot_share_points": points(hot(current), hot(previous)),
        "conversion_points": points(current["funnel"]["reached_to_ordered"], previous["funnel"]["reached_to_ordered"]),
    }


def summary(sections: dict, comparison: dict | None) -> list[str]:
    """The executive summary: a few sentences with the headline figures and their change."""
    segmentation, reply = sections["segmentation"], sections["reply_rate"]
    hot = segmentation["tiers"]["hot"]
    sentences = [
        f"{sections['source']['customers']:,} customers active in the period, {reply['messaged']:,} of them messaged by us.",
        f"Hot {percent(hot['share'])} of customers with a tier{_where_hot(segmentation['by_country'])}"
        f"; {percent(segmentation['silent_over_60_days']['share'])} silent for over 60 days.",
        f"Reply rate {percent(reply['rate'])}" + _change(comparison, "reply_rate_points")
        + f"; conversion from reached to ordered {percent(sections['funnel']['reached_to_ordered'])}" + _change(comparison, "conversion_points") + ".",
    ]
    if comparison is not None:
        change = comparison["customers"]["change"]
        sentences.append("As many active customers as in the previous period." if change == 0 else
                         f"{abs(change):,} {'more' if change > 0 else 'fewer'} active customer{'' if abs(change) == 1 else 's'}"
                         " than in the previous period.")
    return sentences


def _where_hot(by_country: dict) -> str:
    """Where the hot customers are: every country tied for the most of them, none when all tie."""
    hot = {country: row["hot"] for country, row in by_country.items() if row["hot"]}
    most = leaders(hot)
    if not hot:
        return ""
    if len(hot) == 1:
        return f", all in {most[0]}"
    if not most:
        return f", no country stands out ({next(iter(hot.values())):,} in each of {len(hot)})"
    return f", the most in {listed(most)}" + (f" ({hot[most[0]]:,} each)" if len(most) > 1 else "")


def _change(comparison: dict | None, key: str) -> str:
    if comparison is None or comparison[key] is None:
        return ""
    points = comparison[key]
    if abs(points) < 1:
        return " (flat)"
    return f" ({'up' if points > 0 else 'down'} {abs(points):.0f} points)"
