"""Shared Brownian increments: one seeded noise source that several integrators can consume.

A :class:`BrownianIncrements` describes ``paths`` independent ``dim``-dimensional standard Brownian
motions ``W`` sampled on the uniform grid ``t_n = n Δt``; its :meth:`~BrownianIncrements.increments`
are ``ΔW_n = W(t_{n+1}) − W(t_n) ~ N(0, Δt I)``, independent across steps and paths.

The numbers are keyed, not streamed: the fine increments of path ``p`` in block ``b`` (``BLOCK``
consecutive steps) are ``sqrt(Δt)`` times the standard normals of their own generator, seeded by the
child ``(0, p, b)`` of the root sequence (:func:`amsgd.core.seeding.child_sequence`; for an integer seed
s, ``SeedSequence(s, spawn_key=(0, p, b))``). The generator is the simulator's SFC64 with its ziggurat
(:mod:`amsgd.simulate.ziggurat`), seeded as ``numpy.random.SFC64(child)`` seeds itself; the normals of a
block are drawn step by step, coordinate by coordinate. Any window of steps for any subset of paths is
therefore reproducible on its own, the same whatever the number of paths, the chunking or the order of
requests, so that

* the batched integrator and a per-path integrator such as ``sdeint.itoEuler(..., dW=...)`` can be
  driven by exactly the same noise, path by path;
* :meth:`~BrownianIncrements.coarsen` gives the same Brownian path on a grid ``factor`` times coarser,
  its increments being sums of ``factor`` consecutive fine increments — the coupling a strong
  convergence study needs;
* compiled integrators (:mod:`amsgd.diffusion.compiled`) draw the same numbers inside their loops,
  one path at a time, without materialising the increments: the child's seed words are computed in
  compiled code (:func:`block_state`, NumPy's ``SeedSequence`` hash run on the key of the stream,
  :meth:`BrownianIncrements.normal_key`) and :meth:`increments` itself calls the same compiled routine.

Schemes that need additional randomness (the two-point variables of a weak second-order scheme, the
repeated-integral approximations of ``sdeint.itoSRI2``) draw it from further keyed streams
(:meth:`~BrownianIncrements.two_point`, :meth:`~BrownianIncrements.generator`; NumPy's PCG64), fresh at
each level of coarsening, so they never disturb the increments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.seeding import RngLike, child_sequence, root_sequence
from amsgd.simulate.ziggurat import WARM_UP, sfc64_next, standard_normal

#: Fine steps per keyed block of increments.
BLOCK = 2048

# First component of every spawn key: which keyed stream.
_INCREMENTS, _TWO_POINT, _GENERATOR = 0, 1, 2

# NumPy's SeedSequence (numpy/random/bit_generator.pyx): hash constants on 32-bit words.
_MASK32 = 0xFFFFFFFF
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _XSHIFT = 0xCA01F9DD, 0x4973F715, 16
_U_MASK32, _U_MULT_A, _U_INIT_B, _U_MULT_B = (np.uint64(x) for x in (_MASK32, _MULT_A, _INIT_B, _MULT_B))
_U_MIX_L, _U_MIX_R, _U_XSHIFT, _U32 = np.uint64(_MIX_L), np.uint64(_MIX_R), np.uint64(_XSHIFT), np.uint64(32)
_U_ONE, _U_ZERO = np.uint64(1), np.uint64(0)


def _words(value) -> list[int]:
    """The 32-bit words NumPy's ``SeedSequence`` makes of an entropy or spawn-key entry (an integer
    ``>= 0``, least significant word first, ``[0]`` for 0; a sequence: its entries' words in order)."""
    if isinstance(value, (int, np.integer)):
        n = int(value)
        out = [n & _MASK32]
        n >>= 32
        while n:
            out.append(n & _MASK32)
            n >>= 32
        return out
    return [w for entry in value for w in _words(entry)]


def _hashmix(value: int, const: int) -> tuple[int, int]:
    """NumPy's ``hashmix``: the hashed word and the next hash constant."""
    value ^= const
    const = (const * _MULT_A) & _MASK32
    value = (value * const) & _MASK32
    return value ^ (value >> _XSHIFT), const


