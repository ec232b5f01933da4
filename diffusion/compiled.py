"""Euler–Maruyama for the SME, compiled with numba: the same scheme as the batched ``euler``.

The step is ``H ← H + b(H) Δt + σ(H) ΔW`` with ``σ = sqrt(η)/(1 − μ) · P L``, ``P = I − H Hᵀ`` and
``L`` the Cholesky factor of ``S(H) = Cov[Y Yᵀ H]`` (the symmetric root where S is singular), exactly
as :meth:`amsgd.diffusion.coefficients.SMECoefficients.diffusion`. The coefficients are evaluated by
kernels written once here, which take the problem's numbers as arrays (:meth:`SMECoefficients.kernel_arguments`):

* :func:`drift_into`: ``b(h) = (Λh − (hᵀΛh) h)/(1 − μ)``;
* :func:`covariance_into`: ``S(h) = c [(hᵀΛh) Λ + 2 Λh hᵀΛ] − Λh hᵀΛ + diag(k_i h_i²)`` for the
  Gaussian, Student-t and Rademacher laws, ``S_ij = Σ_kl M_ijkl h_k h_l − (Λh)_i (Λh)_j`` with the dense
  fourth moments M of a sampled law.

Every function is compiled with ``cache=True``, so numba compiles them once per machine, whatever
the problem or the dimension, and later processes load them from its cache.

Paths are advanced one at a time, and each path block by block: the kernel seeds the keyed generator
of (path, block) (:func:`amsgd.diffusion.brownian.block_state`), draws each step's normals with the
ziggurat as it goes and stores the state at the save steps only, so no array of increments is ever
formed. These are exactly the numbers of :meth:`BrownianIncrements.increments` (which calls the same
compiled routine): with the same seed, this integrator and the NumPy schemes see the same noise, path by
path, and agree with the batched ``euler`` to rounding. Not where the noise factor is steep: with
Rademacher data near e_1, ``S_11`` of the SME's noise vanishes at e_1 and the Cholesky factor's
derivative grows like the inverse distance, so the two Cholesky routines' rounding (1e-9 at first) grows
to about 1e-2 within a few hundred steps; the noise's covariance, and so the law, are the same.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.core.progress import counter
from amsgd.diffusion.brownian import BLOCK, BrownianIncrements, block_state
from amsgd.diffusion.coefficients import SMECoefficients
from amsgd.simulate.ziggurat import standard_normal

#: Path-steps × dimension per call of a compiled kernel (a few tenths of a second): the loop returns to
#: Python between blocks of paths, where the progress is counted and Ctrl-C is handled.
BLOCK_WORK = 2**22


@numba.njit(cache=True, nogil=True)
def _root(s: np.ndarray, out: np.ndarray) -> bool:
    """``out`` with ``out outᵀ = s``: Cholesky, or the symmetric root when s is not positive definite.

    Returns False, leaving ``out`` undefined, when ``s`` is not finite (a NaN or an infinity breaks down
    the Cholesky pivots, so finiteness is checked only then, off the fast path).
    """
    d = s.shape[0]
    for j in range(d):
        pivot = s[j, j]
        for k in range(j):
            pivot -= out[j, k] * out[j, k]
        if not pivot > 0.0:
            for i in range(d):
                for c in range(d):
                    if not np.isfinite(s[i, c]):
                        return False
            w, v = np.linalg.eigh(s)
            for i in range(d):
                for c in range(d):
                    out[i, c] = v[i, c] * np.sqrt(max(w[c], 0.0))
            return True
        out[j, j] = np.sqrt(pivot)
        for i in range(j + 1, d):
            acc = s[i, j]
            for k in range(j):
                acc -= out[i, k] * out[j, k]
            out[i, j] = acc / out[j, j]
        for i in range(j):
            out[i, j] = 0.0
    return np.isfinite(pivot)


@numba.njit(cache=True, nogil=True)
def drift_into(h, lam, scale, out):
    """``out = scale · (Λh − (hᵀΛh) h)``: the SME drift with ``scale = 1/(1 − μ)``."""
    d = h.size
    q = 0.0
    for i in range(d):
        q += lam[i] * h[i] * h[i]
    for i in range(d):
        out[i] = scale * (lam[i] * h[i] - q * h[i])


@numba.njit(cache=True, nogil=True)
def covariance_into(h, lam, kurtosis, diagonal, fourth, out):
    """``out = S(h) = Cov[Y Yᵀ h]`` (d x d).

    With ``fourth`` empty: ``c [(hᵀΛh) Λ + 2 Λh hᵀΛ] − Λh hᵀΛ + diag(k_i h_i²)`` (``c = kurtosis``,
    ``k = diagonal``); otherwise ``fourth`` is the dense ``M`` as a ``(d², d²)`` matrix and
    ``S_ij = Σ_kl M_ijkl h_k h_l − (Λh)_i (Λh)_j``.
    """
    d = h.size
    if fourth.shape[0] == 0:
        q = 0.0
        for i in range(d):
            q += lam[i] * h[i] * h[i]
        for i in range(d):
            li = lam[i] * h[i]
            for j in range(i):
                lj = lam[j] * h[j]
                value = kurtosis * (2.0 * li * lj) - li * lj
                out[i, j] = value
                out[j, i] = value
            out[i, i] = kurtosis * (q * lam[i] + 2.0 * li * li) - li * li + diagonal[i] * h[i] * h[i]
        return
    for i in range(d):
        li = lam[i] * h[i]
        for j in range(i + 1):
            row = i * d + j
            acc = 0.0
            for k in range(d):
                hk = h[k]
                for m in range(d):
                    acc += fourth[row, k * d + m] * hk * h[m]
            value = acc - li * lam[j] * h[j]
            out[i, j] = value
            out[j, i] = value


@numba.njit(inline="always")
def _finite(x) -> bool:
    for i in range(x.size):
        if not np.isfinite(x[i]):
            return False
    return True


@numba.njit(inline="always")
def _noise(pool, const, path, fine, factor, root_dt, mixer, state, dw):
    """``dw`` = the increment of ``path`` over fine steps ``fine .. fine + factor − 1`` (``root_dt`` = sqrt of
    the fine step). ``state`` holds the SFC64 words; a path's fine steps must be asked for in order from 0,
    so that each block's generator is seeded at the block's first step."""
    a, b, c, n = state[0], state[1], state[2], state[3]
    for f in range(factor):
        index = fine + f
        if index % BLOCK == 0:
            a, b, c, n = block_state(pool, const, path, index // BLOCK, mixer)
        for i in range(dw.size):
            z, a, b, c, n = standard_normal(a, b, c, n)
            if f == 0:
                dw[i] = z * root_dt
            else:
                dw[i] += z * root_dt
    state[0], state[1], state[2], state[3] = a, b, c, n


@numba.njit(inline="always")
def _euler_increment(x, dw, dt, noise_scale, lam, drift_scale, kurtosis, diagonal, fourth, a, s, root, z):
    """``a = b(x) dt + σ(x) dw`` with ``σ = noise_scale · (I − x xᵀ) L``, ``L Lᵀ = S(x)``; False when S is not finite."""
    d = x.size
    drift_into(x, lam, drift_scale, a)
    covariance_into(x, lam, kurtosis, diagonal, fourth, s)
    if not _root(s, root):
        return False
    xz = 0.0
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += root[i, j] * dw[j]
        z[i] = acc
        xz += x[i] * acc
    for i in range(d):
        a[i] = a[i] * dt + noise_scale * (z[i] - x[i] * xz)
    return True


@numba.njit(cache=True, nogil=True)
def _scratch(d, pool_size):
    """The work arrays of one integrator run: ``a, z, dw`` (d), ``s, root`` (d x d), the keyed generator's
    ``mixer`` (``pool_size`` words) and its SFC64 ``state`` (4 words, zero)."""
    a, z, dw = np.empty(d), np.empty(d), np.empty(d)
    s, root = np.empty((d, d)), np.empty((d, d))
    mixer = np.empty(pool_size, dtype=np.uint64)
    state = np.zeros(4, dtype=np.uint64)
    return a, z, dw, s, root, mixer, state


@numba.njit(cache=True, nogil=True)
def _euler_paths(first, last, y0, saves, dt, noise_scale, lam, drift_scale, kurtosis, diagonal, fourth, pool, const,
                 factor, root_dt, out):  # fmt: skip
    """Euler–Maruyama of paths ``first .. last − 1`` of ``y0`` (P, d) to step ``saves[-1]``; ``out[s, p]`` = the
    state at step ``saves[s]``.

    A path that becomes non-finite keeps that value; one whose ``S`` is not finite becomes NaN.
    """
    d = y0.shape[1]
    steps = saves[-1]
    h = np.empty(d)
    a, z, dw, s, root, mixer, state = _scratch(d, pool.size)
    for p in range(first, last):
        for i in range(d):
            h[i] = y0[p, i]
        alive = _finite(h)
        slot = 0
        for n in range(steps + 1):
            if n > 0 and alive:
                _noise(pool, const, p, (n - 1) * factor, factor, root_dt, mixer, state, dw)
                if _euler_increment(h, dw, dt, noise_scale, lam, drift_scale, kurtosis, diagonal, fourth, a, s, root, z):
                    for i in range(d):
                        h[i] += a[i]
                    alive = _finite(h)
                else:
                    h[:] = np.nan
                    alive = False
            while slot < saves.size and saves[slot] == n:
                for i in range(d):
                    out[slot, p, i] = h[i]
                slot += 1


@numba.njit(cache=True, nogil=True)
def _euler_delayed_paths(first, last, h0, lag, saves, dt, noise_scale, lam, drift_scale, kurtosis, diagonal, fourth,
                         pool, const, factor, root_dt, out):  # fmt: skip
    """Euler–Maruyama of the delayed SME from the constant histories ``h0`` (P, d), one path at a time (paths
    ``first .. last − 1``).

    ``ring`` (K + 1, d) holds ``H_j`` in slot ``j mod (K + 1)``; the step is ``H_{n+1} = H_n + b(Z) Δt + σ(Z) ΔW_n``
    with ``Z = H_{n−K}``, whose slot ``H_{n+1}`` then takes. A step from a non-finite state or ``S`` gives NaN.
    """
    d = h0.shape[1]
    size = lag + 1
    steps = saves[-1]
    ring = np.empty((size, d))
    x = np.empty(d)
    a, z, dw, s, root, mixer, state = _scratch(d, pool.size)
    for p in range(first, last):
        for k in range(size):
            for i in range(d):
                ring[k, i] = h0[p, i]
        alive = _finite(ring[0])
        slot = 0
        for n in range(steps + 1):
            now = n % size
            if n > 0:
                before, old = (n - 1) % size, (n - 1 - lag) % size
                if alive:
                    for i in range(d):
                        x[i] = ring[old, i]
                    alive = _finite(x) and _finite(ring[before])
                if alive:
                    _noise(pool, const, p, (n - 1) * factor, factor, root_dt, mixer, state, dw)
                    alive = _euler_increment(x, dw, dt, noise_scale, lam, drift_scale, kurtosis, diagonal, fourth,
                                             a, s, root, z)  # fmt: skip
                if alive:
                    for i in range(d):
                        ring[now, i] = ring[before, i] + a[i]
                else:
                    ring[now, :] = np.nan
            while slot < saves.size and saves[slot] == n:
                for i in range(d):
                    out[slot, p, i] = ring[now, i]
                slot += 1


def _prepared(coefficients: SMECoefficients, y0: np.ndarray, save: np.ndarray, dt: float, brownian: BrownianIncrements):
    """The kernel arguments shared by both integrators, after checking that ``brownian`` fits the run."""
    y0 = np.ascontiguousarray(y0, dtype=float)
    save = np.ascontiguousarray(save, dtype=np.int64)
    paths, d = y0.shape
    if brownian.paths != paths or brownian.dim != d:
        raise ProblemError(
            f"brownian has dim {brownian.dim} and {brownian.paths} paths; the SME needs dim {d} and {paths} paths"
        )
    if save.size == 0 or save[0] != 0 or np.any(np.diff(save) < 0) or save[-1] > brownian.steps:
        raise ProblemError(f"save steps must rise from 0 to at most the source's {brownian.steps} steps")
    if not np.isclose(brownian.dt, dt, rtol=1e-12, atol=0):
        raise ProblemError(f"brownian.dt = {brownian.dt:g} differs from dt = {dt:g}")
    lam, drift_scale, kurtosis, diagonal, fourth = coefficients.kernel_arguments()
    pool, const = brownian.normal_key
    out = np.empty((save.size, paths, d))
    numbers = (float(dt), float(coefficients.noise_scale), np.ascontiguousarray(lam, dtype=float), float(drift_scale),
               float(kurtosis), np.ascontiguousarray(diagonal, dtype=float), np.ascontiguousarray(fourth, dtype=float),
               pool, np.uint64(const), int(brownian.factor), float(np.sqrt(brownian.fine_dt)), out)  # fmt: skip
    return y0, save, numbers


def euler_compiled(
    coefficients: SMECoefficients, y0: np.ndarray, save: np.ndarray, dt: float, brownian: BrownianIncrements,
    progress: bool | None = None,
) -> np.ndarray:
    """States ``(T, P, d)`` at the save steps ``save`` (``save[0] = 0``) from ``y0`` ``(P, d)``, on ``brownian``."""
    y0, save, numbers = _prepared(coefficients, y0, save, dt, brownian)
    _by_blocks_of_paths(lambda first, last: _euler_paths(first, last, y0, save, *numbers), y0, save, progress)
    return numbers[-1]


def euler_compiled_delayed(
    coefficients: SMECoefficients, h0: np.ndarray, lag: int, save: np.ndarray, dt: float, brownian: BrownianIncrements,
    progress: bool | None = None,
) -> np.ndarray:
    """The delayed SME ``dH = b(H(t − s)) dt + σ(H(t − s)) dW``, ``s = lag · dt``, from the constant history
    ``h0`` (``(P, d)``): states ``(T, P, d)`` at the save steps ``save`` (``save[0] = 0``).

    Euler–Maruyama on the same increments as :func:`amsgd.diffusion.sdde.integrate_sdde` with the SME's
    coefficients (the two agree to rounding); the past is a ring buffer of ``lag + 1`` states per path.
    """
    if int(lag) != lag or lag < 0:
        raise ProblemError(f"lag must be an integer >= 0, got {lag!r}")
    h0, save, numbers = _prepared(coefficients, h0, save, dt, brownian)
    _by_blocks_of_paths(lambda first, last: _euler_delayed_paths(first, last, h0, int(lag), save, *numbers),
                        h0, save, progress)  # fmt: skip
    return numbers[-1]


def _by_blocks_of_paths(kernel: Callable[[int, int], None], y0: np.ndarray, save: np.ndarray,
                        progress: bool | None) -> None:  # fmt: skip
    """Run ``kernel(first, last)`` over blocks of paths of about :data:`BLOCK_WORK` path-steps × d each,
    counting path-steps, so that the compiled loop returns often enough for progress and Ctrl-C (a
    path's noise is keyed by its index, so the blocks change no number)."""
    paths, d = y0.shape
    steps = int(save[-1])
    block = max(1, BLOCK_WORK // max(1, steps * d))
    with counter(paths * steps, "path-steps", "euler-jit", show=progress) as count:
        for first in range(0, paths, block):
            last = min(paths, first + block)
            kernel(first, last)
            count.update((last - first) * steps)
