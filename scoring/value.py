"""BG/NBD (Fader, Hardie & Lee, 2005): how likely a customer is still active, and how much
activity to expect from them.

Each customer is summarised as (x, t_x, T): repeat transactions, the age of their last one and
their own age, all measured from their first transaction. While alive, a customer transacts as a
Poisson process whose rate is Gamma(r, α) across the base; after any transaction they drop out
with a probability that is Beta(a, b) across the base. The four parameters are fitted by maximum
likelihood on the whole base, so the model learns from our own history.

Written here rather than taken from `lifetimes` (archived, unmaintained) or `pymc-marketing`
(pulls in a whole probabilistic programming stack for four parameters); it is checked against
the published CDNOW figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

MIN_CUSTOMERS = 20  # fewer than this, or fewer than MIN_REPEATERS who came back, and the fit says
MIN_REPEATERS = 5  # nothing a customer's own history does not: no model, no figures
FIT_SAMPLE = 10_000  # four parameters are well determined by this many customers; a fixed-seed
# sample keeps the fit to about a second however large the base grows
LOG_BOUND = 9.0  # parameters stay within e^±9: beyond, the likelihood is flat and the fit would drift


@dataclass(frozen=True, slots=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int

    def p_alive(self, x, t_x, T):
        """P(still active | x, t_x, T); 1 for a customer who never came back (the model's own
        assumption: nobody drops out before their first repeat)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        ratio = _dropout_odds(self, x, t_x, T)
        return 1.0 / (1.0 + ratio)

    def expected(self, t, x, t_x, T):
        """E[transactions in the next t | x, t_x, T] (equation 10 of the paper)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        head = (a + b + x - 1) / (a - 1)
        z = t / (alpha + T + t)
        tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        return head * tail / (1.0 + _dropout_odds(self, x, t_x, T))


def _dropout_odds(model: BgNbd, x, t_x, T):
    """δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x), computed in logs to stay finite."""
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    log_odds = (
        np.log(model.a)
        - np.log(model.b + safe_x - 1)
        + (model.r + safe_x) * (np.log(model.alpha + T) - np.log(model.alpha + t_x))
    )
    return np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)


def log_likelihood(params, x, t_x, T) -> float:
    """Σ log L over customers (equation 6), for parameters (r, α, a, b)."""
    r, alpha, a, b = params
    log_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    log_a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    log_a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    log_a4 = np.log(a) - np.log(b + safe_x - 1) - (r + x) * np.log(alpha + t_x)
    log_sum = np.where(repeat, np.logaddexp(log_a3, log_a4), log_a3)
    return float(np.sum(log_a1 + log_a2 + log_sum))


def fit(x, t_x, T) -> BgNbd | None:
    """Maximum-likelihood parameters, or None when the base is too small or did not converge."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    keep = T > 0
    x, t_x, T = x[keep], t_x[keep], T[keep]
    if len(x) < MIN_CUSTOMERS or int(np.sum(x > 0)) < MIN_REPEATERS:
        return None
    customers = len(x)
    if customers > FIT_SAMPLE:
        chosen = np.random.default_rng(0).choice(customers, FIT_SAMPLE, replace=False)
        x, t_x, T = x[chosen], t_x[chosen], T[chosen]

    def negative(log_params):
        return -log_likelihood(np.exp(log_params), x, t_x, T)

    result = minimize(negative, np.zeros(4), method="L-BFGS-B", bounds=[(-LOG_BOUND, LOG_BOUND)] * 4,
                      options={"ftol": 1e-12, "gtol": 1e-7, "maxiter": 500})
    if not np.isfinite(result.fun):
        return None
    r, alpha, a, b = np.exp(result.x)
    return BgNbd(float(r), float(alpha), float(a), float(b), float(-result.fun), customers)
