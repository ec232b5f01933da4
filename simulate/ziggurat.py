"""Standard normal draws in compiled code: the SFC64 generator and a 256-layer ziggurat.

The Gaussian data of the simulator are its dominant cost (d normals per replicate and step), so
they are drawn here rather than by ``numpy.random.Generator.standard_normal``, or by the Generator
numba supports in compiled code: ``benchmarks/bench_normals.py`` measures all three in one run
(the ziggurat is kept while it is the fastest).

**Bits.** SFC64 (Chris Doty-Humphrey's small fast chaotic generator) advances a state
``(a, b, c, counter)`` of four 64-bit words by

    t = a + b + counter,  a ← b ⊕ (b >> 11),  b ← c + (c << 3),  c ← rotl(c, 24) + t,
    counter ← counter + 1,

and returns ``t``. It is seeded as NumPy seeds it: three words ``(a, b, c)`` from a
:class:`numpy.random.SeedSequence`, ``counter = 1``, then 12 steps whose outputs are dropped. So
the words are exactly ``numpy.random.SFC64(seed_sequence).random_raw()``, and
:func:`replicate_states` gives many independent streams from one sequence at once (stream r
from words ``3r .. 3r + 2`` of ``seed_sequence.generate_state``).

**Normals.** Marsaglia and Tsang's ziggurat (J. Stat. Softw. 5(8), 2000) covers the density
``f(x) = exp(−x²/2)`` on ``x ≥ 0`` by 256 layers of equal area ``v``: layer 0 is the rectangle
``[0, r] × [0, f(r)]`` together with the tail ``x > r``, so ``v = r f(r) + ∫_r^∞ f``; layer
``i ≥ 1`` is ``[0, x_i] × [f(x_i), f(x_{i+1})]`` with ``f(x_{i+1}) = f(x_i) + v/x_i``, and the top
layer must close at ``f(x_256) = f(0) = 1``. :func:`ziggurat_tables` solves that closing condition
for ``r`` (r ≈ 3.6541528853610088) instead of copying published constants. One draw takes a word
``u``: its low 8 bits pick a layer ``i``, its top 53 bits a signed integer ``j`` and
``x = j · x_i / 2⁵²`` (with ``x_0 = v / f(r)``). When ``|x| < x_{i+1}`` the point lies under the
curve and ``x`` is returned (98.8 % of draws); otherwise layer 0 samples the tail by Marsaglia's
method (``ξ = −log(U₁)/r``, ``η = −log(U₂)``, accept when ``2η > ξ²``, return ``±(r + ξ)``) and
the other layers accept ``x`` when a uniform height in ``[f(x_i), f(x_{i+1})]`` falls under
``f(x)``, drawing afresh otherwise. Every branch is exact rejection sampling, so the draws are
standard normal up to the 2⁻⁵² granularity of ``x``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.optimize import brentq
from scipy.special import erfc

#: Layers of the ziggurat.
LAYERS = 256


def _density(x: float) -> float:
    return math.exp(-0.5 * x * x)


def _layer_edges(r: float) -> tuple[np.ndarray, float, int]:
    """Edges ``x_0 .. x_{LAYERS−1}`` for a tail start ``r``, the layer area, and a closing miss.

    The third value counts the layers left over when the recursion reaches the top early (``r``
    too small); it is 0 when every layer was built.
    """
    area = r * _density(r) + math.sqrt(math.pi / 2) * erfc(r / math.sqrt(2))
    edges = np.empty(LAYERS + 1)
    edges[0], edges[1] = area / _density(r), r
    for i in range(1, LAYERS):
        height = _density(edges[i]) + area / edges[i]
        if height >= 1.0:
            return edges, area, LAYERS - i
        edges[i + 1] = math.sqrt(-2.0 * math.log(height))
    return edges, area, 0


def _closing_miss(r: float) -> float:
    """``f(x_255) + v/x_255 − 1``: zero when the top layer ends exactly at the mode."""
    edges, area, left_over = _layer_edges(r)
    if left_over:
        return float(left_over)
    return _density(edges[LAYERS - 1]) + area / edges[LAYERS - 1] - 1.0


def ziggurat_tables() -> dict[str, np.ndarray | float]:
    """The ziggurat of the standard normal: ``r``, the layer area ``v`` and the lookup tables.

    Returns ``r``, ``v``, ``edges`` (``x_0 .. x_256``, ``x_256 = 0``), ``accept`` (``⌊2⁵² x_{i+1}/x_i⌋``,
    the fast-path bound on ``|j|``), ``scale`` (``x_i / 2⁵²``) and ``height`` (``f(x_0 .. x_256)``).
    """
    r = brentq(_closing_miss, 3.0, 4.0, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    edges, area, _ = _layer_edges(r)
    edges[LAYERS] = 0.0
    return {
        "r": r,
        "v": area,
        "edges": edges,
        "accept": np.floor(2.0**52 * edges[1:] / edges[:-1]).astype(np.int64),
        "scale": edges[:-1] / 2.0**52,
        "height": np.exp(-0.5 * edges**2),
    }


_TABLES = ziggurat_tables()
_R = float(_TABLES["r"])
_ACCEPT = _TABLES["accept"]
_SCALE = _TABLES["scale"]
_HEIGHT = _TABLES["height"]
_ONE = np.uint64(1)
_LOW8 = np.uint64(0xFF)
_SH3, _SH11, _SH24, _SH40 = np.uint64(3), np.uint64(11), np.uint64(24), np.uint64(40)
_TO_UNIT = 1.0 / 2.0**53


@njit(inline="always")
def sfc64_next(a, b, c, n):
    """One SFC64 step: ``(output, a, b, c, counter)`` (state words are passed and returned as locals)."""
    t = a + b + n
    return t, b ^ (b >> _SH11), c + (c << _SH3), ((c << _SH24) | (c >> _SH40)) + t, n + _ONE


#: Steps SFC64 runs, outputs dropped, after setting ``(a, b, c, 1)`` (as NumPy does).
WARM_UP = 12


@njit(cache=True, nogil=True)
def _seeded_states(words):
    """States ``[a, b, c, counter]`` after seeding with the rows ``(a, b, c)`` of ``words``."""
    states = np.empty((words.shape[0], 4), dtype=np.uint64)
    for r in range(words.shape[0]):
        a, b, c, n = words[r, 0], words[r, 1], words[r, 2], _ONE
        for _ in range(WARM_UP):
            _, a, b, c, n = sfc64_next(a, b, c, n)
        states[r, 0], states[r, 1], states[r, 2], states[r, 3] = a, b, c, n
    return states


def replicate_states(seed: np.random.SeedSequence, count: int) -> np.ndarray:
    """``count`` SFC64 states, one stream each, seeded by words ``3r .. 3r + 2`` of ``seed``.

    ``seed.generate_state`` is prefix-stable, so stream r does not depend on ``count``, and stream
    0 is ``numpy.random.SFC64(seed)``'s.
    """
    words = seed.generate_state(3 * count, np.uint64).reshape(count, 3)
    return _seeded_states(words)


@njit(inline="always")
def _unit(u):
    """A uniform on [0, 1) from the top 53 bits of a word."""
    return (u >> _SH11) * _TO_UNIT


@njit(inline="always")
def tail(a, b, c, n):
    """``r + ξ`` with ``ξ`` from the normal tail beyond ``r`` (Marsaglia): ``(r + ξ, a, b, c, counter)``."""
    while True:
        u1, a, b, c, n = sfc64_next(a, b, c, n)
        u2, a, b, c, n = sfc64_next(a, b, c, n)
        xi = -math.log1p(-_unit(u1)) / _R
        eta = -math.log1p(-_unit(u2))
        if eta + eta > xi * xi:
            return _R + xi, a, b, c, n


@njit(inline="always")
def wedge_accepts(i, x, unit):
    """Whether the point at ``x`` and height ``f(x_i) + unit · (f(x_{i+1}) − f(x_i))`` is under ``f``."""
    return _HEIGHT[i] + unit * (_HEIGHT[i + 1] - _HEIGHT[i]) < math.exp(-0.5 * x * x)


@njit(inline="always")
def _layer_point(u):
    """The layer ``i`` (low 8 bits), the signed integer ``j`` (top 53 bits) and ``x = j · x_i / 2⁵²`` of a word."""
    i = np.intp(u & _LOW8)
    j = np.int64(u) >> np.int64(11)
    return i, j, j * _SCALE[i]


@njit(inline="always")
def standard_normal(a, b, c, n):
    """One standard normal by the ziggurat: ``(z, a, b, c, counter)``.

    Only the fast path (one word, ``|j| < ⌊2⁵² x_{i+1}/x_i⌋``) is inlined where the draws are made;
    the rest of the draw is :func:`finish_rejected`, a call, so that its registers and its calls to
    ``exp`` and ``log`` do not crowd the loops that draw (which then run about 1.4 times faster).
    """
    u, a, b, c, n = sfc64_next(a, b, c, n)
    i, j, x = _layer_point(u)
    if abs(j) < _ACCEPT[i]:
        return x, a, b, c, n
    return finish_rejected(u, a, b, c, n)


@njit(cache=True, nogil=True)
def finish_rejected(u, a, b, c, n):
    """The draw whose first word ``u`` missed the fast path: ``(z, a, b, c, counter)``.

    Layer 0 samples the tail; another layer accepts ``x`` under the curve or takes a fresh word,
    which goes through the fast path and, if it misses again, round this loop.
    """
    i, j, x = _layer_point(u)
    while True:
        if i == 0:
            t, a, b, c, n = tail(a, b, c, n)
            return (-t if j < 0 else t), a, b, c, n
        u1, a, b, c, n = sfc64_next(a, b, c, n)
        if wedge_accepts(i, x, _unit(u1)):
            return x, a, b, c, n
        u, a, b, c, n = sfc64_next(a, b, c, n)
        i, j, x = _layer_point(u)
        if abs(j) < _ACCEPT[i]:
            return x, a, b, c, n


@njit(cache=True, nogil=True)
def fill_scaled_normals(state, scale, out):
    """Fill ``out`` (rows of length d) with ``scale[i] · z`` row by row, advancing ``state`` in place.

    With ``scale`` all ones these are standard normals; the generator consumes words in the order
    of ``out.ravel()``.
    """
    a, b, c, n = state[0], state[1], state[2], state[3]
    rows, dim = out.shape
    for row in range(rows):
        for i in range(dim):
            z, a, b, c, n = standard_normal(a, b, c, n)
            out[row, i] = scale[i] * z
    state[0], state[1], state[2], state[3] = a, b, c, n


@njit(cache=True, nogil=True)
def fill_scaled_normals_dot(state, scale, out, v):
    """Fill the row ``out`` with ``scale[i] · z`` as :func:`fill_scaled_normals` does (the same words of
    ``state`` in the same order) and return ``Σ_i out[i] v[i]``, summed in the same sweep: the draws are
    compute-bound, so reading ``v`` there costs little, where a second sweep would read ``out`` again."""
    a, b, c, n = state[0], state[1], state[2], state[3]
    total = 0.0
    for i in range(out.shape[0]):
        z, a, b, c, n = standard_normal(a, b, c, n)
        x = scale[i] * z
        out[i] = x
        total += x * v[i]
    state[0], state[1], state[2], state[3] = a, b, c, n
    return total


class ReplicateNormals:
    """Rows ``scale · z``, one SFC64 stream per replicate (:func:`replicate_states`).

    ``ReplicateNormals(seed, replicates, scale)(replicates · k)`` is a ``(replicates · k, d)`` array
    whose row ``b · k + j`` is replicate b's next sample: each call takes k rows from every stream.
    """

    def __init__(self, seed: np.random.SeedSequence, replicates: int, scale: np.ndarray) -> None:
        self.states = replicate_states(seed, replicates)
        self.scale = np.ascontiguousarray(scale, dtype=np.float64).reshape(-1)

    def __call__(self, rows: int) -> np.ndarray:
        n = self.states.shape[0]
        if rows % n:
            raise ValueError(f"{rows} rows cannot be split evenly over {n} replicates")
        out = np.empty((n, rows // n, self.scale.size))
        for b in range(n):
            fill_scaled_normals(self.states[b], self.scale, out[b])
        return out.reshape(rows, self.scale.size)
