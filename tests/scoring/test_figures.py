"""The customer-value figures against hand calculations on small cases."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scoring.customer import CustomerState, fold
from scoring.events import Event, EventKind
from scoring.figures import (
    FigureRules,
    RfmBase,
    churn_risk,
    fit_value_model,
    frequency_band,
    intent,
    lifecycle,
    rfm,
    value,
)
from scoring.tiers import DAY
from scoring.value import BgNbd

NOW = 1_795_003_200  # a noon, UTC
RULES = FigureRules()
_serial = iter(range(10**9))


def said(days_ago: float, *signals: str, type_: str = "text", order: dict | None = None) -> Event:
    n = next(_serial)
    return Event(
        key=f"m:{n}", kind=EventKind.MESSAGE, type=type_, at=int(NOW - days_ago * DAY), message_id=f"in{n}",
        signals=signals,
        order_value=tuple((currency, Decimal(amount)) for currency, amount in (order or {}).items()),
    )


def ordered(days_ago: float, amount: str = "100") -> Event:
    return said(days_ago, "order", type_="order", order={"USD": amount})


def state_of(*events: Event) -> CustomerState:
    return fold(events)[0]


def sent(days_ago: float, n: int, failed_with: int | None = None) -> list[Event]:
    at = int(NOW - days_ago * DAY)
    events = [Event(key=f"s:out{n}:sent", kind=EventKind.STATUS, type="sent", at=at, message_id=f"out{n}")]
    if failed_with:
        events.append(Event(key=f"s:out{n}:failed", kind=EventKind.STATUS, type="failed", at=at + 1,
                            message_id=f"out{n}", error_codes=(failed_with,)))
    return events


@pytest.mark.parametrize("interactions, band", [(12, "high"), (11, "medium"), (4, "medium"), (3, "low"), (0, "low")])
def test_frequency_band_over_the_28_day_window(interactions, band):
    state = state_of(said(40), *(said(1 + n) for n in range(interactions)))  # the one 40 days ago is outside
    assert frequency_band(state, NOW, RULES) == band  # 12 / 4 weeks = 3 a week; 4 / 4 = 1


def test_intent_weighs_commerce_signals_and_halves_each_week():
    state = state_of(said(7, "price_inquiry"), said(0, "order_intent", "question"), said(31, "sample_request"))
    assert intent(state, NOW) == 60  # 30 × ½ + 35 + 10; the sample request is older than 30 days
    assert intent(state_of(said(1, "negative"), said(1, "question")), NOW) == 0
    assert intent(state_of(*(said(0, "order_intent", "price_inquiry") for _ in range(3))), NOW) == 100


def test_churn_risk_adds_its_four_parts():
    events = [said(89.5 - 2 * n) for n in range(30)]  # 30 interactions over the 60 days before the last 30
    events += [said(20), said(10, "negative"), said(5)]  # 3 in the last 30: the baseline is 15
    events += sent(50, 1) + sent(40, 2) + sent(30, 3) + sent(25, 4, failed_with=131049)
    state = state_of(*events)
    # fall 1 − 3/15 = 0.8 → 3.2; no order → 1; one negative → 0.75; 1 failed of 4 → 0.375; 1 + 5.325 → 6
    assert churn_risk(state, NOW, unreachable=False) == 6
    assert churn_risk(state, NOW, unreachable=True) == 10
    assert churn_risk(state_of(said(3), ordered(3)), NOW, unreachable=False) == 1  # new, ordered: no risk


def steady(days: int) -> list[Event]:
    return [said(day) for day in range(1, days, 7)]


@pytest.mark.parametrize(
    "events, stage",
    [
        ([said(100), said(2)], "acquisition"),
        (steady(40) + [ordered(10)], "onboarding"),
        (steady(210) + [ordered(200), ordered(150), ordered(60), ordered(30)], "expansion"),
        (steady(210) + [ordered(200), ordered(100), ordered(20)], "retention"),
        (steady(210) + [ordered(200), ordered(100), ordered(20, "500")], "expansion"),  # more value
        ([said(day) for day in range(40, 210, 3)] + [ordered(200), ordered(100)], "churn_risk"),  # silent 40 days
    ],
)
def test_lifecycle_stages(events, stage):
    assert lifecycle(state_of(*events), NOW) == stage


def base_of(states):
    return RfmBase.of(states, NOW, RULES)


def test_rfm_quintiles_over_a_base_of_five():
    states = [state_of(*(said(k + 1) for _ in range(k + 1)), ordered(k + 1, str(10 * (k + 1)))) for k in range(5)]
    base = base_of(states)
    scores = [rfm(state, NOW, base, RULES) for state in states]
    assert [s["r"] for s in scores] == [5, 4, 3, 2, 1]  # the most recent is the best
    assert [s["f"] for s in scores] == [1, 2, 3, 4, 5]  # 2..6 interactions (orders count)
    assert [s["m"] for s in scores] == [2, 2, 3, 4, 5]  # ordered: 2 + ⌊4 · rank / 5⌋
    assert scores[4]["score"] == "155"


def test_rfm_ties_score_alike_and_no_order_scores_one():
    states = [state_of(said(3)) for _ in range(6)]
    assert {rfm(state, NOW, base_of(states), RULES)["score"] for state in states} == {"111"}


def test_rfm_with_too_few_customers_uses_the_fixed_bands():
    recent_buyer = state_of(*(said(2) for _ in range(6)), ordered(2))
    old_talker = state_of(said(75), said(80))
    base = base_of([recent_buyer, old_talker])
    assert rfm(recent_buyer, NOW, base, RULES) == {"r": 5, "f": 4, "m": 3, "score": "543"}
    assert rfm(old_talker, NOW, base, RULES) == {"r": 2, "f": 2, "m": 1, "score": "221"}
    assert rfm(CustomerState(), NOW, base, RULES) is None


def test_value_without_a_model_keeps_the_historic_figures():
    state = state_of(said(30), ordered(20, "99.90"), ordered(10, "0.10"))
    assert value(state, NOW, None) == {"historic": {"USD": Decimal("100.00")}, "expected_90d": None, "p_alive": None}


def test_value_with_a_model_uses_active_days_and_order_value_per_active_day():
    model = BgNbd(r=0.8, alpha=12.0, a=0.9, b=3.0, log_likelihood=0.0, customers=100)
    state = state_of(said(40), ordered(30, "60"), said(20))  # active on 3 days: x = 2, t_x = 20, T = 40
    figures = value(state, NOW, model)
    assert figures["p_alive"] == round(float(model.p_alive(2, 20, 40)), 4)
    expected_days = float(model.expected(90, 2, 20, 40))
    assert figures["expected_90d"] == {"USD": (Decimal("60") * Decimal(expected_days) / 3).quantize(Decimal("0.01"))}


def test_the_value_model_needs_a_base_that_came_back():
    assert fit_value_model([state_of(said(10)) for _ in range(50)], NOW) is None  # nobody came back
    regulars = [state_of(*(said(day) for day in range(k % 7 + 1, 120, 9 + k % 5))) for k in range(40)]
    model = fit_value_model(regulars + [state_of(said(100)) for _ in range(20)], NOW)
    assert model is not None and model.customers == 60
    assert model.p_alive(12, 110, 119) > model.p_alive(12, 40, 119)
