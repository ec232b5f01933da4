"""``amsgd validate``: predictions against simulations with 95% CIs; a report in ``--out DIR``.

Exit status 0 when every check passes, 1 when one fails, 2 on bad input.
"""

from __future__ import annotations

import argparse

HELP = "validate the predictions against simulation: report.json, report.md and figures in --out DIR"


def configure(parser) -> None:
    from amsgd.cli.options import add_problem_options
    from amsgd.validation.presets import EXPERIMENTS, PRESETS

    add_problem_options(parser)
    group = parser.add_argument_group("validation")
    group.add_argument(
        "--preset", choices=tuple(PRESETS),
        help="a named validation (ignores the problem options): "
        + "; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()),
    )  # fmt: skip
    group.add_argument("--out", required=True, metavar="DIR", help="directory for report.json, report.md and PNGs (created)")
    group.add_argument(
        "--only", metavar="LIST",
        help=f"comma-separated experiments to run, from {','.join(EXPERIMENTS)} (default: the preset's, or all but sweep)",
    )  # fmt: skip
    group.add_argument("--seed", type=int, default=None, help="seed of every run (default: the preset's, 2018)")
    group.add_argument("--threads", type=int, default=None, help="simulation threads (default: 2)")
    # Scales one prediction by a factor, to show that a wrong prediction fails (NAME=FACTOR, repeatable).
    group.add_argument("--perturb", action="append", default=[], help=argparse.SUPPRESS)


def run(args) -> int:
    from dataclasses import replace
    from pathlib import Path

    from amsgd.cli.options import problem_from_args
    from amsgd.errors import ProblemError
    from amsgd.validation import get_preset, run_validation, write_report
    from amsgd.validation.context import Budget

    preset = get_preset(args.preset) if args.preset else None
    problem = preset.problem if preset else problem_from_args(args)
    budget = preset.budget if preset else Budget()
    if args.seed is not None:
        if args.seed < 0:
            raise ProblemError(f"seed must be >= 0, got {args.seed}")
        budget = replace(budget, seed=args.seed)
    if args.threads is not None:
        if args.threads < 1:
            raise ProblemError(f"threads must be >= 1, got {args.threads}")
        budget = replace(budget, threads=args.threads)
    only = [e.strip() for e in args.only.split(",") if e.strip()] if args.only else None
    perturb = {}
    for item in args.perturb:
        name, sep, factor = item.partition("=")
        try:
            perturb[name] = float(factor)
        except ValueError:
            raise ProblemError(f"--perturb must be NAME=FACTOR, got {item!r}") from None
        if not sep:
            raise ProblemError(f"--perturb must be NAME=FACTOR, got {item!r}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ProblemError(f"--out {args.out!r} exists and is not a directory")
    if not out.parent.is_dir():
        raise ProblemError(f"--out parent directory {str(out.parent)!r} does not exist")
    out.mkdir(exist_ok=True)
    report = run_validation(problem, out, preset=preset, budget=budget, experiments=only, perturb=perturb)
    write_report(report, out, command=_public_command(args))
    failed = [c.name for c in report.checks if not c.passed]
    total = len(report.checks)
    print(f"{total - len(failed)}/{total} checks pass ({report.elapsed:.0f} s); report in {out / 'report.md'}")
    for name in failed:
        print(f"FAIL {name}")
    return 0 if not failed else 1


def _public_command(args) -> str:
    """The command that regenerates this report, as documented (no perturbations)."""
    parts = ["amsgd validate"]
    if args.preset:
        parts.append(f"--preset {args.preset}")
    else:
        parts.append(f"--spectrum {args.spectrum}" if not args.covariance else f"--covariance {args.covariance}")
        parts += [f"--distribution {args.distribution}", f"--eta {args.eta:g}", f"--mu {args.mu:g}"]
        if args.delay:
            parts.append(f"--delay {args.delay}")
        elif args.tau:
            parts.append(f"--tau {args.tau}")
    if args.only:
        parts.append(f"--only {args.only}")
    if args.seed is not None:
        parts.append(f"--seed {args.seed}")
    parts.append(f"--out {args.out}")
    return " ".join(parts)
