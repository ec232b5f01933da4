"""Whether the Euler–Maruyama step of a model's SME keeps its second moments bounded near the minimum.

The SME (:mod:`.model_limits`) has state-dependent noise. Near the minimum x*, in the Hessian's
eigenbasis, a minibatch gradient at ``x* + h`` is ``∇L + ξ`` with ``Cov ξ = (S_g + E_n[D_n h hᵀ D_n]
+ (terms linear in h))/B`` (``D_n = H_n − H`` the centred per-example Hessians, ``S_g`` the examples'
gradient covariance: :mod:`.theory.full_moments`; exact for least squares, the quadratic
approximation otherwise). One step ``h ← J h + g sqrt(η Δt) ξ`` of ``Δt = δ η``, ``J = I − s Δt Λ``,
maps the mean by J and the second moments ``X = E h hᵀ`` to

    X' = J X J + g² η Δt E_n[D_n X D_n] / B + (the mean's terms and a constant),

with ``s = s(μ)``, ``g = g(μ)`` the time scaling: the map is block triangular, so the step is
mean-square stable iff the spectral radius of ``M(δ): X ↦ J X J + g² η Δt E_n[D_n X D_n]/B`` is below
one (it bounds J's, the mean's). M preserves positive semidefinite matrices, so its radius is an
eigenvalue (Krein–Rutman). Where the minimum's whole spectrum is known and it has at most
:data:`~.theory.full_moments.FULL_MOMENTS_MAX` parameters, M is built exactly on the upper triangles
of X (the fluctuation operator of :mod:`.theory.full_moments`); for larger models the variances alone
are kept, ``Var ξ_i ≈ s_i + Σ_j C_ij x_j²`` (the coupling of
:class:`~amsgd.diffusion.theory.model_point.ModelPoint`, the diagonal closure of the predictions):

    M(δ) = diag((1 − s Δt λ_i)²) + g² η Δt C,

modes beyond the coupled ones by their drift alone. Where the radius is at least one, the paths'
second moments grow below the divergence norm and the stationary loss is the scheme's, not the SME's, even when the drift
alone is stable (``s Δt λ_max < 2``). As δ → 0, ``M ≈ I − Δt (s (Λ X + X Λ) − g² η E_n[D_n X D_n]/B)``:
the SME's own second moments near the minimum are bounded iff the spectral radius of
``X ↦ g² η E_n[D_n X D_n]/B`` divided entrywise by ``s (λ_a + λ_b)`` is below one (in the closure the
Perron root of ``g² η (2 s Λ)^{−1} C``); then a small enough step is stable, and the largest is found by
bisection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core.estimates import json_float
from amsgd.core.models import ModelProblem

if TYPE_CHECKING:
    from amsgd.diffusion.theory.model_point import ModelPoint

#: Relative width of the bisection bracket for the largest stable step.
_DT_RTOL = 1e-3
#: The exact map's fluctuation operator costs about N P⁴ flops (N examples, P parameters): above this
#: the diagonal closure is used (least squares on digits, 1437 × 65⁴ = 2.6e10, takes about a second).
EXACT_MAP_WORK = 1e12


@dataclass(frozen=True)
class SchemeStability:
    """The Euler–Maruyama step of ``dt`` iterations near the minimum: its second-moment radius, and a
    stable step: ``dt`` itself when it is stable, else the largest stable one (bisection), None where no
    step is (the SME's own second moments grow there). ``exact`` says whether the radius is the exact
    map's or the diagonal closure's (module docstring)."""

    dt: float
    radius: float
    stable_dt: float | None
    exact: bool = True

    @property
    def stable(self) -> bool:
        return self.radius < 1.0

    def to_dict(self) -> dict:
        return {"dt_iterations": self.dt, "radius": json_float(self.radius), "stable": self.stable,
                "stable_dt_iterations": None if self.stable_dt is None else json_float(self.stable_dt),
                "map": "exact" if self.exact else "diagonal closure"}  # fmt: skip

    def warning(self, intervals: np.ndarray) -> str | None:
        """One line for a user whose run used an unstable step (None when it is stable); the step it
        suggests divides the run's ``intervals`` between records, as a step must."""
        if self.stable:
            return None
        head = (f"Euler-Maruyama at dt = {self.dt:g} iterations is not mean-square stable for this SME near its "
                f"minimum (second-moment radius {self.radius:.6g} > 1)")  # fmt: skip
        if self.stable_dt is None:
            return (f"{head}: the SME's own second moments grow near the minimum at this eta and mu, so no step "
                    "bounds them and the run's stationary loss is no limit's")  # fmt: skip
        return (f"{head}: the paths' second moments grow and the stationary loss is the scheme's, not the limit's; "
                f"use --dt {dividing_step(self.stable_dt, intervals):.12g} (steps below {self.stable_dt:.3g} are stable)")


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


#: ``(step ↦ radius of M at a step of ``step`` in diffusion time, the SME's own radius)``: see
#: :func:`exact_map` and :func:`closure_map`.
RadiusMap = tuple[Callable[[float], float], float]


def exact_map(problem: ModelProblem, point: ModelPoint, scale: float, gain: float) -> RadiusMap:
    """M on the upper triangles of X over the curved modes (module docstring): ``diag(J_a J_b)`` plus
    ``g² η Δt`` times the fluctuation operator over B; and the SME's own radius, the operator times
    ``g² η / (s (λ_a + λ_b) B)`` (infinite where a mode has negative curvature)."""
    from amsgd.diffusion.theory.full_moments import curved_statistics, shared_fluctuation_operator
    from amsgd.diffusion.theory.second_moments import largest_modulus

    lam = point.eigenvalues[~point.flat()]
    hessians, _ = curved_statistics(problem, point)
    operator = shared_fluctuation_operator(hessians - hessians.mean(axis=0))
    a, b = np.triu_indices(lam.size)
    noise = gain**2 * problem.eta / problem.batch

    def radius(step: float) -> float:
        matrix = noise * step * operator
        matrix[np.diag_indices_from(matrix)] += (1.0 - scale * step * lam[a]) * (1.0 - scale * step * lam[b])
        return largest_modulus(matrix)

    if np.any(lam < 0.0):
        return radius, float("inf")
    return radius, largest_modulus(noise * operator / (scale * (lam[a] + lam[b]))[:, None])


def closure_map(problem: ModelProblem, point: ModelPoint, scale: float, gain: float) -> RadiusMap:
    """M in the diagonal closure (module docstring): the coupled curved modes with their coupling, the
    other curved modes by their drift alone; and the Perron root of ``g² η (2 s Λ)^{−1} C``."""
    keep = point.coupled_modes()
    curved = np.flatnonzero(point.curved())
    eigenvalues = np.concatenate((point.eigenvalues[keep], point.eigenvalues[curved[curved >= point.coupled]]))
    coupling = point.coupling[np.ix_(keep, keep)]

    def radius(step: float) -> float:
        return second_moment_radius(eigenvalues, keep.size, coupling, step, scale, gain, problem.eta)

    own = gain**2 * problem.eta * coupling / (2.0 * scale * eigenvalues[: keep.size, None])
    return radius, float(np.max(np.abs(np.linalg.eigvals(own)), initial=0.0))


def second_moment_radius(eigenvalues: np.ndarray, coupled: int, coupling: np.ndarray, step: float, scale: float,
                         gain: float, eta: float) -> float:  # fmt: skip
    """The spectral radius of M for a step of ``step`` in diffusion time (module docstring): the first
    ``coupled`` curved ``eigenvalues`` with their ``coupling``, the rest by their drift alone."""
    drift = (1.0 - scale * step * np.asarray(eigenvalues, dtype=float)) ** 2
    matrix = np.diag(drift[:coupled]) + gain**2 * eta * step * np.asarray(coupling, dtype=float)
    coupled_radius = float(np.max(np.abs(np.linalg.eigvals(matrix)))) if coupled else 0.0
    return max(coupled_radius, float(np.max(drift[coupled:], initial=0.0)))


def scheme_stability(problem: ModelProblem, dt: float) -> SchemeStability | None:
    """:class:`SchemeStability` of the run's step ``dt`` (iterations) at the model's minimum, by the
    exact map where the minimum's whole spectrum is known, the model has at most
    :data:`~.theory.full_moments.FULL_MOMENTS_MAX` parameters and its operator's work is within
    :data:`EXACT_MAP_WORK`, else by the diagonal closure; None where the minimum is not found (the run
    goes on without the check)."""
    from amsgd.core.errors import ProblemError
    from amsgd.core.problem import require_step_scale
    from amsgd.diffusion.model_limits import time_scales
    from amsgd.diffusion.theory.full_moments import FULL_MOMENTS_MAX
    from amsgd.diffusion.theory.model_point import find_minimum, model_point

    try:
        point = model_point(problem, find_minimum(problem))
    except ProblemError:
        return None
    require_step_scale(problem.eta * float(point.eigenvalues.max(initial=0.0)), "eta·λ_max")  # as derive: (1 − sΔtλ)² overflowed
    exact = point.full and point.x.size <= FULL_MOMENTS_MAX and problem.data.examples * point.x.size**4 <= EXACT_MAP_WORK
    radius_at, own = (exact_map if exact else closure_map)(problem, point, *time_scales(problem.mu))

    def radius(step_iterations: float) -> float:
        return radius_at(problem.eta * step_iterations)

    at_run = radius(dt)
    if at_run < 1.0:
        return SchemeStability(float(dt), at_run, float(dt), exact)
    if own >= 1.0:  # the limit's own second moments grow
        return SchemeStability(float(dt), at_run, None, exact)
    low, high = float(dt) * 1e-6, float(dt)
    while high - low > _DT_RTOL * high:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if radius(mid) < 1.0 else (low, mid)
    return SchemeStability(float(dt), at_run, low, exact)
