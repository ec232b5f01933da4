"""Options of :func:`amsgd.diffusion.theory.predict`, checked before anything heavy is imported.

This module imports nothing beyond the ground layer, so the command line can refuse a bad option
before SymPy or SciPy load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amsgd.core import checks
from amsgd.core.errors import ProblemError

#: Largest delay the linear numerics accept (dense companion matrices, O(τ³) work: seconds at this
#: size; :mod:`.linear_recursion`).
MAX_DELAY = 2000
#: Largest lag of a geometric law's table (``geometric:MEAN`` up to a mean of about 723, ``ps:M`` up to
#: 724 workers): its mean dynamics and second moments come from 3 × 3 systems, and the rest of the theory
#: runs over its lags in O(lags) memory and O(lags log lags) work (``derive --delay geometric:700``:
#: 22 s, 1.9 GB, most of it the divergence risk's ring of past states).
MAX_GEOMETRIC_DELAY = 20_000

#: The phases switch when h_1² crosses δ² (escape) and 1 − δ² (travel).
DEFAULT_DELTA_SQ = 0.1
#: Default accuracy ε of the convergence phase, as a multiple of the stationary error floor
#: (:func:`default_epsilon`).
DEFAULT_EPSILON_FACTOR = 2.0
#: γ of the quoted delay conditions, in (0, 1/2] so that it is valid for both.
DEFAULT_GAMMA = 0.25
#: Momenta at which τ* is tabulated against 1 − μ (those of the published experiment).
SCALING_MUS = (0.7, 0.8, 0.85, 0.9, 0.95)
#: Default grid of the momentum–asynchrony tradeoff (round-robin workers, τ = M − 1).
TRADEOFF_MUS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
TRADEOFF_WORKERS = (1, 2, 4, 8, 16, 32, 64)
#: Iterations per run of the divergence risk (the default run length of ``amsgd simulate``).
DEFAULT_STEPS = 10_000


def default_epsilon(floor: float, settles_at: float) -> float:
    """The convergence phase's target ε when none is given: ``DEFAULT_EPSILON_FACTOR`` times the
    diffusion ``floor`` F where that lies strictly between the error F' the iteration settles at,
    ``settles_at`` (the finite-η floor where known, else F; a given ε must exceed it), and the midpoint
    (1 + F')/2 of F' and the error 1 of a start at a saddle; otherwise that midpoint. The error sin²
    never exceeds 1: 2F is no target from F = 1/2 on, and from about F = 1/3 on it lies nearer 1
    than the floor."""
    target = DEFAULT_EPSILON_FACTOR * floor
    midpoint = (1.0 + settles_at) / 2.0
    return target if settles_at < target < midpoint else midpoint


@dataclass(frozen=True)
class PredictOptions:
    """``delta_sq`` (phase boundary δ²), ``epsilon`` (target error of phase III; None:
    :func:`default_epsilon`), ``gamma`` (of the quoted delay conditions), the tradeoff grid (momenta, worker counts) and
    ``steps``, the run length the divergence risk is stated for."""

    delta_sq: float = DEFAULT_DELTA_SQ
    epsilon: float | None = None
    gamma: float = DEFAULT_GAMMA
    tradeoff_mus: tuple[float, ...] = TRADEOFF_MUS
    tradeoff_workers: tuple[int, ...] = TRADEOFF_WORKERS
    steps: int = DEFAULT_STEPS

    def __post_init__(self) -> None:
        if not _finite(self.delta_sq) or not 0 < self.delta_sq < 0.5:
            raise ProblemError(f"delta_sq (δ², the phase boundary) must satisfy 0 < δ² < 1/2, got {self.delta_sq!r}")
        if self.epsilon is not None and (not _finite(self.epsilon) or not 0 < self.epsilon < 1):
            raise ProblemError(f"epsilon (the target error) must satisfy 0 < ε < 1, got {self.epsilon!r}")
        if not _finite(self.gamma) or not 0 < self.gamma <= 0.5:
            raise ProblemError(f"gamma must satisfy 0 < gamma <= 1/2 (valid for both conditions), got {self.gamma!r}")
        mus = _as_tuple(self.tradeoff_mus)
        if not mus or any(not _finite(m) or not -1 < m < 1 for m in mus):
            raise ProblemError(f"tradeoff momenta must be a non-empty list in (-1, 1) ([0, 1) for streaming PCA), "
                               f"got {self.tradeoff_mus!r}")  # fmt: skip
        workers = _as_tuple(self.tradeoff_workers)
        if not workers or any(not checks.is_whole_number(m) or m < 1 for m in workers):
            raise ProblemError(f"tradeoff workers must be a non-empty list of integers >= 1, got {self.tradeoff_workers!r}")
        if max(workers) - 1 > MAX_DELAY:
            raise ProblemError(f"tradeoff workers: {max(workers)} round-robin workers are a delay of {max(workers) - 1}, "
                               f"beyond the {MAX_DELAY} the linear numerics support; give at most {MAX_DELAY + 1}")  # fmt: skip
        steps = checks.positive_int("steps (the run length of the divergence risk)", self.steps)
        object.__setattr__(self, "delta_sq", float(self.delta_sq))  # NumPy scalars stored as floats: JSON writes them
        object.__setattr__(self, "epsilon", None if self.epsilon is None else float(self.epsilon))
        object.__setattr__(self, "gamma", float(self.gamma))
        object.__setattr__(self, "tradeoff_mus", tuple(float(m) for m in mus))
        object.__setattr__(self, "tradeoff_workers", tuple(int(m) for m in workers))
        object.__setattr__(self, "steps", steps)


def _as_tuple(values: object) -> tuple:
    """A list option as a tuple; anything that is not a list becomes ``()``, refused as empty."""
    try:
        return tuple(values)  # type: ignore[arg-type]
    except TypeError:
        return ()


def _finite(x: object) -> bool:
    return checks.is_number(x) and math.isfinite(x)
