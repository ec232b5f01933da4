"""Parameter sweeps of Async-MSGD on Dask: Monte Carlo and predictions over a grid of (η, μ, τ).

A :class:`Sweep` is a base problem (Σ), a :class:`~amsgd.simulate.grid.SweepGrid` of data
distributions × step sizes η × momenta μ × constant delays τ (or round-robin worker counts M, with
τ = M − 1) and the options of :func:`~amsgd.simulate.engine.simulate`. :func:`run_sweep` runs one
Dask task per grid point and writes an xarray Dataset with the dimensions ``eta``, ``mu`` and
``tau`` (or ``workers``), plus ``distribution`` when more than one is swept.

Each point stores the simulated error with 95% confidence intervals and, beside it, the
predictions of the linear theory at e_1 (THEORY.md section 5): the diffusion floor
``Σ η s_i² / (2 a_i (1 − μ))``, the exact linearised floor at that η, μ and τ, and the largest
stable constant delay τ* with the mode that sets it. The mode rates ``a_i`` and noise variances
``s_i²`` do not depend on η, μ or τ, so they are derived once per distribution (SymPy, in the
client) and shipped with the tasks.

Reproducibility: point number ``n`` (C order over the grid, see :mod:`.grid`) simulates with the
seed ``SeedSequence(seed, spawn_key=(n,))``, the n-th child of ``SeedSequence(seed)``, so the
results do not depend on the number of workers, the scheduling, or on which points an interrupted
run had finished. Finished points are persisted one file each as they arrive
(:class:`~amsgd.simulate.store.PartStore`); a resumed sweep computes only the missing ones and
assembles exactly the Dataset an uninterrupted run writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from amsgd.distributions import parse_distribution
from amsgd.errors import ProblemError
from amsgd.simulate.delays import parse_delay
from amsgd.simulate.engine import DIVERGENCE_NORM, make_plan
from amsgd.simulate.grid import GridPoint, SweepGrid
from amsgd.simulate.store import PartStore, canonical

if TYPE_CHECKING:
    import xarray

    from amsgd.problem import Problem

#: Bumped when the meaning of a stored point changes, so old parts are never mixed with new ones.
FORMAT_VERSION = 1
#: Dask retries of a task that raised; a task whose worker died is rescheduled by the scheduler
#: (up to ``distributed.scheduler.allowed-failures`` times) independently of this.
RETRIES = 3

_ESTIMATES = ("final_error", "stationary_error")


@dataclass(frozen=True)
class LinearModes:
    """The linear modes at e_1 for one distribution: numbers ``i``, kinds, rates ``a_i``, noise ``s_i²``."""

    numbers: tuple[int, ...]
    kinds: tuple[str, ...]
    rates: tuple[float, ...]
    noise_variances: tuple[float, ...]

    def to_dict(self) -> dict:
        return {
            "i": list(self.numbers),
            "kind": list(self.kinds),
            "rate": list(self.rates),
            "noise_variance": list(self.noise_variances),
        }


def optimum_modes(problem: Problem) -> LinearModes | None:
    """The modes at e_1 from the derivation engine; None when it has no prediction for ``problem``
    (no eigengap, or infinite fourth moments)."""
    from amsgd.derivations import derive

    try:
        modes = derive(problem).optimum_modes
    except ProblemError:
        return None
    return LinearModes(
        numbers=tuple(int(m.i) for m in modes.modes),
        kinds=tuple(m.kind for m in modes.modes),
        rates=tuple(float(a) for a in modes.rates),
        noise_variances=tuple(float(s) for s in modes.noise_variances),
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
    modes: dict[str, LinearModes | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ProblemError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.start, str):
            raise ProblemError(f"start must be a string (eJ, random or x1,...,xd), got {self.start!r}")
        plan = make_plan(
            self.problem, self.steps, self.replicates, rng=int(self.seed), record_every=self.record_every,
            start=self.start, window=self.window, window_start=self.window_start,
            divergence_norm=self.divergence_norm,
        )  # fmt: skip
        stride = int(plan.record_at[1] - plan.record_at[0]) if plan.record_at.size > 1 else plan.steps
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "record_every", self.record_every or stride)
        object.__setattr__(self, "window_start", plan.window_start)
        object.__setattr__(self, "modes", {})

    @property
    def iterations(self) -> np.ndarray:
        """The recorded iterations of ``error_mean``: every ``record_every``, 0 and ``steps`` included."""
        at = np.arange(0, self.steps + 1, self.record_every, dtype=np.int64)
        return at if at[-1] == self.steps else np.append(at, np.int64(self.steps))

    def point_problem(self, point: GridPoint) -> Problem:
        return self.problem.replace(
            distribution=parse_distribution(point.distribution),
            eta=point.eta,
            mu=point.mu,
            delay=parse_delay(point.delay_spec(self.grid.delay_axis)),
        )

    def seed_sequence(self, index: int) -> np.random.SeedSequence:
        """The random stream of grid point ``index``: the index-th child of ``SeedSequence(seed)``."""
        return np.random.SeedSequence(self.seed, spawn_key=(int(index),))

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

    def optimum_modes(self, distribution: str) -> LinearModes | None:
        """The modes at e_1 for ``distribution``, derived on first use (they do not depend on η, μ, τ)."""
        if distribution not in self.modes:
            base = self.problem.replace(distribution=parse_distribution(distribution))
            self.modes[distribution] = optimum_modes(base)
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
    modes: LinearModes | None


def predictions(modes: LinearModes | None, problem: Problem) -> dict:
    """Diffusion and linearised floors, τ* and its limiting mode (number i) at ``problem``'s η, μ, delay.

    ``tau_max`` is −1 when even τ = 0 is unstable; every value is NaN (τ* −1, mode 0) without modes.
    """
    from amsgd.diffusion.error_floor import linearized_floor
    from amsgd.diffusion.stability import stability_report

    if modes is None:
        return {"diffusion_floor": math.nan, "linearized_floor": math.nan, "tau_max": -1, "limiting_mode": 0}
    floor = linearized_floor(modes.rates, modes.noise_variances, problem.eta, problem.mu, problem.delay)
    report = stability_report(modes.rates, problem.eta, problem.mu, 0)
    return {
        "diffusion_floor": floor.diffusion_floor,
        "linearized_floor": floor.floor,
        "tau_max": -1 if report.tau_max is None else int(report.tau_max),
        "limiting_mode": modes.numbers[report.limiting_mode],
    }


def compute_point(task: PointTask) -> dict:
    """Simulate one grid point and attach the predictions: a JSON-ready record (runs on a worker)."""
    from amsgd.simulate.engine import simulate

    result = simulate(
        task.problem, task.steps, task.replicates, rng=task.seed, record_every=task.record_every,
        start=task.start, window_start=task.window_start, divergence_norm=task.divergence_norm,
        progress=False,
    )  # fmt: skip
    record: dict = {"index": task.index}
    for name in _ESTIMATES:
        estimate = getattr(result, name)
        record[name] = [estimate.mean, estimate.ci_low, estimate.ci_high]
    record["replicates_kept"] = int(result.replicates - result.diverged.sum())
    record["diverged_fraction"] = result.diverged_fraction
    record["error_mean"] = result.error_mean.tolist()
    record.update(predictions(task.modes, task.problem))
    return record


_DESCRIPTIONS = {
    "point": "grid point number n; its random stream is SeedSequence(seed, spawn_key=(n,))",
    "final_error": "mean over non-diverged replicates of sin^2 of the angle to e_1 at the last iteration",
    "stationary_error": "mean over non-diverged replicates of each replicate's time average of sin^2 "
    "over window_start <= k <= steps",
    "replicates_kept": "replicates that did not diverge",
    "diverged_fraction": "fraction of replicates that diverged (excluded from every mean)",
    "error_mean": "mean error at each recorded iteration over the replicates that never diverged",
    "diffusion_floor": "leading-order diffusion limit of the stationary error, sum_i eta s_i^2 / (2 a_i (1 - mu))",
    "linearized_floor": "exact stationary error of the linearised recursion at this eta, mu and delay "
    "(inf: not mean-square stable)",
    "tau_max": "largest stable constant delay tau* at this eta and mu (-1: none)",
    "limiting_mode": "mode number i at e_1 that sets tau_max (see attribute modes; 0: no prediction)",
}


def assemble(sweep: Sweep, records: Mapping[int, dict]) -> xarray.Dataset:
    """The sweep's Dataset from one record per grid point (all points must be present)."""
    import xarray as xr

    grid = sweep.grid
    shape, dims = grid.shape, grid.dims
    ordered = [records[i] for i in range(grid.size)]

    def field_array(name: str, position: int | None = None, dtype: type = float) -> np.ndarray:
        values = [r[name] if position is None else r[name][position] for r in ordered]
        return np.array(values, dtype=dtype).reshape(shape)

    data: dict = {"point": (dims, np.arange(grid.size, dtype=np.int64).reshape(shape))}
    for name in _ESTIMATES:
        data[name] = (dims, field_array(name, 0))
        data[f"{name}_ci_low"] = (dims, field_array(name, 1))
        data[f"{name}_ci_high"] = (dims, field_array(name, 2))
    data["replicates_kept"] = (dims, field_array("replicates_kept", dtype=np.int64))
    data["diverged_fraction"] = (dims, field_array("diverged_fraction"))
    iterations = sweep.iterations
    curves = np.array([r["error_mean"] for r in ordered], dtype=float).reshape(shape + (iterations.size,))
    data["error_mean"] = ((*dims, "iteration"), curves)
    for name in ("diffusion_floor", "linearized_floor"):
        data[name] = (dims, field_array(name))
    for name in ("tau_max", "limiting_mode"):
        data[name] = (dims, field_array(name, dtype=np.int64))

    coords = dict(zip(dims, (np.array(axis) for axis in grid.axes), strict=True))
    coords["iteration"] = iterations
    ds = xr.Dataset(data, coords=coords)
    for name, text in _DESCRIPTIONS.items():
        ds[name].attrs["description"] = text
    for name in _ESTIMATES:
        for bound in ("ci_low", "ci_high"):
            ds[f"{name}_{bound}"].attrs["description"] = f"{bound[3:]} end of the 95% Student-t interval of {name}"
    ds["tau" if grid.delay_axis == "tau" else "workers"].attrs.update(
        {"units": "iterations", "long_name": "constant delay tau"}
        if grid.delay_axis == "tau"
        else {"units": "workers", "long_name": "round-robin workers M (delay tau = M - 1)"}
    )
    ds["iteration"].attrs["units"] = "iterations"
    ds["eta"].attrs["long_name"] = "step size eta"
    ds["mu"].attrs["long_name"] = "momentum mu"
    ds.attrs.update(
        title="amsgd sweep: Async-MSGD on streaming PCA, simulated and predicted",
        manifest=json.dumps(sweep.manifest()),
        problem=json.dumps({**sweep.problem.to_dict(), "distribution": None, "eta": None, "mu": None, "delay": None}),
        modes=json.dumps({d: (m.to_dict() if (m := sweep.optimum_modes(d)) else None) for d in grid.distributions}),
        confidence="95% Student-t intervals across non-diverged replicates",
        seeding="point n simulates with numpy SeedSequence(seed, spawn_key=(n,))",
        steps=sweep.steps,
        replicates=sweep.replicates,
        seed=sweep.seed,
        window_start=sweep.window_start,
        start=sweep.start,
    )
    if len(grid.distributions) == 1:
        ds = ds.isel(distribution=0)  # keeps the distribution as a scalar coordinate
    return ds


