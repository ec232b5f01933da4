"""Wall-clock timing for the benchmarks: the best of a few runs, one function or several in turn."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """The shortest of ``repeats`` wall times of ``fn()``, in seconds."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def best_of_interleaved(repeats: int, *fns: Callable[[], object]) -> tuple[list, list[float]]:
    """The last result and the best of ``repeats`` wall times of each function, run in turn (so that a
    change in the machine's load falls on all of them alike)."""
    results, times = [None] * len(fns), [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            began = time.perf_counter()
            results[k] = fn()
            times[k].append(time.perf_counter() - began)
    return results, [min(t) for t in times]
