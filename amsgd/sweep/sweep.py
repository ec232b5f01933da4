"""A parameter sweep of Async-MSGD: a base problem, a grid of (distribution, η, μ, τ or M), the
simulation options, and what one grid point computes.

Each point stores the simulated error with 95% confidence intervals and, beside it, the
predictions of :func:`amsgd.predict` at that point: the diffusion floor, the exact linearised
floor at that η, μ and τ, and the largest stable constant delay τ* with the mode that sets it.
The linear modes at e_1 do not depend on η, μ or τ, so they are derived once per distribution
(SymPy, in the client) and shipped with the tasks.

Reproducibility: point number ``n`` (C order over the grid, see :mod:`.grid`) simulates with the
seed ``SeedSequence(seed, spawn_key=(n,))``, the n-th child of ``SeedSequence(seed)``, so the
results do not depend on the number of workers, the scheduling, or on which points an interrupted
run had finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.delays import parse_delay
from amsgd.core.distributions import parse_distribution
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.core.seeding import child_sequence
from amsgd.simulate.plan import DIVERGENCE_NORM, make_plan, recording_grid
from amsgd.sweep.grid import GridPoint, SweepGrid
from amsgd.sweep.store import canonical

if TYPE_CHECKING:
    from amsgd.diffusion.theory.modes import OptimumModes

#: Bumped when the meaning of a stored point changes, so old parts are never mixed with new ones.
FORMAT_VERSION = 2

ESTIMATES = ("final_error", "stationary_error")

#: The keys of a point's record: what :func:`compute_point` returns and the Dataset is assembled
#: from. A stored point without one of them is computed again on resuming.
RECORD_FIELDS = (
    "index",
    *ESTIMATES,
    "replicates_kept",
    "diverged_fraction",
    "error_mean",
    "diffusion_floor",
    "linearized_floor",
    "tau_max",
    "limiting_mode",
    "stationary",
)


@dataclass(frozen=True, eq=False)
class Sweep:
    """A sweep: the base problem, the grid, the seed and the simulation options, validated.

    ``problem`` supplies Σ; the grid sets the distribution, η, μ and the delay of every point.
    ``record_every`` and ``window_start`` are resolved here (defaults of
    :func:`~amsgd.simulate.engine.simulate`: ``steps // 100`` and ``floor(window · steps)``).
    """

    problem: Problem
    grid: SweepGrid
    steps: int
    replicates: int
    seed: int
    record_every: int | None = None
    window: float = 0.5
    window_start: int | None = None
    start: str = "e2"
    divergence_norm: float = DIVERGENCE_NORM
    modes: dict[str, OptimumModes | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        checks.integer("seed", self.seed)
        if not isinstance(self.start, str):
            raise ProblemError(f"start must be a string (eJ, random or x1,...,xd), got {self.start!r}")
        plan = make_plan(
            self.problem, self.steps, self.replicates, rng=int(self.seed), record_every=self.record_every,
            start=self.start, window=self.window, window_start=self.window_start,
            divergence_norm=self.divergence_norm,
        )  # fmt: skip
        stride = int(plan.record_at[1] - plan.record_at[0]) if plan.record_at.size > 1 else plan.steps
        longest = max(self.grid.delays) - (self.grid.delay_axis == "workers")  # τ = M − 1 for workers
        checks.warn_delay_longer_than_run(longest, plan.steps)
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "record_every", self.record_every or stride)
        object.__setattr__(self, "window_start", plan.window_start)
        object.__setattr__(self, "modes", {})

    @property
    def iterations(self) -> np.ndarray:
        """The recorded iterations of ``error_mean``: every ``record_every``, 0 and ``steps`` included."""
        return recording_grid(self.steps, self.record_every)

    def point_problem(self, point: GridPoint) -> Problem:
        return self.problem.replace(
            distribution=parse_distribution(point.distribution),
            eta=point.eta,
            mu=point.mu,
            delay=parse_delay(point.delay_spec(self.grid.delay_axis)),
        )

    def seed_sequence(self, index: int) -> np.random.SeedSequence:
        """The random stream of grid point ``index``: the index-th child of ``SeedSequence(seed)``."""
        return child_sequence(np.random.SeedSequence(self.seed), index)

    def manifest(self) -> dict:
        """Everything that determines the results; a resumed sweep must match it exactly."""
        return canonical(
            {
                "format": FORMAT_VERSION,
                "covariance": np.asarray(self.problem.covariance).tolist(),
                "grid": self.grid.to_dict(),
                "steps": self.steps,
                "replicates": self.replicates,
                "seed": self.seed,
                "record_every": self.record_every,
                "window_start": self.window_start,
                "start": self.start,
                "divergence_norm": self.divergence_norm,
            }
        )

    def optimum_modes(self, distribution: str) -> OptimumModes | None:
        """The modes at e_1 for ``distribution``, derived on first use (they do not depend on η, μ, τ);
        None when the theory has no prediction (no eigengap, or infinite fourth moments)."""
        if distribution not in self.modes:
            from amsgd.diffusion.theory import predict

            base = self.problem.replace(distribution=parse_distribution(distribution))
            try:
                self.modes[distribution] = predict(base).modes
            except ProblemError:
                self.modes[distribution] = None
        return self.modes[distribution]

    def task(self, point: GridPoint) -> PointTask:
        """Everything a worker needs to compute ``point``."""
        return PointTask(
            index=point.index,
            problem=self.point_problem(point),
            steps=self.steps,
            replicates=self.replicates,
            seed=self.seed_sequence(point.index),
            record_every=self.record_every,
            window_start=self.window_start,
            start=self.start,
            divergence_norm=self.divergence_norm,
            modes=self.optimum_modes(point.distribution),
        )


@dataclass(frozen=True, eq=False)
class PointTask:
    """One grid point, ready to run on a worker."""

    index: int
    problem: Problem
    steps: int
    replicates: int
    seed: np.random.SeedSequence
    record_every: int
    window_start: int
    start: str
    divergence_norm: float
    modes: OptimumModes | None


def point_predictions(modes: OptimumModes | None, problem: Problem) -> dict:
    """Diffusion and linearised floors, τ* and its limiting mode (number i) at ``problem``'s η, μ, delay,
    from :func:`amsgd.predict` with the modes already derived.

    ``tau_max`` is −1 when even τ = 0 is unstable; every value is NaN (τ* −1, mode 0) without modes.
    """
    if modes is None:
        return {"diffusion_floor": math.nan, "linearized_floor": math.nan, "tau_max": -1, "limiting_mode": 0}
    from amsgd.diffusion.theory import predict

    p = predict(problem, modes=modes)
    tau_max = p.tau_max
    return {
        "diffusion_floor": p.linearized.diffusion_floor,
        "linearized_floor": p.linearized.floor,
        "tau_max": -1 if tau_max is None else int(tau_max),
        "limiting_mode": p.limiting_mode()["i"],
    }


def compute_point(task: PointTask) -> dict:
    """Simulate one grid point and attach the predictions: a JSON-ready record (runs on a worker)."""
    from amsgd.simulate import simulate

    result = simulate(
        task.problem, task.steps, task.replicates, rng=task.seed, record_every=task.record_every,
        start=task.start, window_start=task.window_start, divergence_norm=task.divergence_norm,
        progress=False,
    )  # fmt: skip
    record: dict = {"index": task.index}
    for name in ESTIMATES:
        estimate = getattr(result, name)
        record[name] = [estimate.mean, estimate.ci_low, estimate.ci_high]
    record["replicates_kept"] = int(result.replicates - result.diverged.sum())
    record["diverged_fraction"] = result.diverged_fraction
    record["error_mean"] = result.error_mean.tolist()
    stationary = result.stationarity.stationary  # the window's halves agree (amsgd.core.stationarity.Stationarity)
    record["stationary"] = -1 if stationary is None else int(stationary)
    record.update(point_predictions(task.modes, task.problem))
    return record
