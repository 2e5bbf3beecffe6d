"""Whether reminders earn their noise, from plain values (no I/O).

For every customer who went cold or started cooling in a period: was the crossing acted on (its
rep marked the reminder Done, or we wrote to the customer, within ACT_WITHIN_S), and did the
customer come back (a message of theirs within COME_BACK_WITHIN_S)? The come-back rate of the
crossings acted on is set against that of the crossings nobody acted on: the reminder held back
(`[reminders] hold_back_percent`, or owed to no one), snoozed past the come-back window, or never
acted on. Crossings acted on only later, and those too recent for the window to have run out,
are counted apart and compared with neither.

A rep acts on the customers they believe in, so "acted on" against "not acted on" is not like
for like. Held-back crossings are chosen by a hash of the crossing, not by anyone's judgement:
every crossing whose reminder went out against those held back is the controlled comparison,
given beside the first whenever some were held back.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from typing import Iterable

from scoring.reminders import Rule

DAY_S = 86_400
ACT_WITHIN_S = 3 * DAY_S
COME_BACK_WITHIN_S = 30 * DAY_S
MEASURED_RULES = (Rule.WENT_COLD.value, Rule.COOLING.value)
Z_95 = 1.959963984540054
METHOD = ("Fisher's exact test (two-sided) on acted on against not acted on, came back or not; the 95% interval "
          "of the difference in come-back rates by Newcombe's method (from Wilson score intervals)")


@dataclass(frozen=True, slots=True)
class Crossing:
    """One went_cold or cooling crossing, with what followed it."""

    customer: int
    rule: str
    at: int
    rep: str | None  # the reminder's rep, else the customer's owner
    reminded: bool  # a reminder was owed to a rep and went out
    held_back: bool  # the reminder was held back on purpose
    done_at: int | None = None  # when a person first marked the reminder Done
    snoozed_until: int | None = None  # the end of the last snooze
    first_ours_after: int | None = None  # our first message to them after the crossing
    first_theirs_after: int | None = None  # their first message after the crossing


ACTED, NOT_ACTED, LATE, TOO_RECENT = "acted", "not_acted", "acted_late", "too_recent"
HELD_BACK, NO_REMINDER, SNOOZED_PAST, NEVER_ACTED = "held_back", "no_reminder", "snoozed_past_window", "never_acted"


def classify(crossing: Crossing, now: int) -> tuple[str, str | None]:
    """(group, why) for one crossing: acted on, not acted on (held back, no reminder, snoozed past
    the window, never acted on), acted on late, or too recent to tell."""
    if crossing.at + COME_BACK_WITHIN_S > now:
        return TOO_RECENT, None
    if crossing.held_back:
        return NOT_ACTED, HELD_BACK
    if not crossing.reminded:
        return NOT_ACTED, NO_REMINDER
    acted_at = min((at for at in (crossing.done_at, crossing.first_ours_after) if at is not None), default=None)
    if acted_at is not None and acted_at <= crossing.at + ACT_WITHIN_S:
        return ACTED, None
    if crossing.snoozed_until is not None and crossing.snoozed_until > crossing.at + COME_BACK_WITHIN_S:
        return NOT_ACTED, SNOOZED_PAST
    if acted_at is None or acted_at > crossing.at + COME_BACK_WITHIN_S:
        return NOT_ACTED, NEVER_ACTED
    return LATE, None


def came_back(crossing: Crossing) -> bool:
    return crossing.first_theirs_after is not None and crossing.first_theirs_after <= crossing.at + COME_BACK_WITHIN_S


def effectiveness(crossings: Iterable[Crossing], now: int, per_rep: bool = True) -> dict:
    """The figures for these crossings, then the same per rule (and per rep)."""
    listed = list(crossings)
    figures = {
        **_figures(listed, now),
        "by_rule": {rule: _figures([c for c in listed if c.rule == rule], now) for rule in MEASURED_RULES},
        "act_within_days": ACT_WITHIN_S // DAY_S, "come_back_within_days": COME_BACK_WITHIN_S // DAY_S,
        "method": METHOD,
    }
    if per_rep:
        figures["by_rep"] = {rep: _figures([c for c in listed if (c.rep or "") == rep], now)
                             for rep in sorted({c.rep or "" for c in listed})}
    return figures


def _figures(crossings: list[Crossing], now: int) -> dict:
    groups: dict[str, list[Crossing]] = {ACTED: [], NOT_ACTED: [], LATE: [], TOO_RECENT: []}
    why: dict[str, int] = {HELD_BACK: 0, NO_REMINDER: 0, SNOOZED_PAST: 0, NEVER_ACTED: 0}
    for crossing in crossings:
        group, reason = classify(crossing, now)
        groups[group].append(crossing)
        if reason is not None:
            why[reason] += 1
    acted, not_acted = _rate(groups[ACTED]), _rate(groups[NOT_ACTED])
    return {
        "crossings": len(crossings),
        ACTED: acted,
        NOT_ACTED: {**not_acted, **why},
        LATE: len(groups[LATE]),
        TOO_RECENT: len(groups[TOO_RECENT]),
        **compare(acted["came_back"], acted["crossings"], not_acted["came_back"], not_acted["crossings"]),
        "reminded_against_held_back": _against_held_back([c for c in crossings if classify(c, now)[0] != TOO_RECENT]),
    }


def _against_held_back(settled: list[Crossing]) -> dict:
    """The controlled comparison: every crossing whose reminder went out, acted on or not,
    against those held back by the hash."""
    reminded = _rate([c for c in settled if c.reminded and not c.held_back])
    held = _rate([c for c in settled if c.held_back])
    return {"reminded": reminded, "held_back": held,
            **compare(reminded["came_back"], reminded["crossings"], held["came_back"], held["crossings"])}


def _rate(crossings: list[Crossing]) -> dict:
    back = sum(map(came_back, crossings))
    return {"crossings": len(crossings), "came_back": back, "rate": round(back / len(crossings), 4) if crossings else None}


def compare(back_a: int, n_a: int, back_b: int, n_b: int) -> dict:
    """The difference of two come-back rates (a − b), its 95% interval and Fisher's p; None where
    a group is empty."""
    if not n_a or not n_b:
        return {"difference": None, "interval_95": None, "p_value": None}
    p_a, p_b = back_a / n_a, back_b / n_b
    low_a, high_a = wilson(back_a, n_a)
    low_b, high_b = wilson(back_b, n_b)
    difference = p_a - p_b
    low = difference - sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = difference + sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    from scipy.stats import fisher_exact  # scipy takes a while to load: only when a figure is asked for

    _, p_value = fisher_exact([[back_a, n_a - back_a], [back_b, n_b - back_b]])
    return {"difference": round(difference, 4), "interval_95": [round(low, 4), round(high, 4)],
            "p_value": round(float(p_value), 4)}


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval for a proportion."""
    p, z2 = successes / n, Z_95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
