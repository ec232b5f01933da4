"""Validation: predictions against Monte Carlo measurements with 95% confidence intervals.

``run_validation(problem, preset=...)`` (a name of ``PRESETS``, or its
:class:`~amsgd.validation.presets.Preset`) runs the experiments (ODE trajectory, phases, local rate,
stationary floors, stability knee, the published error-vs-delay sweep, momentum against
asynchrony) and returns a :class:`~amsgd.validation.run.ValidationReport` of sections with their
checks; ``write_report`` writes ``report.json``, ``summary.json`` and ``report.md``. The figures
of the sections are drawn by :func:`amsgd.figures.validation.draw_validation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amsgd.core.lazy import lazy_exports
from amsgd.validation.budget import Budget
from amsgd.validation.presets import PRESETS, get_preset

if TYPE_CHECKING:
    from amsgd.validation.report import write_report
    from amsgd.validation.run import ValidationReport, run_validation

__all__ = ["PRESETS", "Budget", "ValidationReport", "get_preset", "run_validation", "write_report"]
# The experiments load on first use, so that the presets are light to import.
__getattr__ = lazy_exports(__name__, {"write_report": "amsgd.validation.report",
                                      "ValidationReport": "amsgd.validation.run",
                                      "run_validation": "amsgd.validation.run"})  # fmt: skip
