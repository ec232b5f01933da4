"""Empirical strong and weak convergence orders of SDE schemes.

For steps ``Δ_k = T/n_k`` every scheme is run on the same Brownian paths (coarsenings of one fine
path, :meth:`BrownianIncrements.coarsen`) and compared with a reference ``X(T)`` on those paths:

* the exact solution ``X(T) = exact(T, W(T), y0)`` when the SDE has one that depends on ``W`` only
  through ``W(T)`` (geometric Brownian motion, Kloeden–Platen (4.46) and (4.59), commuting linear
  systems);
* otherwise the same scheme at the finer step ``Δ_min / reference_factor`` on the same paths.

Errors, estimated over paths ``p``::

    strong(Δ) = mean_p ‖Y^Δ_p(T) − X_p(T)‖,       weak(Δ) = ‖mean_p (f(Y^Δ_p(T)) − f(X_p(T)))‖.

The weak difference uses the coupled pairs, so its Monte Carlo error is of the size of the strong
error rather than of ``sd f(X)``. The order is the slope of the least-squares line through
``(log Δ, log error)``. Its confidence interval combines two uncertainties: the Monte Carlo error,
as the percentile bootstrap interval over paths (paths resampled jointly across levels, so the
correlation between levels is kept), widened on each side by ``t_{L−2} · SE``, the regression's
residual standard error — the lack of fit of a straight line, i.e. pre-asymptotic curvature.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float, json_values
from amsgd.core.seeding import RngLike, child_sequence, root_sequence
from amsgd.diffusion.brownian import BrownianIncrements
from amsgd.diffusion.schemes import Diffusion, Drift, get_scheme
from amsgd.diffusion.sde import integrate_sde

Exact = Callable[[float, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class OrderFit:
    """Fitted order; CI = bootstrap percentile interval widened by ``t_{L−2}·regression_se``; ``stated``: declared order."""

    order: float
    ci_low: float
    ci_high: float
    regression_se: float
    stated: float

    def to_dict(self) -> dict:
        return {k: json_float(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SchemeConvergence:
    """Errors per step size (with bootstrap CIs, shape ``(L, 2)``) and fitted orders of one scheme."""

    scheme: str
    dt: np.ndarray
    strong_error: np.ndarray
    strong_ci: np.ndarray
    weak_error: np.ndarray
    weak_ci: np.ndarray
    strong: OrderFit
    weak: OrderFit
    diverged: int

    def to_dict(self) -> dict:
        return {
            "scheme": self.scheme,
            "dt": self.dt.tolist(),
            "strong_error": json_values(self.strong_error),
            "weak_error": json_values(self.weak_error),
            "strong_order": self.strong.to_dict(),
            "weak_order": self.weak.to_dict(),
            "diverged_paths": self.diverged,
        }


@dataclass(frozen=True)
class ConvergenceStudy:
    """Convergence of several schemes on one SDE; ``reference`` is ``"exact"`` or ``"fine"``."""

    results: dict[str, SchemeConvergence]
    reference: str
    t_end: float
    paths: int
    commutative: bool
    confidence: float = 0.95
    bootstrap: int = 400

    def to_dict(self) -> dict:
        return {
            "reference": self.reference,
            "t_end": self.t_end,
            "paths": self.paths,
            "commutative_noise": self.commutative,
            "confidence": self.confidence,
            "order_ci": "percentile bootstrap over paths, widened by t * the fitted slope's standard error (regression_se)",
            "schemes": {name: r.to_dict() for name, r in self.results.items()},
        }


def _slopes(dt: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Least-squares slopes of ``log errors[..., k]`` against ``log dt[k]``."""
    x = np.log(np.asarray(dt, dtype=float))
    y = np.log(np.maximum(np.asarray(errors, dtype=float), np.finfo(float).tiny))
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)


