"""Delay sequences τ_0, τ_1, ... of one run, drawn up front for the JAX model programs.

A constant delay (and M round-robin workers, τ = M − 1) is the same at every step; an i.i.d. law is
drawn by inversion of its cumulative law; the event-driven server replays its event queue with
compute times drawn from the run's generator (:func:`amsgd.core.delays.server_staleness`). Step k
never reads before the start: a delay above k reads the start point, as the history before time 0
is the start point.
"""

from __future__ import annotations

import numpy as np

from amsgd.core.delays import DelayModel, EventDrivenDelay, server_staleness
from amsgd.simulate.queue import draw_compute_times


def delay_sequence(delay: DelayModel, rng: np.random.Generator, steps: int) -> np.ndarray:
    """``steps`` delays (int32) of one run under ``delay``."""
    if isinstance(delay, EventDrivenDelay):
        return _server_sequence(delay, rng, steps)
    pmf = delay.pmf()
    if np.count_nonzero(pmf) == 1:  # a constant delay (round-robin workers included)
        return np.full(steps, int(np.argmax(pmf)), dtype=np.int32)
    return np.searchsorted(delay.cdf(), rng.random(steps), side="right").astype(np.int32)


def _server_sequence(delay: EventDrivenDelay, rng: np.random.Generator, steps: int) -> np.ndarray:
    """Staleness of the first ``steps`` updates of an event-driven server (drawing more jobs until
    the replayed queue covers them)."""
    jobs = steps // delay.workers + 16
    while True:
        durations = draw_compute_times(rng, delay.compute, delay.sigma, (delay.workers, jobs))
        staleness = server_staleness(durations)
        if staleness.size >= steps:
            return staleness[:steps].astype(np.int32)
        jobs *= 2
