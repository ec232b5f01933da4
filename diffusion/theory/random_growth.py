"""Single runs where the second moments grow: the top Lyapunov exponent of a model's random
recursion near its minimum, and the fraction of runs that reach the divergence length.

Between the mean-square and the mean boundary, ``E‖h‖²`` grows without bound though ``E h → 0``. What
a single run does is decided by another number (Furstenberg–Kesten): the homogeneous recursion

    h_{k+1} = (1 + μ) h_k − μ h_{k−1} − η A_k h_{k−τ_k},    A_k = R + (1/B) Σ_b H_{n_b}

(``H_n`` example n's Hessian at x*, ``R`` the ridge, B examples drawn with replacement, the delay
i.i.d.; exact for least squares) has ``log ‖h_k‖ / k → γ`` almost surely, the top Lyapunov exponent,
and ``(log ‖h_k‖ − γ k)/√k`` tends to a normal law of variance ``σ²`` (Le Page's central limit
theorem for products of random matrices). ``γ ≤ ½ log ρ₂`` (Jensen, ρ₂ the second-moment radius), so
γ can be negative where the second moments grow: the runs then return, with a heavy-tailed law.

**The exponent** (:func:`growth_exponent`) is estimated by following :data:`PATHS` paths of the
homogeneous recursion with fixed seeds, renormalised after every step (:mod:`.growth_kernel`):
``γ`` is the mean gain of ``log ‖h‖`` per step after a burn-in, ``σ²`` the variance of the gain over
blocks per step (batch means), and ``γ``'s standard error ``√(σ²/T)`` over the ``T`` path-steps
counted. The work is held to about :data:`WORK` multiply-adds (from :data:`MIN_PATH_STEPS` to
:data:`MAX_PATH_STEPS` path-steps). Each example's Hessian enters through its eigenvectors with a
nonzero eigenvalue (one for least squares), so a step costs ``m² + 2 B m r`` for m curved modes.

**The blow-up fraction** (:func:`blow_up_fraction`). With additive noise the run's norm cannot fall
far below the scale ``r_0`` the noise alone keeps it at, so ``ℓ_k = log(‖h_k‖/r_0)`` is taken as a
random walk of drift γ and variance σ² per step, reflected at 0 and started there; a run blows up when
``ℓ`` reaches ``log(D/r_0)``, D the divergence length. The probability that it has by step N is
computed on a grid (the walk's transition matrix over macro steps of ``s`` iterations, raised to the
power ``N/s`` by repeated squaring). For γ > 0 nearly every run that lives long enough blows up; for
γ < 0 the reflected walk's tail falls as ``exp(−2|γ| ℓ/σ²)``, the Kesten tail of the norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.linear_recursion import DelayLaw

#: Paths of the homogeneous recursion followed, and blocks per path for the variance.
PATHS, BLOCKS = 8, 64
#: Share of each path's steps discarded before counting.
BURN_FRACTION = 0.1
#: Multiply-adds spent on the estimate, and the bounds on the path-steps that buys.
WORK = 1e9
MIN_PATH_STEPS, MAX_PATH_STEPS = 100_000, 4_000_000
#: Eigenvalues of an example's Hessian below this fraction of the largest over all examples are dropped.
RANK_RTOL = 1e-10
#: Seed of the paths (reproducible numbers).
GROWTH_SEED = 20_181_203
#: Cells of the grid of the reflected walk: the fewest, and the most.
MIN_CELLS, MAX_CELLS = 64, 768


@dataclass(frozen=True)
class Growth:
    """The top Lyapunov exponent γ per iteration, the variance σ² per iteration of ``log ‖h‖`` about
    ``γ k``, γ's standard error and the path-steps behind them (module docstring)."""

    exponent: float
    spread: float
    standard_error: float
    path_steps: int

    def to_dict(self) -> dict:
        return {"exponent": json_float(self.exponent), "exponent_se": json_float(self.standard_error),
                "spread": json_float(self.spread), "path_steps": self.path_steps}  # fmt: skip


