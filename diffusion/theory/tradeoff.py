"""Momentum against asynchrony: the exact finite-η floor, the error's local rate and stability over a
grid of μ and workers.

With M workers taking turns (a round-robin parameter server) every gradient is M − 1 updates
stale, τ = M − 1. For each (M, μ) the theory gives, exactly for the linearisation at the given η,

* the finite-η error floor (:func:`.second_moments.finite_eta_floor`; ``inf`` when not mean-square stable),
* mean-square stability of every mode, the radial one included (:mod:`.second_moments`),
* the local rate of the error: ``−log ρ`` per iteration of the slowest *tangent* mode (the modes that
  enter sin²), at finite η (:attr:`.second_moments.FiniteEtaFloor.decay_per_iteration`: the ratio's
  drift, the restoring-force split and the radial friction in the mode's mean recursion) where the
  floor has its norm coupling, else of the exact linear recursion; the exact linear rate and the rate
  of the radial mode (the norm of v) beside it,

and, for each μ, the largest stable number of workers (``τ + 1`` for the largest stable τ, of the
mean and of the second moments). Two answers to "which momentum is best with M workers": the stable
μ with the lowest floor, and the stable μ with the fastest error rate. Stability involves every mode;
the rate that decides which momentum converges fastest is the error's. Momentum speeds convergence
(rate ≈ η a/(1 − μ)) and raises the floor (≈ 1/(1 − μ)); asynchrony caps the usable momentum
through τ* ≈ π (1 − μ)/(2 η a_max).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from amsgd.core.distributions import Distribution, StudentT
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.core.progress import counter
from amsgd.core.threads import thread_map
from amsgd.diffusion.theory.linear_recursion import (
    MAX_DELAY,
    check_parameters,
    largest_spectral_radius,
    spectral_radii,
)
from amsgd.diffusion.theory.second_moments import (
    Coefficients,
    finite_eta_floor,
    largest_mean_square_delay,
    last_stable_delay,
    mean_square_stable,
    search_capped,
)
from amsgd.diffusion.theory.stability import critical_delay

#: ``floor(c, η, μ, τ)``: a model's stationary error at a constant delay τ.
FloorFunction = Callable[[Coefficients, float, float, int], float]
#: ``verdict(μ, τ)``: ``(mean-square stable, floor)`` at a constant delay τ from a theory that decides
#: there in place of the modes' coupled variances (a model's full second moments), None where it does not apply.
Verdict = Callable[[float, int], "tuple[bool, float] | None"]


@dataclass(frozen=True, eq=False)
class TradeoffResult:
    """Arrays over ``(workers, mus)``; per-μ and per-M summaries. Unstable cells have floor ``inf``.

    ``best_mu_floor[m]`` / ``best_mu_rate[m]`` are NaN when no μ is stable with ``workers[m]``;
    ``max_workers[u]`` (mean-square) and ``max_workers_mean`` are 0 when no delay is stable at ``mus[u]``;
    ``max_workers_lower_bound[u]`` is True where the longest delay the numerics take
    (:data:`~.linear_recursion.MAX_DELAY`) is still stable, so that ``max_workers[u]`` is only a lower bound.
    """

    eta: float
    mus: np.ndarray
    workers: np.ndarray
    floor: np.ndarray
    stable: np.ndarray  # mean-square stable, every mode
    error_radius: np.ndarray  # the slowest error mode's spectral radius, at finite η where known
    radial_radius: np.ndarray
    max_workers: np.ndarray
    max_workers_mean: np.ndarray
    max_workers_lower_bound: np.ndarray
    linear_error_radius: np.ndarray  # the same of the exact linear recursions

    @property
    def error_rate(self) -> np.ndarray:
        """``−log ρ`` per iteration of the slowest mode that enters the error, per cell (at finite η where known)."""
        with np.errstate(divide="ignore"):
            return -np.log(self.error_radius)

    @property
    def linear_error_rate(self) -> np.ndarray:
        """:attr:`error_rate` of the exact linear recursions (no finite-η correction), per cell."""
        with np.errstate(divide="ignore"):
            return -np.log(self.linear_error_radius)

    @property
    def radial_rate(self) -> np.ndarray:
        """``−log ρ`` per iteration of the radial mode (the norm of v), per cell."""
        with np.errstate(divide="ignore"):
            return -np.log(self.radial_radius)

    @property
    def best_mu_floor(self) -> np.ndarray:
        return self._best(np.where(self.stable, self.floor, np.inf), np.argmin)

    @property
    def best_mu_rate(self) -> np.ndarray:
        return self._best(np.where(self.stable, self.error_rate, -np.inf), np.argmax)

    def _best(self, score: np.ndarray, pick) -> np.ndarray:
        best = self.mus[pick(score, axis=1)]
        return np.where(self.stable.any(axis=1), best, np.nan)

    def to_dict(self) -> dict:
        def grid(x: np.ndarray) -> list:
            return [[json_float(v) for v in row] for row in x]

        return {
            "eta": self.eta,
            "mus": self.mus.tolist(),
            "workers": self.workers.tolist(),
            "floor": grid(self.floor),
            "stable": self.stable.tolist(),
            "error_rate": grid(self.error_rate),
            "error_rate_exact_linear": grid(self.linear_error_rate),
            "radial_rate": grid(self.radial_rate),
            "max_workers": self.max_workers.tolist(),
            "max_workers_mean": self.max_workers_mean.tolist(),
            "max_workers_is_lower_bound": self.max_workers_lower_bound.tolist(),
            "best_mu_floor": [json_float(v) for v in self.best_mu_floor],
            "best_mu_rate": [json_float(v) for v in self.best_mu_rate],
        }

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimensions ``workers`` and ``mu``."""
        import xarray as xr

        cell = ("workers", "mu")
        return xr.Dataset(
            {
                "floor": (cell, self.floor),
                "stable": (cell, self.stable),
                "error_rate": (cell, self.error_rate),
                "error_rate_exact_linear": (cell, self.linear_error_rate),
                "radial_rate": (cell, self.radial_rate),
                "max_workers": ("mu", self.max_workers),
                "max_workers_mean": ("mu", self.max_workers_mean),
                "max_workers_is_lower_bound": ("mu", self.max_workers_lower_bound),
                "best_mu_floor": ("workers", self.best_mu_floor),
                "best_mu_rate": ("workers", self.best_mu_rate),
            },
            coords={"workers": self.workers, "mu": self.mus},
            attrs={"eta": self.eta, "delay": "round-robin: tau = workers - 1"},
        )


