"""Random streams of the simulator: one independent stream per block of replicates.

Replicates are grouped into fixed blocks of :data:`BLOCK_SIZE` (the last block may be shorter).
Block ``b`` draws every random number it needs (start point, delays, compute times, samples) from
its own generator, seeded by the ``b``-th child of the root :class:`numpy.random.SeedSequence`
(:func:`amsgd.core.seeding.child_sequence`, exactly what ``root.spawn`` would hand out); Gaussian
samples come from a second stream of the block, seeded by that child's first child
(:func:`block_data_sequence`, drawn by :mod:`amsgd.simulate.ziggurat`). Work is split into chunks of
whole blocks, so a seed gives bit-identical results whatever the chunking, the number of threads,
or the number of blocks run in one task; and the first ``n`` full blocks of a run with more
replicates are the same replicates.
"""

from __future__ import annotations

import numpy as np

from amsgd.core.seeding import child_sequence

#: Replicates per random stream. Part of the reproducibility contract: changing it changes results.
BLOCK_SIZE = 256


def block_generator(root: np.random.SeedSequence, block: int) -> np.random.Generator:
    """The generator of replicate block ``block`` (PCG64 on its child sequence)."""
    return np.random.Generator(np.random.PCG64(child_sequence(root, block)))


def block_data_sequence(root: np.random.SeedSequence, block: int) -> np.random.SeedSequence:
    """The seed of block ``block``'s data stream: the first child of the block's sequence."""
    return child_sequence(root, block).spawn(1)[0]


def block_bounds(replicates: int, block_size: int = BLOCK_SIZE) -> list[tuple[int, int]]:
    """``[(first, stop), ...]`` replicate ranges of the blocks covering ``replicates``."""
    return [(lo, min(lo + block_size, replicates)) for lo in range(0, replicates, block_size)]
