"""``amsgd figures``: the standard pictures of a problem as PNG files in ``--out DIR``."""

from __future__ import annotations

HELP = "draw the standard figures (trajectories, histograms, escape, error vs delay, stability diagram) as PNG"


def configure(parser) -> None:
    from amsgd.cli.options import add_problem_options

    add_problem_options(parser)
    group = parser.add_argument_group("figures")
    group.add_argument("--out", required=True, metavar="DIR", help="directory for the PNG files (created)")
    group.add_argument("--mus", default="0.7,0.8,0.9", help="momenta of the error-vs-delay curves (default: %(default)s)")
    group.add_argument("--replicates", type=int, default=256, help="runs per simulation (default: %(default)s)")
    group.add_argument("--steps", type=int, default=10_000, help="iterations of the stationary runs (default: %(default)s)")
    group.add_argument("--seed", type=int, default=2018, help="seed of every run (default: %(default)s)")
    group.add_argument("--threads", type=int, default=2, help="simulation threads (default: %(default)s)")
    group.add_argument("--sweep", metavar="FILE.nc", help="also draw the figures of a sweep file written by amsgd sweep")


def run(args) -> int:
    from pathlib import Path

    from amsgd.cli.options import problem_from_args
    from amsgd.errors import ProblemError

    problem = problem_from_args(args)
    try:
        mus = [float(m) for m in args.mus.split(",") if m.strip()]
    except ValueError:
        raise ProblemError(f"--mus must be comma-separated numbers, got {args.mus!r}") from None
    for name in ("replicates", "steps", "threads"):
        if getattr(args, name) < 1:
            raise ProblemError(f"{name} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        raise ProblemError(f"seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ProblemError(f"--out parent directory {str(out.parent)!r} does not exist")
    if args.sweep and not Path(args.sweep).is_file():
        raise ProblemError(f"--sweep file {args.sweep!r} does not exist")
    out.mkdir(exist_ok=True)
    from amsgd.figures.standard import standard_figures

    paths = standard_figures(problem, out, mus=mus, replicates=args.replicates, steps=args.steps,
                             seed=args.seed, threads=args.threads)  # fmt: skip
    if args.sweep:
        try:
            from amsgd.sweep_figures import sweep_figures
        except ImportError:
            raise ProblemError("--sweep needs amsgd.sweep_figures, which this installation lacks") from None
        paths += sweep_figures(args.sweep, out)
    for path in paths:
        print(path)
    return 0