def factor_hessians(hessians: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U, s)`` with ``H_n = U_n diag(s_n) U_nᵀ``: each example's eigenvectors ``(N, m, r)`` scaled to
    unit length and their eigenvalues ``(N, r)``, r the largest count above :data:`RANK_RTOL` of the
    largest magnitude (zero-padded)."""
    values, vectors = np.linalg.eigh(0.5 * (hessians + hessians.transpose(0, 2, 1)))
    keep = np.abs(values) > RANK_RTOL * max(float(np.max(np.abs(values), initial=0.0)), np.finfo(float).tiny)
    rank = max(1, int(np.max(np.sum(keep, axis=1))))
    order = np.argsort(~keep, axis=1, kind="stable")[:, :rank]  # the kept ones first
    signs = np.where(np.take_along_axis(keep, order, axis=1), np.take_along_axis(values, order, axis=1), 0.0)
    factors = np.take_along_axis(vectors, order[:, None, :], axis=2)
    return np.ascontiguousarray(factors), np.ascontiguousarray(signs)


def growth_exponent(ridge: np.ndarray, hessians: np.ndarray, eta: float, mu: float, law: DelayLaw, batch: int,
                    seed: int = GROWTH_SEED) -> Growth:  # fmt: skip
    """γ, σ² and γ's standard error of the random recursion with per-example Hessians ``hessians``
    ``(N, m, m)`` and the shared part ``ridge`` ``(m, m)`` (module docstring)."""
    from amsgd.diffusion.theory.growth_kernel import log_growth_blocks  # compiled: loaded here

    factors, signs = factor_hessians(np.asarray(hessians, dtype=float))
    m, rank = factors.shape[1], factors.shape[2]
    cost = m * m + 2 * batch * m * rank + (law.max_delay + 2) * m
    path_steps = int(np.clip(WORK / cost, MIN_PATH_STEPS, MAX_PATH_STEPS))
    block_steps = max(1, int(path_steps / (PATHS * BLOCKS * (1.0 + BURN_FRACTION))))
    burn = int(BURN_FRACTION * BLOCKS * block_steps)
    cdf = np.cumsum(law.pmf)
    cdf[-1] = 1.0
    gains = log_growth_blocks(np.ascontiguousarray(ridge, dtype=float), factors, signs, float(eta), float(mu), cdf,
                              int(batch), PATHS, burn, BLOCKS, block_steps, int(seed))  # fmt: skip
    counted = gains.size * block_steps
    exponent = float(np.sum(gains)) / counted
    spread = float(np.var(gains, ddof=1)) / block_steps
    return Growth(exponent, spread, math.sqrt(spread / counted), counted)


def blow_up_fraction(exponent: float, spread: float, level: float, steps: int) -> float:
    """The probability that the walk ``ℓ`` of drift ``exponent`` and variance ``spread`` per step,
    reflected at 0 and started there, reaches ``level`` within ``steps`` steps (module docstring)."""
    if level <= 0.0:
        return 1.0
    sd1 = math.sqrt(max(spread, 0.0))

    def reach(s: int) -> float:  # how far s steps move the walk: its drift or its spread
        return max(abs(exponent) * s, sd1 * math.sqrt(s))

    # a macro step moves the walk by at most level/16, and there are at least 64 of them
    size = 1
    while size * 2 <= steps // 64 and reach(size * 2) <= level / 16:
        size *= 2
    macro = steps // size
    move = reach(size)
    if move * macro < 1e-3 * level:  # the walk cannot get anywhere near the level
        return 0.0
    cells = int(np.clip(math.ceil(4.0 * level / max(move, 1e-300)), MIN_CELLS, MAX_CELLS))
    edges = np.linspace(0.0, level, cells + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    mean = centres[:, None] + exponent * size
    sd = max(sd1 * math.sqrt(size), 1e-3 * (edges[1] - edges[0]))
    upper = (edges[None, 1:] - mean) / sd
    lower = (edges[None, :-1] - mean) / sd
    stay = ndtr(upper) - ndtr(lower)  # the cell itself
    stay += ndtr((-edges[None, :-1] - mean) / sd) - ndtr((-edges[None, 1:] - mean) / sd)  # its mirror image below 0
    return 1.0 - float(np.sum(_power_times(stay, macro, np.eye(cells)[0])))


def _power_times(matrix: np.ndarray, power: int, row: np.ndarray) -> np.ndarray:
    """``row @ matrix^power`` by repeated squaring."""
    square = matrix
    while power:
        if power & 1:
            row = row @ square
        power >>= 1
        if power:
            square = square @ square
    return row
