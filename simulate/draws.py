"""The random numbers of one block of replicates, in their documented order.

Per block (its own generator, :mod:`amsgd.simulate.seeding`) the draws are: the random start points
(when ``start="random"``), the first compute times of an event-driven server, then per chunk of
steps the delays' uniforms (i.i.d. delays) or the compute times (server), then ``B·K`` samples,
row ``b·K + j`` being replicate b at step ``k0 + j``. Gaussian samples come instead from one data
stream per replicate (:mod:`amsgd.simulate.sampling`): replicate b's samples are its stream's
draws in step order, whatever the chunk length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from amsgd.simulate.plan import Plan, kernel_samples
from amsgd.simulate.queue import draw_compute_times
from amsgd.simulate.sampling import block_sampler
from amsgd.simulate.seeding import block_data_sequence, block_generator

Chunk = tuple[int, np.ndarray, np.ndarray]


@dataclass
class BlockDraws:
    """The random numbers of one block, in draw order: start points, first compute times, chunks.

    With ``streams`` set (Gaussian data left to the kernels) the chunks carry no samples, shape
    ``(B, K, 0)``; the kernels draw replicate b's from ``streams[b]`` (an SFC64 state, advanced in
    place) as ``scale · z``, the same numbers.
    """

    start: np.ndarray
    first_times: np.ndarray | None
    chunks: Iterator[Chunk]
    streams: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.uint64))
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))


def block_draws(plan: Plan, block: int, *, samples_in_kernel: bool = False) -> BlockDraws:
    """Draw block ``block``'s random numbers; ``chunks`` yields ``(k0, y[B, K, d], aux[B, K])``.

    ``aux`` holds the uniforms of i.i.d. delays, the compute times of the event-driven server, or
    nothing (shape ``(B, 0)``) for a constant delay. With ``samples_in_kernel`` Gaussian samples are
    not drawn here but left to the kernels (see :class:`BlockDraws`).
    """
    lo, hi = plan.blocks[block]
    n = hi - lo
    rng = block_generator(plan.root, block)
    if plan.start_h is None:
        z = rng.standard_normal((n, plan.dim))
        start = z / np.linalg.norm(z, axis=1, keepdims=True)
    else:
        start = np.broadcast_to(plan.start_h, (n, plan.dim)).copy()
    problem = plan.problem
    sample = block_sampler(problem, rng, block_data_sequence(plan.root, block), n)
    delay = problem.delay
    first = draw_compute_times(rng, delay.compute, delay.sigma, (n, delay.workers)) if plan.server else None
    if samples_in_kernel and kernel_samples(problem.distribution):
        return BlockDraws(start, first, _chunks(plan, rng, n, None), sample.states, sample.scale)
    return BlockDraws(start, first, _chunks(plan, rng, n, sample))


def _chunks(plan: Plan, rng: np.random.Generator, n: int, sample) -> Iterator[Chunk]:
    """``(k0, y, aux)`` per chunk of steps; ``y`` is empty when ``sample`` is None (drawn in the kernels)."""
    delay = plan.problem.delay
    empty = np.zeros((n, 0))
    for k0 in range(0, plan.steps, plan.chunk):
        k = min(plan.chunk, plan.steps - k0)
        if plan.server:
            aux = draw_compute_times(rng, delay.compute, delay.sigma, (n, k))
        elif plan.delay.cdf.size:
            aux = rng.random((n, k))
        else:
            aux = empty
        if sample is None:
            yield k0, np.empty((n, k, 0)), aux
        else:
            yield k0, np.ascontiguousarray(sample(n * k), dtype=np.float64).reshape(n, k, plan.dim), aux