def fit_order(dt: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    """Slope of the least-squares line through ``(log dt, log errors)`` and its standard error."""
    x = np.log(np.asarray(dt, dtype=float))
    y = np.log(np.maximum(np.asarray(errors, dtype=float), np.finfo(float).tiny))
    slope = float(_slopes(dt, errors))
    xc = x - x.mean()
    resid = y - y.mean() - slope * xc
    se = float(np.sqrt(resid @ resid / (x.size - 2) / (xc @ xc))) if x.size > 2 else float("nan")
    return slope, se


@dataclass(frozen=True)
class _Setup:
    """What every scheme of a study shares: the SDE, the grids, the Brownian paths, the bootstrap."""

    drift: Drift
    diffusion: Diffusion
    y0: np.ndarray
    t_end: float
    steps: tuple[int, ...]
    finest: int
    fine: BrownianIncrements
    exact_end: np.ndarray | None  # X(t_end) per path when the solution is known
    weights: np.ndarray  # (B, P) bootstrap weights
    alpha: float
    functional: Callable[[np.ndarray], np.ndarray]
    commutative: bool

    @property
    def dts(self) -> np.ndarray:
        return self.t_end / np.asarray(self.steps, dtype=float)


def _scheme_convergence(setup: _Setup, scheme) -> SchemeConvergence:
    """Strong and weak errors of one scheme at every step, with bootstrap intervals and fitted orders."""

    def final(n: int) -> np.ndarray:
        times = np.array([0.0, setup.t_end])
        brownian = setup.fine.coarsen(setup.finest // n)
        return integrate_sde(setup.drift, setup.diffusion, setup.y0, times, scheme=scheme, brownian=brownian).y[-1]

    f, alpha, paths = setup.functional, setup.alpha, setup.fine.paths
    ref = setup.exact_end if setup.exact_end is not None else final(setup.finest)
    ends = np.stack([final(n) for n in setup.steps])  # (L, P, d)
    ok = np.isfinite(ends).all(axis=(0, 2)) & np.isfinite(ref).all(axis=1)
    # diverged paths (huge or infinite ends) are left out below, and where every path diverged the errors
    # and orders are NaN (diverged_paths says why): neither is a warning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        strong_p = np.linalg.norm(ends - ref, axis=-1)  # (L, P)
        weak_p = (np.asarray(f(ends)) - np.asarray(f(ref))[None]).reshape(len(setup.steps), paths, -1)
        w = setup.weights * ok
        w = w / w.sum(axis=1, keepdims=True)
        strong_b = np.einsum("bp,lp->bl", w, np.where(ok, strong_p, 0.0))
        weak_b = np.linalg.norm(np.einsum("bp,lpk->blk", w, np.where(ok[:, None], weak_p, 0.0)), axis=-1)
        strong = strong_p[:, ok].mean(axis=1)
        weak = np.linalg.norm(weak_p[:, ok].mean(axis=1), axis=-1)
        return SchemeConvergence(
            scheme.name, setup.dts,
            strong, np.quantile(strong_b, [alpha, 1 - alpha], axis=0).T,
            weak, np.quantile(weak_b, [alpha, 1 - alpha], axis=0).T,
            _order(setup.dts, strong, strong_b, scheme.strong_order_for(setup.commutative), alpha),
            _order(setup.dts, weak, weak_b, scheme.weak_order, alpha),
            int((~ok).sum()),
        )  # fmt: skip


def _order(dts: np.ndarray, errors: np.ndarray, bootstrap: np.ndarray, stated: float, alpha: float) -> OrderFit:
    """The fitted order with its bootstrap interval, widened by the regression's own t-interval."""
    order, se = fit_order(dts, errors)
    lo, hi = np.quantile(_slopes(dts, bootstrap), [alpha, 1 - alpha])
    widen = stats.t.ppf(1 - alpha, dts.size - 2) * se if dts.size > 2 else 0.0
    return OrderFit(order, float(lo - widen), float(hi + widen), se, float(stated))


def study_grid(schemes: Sequence, steps: Sequence[int], t_end: float, bootstrap: int, confidence: float,
               reference_factor: int | None) -> tuple[list[int], float, int]:  # fmt: skip
    """A convergence study's settings checked: ``(steps, t_end, finest)``, the sorted step counts and
    the finest grid's steps (``max(steps) · reference_factor``, or ``max(steps)`` against an exact
    solution, ``reference_factor`` None). The schemes are named, each once."""
    names = [getattr(s, "name", s) for s in scheme_list(schemes)]
    if not names or any(n in ("", None) for n in names):
        raise ProblemError(f"schemes must name at least one scheme, and no empty name; got {names}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ProblemError(f"schemes must differ; listed more than once: {', '.join(map(str, twice))}")
    steps = step_counts(steps)
    t_end = checks.positive("t_end", t_end)
    checks.positive_int("bootstrap", bootstrap)
    checks.confidence(confidence)
    if reference_factor is not None and (not checks.is_whole_number(reference_factor) or reference_factor < 2):
        raise ProblemError(f"reference_factor must be an integer >= 2 (the reference step is the finest step divided "
                           f"by it; at 1 the finest level is its own reference, error 0), got {reference_factor!r}")
    finest = steps[-1] * (1 if reference_factor is None else int(reference_factor))
    if any(finest % n for n in steps):
        raise ProblemError(f"every step count must divide the finest grid's {finest} steps")
    return steps, t_end, finest


def scheme_list(schemes: Sequence) -> list:
    """``schemes`` as a list, refusing one name given as text (it would be read letter by letter)."""
    if isinstance(schemes, str):
        raise ProblemError(f"schemes must be a list of scheme names, got the text {schemes!r} (write [{schemes!r}])")
    return list(schemes)


def step_counts(steps: Sequence[int]) -> list[int]:
    """A convergence study's step counts, sorted: at least two different whole numbers >= 1 (16.0 is 16;
    4.5 was read as 4)."""
    try:
        values = [] if isinstance(steps, str) else list(steps)
    except TypeError:
        values = []
    whole = [checks.is_whole_number(n) or (checks.is_number(n) and float(n).is_integer()) for n in values]
    if not values or not all(whole):
        raise ProblemError(f"steps must be a list of whole step counts such as (16, 32, 64), got {steps!r}")
    counts = sorted(int(n) for n in values)
    if len(set(counts)) < 2 or counts[0] < 1:
        raise ProblemError(f"steps must list at least two different positive step counts, got {counts}")
    return counts


def convergence_study(
    drift: Drift,
    diffusion: Diffusion,
    y0: np.ndarray,
    t_end: float,
    *,
    steps: Sequence[int] = (16, 32, 64, 128, 256),
    schemes: Sequence[str] = ("euler", "milstein", "weak2"),
    paths: int = 1000,
    rng: RngLike = None,
    exact: Exact | None = None,
    functional: Callable[[np.ndarray], np.ndarray] | None = None,
    reference_factor: int = 8,
    commutative: bool = False,
    bootstrap: int = 400,
    confidence: float = 0.95,
) -> ConvergenceStudy:
    """Strong and weak errors of ``schemes`` at ``Δ = t_end/n`` for ``n`` in ``steps``.

    ``exact(t, w, y0)`` maps the time, Brownian values ``(P, m)`` and start to ``X(t)`` ``(P, d)``;
    without it the reference is each scheme at ``max(steps) * reference_factor`` steps.
    ``functional`` (default identity) is the ``f`` of the weak error. ``commutative`` selects which
    declared strong order is ``stated`` for each scheme.
    """
    steps, t_end, finest = study_grid(schemes, steps, t_end, bootstrap, confidence,
                                      None if exact is not None else reference_factor)  # fmt: skip
    y0 = np.asarray(y0, dtype=float)
    m = np.asarray(diffusion(np.atleast_2d(y0)[:1])).shape[-1]
    root = root_sequence(rng)
    fine = BrownianIncrements.create(t_end / finest, finest, m, paths, root)
    boot = np.random.default_rng(child_sequence(root, 7))
    setup = _Setup(
        drift, diffusion, y0, float(t_end), tuple(steps), finest, fine,
        None if exact is None else np.asarray(exact(t_end, fine.increments().sum(axis=0), y0), dtype=float),
        boot.multinomial(paths, np.full(paths, 1.0 / paths), size=bootstrap) / paths,  # (B, P) weights
        (1 - confidence) / 2, functional or (lambda y: y), commutative,
    )  # fmt: skip
    results = {s.name: _scheme_convergence(setup, s) for s in map(get_scheme, schemes)}
    return ConvergenceStudy(
        results, "exact" if exact is not None else "fine", float(t_end), paths, commutative, confidence, bootstrap
    )
