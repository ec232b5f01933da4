"""Run a validation: experiments → checks and figures → report (JSON, Markdown, PNG)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amsgd.errors import ProblemError
from amsgd.problem import Problem
from amsgd.validation.checks import Check, Predictions
from amsgd.validation.context import Budget, Context
from amsgd.validation.presets import EXPERIMENTS, Preset


@dataclass
class Section:
    """One experiment's part of the report: checks, figures, tables and a paragraph of explanation."""

    experiment: str
    title: str
    text: str
    checks: tuple[Check, ...] = ()
    figures: list[Path] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class ValidationReport:
    preset: str | None
    description: str
    problem: Problem
    budget: Budget
    sections: list[Section]
    elapsed: float
    perturb: dict[str, float]

    @property
    def checks(self) -> list[Check]:
        return [c for s in self.sections for c in s.checks]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def run_validation(
    problem: Problem,
    out_dir: str | Path,
    *,
    preset: Preset | None = None,
    budget: Budget | None = None,
    experiments: Sequence[str] | None = None,
    perturb: dict[str, float] | None = None,
    progress: bool | None = None,
) -> ValidationReport:
    """Run ``experiments`` (default: the preset's, else all but the sweep) and write the figures to ``out_dir``.

    ``perturb`` maps check names to factors applied to their predictions (``tau-star`` scales the
    predicted largest stable delay used by the stability checks): a wrong prediction must fail.
    """
    from amsgd.validation import sections

    out = Path(out_dir)
    if not out.is_dir():
        raise ProblemError(f"--out directory {str(out)!r} does not exist")
    chosen = tuple(experiments or (preset.experiments if preset else tuple(e for e in EXPERIMENTS if e != "sweep")))
    unknown = [e for e in chosen if e not in EXPERIMENTS]
    if unknown:
        raise ProblemError(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    problem.require_eigengap()
    problem.require_finite_fourth_moments()
    predictions = Predictions(perturb)
    ctx = Context(problem, budget or (preset.budget if preset else Budget()), predictions, progress)
    began = time.perf_counter()
    built = [sections.BUILDERS[name](ctx, out, preset) for name in EXPERIMENTS if name in chosen]
    unused = predictions.unused()
    if unused:
        raise ProblemError(f"--perturb names no check of this run: {', '.join(unused)}")
    return ValidationReport(
        preset.name if preset else None,
        preset.description if preset else "every check on the given problem",
        problem,
        ctx.budget,
        built,
        time.perf_counter() - began,
        dict(perturb or {}),
    )
