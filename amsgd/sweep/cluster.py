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


def default_workers() -> int:
    """One worker per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None) -> Iterator:
    """Yield a ``distributed.Client``: to ``scheduler`` (``tcp://HOST:PORT``) or to a new local cluster.

    The local cluster has ``n_workers`` worker processes (default: one per core), one thread each;
    it logs only errors, serves its dashboard on a free port and is shut down on exit. A client to
    an existing scheduler only disconnects on exit and leaves the cluster running.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ProblemError(f"cannot connect to scheduler {scheduler!r}: {exc}") from None
        with client:
            yield client
        return
    if n_workers is None:
        n_workers = default_workers()
    n_workers = checks.positive_int("workers (local Dask worker processes)", n_workers)
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: clusters side by side never collide
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:
        yield client
