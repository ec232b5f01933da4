"""Ensembles of the stochastic modified equation (SME) of Async-MSGD on streaming PCA, and phase predictions.

The global first-order SME in eigen-coordinates and diffusion time ``t = k η``::

    dH = b(H) dt + σ(H) dW,   b(h) = (Λh − (hᵀΛh) h)/(1 − μ),   σσᵀ = η C(h)/(1 − μ)²,

with ``C(h) = Cov[g(h, Y)]`` the gradient-noise covariance. Its coefficients come from the derivation
engine (:func:`amsgd.diffusion.coefficients.sme_coefficients`); this module integrates them with
:func:`~amsgd.diffusion.sde.integrate_sde` and reads off, per path, the error ``sin² = 1 − H_1²/‖H‖²``:

* the stationary error near ``e_1``: each path's time average over a late window, averaged across
  paths (independent, so a t-interval over paths is a valid CI);
* the escape time from the worst saddle ``e_2``: the first iteration at which ``H_1²/‖H‖² ≥ δ²``
  (error ``≤ 1 − δ²``); starting exactly at ``e_2`` only the noise can start the escape;
* the travel time: from escape to the first iteration at which the error is ``≤ δ²``.

Times are reported in iterations ``k = t/η``; the SDE step ``dt`` is given in iterations too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from amsgd.core import checks
from amsgd.core.angles import sin2_error
from amsgd.core.errors import ProblemError, RunWarning
from amsgd.core.estimates import Estimate, json_float, t_interval
from amsgd.core.problem import Problem
from amsgd.core.progress import stage
from amsgd.core.seeding import RngLike, child_sequence, root_sequence
from amsgd.core.stationarity import Stationarity, window_split, window_stationarity
from amsgd.diffusion.coefficients import SMECoefficients, sme_coefficients
from amsgd.diffusion.convergence import ConvergenceStudy, convergence_study
from amsgd.diffusion.schemes import SCHEMES, Diffusion, Drift, Scheme
from amsgd.diffusion.sde import integrate_sde, require_step_count
from amsgd.diffusion.theory.options import DEFAULT_DELTA_SQ

#: The most bytes the saved paths of one integration may take.
MAX_SAVED_BYTES = 2 * 2**30
#: Euler–Maruyama compiled with numba (:mod:`.compiled`); available for the SME, not for generic SDEs.
COMPILED_EULER = "euler-jit"


def _coefficients(problem: Problem) -> SMECoefficients:
    problem.require_finite_fourth_moments()
    return sme_coefficients(problem)


def _callables(coefficients: SMECoefficients | tuple[Drift, Diffusion]) -> tuple[Drift, Diffusion]:
    if isinstance(coefficients, SMECoefficients):
        return coefficients.drift, coefficients.diffusion
    return coefficients


def sme_functions(problem: Problem) -> tuple[Drift, Diffusion]:
    """The SME drift ``b`` and diffusion ``σ`` of ``problem`` (eigen-coordinates, diffusion time)."""
    return _callables(_coefficients(problem))


@dataclass(frozen=True)
class SMEEnsemble:
    """SME paths: ``t`` diffusion time and ``iterations = t/η`` ``(T,)``; ``error`` ``(T, P)``;
    ``h`` ``(T, P, d)`` eigen-coordinates when states were kept (else None); ``diverged`` ``(P,)``."""

    t: np.ndarray
    iterations: np.ndarray
    error: np.ndarray
    h: np.ndarray | None
    diverged: np.ndarray
    scheme: str
    dt_iterations: float

    def to_dict(self) -> dict:
        """The ensemble's error paths as JSON-ready lists (NaN as null)."""
        return {
            "scheme": self.scheme,
            "dt_iterations": self.dt_iterations,
            "iterations": self.iterations.tolist(),
            "error": [[json_float(x) for x in row] for row in self.error],
            "diverged": self.diverged.tolist(),
        }

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimensions ``iteration`` and ``path`` (and ``coordinate``)."""
        import xarray as xr

        data = {"error": (("iteration", "path"), self.error), "t": ("iteration", self.t),
                "diverged": ("path", self.diverged)}  # fmt: skip
        if self.h is not None:
            data["h"] = (("iteration", "path", "coordinate"), self.h)
        return xr.Dataset(data, coords={"iteration": self.iterations, "path": np.arange(self.error.shape[1])},
                          attrs={"scheme": self.scheme, "dt_iterations": self.dt_iterations})  # fmt: skip


def integrate_sme(
    problem: Problem,
    start: np.ndarray,
    iterations: float,
    *,
    dt: float = 1.0,
    paths: int = 200,
    scheme: str | Scheme = "euler",
    rng: RngLike = None,
    coordinates: str = "eigen",
    save_every: int = 1,
    keep_states: bool = False,
    coefficients: SMECoefficients | tuple[Drift, Diffusion] | None = None,
    progress: bool | None = None,
) -> SMEEnsemble:
    """Integrate the SME for ``iterations`` iterations with step ``dt`` iterations from ``start``.

    ``start`` is ``h0`` (``coordinates="eigen"``) or ``v0`` in the problem's coordinates
    (``"original"``, converted by ``h0 = Qᵀ v0``). The error (and, with ``keep_states``, the state)
    is saved every ``save_every`` steps and at the last. ``coefficients`` overrides :func:`sme_functions`.
    The scheme ``"euler-jit"`` is the batched Euler–Maruyama compiled with numba (same noise, same result to
    rounding, several times faster; the first call compiles for a few seconds).
    """
    if not (np.isfinite(dt) and dt > 0):
        raise ProblemError(f"dt (in iterations) must be finite and > 0, got {dt!r}")
    if not isinstance(scheme, Scheme) and scheme != COMPILED_EULER and scheme not in SCHEMES:
        raise ProblemError(f"unknown scheme {scheme!r}; allowed: {', '.join([*SCHEMES, COMPILED_EULER])}")
    h0, steps, times = _grid(problem, start, iterations, dt, save_every, coordinates)
    _require_saved_size(times.size, paths, _saved_per_path(problem, scheme, keep_states))
    if coefficients is None:
        coefficients = _coefficients(problem)
    step = dt * problem.eta
    if scheme == COMPILED_EULER:
        return _integrate_compiled(problem, coefficients, h0, times, steps, float(dt), save_every, paths, rng, keep_states,
                                   progress)  # fmt: skip
    drift, diffusion = _callables(coefficients)
    observe = None if keep_states else sin2_error
    sol = integrate_sde(
        drift, diffusion, h0, times, scheme=scheme, dt=step, paths=paths, rng=rng, observe=observe, progress=progress
    )
    error = sin2_error(sol.y) if keep_states else sol.y
    return SMEEnsemble(
        times, times / problem.eta, error, sol.y if keep_states else None, sol.diverged, sol.scheme, float(dt)
    )


def _saved_per_path(problem: Problem, scheme: str | Scheme, keep_states: bool) -> int:
    """The numbers a run saves per path and save: the state (d numbers) with ``keep_states`` and for
    the compiled scheme, which always saves it (the error is computed from it afterwards), else the error."""
    return problem.dim if keep_states or scheme == COMPILED_EULER else 1


def _require_saved_size(saves: int, paths: int, per_path: int) -> None:
    """Refuse saved paths larger than :data:`MAX_SAVED_BYTES` (``per_path`` numbers per path and save)."""
    saved = saves * int(paths) * per_path * 8
    if saved > MAX_SAVED_BYTES:
        raise ProblemError(f"{paths} paths saved at {saves} times take {saved / 2**30:.1f} GiB (limit "
                           f"{MAX_SAVED_BYTES / 2**30:.0f} GiB); use fewer paths or a larger dt (in Python, "
                           "or save less often: save_every)")  # fmt: skip


def _grid(problem: Problem, start: np.ndarray, iterations: float, dt: float, save_every: int,
          coordinates: str) -> tuple[np.ndarray, int, np.ndarray]:  # fmt: skip
    """The start in eigen-coordinates ``h0``, the number of steps of ``dt`` iterations and the save times
    (diffusion time, every ``save_every`` steps) of an SME run; bad values refused in one line."""
    if not (checks.is_number(save_every) and float(save_every).is_integer() and save_every >= 1):
        raise ProblemError(f"save_every must be a positive integer, got {save_every!r}")
    if not (checks.is_number(iterations) and math.isfinite(iterations) and iterations > 0):
        raise ProblemError(f"the horizon (iterations) must be a finite number > 0, got {iterations!r}")
    steps = int(round(iterations / dt))
    require_step_count(iterations / dt, f"dt = {dt:g} iterations", f"over {iterations:g} iterations")
    if abs(steps * dt - iterations) > 1e-9 * iterations:  # the run would end elsewhere than asked
        raise ProblemError(f"the horizon of {iterations:g} iterations is not a whole number of steps of dt = {dt:g} "
                           f"iterations ({iterations / dt:.6g}); choose a dt that divides it")  # fmt: skip
    if steps < save_every:
        raise ProblemError(f"the horizon of {iterations:g} iterations holds no save point at dt = {dt:g}")
    if coordinates not in ("eigen", "original"):
        raise ProblemError(f"coordinates must be 'eigen' or 'original', got {coordinates!r}")
    start = np.asarray(start, dtype=float)
    if start.shape != (problem.dim,) or not np.all(np.isfinite(start)) or not np.any(start):
        raise ProblemError(f"start must be a finite nonzero vector of length {problem.dim} (its direction is the error's)")
    h0 = problem.to_eigen(start) if coordinates == "original" else start
    return h0, steps, dt * problem.eta * save_indices(steps, save_every)


def save_indices(steps: int, save_every: int) -> np.ndarray:
    """The steps saved: every ``save_every``-th, and the last, so that the run ends where it was asked to."""
    return np.unique(np.append(np.arange(0, steps + 1, save_every), steps))


def _integrate_compiled(problem: Problem, coefficients, h0: np.ndarray, times: np.ndarray, steps: int, dt: float,
                        save_every: int, paths: int, rng: RngLike, keep_states: bool,
                        progress: bool | None) -> SMEEnsemble:  # fmt: skip
    """:func:`integrate_sme` with the numba-compiled Euler–Maruyama (:mod:`.compiled`)."""
    if not isinstance(coefficients, SMECoefficients):
        raise ProblemError(f"scheme {COMPILED_EULER} needs the derived SMECoefficients, not plain callables")
    from amsgd.diffusion.brownian import BrownianIncrements
    from amsgd.diffusion.compiled import euler_compiled

    step = dt * problem.eta
    brownian = BrownianIncrements.create(step, steps, problem.dim, paths, rng)
    y0 = np.broadcast_to(h0, (paths, problem.dim))
    with np.errstate(all="ignore"):
        states = euler_compiled(coefficients, y0, save_indices(steps, save_every), step, brownian, progress)
        error = sin2_error(states)
    diverged = ~np.isfinite(states).all(axis=(0, 2))
    return SMEEnsemble(times, times / problem.eta, error, states if keep_states else None, diverged, COMPILED_EULER, dt)


def time_averaged_error(ensemble: SMEEnsemble, window: float = 0.5, confidence: float = 0.95) -> Estimate:
    """Per-path time average of the error from the fraction ``window`` of the run to its end (as
    :func:`amsgd.simulate.simulate`'s ``window``), then across paths."""
    first = _window_first(ensemble, window)
    per_path = ensemble.error[first:].mean(axis=0)
    return t_interval(np.where(ensemble.diverged, np.nan, per_path), confidence, support=(0.0, 1.0))  # sin²


def _window_first(ensemble: SMEEnsemble, window: float) -> int:
    """The first saved index at or after the fraction ``window`` of the run (saved every few iterations,
    the saved point before the window's start would have been averaged in)."""
    records = ensemble.t.size - 1
    first = checks.window_first(window, records)
    return min(first + 1, records) if first < checks.window_fraction(window) * records * (1 - 1e-9) else first


def window_stationarity_of(ensemble: SMEEnsemble, window: float, estimate: float) -> Stationarity:
    """Whether the ensemble's averaging window looks stationary, as :attr:`amsgd.simulate.SimulationResult.stationarity`
    decides it for runs: each path's average over the window's first half against its second (``estimate``:
    the window's own, :func:`time_averaged_error`)."""
    first, last = _window_first(ensemble, window), ensemble.t.size - 1
    split = window_split(first, last)

    def half(a: int, b: int) -> np.ndarray:  # each path's average over saves a .. b − 1, NaN for a diverged one
        if b <= a:
            return np.full(ensemble.diverged.size, np.nan)
        return np.where(ensemble.diverged, np.nan, ensemble.error[a:b].mean(axis=0))

    return window_stationarity(
        half(first, split), half(split, last + 1), start=int(round(ensemble.iterations[first])),
        end=int(round(ensemble.iterations[-1])), estimate=estimate, bound=1.0,
        advice="use more steps (--steps)", runs=("paths", "--paths"),
    )  # fmt: skip


def first_passage(ensemble: SMEEnsemble, level: float) -> np.ndarray:
    """Per path, the first saved iteration with error ``≤ level`` (NaN when never reached or diverged)."""
    below = ensemble.error <= level
    hit = below.any(axis=0) & ~ensemble.diverged
    return np.where(hit, ensemble.iterations[np.argmax(below, axis=0)], np.nan)


@dataclass(frozen=True)
class PhasePredictions:
    """Phase statistics of the SME ensemble, in iterations.

    ``escape`` and ``travel`` are means with CIs over the paths that completed the phase;
    ``escape_samples``/``travel_samples`` hold the per-path times (NaN: not completed within the
    horizon); ``stationary_error`` is the late-window time average from a start at ``e_1``, and
    ``stationarity`` whether that window looks stationary (its halves path by path).
    """

    delta_sq: float
    worst_saddle: int
    escape: Estimate
    escape_samples: np.ndarray
    travel: Estimate
    travel_samples: np.ndarray
    stationary_error: Estimate
    diverged_fraction: float
    stationarity: Stationarity | None = None
    #: Which paths of the ensemble from e_2 diverged (None: not known, every unfinished path counted as slow).
    escape_diverged: np.ndarray | None = None

    @property
    def censoring(self) -> str | None:
        """One line when some paths that stayed finite did not finish a phase within the horizon: the
        means and quantiles are then over the paths that did, the faster ones, so they are low. Paths
        that diverged are left to their own line: more steps would not finish them."""
        finite = np.ones(self.escape_samples.size, dtype=bool) if self.escape_diverged is None else ~self.escape_diverged
        parts = []
        for name, samples in (("escape", self.escape_samples), ("travel", self.travel_samples)):
            slow = float(np.mean(finite & ~np.isfinite(samples)))
            if slow > 0:
                parts.append(f"{slow:.0%} of the paths did not complete the {name}")
        if not parts:
            return None
        return (f"{' and '.join(parts)} within the horizon without diverging: that phase's mean and quantiles are over "
                "the paths that did, the faster ones, and are low (none where no path did); use more steps (--steps)")  # fmt: skip

    def to_dict(self) -> dict:
        def phase(est: Estimate, samples: np.ndarray) -> dict:
            out = est.to_dict()
            out["completed_fraction"] = float(np.isfinite(samples).mean())
            if np.isfinite(samples).any():
                out["quantiles"] = dict(
                    zip(("q10", "q50", "q90"), np.nanquantile(samples, [0.1, 0.5, 0.9]).tolist())
                )
            return out

        out = {
            "delta_sq": self.delta_sq,
            "worst_saddle": self.worst_saddle,
            "escape_iterations": phase(self.escape, self.escape_samples),
            "travel_iterations": phase(self.travel, self.travel_samples),
            "stationary_error": self.stationary_error.to_dict(),
            "diverged_fraction": self.diverged_fraction,
        }
        if self.censoring is not None:
            out["censoring"] = self.censoring
        if self.stationarity is not None:
            out["stationarity"] = self.stationarity.to_dict()
        return out


def phase_predictions(
    problem: Problem,
    *,
    iterations: float,
    dt: float = 1.0,
    paths: int = 200,
    scheme: str | Scheme = "euler",
    rng: RngLike = None,
    delta_sq: float = DEFAULT_DELTA_SQ,
    window: float = 0.5,
    confidence: float = 0.95,
    progress: bool | None = None,
) -> PhasePredictions:
    """Escape-time distribution from the worst saddle ``e_2``, travel time and stationary error from SME ensembles.

    Two ensembles of ``paths`` paths over ``iterations`` iterations (independent noise streams spawned
    from ``rng``): one from ``e_2`` for the escape and travel times, one from ``e_1`` for the stationary
    error (time average from the fraction ``window`` of the run to its end).
    """
    return _phases(integrate_sme, problem, iterations, rng, delta_sq, window, confidence,
                   dict(dt=dt, paths=paths, scheme=scheme, progress=progress))  # fmt: skip


def _phases(integrate: Callable, problem: Problem, iterations: float, rng: RngLike, delta_sq: float, window: float,
            confidence: float, options: dict) -> PhasePredictions:  # fmt: skip
    """Escape and travel from ``e_2`` and the stationary error from ``e_1``: two runs of ``integrate``
    (:func:`integrate_sme` or :func:`integrate_sme_delayed`) on independent streams spawned from ``rng``."""
    if not 0 < delta_sq < 0.5:
        raise ProblemError(f"delta_sq (δ², the phase boundary) must satisfy 0 < δ² < 1/2, got {delta_sq:g}")
    options["paths"] = checks.integer("paths", options["paths"], minimum=2)
    checks.positive("iterations", iterations)
    checks.confidence(confidence)
    checks.window_fraction(window)
    problem.require_eigengap()
    root = root_sequence(rng)
    basis = np.eye(problem.dim)
    common = dict(options, coefficients=_coefficients(problem))
    with stage("the ensemble from e_2 (escape, travel)"):
        escape_run = integrate(problem, basis[1], iterations, rng=child_sequence(root, 0), **common)
    with stage("the ensemble from e_1 (stationary error)"):
        stationary_run = integrate(problem, basis[0], iterations, rng=child_sequence(root, 1), **common)
    escape = first_passage(escape_run, 1.0 - delta_sq)
    travel = first_passage(escape_run, delta_sq) - escape
    diverged = np.concatenate([escape_run.diverged, stationary_run.diverged]).mean()
    stationary = time_averaged_error(stationary_run, window, confidence)
    phases = PhasePredictions(
        delta_sq, 2, t_interval(escape, confidence, support=(0.0, math.inf)), escape,
        t_interval(travel, confidence, support=(0.0, math.inf)), travel,  # times are not negative
        stationary, float(diverged), window_stationarity_of(stationary_run, window, stationary.mean),
        np.asarray(escape_run.diverged, dtype=bool),
    )  # fmt: skip
    said = (phases.censoring, phases.stationarity.message, _lost_paths(escape_run, stationary_run))
    for message in said if diverged < 1.0 else ():  # no path left: the caller says there is no estimate
        if message is not None:
            warnings.warn(message, RunWarning, stacklevel=3)
    return phases


def _lost_paths(escape_run, stationary_run) -> str | None:
    """One line where some paths of the two ensembles diverged, but not all (then there is no estimate at
    all, which the caller says): the estimates are over the paths that stayed finite."""
    lost = [int(np.sum(run.diverged)) for run in (escape_run, stationary_run)]
    sizes = [int(np.size(run.diverged)) for run in (escape_run, stationary_run)]
    if not 0 < sum(lost) < sum(sizes):
        return None
    return (f"{lost[0]} of the {sizes[0]} paths from e_2 and {lost[1]} of the {sizes[1]} from e_1 diverged: the phase "
            "times and the stationary error are over the paths that stayed finite, not a sample of all paths; "
            "lower --eta or --mu, or the step dt")  # fmt: skip


def sme_convergence_study(
    problem: Problem,
    *,
    iterations: int = 200,
    dt: float = 1.0,
    levels: int = 4,
    schemes: Sequence[str] = ("euler", "milstein", "weak2"),
    paths: int = 200,
    rng: RngLike = None,
    reference_factor: int = 8,
) -> ConvergenceStudy:
    """Strong and weak orders of ``schemes`` on the SME of ``problem`` from ``h0 = (1, ..., 1)/√d``.

    The compared steps are ``dt · 2^j`` iterations (``Δt = dt · 2^j · η``), ``j < levels``, over a
    horizon of ``iterations`` iterations, which must be a whole multiple of every one of them; the
    reference is each scheme at the finest step divided by ``reference_factor``, on shared
    Brownian paths (:func:`amsgd.diffusion.convergence.convergence_study`).
    """
    levels = checks.integer("levels", levels, minimum=2)
    paths = checks.integer("paths", paths, minimum=2)
    checks.positive("dt", dt)
    counts = [iterations / (dt * 2**j) for j in range(levels)]
    if any(abs(n - round(n)) > 1e-9 or round(n) < 1 for n in counts):
        raise ProblemError(
            f"steps {iterations} must be a whole multiple of every compared step dt·2^j "
            f"(up to {dt * 2 ** (levels - 1):g} iterations)"
        )
    if checks.is_whole_number(reference_factor) and reference_factor >= 2:  # else refused below, in one line
        require_step_count(iterations / dt * reference_factor, f"the reference step dt/reference_factor = "
                           f"{dt / reference_factor:g} iterations", f"over {iterations:g} iterations",
                           "use a smaller reference factor (--reference-factor) or a larger dt")  # fmt: skip
    drift, diffusion = sme_functions(problem)
    h0 = np.ones(problem.dim) / np.sqrt(problem.dim)
    if COMPILED_EULER in schemes:  # known to the ensembles, not to the study's paired schemes
        raise ProblemError(f"scheme {COMPILED_EULER} runs ensembles (amsgd integrate without --convergence-study); "
                           f"a convergence study takes {', '.join(SCHEMES)} (euler is the same scheme)")  # fmt: skip
    study = convergence_study(
        drift, diffusion, h0, iterations * problem.eta, steps=[int(round(n)) for n in counts],
        schemes=tuple(schemes), paths=paths, rng=rng, reference_factor=reference_factor, commutative=False,
    )  # fmt: skip
    lost = {name: result.diverged for name, result in study.results.items() if result.diverged > 0}
    if lost and min(result.diverged for result in study.results.values()) < paths:  # all lost: the caller says
        counts_text = ", ".join(f"{n} of {paths} with {name}" + (": no estimate" if n == paths else "")
                                for name, n in lost.items())  # fmt: skip
        warnings.warn(f"paths diverged in the convergence study ({counts_text}): the errors and orders are over the "
                      "paths that stayed finite, and the coarsest steps lie beyond the scheme's stable range; lower "
                      "--dt, --eta or --mu", RunWarning, stacklevel=2)  # fmt: skip
    return study


# The finite-delay limit: the SME with the drift and noise at the stale state (an SDDE).


@dataclass(frozen=True)
class DelayLimit:
    """The delay-differential stability limit of the SDDE ``dH = b(H(t − s)) dt + σ(H(t − s)) dW`` near e_1.

    ``delay_time`` is ``s* = min_i π (1 − μ)/(2 a_i)`` in diffusion time and ``iterations`` is ``τ* = s*/η``,
    both from :meth:`amsgd.diffusion.theory.predictions.Predictions.tau_max_delay_differential`; ``mode``
    is the mode with the largest rate ``a_i``, which sets it (``i``, ``kind``, ``rate``).
    ``algorithm_tau_max`` is the algorithm's own largest stable constant delay τ* at η and μ
    (:attr:`~amsgd.diffusion.theory.predictions.Predictions.tau_max`; None: not even τ = 0), below the
    SDDE's: the SDDE keeps η/(1 − μ) and s/(1 − μ) only, so with μ near 1 a delay it calls stable can be
    one at which the algorithm's mean dynamics are not (η 5e-5, μ 0.99: τ* 26 against the SDDE's 39.3).
    """

    delay_time: float
    iterations: float
    mode: dict
    algorithm_tau_max: int | None = None

    def to_dict(self) -> dict:
        return {"delay_time": self.delay_time, "iterations": self.iterations, "mode": self.mode,
                "algorithm_tau_max": self.algorithm_tau_max}  # fmt: skip


def delay_limit(problem: Problem) -> DelayLimit:
    """The largest delay ``s*`` below which every linear mode of the delayed SME at e_1 is stable."""
    from amsgd.diffusion.theory import predict

    predictions = predict(problem)
    tau_star = predictions.tau_max_delay_differential()
    mode = predictions.modes.describe(int(np.argmax(predictions.modes.rates)))
    return DelayLimit(tau_star * problem.eta, tau_star, mode, predictions.tau_max)


def _warn_beyond_the_algorithms_limit(problem: Problem, tau: float, limit: DelayLimit) -> None:
    """Warn (:class:`~amsgd.core.errors.RunWarning`) where the delay lies below the SDDE's limit but
    beyond the algorithm's own τ* (:class:`DelayLimit`): the SDDE's floor then describes no run of it."""
    if limit.algorithm_tau_max is not None and tau <= limit.algorithm_tau_max:
        return
    algorithm = "no delay" if limit.algorithm_tau_max is None else f"tau* = {limit.algorithm_tau_max}"
    warnings.warn(f"the delay {tau:g} is below the SDDE's limit {limit.iterations:.4g} but beyond the algorithm's own "
                  f"largest stable delay ({algorithm} at eta = {problem.eta:g}, mu = {problem.mu:g}): its mean dynamics "
                  "are unstable there, so its runs do not settle at e_1, and the SDDE, which keeps only eta/(1 - mu) and "
                  "s/(1 - mu), does not describe them (amsgd derive --sections stability)", RunWarning, stacklevel=3)  # fmt: skip


def _describe_mode(mode: dict) -> str:
    i, rate = mode["i"], mode["rate"]
    if mode["kind"] == "radial":
        return f"mode i = {i} (radial, a = 2λ{i} = {rate:g})"
    return f"mode i = {i} (λ1 − λ{i} = {rate:g})"


def _delay_grid(delay_iterations: float, dt: float) -> int:
    """The delay in SDE steps, refused when ``τ`` is not a whole number of steps ``dt`` (both in iterations)."""
    from amsgd.diffusion.sdde import delay_steps

    try:
        return delay_steps(delay_iterations, dt)
    except ProblemError:
        raise ProblemError(
            f"the delay τ = {delay_iterations:g} iterations is not a whole number of SDE steps dt = {dt:g}: "
            "choose --dt dividing --tau"
        ) from None


def integrate_sme_delayed(
    problem: Problem,
    start: np.ndarray,
    iterations: float,
    *,
    delay_iterations: float | None = None,
    dt: float = 1.0,
    paths: int = 200,
    scheme: str = "euler",
    rng: RngLike = None,
    coordinates: str = "eigen",
    save_every: int = 1,
    keep_states: bool = False,
    coefficients: SMECoefficients | tuple[Drift, Diffusion] | None = None,
    progress: bool | None = None,
) -> SMEEnsemble:
    """The SDDE limit of Async-MSGD: ``dH = b(H(t − s)) dt + σ(H(t − s)) dW`` with ``s = τ η``.

    The same SME coefficients as :func:`integrate_sme`, evaluated at the stale state; the history is the
    constant ``H(t) = h0`` for ``t ≤ 0``. ``delay_iterations`` is τ (default: the problem's constant
    delay; a random delay is refused); the step ``dt`` (iterations) must divide it. A delay beyond the
    stability limit ``s*`` of :func:`delay_limit` is refused, naming the mode. ``scheme`` is ``"euler"``,
    ``"milstein"`` (:func:`amsgd.diffusion.sdde.integrate_sdde`) or ``"euler-jit"`` (the same Euler
    compiled with numba, :func:`amsgd.diffusion.compiled.euler_compiled_delayed`). With τ = 0 it is
    :func:`integrate_sme` (the same numbers for the same seed and scheme).
    """
    from amsgd.diffusion.sdde import integrate_sdde

    tau = problem.tau if delay_iterations is None else checks.real("delay_iterations", delay_iterations)
    if tau < 0:
        raise ProblemError(f"delay_iterations must be >= 0, got {tau:g}")
    if not (np.isfinite(dt) and dt > 0):
        raise ProblemError(f"dt (in iterations) must be finite and > 0, got {dt!r}")
    if scheme not in ("euler", "milstein", COMPILED_EULER):
        raise ProblemError(f"unknown scheme {scheme!r} for the delayed SME; allowed: euler, milstein, {COMPILED_EULER}")
    lag = _delay_grid(tau, dt)
    h0, steps, times = _grid(problem, start, iterations, dt, save_every, coordinates)
    _require_saved_size(times.size, paths, _saved_per_path(problem, scheme, keep_states))
    if tau > 0:
        limit = delay_limit(problem)
        if tau * problem.eta >= limit.delay_time:
            raise ProblemError(
                f"delay s = τη = {tau * problem.eta:.4g} is beyond the delay-differential stability limit: "
                f"{_describe_mode(limit.mode)} is unstable beyond s* = {limit.delay_time:.4g} "
                f"(τ* = {limit.iterations:.4g} iterations); use a delay below it"
            )
        _warn_beyond_the_algorithms_limit(problem, tau, limit)
    checks.warn_delay_longer_than_run(tau, iterations, "the delay")  # as the runs of the algorithm warn
    if coefficients is None:
        coefficients = _coefficients(problem)
    step = dt * problem.eta
    with np.errstate(all="ignore"):
        if scheme == COMPILED_EULER:
            if not isinstance(coefficients, SMECoefficients):
                raise ProblemError(f"scheme {COMPILED_EULER} needs the derived SMECoefficients, not plain callables")
            from amsgd.diffusion.brownian import BrownianIncrements
            from amsgd.diffusion.compiled import euler_compiled_delayed

            brownian = BrownianIncrements.create(step, steps, problem.dim, paths, rng)
            y0 = np.broadcast_to(h0, (paths, problem.dim))
            states = euler_compiled_delayed(coefficients, y0, lag, save_indices(steps, save_every), step, brownian,
                                            progress)  # fmt: skip
            diverged = ~np.isfinite(states).all(axis=(0, 2))
        else:
            drift, diffusion = _callables(coefficients)
            sol = integrate_sdde(
                drift, diffusion, h0, lag, times, dt=step, paths=paths, scheme=scheme, rng=rng,
                observe=None if keep_states else sin2_error, progress=progress,
            )  # fmt: skip
            states, diverged = sol.y, sol.diverged
        error = sin2_error(states) if keep_states or scheme == COMPILED_EULER else states
    kept = states if keep_states else None
    return SMEEnsemble(times, times / problem.eta, error, kept, diverged, scheme, float(dt))


def delayed_phase_predictions(
    problem: Problem,
    *,
    iterations: float,
    delay_iterations: float | None = None,
    dt: float = 1.0,
    paths: int = 200,
    scheme: str = "euler",
    rng: RngLike = None,
    delta_sq: float = DEFAULT_DELTA_SQ,
    window: float = 0.5,
    confidence: float = 0.95,
    progress: bool | None = None,
) -> PhasePredictions:
    """:func:`phase_predictions` for the SDDE limit (:func:`integrate_sme_delayed`): escape and travel from
    ``e_2``, stationary error from ``e_1`` (late-window time average), each from a constant history."""
    return _phases(integrate_sme_delayed, problem, iterations, rng, delta_sq, window, confidence,
                   dict(delay_iterations=delay_iterations, dt=dt, paths=paths, scheme=scheme, progress=progress))  # fmt: skip
