"""Momentum against asynchrony: the exact linear floor and local rate over a grid of μ and workers.

With M workers taking turns (a round-robin parameter server) every gradient is M − 1 updates
stale, τ = M − 1. For each (M, μ) the linear theory gives, exactly at the given η,

* the error floor ``Σ_i Var x_i`` (:func:`.error_floor.linearized_floor`; ``inf`` when unstable),
* the spectral radius ρ of the slowest mode, hence the local convergence rate ``−log ρ`` per
  iteration,

and, for each μ, the largest stable number of workers ``τ* + 1`` (:mod:`.stability`). Two answers to
"which momentum is best with M workers": the stable μ with the lowest floor, and the stable μ with
the fastest local convergence. Momentum speeds convergence (rate ≈ η a/(1 − μ)) and raises the
floor (≈ 1/(1 − μ)); asynchrony caps the usable momentum through τ* ≈ π (1 − μ)/(2 η a_max).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.error_floor import linearized_floor
from amsgd.diffusion.theory.linear_recursion import (
    check_parameters,
    check_rates,
    spectral_radius,
)
from amsgd.diffusion.theory.stability import critical_delay


@dataclass(frozen=True, eq=False)
class TradeoffResult:
    """Arrays over ``(workers, mus)``; per-μ and per-M summaries. Unstable cells have floor ``inf``.

    ``best_mu_floor[m]`` / ``best_mu_rate[m]`` are NaN when no μ is stable with ``workers[m]``;
    ``max_workers[u]`` is 0 when no delay is stable at ``mus[u]``.
    """

    eta: float
    rates: tuple[float, ...]
    noise_variances: tuple[float, ...]
    mus: np.ndarray
    workers: np.ndarray
    floor: np.ndarray
    diffusion_floor: np.ndarray
    spectral_radius: np.ndarray
    max_workers: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        return np.isfinite(self.floor)

    @property
    def decay_per_iteration(self) -> np.ndarray:
        """``−log ρ`` of the slowest mode, per cell."""
        with np.errstate(divide="ignore"):
            return -np.log(self.spectral_radius)

    @property
    def best_mu_floor(self) -> np.ndarray:
        return self._best(np.where(self.stable, self.floor, np.inf), np.argmin)

    @property
    def best_mu_rate(self) -> np.ndarray:
        return self._best(np.where(self.stable, self.decay_per_iteration, -np.inf), np.argmax)

    def _best(self, score: np.ndarray, pick) -> np.ndarray:
        best = self.mus[pick(score, axis=1)]
        return np.where(self.stable.any(axis=1), best, np.nan)

    def to_dict(self) -> dict:
        def grid(x: np.ndarray) -> list:
            return [[json_float(v) for v in row] for row in x]

        return {
            "eta": self.eta,
            "rates": list(self.rates),
            "noise_variances": list(self.noise_variances),
            "mus": self.mus.tolist(),
            "workers": self.workers.tolist(),
            "floor": grid(self.floor),
            "diffusion_floor": [json_float(v) for v in self.diffusion_floor],
            "spectral_radius": grid(self.spectral_radius),
            "stable": self.stable.tolist(),
            "max_workers": self.max_workers.tolist(),
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
                "spectral_radius": (cell, self.spectral_radius),
                "stable": (cell, self.stable),
                "decay_per_iteration": (cell, self.decay_per_iteration),
                "diffusion_floor": ("mu", self.diffusion_floor),
                "max_workers": ("mu", self.max_workers),
                "best_mu_floor": ("workers", self.best_mu_floor),
                "best_mu_rate": ("workers", self.best_mu_rate),
            },
            coords={"workers": self.workers, "mu": self.mus},
            attrs={
                "eta": self.eta,
                "rates": list(self.rates),
                "noise_variances": list(self.noise_variances),
                "delay": "round-robin: tau = workers - 1",
            },
        )


def tradeoff(
    rates: Sequence[float] | np.ndarray,
    noise_variances: Sequence[float] | np.ndarray,
    eta: float,
    mus: Sequence[float] | np.ndarray,
    workers: Sequence[int] | np.ndarray,
) -> TradeoffResult:
    """Exact linear floor, spectral radius and stability for every (M, μ), with τ = M − 1."""
    a = check_rates(rates)
    mus = np.asarray(mus, dtype=float)
    workers = np.asarray(workers)
    if mus.ndim != 1 or mus.size == 0:
        raise ProblemError(f"mus must be a non-empty list of momenta, got {mus!r}")
    for mu in mus:
        check_parameters(eta, mu)
    integers = workers.ndim == 1 and workers.size > 0 and np.issubdtype(workers.dtype, np.integer)
    if not integers or workers.min() < 1:
        raise ProblemError(f"workers must be a non-empty list of integers >= 1, got {workers!r}")
    delays = [int(m) - 1 for m in workers]
    floors = [[linearized_floor(a, noise_variances, eta, mu, tau) for mu in mus] for tau in delays]
    radius = [[max(spectral_radius(r, eta, mu, tau) for r in a) for mu in mus] for tau in delays]
    max_workers = [int(np.ceil(critical_delay(a, eta, mu).min())) for mu in mus]  # τ* + 1
    first = floors[0][0]
    return TradeoffResult(
        eta=float(eta),
        rates=first.rates,
        noise_variances=first.noise_variances,
        mus=mus,
        workers=workers.astype(int),
        floor=np.array([[f.floor for f in row] for row in floors]),
        diffusion_floor=np.array([f.diffusion_floor for f in floors[0]]),
        spectral_radius=np.array(radius),
        max_workers=np.array(max_workers),
    )
