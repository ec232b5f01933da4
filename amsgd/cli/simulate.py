"""``amsgd simulate``: Monte Carlo runs of Async-MSGD with a JSON summary and 95% CIs."""

from __future__ import annotations

HELP = "simulate Async-MSGD (Monte Carlo over replicates) and summarise with 95% confidence intervals"


def configure(parser) -> None:
    from amsgd.cli.options import add_problem_options, add_run_options

    add_problem_options(parser)
    group = parser.add_argument_group("simulation")
    add_run_options(
        group, seed_help="seed >= 0 of numpy.random.SeedSequence; the summary reports the entropy used (default: fresh)"
    )
    group.add_argument(
        "--coordinates", choices=("moments", "all"), default="moments",
        help="keep the mean and mean square of the eigen-coordinates (moments), or every replicate's (all)",
    )  # fmt: skip
    group.add_argument("--threads", type=int, default=1, help="threads over blocks of replicates (default: 1)")
    group.add_argument("--out", metavar="FILE.nc", help="write the trajectories (xarray Dataset) to NetCDF")


def run(args) -> int:
    import json

    from amsgd.cli.options import problem_from_args
    from amsgd.errors import ProblemError
    from amsgd.simulate import simulate

    problem = problem_from_args(args)
    if args.seed is not None and args.seed < 0:
        raise ProblemError(f"seed must be >= 0, got {args.seed}")
    result = simulate(
        problem,
        args.steps,
        args.replicates,
        rng=args.seed,
        record_every=args.record_every,
        start=args.start,
        window=args.window,
        window_start=args.window_start,
        coordinates=args.coordinates,
        divergence_norm=args.divergence_norm,
        threads=args.threads,
    )
    if args.out:
        try:
            result.to_xarray().to_netcdf(args.out, engine="h5netcdf")
        except (OSError, ValueError) as exc:
            raise ProblemError(f"--out {args.out!r} cannot be written: {exc}") from None
    print(_compact_lists(json.dumps(result.summary(), indent=2)))
    return 0


def _compact_lists(text: str) -> str:
    """Put each list of numbers (histograms, intervals) on one line of the indented JSON."""
    import re

    return re.sub(
        r"\[\s+([-\w.+,\s]+?)\s+\]",
        lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]",
        text,
    )
