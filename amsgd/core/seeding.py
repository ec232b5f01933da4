"""The one seed normaliser of amsgd (SPEC 7): every ``rng=`` argument becomes a ``SeedSequence``.

A seed (an integer >= 0), a :class:`numpy.random.SeedSequence`, a :class:`numpy.random.Generator`
or None is accepted wherever randomness is used. Independent streams are children of the root
sequence, keyed by their place in the work (a replicate block, a grid point, a Brownian block),
never by the worker that computes them, so a seed gives the same numbers whatever the chunking.
"""

from __future__ import annotations

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError

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
    if not checks.is_whole_number(rng) or rng < 0:
        raise ProblemError(f"rng (the seed) must be an integer >= 0, a numpy SeedSequence or Generator, or None; got {rng!r}")
    return np.random.SeedSequence(int(rng))


def child_sequence(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The stream at ``key`` below ``root``: ``SeedSequence(entropy, spawn_key=root.spawn_key + key)``.

    With a one-element key this is exactly the ``key``-th child ``root.spawn`` would hand out.
    """
    return np.random.SeedSequence(
        root.entropy, spawn_key=tuple(root.spawn_key) + tuple(int(k) for k in key), pool_size=root.pool_size
    )


def describe_seed(root: np.random.SeedSequence) -> dict:
    """A JSON-ready record that rebuilds ``root`` (``SeedSequence(entropy, spawn_key=...)``)."""
    entropy = root.entropy
    return {
        "entropy": [int(e) for e in entropy] if isinstance(entropy, (list, tuple, np.ndarray)) else int(entropy),
        "spawn_key": [int(k) for k in root.spawn_key],
    }
