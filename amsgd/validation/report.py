"""Write a validation report: ``report.json`` (the list of checks), ``summary.json`` (the run and
its comparison tables) and ``report.md`` (checks, explanations, tables, the figures embedded)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from amsgd.core.files import atomic_write_text, write_error
from amsgd.core.jsontext import json_text
from amsgd.validation.checks import Check
from amsgd.validation.run import ValidationReport
from amsgd.validation.sections import Section


def write_report(
    report: ValidationReport,
    out_dir: str | Path,
    figures: Mapping[str, Sequence[Path]] | None = None,
    command: str | None = None,
) -> list[Path]:
    """Write ``report.json``, ``summary.json`` and ``report.md`` to ``out_dir``, the latter embedding
    ``figures[experiment]`` (drawn by :func:`amsgd.figures.validation.draw_validation`) in each section."""
    run = report.to_dict()
    summary = {"preset": run.pop("preset"), "description": run.pop("description"), "command": command, **run}
    return write_report_files(out_dir, [c.to_dict() for c in report.checks], summary,
                              markdown(report, figures or {}, command))  # fmt: skip


REPORT_FILES = ("report.json", "summary.json", "report.md")


def write_report_files(out_dir: str | Path, checks: object, summary: dict | None, text: str) -> list[Path]:
    """:data:`REPORT_FILES` in ``out_dir``, each written whole: ``checks`` and ``summary`` as JSON, ``text``
    as report.md; the paths written. A report without a summary (None) removes an earlier run's
    summary.json, which would describe another run beside this report."""
    report_json, summary_json, report_md = (Path(out_dir) / name for name in REPORT_FILES)
    atomic_write_text(report_json, json_text(checks, indent=2) + "\n")
    if summary is not None:
        atomic_write_text(summary_json, json_text(summary, indent=2) + "\n")
    else:
        try:
            summary_json.unlink(missing_ok=True)
        except OSError as exc:
            raise write_error(summary_json, exc) from None
    atomic_write_text(report_md, text)
    return [report_json, *([summary_json] if summary is not None else []), report_md]


def figures_not_drawn(out_dir: str | Path, drawn: Iterable[Path]) -> list[str]:
    """The PNG files in ``out_dir`` other than ``drawn``: left by an earlier run into the same folder
    (with other experiments or another problem), and not described by this run's report."""
    names = {Path(p).name for p in drawn}
    return sorted(p.name for p in Path(out_dir).glob("*.png") if p.name not in names)


def write_incomplete(out_dir: str | Path, command: str | None, elapsed: float) -> Path:
    """Mark ``out_dir`` as holding no report: the files of an earlier run are removed and
    ``report.md`` says the run was interrupted and how to produce the report."""
    out = Path(out_dir)
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)
    rerun = f"\n\nRerun to produce it:\n\n    {command}\n" if command else "\n"
    text = (
        "# Validation incomplete\n\nThis run was interrupted after "
        f"{elapsed:.0f} s, before its report was written: no check was evaluated, and any figures "
        f"here may be partial.{rerun}"
    )
    atomic_write_text(out / "report.md", text)
    return out / "report.md"


