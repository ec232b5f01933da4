"""The figures of a validation report, drawn from the results its sections computed."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from amsgd.core.delays import ConstantDelay
from amsgd.core.errors import ProblemError
from amsgd.core.progress import stage
from amsgd.figures.delays import delay_curves_figure, phase_diagram_figure
from amsgd.figures.dynamics import escape_figure, rate_figure, stationary_figure, trajectory_figure
from amsgd.figures.momentum import momentum_figure
from amsgd.figures.sdde_limit import sdde_limit_figure
from amsgd.figures.style import problem_label, problem_sigma
from amsgd.validation.run import ValidationReport
from amsgd.validation.sections import Section


def draw_validation(report: ValidationReport, out_dir: str | Path) -> dict[str, list[Path]]:
    """Draw every section's figures as PNG in ``out_dir``; returns their paths per experiment. Where every
    run of a section diverged its statistics are NaN, so NumPy's warnings about them are silenced (the
    report's checks say what diverged)."""
    out = Path(out_dir)
    if not out.is_dir():
        raise ProblemError(f"the figures' directory {str(out)!r} does not exist")
    with stage("figures"), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return {s.experiment: _DRAW[s.experiment](report, s, out) for s in report.sections if s.result is not None}


def _ode(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    return [trajectory_figure(s.result, problem_label(report.problem), out / "ode_trajectory.png")]


def _phases(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    return [escape_figure(s.result, problem_label(report.problem), out / "escape.png")]


def _rate(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    return [rate_figure([s.result], out / "convergence_rate.png")]


def _stationary(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    st = s.result
    label = problem_label(report.problem.replace(delay=ConstantDelay(0)))
    return [stationary_figure(st.u_samples, st.ou_variances, st.linear_variances, label,
                              out / "stationary_histograms.png")]  # fmt: skip


def _stability(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    curve = s.result.curve
    return [
        delay_curves_figure([curve], problem_label(report.problem, delay=False), out / "error_vs_delay.png"),
        phase_diagram_figure(report.theory, out / "phase_diagram.png", curves=[curve]),
    ]


def _sweep(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    p = report.problem
    label = f"{problem_sigma(p)}, η = {p.eta:g}"
    return [
        delay_curves_figure(s.result.curves, label, out / "error_vs_delay_per_mu.png"),
        phase_diagram_figure(report.theory, out / "phase_diagram_per_mu.png", curves=s.result.curves),
    ]


def _momentum(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    return [momentum_figure(s.result, out / "momentum_asynchrony.png")]


def _sdde_limit(report: ValidationReport, s: Section, out: Path) -> list[Path]:
    p = report.problem
    label = f"{problem_sigma(p)}, {p.distribution.spec}, μ = {p.mu:g}"
    return [sdde_limit_figure(s.result, label, out / "sdde_limit.png")]


_DRAW: dict[str, Callable[[ValidationReport, Section, Path], list[Path]]] = {
    "ode": _ode,
    "phases": _phases,
    "rate": _rate,
    "stationary": _stationary,
    "stability": _stability,
    "sweep": _sweep,
    "momentum": _momentum,
    "sdde-limit": _sdde_limit,
}
