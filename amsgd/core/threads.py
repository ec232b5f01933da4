"""Threads for independent pieces of work whose results do not depend on how they are shared out.

The theory's heavy loops (the step-down of many autoregressions, the cells of the momentum × workers
table) are compiled code that releases the GIL or NumPy and SciPy calls that do, so threads of one
process run them in parallel without copying their inputs. Each piece writes only its own output,
so the results are the same on any number of threads.

``AMSGD_THREADS=N`` caps the threads (``1``: everything in the calling thread, as a process of a
sweep that already has one worker per core may want); by default one per core available to the
process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from amsgd.core.errors import ProblemError

T = TypeVar("T")
R = TypeVar("R")

#: The environment variable that caps the threads.
THREADS_ENV = "AMSGD_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def thread_count() -> int:
    """Threads for the theory's parallel loops: ``$AMSGD_THREADS`` when set, else :func:`available_cores`."""
    chosen = os.environ.get(THREADS_ENV, "").strip()
    if not chosen:
        return available_cores()
    if not chosen.isdigit() or int(chosen) < 1:
        raise ProblemError(f"{THREADS_ENV} must be an integer >= 1, got {chosen!r}")
    return int(chosen)


def thread_map(function: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> list[R]:
    """``[function(x) for x in items]``, the calls shared among ``threads`` threads (:func:`thread_count`
    when None) and the results in the order of ``items``. A call's exception (the first in that order)
    or an interruption of the caller is raised here once the calls under way have returned; the calls
    not yet started are dropped. ``np.errstate`` does not cross threads: a call that needs one sets its
    own."""
    work = list(items)
    threads = min(thread_count() if threads is None else threads, len(work))
    if threads <= 1:
        return [function(x) for x in work]
    with ThreadPoolExecutor(max_workers=threads) as pool:  # map cancels what has not started when it raises
        return list(pool.map(function, work))
