"""Where a block of replicates gets its samples ``Y = Qᵀ X``.

Gaussian data are drawn by the compiled kernels themselves, one SFC64 stream per replicate
(:class:`~amsgd.simulate.ziggurat.ReplicateNormals`): they are the dominant cost of a run, and
drawing them in the loop that uses them keeps them in cache. Every other distribution is drawn
beforehand with its own ``sample`` method on the block's generator, a chunk of steps at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from amsgd.core.problem import Problem
from amsgd.simulate.plan import kernel_samples
from amsgd.simulate.ziggurat import ReplicateNormals


def block_sampler(
    problem: Problem, rng: np.random.Generator, seed: np.random.SeedSequence, replicates: int
) -> Callable[[int], np.ndarray]:
    """The draws of a block of ``replicates``: a function of ``n`` returning ``n`` rows of ``Y``.

    The simulator asks for ``replicates · k`` rows at a time, row ``b · k + j`` being replicate b's
    sample at the j-th step of the chunk. ``rng`` is the block's generator, shared with its other
    draws; ``seed`` seeds the streams of the data alone. Gaussian data: a
    :class:`ReplicateNormals` (``sqrt(λ) · z``, one stream per replicate); others: ``sample`` on ``rng``.
    """
    distribution, eigenvalues = problem.distribution, np.asarray(problem.eigenvalues)
    if kernel_samples(distribution):
        return ReplicateNormals(seed, replicates, np.sqrt(eigenvalues))
    basis = problem.basis if distribution.needs_basis else None
    return lambda n: distribution.sample(rng, n, eigenvalues, basis)