def fmt_number(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"


def check_table(checks: tuple[Check, ...] | list[Check]) -> list[str]:
    lines = [
        "| check | predicted | measured | 95% CI | tolerance | pass |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        if c.relation == "window":
            tol = f"accept ({fmt_number(c.window[0])}, {fmt_number(c.window[1])}]"
        elif c.relation == "inside":
            tol = f"± {fmt_number(c.tolerance, 3)}" if c.tolerance else "0"
        else:
            tol = f"CI {'below' if c.relation == 'below' else 'above'} prediction"
        verdict = "**pass**" if c.passed else "**FAIL**"
        lines.append(
            f"| `{c.name}` | {fmt_number(c.predicted)} | {fmt_number(c.measured)} | [{fmt_number(c.ci_low)}, {fmt_number(c.ci_high)}] "
            f"| {tol} | {verdict} |"
        )
    return lines


def _interval_exceptions(checks: Sequence[Check]) -> str:
    """The checks whose interval is not a confidence interval, with what it is instead (their
    ``context["ci_meaning"]``): a knee's, in one phrase for all knees, and each other by name."""
    knees = any(c.name.startswith("knee-") for c in checks)
    others = [f"`{c.name}`'s is {c.context['ci_meaning']}" for c in checks
              if "ci_meaning" in c.context and not c.name.startswith("knee-")]  # fmt: skip
    parts = (["a knee's: it runs from the last delay at which the error had not broken to the knee"] if knees else []) + others
    return f", except {'; '.join(parts)}" if parts else ""


def markdown(report: ValidationReport, figures: Mapping[str, Sequence[Path]], command: str | None = None) -> str:
    p = report.problem
    n_pass = sum(c.passed for c in report.checks)
    lines = [
        f"# Validation report{f': {report.preset}' if report.preset else ''}",
        "",
        f"Regenerate with `{command}`." if command else "",
        "",
        f"{report.description}.",
        "",
        f"Problem: spectrum {', '.join(f'{x:g}' for x in p.eigenvalues)}; {p.distribution.spec} data; "
        f"η = {p.eta:g}; μ = {p.mu:g}; delay {p.delay.spec}. Seed {report.budget.seed}; "
        f"{report.elapsed:.0f} s on this machine ({report.budget.threads} thread{'' if report.budget.threads == 1 else 's'}).",
        "",
        f"**{n_pass} of {len(report.checks)} checks pass.**{_noted_failures(report.checks)} Every interval is a "
        f"95% confidence interval over independent replicates{_interval_exceptions(report.checks)}. A check passes "
        "when the prediction lies inside the interval widened by the "
        "stated model tolerance (zero unless the prediction is a limit whose neglected term has a known order), "
        "or, for bounds and knees, by the criterion stated with it.",
        "",
    ]
    if report.perturb:
        lines += [f"Predictions deliberately perturbed: {report.perturb}.", ""]
    for section in report.sections:
        lines += _section(section, figures.get(section.experiment, ()))
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def _section(s: Section, figures: Sequence[Path]) -> list[str]:
    lines = [f"## {s.title}", "", s.text, ""]
    if s.checks:
        lines += check_table(s.checks) + [""]
        reasons = sorted({c.tolerance_reason for c in s.checks if c.tolerance_reason})
        criteria = sorted({c.criterion for c in s.checks if c.criterion})
        lines += [f"Tolerance: {r}." for r in reasons] + [f"Criterion: {c}." for c in criteria]
        lines += [f"`{c.name}` fails: {c.failure}{_noted(c)}." for c in s.checks if not c.passed]
        lines += [""]
    if "knees" in s.tables:
        lines += _knee_table(s.tables["knees"])
    if "momentum" in s.tables:
        lines += _momentum_table(s.tables["momentum"])
    for fig in figures:
        lines += [f"![{fig.stem.replace('_', ' ')}]({fig.name})", ""]
    return lines


def _noted_failures(checks: Sequence[Check]) -> str:
    """How many of the failures carry accuracy notes, as a sentence ("" where none does)."""
    failed = [c for c in checks if not c.passed]
    noted = sum(bool(c.accuracy_notes) for c in failed)
    if not noted:
        return ""
    which = ("The failure is a finite-η floor" if len(failed) == 1 else
             f"{noted} of the {len(failed)} failures " + ("is a finite-η floor" if noted == 1 else "are finite-η floors"))
    whose = "its" if noted == 1 else "their"
    return f" {which} outside the range the floor's accuracy was measured on ({whose} accuracy notes name where)."


def _noted(check: Check) -> str:
    """The topics of a failing check's accuracy notes, where it has any ("" where not)."""
    if not check.accuracy_notes:
        return ""
    return (f"; the theory's accuracy notes at these parameters name {check.noted_topics} (what was measured "
            "there: the check's `accuracy_notes` in report.json)")


def _knee_table(rows: list[dict]) -> list[str]:
    lines = [
        "Knee per momentum (predicted τ* from the exact linear theory; measured knee on the grid, with the last "
        "delay before it):",
        "",
        "| μ | predicted τ* | delay-differential π(1−μ)/(2 a_max η) | measured knee | last delay without breakdown | "
        "error at τ = 0 | diffusion floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mu']:g} | {r['tau_star']} | {fmt_number(r['tau_delay_differential'], 4)} | {fmt_number(r['measured_knee'])} "
            f"| {fmt_number(r['last_delay_without_breakdown'])} | {fmt_number(r['error_tau0'])} | {fmt_number(r['diffusion_floor'])} |"
        )
    return lines + [""]


def _momentum_table(rows: list[dict]) -> list[str]:
    def est(d: dict) -> str:
        return f"{fmt_number(d['mean'])} [{fmt_number(d['ci_low'])}, {fmt_number(d['ci_high'])}]"

    def rate(v: list) -> str:
        return f"{fmt_number(v[0], 3)} [{fmt_number(v[1], 3)}, {fmt_number(v[2], 3)}]"

    lines = [
        "Comparison (stationary error E sin²; local rate of the slowest mode per iteration; 95% CIs):",
        "",
        "| M | Async-SGD error | Sync-MSGD error | async − sync, measured | async − sync, finite-η | "
        "async − sync, exact linear | diffusion floor | Async-SGD rate | Sync-MSGD rate | finite-η rates (async, "
        "sync) | exact linear rate (both) | OU rate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, s = r["async_sgd"], r["sync_msgd"]
        lines.append(
            f"| {r['workers']} | {est(a['stationary_error'])} | {est(s['stationary_error'])} "
            f"| {est(r['floor_difference_measured'])} | {fmt_number(r['floor_difference_finite_eta'], 3)} "
            f"| {fmt_number(r['floor_difference_linear'], 3)} "
            f"| {fmt_number(r['diffusion_floor'])} | {rate(a['rate_measured'])} | {rate(s['rate_measured'])} "
            f"| {fmt_number(a['rate_finite_eta'], 4)}, {fmt_number(s['rate_finite_eta'], 4)} "
            f"| {fmt_number(a['rate_exact_linear'], 4)} | {fmt_number(a['rate_ou'], 3)} |"
        )
    return lines + [""]
