"""The event queue of an asynchronous parameter server, as a binary min-heap of finish times.

M workers each read the parameters, compute for a random time and write their gradient. The next
write is by the worker whose computation finishes first; it then reads the new parameters at once
and starts again. The staleness of a write is the number of updates applied between that worker's
read and its write. All workers read the start point at time 0, so the k-th update's staleness is
at most k.

The heap holds ``(finish time, worker)`` pairs in two parallel arrays, ordered by time and, at a tie,
by worker; only the root is ever
replaced (the finishing worker starts its next computation), so one sift-down per update keeps it
ordered: O(log M) per update.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _first(t1: float, w1: int, t2: float, w2: int) -> bool:
    """Whether the write ``(t1, w1)`` comes before ``(t2, w2)``: the earlier finish time, and at a tie
    the lower worker (as :func:`~amsgd.core.delays.server_staleness` orders them), so that workers of
    equal speed take turns (round robin) instead of the one at the root writing again."""
    return t1 < t2 or (t1 == t2 and w1 < w2)


@njit(cache=True, nogil=True)
def heap_sift_down(times: np.ndarray, workers: np.ndarray, start: int) -> None:
    """Restore the min-heap order of ``(times, workers)`` below position ``start`` (:func:`_first`)."""
    n = times.shape[0]
    pos = start
    t = times[pos]
    w = workers[pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and _first(times[child + 1], workers[child + 1], times[child], workers[child]):
            child += 1
        if not _first(times[child], workers[child], t, w):
            break
        times[pos] = times[child]
        workers[pos] = workers[child]
        pos = child
    times[pos] = t
    workers[pos] = w


@njit(cache=True, nogil=True)
def heapify(times: np.ndarray, workers: np.ndarray) -> None:
    """Arrange ``times`` (with ``workers``) into a min-heap in place."""
    for start in range((times.shape[0] - 2) // 2, -1, -1):
        heap_sift_down(times, workers, start)


def draw_compute_times(rng: np.random.Generator, kind: str, sigma: float, size) -> np.ndarray:
    """Compute times: standard exponential, or ``exp(sigma Z)`` with Z standard normal."""
    if kind == "exp":
        return rng.standard_exponential(size)
    return rng.lognormal(0.0, sigma, size)
