"""One entry function for ensembles of the Itô SDE ``dY = a(Y) dt + b(Y) dW``: :func:`integrate_sde`.

The equation is autonomous, with vectorised coefficients ``drift: (..., d) -> (..., d)`` and
``diffusion: (..., d) -> (..., d, m)``. All paths share one :class:`BrownianIncrements` source, so two
schemes (or the batched scheme and sdeint) run with the same ``paths`` and ``rng`` — or the same
``brownian`` — see the same noise path by path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.progress import counter
from amsgd.core.seeding import RngLike
from amsgd.diffusion.brownian import BLOCK, BrownianIncrements
from amsgd.diffusion.schemes import BatchedScheme, Diffusion, Drift, Scheme, get_scheme

#: The most steps one integration may take (a dt of 1e-9 iterations over one iteration asked for 8 GB
#: of save times alone).
MAX_STEPS = 100_000_000
#: Steps of increments fetched from the Brownian source at a time (bounds memory for long runs). Equal to
#: the source's block so that each keyed block is generated once (a coarsened view's chunk spans whole blocks).
CHUNK = BLOCK


@dataclass(frozen=True)
class SDESolution:
    """An ensemble of SDE paths.

    Attributes
    ----------
    t
        Save times, shape ``(T,)``; ``t[0]`` is the initial time.
    y
        ``(T, P, d)`` states at the save times, or ``(T, P, ...)`` values of ``observe(states)``.
    dt, steps
        The integration step and the number of steps taken.
    scheme
        The scheme's name.
    diverged
        ``(P,)`` True for paths that became non-finite (their values are NaN/inf, never averaged in).
    brownian
        The noise source; pass it to another call to reuse the same Brownian paths.
    """

    t: np.ndarray
    y: np.ndarray
    dt: float
    steps: int
    scheme: str
    diverged: np.ndarray
    brownian: BrownianIncrements

    @property
    def paths(self) -> int:
        return int(self.y.shape[1])


# Over 60 lines only by its parameter documentation.
def integrate_sde(
    drift: Drift,
    diffusion: Diffusion,
    y0: np.ndarray,
    times: np.ndarray,
    *,
    scheme: str | Scheme = "euler",
    dt: float | None = None,
    paths: int | None = None,
    rng: RngLike = None,
    brownian: BrownianIncrements | None = None,
    observe: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: bool | None = None,
) -> SDESolution:
    """Integrate ``dY = a(Y) dt + b(Y) dW`` from ``Y(times[0]) = y0`` and save at ``times``.

    Parameters
    ----------
    drift, diffusion
        Vectorised coefficients ``a`` and ``b``.
    y0
        Initial state ``(d,)`` shared by all paths, or ``(P, d)`` one per path.
    times
        Increasing save times; each must lie on the grid ``times[0] + n dt``.
    scheme
        A name from :data:`amsgd.diffusion.schemes.SCHEMES` (``euler``, ``milstein``, ``weak2``,
        ``sdeint-euler``, ``sdeint-sri2``) or a :class:`Scheme`.
    dt
        Step size; defaults to ``brownian.dt`` or, for uniform ``times``, their spacing.
    paths
        Number of paths; defaults to ``brownian.paths``, ``y0.shape[0]`` or 1.
    rng
        SPEC 7 seed or Generator for a fresh Brownian source (ignored when ``brownian`` is given).
    brownian
        A shared Brownian source with ``dt``, ``paths`` and ``dim = m`` matching and enough steps.
    observe
        Store ``observe(y)`` (``(P, d) -> (P, ...)``) instead of the states, to save memory.
    progress
        Show a progress bar; default: only when stderr is a terminal.
    """
    method = get_scheme(scheme)
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 2 or not np.all(np.diff(times) > 0):
        raise ProblemError("times must be an increasing 1-D array of at least two save times")
    y0 = checks.real_array("y0", y0)
    if y0.ndim not in (1, 2) or y0.shape[-1] == 0:
        raise ProblemError(f"y0 must have shape (d,) or (paths, d) with d >= 1, got {y0.shape}")
    require_brownian(brownian)
    if paths is None:
        paths = brownian.paths if brownian is not None else (y0.shape[0] if y0.ndim == 2 else 1)
    paths = checks.positive_int("paths", paths)
    if dt is None:
        dt = brownian.dt if brownian is not None else _uniform_spacing(times)
    dt = checks.positive("dt", dt)
    save = _save_steps(times, dt)
    steps = int(save[-1])
    if y0.ndim == 2 and y0.shape[0] != paths:
        raise ProblemError(f"y0 has {y0.shape[0]} rows but paths = {paths}")
    y = np.broadcast_to(y0, (paths, y0.shape[-1])).copy()
    m = _noise_dim(drift, diffusion, y[:2])
    if brownian is None:
        brownian = BrownianIncrements.create(dt, steps, m, paths, rng)
    _check_brownian(brownian, dt, steps, m, paths)
    with np.errstate(all="ignore"):
        if isinstance(method, BatchedScheme):
            out = _batched(method, drift, diffusion, y, save, dt, brownian, observe, progress)
        else:
            out = _per_path(method, drift, diffusion, y, times[0], save, dt, brownian, observe, progress)
    finite = np.isfinite(out.reshape(out.shape[0], out.shape[1], -1)).all(axis=(0, 2))
    return SDESolution(times, out, float(dt), steps, method.name, ~finite, brownian)


def require_brownian(brownian: object) -> None:
    """Refuse a ``brownian`` argument that is neither None nor a :class:`BrownianIncrements`."""
    if brownian is not None and not isinstance(brownian, BrownianIncrements):
        raise ProblemError(f"brownian must be a BrownianIncrements (or None), got {type(brownian).__name__}")


def require_step_count(steps: float, step: str, span: str, advice: str = "use a larger dt") -> None:
    """Refuse an integration of more than :data:`MAX_STEPS` steps (``step`` and ``span`` name the step
    and the stretch of time in the message, ``advice`` what to change)."""
    if steps > MAX_STEPS:
        raise ProblemError(f"{step} makes {steps:.3g} steps {span} (limit {MAX_STEPS:.0e}); {advice}")


def _save_steps(times: np.ndarray, dt: float) -> np.ndarray:
    """The step numbers of the save times on the grid ``times[0] + n dt`` (refused when off it)."""
    if not (np.isfinite(dt) and dt > 0):
        raise ProblemError(f"dt must be finite and > 0, got {dt!r}")
    steps = np.rint((times - times[0]) / dt)
    require_step_count(float(steps[-1]), f"dt = {dt:g}", "between the first and last save times")
    save = steps.astype(np.int64)
    if np.any(np.abs(save * dt - (times - times[0])) > 1e-9 * max(1.0, abs(times[-1]))):
        raise ProblemError(f"every save time must be times[0] + n*dt with integer n (dt = {dt:g})")
    return save


def _uniform_spacing(times: np.ndarray) -> float:
    gaps = np.diff(times)
    if not np.allclose(gaps, gaps[0], rtol=1e-9, atol=0):
        raise ProblemError("times are not uniform: pass the integration step dt explicitly")
    return float(gaps[0])


def _noise_dim(drift: Drift, diffusion: Diffusion, y: np.ndarray) -> int:
    """The noise dimension m of ``diffusion``, both functions checked on the (up to two) paths ``y``: on
    one path a function that ignores the path axis (always returning one row) passed, and its row was
    then broadcast to every path."""
    d = y.shape[-1]
    a, b = np.asarray(drift(y)), np.asarray(diffusion(y))
    if a.shape != y.shape:
        raise ProblemError(f"drift must map (P, {d}) to (P, {d}), got {a.shape}")
    if b.ndim != 3 or b.shape[:2] != (y.shape[0], d):
        raise ProblemError(f"diffusion must map (P, {d}) to (P, {d}, m), got {b.shape}")
    return int(b.shape[2])


def _check_brownian(brownian: BrownianIncrements, dt: float, steps: int, m: int, paths: int) -> None:
    if not np.isclose(brownian.dt, dt, rtol=1e-12, atol=0):
        raise ProblemError(f"brownian.dt = {brownian.dt:g} differs from dt = {dt:g}")
    if brownian.dim != m or brownian.paths != paths:
        raise ProblemError(
            f"brownian has dim {brownian.dim} and {brownian.paths} paths; the SDE needs dim {m} and {paths} paths"
        )
    if brownian.steps < steps:
        raise ProblemError(f"brownian has {brownian.steps} steps, the save times need {steps}")


def store_observed(observe: Callable | None, y: np.ndarray) -> np.ndarray:
    """What is saved of the states ``y`` ``(P, d)``: a copy, or ``observe(y)``, checked to be numbers (or
    booleans, saved as 0 and 1) with one row per path."""
    if observe is None:
        return y.copy()
    value = np.asarray(observe(y))
    if value.ndim == 0 or value.shape[0] != y.shape[0] or value.dtype.kind not in "biuf":
        raise ProblemError(f"observe must return numbers with one row per path, shape ({y.shape[0]}, ...), got "
                           f"{value.dtype} of shape {value.shape}")  # fmt: skip
    return value.astype(float, copy=False)


def _batched(method, drift, diffusion, y, save, dt, brownian, observe, progress) -> np.ndarray:
    first = store_observed(observe, y)
    out = np.empty((save.size, *first.shape))
    out[0] = first
    slot = 1
    with counter(int(save[-1]), "steps", method.name, show=progress) as bar:
        for start in range(0, int(save[-1]), CHUNK):
            stop = min(start + CHUNK, int(save[-1]))
            dw = brownian.increments(start, stop)
            v = brownian.two_point(start, stop) if method.needs_two_point else None
            for n in range(start, stop):
                y = method.step(drift, diffusion, y, dt, dw[n - start], None if v is None else v[n - start])
                while slot < save.size and save[slot] == n + 1:
                    out[slot] = store_observed(observe, y)
                    slot += 1
            bar.update(stop - start)
    return out


def _per_path(method, drift, diffusion, y, t0, save, dt, brownian, observe, progress) -> np.ndarray:
    steps = int(save[-1])
    tspan = t0 + dt * np.arange(steps + 1)
    rows = []
    with counter(y.shape[0], "paths", method.name, show=progress) as bar:
        for p in range(y.shape[0]):
            dw = brownian.increments(0, steps, paths=[p])[:, 0, :]
            rows.append(method.integrate_path(drift, diffusion, y[p], tspan, dw, brownian.generator(p))[save])
            bar.update(1)
    states = np.stack(rows, axis=1)  # (T, P, d)
    if observe is None:
        return states
    return np.stack([store_observed(observe, s) for s in states])
