"""First-passage laws of single runs: when does one run leave the saddle?

At the worst saddle e_2 the escaping coordinate, in the ratio ``r = h_1/h_2`` that the ODE moves
exactly linearly, is the linear mode ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ} + η ξ_k`` with a
negative restoring rate ``a`` (the unstable OU mode before its time scaling) and noise ``Var ξ = s²``,
started at rest. A run escapes (``h_1²/‖h‖² ≥ δ²``) when ``r² ≥ δ²/(1 − δ²)``: its escape time is the
first passage of this linear Gaussian recursion across that level. The law is sampled exactly from
the recursion (:data:`PATHS` paths, fewer when a passage takes very many iterations; a fixed seed;
the mean is given with its 95% interval), in a compiled loop (:mod:`.passage_kernel`).

The law is wide: the run starts from noise, so ``x_k`` is about ``sqrt(V_k)`` times a standard normal
and the passage time inherits a ``log χ²_1`` spread; its mean lies about ``(γ + log 2)/(2 × growth
rate)`` beyond the time at which the *mean* of h_1² crosses δ², which is a different number (the
crossing of the mean curve, the diffusion limit's escape time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amsgd.core.delays import cumulative
from amsgd.core.estimates import Estimate, json_float, t_interval
from amsgd.diffusion.theory.linear_recursion import Delay, check_parameters, delay_law

#: Paths sampled, their seed (reproducible numbers), and the most path-steps spent: at small η fewer
#: paths are sampled (at least MIN_PATHS), and the interval of the mean says so.
PATHS = 5_000
MIN_PATHS = 200
PATH_STEPS = 100_000_000
SEED = 20180605
#: The most iterations followed.
MAX_ITERATIONS = 1_000_000


@dataclass(frozen=True, eq=False)
class FirstPassageLaw:
    """The first-passage iterations of the sampled paths (NaN: not within the iterations followed; the
    mean is then NaN, and ``unfinished`` in the JSON counts them)."""

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
            "unfinished": int(np.isnan(self.samples).sum()),
        }


def paths_for(expected_iterations: float) -> int:
    """Paths to sample when a passage takes about ``expected_iterations``: :data:`PATHS`, fewer when
    that would exceed :data:`PATH_STEPS` path-steps (the tail runs to about three times the mean),
    never fewer than :data:`MIN_PATHS`."""
    if not np.isfinite(expected_iterations) or expected_iterations <= 0:
        return PATHS
    return int(np.clip(PATH_STEPS // (3.0 * expected_iterations), MIN_PATHS, PATHS))


def escape_law(rate: float, noise_variance: float, eta: float, mu: float, delay: Delay, delta_sq: float,
               paths: int = PATHS) -> FirstPassageLaw:  # fmt: skip
    """The law of the first iteration at which one run from the saddle has ``h_1²/‖h‖² ≥ δ²`` (module
    docstring), from ``paths`` sampled paths; an i.i.d. delay is drawn afresh for every path and step."""
    from amsgd.diffusion.theory.passage_kernel import first_passages

    eta, mu = check_parameters(eta, mu)
    law = delay_law(delay, as_iid=True)
    constant = -1 if law.constant is None else law.constant
    cdf = cumulative(law.pmf)
    level = delta_sq / (1.0 - delta_sq)
    scale = eta * np.sqrt(noise_variance)
    samples = first_passages(int(paths), float(rate), float(scale), eta, mu, constant, cdf, level, MAX_ITERATIONS, SEED)
    return FirstPassageLaw(samples)
