"""A Dask client for sweeps: a quiet local cluster, or an existing scheduler.

Either way the caller gets a :class:`distributed.Client`, so a sweep has one code path from a
laptop to a cluster. The local cluster runs one single-threaded worker per core, as threads of this
process by default: the simulator's compiled kernels release the GIL, so threads run in parallel,
and a threaded cluster starts in milliseconds where worker processes must each start Python and
load NumPy, numba and the kernels (seconds, which dominate a small sweep). ``processes=True`` keeps
worker processes (a crash in one then spares the others; faster on large sweeps, where the
per-point Python work holding the GIL matters: :func:`amsgd.sweep.run.run_sweep` chooses by the
work). The results do not depend on the choice: every point has its own random stream.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import warnings
from collections.abc import Iterator

from amsgd.core import checks
from amsgd.core.errors import ProblemError, RunWarning
from amsgd.core.progress import stage
from amsgd.core.threads import available_cores


def default_workers() -> int:
    """One worker per core available to this process."""
    return available_cores()


#: Seconds to wait for an existing scheduler to answer (``--connect-timeout``).
CONNECT_TIMEOUT = 5.0

#: Local worker processes keep glibc's own (adaptive) trim threshold: Dask's nannies set
#: ``MALLOC_TRIM_THRESHOLD_=65536`` by default, which made the JAX programs of a model's points 1.6
#: times slower per point (logistic regression on digits, 64 replicates × 4000 steps: 7.2 s against
#: 4.5 s in this process).
_KEEP_MALLOC = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    *,
    timeout: float = CONNECT_TIMEOUT,
    processes: bool = False,
) -> Iterator:
    """Yield a ``distributed.Client``: to ``scheduler`` (``tcp://HOST:PORT``, waiting at most ``timeout``
    seconds for it to answer) or to a new local cluster.

    The local cluster has ``n_workers`` workers (default: one per core) with one thread each, as
    threads of this process (without Dask's per-worker memory limit, which they would share), or as
    worker processes when ``processes`` (with glibc's own memory trim threshold, see
    :data:`_KEEP_MALLOC`); it logs only errors, serves its dashboard on a free port and
    is shut down on exit. A client to an existing scheduler only
    disconnects on exit and leaves the cluster running; a :class:`RunWarning` says when that scheduler
    has no workers (the points then wait for one).
    """
    if scheduler is not None:
        timeout = checks.positive("connect timeout (seconds)", timeout)
        with stage(f"connecting to the scheduler at {scheduler}"):
            client = _connect(scheduler, timeout)
        if not client.scheduler_info().get("workers"):
            warnings.warn(f"the Dask scheduler at {scheduler} has no workers yet: the points wait until one connects "
                          f"(dask worker {scheduler})", RunWarning, stacklevel=3)  # fmt: skip
        with client:
            yield client
        return
    if n_workers is None:
        n_workers = default_workers()
    n_workers = checks.positive_int("--local-workers (workers of the local Dask cluster)", n_workers)
    kind = "processes" if processes else "threads"
    with contextlib.ExitStack() as running:
        with stage(f"starting a local Dask cluster of {n_workers} worker {kind}"):
            import dask
            from distributed import Client, LocalCluster  # before the configuration below: it adds its own

            with dask.config.set(_KEEP_MALLOC), _workers_ignore_interrupts(processes):
                cluster = running.enter_context(LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=processes,
                    # Threads share this process: Dask's default gives each the machine's memory over
                    # n_workers and pauses a worker while the process is above it, so from about 80
                    # threads every worker paused and the sweep hung. Processes keep the default.
                    **({} if processes else {"memory_limit": 0}),
                    dashboard_address=":0",  # any free port: clusters side by side never collide
                    # Task errors reach the client as exceptions; what the workers log themselves at
                    # ERROR is shutdown noise (a heartbeat that meets the closing scheduler prints a
                    # traceback).
                    silence_logs=logging.CRITICAL,
                ))
            client = running.enter_context(Client(cluster))
        try:
            yield client
        finally:
            with stage("shutting the local Dask cluster down"):
                running.close()


def _connect(scheduler: str, timeout: float):
    """A ``distributed.Client`` to ``scheduler``, or :class:`ProblemError` when none answers within
    ``2 × timeout`` seconds (at least ``timeout`` + 1). Dask bounds the TCP connect by its timeout but
    not the handshake read after it, so a listener that is not a scheduler (its dashboard's port, say)
    would hang the client: it is made on a daemon thread and given up on after the deadline (the thread
    stays blocked until the peer closes; a client it makes after that is closed at once, not left as
    the default client)."""
    from distributed import Client

    made: dict = {}
    lock = threading.Lock()

    def attempt() -> None:
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except Exception:  # refused, timed out, a malformed address, or something else answered
            return
        with lock:
            if made.get("abandoned"):
                client.close()
            else:
                made["client"] = client

    thread = threading.Thread(target=attempt, name="amsgd-dask-connect", daemon=True)
    thread.start()
    thread.join(timeout + max(timeout, 1.0))  # the connect, then the handshake and registration
    with lock:
        if "client" not in made:
            made["abandoned"] = True
            raise ProblemError(
                f"no Dask scheduler answered at {scheduler} within {timeout:g} s; check the address "
                "(tcp://HOST:PORT, the scheduler's port, not its dashboard's) and that the scheduler runs, raise "
                "--connect-timeout, or leave out --scheduler for a local cluster"
            )
        return made["client"]


@contextlib.contextmanager
def _workers_ignore_interrupts(processes: bool) -> Iterator[None]:
    """While worker processes start, ignore SIGINT: they inherit that, so a Ctrl-C (sent to the
    whole process group) interrupts this process alone, which then shuts the cluster down, instead
    of every worker printing its own KeyboardInterrupt traceback (a Ctrl-C during those seconds of
    start-up is ignored). A no-op for threads, or off the main thread (where signal handlers cannot
    be set)."""
    if not processes or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
