"""Ensembles of the Itô stochastic delay differential equation (SDDE) ``dY = a(Y(t − s)) dt + b(Y(t − s)) dW``.

The coefficients are those of :mod:`.sde` (``drift: (..., d) -> (..., d)``, ``diffusion: (..., d) ->
(..., d, m)``), evaluated at the *delayed* state. The integrator works on the fixed grid ``t_n = t_0 + nΔ``
and holds the delay as a whole number of steps ``K = s/Δ`` (:func:`delay_steps`); before ``t_0`` the state
is the history ``Y(t) = φ(t)``, ``t ∈ [t_0 − s, t_0]`` (a constant vector or a callable).

Schemes, with ``z_n = Y_{n−K}`` the delayed state (``φ(t_{n−K})`` while ``n < K``):

* ``"euler"`` — Euler–Maruyama ``Y_{n+1} = Y_n + a(z_n) Δ + b(z_n) ΔW_n``. Strong order 1/2 on any noise,
  1 on additive noise (``b`` constant); weak order 1.
* ``"milstein"`` — the Milstein scheme of Hu, Mohammed & Yan (2004) for coefficients of the delayed
  argument only. Over ``[t_n, t_{n+1}]`` the noise coefficient moves with the delayed state,
  ``b^k(Y(u − s)) − b^k(Y(t_n − s)) ≈ Σ_j (∂b^k · b^j)(z_n, Y_{n−2K}) (W^j(u − s) − W^j(t_n − s))``, so::

      Y_{n+1} = Y_n + a(z_n) Δ + b(z_n) ΔW_n + Σ_{j,k} ∂b^k(z_n)[b^j(Y_{n−2K})] J^{jk}_n,
      J^{jk}_n = ∫_{t_n}^{t_{n+1}} (W^j(u − s) − W^j(t_n − s)) dW^k(u).

  The directional derivative is taken derivative-free, ``(b^k(z + b^j(Y_{n−2K}) √Δ) − b^k(z))/√Δ``
  (``m + 2`` diffusion calls per step). For ``n < K`` the delayed piece of the path lies in the
  deterministic history and the term is ``O(Δ^{3/2})``: it is left out (the constant history makes it 0).
  For ``K ≥ 1`` the two Brownian pieces are disjoint, hence independent, and ``J`` is not a function of
  the step's increments: its conditional mean is ``½ ΔW^j_{n−K} ΔW^k_n`` and the rest is a mixed Lévy
  area of variance of order ``Δ²``. The integrator takes ``J`` from the Brownian source:

  - on a source coarsened from a finer grid (:meth:`BrownianIncrements.coarsen`, ``F`` fine steps per
    step) ``J`` is the sum over the fine sub-steps ``Σ_f (W^j_f − W^j_0 + ½ δW^j_f) δW^k_f`` of the
    delayed and the current pieces — exact for the Brownian path resolved on the fine grid (the same
    path a fine-grid run sees), which makes the scheme strong order 1 against that run;
  - on a source's own grid (``F = 1``) ``J = ½ ΔW^j_{n−K} ΔW^k_n`` and the mixed areas are dropped:
    strong order 1/2 (with a smaller constant than Euler), 1 on additive noise where the term vanishes.

  With ``K = 0`` it is the derivative-free Milstein scheme of :class:`~amsgd.diffusion.schemes.Milstein`
  (strong order 1 on commutative noise). Weak order 1.

Both schemes read the same keyed :class:`BrownianIncrements` as :func:`~amsgd.diffusion.sde.integrate_sde`,
so an SDE run and an SDDE run with the same seed share their noise, and with ``K = 0`` the result is the
SDE integrator's, bit for bit. The states are kept in a ring buffer of the last ``K + 1`` steps
(``2K + 1`` for Milstein): memory ``O(K · paths · d)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.progress import counter
from amsgd.core.seeding import RngLike, child_sequence, root_sequence
from amsgd.diffusion.brownian import BrownianIncrements
from amsgd.diffusion.convergence import ConvergenceStudy, SchemeConvergence, _order, scheme_list, study_grid
from amsgd.diffusion.schemes import SCHEMES, Diffusion, Drift
from amsgd.diffusion.sde import (
    CHUNK,
    SDESolution,
    _check_brownian,
    _noise_dim,
    _save_steps,
    _uniform_spacing,
    require_brownian,
    store_observed,
)

#: The SDDE schemes: name -> (strong order on general noise, strong order on additive noise, weak order).
SDDE_SCHEMES: dict[str, tuple[float, float, float]] = {"euler": (0.5, 1.0, 1.0), "milstein": (0.5, 1.0, 1.0)}
#: Strong order of ``milstein`` with ``K ≥ 1`` when the source resolves ``J`` on a finer grid.
MILSTEIN_RESOLVED_STRONG_ORDER = 1.0

History = np.ndarray | Callable[[float], np.ndarray]


@dataclass(frozen=True)
class SDDESolution(SDESolution):
    """An ensemble of SDDE paths: :class:`~amsgd.diffusion.sde.SDESolution` plus the delay ``K`` in steps."""

    delay_steps: int = 0

    @property
    def delay(self) -> float:
        """The delay ``s = K Δ`` in the time unit of ``t``."""
        return self.delay_steps * self.dt


def delay_steps(delay: float, dt: float) -> int:
    """``K = s/Δ`` for a delay ``s`` that is a whole number of grid steps ``Δ`` (a ProblemError otherwise)."""
    if not (np.isfinite(delay) and delay >= 0):
        raise ProblemError(f"delay must be a finite number >= 0, got {delay!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ProblemError(f"dt must be finite and > 0, got {dt!r}")
    k = int(round(delay / dt))
    if abs(k * dt - delay) > 1e-9 * max(delay, dt):
        raise ProblemError(
            f"delay {delay:g} is not a whole number of grid steps dt = {dt:g}: choose dt dividing the delay"
        )
    return k


# Over 60 lines only by its parameter documentation.
def integrate_sdde(
    drift: Drift,
    diffusion: Diffusion,
    history: History,
    delay_steps: int,
    times: np.ndarray,
    *,
    dt: float | None = None,
    paths: int | None = None,
    scheme: str = "euler",
    rng: RngLike = None,
    brownian: BrownianIncrements | None = None,
    observe: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: bool | None = None,
) -> SDDESolution:
    """Integrate ``dY = a(Y(t − s)) dt + b(Y(t − s)) dW``, ``s = delay_steps · dt``, and save at ``times``.

    Parameters
    ----------
    drift, diffusion
        Vectorised coefficients ``a`` and ``b``, evaluated at the delayed state.
    history
        ``Y(t)`` for ``t ≤ times[0]``: a constant ``(d,)`` or ``(P, d)`` array, or a callable
        ``φ(t) -> (d,) or (P, d)`` evaluated at ``times[0] − k dt``, ``k = delay_steps, ..., 0``.
    delay_steps
        The delay ``K ≥ 0`` in grid steps (:func:`delay_steps` converts a delay in time units).
    times
        Increasing save times on the grid ``times[0] + n dt``.
    dt
        Step size; defaults to ``brownian.dt`` or, for uniform ``times``, their spacing.
    paths
        Number of paths; defaults to ``brownian.paths``, the history's rows or 1.
    scheme
        ``"euler"`` or ``"milstein"`` (see the module documentation for the Milstein variant).
    rng, brownian, observe, progress
        As in :func:`~amsgd.diffusion.sde.integrate_sde`.
    """
    if not isinstance(scheme, str) or scheme not in SDDE_SCHEMES:
        raise ProblemError(f"unknown SDDE scheme {scheme!r}; allowed: {', '.join(SDDE_SCHEMES)}")
    require_brownian(brownian)
    if not (checks.is_number(delay_steps) and float(delay_steps).is_integer() and delay_steps >= 0):
        raise ProblemError(f"delay_steps must be an integer >= 0 (the delay in grid steps), got {delay_steps!r}")
    k = int(delay_steps)
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 2 or not np.all(np.diff(times) > 0):
        raise ProblemError("times must be an increasing 1-D array of at least two save times")
    if dt is None:
        dt = brownian.dt if brownian is not None else _uniform_spacing(times)
    save = _save_steps(times, dt)
    steps = int(save[-1])
    past = _history_values(history, times[0], float(dt), k)  # (K + 1, P or 1, d): t_{−K} .. t_0
    if paths is None:
        paths = brownian.paths if brownian is not None else past.shape[1]
    paths = checks.positive_int("paths", paths)
    if past.shape[1] not in (1, paths):
        raise ProblemError(f"history has {past.shape[1]} rows but paths = {paths}")
    past = np.broadcast_to(past, (k + 1, paths, past.shape[-1]))
    m = _noise_dim(drift, diffusion, past[-1, :2].copy())
    if brownian is None:
        brownian = BrownianIncrements.create(dt, steps, m, paths, rng)
    _check_brownian(brownian, dt, steps, m, paths)
    with np.errstate(all="ignore"):
        out = _run(scheme, drift, diffusion, past, k, save, float(dt), brownian, observe, progress)
    finite = np.isfinite(out.reshape(out.shape[0], out.shape[1], -1)).all(axis=(0, 2))
    return SDDESolution(times, out, float(dt), steps, scheme, ~finite, brownian, k)


def _history_values(history: History, t0: float, dt: float, k: int) -> np.ndarray:
    """The history at ``t0 − j dt``, ``j = k, ..., 0``, shape ``(k + 1, P, d)`` (P = 1 when shared)."""
    if callable(history):
        rows = [np.asarray(history(t0 - j * dt), dtype=float) for j in range(k, -1, -1)]
        shapes = {r.shape for r in rows}
        if len(shapes) != 1 or rows[0].ndim not in (1, 2):
            raise ProblemError("history(t) must return arrays of one shape, (d,) or (paths, d), for every t")
        values = np.stack([np.atleast_2d(r) for r in rows])
    else:
        value = np.asarray(history, dtype=float)
        if value.ndim not in (1, 2):
            raise ProblemError(f"history must have shape (d,) or (paths, d), or be a callable; got {value.shape}")
        values = np.broadcast_to(np.atleast_2d(value), (k + 1, *np.atleast_2d(value).shape))
    if not np.all(np.isfinite(values)):
        raise ProblemError("history must be finite")
    return values


def _run(scheme, drift, diffusion, past, k, save, dt, brownian, observe, progress) -> np.ndarray:
    """The stepping loop over chunks of increments, with the ring buffer of past states."""
    size = k + 1 if scheme == "euler" else 2 * k + 1
    ring = np.empty((size, *past.shape[1:]))
    for j in range(size):  # slot of step n is n mod size; steps before −K hold φ(t_{−K}) (never read)
        ring[(j - size + 1) % size] = past[max(j - size + 1 + k, 0)]
    first = store_observed(observe, ring[0])
    out = np.empty((save.size, *first.shape))
    out[0] = first
    slot, steps = 1, int(save[-1])
    resolved = scheme == "milstein" and k > 0
    chunk = max(1, CHUNK // brownian.factor) if resolved else CHUNK
    with counter(steps, "steps", f"sdde-{scheme}", show=progress) as bar:
        for start in range(0, steps, chunk):
            stop = min(start + chunk, steps)
            dw = brownian.increments(start, stop)
            mixed = _mixed_integrals(brownian, start, stop, k) if resolved else None
            for n in range(start, stop):
                y = _step(scheme, drift, diffusion, ring, size, n, k, dt, dw[n - start],
                          None if mixed is None else mixed[n - start])  # fmt: skip
                ring[(n + 1) % size] = y
                while slot < save.size and save[slot] == n + 1:
                    out[slot] = store_observed(observe, y)
                    slot += 1
            bar.update(stop - start)
    return out


def _step(scheme, drift, diffusion, ring, size, n, k, dt, dw, mixed) -> np.ndarray:
    """``Y_{n+1}`` from the ring of past states (``Y_j`` in slot ``j mod size``)."""
    y = ring[n % size]
    if k == 0:  # the SDE schemes themselves: bit for bit integrate_sde
        return SCHEMES[scheme].step(drift, diffusion, y, dt, dw)
    z = ring[(n - k) % size]
    b = diffusion(z)
    out = y + drift(z) * dt + np.einsum("pij,pj->pi", b, dw)
    if scheme == "milstein" and n >= k:
        sqdt = np.sqrt(dt)
        earlier = diffusion(ring[(n - 2 * k) % size])  # b(Y_{n−2K}), (P, d, m)
        shifted = z[:, None, :] + np.swapaxes(earlier, 1, 2) * sqdt  # (P, j, d): z + b^j(Y_{n−2K}) √Δ
        lb = diffusion(shifted) - b[:, None, :, :]  # (P, j, d, k) ≈ √Δ ∂b^k(z)[b^j(Y_{n−2K})]
        out = out + np.einsum("pjik,pjk->pi", lb, mixed) / sqdt
    return out


def _mixed_integrals(brownian: BrownianIncrements, start: int, stop: int, k: int) -> np.ndarray:
    """``J^{jk}_n = ∫ (W^j(u − s) − W^j(t_n − s)) dW^k(u)`` for steps ``[start, stop)``, shape ``(n, P, m, m)``.

    Sums over the source's fine sub-steps (``F = brownian.factor``) of the delayed piece (step ``n − K``)
    and the current piece; each fine sub-step contributes its conditional mean ``½ δW^j δW^k``. Zero for
    ``n < K`` (the delayed piece lies in the history).
    """
    f = brownian.factor
    fine = BrownianIncrements(brownian.fine_dt, brownian.steps * f, brownian.dim, brownian.paths, brownian.root)
    shape = (stop - start, f, brownian.paths, brownian.dim)
    current = fine.increments(start * f, stop * f).reshape(shape)
    delayed = np.zeros(shape)
    lo = max(start - k, 0)
    if lo < stop - k:
        delayed[lo - (start - k) :] = fine.increments(lo * f, (stop - k) * f).reshape(stop - k - lo, *shape[1:])
    partial = np.cumsum(delayed, axis=1) - 0.5 * delayed  # W^j_f − W^j_0 + ½ δW^j_f
    return np.einsum("nfpj,nfpk->npjk", partial, current)


def stated_strong_order(scheme: str, *, additive: bool = False, resolved: bool = True) -> float:
    """The strong order of an SDDE scheme: on additive noise, or with ``J`` resolved (Milstein), or in general."""
    general, on_additive, _ = SDDE_SCHEMES[scheme]
    if additive:
        return on_additive
    if scheme == "milstein" and resolved:
        return MILSTEIN_RESOLVED_STRONG_ORDER
    return general


# Over 60 lines only by its parameter documentation.
def sdde_convergence_study(
    drift: Drift,
    diffusion: Diffusion,
    history: History,
    delay: float,
    t_end: float,
    *,
    steps: Sequence[int] = (16, 32, 64, 128),
    schemes: Sequence[str] = ("euler", "milstein"),
    paths: int = 500,
    rng: RngLike = None,
    functional: Callable[[np.ndarray], np.ndarray] | None = None,
    reference_factor: int = 8,
    additive: bool = False,
    bootstrap: int = 400,
    confidence: float = 0.95,
) -> ConvergenceStudy:
    """Strong and weak errors of SDDE ``schemes`` at ``Δ = t_end/n``, ``n`` in ``steps``, against a fine run.

    Every level runs on a coarsening of one fine Brownian source with ``max(steps) · reference_factor``
    steps, and the reference is each scheme on that fine grid; the delay must be a whole number of steps
    at every level. Errors, order fits and their intervals are those of
    :func:`amsgd.diffusion.convergence.convergence_study` (bootstrap over paths widened by the
    standard error of the regression's slope). ``additive`` states the noise is additive (strong order 1 for both
    schemes); ``ConvergenceStudy.commutative`` records it. ``functional`` is the ``f`` of the weak error.
    """
    steps, t_end, finest = study_grid(schemes, steps, t_end, bootstrap, confidence, reference_factor)
    schemes = scheme_list(schemes)
    lags = [delay_steps(delay, t_end / n) for n in steps]  # refuses a delay off any grid
    m = np.asarray(diffusion(_history_values(history, 0.0, t_end / finest, 0)[-1][:1])).shape[-1]
    root = root_sequence(rng)
    fine = BrownianIncrements.create(t_end / finest, finest, m, paths, root)
    boot = np.random.default_rng(child_sequence(root, 7))
    weights = boot.multinomial(paths, np.full(paths, 1.0 / paths), size=bootstrap) / paths
    alpha, f = (1 - confidence) / 2, functional or (lambda y: y)
    dts = t_end / np.asarray(steps, dtype=float)
    times = np.array([0.0, t_end])
    results = {}
    for name in schemes:

        def final(n: int, lag: int) -> np.ndarray:
            source = fine.coarsen(finest // n)
            return integrate_sdde(drift, diffusion, history, lag, times, scheme=name, brownian=source).y[-1]

        ref = final(finest, delay_steps(delay, t_end / finest))
        ends = np.stack([final(n, lag) for n, lag in zip(steps, lags)])  # (L, P, d)
        ok = np.isfinite(ends).all(axis=(0, 2)) & np.isfinite(ref).all(axis=1)
        strong_p = np.linalg.norm(ends - ref, axis=-1)
        weak_p = (np.asarray(f(ends)) - np.asarray(f(ref))[None]).reshape(len(steps), paths, -1)
        w = weights * ok
        w = w / w.sum(axis=1, keepdims=True)
        strong_b = np.einsum("bp,lp->bl", w, np.where(ok, strong_p, 0.0))
        weak_b = np.linalg.norm(np.einsum("bp,lpk->blk", w, np.where(ok[:, None], weak_p, 0.0)), axis=-1)
        strong = strong_p[:, ok].mean(axis=1)
        weak = np.linalg.norm(weak_p[:, ok].mean(axis=1), axis=-1)
        results[name] = SchemeConvergence(
            name, dts,
            strong, np.quantile(strong_b, [alpha, 1 - alpha], axis=0).T,
            weak, np.quantile(weak_b, [alpha, 1 - alpha], axis=0).T,
            _order(dts, strong, strong_b, stated_strong_order(name, additive=additive), alpha),
            _order(dts, weak, weak_b, SDDE_SCHEMES[name][2], alpha),
            int((~ok).sum()),
        )  # fmt: skip
    return ConvergenceStudy(results, "fine", float(t_end), paths, additive, confidence, bootstrap)
