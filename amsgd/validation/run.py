"""Run a validation: the experiments of a preset (or a chosen list), each giving a report section."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from amsgd.core.errors import ProblemError
from amsgd.core.jsontext import finite_or_null
from amsgd.core.problem import Problem
from amsgd.core.progress import plan as progress_plan
from amsgd.core.progress import stage
from amsgd.diffusion.theory import Predictions
from amsgd.validation.budget import Budget
from amsgd.validation.checks import Check, Perturbations
from amsgd.validation.context import Context
from amsgd.validation.presets import EXPERIMENTS, Preset, chosen_experiments, get_preset
from amsgd.validation.sections import BUILDERS, PERTURBABLE, Section, perturbable


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """The sections of a validation run, the problem and its predictions, the budget and the time taken."""

    preset: str | None
    description: str
    problem: Problem
    theory: Predictions
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

    def to_dict(self) -> dict:
        """The run and its comparison tables, JSON-ready (``summary.json``; the checks are ``report.json``)."""
        checks = [c.to_dict() for c in self.checks]
        return {
            "preset": self.preset,
            "description": self.description,
            "problem": self.problem.to_dict(),
            "budget": asdict(self.budget),
            "elapsed_seconds": round(self.elapsed, 1),
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "passed": self.passed,
            "checks_passed": sum(c["pass"] for c in checks),
            "checks_total": len(checks),
            "perturb": self.perturb,
            "tables": finite_or_null({k: v for s in self.sections for k, v in s.tables.items()}),  # null: no number
        }


#: The experiments that simulate at the problem's own delay (the others choose their delays).
AT_THE_GIVEN_DELAY = ("ode", "phases", "rate", "stationary")


def _require_stable_delay(ctx: Context, chosen: Sequence[str]) -> None:
    """Refuse experiments at the problem's delay where the mean dynamics at e_1 is unstable there:
    no run settles at e_1 (the runs saturate at a higher error or blow up), so those checks would have
    no prediction to hold the runs to."""
    at_delay = [name for name in AT_THE_GIVEN_DELAY if name in chosen]
    if not at_delay or ctx.theory.stability.stable:
        return
    p, others = ctx.problem, [name for name in EXPERIMENTS if name not in AT_THE_GIVEN_DELAY]
    raise ProblemError(f"the delay {p.delay.spec} is not stable at eta = {p.eta:g}, mu = {p.mu:g} (the largest stable "
                       f"constant delay is tau* = {ctx.tau_star()}): no run settles at e_1 (they saturate at a higher error or "
                       f"blow up), so the experiments that simulate at the given delay ({', '.join(at_delay)}) would have "
                       f"no prediction to check; give a stable delay, or "
                       f"--only experiments that choose their own delays ({', '.join(others)})")  # fmt: skip


def _require_perturbable(perturbations: Perturbations, chosen: Sequence[str]) -> None:
    """Refuse, before any experiment runs, a perturbation that names no check the chosen experiments
    can have (:data:`~amsgd.validation.sections.PERTURBABLE`); one that fits a name but whose numbers
    match no check of this run is refused when the experiments are done."""
    unknown = [name for name in perturbations.perturb if not perturbable(name, chosen)]
    if unknown:
        names = dict.fromkeys(t for e in EXPERIMENTS if e in chosen for t in PERTURBABLE[e])
        raise ProblemError(f"--perturb names no check of the experiments chosen ({', '.join(chosen)}): "
                           f"{', '.join(unknown)}; their checks: {', '.join(names)}")  # fmt: skip


def run_validation(
    problem: Problem,
    *,
    preset: Preset | str | None = None,
    budget: Budget | None = None,
    experiments: Sequence[str] | None = None,
    perturb: dict[str, float] | None = None,
    progress: bool | None = None,
) -> ValidationReport:
    """Run ``experiments`` (default: the preset's, else all but the sweep) on ``problem``.

    ``preset`` is a :class:`Preset` or its name (:func:`~amsgd.validation.presets.get_preset`).

    ``perturb`` maps check names to factors applied to their predictions (``tau-star`` scales the
    predicted largest stable delay used by the stability checks): a wrong prediction must fail.
    """
    if isinstance(preset, str):
        preset = get_preset(preset)
    if preset is not None and not isinstance(preset, Preset):
        raise ProblemError(f"preset must be a Preset, its name or None, got {preset!r}")
    chosen = chosen_experiments(preset, experiments)
    if not isinstance(problem, Problem):
        raise ProblemError(f"run_validation needs a Problem (streaming PCA), got {type(problem).__name__}")
    if budget is not None and not isinstance(budget, Budget):
        raise ProblemError(f"budget must be a Budget (amsgd.validation.Budget), got {type(budget).__name__}")
    problem.require_eigengap()
    problem.require_finite_fourth_moments()
    perturbations = Perturbations(perturb)
    _require_perturbable(perturbations, chosen)
    ctx = Context(problem, budget or (preset.budget if preset else Budget()), perturbations, progress)
    if ctx.tau_star() is None:
        raise ProblemError(f"no delay is stable at eta = {problem.eta:g}, mu = {problem.mu:g}: no run settles at e_1 and "
                           "there is nothing to validate; lower eta (amsgd derive reports the boundary)")  # fmt: skip
    _require_stable_delay(ctx, chosen)
    began = time.perf_counter()
    names = [name for name in EXPERIMENTS if name in chosen]
    progress_plan(len(names) + 1, "experiments and figures")
    built = []
    for name in names:
        with stage(name):
            built.append(BUILDERS[name](ctx, preset))
    unused = perturbations.unused()
    if unused:
        raise ProblemError(f"--perturb names no check of this run: {', '.join(unused)}")
    return ValidationReport(
        preset.name if preset else None,
        preset.description if preset else f"No preset: the experiments {', '.join(names)} on the given problem",
        problem,
        ctx.theory,
        ctx.budget,
        built,
        time.perf_counter() - began,
        dict(perturbations.perturb),
    )
