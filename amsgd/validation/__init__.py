"""Validation: predictions against Monte Carlo measurements with 95% confidence intervals.

``run_validation(problem, out_dir, preset=...)`` runs the experiments (ODE trajectory, phases,
local rate, stationary floors, stability knee, the published error-vs-delay sweep, momentum against
asynchrony), draws their figures and returns a :class:`~amsgd.validation.run.ValidationReport`;
``write_report`` writes ``report.json``, ``summary.json`` and ``report.md``.
"""

from amsgd.validation.checks import Check
from amsgd.validation.context import Budget
from amsgd.validation.presets import PRESETS, get_preset
from amsgd.validation.report import write_report
from amsgd.validation.run import ValidationReport, run_validation

__all__ = ["PRESETS", "Budget", "Check", "ValidationReport", "get_preset", "run_validation", "write_report"]
