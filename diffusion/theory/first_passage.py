"""First-passage laws of single runs: when does one run leave the saddle?

At the worst saddle e_2 the escaping coordinate, in the ratio ``r = h_1/h_2`` that the ODE moves
exactly linearly, is the linear mode ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ} + η ξ_k`` with a
negative restoring rate ``a`` (the unstable OU mode before its time scaling) and noise ``Var ξ = s²``,
started at rest. A run escapes (``h_1²/‖h‖² ≥ δ²``) when ``r² ≥ δ²/(1 − δ²)``: its escape time is the
first passage of this linear Gaussian recursion across that level. The law is sampled exactly from
the recursion (:data:`PATHS` paths, a fixed seed; the mean is given with its 95% interval).

The law is wide: the run starts from noise, so ``x_k`` is about ``sqrt(V_k)`` times a standard normal
and the passage time inherits a ``log χ²_1`` spread; its mean lies about ``(γ + log 2)/(2 × growth
rate)`` beyond the time at which the *mean* of h_1² crosses δ², which is a different number (the
crossing of the mean curve, the diffusion limit's escape time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amsgd.core.estimates import Estimate, json_float, t_interval
from amsgd.diffusion.theory.linear_recursion import Delay, check_parameters, delay_law

#: Paths sampled, and their seed (reproducible numbers).
PATHS = 20_000
SEED = 20180605
#: The most iterations followed.
MAX_ITERATIONS = 2_000_000


@dataclass(frozen=True, eq=False)
class FirstPassageLaw:
    """The first-passage iterations of the sampled paths (NaN: not within the iterations followed)."""

    samples: np.ndarray

    @property
    def mean(self) -> Estimate:
        return t_interval(self.samples)

    def quantile(self, q: float) -> float:
        return float(np.nanquantile(self.samples, q))

    def to_dict(self) -> dict:
        mean = self.mean
        return {
            "mean": json_float(mean.mean),
            "mean_ci": [json_float(mean.ci_low), json_float(mean.ci_high)],
            "median": self.quantile(0.5),
            "quantiles": {f"q{int(100 * q)}": self.quantile(q) for q in (0.1, 0.25, 0.75, 0.9)},
            "paths": int(self.samples.size),
        }


def escape_law(rate: float, noise_variance: float, eta: float, mu: float, delay: Delay, delta_sq: float) -> FirstPassageLaw:
    """The law of the first iteration at which one run from the saddle has ``h_1²/‖h‖² ≥ δ²`` (module
    docstring); an i.i.d. delay is drawn afresh for every path and step from its law."""
    eta, mu = check_parameters(eta, mu)
    law = delay_law(delay, as_iid=True)
    level = delta_sq / (1.0 - delta_sq)
    rng = np.random.default_rng(SEED)
    slots = law.max_delay + 2  # x_{k−max_delay} .. x_k and the slot written
    history = np.zeros((slots, PATHS))
    previous = np.zeros(PATHS)
    passage = np.full(PATHS, np.nan)
    waiting = np.ones(PATHS, dtype=bool)
    scale = eta * np.sqrt(noise_variance)
    columns = np.arange(PATHS)
    for k in range(MAX_ITERATIONS):
        newest = k % slots
        current = history[newest]
        lags = law.constant if law.constant is not None else rng.choice(law.pmf.size, size=PATHS, p=law.pmf)
        stale = history[(newest - np.minimum(lags, k)) % slots, columns]
        step = current + mu * (current - previous) - eta * rate * stale + scale * rng.standard_normal(PATHS)
        previous = current
        history[(k + 1) % slots] = step
        crossed = waiting & (step * step >= level)
        passage[crossed] = k + 1
        waiting &= ~crossed
        if not waiting.any():
            break
    return FirstPassageLaw(passage)
