"""The activity report's figures, from plain values (no I/O): people, their messages and ours.

Every figure is a count of stored events over a half-open period [start, end), so the same
events always give the same report. A share whose base is zero is None (shown as "n/a").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from scoring.events import STATUS_RANK, UNREACHABLE_ERROR, Status, iso
from scoring.tiers import Tier

DELIVERED = STATUS_RANK[Status.DELIVERED]
READ = STATUS_RANK[Status.READ]
TIERS = [Tier.HOT.value, Tier.WARM.value, Tier.COLD.value, Tier.DEAD.value, Tier.UNENGAGED.value]
EXPECTED_SHARES = {"hot": (0.10, 0.15), "warm": (0.20, 0.25), "cold": (0.25, 0.30), "dead": (0.30, 0.40)}
"""The share of the base practitioners expect in each tier (the four tiers, unengaged apart)."""
TIER_RULES = {
    "hot": "interacted within {hot_days} days, {hot_min_interactions} interactions or more",
    "warm": "interacted within {warm_days} days (and not hot)",
    "cold": "last interaction {warm_days} to {cold_days} days ago",
    "dead": "no interaction for over {cold_days} days, or unreachable",
    "unengaged": "we reached them; they never answered",
}
ACTIONS = {
    "hot": ("Answer the same day and move to close", "daily"),
    "warm": ("Share a case or ask what holds them back", "weekly"),
    "cold": ("Send value (news, greetings), no hard promotion", "monthly"),
    "dead": ("Archive unless there is a big launch", "archived"),
}
CONTENT_TYPES = {
    "questions": {"question"},
    "commerce": {"price_inquiry", "spec_question", "sample_request", "order_intent", "product_inquiry", "order"},
    "rapport": {"rapport", "voice", "image", "sticker", "reaction"},
}
"""Content interaction types by signal; a message with none of these is passive text."""
FOLLOW_UP_TOUCHES = (1, 2, 3)
HOT_ANSWER_S = 5 * 60
ACTION_LIST_CAP = 50
SILENT_S = 60 * 86_400
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


@dataclass(frozen=True, slots=True)
class Message:
    """One message (or reaction, order...) from a customer."""

    customer: int
    at: int
    signals: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Sent:
    """One message of ours, as far as its statuses took it."""

    customer: int
    at: int
    rank: int = 1  # 1 sent, 2 delivered, 3 read, 4 played
    failed: bool = False
    error_code: int | None = None
    campaign: str | None = None


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


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def compute(activity: Activity, period: Period, tier_thresholds: dict) -> dict:
    """Every section but the summary and the comparison, keyed as the JSON form keeps them."""
    people = {person.id: person for person in activity.people}
    inbound = _by_customer(m for m in activity.messages if m.customer in people)
    outbound = _by_customer(s for s in activity.sent if s.customer in people)
    in_period = {c: [m for m in ms if m.at in period] for c, ms in inbound.items()}
    in_period = {c: ms for c, ms in in_period.items() if ms}
    sent_in_period = {c: [s for s in ss if s.at in period] for c, ss in outbound.items()}
    sent_in_period = {c: ss for c, ss in sent_in_period.items() if ss}
    active = set(in_period) | set(sent_in_period)
    return {
        "source": _source(activity, period, in_period, sent_in_period, active),
        "segmentation": _segmentation(activity.people, tier_thresholds, inbound, period),
        "reply_rate": _reply_rate(people, inbound, outbound, period, activity.readers),
        "frequency": _frequency(people, in_period, period),
        "content": _content(in_period),
        "funnel": _funnel(people, in_period, sent_in_period),
        "reactivation": _reactivation(people, inbound, outbound, period),
        "local_time": _local_time(people, in_period),
        "reply_speed": _reply_speed(people, inbound, outbound, period),
        "action_plan": _action_plan(people, inbound, in_period, period),
    }


def _by_customer(items: Iterable) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for item in items:
        grouped[item.customer].append(item)
    for values in grouped.values():
        values.sort(key=lambda item: item.at)
    return grouped


def _source(activity: Activity, period: Period, in_period: dict, sent_in_period: dict, active: set) -> dict:
    return {
        "period": {"from": iso(period.start), "to": iso(period.end)},
        "numbers": sorted({p.number for p in activity.people if p.number and p.id in active}),
        "customers": len(active),
        "events": {"inbound": sum(map(len, in_period.values())), "outbound": sum(map(len, sent_in_period.values()))},
        "excluded": dict(sorted(activity.excluded.items())),
    }


def _segmentation(people: Sequence[Person], thresholds: dict, inbound: dict, period: Period) -> dict:
    tiered = [p for p in people if p.tier_at_end]
    silent = sum(1 for p in tiered if _last_before(inbound.get(p.id, ()), period.end) < period.end - SILENT_S)
    counts = Counter(p.tier_at_end for p in tiered)
    four = sum(counts[t] for t in EXPECTED_SHARES)
    tiers = {}
    for tier in TIERS:
        base = four if tier in EXPECTED_SHARES else len(tiered)
        entry = {"rule": TIER_RULES[tier].format(**thresholds), "count": counts[tier], "share": share(counts[tier], base)}
        if tier in EXPECTED_SHARES:
            low, high = EXPECTED_SHARES[tier]
            entry["expected"] = [low, high]
            entry["outside_expected"] = entry["share"] is not None and not low <= entry["share"] <= high
        tiers[tier] = entry
    return {
        "customers": len(tiered),
        "tiers": tiers,
        "silent_over_60_days": {"count": silent, "share": share(silent, len(tiered))},
        "by_country": _tier_breakdown(tiered, lambda p: p.country or "unknown"),
        "by_owner": _tier_breakdown(tiered, lambda p: p.owner or "none"),
    }


def _last_before(messages, end: int) -> int:
    """The instant of their last message before `end`; -1 when none (silent for ever)."""
    return max((m.at for m in messages if m.at < end), default=-1)


def _tier_breakdown(people: Sequence[Person], key) -> dict:
    table: dict[str, Counter] = defaultdict(Counter)
    for person in people:
        table[key(person)][person.tier_at_end] += 1
    return {name: {tier: counts[tier] for tier in TIERS} | {"total": sum(counts.values())}
            for name, counts in sorted(table.items(), key=lambda item: (-sum(item[1].values()), item[0]))}


def _reply_rate(people: dict, inbound: dict, outbound: dict, period: Period, readers: frozenset[int]) -> dict:
    messaged = {c for c, ss in outbound.items() if any(s.at in period for s in ss)}
    replied = {c for c in messaged if _replied_after(inbound.get(c, ()), _first_in(outbound[c], period), period.end)}
    per_tier = {}
    for tier in TIERS:
        group = {c for c in messaged if people[c].tier_at_end == tier}
        per_tier[tier] = {"messaged": len(group), "replied": len(group & replied), "rate": share(len(group & replied), len(group))}
    sent = [s for c in messaged for s in outbound[c] if s.at in period]
    delivered = [s for s in sent if s.rank >= DELIVERED]
    readable = [s for s in delivered if s.customer in readers]
    return {
        "messaged": len(messaged), "replied": len(replied), "rate": share(len(replied), len(messaged)),
        "by_tier": per_tier,
        "touches": _touches(inbound, outbound, period),
        "messages": {
            "sent": len(sent), "delivered": len(delivered), "delivered_rate": share(len(delivered), len(sent)),
            "read": sum(1 for s in readable if s.rank >= READ), "read_rate": share(sum(1 for s in readable if s.rank >= READ), len(readable)),
            "read_rate_base": len(readable),
            "customers_without_read_receipts": len({s.customer for s in delivered} - readers),
        },
    }


def _first_in(sent: list[Sent], period: Period) -> int:
    return next(s.at for s in sent if s.at in period)


def _replied_after(messages, after: int, before: int) -> bool:
    return any(after < m.at < before for m in messages)


def _touches(inbound: dict, outbound: dict, period: Period) -> dict:
    """Reply rate after the 1st, 2nd, 3rd message of ours in a row (a reply starts the count
    again): of the touches made in the period, how many got a reply before the next touch."""
    made, answered = Counter(), Counter()
    for customer, sent in outbound.items():
        timeline = sorted([(m.at, 0) for m in inbound.get(customer, ())] + [(s.at, 1) for s in sent])
        touch, waiting = 0, None
        for at, ours in timeline:
            if ours:
                touch += 1
                waiting = touch if at in period and touch in FOLLOW_UP_TOUCHES else None
                if waiting:
                    made[waiting] += 1
            else:
                if waiting and at < period.end:
                    answered[waiting] += 1
                touch, waiting = 0, None
    return {str(n): {"touches": made[n], "replied": answered[n], "rate": share(answered[n], made[n])} for n in FOLLOW_UP_TOUCHES}


def _frequency(people: dict, in_period: dict, period: Period) -> dict:
    """high: 3 or more interactions a week over the period; medium: 1 to 3; low: under 1 (but some)."""
    weeks = (period.end - period.start) / (7 * 86_400)
    bands: dict[str, Counter] = {"high": Counter(), "medium": Counter(), "low": Counter()}
    for customer, messages in in_period.items():
        per_week = len(messages) / weeks
        band = "high" if per_week >= 3 else "medium" if per_week >= 1 else "low"
        bands[band][people[customer].tier_at_end or "none"] += 1
    total = sum(sum(c.values()) for c in bands.values())
    return {band: {"count": sum(c.values()), "share": share(sum(c.values()), total), "by_tier": dict(sorted(c.items()))}
            for band, c in bands.items()}


def _content(in_period: dict) -> dict:
    counts, customers = Counter(), defaultdict(set)
    for customer, messages in in_period.items():
        for message in messages:
            kinds = [kind for kind, signals in CONTENT_TYPES.items() if message.signals & signals] or ["passive_text"]
            for kind in kinds:
                counts[kind] += 1
                customers[kind].add(customer)
    total = sum(len(ms) for ms in in_period.values())
    return {kind: {"messages": counts[kind], "share": share(counts[kind], total), "customers": len(customers[kind])}
            for kind in ("passive_text", "questions", "commerce", "rapport")}


def _funnel(people: dict, in_period: dict, sent_in_period: dict) -> dict:
    def steps(group: set[int]) -> dict:
        reached = {c for c in group if c in sent_in_period and any(s.rank >= DELIVERED for s in sent_in_period[c])
                   and not any(s.error_code == UNREACHABLE_ERROR for s in sent_in_period[c])}
        replied = {c for c in reached if any(m.at > sent_in_period[c][0].at for m in in_period.get(c, ()))}
        inquired = {c for c in replied if any(m.signals & CONTENT_TYPES["commerce"] for m in in_period[c])}
        ordered = {c for c in replied if any("order" in m.signals for m in in_period[c])}
        counts = [("reached", len(reached)), ("replied", len(replied)), ("inquired", len(inquired)), ("ordered", len(ordered))]
        result = {name: {"count": count, "conversion": share(count, counts[i - 1][1]) if i else None}
                  for i, (name, count) in enumerate(counts)}
        losses = [(counts[i - 1][1] - count, name) for i, (name, count) in enumerate(counts) if i and counts[i - 1][1]]
        result["biggest_loss"] = max(losses)[1] if losses and max(losses)[0] > 0 else None
        return result

    everyone = set(people)
    return {
        **steps(everyone),
        "by_number": {n: steps({c for c in everyone if people[c].number == n})
                      for n in sorted({p.number for p in people.values() if p.number})},
        "by_owner": {o: steps({c for c in everyone if people[c].owner == o})
                     for o in sorted({p.owner for p in people.values() if p.owner})},
    }


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
    first part of their time zone) the three hours they write most."""
    heatmap = [[0] * 24 for _ in WEEKDAYS]
    by_region: dict[str, Counter] = defaultdict(Counter)
    unknown = 0
    for customer, messages in in_period.items():
        zone = people[customer].timezone
        if not zone:
            unknown += len(messages)
            continue
        tz = ZoneInfo(zone)
        for message in messages:
            local = datetime.fromtimestamp(message.at, tz)
            heatmap[local.weekday()][local.hour] += 1
            by_region[zone.split("/")[0]][local.hour] += 1
    return {
        "weekdays": WEEKDAYS, "heatmap": heatmap, "without_time_zone": unknown,
        "best_hours": {region: [hour for hour, _ in sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
                       for region, hours in sorted(by_region.items())},
    }


def _reply_speed(people: dict, inbound: dict, outbound: dict, period: Period) -> dict:
    """From a customer's first message that waits on us to our next message, for waits that
    began in the period."""
    waits: dict[int, list[int]] = defaultdict(list)
    for customer, messages in inbound.items():
        timeline = sorted([(m.at, 0) for m in messages] + [(s.at, 1) for s in outbound.get(customer, ())])
        waiting_since = None
        for at, ours in timeline:
            if not ours and waiting_since is None:
                waiting_since = at
            elif ours and waiting_since is not None:
                if waiting_since in period:
                    waits[customer].append(at - waiting_since)
                waiting_since = None

    def figures(group: Iterable[int]) -> dict:
        values = sorted(w for c in group for w in waits.get(c, ()))
        return {"answers": len(values), "median_s": median(values) if values else None, "p90_s": _p90(values)}

    hot = [c for c in waits if people[c].tier_at_end == "hot"]
    hot_waits = [w for c in hot for w in waits[c]]
    return {
        **figures(waits),
        "by_tier": {tier: figures(c for c in waits if people[c].tier_at_end == tier) for tier in TIERS},
        "by_owner": {o: figures(c for c in waits if people[c].owner == o)
                     for o in sorted({people[c].owner for c in waits if people[c].owner})},
        "hot_within_5_min": share(sum(1 for w in hot_waits if w <= HOT_ANSWER_S), len(hot_waits)),
    }


def _p90(values: list[int]) -> int | None:
    """The nearest-rank 90th percentile: the smallest value at least 90% of them do not exceed."""
    if not values:
        return None
    return values[max(0, -(-9 * len(values) // 10) - 1)]


def _action_plan(people: dict, inbound: dict, in_period: dict, period: Period) -> dict:
    plan = {}
    for tier, (action, cadence) in ACTIONS.items():
        group = [p for p in people.values() if p.tier_at_end == tier]
        rows = []
        for person in group:
            before_end = [m for m in inbound.get(person.id, ()) if m.at < period.end]
            last = before_end[-1] if before_end else None
            orders = sum(1 for m in in_period.get(person.id, ()) if "order" in m.signals)
            rows.append((-orders, -len(in_period.get(person.id, ())), -(last.at if last else 0), person.key, {
                "key": person.key, "name": person.name, "owner": person.owner,
                "last_contact": iso(last.at) if last else None,
                "last_signals": sorted(last.signals) if last else [],
                "orders": orders, "interactions": len(in_period.get(person.id, ())),
            }))
        rows.sort(key=lambda row: row[:4])  # orders, then interactions in the period, then the latest contact
        plan[tier] = {"action": action, "cadence": cadence, "customers": len(group),
                      "list": [row[4] for row in rows[:ACTION_LIST_CAP]]}
    return plan



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
        "conversion_points": points(_conversion(current), _conversion(previous)),
    }


def _conversion(sections: dict) -> float | None:
    """Reached to ordered."""
    funnel = sections["funnel"]
    return share(funnel["ordered"]["count"], funnel["reached"]["count"])


def summary(sections: dict, comparison: dict | None) -> list[str]:
    """The executive summary: a few sentences with the headline figures and their change."""
    segmentation, reply = sections["segmentation"], sections["reply_rate"]
    hot = segmentation["tiers"]["hot"]
    hot_countries = sorted(((row["hot"], country) for country, row in segmentation["by_country"].items() if row["hot"]),
                           reverse=True)
    sentences = [
        f"{sections['source']['customers']:,} customers active in the period, {reply['messaged']:,} of them messaged by us.",
        f"Hot {_percent(hot['share'])}" + (f", mostly in {hot_countries[0][1]}" if hot_countries else "")
        + f"; {_percent(segmentation['silent_over_60_days']['share'])} silent for over 60 days.",
        f"Reply rate {_percent(reply['rate'])}" + _change(comparison, "reply_rate_points")
        + f"; conversion from reached to ordered {_percent(_conversion(sections))}" + _change(comparison, "conversion_points") + ".",
    ]
    if comparison is not None:
        change = comparison["customers"]["change"]
        sentences.append(f"{abs(change):,} {'more' if change >= 0 else 'fewer'} active customer{'' if abs(change) == 1 else 's'}"
                         " than in the previous period.")
    return sentences


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _change(comparison: dict | None, key: str) -> str:
    if comparison is None or comparison[key] is None:
        return ""
    points = comparison[key]
    if abs(points) < 1:
        return " (flat)"
    return f" ({'up' if points > 0 else 'down'} {abs(points):.0f} points)"
