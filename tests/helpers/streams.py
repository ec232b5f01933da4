"""Reference streams for the tests of the compiled normal generator (not part of the package)."""

from __future__ import annotations

import numpy as np
from numba import njit

from amsgd.simulate.ziggurat import fill_scaled_normals, sfc64_next


def sfc64_state(seed: np.random.SeedSequence) -> np.ndarray:
    """The SFC64 state ``[a, b, c, counter]`` NumPy derives from ``seed`` (as a uint64 array)."""
    words = np.random.SFC64(seed).state["state"]["state"]
    return np.array(words, dtype=np.uint64)


@njit(cache=True, nogil=True)
def fill_raw(state, out):
    """Fill ``out`` with raw SFC64 words, advancing ``state`` in place (for checks against NumPy)."""
    a, b, c, n = state[0], state[1], state[2], state[3]
    for k in range(out.shape[0]):
        out[k], a, b, c, n = sfc64_next(a, b, c, n)
    state[0], state[1], state[2], state[3] = a, b, c, n


class NormalStream:
    """A stream of (scaled) normals from one SFC64 state, drawn in compiled code.

    ``NormalStream(seed)`` accepts a seed or a :class:`numpy.random.SeedSequence`; ``draw(n, scale)``
    returns ``n`` rows ``scale · z`` with ``z`` standard normal; successive calls continue the stream.
    """

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.state = sfc64_state(sequence)

    @classmethod
    def from_state(cls, state: np.ndarray) -> NormalStream:
        """The stream that continues from an SFC64 ``state`` ``[a, b, c, counter]`` (copied)."""
        stream = cls.__new__(cls)
        stream.state = np.array(state, dtype=np.uint64).reshape(4).copy()
        return stream

    def draw(self, n: int, scale: np.ndarray) -> np.ndarray:
        scale = np.ascontiguousarray(scale, dtype=np.float64).reshape(-1)
        out = np.empty((n, scale.size))
        fill_scaled_normals(self.state, scale, out)
        return out

    def standard_normal(self, n: int) -> np.ndarray:
        """``n`` standard normals (a flat array)."""
        return self.draw(n, np.ones(1)).reshape(n)
