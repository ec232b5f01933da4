"""Whether the Euler–Maruyama step of a model's SME keeps its second moments bounded near the minimum.

The SME (:mod:`.model_limits`) has state-dependent noise. Near the minimum x*, in the Hessian's
eigenbasis, a minibatch gradient is ``∇L + ξ`` with ``Var ξ_i ≈ s_i + Σ_j C_ij x_j²`` (the additive
noise and the coupling of :class:`~amsgd.diffusion.theory.model_point.ModelPoint`, the diagonal
closure of the predictions), so one step ``X ← X − s ∇L Δt + g sqrt(η Δt) ξ`` of ``Δt = δ η`` maps
the second moments ``S_i = E x_i²`` to

    S' = M(δ) S + g² η Δt s,     M(δ) = diag((1 − s Δt λ_i)²) + g² η Δt C,

with ``s = s(μ)``, ``g = g(μ)`` the time scaling. The step is mean-square stable iff the spectral
radius of M(δ) is below one (modes without coupling: ``|1 − s Δt λ_i| < 1``). Where it is not, the
paths grow below the divergence norm and the stationary loss is the scheme's, not the SME's, even
when the drift alone is stable (``s Δt λ_max < 2``). As δ → 0, ``M ≈ I − Δt (2 s Λ − g² η C)``: the
SME itself has a stationary law near the minimum iff the Perron root of ``g² η (2 s Λ)^{−1} C`` is
below one; then a small enough step is stable, and the largest is found by bisection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amsgd.core.estimates import json_float
from amsgd.core.models import ModelProblem

#: Relative width of the bisection bracket for the largest stable step.
_DT_RTOL = 1e-3


@dataclass(frozen=True)
class SchemeStability:
    """The Euler–Maruyama step of ``dt`` iterations near the minimum: its second-moment radius, and a
    stable step: ``dt`` itself when it is stable, else the largest stable one (bisection), None where no
    step is (the SME itself has no stationary law there)."""

    dt: float
    radius: float
    stable_dt: float | None

    @property
    def stable(self) -> bool:
        return self.radius < 1.0

    def to_dict(self) -> dict:
        return {"dt_iterations": self.dt, "radius": json_float(self.radius), "stable": self.stable,
                "stable_dt_iterations": None if self.stable_dt is None else json_float(self.stable_dt)}  # fmt: skip

    def warning(self, intervals: np.ndarray) -> str | None:
        """One line for a user whose run used an unstable step (None when it is stable); the step it
        suggests divides the run's ``intervals`` between records, as a step must."""
        if self.stable:
            return None
        fix = ("the SME itself has no stationary law near the minimum at this eta and mu"
               if self.stable_dt is None else
               f"use --dt {dividing_step(self.stable_dt, intervals):.12g} (steps below {self.stable_dt:.3g} are stable)")  # fmt: skip
        return (f"Euler-Maruyama at dt = {self.dt:g} iterations is not mean-square stable for this SME near its "
                f"minimum (second-moment radius {self.radius:.6g} > 1): the paths grow and the stationary loss is "
                f"the scheme's, not the limit's; {fix}")  # fmt: skip


def dividing_step(bound: float, intervals: np.ndarray) -> float:
    """The largest step below ``bound`` that divides every one of the integer ``intervals`` and prints
    exactly: a divisor of their greatest common divisor when ``bound > 1``, else ``1/k`` with
    ``k = 2^a 5^b`` (0.5, 0.25, 0.2, 0.125, 0.1, ...)."""
    whole = int(np.gcd.reduce(np.asarray(intervals, dtype=np.int64)))
    below = [d for d in range(1, min(whole, int(np.ceil(bound))) + 1) if whole % d == 0 and d < bound]
    if bound > 1 and below:
        return float(max(below))
    ks = sorted(2**a * 5**b for a in range(40) for b in range(20))
    return 1.0 / next(k for k in ks if 1.0 / k < bound)


def second_moment_radius(eigenvalues: np.ndarray, coupled: int, coupling: np.ndarray, step: float, scale: float,
                         gain: float, eta: float) -> float:  # fmt: skip
    """The spectral radius of M for a step of ``step`` in diffusion time (module docstring): the first
    ``coupled`` curved ``eigenvalues`` with their ``coupling``, the rest by their drift alone."""
    drift = (1.0 - scale * step * np.asarray(eigenvalues, dtype=float)) ** 2
    matrix = np.diag(drift[:coupled]) + gain**2 * eta * step * np.asarray(coupling, dtype=float)
    coupled_radius = float(np.max(np.abs(np.linalg.eigvals(matrix)))) if coupled else 0.0
    return max(coupled_radius, float(np.max(drift[coupled:], initial=0.0)))


def scheme_stability(problem: ModelProblem, dt: float) -> SchemeStability | None:
    """:class:`SchemeStability` of the run's step ``dt`` (iterations) at the model's minimum; None
    where the minimum is not found (the run goes on without the check)."""
    from amsgd.core.errors import ProblemError
    from amsgd.core.problem import require_step_scale
    from amsgd.diffusion.model_limits import time_scales
    from amsgd.diffusion.theory.model_point import find_minimum, model_point

    try:
        point = model_point(problem, find_minimum(problem))
    except ProblemError:
        return None
    require_step_scale(problem.eta * float(point.eigenvalues.max(initial=0.0)), "eta·λ_max")  # as derive: (1 − sΔtλ)² overflowed
    keep = point.coupled_modes()
    curved = point.curved()
    rest = np.flatnonzero(curved)[np.flatnonzero(curved) >= point.coupled]
    eigenvalues = np.concatenate((point.eigenvalues[keep], point.eigenvalues[rest]))
    coupling = point.coupling[np.ix_(keep, keep)]
    scale, gain = time_scales(problem.mu)

    def radius(step_iterations: float) -> float:
        return second_moment_radius(eigenvalues, keep.size, coupling, problem.eta * step_iterations, scale, gain,
                                    problem.eta)  # fmt: skip

    at_run = radius(dt)
    if at_run < 1.0:
        return SchemeStability(float(dt), at_run, float(dt))
    own = gain**2 * problem.eta * coupling / (2.0 * scale * eigenvalues[: keep.size, None])
    if keep.size and np.max(np.abs(np.linalg.eigvals(own))) >= 1.0:  # the limit's own second moments grow
        return SchemeStability(float(dt), at_run, None)
    low, high = float(dt) * 1e-6, float(dt)
    while high - low > _DT_RTOL * high:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if radius(mid) < 1.0 else (low, mid)
    return SchemeStability(float(dt), at_run, low)

