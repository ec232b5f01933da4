"""A Dask client for sweeps: a quiet local cluster of processes, or an existing scheduler.

Either way the caller gets a :class:`distributed.Client`, so a sweep has one code path from a
laptop to a cluster. The local cluster runs one single-threaded worker process per core (the
simulator runs single-threaded within a task).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.progress import stage


def default_workers() -> int:
    """One worker per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: Seconds to wait for an existing scheduler to answer (``--connect-timeout``).
CONNECT_TIMEOUT = 5.0


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None, n_workers: int | None = None, *, timeout: float = CONNECT_TIMEOUT
) -> Iterator:
    """Yield a ``distributed.Client``: to ``scheduler`` (``tcp://HOST:PORT``, waiting at most ``timeout``
    seconds for it to answer) or to a new local cluster.

    The local cluster has ``n_workers`` worker processes (default: one per core), one thread each;
    it logs only errors, serves its dashboard on a free port and is shut down on exit. A client to
    an existing scheduler only disconnects on exit and leaves the cluster running.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        timeout = checks.positive("connect timeout (seconds)", timeout)
        with stage(f"connecting to the scheduler at {scheduler}"):
            try:
                client = Client(scheduler, timeout=f"{timeout}s")
            except Exception:  # refused, timed out, a malformed address, or something else answered
                raise ProblemError(
                    f"no Dask scheduler answered at {scheduler} within {timeout:g} s; check the address "
                    "(tcp://HOST:PORT) and that the scheduler runs, raise --connect-timeout, or leave out "
                    "--scheduler for a local cluster"
                ) from None
        with client:
            yield client
        return
    if n_workers is None:
        n_workers = default_workers()
    n_workers = checks.positive_int("workers (local Dask worker processes)", n_workers)
    with stage(f"starting a local Dask cluster of {n_workers} workers"):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: clusters side by side never collide
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as client:
        yield client
