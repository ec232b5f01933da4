"""A parameter sweep of Async-MSGD: a base problem, a grid of ([distribution,] η, μ, τ or M), the
simulation options, and what one grid point computes.

The base problem is streaming PCA (a :class:`~amsgd.core.problem.Problem`, which supplies Σ; the
grid sets the distribution) or any other model (a :class:`~amsgd.core.models.ModelProblem`, which
supplies the loss, the data and the minibatch; its grid has no distribution axis). What differs
between the two (a point's problem, what it computes and records, the manifest entries that identify
the problem, the Dataset's variables) sits behind :class:`~amsgd.sweep.points.PointKind`; the grid,
the tasks, the store and the Dataset's assembly are one code path.

Each point stores the simulated error (PCA) or losses (a model) with 95% confidence intervals and,
beside them, the predictions of the linear theory at that point. What the theory needs does not
depend on η, μ or τ (the linear modes at e_1 for PCA, the Hessian's modes and noise at the minimum
x* for a model), so it is derived once in the client (per distribution for PCA) and shipped with the
tasks.

Reproducibility: point number ``n`` (C order over the grid, see :mod:`.grid`) simulates with the
seed ``SeedSequence(seed, spawn_key=(n,))``, the n-th child of ``SeedSequence(seed)``, so the
results do not depend on the number of workers, the scheduling, or on which points an interrupted
run had finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem
from amsgd.core.problem import Problem
from amsgd.core.seeding import child_sequence
from amsgd.simulate.plan import DIVERGENCE_NORM, recording_grid
from amsgd.sweep.grid import GridPoint, SweepGrid
from amsgd.sweep.points import PcaPoints, PointKind, PointTask, compute_point, point_kind, record_fields
from amsgd.sweep.store import canonical

if TYPE_CHECKING:
    import xarray

    from amsgd.diffusion.theory.modes import OptimumModes

__all__ = ["ESTIMATES", "FORMAT_VERSION", "RECORD_FIELDS", "PointTask", "Sweep", "compute_point"]

#: Bumped when the meaning of a stored point changes, so old parts are never mixed with new ones.
FORMAT_VERSION = 2

#: The estimates of a streaming-PCA point (a model's: :attr:`Sweep.points` ``.estimates``).
ESTIMATES = PcaPoints.estimates

#: The keys of a streaming-PCA point's record: what :func:`compute_point` returns and the Dataset is
#: assembled from (a model's: :attr:`Sweep.fields`). A stored point without one of them is computed
#: again on resuming.
RECORD_FIELDS = record_fields(PcaPoints.estimates, PcaPoints.curve, PcaPoints.predicted)


@dataclass(frozen=True, eq=False)
class Sweep:
    """A sweep: the base problem, the grid, the seed and the simulation options, validated.

    ``problem`` is streaming PCA (it supplies Σ; the grid sets the distribution, η, μ and the delay
    of every point) or a model (it supplies the loss, data, batch, l2, hidden units and activation;
    the grid sets η, μ and the delay, and has no distribution axis). ``record_every`` and
    ``window_start`` are resolved here (defaults of :func:`~amsgd.simulate.engine.simulate`:
    ``steps // 100`` and ``floor(window · steps)``, for a model too; ``window`` is then None); ``start`` defaults to ``e2`` for
    PCA and is ``init`` (each replicate at the model's initialisation) for a model. A copy by
    ``dataclasses.replace`` keeps these resolved values: to change ``steps`` or the window, give
    ``record_every`` and ``window_start`` anew (``replace(s, window=0.3)`` is refused, as a window
    beside a window start is).
    """

    problem: Problem | ModelProblem
    grid: SweepGrid
    steps: int
    replicates: int
    seed: int
    record_every: int | None = None
    window: float | None = None
    window_start: int | None = None
    start: str | None = None
    divergence_norm: float = DIVERGENCE_NORM
    points: PointKind = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.grid, SweepGrid):
            raise ProblemError(f"grid must be a SweepGrid, got {type(self.grid).__name__}")
        checks.integer("seed", self.seed)  # at most 2^63 - 1: the NetCDF file holds it as a 64-bit integer
        kind = point_kind(self.problem)
        kind.check_grid(self.grid)
        resolved = kind.resolve(self.steps, self.replicates, self.seed, self.record_every, self.window,
                                self.window_start, self.start, self.divergence_norm)  # fmt: skip
        kind.check_memory(self.grid, int(self.steps), int(self.replicates))
        longest = max(self.grid.delays) - (self.grid.delay_axis == "workers")  # τ = M − 1 for workers
        checks.warn_delay_longer_than_run(longest, self.steps, "the grid's longest delay")  # said once
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "record_every", resolved.record_every)
        object.__setattr__(self, "window_start", resolved.window_start)
        object.__setattr__(self, "window", None)  # resolved into window_start
        object.__setattr__(self, "start", resolved.start)
        object.__setattr__(self, "points", kind)

    @property
    def fields(self) -> tuple[str, ...]:
        """The keys of a point's record (:attr:`PointKind.fields`)."""
        return self.points.fields

    @property
    def iterations(self) -> np.ndarray:
        """The recorded iterations of the mean curve: every ``record_every``, 0 and ``steps`` included."""
        return recording_grid(self.steps, self.record_every)

    def point_problem(self, point: GridPoint) -> Problem | ModelProblem:
        return self.points.problem_at(point, self.grid.delay_axis)

    def seed_sequence(self, index: int) -> np.random.SeedSequence:
        """The random stream of grid point ``index``: the index-th child of ``SeedSequence(seed)``."""
        return child_sequence(np.random.SeedSequence(self.seed), index)

    def manifest(self) -> dict:
        """Everything that determines the results; a resumed sweep must match it exactly.

        The problem's entries come from :meth:`PointKind.manifest`: Σ for PCA; for a model its name,
        batch, l2 (hidden units and activation for the MLP) and the SHA-256 of its training and
        validation arrays."""
        return canonical(
            {
                "format": FORMAT_VERSION,
                **self.points.manifest(),
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

    def theory(self, distribution: str | None = None) -> object:
        """What the predictions need (:meth:`PointKind.theory`), derived once, in this process."""
        return self.points.theory(distribution)

    def unpredicted_reasons(self) -> dict[str | None, str]:
        """Why the theory has no prediction, per distribution of the grid (None for a model), where it has
        none: derived here where no point was computed in this process (a finished or fully stored sweep
        resumed), so that the reason is the theory's own."""
        for distribution in self.grid.distributions or (None,):
            self.theory(distribution)
        return dict(self.points.missing)

    def optimum_modes(self, distribution: str) -> OptimumModes | None:
        """The modes at e_1 of a streaming-PCA sweep for ``distribution``, derived on first use (they do
        not depend on η, μ, τ); None when the theory has no prediction (no eigengap, or infinite
        fourth moments)."""
        return self.theory(distribution)

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
            theory=self.theory(point.distribution),
        )

    # What :func:`~amsgd.sweep.run.run_sweep` runs (a :class:`~amsgd.sweep.run.Job`): a task per grid point.

    @property
    def size(self) -> int:
        return self.grid.size

    @property
    def task_work(self) -> int:
        return self.replicates * self.steps

    @property
    def compute(self) -> Callable[[PointTask], dict]:
        return compute_point

    def tasks(self, indices: Iterable[int]) -> list[PointTask]:
        wanted = set(indices)
        return [self.task(p) for p in self.grid.points() if p.index in wanted]

    def assemble(self, records: Mapping[int, dict]) -> xarray.Dataset:
        from amsgd.sweep.dataset import assemble

        return assemble(self, records)

    def read(self, path: Path) -> xarray.Dataset:
        from amsgd.sweep.dataset import read_dataset

        return read_dataset(path)
