"""Shared Brownian increments: one seeded noise source that several integrators can consume.

A :class:`BrownianIncrements` describes ``paths`` independent ``dim``-dimensional standard Brownian
motions ``W`` sampled on the uniform grid ``t_n = n Δt``; its :meth:`~BrownianIncrements.increments`
are ``ΔW_n = W(t_{n+1}) − W(t_n) ~ N(0, Δt I)``, independent across steps and paths.

The numbers are keyed, not streamed: the fine increments of path ``p`` in block ``b`` (``BLOCK``
consecutive steps) come from their own generator seeded by the child ``(0, p, b)`` of the root sequence
(:func:`amsgd.core.seeding.child_sequence`; for an integer seed s, ``SeedSequence(s, spawn_key=(0, p, b))``).
Any window of steps for any subset of paths is therefore reproducible on its own, the same whatever the
number of paths, the chunking or the order of requests, so that

* the batched integrator and a per-path integrator such as ``sdeint.itoEuler(..., dW=...)`` can be
  driven by exactly the same noise, path by path;
* :meth:`~BrownianIncrements.coarsen` gives the same Brownian path on a grid ``factor`` times coarser,
  its increments being sums of ``factor`` consecutive fine increments — the coupling a strong
  convergence study needs.

Schemes that need additional randomness (the two-point variables of a weak second-order scheme, the
repeated-integral approximations of ``sdeint.itoSRI2``) draw it from further keyed streams
(:meth:`~BrownianIncrements.two_point`, :meth:`~BrownianIncrements.generator`), fresh at each level of
coarsening, so they never disturb the increments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.core.seeding import RngLike, child_sequence, root_sequence

#: Fine steps per keyed block of increments.
BLOCK = 2048

# First component of every spawn key: which keyed stream.
_INCREMENTS, _TWO_POINT, _GENERATOR = 0, 1, 2

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
        if not (np.isfinite(dt) and dt > 0):
            raise ProblemError(f"dt must be finite and > 0, got {dt!r}")
        for name, value in (("steps", steps), ("dim", dim), ("paths", paths)):
            if int(value) != value or value < 1:
                raise ProblemError(f"{name} must be a positive integer, got {value!r}")
        return cls(float(dt), int(steps), int(dim), int(paths), root_sequence(rng))

    @property
    def fine_dt(self) -> float:
        return self.dt / self.factor

    @property
    def times(self) -> np.ndarray:
        """The grid ``t_n = n Δt``, ``n = 0 .. steps``."""
        return self.dt * np.arange(self.steps + 1)

    def coarsen(self, factor: int) -> BrownianIncrements:
        """The same Brownian paths on a grid ``factor`` times coarser (``steps // factor`` steps)."""
        if int(factor) != factor or factor < 1:
            raise ProblemError(f"coarsening factor must be a positive integer, got {factor!r}")
        if self.steps % factor:
            raise ProblemError(f"coarsening factor {factor} must divide the number of steps {self.steps}")
        return BrownianIncrements(
            self.dt * factor, self.steps // factor, self.dim, self.paths, self.root, self.factor * factor
        )

    def _paths(self, paths: slice | np.ndarray | list[int] | None) -> np.ndarray:
        index = np.arange(self.paths)[slice(None) if paths is None else paths]
        return np.atleast_1d(index)

    def _window(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.steps if stop is None else stop
        if not 0 <= start <= stop <= self.steps:
            raise ProblemError(f"step window [{start}, {stop}) must lie in [0, {self.steps}]")
        return start, stop

    def increments(
        self, start: int = 0, stop: int | None = None, paths: slice | np.ndarray | list[int] | None = None
    ) -> np.ndarray:
        """``ΔW_n`` for ``n`` in ``[start, stop)``, shape ``(stop − start, len(paths), dim)``."""
        start, stop = self._window(start, stop)
        index = self._paths(paths)
        fine = self._keyed(
            (_INCREMENTS,), start * self.factor, stop * self.factor, index, self.dim,
            lambda rng, n: rng.standard_normal((n, self.dim)),
        )
        fine *= np.sqrt(self.fine_dt)
        if self.factor == 1:
            return fine
        return fine.reshape(stop - start, self.factor, index.size, self.dim).sum(axis=1)

    def _keyed(self, kind: tuple[int, ...], lo: int, hi: int, index: np.ndarray, width: int, draw) -> np.ndarray:
        """Rows ``[lo, hi)`` of the keyed stream ``kind`` for paths ``index``: shape ``(hi − lo, P, width)``.

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
        return self.increments(paths=[p])[:, 0, :]

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
        return np.random.default_rng(child_sequence(self.root, _GENERATOR, self.factor, int(p)))
