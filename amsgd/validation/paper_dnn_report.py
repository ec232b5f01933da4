"""Write the paper-dnn report: ``report.json`` (checks), ``summary.json`` (every cell) and ``report.md``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from amsgd.validation.paper_dnn import POSTER_BEST, DnnReport
from amsgd.validation.report import check_table, fmt_number, write_report_files


def write_dnn_report(report: DnnReport, out_dir: str | Path, figures: Sequence[Path] = (),
                     command: str | None = None) -> list[Path]:  # fmt: skip
    return write_report_files(out_dir, [c.to_dict() for c in report.checks], {"command": command, **report.to_dict()},
                              markdown(report, figures, command))  # fmt: skip


def _mu(x: float | None) -> str:
    return "—" if x is None else f"{x:g}"


def _best_rows(report: DnnReport, protocol: str, delay: str) -> list[str]:
    lines = [
        "| M | poster | predicted best μ | stable μ at x* | stable μ, end of plain SGD | best μ, train loss "
        "[resampled 2.5–97.5%] | best momenta (95% set, paired test) | best μ, val. loss [resampled] "
        "| best μ, val. accuracy [resampled] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.best(protocol, delay):
        cols = [f"{_mu(r[k]['best_mu'])} [{_mu(r[k]['ci_low'])}, {_mu(r[k]['ci_high'])}]"
                for k in ("train_loss", "validation_loss", "validation_accuracy")]  # fmt: skip
        cols.insert(1, ", ".join(f"{m:g}" for m in r["train_loss"]["not_worse"]))
        stable = ", ".join(f"{m:g}" for m in r["predicted_stable_mus"]) or "none"
        trained = ", ".join(f"{m:g}" for m in r["stable_mus_at_end_of_plain_sgd"]) or "none"
        lines.append(f"| {r['workers']} | {_mu(POSTER_BEST.get(r['workers']))} | {_mu(r['predicted_best_mu'])} "
                     f"| {stable} | {trained} | " + " | ".join(cols) + " |")  # fmt: skip
    return lines


def _loss_rows(report: DnnReport, protocol: str, delay: str) -> list[str]:
    from amsgd.core.estimates import t_interval

    cells = report.group(protocol, delay)
    mus = sorted({c.mu for c in cells})
    lines = ["| M | " + " | ".join(f"μ = {m:g}" for m in mus) + " |", "|---|" + "---|" * len(mus)]
    for m in sorted({c.workers for c in cells}):
        row = sorted((c for c in cells if c.workers == m), key=lambda c: c.mu)
        entries = []
        for c in row:
            e = t_interval(c.train_loss)
            mark = "" if c.stable else " ✗"
            entries.append(f"{fmt_number(e.mean, 3)} ± {fmt_number(e.ci_high - e.mean, 2)}{mark}")
        lines.append(f"| {m} | " + " | ".join(entries) + " |")
    return lines


def _implicit_rule(report: DnnReport, protocol: str, delay: str) -> list[str]:
    """Explicit optimum ≈ synchronous optimum − (1 − 1/M) (Mitliagkas et al.), against the measured best."""
    rows = report.best(protocol, delay)
    sync = rows[0]["train_loss"]["best_mu"] if rows and rows[0]["workers"] == 1 else None
    if sync is None:
        return []
    lines = ["| M | rule: μ₁ − (1 − 1/M) | measured best μ |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workers']} | {sync - (1 - 1 / r['workers']):.3g} | {_mu(r['train_loss']['best_mu'])} |")
    return lines


def findings(report: DnnReport) -> list[str]:
    """The published claim, tested per protocol and delay kind on the measured best momenta (training
    loss): does the best μ fall (never rise) from 1 to 8 workers, and is μ = 0.9 the worst with 8?"""
    from amsgd.core.estimates import t_interval

    lines = []
    for protocol in report.setup.protocols:
        for delay in report.setup.delays:
            cells = report.group(protocol, delay)
            table = {r["workers"]: r["train_loss"] for r in report.best(protocol, delay)}
            paper = [m for m in (1, 2, 4, 8) if m in table]
            best = [table[m]["best_mu"] for m in paper]
            ties = [f"M = {m}: {', '.join(f'{u:g}' for u in table[m]['not_worse'])}" for m in paper
                    if len(table[m]["not_worse"]) > 1]  # fmt: skip
            falls = all(a >= b for a, b in zip(best, best[1:])) and best[0] > best[-1]
            # a momentum among the best at the first M and at the last: the runs tell no change between them
            tied = bool(paper) and bool(set(table[paper[0]]["not_worse"]) & set(table[paper[-1]]["not_worse"]))
            trend = "shows no trend the runs can tell" if tied else ("falls" if falls else "does not fall")
            eight = [c for c in cells if c.workers == 8]
            means = {c.mu: t_interval(c.train_loss).mean for c in eight}
            worst = max(means, key=lambda m: means[m]) if means else None
            poster = " (poster: 0.9, 0.7, 0.7, 0.5)" if protocol == "fixed-eta" else ""  # the poster fixed η
            lines.append(
                f"- **{protocol}, {delay}**: best μ at M = {', '.join(map(str, paper))}: "
                f"{', '.join(f'{b:g}' for b in best)}{poster} — the best momentum {trend} as workers are added; "
                f"with 8 workers the worst μ is {_mu(worst)}"
                f"{' (as published)' if worst == 0.9 and protocol == 'fixed-eta' else ''}."
                + (f" Among the best (95% set, paired test): {'; '.join(ties)}." if ties else "")
            )
    return lines


def markdown(report: DnnReport, figures: Sequence[Path], command: str | None) -> str:
    s = report.setup
    passed = sum(c.passed for c in report.checks)
    lines = [
        "# Validation report: paper-dnn (the best momentum against asynchronous workers)",
        "",
        f"Command: `{command}`" if command else "",
        "",
        f"An MLP 64-{s.hidden}-10 (tanh, ridge {s.l2:g}) on scikit-learn's digits, minibatches of {s.batch}, "
        f"{s.steps} gradient steps, {s.replicates} paired replicates per cell (the same seed for every μ of "
        f"one M); workers M ∈ {{{', '.join(map(str, s.workers))}}}, μ ∈ {{{', '.join(f'{m:g}' for m in s.mus)}}}. "
        f"Protocols: `fixed-eta` (η = {s.eta:g}) and `fixed-effective` (η = {s.effective_eta:g}·(1 − μ)). "
        "Delays: `workers` = round-robin (τ = M − 1); `ps` = event-driven server, exponential compute times.",
        "",
        f"The predictions were computed before the runs, from the Hessian at the minimum x* (training loss "
        f"{report.loss_at_minimum:.4g}; top Hessian eigenvalues {', '.join(f'{v:.3g}' for v in report.hessian_top[:5])}, …) "
        "and at the end of one plain-SGD run of the same budget. Sharpness (top Hessian eigenvalue) along training: "
        + ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in report.sharpness.items())
        + ". A cell is predicted stable when the linearisation at x* is mean-square stable (the set at the end of "
        "plain SGD is shown beside it); the predicted best μ is the stable μ with the lowest predicted training "
        "loss after the budget (floor plus the transient of every Hessian mode from the runs' start points, at x*).",
        "",
        f"**{passed}/{len(report.checks)} checks pass** ({report.elapsed:.0f} s{_reuse(report.runs)}).",
        "",
        "## Findings (measured, by final training loss)",
        "",
        *findings(report),
        "",
    ]
    for protocol in s.protocols:
        for delay in s.delays:
            lines += [f"## {protocol}, {delay}", "", "Best momentum per worker count:", ""]
            lines += _best_rows(report, protocol, delay)
            lines += ["", "Mean final training loss ± 95% CI (✗: predicted not mean-square stable):", ""]
            lines += _loss_rows(report, protocol, delay)
            rule = _implicit_rule(report, protocol, delay)
            if rule:
                lines += ["", "Implicit-momentum rule (explicit ≈ synchronous optimum − (1 − 1/M)):", ""] + rule
            lines.append("")
    lines += ["## Checks", ""] + check_table(report.checks) + [""]
    lines += [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    return "\n".join(lines) + "\n"


def _reuse(runs: dict) -> str:
    """How many cells were taken from a stored runs file rather than computed by this run ("" if none)."""
    reused = runs.get("reused", 0)
    if not reused:
        return ""
    return f"; {reused} of the {runs['cells']} cells' runs were reused from {Path(runs['file']).name}, computed earlier"