def _mix(x: int, y: int) -> int:
    result = (_MIX_L * x - _MIX_R * y) & _MASK32
    return result ^ (result >> _XSHIFT)


def stream_key(root: np.random.SeedSequence, *key: int) -> tuple[np.ndarray, int]:
    """The state of NumPy's ``SeedSequence`` hash after absorbing ``child_sequence(root, *key)``'s words:
    ``(pool, hash constant)``, from which :func:`block_state` finishes any grandchild ``(*key, p, b)``.

    The entropy words of ``child_sequence(root, *key, p, b)`` are the root's entropy (zero-padded to the
    pool size, as a spawned sequence's are), then the spawn key ``root.spawn_key + key + (p, b)``; the
    pool takes the first ``pool_size`` of them, is mixed, and absorbs the rest one at a time, so the
    state after the common prefix is shared by every ``(p, b)``.
    """
    size = int(root.pool_size)
    run = _words(root.entropy)
    spawn = _words(tuple(root.spawn_key) + tuple(int(k) for k in key))
    if spawn:
        run += [0] * max(0, size - len(run))
    entropy = run + spawn
    const = _INIT_A
    mixer = []
    for i in range(size):
        hashed, const = _hashmix(entropy[i] if i < len(entropy) else 0, const)
        mixer.append(hashed)
    for src in range(size):
        for dst in range(size):
            if src != dst:
                hashed, const = _hashmix(mixer[src], const)
                mixer[dst] = _mix(mixer[dst], hashed)
    for word in entropy[size:]:
        for dst in range(size):
            hashed, const = _hashmix(word, const)
            mixer[dst] = _mix(mixer[dst], hashed)
    pool = np.array(mixer, dtype=np.uint64)
    if not np.array_equal(pool, child_sequence(root, *key).pool.astype(np.uint64)):
        raise ProblemError(f"the seed {root!r} has an entropy this noise source cannot key; use an integer seed")
    return pool, const


@njit(inline="always")
def _hashmix_word(value, const):
    value ^= const
    const = (const * _U_MULT_A) & _U_MASK32
    value = (value * const) & _U_MASK32
    return value ^ (value >> _U_XSHIFT), const


@njit(inline="always")
def _mix_word(x, y):
    result = (_U_MIX_L * x - _U_MIX_R * y) & _U_MASK32
    return result ^ (result >> _U_XSHIFT)


@njit(inline="always")
def _absorb(mixer, const, value):
    """Absorb the 32-bit words of the integer ``value >= 0`` (NumPy's spawn-key coercion) into ``mixer``."""
    v = np.uint64(value)
    while True:
        word = v & _U_MASK32
        for dst in range(mixer.size):
            hashed, const = _hashmix_word(word, const)
            mixer[dst] = _mix_word(mixer[dst], hashed)
        v >>= _U32
        if v == _U_ZERO:
            return const


