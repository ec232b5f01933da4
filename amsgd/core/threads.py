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
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from amsgd.core.errors import ProblemError

T = TypeVar("T")
R = TypeVar("R")

#: The environment variable that caps the threads.
THREADS_ENV = "AMSGD_THREADS"
#: How often the caller of :func:`thread_map` wakes while it waits, so that its signal handlers run
#: (Ctrl-C, SIGTERM) whichever thread the signal reached.
WAKE_SECONDS = 0.2


class Stopped(Exception):
    """Raised by a call of :func:`thread_map` that saw its ``stop`` event set and ended early."""


def stoppable(report: Callable[[int], None], stop: threading.Event) -> Callable[[int], None]:
    """``report`` (a progress callback), raising :class:`Stopped` once ``stop`` is set: work that calls
    it after every piece ends at its next piece when :func:`thread_map` sets ``stop``."""

    def checked(done: int) -> None:
        if stop.is_set():
            raise Stopped
        report(done)

    return checked


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


def thread_map(
    function: Callable[[T], R], items: Iterable[T], threads: int | None = None, stop: threading.Event | None = None
) -> list[R]:
    """``[function(x) for x in items]``, the calls shared among ``threads`` threads (:func:`thread_count`
    when None) and the results in the order of ``items``. A call's exception (the first in that order)
    or an interruption of the caller is raised here once the calls under way have returned; the calls
    not yet started are dropped. ``stop``, when given, is set as soon as either happens: calls that
    check it between pieces of their work raise :class:`Stopped` and return early (those are not the
    exception raised). ``np.errstate`` does not cross threads: a call that needs one sets its own."""
    if stop is not None and stop.is_set():
        raise ValueError("thread_map needs a stop event that is not set yet (every call would stop at once)")
    work = list(items)
    threads = min(thread_count() if threads is None else threads, len(work))
    if threads <= 1:
        return [function(x) for x in work]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(function, x) for x in work]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=WAKE_SECONDS, return_when=FIRST_EXCEPTION)
                if any(f.exception() is not None for f in done):
                    break
        finally:
            if any(not f.done() for f in futures):  # an exception, or the caller interrupted
                _halt(futures, stop)
    for future in futures:
        error = None if future.cancelled() else future.exception()
        if error is not None and not isinstance(error, Stopped):
            raise error
    return [future.result() for future in futures]


def _halt(futures: list[Future], stop: threading.Event | None) -> None:
    """Drop the calls not started and tell those under way to stop."""
    if stop is not None:
        stop.set()
    for future in futures:
        future.cancel()
