"""Euler–Maruyama for the SME, compiled with numba: the same scheme as the batched ``euler``.

The step is ``H ← H + b(H) Δt + σ(H) ΔW`` with ``σ = sqrt(η)/(1 − μ) · P L``, ``P = I − H Hᵀ`` and
``L`` the Cholesky factor of ``S(H) = Cov[Y Yᵀ H]`` (the symmetric root where S is singular), exactly
as :meth:`amsgd.diffusion.coefficients.SMECoefficients.diffusion`; the coefficients are the numba-compiled
versions of the same SymPy expressions. Paths are advanced one by one inside the compiled loop, so
the cost per path-step is a few hundred floating-point operations with no Python overhead. The
Brownian increments come from the same :class:`BrownianIncrements` source as the other schemes: with
the same seed the two integrators see the same noise (they then agree to rounding).
"""

from __future__ import annotations

import numba
import numpy as np

from amsgd.diffusion.brownian import BrownianIncrements
from amsgd.diffusion.coefficients import SMECoefficients
from amsgd.diffusion.sde import CHUNK


@numba.njit(cache=False)
def _root(s: np.ndarray, out: np.ndarray) -> None:
    """``out`` with ``out outᵀ = s``: Cholesky, or the symmetric root when s is not positive definite."""
    d = s.shape[0]
    for j in range(d):
        pivot = s[j, j]
        for k in range(j):
            pivot -= out[j, k] * out[j, k]
        if not pivot > 0.0:
            w, v = np.linalg.eigh(s)
            for i in range(d):
                for c in range(d):
                    out[i, c] = v[i, c] * np.sqrt(max(w[c], 0.0))
            return
        out[j, j] = np.sqrt(pivot)
        for i in range(j + 1, d):
            acc = s[i, j]
            for k in range(j):
                acc -= out[i, k] * out[j, k]
            out[i, j] = acc / out[j, j]
        for i in range(j):
            out[i, j] = 0.0


@numba.njit(cache=False)
def _advance(y, dw, dt, scale, drift_into, covariance_into, saves, out, slot):
    """Advance every path over the increments ``dw`` (steps, P, d); store ``y`` at the save steps."""
    paths, d = y.shape
    a = np.empty(d)
    s = np.empty((d, d))
    root = np.empty((d, d))
    z = np.empty(d)
    for n in range(dw.shape[0]):
        for p in range(paths):
            h = y[p]
            finite = True
            for i in range(d):
                finite = finite and np.isfinite(h[i])
            if not finite:
                continue
            drift_into(h, a)
            covariance_into(h, s)
            for i in range(d):
                for j in range(d):
                    finite = finite and np.isfinite(s[i, j])
            if not finite:
                y[p, :] = np.nan
                continue
            _root(s, root)
            hz = 0.0
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += root[i, j] * dw[n, p, j]
                z[i] = acc
                hz += h[i] * acc
            for i in range(d):
                y[p, i] = h[i] + a[i] * dt + scale * (z[i] - h[i] * hz)
        while slot < saves.size and saves[slot] == n + 1:
            out[slot] = y
            slot += 1
    return slot


def euler_compiled(
    coefficients: SMECoefficients, y0: np.ndarray, save: np.ndarray, dt: float, brownian: BrownianIncrements
) -> np.ndarray:
    """States ``(T, P, d)`` at the save steps ``save`` (``save[0] = 0``) from ``y0`` ``(P, d)``."""
    drift_into, covariance_into = coefficients.compiled()
    y = np.array(y0, dtype=float, copy=True)
    out = np.empty((save.size, *y.shape))
    out[0] = y
    steps = int(save[-1])
    slot = 1
    for start in range(0, steps, CHUNK):
        stop = min(start + CHUNK, steps)
        dw = np.ascontiguousarray(brownian.increments(start, stop))
        slot = _advance(
            y, dw, dt, coefficients.noise_scale, drift_into, covariance_into, save - start, out, slot
        )
    return out


@numba.njit(cache=False)
def _advance_delayed(ring, n0, lag, dw, dt, scale, drift_into, covariance_into, saves, out, slot):
    """Euler–Maruyama of the delayed SME over the increments ``dw`` (steps, P, d), from global step ``n0``.

    ``ring`` (K + 1, P, d) holds ``H_j`` in slot ``j mod (K + 1)``; the step is
    ``H_{n+1} = H_n + b(Z) Δt + σ(Z) ΔW_n`` with ``Z = H_{n−K}``, whose slot ``H_{n+1}`` then takes.
    """
    size, paths, d = ring.shape
    a = np.empty(d)
    s = np.empty((d, d))
    root = np.empty((d, d))
    z = np.empty(d)
    x = np.empty(d)
    for n in range(dw.shape[0]):
        now, old, nxt = (n0 + n) % size, (n0 + n - lag) % size, (n0 + n + 1) % size
        for p in range(paths):
            finite = True
            for i in range(d):
                x[i] = ring[old, p, i]
                finite = finite and np.isfinite(x[i]) and np.isfinite(ring[now, p, i])
            if finite:
                drift_into(x, a)
                covariance_into(x, s)
                for i in range(d):
                    for j in range(d):
                        finite = finite and np.isfinite(s[i, j])
            if not finite:
                ring[nxt, p, :] = np.nan
                continue
            _root(s, root)
            xz = 0.0
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += root[i, j] * dw[n, p, j]
                z[i] = acc
                xz += x[i] * acc
            for i in range(d):
                ring[nxt, p, i] = ring[now, p, i] + a[i] * dt + scale * (z[i] - x[i] * xz)
        while slot < saves.size and saves[slot] == n + 1:
            out[slot] = ring[nxt]
            slot += 1
    return slot


def euler_compiled_delayed(
    coefficients: SMECoefficients, h0: np.ndarray, lag: int, save: np.ndarray, dt: float, brownian: BrownianIncrements
) -> np.ndarray:
    """The delayed SME ``dH = b(H(t − s)) dt + σ(H(t − s)) dW``, ``s = lag · dt``, from the constant history
    ``h0`` (``(P, d)``): states ``(T, P, d)`` at the save steps ``save`` (``save[0] = 0``).

    Euler–Maruyama on the same increments as :func:`amsgd.diffusion.sdde.integrate_sdde` with the SME's
    coefficients (the two agree to rounding); the past is a ring buffer of ``lag + 1`` states.
    """
    drift_into, covariance_into = coefficients.compiled()
    ring = np.empty((lag + 1, *np.shape(h0)))
    ring[:] = h0
    out = np.empty((save.size, *ring.shape[1:]))
    out[0] = ring[0]
    steps = int(save[-1])
    slot = 1
    for start in range(0, steps, CHUNK):
        stop = min(start + CHUNK, steps)
        dw = np.ascontiguousarray(brownian.increments(start, stop))
        slot = _advance_delayed(
            ring, start, lag, dw, dt, coefficients.noise_scale, drift_into, covariance_into, save - start, out, slot
        )
    return out