@njit(cache=True, nogil=True)
def block_state(pool, const, path, block, mixer):
    """The SFC64 state ``(a, b, c, counter)`` of the keyed stream ``(*key, path, block)`` of :func:`stream_key`.

    Finishes NumPy's ``SeedSequence`` hash with the words of ``path`` and ``block`` (``mixer``: scratch of
    the pool's size), generates three 64-bit words as ``generate_state(3, uint64)`` does and seeds SFC64
    with them as ``numpy.random.SFC64`` does (``counter = 1``, then ``WARM_UP`` steps dropped).
    """
    for i in range(pool.size):
        mixer[i] = pool[i]
    h = np.uint64(const)
    h = _absorb(mixer, h, path)
    h = _absorb(mixer, h, block)
    words = np.empty(3, dtype=np.uint64)
    h = _U_INIT_B
    for k in range(6):
        value = mixer[k % mixer.size] ^ h
        h = (h * _U_MULT_B) & _U_MASK32
        value = (value * h) & _U_MASK32
        value ^= value >> _U_XSHIFT
        if k % 2 == 0:
            words[k // 2] = value
        else:
            words[k // 2] |= value << _U32
    a, b, c, n = words[0], words[1], words[2], _U_ONE
    for _ in range(WARM_UP):
        _, a, b, c, n = sfc64_next(a, b, c, n)
    return a, b, c, n


@njit(cache=True, nogil=True)
def keyed_normals(pool, const, paths, lo, hi, out):
    """Standard normals of fine steps ``[lo, hi)`` for the paths ``paths``: ``out[k, n − lo, :]`` (width d).

    Block ``b`` of path ``p`` is the stream :func:`block_state` ``(p, b)``; its normals are taken in the
    order (step, coordinate) from the start of the block, so a window is drawn from its block's start.
    """
    width = out.shape[2]
    mixer = np.empty(pool.size, dtype=np.uint64)
    for k in range(paths.size):
        for block in range(lo // BLOCK, (hi + BLOCK - 1) // BLOCK):
            first, stop = max(lo, block * BLOCK), min(hi, (block + 1) * BLOCK)
            a, b, c, n = block_state(pool, const, paths[k], block, mixer)
            for _ in range((first - block * BLOCK) * width):
                _, a, b, c, n = standard_normal(a, b, c, n)
            for row in range(first - lo, stop - lo):
                for i in range(width):
                    z, a, b, c, n = standard_normal(a, b, c, n)
                    out[k, row, i] = z


@dataclass(frozen=True)
class BrownianIncrements:
    """Increments of ``paths`` independent ``dim``-dimensional Brownian motions on ``steps`` steps of size ``dt``.

    Build with :meth:`create`; ``factor`` (fine steps per step of this view) is set by :meth:`coarsen`.
    """

    dt: float
    steps: int
    dim: int
    paths: int
    root: np.random.SeedSequence
    factor: int = 1

    @classmethod
    def create(cls, dt: float, steps: int, dim: int, paths: int = 1, rng: RngLike = None) -> BrownianIncrements:
        """A fresh Brownian source; ``rng`` follows SPEC 7 (seed, Generator or None)."""
        dt = checks.positive("dt", dt)
        steps, dim, paths = (checks.positive_int(name, value) for name, value in (("steps", steps), ("dim", dim),
                                                                                 ("paths", paths)))  # fmt: skip
        return cls(dt, steps, dim, paths, root_sequence(rng))

    @property
    def fine_dt(self) -> float:
        return self.dt / self.factor

    @property
    def times(self) -> np.ndarray:
        """The grid ``t_n = n Δt``, ``n = 0 .. steps``."""
        return self.dt * np.arange(self.steps + 1)

    @cached_property
    def normal_key(self) -> tuple[np.ndarray, np.uint64]:
        """``(pool, hash constant)`` of the increments' keyed stream (:func:`stream_key` of ``(0,)``): with
        :func:`block_state` it gives the generator of any (path, block) in compiled code."""
        pool, const = stream_key(self.root, _INCREMENTS)
        return pool, np.uint64(const)

    def coarsen(self, factor: int) -> BrownianIncrements:
        """The same Brownian paths on a grid ``factor`` times coarser (``steps // factor`` steps)."""
        factor = checks.positive_int("coarsening factor", factor)
        if self.steps % factor:
            raise ProblemError(f"coarsening factor {factor} must divide the number of steps {self.steps}")
        return BrownianIncrements(
            self.dt * factor, self.steps // factor, self.dim, self.paths, self.root, self.factor * factor
        )

    def _paths(self, paths: slice | np.ndarray | list[int] | None) -> np.ndarray:
        try:
            if not isinstance(paths, (slice, type(None))) and np.any(np.asarray(paths) < 0):
                raise IndexError  # NumPy would count it from the end
            index = np.arange(self.paths)[slice(None) if paths is None else paths]
        except (IndexError, TypeError):
            raise ProblemError(f"paths must be a slice or a list of path indices in [0, {self.paths}), got {paths!r}") from None
        return np.atleast_1d(index)

    def _window(self, start: int, stop: int | None) -> tuple[int, int]:
        start = checks.integer("start (a step index)", start)
        stop = self.steps if stop is None else checks.integer("stop (a step index)", stop)
        if not 0 <= start <= stop <= self.steps:
            raise ProblemError(f"step window [{start}, {stop}) must lie in [0, {self.steps}]")
        return start, stop

    def increments(
        self, start: int = 0, stop: int | None = None, paths: slice | np.ndarray | list[int] | None = None
    ) -> np.ndarray:
        """``ΔW_n`` for ``n`` in ``[start, stop)``, shape ``(stop − start, len(paths), dim)``.

        ``sqrt(Δt_fine)`` times the keyed standard normals of :func:`keyed_normals`, summed over the
        ``factor`` fine steps of each step of a coarsened view.
        """
        start, stop = self._window(start, stop)
        index = self._paths(paths).astype(np.int64)
        fine = np.empty((index.size, (stop - start) * self.factor, self.dim))  # path-major, as drawn
        pool, const = self.normal_key
        keyed_normals(pool, const, index, start * self.factor, stop * self.factor, fine)
        fine *= np.sqrt(self.fine_dt)
        fine = fine.transpose(1, 0, 2)
        if self.factor == 1:
            return fine
        return fine.reshape(stop - start, self.factor, index.size, self.dim).sum(axis=1)

    def _keyed(self, kind: tuple[int, ...], lo: int, hi: int, index: np.ndarray, width: int, draw) -> np.ndarray:
        """Rows ``[lo, hi)`` of the NumPy keyed stream ``kind`` for paths ``index``: shape ``(hi − lo, P, width)``.

        Rows of path ``p`` in block ``b`` come from ``draw(default_rng(child_sequence(root, *kind, p, b)),
        BLOCK)``, so any window is reproducible on its own.
        """
        out = np.empty((index.size, hi - lo, width))  # path-major: each draw is one contiguous write
        for b in range(lo // BLOCK, -(-hi // BLOCK)):
            a, z = max(lo, b * BLOCK), min(hi, (b + 1) * BLOCK)
            for column, p in enumerate(index):
                seed = child_sequence(self.root, *kind, int(p), b)
                out[column, a - lo : z - lo] = draw(np.random.default_rng(seed), BLOCK)[a - b * BLOCK : z - b * BLOCK]
        return out.transpose(1, 0, 2)

    def path(self, p: int) -> np.ndarray:
        """All increments of path ``p``, shape ``(steps, dim)`` — the ``dW`` argument of sdeint."""
        return self.increments(paths=[self._path_index(p)])[:, 0, :]

    def _path_index(self, p: int) -> int:
        p = checks.integer("path index", p)
        if p >= self.paths:
            raise ProblemError(f"path index must be below the {self.paths} paths, got {p}")
        return p

    def two_point(
        self, start: int = 0, stop: int | None = None, paths: slice | np.ndarray | list[int] | None = None
    ) -> np.ndarray:
        """Antisymmetric two-point matrices ``V`` of Kloeden–Platen (14.2.8), shape ``(n, P, dim, dim)``.

        ``V_jr = ±Δt`` with probability 1/2 each for ``j < r``, ``V_rj = −V_jr`` and ``V_jj = −Δt``, so that
        ``(ΔW_j ΔW_r + V_jr)/2`` has the first moments of the iterated Itô integral ``I_(j,r)``.
        """
        start, stop = self._window(start, stop)
        index = self._paths(paths)
        upper = np.triu_indices(self.dim, 1)
        signs = self._keyed(
            (_TWO_POINT, self.factor), start, stop, index, upper[0].size,
            lambda rng, n: rng.integers(0, 2, size=(n, upper[0].size)) * 2.0 - 1.0,
        )
        out = np.zeros((stop - start, index.size, self.dim, self.dim))
        out[..., upper[0], upper[1]] = signs * self.dt
        out -= np.swapaxes(out, -1, -2)
        out[..., np.arange(self.dim), np.arange(self.dim)] = -self.dt
        return out

    def generator(self, p: int) -> np.random.Generator:
        """An independent generator for path ``p`` at this level (e.g. for sdeint's repeated integrals)."""
        return np.random.default_rng(child_sequence(self.root, _GENERATOR, self.factor, self._path_index(p)))
