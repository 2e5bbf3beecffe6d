"""The customer-value figures of the field: RFM, lifecycle stage, churn risk, intent, frequency
band and value. Each is a function of a customer's folded state and an instant, plus, for RFM and
the value model, the whole base; the README gives every formula.

They are computed when asked for, from stored state, so they are always current without any
process rewriting them as time passes.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Mapping, Sequence

import numpy as np

from scoring.customer import CustomerState
from scoring.tiers import DAY
from scoring.value import BgNbd, fit

QUINTILE_MINIMUM = 5  # fewer values than this and quintiles mean nothing: fixed bands instead
INTENT_WEIGHTS = {
    "order_intent": 35, "price_inquiry": 30, "sample_request": 30, "spec_question": 25, "product_inquiry": 25,
    "order": 20, "question": 10, "ad_referral": 10, "interactive_reply": 5, "template_button": 5, "negative": -50,
}
INTENT_WINDOW_DAYS, INTENT_HALF_LIFE_DAYS = 30, 7
CHURN_RECENT_DAYS = 30
EXPECTED_VALUE_DAYS = 90


@dataclass(frozen=True, slots=True)
class FigureRules:
    """`[figures]` of wapulse.toml."""

    rfm_window_days: int = 90  # F counts interactions over this many days
    frequency_window_days: int = 28  # the frequency band's window

    @classmethod
    def from_config(cls, table: Mapping) -> FigureRules:
        unknown = set(table) - {"rfm_window_days", "frequency_window_days"}
        if unknown:
            raise ValueError(f"[figures] has unknown keys {sorted(unknown)}; known: rfm_window_days, frequency_window_days")
        values = {}
        for name in ("rfm_window_days", "frequency_window_days"):
            if name in table:
                value = table[name]
                if isinstance(value, bool) or not isinstance(value, int) or value < 7:
                    raise ValueError(f"[figures] {name} = {value!r} must be a whole number of days, at least 7")
                values[name] = value
        return cls(**values)


# ---- windows over the daily counts ------------------------------------------------------------


def interactions_between(state: CustomerState, start: int, end: int) -> int:
    """Interactions on the UTC days from the one holding `start` (exclusive) to the one holding
    `end` (inclusive): the day is the counters' finest grain."""
    first, last = _day(start), _day(end)
    return sum(count for day, count in state.days.items() if first < day <= last)


