"""Single runs where the second moments grow: the top Lyapunov exponent of a model's random
recursion near its minimum, and the fraction of runs that reach the divergence length.

Between the mean-square and the mean boundary, ``E‖h‖²`` grows without bound though ``E h → 0``. What
a single run does is decided by another number (Furstenberg–Kesten): the homogeneous recursion

    h_{k+1} = (1 + μ) h_k − μ h_{k−1} − η A_k h_{k−τ_k},    A_k = R + (1/B) Σ_b H_{n_b}

(``H_n`` example n's Hessian at x*, ``R = H − mean_n H_n`` the part every minibatch shares (the ridge),
B examples drawn with replacement, the delay i.i.d.; exact for least squares) has
``log ‖h_k‖ / k → γ`` almost surely, the top Lyapunov exponent, and, under the usual conditions
(Le Page's central limit theorem for products of random matrices), ``(log ‖h_k‖ − γ k)/√k`` tends to
a normal law of variance ``σ²``. ``γ ≤ ½ log ρ₂`` (Jensen, ρ₂ the second-moment radius), so γ can be
negative where the second moments grow: the runs then return, with a heavy-tailed law.

**The exponent** (:func:`growth_exponent`) is estimated by following :data:`PATHS` paths of the
homogeneous recursion with fixed seeds, renormalised after every step (:mod:`.growth_kernel`):
``γ`` is the mean gain of ``log ‖h‖`` per step after a burn-in, ``σ²`` the variance of the gain over
blocks per step (batch means, blocks of at least :data:`MIN_BLOCK` steps and ``10/(1 − μ)``, so
that the gains of neighbouring blocks are nearly independent), and ``γ``'s standard error
``√(σ²/T)`` over the ``T`` path-steps counted. The work is held to about :data:`WORK` multiply-adds
(from :data:`MIN_PATH_STEPS` to :data:`MAX_PATH_STEPS` path-steps). Each example's Hessian enters
through its eigenvectors with a nonzero eigenvalue (one for least squares), so a step costs
``m² + 2 B m r`` for m curved modes.

**The tail exponent** (:func:`tail_exponent`, where γ < 0). The runs then return, and how often one
strays to a distance ``r`` is set by the power law ``P(‖h‖ > r) ∝ r^{−κ}`` of the norm (Kesten,
Goldie: for ``h_{k+1} = A_k h_k + b_k`` with γ < 0), κ the positive root of the generalised Lyapunov
exponent ``Λ(s) = lim (1/n) log E‖h_n‖^s`` (convex, ``Λ(0) = 0``, ``Λ'(0) = γ``). Where ``log ‖h‖``
moved by Gaussian steps Λ would be ``γ s + σ² s²/2`` and κ = ``2|γ|/σ²``; the per-example Hessians make
the steps skewed, and on the tests' cells κ is 2–12% below that, which at their distance
``ℓ = log(D/r_0) ≈ 15`` raises the fraction up to threefold. Λ(s) is estimated by population dynamics
(:func:`.growth_kernel.tilted_growth_rate`: paths weighted by ``‖h_{k+1}‖^s/‖h_k‖^s`` and resampled in
proportion to their weights, the log of the mean weight accumulated; the same path-steps as γ's,
:data:`TILT_STEPS` per path) and its root by secants from the Gaussian one; six seeds spread κ by
about 1% on the tests' cells, which moves the fraction by about ``κ ℓ`` times that, relative. Where the
secants stop before they settle, κ is their last estimate and :attr:`Growth.tail_converged` is False.

**The blow-up fraction** (:func:`blow_up_fraction`). With additive noise the run's norm cannot fall
far below the scale ``r_0`` the noise alone keeps it at, so ``ℓ_k = log(‖h_k‖/r_0)`` is taken as a
random walk of drift γ and variance σ² per step held at the floor 0 (``ℓ ← max(ℓ + ξ, 0)``, Lindley's
recursion) and started there; a run blows up when ``ℓ`` reaches ``log(D/r_0)``, D the divergence
length. The probability that it has by step N is computed on a grid: the walk's transition matrix
over macro steps of ``s`` iterations (the drift and the variance times s), raised to the power
``N/s`` by repeated squaring, with one more step for the remainder; the floor is a state of its own
(an atom at 0), the rest cells of ``(0, level)``. A walk looked at every s steps misses what happens
in between at both barriers: it misses crossings of the level, and it is held at the floor less often
than the walk held at every step, so it sits lower. Each barrier is moved by ``β σ (√s − 1)``,
β = −ζ(1/2)/√(2π) ≈ 0.5826 (the continuity correction of Broadie, Glasserman and Kou for a barrier
watched at discrete times): the level is lowered by twice that, so that the grid's walk stands for
the walk watched every step (against 8000–20 000 directly simulated walks in nine cases from 600 to
10⁵ steps, the grid is within 0.004 of them; moving the level alone, it was up to 0.02 low).

For γ > 0 nearly every run that lives long enough blows up, and the walk's variance is σ²; for γ < 0
its variance is ``2|γ|/κ`` (:attr:`Growth.walk_variance`), so that the walk's stationary tail
``exp(−2|γ| ℓ/σ²)`` is the norm's ``exp(−κ ℓ)`` (the two agree as γ → 0; where γ's 95% interval
holds 0 the walk keeps σ², the ratio of two small estimates being mostly their noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr, zeta

from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.linear_recursion import DelayLaw

#: Paths of the homogeneous recursion followed.
PATHS = 8
#: The fewest steps of a block of the batch means (at least ``10/(1 − μ)`` too), and the fewest blocks.
MIN_BLOCK, MIN_BLOCKS = 1000, 8
#: Share of each path's steps discarded before counting.
BURN_FRACTION = 0.1
#: Multiply-adds spent on the estimate, and the bounds on the path-steps that buys.
WORK = 1e9
MIN_PATH_STEPS, MAX_PATH_STEPS = 100_000, 4_000_000
#: Eigenvalues of an example's Hessian below this fraction of the largest over all examples are dropped.
RANK_RTOL = 1e-10
#: Population dynamics of the tail exponent: path-steps per path aimed at, and the bounds on the paths.
TILT_STEPS = 4000
MIN_TILT_PATHS, MAX_TILT_PATHS = 100, 1000
#: The tail exponent's root search: the most estimates of Λ, and the relative move at which it stops.
MAX_TILTS, TILT_RTOL = 6, 0.005
#: A secant root this many times the Gaussian root is taken for none (κ = ∞).
NO_ROOT = 100.0
#: Seed of the paths (reproducible numbers).
GROWTH_SEED = 20_181_203
#: Cells of the grid of the walk: the fewest, and the most.
MIN_CELLS, MAX_CELLS = 64, 512
#: β = −ζ(1/2)/√(2π): how far a barrier watched at discrete times stands out (module docstring).
_BARRIER_SHIFT = float(-zeta(0.5) / math.sqrt(2.0 * math.pi))
#: γ is told from 0 where it lies this many standard errors away (its 95% interval excludes 0).
RESOLVED = 1.96


@dataclass(frozen=True)
class Growth:
    """The top Lyapunov exponent γ per iteration, the variance σ² per iteration of ``log ‖h‖`` about
    ``γ k``, γ's standard error and the path-steps behind them, and where γ < 0 the tail exponent κ of
    the norm (NaN otherwise; ∞ where every step contracts) (module docstring)."""

    exponent: float
    variance: float
    standard_error: float
    path_steps: int
    tail_exponent: float = math.nan  # κ, the positive root of Λ(s), where γ < 0
    tail_converged: bool = True  # False where κ's root search stopped before converging (its last estimate)

    @property
    def walk_variance(self) -> float:
        """The variance per step of the walk of :func:`blow_up_fraction`: ``2|γ|/κ`` where the runs
        return (so that the walk's stationary tail ``exp(−2|γ|ℓ/σ²)`` is the norm's ``exp(−κℓ)``),
        σ² otherwise, and σ² too where γ's 95% interval holds 0 (the two agree as γ → 0, and there the
        ratio of two small estimates is mostly their noise: on a scalar case with γ = −1e-4 six seeds
        put it between 0.29 and 1.26 against σ² = 0.48)."""
        resolved = abs(self.exponent) > RESOLVED * self.standard_error
        if self.exponent < 0.0 and math.isfinite(self.exponent) and self.tail_exponent > 0.0 and resolved:
            return 2.0 * abs(self.exponent) / self.tail_exponent
        return self.variance

    def to_dict(self) -> dict:
        return {"exponent": json_float(self.exponent), "exponent_se": json_float(self.standard_error),
                "variance": json_float(self.variance), "tail_exponent": json_float(self.tail_exponent),
                "tail_exponent_converged": self.tail_converged, "path_steps": self.path_steps}  # fmt: skip


def factor_hessians(hessians: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U, s)`` with ``H_n = U_n diag(s_n) U_nᵀ``: each example's unit eigenvectors ``(N, m, r)`` and
    their eigenvalues ``(N, r)``, r the largest count above :data:`RANK_RTOL` of the largest magnitude;
    an example with fewer has eigenvalue 0 in its spare columns."""
    values, vectors = np.linalg.eigh(0.5 * (hessians + hessians.transpose(0, 2, 1)))
    keep = np.abs(values) > RANK_RTOL * max(float(np.max(np.abs(values), initial=0.0)), np.finfo(float).tiny)
    rank = max(1, int(np.max(np.sum(keep, axis=1))))
    order = np.argsort(~keep, axis=1, kind="stable")[:, :rank]  # the kept ones first
    signs = np.where(np.take_along_axis(keep, order, axis=1), np.take_along_axis(values, order, axis=1), 0.0)
    factors = np.take_along_axis(vectors, order[:, None, :], axis=2)
    return np.ascontiguousarray(factors), np.ascontiguousarray(signs)