def tradeoff_floor_note(distribution: Distribution) -> str | None:
    """What the table's floors leave out for Student-t data: the heavy-tail factor, which
    ``stationary_error.finite_eta`` applies at the problem's own μ and delay (a tabulated mixing over
    the lags, about 0.3 s a cell, where the table has a hundred cells); None for other laws."""
    if not isinstance(distribution, StudentT):
        return None
    return ("the floors are the finite-eta floor without the heavy-tail factor of Student-t data, which "
            "stationary_error.finite_eta applies at the problem's own mu and delay (heavy_tail_factor: below 1, "
            "the further below the heavier the tails); the momenta are ranked on these floors")


def tradeoff(c: Coefficients, eta: float, mus: Sequence[float] | np.ndarray, workers: Sequence[int] | np.ndarray,
             *, floor: FloorFunction | None = None, error_modes: np.ndarray | None = None,
             radial_mode: int | None = 0, verdict: Verdict | None = None) -> TradeoffResult:  # fmt: skip
    """Finite-η floor, error and radial rates and mean-square stability for every (M, μ), τ = M − 1.

    By default (streaming PCA) the floor is :func:`.second_moments.finite_eta_floor` and the error's
    rate its finite-η one, the error's modes are the tangent ones and mode 0 is radial. Another model
    passes its own ``floor(c, η, μ, τ)`` (its rates are the exact linear ones), the modes its error
    sees and ``radial_mode=None`` (its radial rate is then NaN), and may pass a ``verdict`` that decides
    stability and the floor where it applies (:data:`Verdict`).
    """
    error_modes = c.tangent if error_modes is None else np.asarray(error_modes)
    mus = np.asarray(mus, dtype=float)
    workers = np.asarray(workers)
    if mus.ndim != 1 or mus.size == 0:
        raise ProblemError(f"mus must be a non-empty list of momenta, got {mus.tolist()}")
    for mu in mus:
        check_parameters(eta, mu)
    integers = workers.ndim == 1 and workers.size > 0 and np.issubdtype(workers.dtype, np.integer)
    if not integers or workers.min() < 1:
        raise ProblemError(f"workers must be a non-empty list of integers >= 1, got {workers.tolist()}")
    for name, values in (("workers", workers), ("mus", mus)):
        if np.unique(values).size != values.size:
            raise ProblemError(f"{name} lists a value twice: {values.tolist()}")
    mus, workers = np.sort(mus), np.sort(workers)  # the table's rows and columns in increasing order
    floor_of = floor  # a model's floor function (None: the finite-η floor and rate); ``floor`` is the table below
    critical = {mu: critical_delay(c.rates, eta, mu) for mu in mus}
    shape = (workers.size, mus.size)
    floor, stable, radial = np.empty(shape), np.empty(shape, dtype=bool), np.empty(shape)
    error, linear = np.empty(shape), np.empty(shape)

    def cell(index: tuple[int, int], count) -> None:  # writes its own entries only
        m, u = index
        tau, mu = int(workers[m]) - 1, mus[u]
        decided = None if verdict is None else verdict(mu, tau)
        linear[m, u] = error[m, u] = largest_spectral_radius(c.rates[error_modes], eta, mu, tau)
        stable[m, u] = mean_square_stable(c, eta, mu, tau, critical[mu]) if decided is None else decided[0]
        if not stable[m, u]:
            floor[m, u] = np.inf
        elif decided is not None:
            floor[m, u] = decided[1]
        elif floor_of is not None:
            floor[m, u] = floor_of(c, eta, mu, tau)
        else:  # streaming PCA: the finite-η floor, and the error's rate at finite η where it has one
            finite = finite_eta_floor(c, eta, mu, tau)
            floor[m, u] = finite.value
            if finite.decay_per_iteration is not None:
                error[m, u] = np.exp(-finite.decay_per_iteration)
        radial[m, u] = np.nan if radial_mode is None else spectral_radii(c.rates[[radial_mode]], eta, mu, tau)[0]
        count.update(1)

    def largest_at(mu: float, count) -> int | None:
        found = largest_stable_delay(c, eta, mu, critical[mu], verdict)
        count.update(1)
        return found

    with counter(workers.size * mus.size + mus.size, "cells", "momentum-workers table") as count:
        thread_map(lambda index: cell(index, count), np.ndindex(*shape))  # independent cells: on threads
        largest = thread_map(lambda mu: largest_at(mu, count), mus)
    return TradeoffResult(
        eta=float(eta), mus=mus, workers=workers.astype(int), floor=floor, stable=stable,
        error_radius=error, radial_radius=radial, linear_error_radius=linear,
        max_workers=np.array([0 if t is None else t + 1 for t in largest]),
        max_workers_mean=np.array([int(np.ceil(critical[mu].min())) for mu in mus]),  # τ* + 1
        max_workers_lower_bound=np.array([search_capped(t, critical[mu]) for t, mu in zip(largest, mus)]),
    )  # fmt: skip


def largest_stable_delay(c: Coefficients, eta: float, mu: float, critical: np.ndarray,
                         verdict: Verdict | None = None) -> int | None:  # fmt: skip
    """The largest mean-square-stable constant delay at (η, μ): by the ``verdict`` where it applies
    (bisection below the mean-dynamics τ*, the modes' theory beyond its reach), else
    :func:`.second_moments.largest_mean_square_delay`."""
    if verdict is None or verdict(mu, 0) is None:
        return largest_mean_square_delay(c, eta, mu, critical)

    def stable(tau: int) -> bool:
        decided = verdict(mu, tau)
        return mean_square_stable(c, eta, mu, tau, critical) if decided is None else decided[0]

    return last_stable_delay(stable, int(min(np.ceil(critical.min()), MAX_DELAY)))