def write_dataset(ds: xarray.Dataset, out: Path) -> None:
    """Write ``ds`` to NetCDF (h5netcdf) at ``out`` through a temporary file and a rename."""
    tmp = out.with_name(f".{out.name}.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)


def read_dataset(path: str | os.PathLike) -> xarray.Dataset:
    """Load a sweep file into memory (the file is closed on return)."""
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


@dataclass(frozen=True, eq=False)
class SweepOutcome:
    """What :func:`run_sweep` did: the Dataset written to ``path``, and how many points it computed."""

    path: Path
    dataset: xarray.Dataset
    points: int
    computed: int
    reused: int
    elapsed: float

    def summary(self) -> dict:
        return {
            "out": str(self.path),
            "points": self.points,
            "computed": self.computed,
            "reused": self.reused,
            "dims": {k: int(v) for k, v in self.dataset.sizes.items() if k != "iteration"},
            "elapsed_seconds": self.elapsed,
        }


PointCallback = Callable[[int, dict], None]


def run_sweep(
    sweep: Sweep,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    retries: int = RETRIES,
    progress: bool | None = None,
    on_point: PointCallback | None = None,
    compute: Callable[[PointTask], dict] = compute_point,
) -> SweepOutcome:
    """Run ``sweep`` on Dask, persisting each point as it finishes, and write the Dataset to ``out``.

    The tasks run on ``client`` when given, else on a client to ``scheduler`` (``tcp://HOST:PORT``),
    else on a new local cluster of ``n_workers`` processes (default: one per core). Finished points
    go to ``out + ".parts/"``; the Dataset is written (atomically) when all are done, and the parts
    are then removed.

    ``resume=False`` refuses an existing ``out`` or parts directory. ``resume=True`` continues the
    stored sweep, computing only the missing points, and refuses if the stored manifest (grid,
    problem, seed, options) differs from ``sweep``'s; with nothing stored it starts afresh.
    A task that raises is retried ``retries`` times. ``on_point(index, record)`` is called in this
    process after each point is persisted; ``compute`` is the function run per point (default
    :func:`compute_point`; a replacement must be importable or picklable on the workers).
    ``progress`` shows a bar of points done and time left (default: when stderr is a terminal).
    """
    began = time.perf_counter()
    out = Path(out)
    if not out.parent.is_dir():
        raise ProblemError(f"--out directory {str(out.parent)!r} does not exist")
    store = PartStore(out)
    manifest = sweep.manifest()
    if not resume and (out.exists() or store.exists):
        existing = out if out.exists() else store.directory
        raise ProblemError(f"{existing} exists; pass --resume to continue that sweep, or choose another --out")
    if resume and not store.exists and out.exists():
        finished = read_dataset(out)
        _check_manifest(json.loads(finished.attrs.get("manifest", "{}")), manifest, out)
        total = sweep.grid.size
        return SweepOutcome(out, finished, total, 0, total, time.perf_counter() - began)
    done: set[int] = set()
    if store.exists:
        _check_manifest(store.manifest(), manifest, store.directory)
        done = store.done()
    pending = [p for p in sweep.grid.points() if p.index not in done]
    if pending:
        tasks = [sweep.task(p) for p in pending]  # derives the modes here, once per distribution
        if progress is None:
            progress = sys.stderr.isatty()
        if client is not None:
            connection = contextlib.nullcontext(client)
        else:
            from amsgd.simulate.cluster import dask_client

            connection = dask_client(scheduler, n_workers)
        with connection as active:
            if not store.exists:  # only once there is somewhere to run: a failed start leaves nothing
                store.create(manifest)
            _run_tasks(active, tasks, store, retries, progress, len(done), sweep.grid.size, on_point, compute)

    ds = assemble(sweep, {i: store.read(i) for i in range(sweep.grid.size)})
    write_dataset(ds, out)
    store.remove()
    return SweepOutcome(out, ds, sweep.grid.size, len(pending), len(done), time.perf_counter() - began)


def _check_manifest(stored: dict, wanted: dict, where: Path) -> None:
    if stored != wanted:
        keys = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise ProblemError(
            f"cannot resume {where}: the stored sweep differs in {', '.join(keys)}; "
            "rerun with the same options or choose another --out"
        )


def _run_tasks(
    client,
    tasks: list[PointTask],
    store: PartStore,
    retries: int,
    progress: bool,
    done: int,
    total: int,
    on_point: PointCallback | None,
    compute: Callable[[PointTask], dict],
) -> None:
    """Submit one task per point and persist each result as it arrives."""
    from distributed import as_completed
    from tqdm import tqdm

    run = uuid.uuid4().hex[:12]  # fresh keys per run: never the cancelled tasks of an interrupted run
    futures = [
        client.submit(compute, task, key=f"amsgd-sweep-{run}-{task.index}", retries=retries, pure=False)
        for task in tasks
    ]
    bar = tqdm(total=total, initial=done, unit="point", desc="sweep", file=sys.stderr, disable=not progress)
    try:
        for future in as_completed(futures):
            record = future.result()
            store.write(record["index"], record)
            future.release()
            bar.update(1)
            if on_point is not None:
                on_point(record["index"], record)
    finally:
        bar.close()
        client.cancel([f for f in futures if not f.done()])