class Recursion(NamedTuple):
    """The recursion as the compiled loops (:mod:`.growth_kernel`) take it: the ridge, every example's
    Hessian factored (:func:`factor_hessians`), η, μ, the delay law's cdf and the batch size."""

    ridge: np.ndarray
    factors: np.ndarray
    signs: np.ndarray
    eta: float
    mu: float
    cdf: np.ndarray
    batch: int


def growth_exponent(ridge: np.ndarray, hessians: np.ndarray, eta: float, mu: float, law: DelayLaw, batch: int,
                    seed: int = GROWTH_SEED) -> Growth:  # fmt: skip
    """γ, σ², γ's standard error and, where γ < 0, the tail exponent κ of the random recursion with
    per-example Hessians ``hessians`` ``(N, m, m)`` and the shared part ``ridge`` ``(m, m)`` (module
    docstring). A path whose state becomes exactly zero gives γ = −inf; non-finite Hessians, ridge, η or μ
    raise :class:`~amsgd.core.errors.ProblemError`."""
    from amsgd.diffusion.theory.growth_kernel import log_growth_blocks  # compiled: loaded here

    if not (np.all(np.isfinite(ridge)) and np.all(np.isfinite(hessians)) and math.isfinite(eta)
            and math.isfinite(mu)):  # fmt: skip
        raise ProblemError("no top Lyapunov exponent: the Hessians at the point, the ridge, η or μ are not finite")

    recursion = Recursion(np.ascontiguousarray(ridge, dtype=float), *factor_hessians(np.asarray(hessians, dtype=float)),
                           float(eta), float(mu), law.cdf, int(batch))  # fmt: skip
    m, rank = recursion.factors.shape[1], recursion.factors.shape[2]
    cost = m * m + 2 * batch * m * rank + (law.max_delay + 2) * m
    path_steps = int(np.clip(WORK / cost, MIN_PATH_STEPS, MAX_PATH_STEPS))
    counted = path_steps / (PATHS * (1.0 + BURN_FRACTION))  # per path
    block_steps = max(MIN_BLOCK, math.ceil(10.0 / (1.0 - mu)))
    blocks = max(MIN_BLOCKS, int(counted // block_steps))
    block_steps = max(1, min(block_steps, int(counted // blocks)))  # a short budget: shorter blocks, not fewer
    burn = int(BURN_FRACTION * blocks * block_steps)
    log_gains = log_growth_blocks(*recursion, PATHS, burn, blocks, block_steps, int(seed))
    total = log_gains.size * block_steps
    if np.any(np.isnan(log_gains)):  # finite inputs keep a renormalised state finite: a defect, not a verdict
        raise RuntimeError("the random recursion's state became NaN from finite coefficients")
    if not np.all(np.isfinite(log_gains)):  # −inf: a path's state vanished
        return Growth(-math.inf, 0.0, 0.0, total)
    variance = float(np.var(log_gains, ddof=1)) / block_steps
    growth = Growth(float(np.sum(log_gains)) / total, variance, math.sqrt(variance / total), total)
    if growth.exponent >= 0.0:
        return growth
    kappa, converged = tail_exponent(recursion, growth.exponent, variance, path_steps, seed)
    return replace(growth, tail_exponent=kappa, tail_converged=converged)


def tail_exponent(recursion: Recursion, exponent: float, variance: float, path_steps: int,
                  seed: int = GROWTH_SEED) -> tuple[float, bool]:  # fmt: skip
    """``(κ, converged)``: κ > 0 with ``Λ(κ) = 0``, ``Λ(s) = lim (1/n) log E‖h_n‖^s`` (module docstring), for γ = ``exponent``
    < 0, from estimates of Λ by population dynamics on one seed (common random numbers until the paths
    are first resampled, whose draws then depend on s), each of about
    ``path_steps`` path-steps (:func:`.growth_kernel.tilted_growth_rate`).

    ``f(s) = Λ(s)/s`` rises from ``f(0) = γ`` (Λ is convex) through 0 at κ. It is estimated first at the
    Gaussian walk's root ``2|γ|/σ²`` (κ itself where log‖h‖ moves by Gaussian steps: f is then the line
    ``γ + σ² s/2``), then at the roots of the secants through the last two points (the first through
    ``(0, γ)``), until the root moves by less than :data:`TILT_RTOL` or :data:`MAX_TILTS` estimates are
    spent. Where f does not rise (as when every example is the same and Λ(s) = γ s) it is the Gaussian
    root; where the secants run off beyond :data:`NO_ROOT` times it, or f stays below 0 at every s
    tried (f levels off below 0: every step contracts, and the norm has no power tail), ∞. ``converged`` is
    False where the search stopped otherwise (an estimate of f not finite, not above γ or equal to the last,
    a secant root not positive, or the estimates spent with a root bracketed): κ is then its last estimate
    (the last point tried, or the last secant's root)."""
    from amsgd.diffusion.theory.growth_kernel import tilted_growth_rate  # compiled: loaded here

    gaussian = 2.0 * abs(exponent) / variance if variance > 0.0 else math.inf
    if not math.isfinite(gaussian):
        return gaussian, True
    paths = int(np.clip(path_steps // TILT_STEPS, MIN_TILT_PATHS, MAX_TILT_PATHS))
    steps = max(1, int(path_steps / (paths * (1.0 + BURN_FRACTION))))
    burn = int(BURN_FRACTION * steps)
    last, f_last, s = 0.0, exponent, gaussian
    below = True  # f < 0 at every s tried so far: no root bracketed
    for _ in range(MAX_TILTS):
        f = tilted_growth_rate(*recursion, s, paths, burn, steps, int(seed)) / s
        if not (math.isfinite(f) and f > exponent and f != f_last):
            return (gaussian, math.isfinite(f)) if last == 0.0 else (last, False)
        root = s - f * (s - last) / (f - f_last)
        if not (math.isfinite(root) and root > 0.0):
            return s, False
        if root > NO_ROOT * gaussian:  # f levels off below 0: the norm's tail is lighter than any power
            return math.inf, True
        if abs(root - s) < TILT_RTOL * s:
            return root, True
        below = below and f < 0.0
        last, f_last, s = s, f, root
    return (math.inf, True) if below else (s, False)


def blow_up_fraction(exponent: float, variance: float, level: float, steps: int) -> float:
    """The probability that the walk ``ℓ`` of drift ``exponent`` and ``variance`` per step, held at the
    floor 0 and started there, reaches ``level`` within ``steps`` steps (module docstring)."""
    if math.isnan(exponent) or math.isnan(variance) or math.isnan(level) or variance < 0.0:
        raise ValueError(f"no blow-up fraction for drift {exponent}, variance {variance}, level {level}")
    if level <= 0.0:
        return 1.0
    if exponent == -math.inf or level == math.inf:
        return 0.0
    sd1 = math.sqrt(variance)

    def reach(s: int) -> float:  # how far s steps move the walk: its drift or its spread
        return max(abs(exponent) * s, sd1 * math.sqrt(s))

    # a macro step moves the walk by at most level/16, and there are at least 64 of them
    size = 1
    while size * 2 <= steps // 64 and reach(size * 2) <= level / 16:
        size *= 2
    if reach(steps) < 1e-3 * level:  # the walk cannot get anywhere near the level
        return 0.0
    level = max(level - 2.0 * _BARRIER_SHIFT * sd1 * (math.sqrt(size) - 1.0), 0.5 * level)  # both barriers
    width = max(sd1 * math.sqrt(size), abs(exponent) * size) / 4.0
    cells = int(np.clip(math.ceil(level / width), MIN_CELLS, MAX_CELLS))
    row = np.linalg.matrix_power(_transition(exponent * size, sd1 * math.sqrt(size), level, cells), steps // size)[0]
    if steps % size:
        rest = steps % size
        row = row @ _transition(exponent * rest, sd1 * math.sqrt(rest), level, cells)
    return float(np.clip(1.0 - np.sum(row), 0.0, 1.0))


def _transition(drift: float, sd: float, level: float, cells: int) -> np.ndarray:
    """One step of the walk between the floor (state 0, the atom at 0) and the cells of ``(0, level)``
    (states 1 .. cells, from their centres): Gaussian moves of mean ``drift`` and deviation ``sd``, what
    falls below 0 held at the floor, what reaches the level gone (the rows sum to the mass that stays)."""
    edges = np.linspace(0.0, level, cells + 1)
    starts = np.concatenate(([0.0], 0.5 * (edges[:-1] + edges[1:])))
    sd = max(sd, 1e-3 * (edges[1] - edges[0]))
    cdf = ndtr((edges[None, :] - (starts[:, None] + drift)) / sd)  # (cells + 1, cells + 1)
    stay = np.empty((cells + 1, cells + 1))
    stay[:, 0] = cdf[:, 0]  # below the floor: held at 0
    stay[:, 1:] = np.diff(cdf, axis=1)
    return stay
