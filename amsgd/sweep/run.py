"""Run a sweep on Dask: one task per grid point, each persisted as it arrives, then the Dataset.

Finished points are persisted one file each (:class:`~amsgd.sweep.store.PartStore`); a resumed
sweep computes only the missing ones and assembles exactly the Dataset an uninterrupted run writes.

A resumed sweep repairs what an interruption or a faulty disk left behind, saying so in one line on
stderr each time: a damaged or incomplete point, or one computed for another sweep, is deleted and
computed again; a damaged ``manifest.json`` is rebuilt from the sweep being resumed (unless every
sound point stored belongs to another sweep: then the resume is refused); a finished ``FILE.nc``
that cannot be read is written again, from the parts when they are still there, else by computing
the sweep again (the results do not depend on the run). A failed write (a full disk) ends the run
with one line; what was stored stays, and ``--resume`` continues from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.files import check_output_file, plain_reason
from amsgd.core.progress import counter, stage
from amsgd.sweep.cluster import CONNECT_TIMEOUT
from amsgd.sweep.dataset import UnreadableSweepFile, write_dataset
from amsgd.sweep.store import DamagedFile, ForeignPart, PartStore, reporting_write_errors

if TYPE_CHECKING:
    import xarray

#: Replicate-steps up to which a local cluster runs its workers as threads when not told (above, as
#: processes). Threads start in milliseconds where worker processes take seconds (each imports NumPy,
#: numba and the kernels), but the per-point Python work (predictions, records) holds the GIL.
#: Measured on 2 cores (benchmarks/bench_sweep.py, docs/sweep.md): a 10-point sweep of 2 000 × 64
#: replicate-steps took 0.4 s on threads against 2.3 s on processes; on Σ = diag(4, 3, 2, 1) 200 points
#: of 40 000 × 256 took 11.5 s on two threads and 11.8 s on two processes (of 10 000 × 256, 4.0 s and
#: 5.2 s), while at d = 100, where a point's predictions take about as long as its simulation,
#: processes were 15% faster. The rule pays the processes' start-up only where the work makes it
#: small. A model's sweep uses the same rule; its JAX points ran faster on threads at every size
#: measured, up to 4e6 replicate-steps (docs/sweep.md: 30.7 s on two threads against 48.5 s on two
#: processes for 6 points of 64 × 10 000 on digits).
THREADS_MAX_WORK = 100_000_000

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

    @property
    def all_diverged(self) -> int:
        """The points at which every replicate diverged (their estimates are NaN)."""
        if "diverged_fraction" not in self.dataset:
            return 0
        return int((self.dataset["diverged_fraction"] == 1.0).sum())

    @property
    def unpredicted(self) -> int:
        """The points without a prediction (their predicted floor is NaN: the theory refused them)."""
        floors = [name for name in ("linearized_floor", "loss_floor") if name in self.dataset]
        return int(self.dataset[floors[0]].isnull().sum()) if floors else 0

    def to_dict(self) -> dict:
        return {
            "out": str(self.path),
            "points": self.points,
            "computed": self.computed,
            "reused": self.reused,
            "all_diverged": self.all_diverged,
            "dims": {k: int(v) for k, v in self.dataset.sizes.items() if k != "iteration"},
            "elapsed_seconds": self.elapsed,
        }


PointCallback = Callable[[int, dict], None]


@runtime_checkable
class Job(Protocol):
    """What :func:`run_sweep` runs: ``size`` numbered tasks, each computed on a worker into a JSON-ready
    record, persisted one file each, and assembled into one Dataset. A
    :class:`~amsgd.sweep.sweep.Sweep` is one (a task per grid point); the validation of the
    deep-network experiment is another (a task per cell, :mod:`amsgd.validation.paper_dnn_runs`)."""

    @property
    def fields(self) -> tuple[str, ...]:
        """The keys of a record (a stored record without one of them is computed again)."""

    @property
    def size(self) -> int:
        """The number of tasks, numbered 0 .. size − 1."""

    @property
    def task_work(self) -> int:
        """Replicate-steps of one task (threads or processes for a local cluster, :data:`THREADS_MAX_WORK`)."""

    @property
    def compute(self) -> Callable:
        """The function run per task on a worker: task → record (importable, so that workers find it)."""

    def manifest(self) -> dict:
        """Everything that determines the results: a resumed run must present the same."""

    def tasks(self, indices: Iterable[int]) -> list:
        """The tasks numbered ``indices`` (objects with an ``index``), ready to ship to the workers."""

    def assemble(self, records: Mapping[int, dict]) -> xarray.Dataset:
        """The Dataset from every task's record."""

    def read(self, path: Path) -> xarray.Dataset:
        """Load a finished run's file (:class:`~amsgd.sweep.dataset.UnreadableSweepFile` if it cannot be read)."""


