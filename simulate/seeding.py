"""Random streams of the simulator: one independent stream per block of replicates.

Replicates are grouped into fixed blocks of :data:`BLOCK_SIZE` (the last block may be shorter).
Block ``b`` draws every random number it needs (start point, delays, compute times, samples) from
its own generator, seeded by the ``b``-th child of the root :class:`numpy.random.SeedSequence`
(``spawn_key = root.spawn_key + (b,)``, exactly what ``root.spawn`` would hand out); Gaussian
samples come from a second stream of the block, seeded by that child's first child
(:func:`block_data_sequence`, drawn by :mod:`amsgd.ziggurat`). Work is split
into chunks of whole blocks, so a seed gives bit-identical results whatever the chunking, the
number of threads, or the number of blocks run in one task; and the first ``n`` full blocks of a
run with more replicates are the same replicates.
"""

from __future__ import annotations

import numpy as np

from amsgd.errors import ProblemError

#: Replicates per random stream. Part of the reproducibility contract: changing it changes results.
BLOCK_SIZE = 256

RngLike = int | np.integer | np.random.SeedSequence | np.random.Generator | None


def root_sequence(rng: RngLike) -> np.random.SeedSequence:
    """The root seed sequence for ``rng`` (SPEC 7: a seed, a SeedSequence, a Generator or None).

    ``None`` takes fresh entropy from the operating system. A ``Generator`` is consumed: 128 bits
    are drawn from it as the root entropy, so the same generator state gives the same run.
    """
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
    if rng is None:
        return np.random.SeedSequence()
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0:
        raise ProblemError(f"rng must be a seed >= 0, a SeedSequence, a Generator or None, got {rng!r}")
    return np.random.SeedSequence(int(rng))


def block_sequence(root: np.random.SeedSequence, block: int) -> np.random.SeedSequence:
    """The seed sequence of replicate block ``block``: the ``block``-th spawned child of ``root``."""
    return np.random.SeedSequence(
        root.entropy, spawn_key=tuple(root.spawn_key) + (int(block),), pool_size=root.pool_size
    )


def block_generator(root: np.random.SeedSequence, block: int) -> np.random.Generator:
    """The generator of replicate block ``block`` (PCG64 on :func:`block_sequence`)."""
    return np.random.Generator(np.random.PCG64(block_sequence(root, block)))


def block_data_sequence(root: np.random.SeedSequence, block: int) -> np.random.SeedSequence:
    """The seed of block ``block``'s data stream: the first child of :func:`block_sequence`."""
    return block_sequence(root, block).spawn(1)[0]


def block_bounds(replicates: int, block_size: int = BLOCK_SIZE) -> list[tuple[int, int]]:
    """``[(first, stop), ...]`` replicate ranges of the blocks covering ``replicates``."""
    return [(lo, min(lo + block_size, replicates)) for lo in range(0, replicates, block_size)]


def describe_seed(root: np.random.SeedSequence) -> dict:
    """A JSON-ready record that rebuilds ``root`` (``SeedSequence(entropy, spawn_key=...)``)."""
    entropy = root.entropy
    return {
        "entropy": [int(e) for e in entropy] if isinstance(entropy, (list, tuple, np.ndarray)) else int(entropy),
        "spawn_key": [int(k) for k in root.spawn_key],
    }
