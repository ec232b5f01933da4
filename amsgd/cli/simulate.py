"""``amsgd simulate``: Monte Carlo runs of Async-MSGD with a JSON summary and 95% CIs."""

from __future__ import annotations

import argparse
import sys

from amsgd.cli.options import (
    add_problem_options,
    add_run_options,
    check_distinct_outputs,
    problem_from_args,
    whole,
)
from amsgd.cli.status import NO_ESTIMATE, OK
from amsgd.core.files import check_netcdf_file, write_netcdf
from amsgd.core.models import ModelProblem
from amsgd.core.progress import stage

HELP = "simulate Async-MSGD (Monte Carlo over replicates) and summarise with 95% confidence intervals"
SUMMARY = "Monte Carlo runs of Async-MSGD with confidence intervals"


def configure(parser: argparse.ArgumentParser) -> None:
    add_problem_options(parser)
    group = parser.add_argument_group("simulation")
    add_run_options(
        group, seed_help="seed >= 0 of numpy.random.SeedSequence; the summary reports the entropy used (default: fresh)"
    )
    group.add_argument(
        "--coordinates", choices=("moments", "all", "none"), default="moments",
        help="keep the mean and mean square of the eigen-coordinates (moments), every replicate's (all), or "
        "neither (none: the error and ||v||² only, for high dimensions) (default: %(default)s)",
    )  # fmt: skip
    group.add_argument("--threads", type=whole, default=1, help="threads over blocks of replicates (default: 1)")
    group.add_argument("--out", metavar="FILE.nc", help="write the trajectories (xarray Dataset) to NetCDF")
    group.add_argument(
        "--svag", type=whole, metavar="L",
        help="SVAG runs (Li, Malladi & Arora 2021): step eta/L, L times the steps, delay L*tau, two samples per "
        "step weighted (1 +- sqrt(2L - 1))/2; iterations stay original ones (PCA, Gaussian data, constant delay)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from amsgd.core.jsontext import json_text

    problem = problem_from_args(args)
    if args.out is not None:
        check_netcdf_file(args.out)
    check_distinct_outputs(args, problem.delay, out=args.out)
    if isinstance(problem, ModelProblem):
        if args.svag is not None:
            from amsgd.core.errors import ProblemError

            raise ProblemError("--svag applies to --model pca only (streaming PCA with Gaussian data)")
        result = _simulate_model(problem, args)
        if args.out is not None:  # written before the summary: a printed summary has its file behind it
            write_netcdf(result.to_xarray(), args.out)
        summary = result.to_dict()
        print(_compact_lists(json_text(summary, indent=2)))
        _warn_if_drifting(summary)
        return _verdict(result.diverged_at >= 0, problem.delay.mean > 0)
    if args.svag is not None:
        result = _simulate_svag(problem, args)
    else:
        from amsgd.simulate import simulate

        result = simulate(
            problem, args.steps, args.replicates, rng=args.seed, record_every=args.record_every, start=args.start,
            window=args.window, window_start=args.window_start, coordinates=args.coordinates,
            divergence_norm=args.divergence_norm, threads=args.threads,
        )  # fmt: skip
    check = result.stationarity
    if check.significant or check.near_bound or check.undecided:  # the theory's phases say where to start it
        from amsgd.diffusion.theory.phases import saddle_arrival

        with stage("the predicted phases, for where the window should start"):
            result = result.with_predicted_phases(*saddle_arrival(problem, result.start))
    if args.out is not None:  # written before the summary: a printed summary has its file behind it
        result.write_netcdf(args.out)
    summary = result.to_dict()
    print(_compact_lists(json_text(summary, indent=2)))
    _warn_if_drifting(summary)
    return _verdict(result.diverged, problem.delay.mean > 0)


def _warn_if_drifting(summary: dict) -> None:
    """One line on stderr when the averaging window is not stationary (a warning: the status is unchanged)."""
    message = summary["stationarity"].get("message")
    if message:
        print(f"amsgd simulate: warning: {message}", file=sys.stderr)


def _verdict(diverged, delayed: bool) -> int:
    """:data:`~amsgd.cli.status.NO_ESTIMATE`, said in words on stderr, when every replicate diverged; a
    warning when some did (the estimates are then over the runs that happened not to)."""
    if not diverged.all():
        if diverged.any():
            print(f"amsgd simulate: warning: {int(diverged.sum())} of the {diverged.size} replicates diverged; every "
                  f"estimate is over the other {int((~diverged).sum())}, the runs that did not blow up, not a "
                  "sample of all runs", file=sys.stderr)  # fmt: skip
        return OK
    print(
        f"amsgd simulate: every one of the {diverged.size} replicates diverged (beyond --divergence-norm, "
        f"or NaN): no estimate; lower --eta or --mu{', or shorten the delay' if delayed else ''}",
        file=sys.stderr,
    )
    return NO_ESTIMATE


def _simulate_model(problem: ModelProblem, args: argparse.Namespace):
    """A model's runs: start at each replicate's initialisation; PCA-only options are refused."""
    from amsgd.core.errors import ProblemError

    if "start" in getattr(args, "given", frozenset()) or args.coordinates != "moments" or args.threads != 1:
        raise ProblemError("--start, --coordinates and --threads apply to --model pca only")
    from amsgd.simulate.model_engine import simulate_model

    return simulate_model(
        problem, args.steps, args.replicates, rng=args.seed, record_every=args.record_every,
        window=args.window, window_start=args.window_start, divergence_norm=args.divergence_norm,
    )  # fmt: skip


def _simulate_svag(problem, args: argparse.Namespace):
    """``--svag L``: the SVAG runs of :func:`amsgd.simulate.svag.simulate_svag`, the same options in original iterations."""
    from amsgd.core import checks
    from amsgd.core.errors import ProblemError

    checks.positive_int("--svag L", args.svag)  # before the compiled kernels load
    if args.coordinates != "moments":
        raise ProblemError(f"--coordinates {args.coordinates} does not apply to --svag (its runs keep the coordinate "
                           "moments only)")  # fmt: skip
    from amsgd.simulate.svag import check_svag, simulate_svag

    check_svag(problem, args.svag)
    return simulate_svag(
        problem, args.steps, args.replicates, args.svag, rng=args.seed, record_every=args.record_every,
        start=args.start, window=args.window, window_start=args.window_start,
        divergence_norm=args.divergence_norm, threads=args.threads,
    )  # fmt: skip


def _compact_lists(text: str) -> str:
    """Put each list of numbers (histograms, intervals) on one line of the indented JSON."""
    import re

    return re.sub(
        r"\[\s+([-\w.+,\s]+?)\s+\]",
        lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]",
        text,
    )