def run_sweep(
    sweep: Job,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    local_processes: bool | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    retries: int = RETRIES,
    progress: bool | None = None,
    on_point: PointCallback | None = None,
    compute: Callable | None = None,
) -> SweepOutcome:
    """Run ``sweep`` (a :class:`~amsgd.sweep.sweep.Sweep`, or any :class:`Job`) on Dask, persisting each
    point as it finishes, and write the Dataset to ``out``.

    The tasks run on ``client`` when given, else on a client to ``scheduler`` (``tcp://HOST:PORT``,
    refused when it does not answer within ``connect_timeout`` seconds),
    else on a new local cluster of ``n_workers`` workers (default: one per core; threads of this
    process, or worker processes when ``local_processes``; None chooses by the work, see
    :data:`THREADS_MAX_WORK`; :func:`~amsgd.sweep.cluster.dask_client`). Finished points
    go to ``out + ".parts/"``; the Dataset is written (atomically) when all are done, read back and
    checked, and the parts are then removed.

    ``resume=False`` refuses an existing ``out`` or parts directory. ``resume=True`` continues the
    stored sweep, computing only the missing points, and refuses if the stored manifest (grid,
    problem, seed, options) differs from ``sweep``'s; with nothing stored it starts afresh. Damaged
    files found on resuming are named on stderr and repaired (see the module's description).
    A write that fails (a full disk) raises :class:`ProblemError`; ``resume=True`` then continues.
    A task that raises is retried ``retries`` times. ``on_point(index, record)`` is called in this
    process after each point is persisted; ``compute`` is the function run per point (default
    ``sweep.compute``, :func:`~amsgd.sweep.points.compute_point` for a sweep; a replacement must be
    importable or picklable on the workers).
    ``progress`` counts the points done in the running command's progress, or outside a command on a
    bar of its own (None: when stderr is a terminal; see :mod:`amsgd.core.progress`).
    """
    began = time.perf_counter()
    if not isinstance(sweep, Job):
        raise ProblemError(f"run_sweep runs a Sweep (amsgd.sweep.Sweep), got {type(sweep).__name__}")
    if not checks.is_whole_number(retries) or retries < 0:
        raise ProblemError(f"retries must be an integer >= 0, got {retries!r}")
    _check_execution(client, local_processes, progress, on_point, compute)
    out = check_output_file(out)
    with _sole_writer(out):
        manifest = sweep.manifest()
        store = PartStore(out, manifest=manifest, fields=sweep.fields)
        if store.directory.exists() and not store.directory.is_dir():
            raise ProblemError(f"{store.directory} exists and is not a folder; move it away or choose another --out")
        if not resume and (out.exists() or store.exists):
            existing = out if out.exists() else store.directory
            raise ProblemError(f"{existing} exists; pass --resume to continue that sweep, or choose another --out")
        if resume and out.exists():
            finished = _finished_dataset(sweep, out, manifest, store.exists)
            if finished is not None:
                if store.exists:  # left by a run stopped after writing the file, while removing the parts
                    store.remove()
                total = sweep.size
                return SweepOutcome(out, finished, total, 0, total, time.perf_counter() - began)
        with stage("checking the stored points"):
            done = _sound_parts(store, manifest, sweep.size) if store.exists else set()
        if resume:
            store.remove_temporaries()
        pending = [index for index in range(sweep.size) if index not in done]
        if pending:
            execution = _Execution(client, scheduler, n_workers, local_processes, connect_timeout, retries, progress,
                                   on_point, sweep.compute if compute is None else compute)  # fmt: skip
            _compute_pending(sweep, pending, store, manifest, len(done), execution)
        with stage(f"writing {out.name}"):
            ds = sweep.assemble(_stored_records(store, sweep.size))
            _write_checked(sweep, ds, out, store)
            store.remove()
        return SweepOutcome(out, ds, sweep.size, len(pending), len(done), time.perf_counter() - began)


