"""``standard_figures``: every standard picture of one problem from a modest Monte Carlo budget."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.core.progress import stage
from amsgd.figures.delays import delay_curves_figure, phase_diagram_figure
from amsgd.figures.dynamics import escape_figure, stationary_figure, trajectory_figure
from amsgd.figures.style import problem_label
from amsgd.validation import delays, dynamics, stationary
from amsgd.validation.budget import Budget
from amsgd.validation.context import Context, zero_delay

#: Delays per momentum in the error-against-delay figure (0 to 1.5 × the largest τ*).
DELAY_POINTS = 12
#: The default Monte Carlo sizes of the standard figures.
FIGURE_BUDGET = Budget.uniform(256, 10_000)


def standard_figures(problem: Problem, out_dir: str | Path, *, mus: Sequence[float] = (0.7, 0.8, 0.9),
                     budget: Budget | None = None, progress: bool | None = None) -> list[Path]:  # fmt: skip
    """Trajectories against the ODE, stationary histograms against the OU law, escape times,
    error against delay per μ and the stability diagram in (μ, τ), written as PNG to ``out_dir``.

    ``budget`` sets the Monte Carlo sizes (default :data:`FIGURE_BUDGET`: 256 runs of 10 000 steps)."""
    out = Path(out_dir)
    if not out.is_dir():
        raise ProblemError(f"--out directory {str(out)!r} does not exist")
    if any(not 0 <= m < 1 for m in mus) or not mus:
        raise ProblemError(f"mus must be momenta in [0, 1), got {list(mus)}")
    problem.require_eigengap()
    problem.require_finite_fourth_moments()
    ctx = Context(problem, budget or FIGURE_BUDGET, progress=progress)
    label = problem_label(problem)
    with stage("trajectory"):
        paths = [trajectory_figure(dynamics.ode_trajectory(ctx), label, out / "trajectory.png")]
    with stage("stationary histograms"):
        st = stationary.stationary(ctx)
        paths.append(stationary_figure(st.u_samples, st.ou_variances, st.linear_variances,
                                       problem_label(zero_delay(problem)), out / "stationary_histograms.png"))  # fmt: skip
    with stage("escape"):
        paths.append(escape_figure(dynamics.phases(ctx), label, out / "escape.png"))
    with stage("error vs delay"):
        stars = [ctx.tau_star(m) for m in mus]
        if any(s is None for s in stars):
            raise ProblemError(f"no delay is stable at eta = {problem.eta:g} for some mu in {list(mus)}")
        taus = np.unique(np.round(np.linspace(0, 1.5 * max(stars), DELAY_POINTS)).astype(int))
        curves = [delays.delay_curve(ctx, m, taus, (8, n)) for n, m in enumerate(mus)]
        grid_label = f"Σ = diag({','.join(f'{x:g}' for x in problem.eigenvalues)}), η = {problem.eta:g}"
        paths.append(delay_curves_figure(curves, grid_label, out / "error_vs_delay.png"))
        paths.append(phase_diagram_figure(ctx.theory, out / "phase_diagram.png", curves=curves))
    return paths
