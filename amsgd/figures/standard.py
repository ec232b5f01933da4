"""``standard_figures``: every standard picture of one problem from a modest Monte Carlo budget."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError, RunWarning
from amsgd.core.problem import Problem
from amsgd.core.progress import stage
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.figures.delays import delay_curves_figure, phase_diagram_figure
from amsgd.figures.dynamics import escape_figure, stationary_figure, trajectory_figure
from amsgd.figures.style import problem_label, problem_sigma
from amsgd.validation import delays, dynamics, stationary
from amsgd.validation.budget import Budget
from amsgd.validation.context import Context, zero_delay

#: Delays per momentum in the error-against-delay figure (0 to 1.5 × the largest τ*).
DELAY_POINTS = 12
#: The default Monte Carlo sizes of the standard figures.
FIGURE_BUDGET = Budget.uniform(256, 10_000)
#: The progress stages of :func:`standard_figures`: trajectory, stationary histograms, escape, error
#: against delay, phase diagram.
FIGURE_SETS = 5

T = TypeVar("T")


def standard_figures(problem: Problem, out_dir: str | Path, *, mus: Sequence[float] = (0.7, 0.8, 0.9),
                     budget: Budget | None = None, progress: bool | None = None) -> list[Path]:  # fmt: skip
    """Trajectories against the ODE, stationary histograms against the OU law, escape times,
    error against delay per μ and the stability diagram in (μ, τ), written as PNG to ``out_dir``.

    ``budget`` sets the Monte Carlo sizes (default :data:`FIGURE_BUDGET`: 256 runs of 10 000 steps).
    Refused (:class:`~amsgd.core.errors.ProblemError`) before any drawing when some momentum of ``mus``
    has no stable delay; a problem whose own delay is beyond τ* gets a
    :class:`~amsgd.core.errors.RunWarning` (its runs leave e_1), and a figure of its runs whose every
    replicate diverged is skipped with another; returns the paths drawn."""
    out = Path(out_dir)
    if not out.is_dir():
        raise ProblemError(f"--out directory {str(out)!r} does not exist")
    momenta = np.atleast_1d(checks.real_array("mus (the momenta)", mus))  # one momentum: a list of one
    if momenta.ndim != 1 or momenta.size == 0 or not np.all((momenta >= 0) & (momenta < 1)):
        raise ProblemError(f"mus (--mus) must be momenta in [0, 1), got {momenta.tolist()}")
    mus = momenta.tolist()
    problem.require_eigengap()
    problem.require_finite_fourth_moments()
    delay_law(problem.delay, as_iid=True)  # a delay beyond the theory's numerics: refused before any run warns
    ctx = Context(problem, budget or FIGURE_BUDGET, progress=progress)
    stars = [ctx.tau_star(m) for m in mus]  # before any drawing: a refusal leaves no figure behind
    if any(s is None for s in stars):
        raise ProblemError(f"no delay is stable at eta = {problem.eta:g} for some mu in {list(mus)}")
    if not ctx.theory.stability.stable:
        warnings.warn(f"the delay {problem.delay.spec} is not stable at eta = {problem.eta:g}, mu = {problem.mu:g} (the "
                      f"largest stable constant delay is tau* = {ctx.tau_star()}): the trajectory and escape figures "
                      "are of runs that do not settle at e_1 (they saturate at a higher error or blow up; the stationary "
                      "histograms are at tau = 0)", RunWarning, stacklevel=2)  # fmt: skip
    label = problem_label(problem)
    _, paths = _unless_diverged("trajectory", lambda: dynamics.ode_trajectory(ctx), lambda t: np.isnan(t.mean).all(),
                             lambda t: trajectory_figure(t, label, out / "trajectory.png"))  # fmt: skip
    paths += _unless_diverged(
        "stationary histograms", lambda: stationary.stationary(ctx), lambda st: st.result.diverged.all(),
        lambda st: stationary_figure(st.u_samples, st.ou_variances, st.linear_variances,
                                     problem_label(zero_delay(problem)), out / "stationary_histograms.png"),
    )[1]  # fmt: skip
    paths += _unless_diverged("escape", lambda: dynamics.phases(ctx), lambda run: np.isnan(run.h1_mean).all(),
                              lambda run: escape_figure(run, label, out / "escape.png"))[1]  # fmt: skip
    taus = np.unique(np.round(np.linspace(0, 1.5 * max(stars), DELAY_POINTS)).astype(int))
    grid_label = f"{problem_sigma(problem)}, η = {problem.eta:g}"
    curves, drawn = _unless_diverged(
        "error vs delay", lambda: [delays.delay_curve(ctx, m, taus, (8, n)) for n, m in enumerate(mus)],
        lambda cs: all(np.all(c.diverged_fraction > 0.5) for c in cs),  # the figure leaves such points out
        lambda cs: delay_curves_figure(cs, grid_label, out / "error_vs_delay.png"),
        "more than half the replicates diverged at every delay",
    )  # fmt: skip
    paths += drawn
    with stage("phase diagram"):
        paths.append(phase_diagram_figure(ctx.theory, out / "phase_diagram.png", curves=curves))
    return paths


def _unless_diverged(name: str, compute: Callable[[], T], diverged: Callable[[T], bool], draw: Callable[[T], Path],
                     what: str = "every replicate diverged") -> tuple[T, list[Path]]:  # fmt: skip
    """Run a figure's experiment and draw it: the run and the paths drawn. Where every replicate
    diverged (``diverged``), say so in a :class:`~amsgd.core.errors.RunWarning` and draw nothing.
    Statistics over no replicate are NaN there, so NumPy's warnings about them are silenced."""
    with stage(name), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        run = compute()
    if diverged(run):
        warnings.warn(f"{name}: {what} at this step size, momentum and delay; not drawn",
                      RunWarning, stacklevel=2)  # fmt: skip
        return run, []
    return run, [draw(run)]