#: Attempts at the lock of :func:`_sole_writer` where each locked file turns out removed by its holder.
LOCK_TRIES = 8


@contextlib.contextmanager
def _sole_writer(out: Path):
    """An exclusive advisory lock (``flock``) on ``.FILE.nc.lock`` beside the file ``out`` resolves to,
    for the whole run, the lock file removed at the end: a second sweep writing to the same file (by
    any name) is refused with one line (both runs passed the checks for an existing file; the second
    then wrote into the first one's parts and removed them, and the first failed with "damaged after it
    was written"). A lock taken on a file the holder had just removed is taken again on the new one.
    Where the system has no ``fcntl`` (Windows) or the file system no ``flock``, runs are not guarded
    (the latter said in a note)."""
    target = out.resolve()
    lock = target.with_name(f".{target.name}.lock")
    handle = _take_lock(lock, out)
    try:
        yield
    finally:
        if handle is not None:
            lock.unlink(missing_ok=True)
            handle.close()


def _take_lock(lock: Path, out: Path):
    """The open ``lock`` file, locked exclusively; None where the system has no ``fcntl`` or (with a
    note) the file system refuses ``flock``. A second holder is refused (ProblemError); a locked file
    that its holder removed on finishing is given up and the one now at the path taken."""
    try:
        import fcntl
    except ImportError:
        return None
    for _ in range(LOCK_TRIES):
        with reporting_write_errors(lock):
            handle = open(lock, "a")  # noqa: SIM115  (held open for the run by the caller)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ProblemError(f"another amsgd sweep is writing {out} (it holds {lock}); wait for it to finish, "
                               "or choose another --out") from None  # fmt: skip
        except OSError as exc:
            handle.close()
            _note(f"cannot lock {lock} ({plain_reason(exc)}); another sweep writing {out} at once would not be refused")
            return None
        if lock.exists() and os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
            return handle
        handle.close()
    raise ProblemError(f"cannot take the lock {lock}: it was replaced {LOCK_TRIES} times in a row")


