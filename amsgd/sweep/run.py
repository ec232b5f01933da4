"""Run a sweep on Dask: one task per grid point, each persisted as it arrives, then the Dataset.

Finished points are persisted one file each (:class:`~amsgd.sweep.store.PartStore`); a resumed
sweep computes only the missing ones and assembles exactly the Dataset an uninterrupted run writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from amsgd.core.errors import ProblemError
from amsgd.core.files import check_output_file
from amsgd.sweep.dataset import assemble, read_dataset, write_dataset
from amsgd.sweep.store import PartStore
from amsgd.sweep.sweep import PointTask, Sweep, compute_point

if TYPE_CHECKING:
    import xarray

#: Dask retries of a task that raised; a task whose worker died is rescheduled by the scheduler
#: (up to ``distributed.scheduler.allowed-failures`` times) independently of this.
RETRIES = 3


@dataclass(frozen=True, eq=False)
class SweepOutcome:
    """What :func:`run_sweep` did: the Dataset written to ``path``, and how many points it computed."""

    path: Path
    dataset: xarray.Dataset
    points: int
    computed: int
    reused: int
    elapsed: float

    def to_dict(self) -> dict:
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
    out = check_output_file(out)
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
        execution = _Execution(client, scheduler, n_workers, retries, progress, on_point, compute)
        _compute_pending(sweep, pending, store, manifest, len(done), execution)
    ds = assemble(sweep, {i: store.read(i) for i in range(sweep.grid.size)})
    write_dataset(ds, out)
    store.remove()
    return SweepOutcome(out, ds, sweep.grid.size, len(pending), len(done), time.perf_counter() - began)


@dataclass(frozen=True)
class _Execution:
    """Where and how the tasks run (the options of :func:`run_sweep`)."""

    client: object
    scheduler: str | None
    n_workers: int | None
    retries: int
    progress: bool | None
    on_point: PointCallback | None
    compute: Callable[[PointTask], dict]


def _compute_pending(sweep: Sweep, pending: list, store: PartStore, manifest: dict, done: int, run: _Execution) -> None:
    """Connect to Dask (or start a local cluster), create the store, and compute the pending points."""
    tasks = [sweep.task(p) for p in pending]  # derives the modes here, once per distribution
    progress = sys.stderr.isatty() if run.progress is None else run.progress
    if run.client is not None:
        connection = contextlib.nullcontext(run.client)
    else:
        from amsgd.sweep.cluster import dask_client

        connection = dask_client(run.scheduler, run.n_workers)
    with connection as active:
        if not store.exists:  # only once there is somewhere to run: a failed start leaves nothing
            store.create(manifest)
        _run_tasks(active, tasks, store, run.retries, progress, done, sweep.grid.size, run.on_point, run.compute)


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
