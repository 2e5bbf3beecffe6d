"""The BG/NBD model against the figures Fader, Hardie & Lee (2005) publish for the CDNOW sample:
2,357 customers observed for 39 weeks, summarised as (x, t_x, T) in weeks
(tests/scoring/data/cdnow_customers_summary.csv, from the authors' CDNOW sample)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from scoring.value import BgNbd, fit, log_likelihood

CDNOW = Path(__file__).parent / "data" / "cdnow_customers_summary.csv"
PUBLISHED = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=-9582.4, customers=2357)


@pytest.fixture(scope="module")
def cdnow():
    with CDNOW.open() as handle:
        rows = list(csv.DictReader(handle))
    return tuple(np.array([float(row[name]) for row in rows]) for name in ("frequency", "recency", "T"))


def test_the_fit_finds_the_published_parameters_and_likelihood(cdnow):
    model = fit(*cdnow)
    assert model.customers == 2357
    for name in ("r", "alpha", "a", "b"):
        assert getattr(model, name) == pytest.approx(getattr(PUBLISHED, name), abs=0.0015), name
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert log_likelihood((PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b), *cdnow) == pytest.approx(-9582.4, abs=0.05)


def test_the_conditional_expectation_of_the_papers_worked_example():
    """A customer with 2 repeat purchases, the last at week 30.43, observed for 38.86 weeks, is
    expected to make 1.226 purchases in the next 39 weeks."""
    assert float(PUBLISHED.expected(39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=0.001)


def test_p_alive_falls_with_the_silence_after_the_last_purchase():
    recent, silent = PUBLISHED.p_alive(2, 38.0, 38.86), PUBLISHED.p_alive(2, 5.0, 38.86)
    assert 0 < silent < recent < 1
    assert PUBLISHED.p_alive(0, 0, 38.86) == 1.0  # no repeat yet: the model's customers cannot have left


def test_too_small_a_base_gives_no_model():
    assert fit([1, 2, 0], [3.0, 4.0, 0.0], [10.0, 10.0, 10.0]) is None