def _check_execution(client: object, local_processes: object, progress: object, on_point: object,
                     compute: object) -> None:  # fmt: skip
    """Refuse, before anything is stored, options of :func:`run_sweep` that would fail once points run."""
    if client is not None:
        from distributed import Client

        if not isinstance(client, Client):
            raise ProblemError(f"client must be a dask.distributed Client (or None), got {type(client).__name__}")
    for name, value in (("local_processes", local_processes), ("progress", progress)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise ProblemError(f"{name} must be True, False or None, got {value!r}")
    for name, value in (("on_point", on_point), ("compute", compute)):
        if value is not None and not callable(value):
            raise ProblemError(f"{name} must be a function (or None), got {value!r}")


def _note(message: str) -> None:
    """One line on stderr about a file repaired on resuming."""
    print(f"amsgd sweep: {message}", file=sys.stderr, flush=True)


def _finished_dataset(job: Job, out: Path, manifest: dict, parts: bool) -> xarray.Dataset | None:
    """The finished sweep in ``out``; None (and a note) when the file cannot be read (``parts``: whether
    the points are still stored, so that it is written again from them).

    A readable NetCDF file that is not this sweep is refused, never overwritten.
    """
    try:
        finished = job.read(out)
    except UnreadableSweepFile:
        again = "writing it again from the points stored" if parts else "computing the sweep again"
        _note(f"{out} is damaged (it cannot be read as NetCDF); {again}")
        return None
    try:
        stored = json.loads(finished.attrs["manifest"])
    except ValueError:
        stored = {}
    _check_manifest(stored if isinstance(stored, dict) else {}, manifest, out)
    return finished


def _sound_parts(store: PartStore, manifest: dict, size: int) -> set[int]:
    """Check a stored sweep of ``size`` points before resuming it: the points that can be reused.

    A readable manifest that differs from ``manifest`` is refused, as are damaged manifests whose
    sound points all belong to another sweep. Otherwise a damaged manifest is rebuilt, and damaged,
    incomplete and foreign points are deleted (so they are computed again), each with a note, as are
    files numbered beyond the sweep's points (with a note of their own). The store is a folder
    (:func:`run_sweep` refuses anything else first).
    """
    try:
        _check_manifest(store.load_manifest(), manifest, store.directory)
        manifest_problem = None
    except DamagedFile as exc:
        manifest_problem = exc
    sound: set[int] = set()
    damaged: list[tuple[int, DamagedFile]] = []
    stray = sorted(index for index in store.done() if index >= size)
    for index in sorted(store.done() - set(stray)):
        try:
            store.load(index)
            sound.add(index)
        except DamagedFile as exc:
            damaged.append((index, exc))
    foreign = sum(isinstance(exc, ForeignPart) for _, exc in damaged) + len(stray)  # stray: another sweep's
    if manifest_problem is not None and foreign and not sound:
        raise ProblemError(
            f"cannot resume {store.directory}: its {store.manifest_path.name} is damaged "
            f"({manifest_problem.reason}) and none of the points stored there belongs to this sweep; "
            "rerun with the options of the interrupted sweep, or choose another --out"
        )
    if manifest_problem is not None:
        _note(f"{store.manifest_path} is damaged ({manifest_problem.reason}); rebuilding it from this sweep's options")
        store.write_manifest(manifest)
    for index, exc in damaged:
        _note(f"point {index}: {exc.path} is damaged ({exc.reason}); recomputing it")
        store.discard(index)
    for index in stray:
        _note(f"{store.part_path(index)} is no point of this sweep of {size}; removing it")
        store.discard(index)
    return sound


def _stored_records(store: PartStore, size: int) -> dict[int, dict]:
    """The records of all ``size`` points, checked again as they are read for the Dataset."""
    records = {}
    for index in range(size):
        try:
            records[index] = store.load(index)
        except DamagedFile as exc:
            raise ProblemError(
                f"point {index}: {exc.path} was damaged after it was written ({exc.reason}); "
                "check the disk, then run again with --resume to recompute it"
            ) from None
    return records


def _write_checked(job: Job, ds: xarray.Dataset, out: Path, store: PartStore) -> None:
    """Write ``ds`` to ``out`` and read it back: the parts are only removed after this succeeds."""
    with reporting_write_errors(out, "run again with --resume to write it from the points stored"):
        write_dataset(ds, out)
    try:
        ok = job.read(out).identical(ds)
    except ProblemError:
        ok = False
    if not ok:
        raise ProblemError(
            f"{out} does not read back as it was written; the points are kept in {store.directory}: "
            "check the disk, then run again with --resume to write it again"
        )


@dataclass(frozen=True)
class _Execution:
    """Where and how the tasks run (the options of :func:`run_sweep`)."""

    client: object
    scheduler: str | None
    n_workers: int | None
    local_processes: bool | None
    connect_timeout: float
    retries: int
    progress: bool | None
    on_point: PointCallback | None
    compute: Callable


def _compute_pending(sweep: Job, pending: list[int], store: PartStore, manifest: dict, done: int, run: _Execution) -> None:
    """Connect to Dask (or start a local cluster), create the store, and compute the pending points.

    The connection comes first, so that a scheduler that does not answer or a bad worker count is
    refused before the theory is derived (seconds for a model)."""
    if run.client is not None:
        connection = contextlib.nullcontext(run.client)
    else:
        from amsgd.sweep.cluster import dask_client, default_workers

        processes = _use_processes(run.local_processes, len(pending) * sweep.task_work)
        workers = run.n_workers
        if run.scheduler is None and (workers is None or checks.is_whole_number(workers)):
            # a worker per pending point at most: more only take time to start (a bad count is refused there)
            workers = min(default_workers() if workers is None else workers, len(pending))
        connection = dask_client(run.scheduler, workers, timeout=run.connect_timeout, processes=processes)
    with connection as active:
        with stage("preparing the points"):  # a sweep derives its theory here, once (per distribution for PCA)
            tasks = sweep.tasks(pending)
            if not store.exists:  # only once there is somewhere to run: a failed start leaves nothing
                store.create(manifest)
        _run_tasks(active, tasks, store, run.retries, run.progress, done, sweep.size, run.on_point, run.compute)


def _use_processes(local_processes: bool | None, work: int) -> bool:
    """Worker processes for a local cluster: as asked, or when the ``work`` (replicate-steps) exceeds
    :data:`THREADS_MAX_WORK`."""
    return work > THREADS_MAX_WORK if local_processes is None else bool(local_processes)


def _check_manifest(stored: dict, wanted: dict, where: Path) -> None:
    """Refuse to resume a stored sweep whose manifest differs from the one of the sweep given."""
    if stored != wanted:
        keys = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise ProblemError(
            f"cannot resume {where}: the stored sweep differs in {', '.join(keys)}; "
            "rerun with the same options or choose another --out"
        )


def _run_tasks(
    client,
    tasks: list,
    store: PartStore,
    retries: int,
    progress: bool | None,
    done: int,
    total: int,
    on_point: PointCallback | None,
    compute: Callable,
) -> None:
    """Submit one task per point and persist each result as it arrives."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:12]  # fresh keys per run: never the cancelled tasks of an interrupted run
    with counter(total, "points", "sweep", initial=done, show=progress) as count:
        futures = [
            client.submit(compute, task, key=f"amsgd-sweep-{run}-{task.index}", retries=retries, pure=False)
            for task in tasks
        ]
        address = getattr(client.scheduler, "address", "?")  # while connected: a lost client may drop it
        try:
            for future in as_completed(futures):
                record = _result(future, client, address, store)
                store.write(record["index"], record)
                future.release()
                count.update(1)
                if on_point is not None:
                    on_point(record["index"], record)
        finally:
            client.cancel([f for f in futures if not f.done()])


def _result(future, client, address: str, store: PartStore) -> dict:
    """``future.result()``, with the failures of the cluster itself in one line
    (:class:`ProblemError`, the points stored so far kept for ``--resume``): a point whose workers kept
    dying (Dask's ``KilledWorker``: out of memory, most often; a point queued on the same worker is
    counted with it) and a lost connection to the scheduler at ``address``. What the point's own
    computation raises passes through."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker

    kept = f"the finished points are kept in {store.directory}/; rerun the same command with --resume to continue"
    try:
        return future.result()
    except KilledWorker:
        point = future.key.rsplit("-", 1)[-1]
        raise ProblemError(f"point {point} (or one beside it on the same worker): the Dask workers running it kept "
                           f"dying (out of memory? fewer replicates or steps per point need less); {kept}") from None  # fmt: skip
    except (CancelledError, OSError) as exc:
        if "scheduler-connection-lost" not in str(exc) and client.status == "running":
            raise  # the point's own error, or a task cancelled by this process
        raise ProblemError(f"lost the connection to the Dask scheduler ({address}); {kept}") from None