def _day(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


# ---- frequency band ---------------------------------------------------------------------------


def frequency_band(state: CustomerState, now: int, rules: FigureRules) -> str:
    """high: 3 or more interactions a week over the window; medium: 1 to 3; low: under 1."""
    per_week = interactions_between(state, now - rules.frequency_window_days * DAY, now) * 7 / rules.frequency_window_days
    if per_week >= 3:
        return "high"
    if per_week >= 1:
        return "medium"
    return "low"


# ---- churn risk and lifecycle -----------------------------------------------------------------


def activity_fall(state: CustomerState, now: int) -> float:
    """0..1: how far the last 30 days fall short of the customer's own 30-day rate before them.
    0 without a baseline (less than 30 days of history before the last 30 days)."""
    if state.first_inbound_at is None:
        return 0.0
    cutoff = now - CHURN_RECENT_DAYS * DAY
    baseline_days = (cutoff - state.first_inbound_at) / DAY
    if baseline_days < CHURN_RECENT_DAYS:
        return 0.0
    before = interactions_between(state, state.first_inbound_at - DAY, cutoff)
    baseline = before * CHURN_RECENT_DAYS / baseline_days
    if baseline <= 0:
        return 0.0
    recent = interactions_between(state, cutoff, now)
    return min(1.0, max(0.0, 1 - recent / baseline))


def churn_risk(state: CustomerState, now: int, unreachable: bool) -> int:
    """1..10 = 1 + round(4·fall + order recency (0..2) + negative signals (0..1.5) + failed
    deliveries (0..1.5)); 10 for an unreachable customer."""
    if unreachable:
        return 10
    points = 4 * activity_fall(state, now)
    if not state.order_log:
        points += 1
    else:
        days = (now - state.order_log[-1][0]) / DAY
        points += 0 if days < 30 else 1 if days < 90 else 1.5 if days < 180 else 2
    negatives = sum(1 for at, signals in state.signal_log if "negative" in signals and now - at < 90 * DAY)
    points += 0.75 * min(negatives, 2)
    if state.outbound:
        points += 1.5 * min(1.0, state.failed / state.outbound)
    return max(1, min(10, math.floor(1 + points + 0.5)))


def lifecycle(state: CustomerState, now: int) -> str:
    """The first stage that fits: acquisition (no order yet), churn_risk (activity fell by half
    or more against its baseline, or 90 days without interaction), onboarding (first order under
    90 days ago), expansion (more orders, or more value, in the last 90 days than in the 90
    before), retention (the rest: past onboarding and steady)."""
    if not state.order_log:
        return "acquisition"
    quiet = state.last_inbound_at is None or now - state.last_inbound_at >= 90 * DAY
    if quiet or activity_fall(state, now) >= 0.5:
        return "churn_risk"
    if now - state.order_log[0][0] < 90 * DAY:
        return "onboarding"
    recent = _orders_between(state, now - 90 * DAY, now)
    previous = _orders_between(state, now - 180 * DAY, now - 90 * DAY)
    if len(recent) > len(previous) or any(
        _total(recent, currency) > _total(previous, currency) for currency in state.order_value
    ):
        return "expansion"
    return "retention"


def _orders_between(state: CustomerState, start: int, end: int) -> list[dict]:
    return [values for at, values in state.order_log if start < at <= end]


def _total(orders: list[dict], currency: str) -> Decimal:
    return sum((Decimal(values.get(currency, "0")) for values in orders), Decimal(0))


# ---- intent -----------------------------------------------------------------------------------


def intent(state: CustomerState, now: int) -> int:
    """0..100: Σ weight of each signal of the last 30 days, halved for every 7 days of age."""
    score = 0.0
    for at, signals in state.signal_log:
        age_days = (now - at) / DAY
        if 0 <= age_days < INTENT_WINDOW_DAYS:
            decay = 0.5 ** (age_days / INTENT_HALF_LIFE_DAYS)
            score += decay * sum(INTENT_WEIGHTS.get(signal, 0) for signal in signals)
    return max(0, min(100, round(score)))


# ---- RFM --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RfmBase:
    """The sorted values of the scored base, against which each customer is ranked."""

    recency_days: list[float]
    frequency: list[int]
    monetary: dict[str, list[Decimal]]  # currency -> order values of the customers with orders in it

    @classmethod
    def of(cls, states: Sequence[CustomerState], now: int, rules: FigureRules) -> RfmBase:
        scored = [s for s in states if s.last_inbound_at is not None]
        monetary: dict[str, list[Decimal]] = {}
        for state in scored:
            for currency, amount in state.order_value.items():
                monetary.setdefault(currency, []).append(Decimal(amount))
        return cls(
            sorted(_recency_days(s, now) for s in scored),
            sorted(_frequency(s, now, rules) for s in scored),
            {currency: sorted(values) for currency, values in monetary.items()},
        )


def rfm_base_to_record(base: RfmBase) -> dict:
    return {"recency_days": base.recency_days, "frequency": base.frequency,
            "monetary": {currency: [str(amount) for amount in values] for currency, values in base.monetary.items()}}


def rfm_base_from_record(record: dict) -> RfmBase:
    return RfmBase(record["recency_days"], record["frequency"],
                   {currency: [Decimal(amount) for amount in values] for currency, values in record["monetary"].items()})


def _recency_days(state: CustomerState, now: int) -> float:
    return (now - state.last_inbound_at) / DAY


def _frequency(state: CustomerState, now: int, rules: FigureRules) -> int:
    return interactions_between(state, now - rules.rfm_window_days * DAY, now)


def rfm(state: CustomerState, now: int, base: RfmBase, rules: FigureRules) -> dict | None:
    """R, F, M from 1 to 5 and the cell "RFM" (e.g. "545"); None for a customer who never
    interacted. Quintiles over the base: a value scores 1 + ⌊5 · (share of the base strictly
    worse)⌋, so ties score alike. Under 5 customers in a dimension, fixed bands instead (README).
    M ranks a customer's order value within each currency they ordered in (2..5, the best
    currency counts); no order scores 1."""
    if state.last_inbound_at is None:
        return None
    recency = _recency_days(state, now)
    frequency = _frequency(state, now, rules)
    if len(base.recency_days) >= QUINTILE_MINIMUM:
        r = 1 + 5 * (len(base.recency_days) - bisect_right(base.recency_days, recency)) // len(base.recency_days)
        f = 1 + 5 * bisect_left(base.frequency, frequency) // len(base.frequency)
    else:
        r = _band(-recency, (-90, -60, -30, -7))
        f = _band(frequency, (1, 3, 6, 12))
    m = 1
    for currency, amount in state.order_value.items():
        values = base.monetary.get(currency, [])
        if len(values) >= QUINTILE_MINIMUM:
            m = max(m, 2 + 4 * bisect_left(values, Decimal(amount)) // len(values))
        else:
            m = max(m, 3)
    r, f = min(r, 5), min(f, 5)
    return {"r": r, "f": f, "m": m, "score": f"{r}{f}{m}"}


def _band(value: float, thresholds: tuple) -> int:
    """1 below the first threshold, +1 for each threshold reached."""
    return 1 + sum(1 for threshold in thresholds if value >= threshold)


# ---- value ------------------------------------------------------------------------------------


def activity_summary(state: CustomerState, now: int) -> tuple[float, float, float] | None:
    """(x, t_x, T) in days for the value model: repeat active days, the age of the last one and
    the customer's own age, from their first interaction."""
    if state.first_inbound_at is None or now <= state.first_inbound_at:
        return None
    return (
        float(max(0, state.active_days - 1)),
        (state.last_inbound_at - state.first_inbound_at) / DAY,
        (now - state.first_inbound_at) / DAY,
    )


def fit_value_model(states: Sequence[CustomerState], now: int) -> BgNbd | None:
    summaries = [s for s in (activity_summary(state, now) for state in states) if s is not None]
    if not summaries:
        return None
    x, t_x, T = np.array(summaries).T
    return fit(x, t_x, T)


def value(state: CustomerState, now: int, model: BgNbd | None) -> dict:
    """Historic order value per currency; with a fitted model, the probability the customer is
    still active and the value expected over the next 90 days: expected active days × their
    order value per active day so far."""
    historic = {currency: Decimal(amount) for currency, amount in sorted(state.order_value.items())}
    summary = activity_summary(state, now)
    if model is None or summary is None:
        return {"historic": historic, "expected_90d": None, "p_alive": None}
    x, t_x, T = summary
    p_alive = float(model.p_alive(x, t_x, T))
    expected_days = float(model.expected(EXPECTED_VALUE_DAYS, x, t_x, T))
    expected = {
        currency: (amount * Decimal(expected_days) / state.active_days).quantize(Decimal("0.01"))
        for currency, amount in historic.items()
    }
    return {"historic": historic, "expected_90d": expected, "p_alive": round(p_alive, 4)}



def sort_keys(state: CustomerState, now: int, unreachable: bool, model: BgNbd | None) -> dict:
    """What the desk sorts customers by, kept on their row: churn risk, intent, and the orders to
    expect in the next 90 days (value without currencies: expected active days times their orders
    per active day so far)."""
    summary = activity_summary(state, now)
    expected = None
    if model is not None and summary is not None and state.active_days:
        active = float(model.expected(EXPECTED_VALUE_DAYS, *summary))
        expected = round(active * state.orders / state.active_days, 3)
    return {"churn_risk": churn_risk(state, now, unreachable), "intent": intent(state, now),
            "expected_orders": expected, "figures_at": now}
