"""``amsgd sweep``: simulate and predict over a grid of (η, μ, τ or workers) on Dask, to NetCDF.

The sweep takes the shared problem options: Σ (``--spectrum`` / ``--covariance``) for streaming PCA,
or ``--model`` with its data and options (``--data``, ``--batch``, ``--l2``, ``--hidden``,
``--activation``). Its grid options supersede the shared scalar ones of the same name: ``--eta``,
``--mu`` and ``--distribution`` (PCA only: a model's data are fixed) take lists, ``--tau`` a list or
range of constant delays and ``--workers`` one of round-robin worker counts (exactly one of the
two). ``--delay`` is not available: the delay is the swept axis. Lists are ``a,b,c``; ranges
``START:STOP:STEP`` include STOP (see :mod:`amsgd.sweep.grid`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from amsgd.cli.options import (
    DEFAULT_ETAS_HELP,
    Given,
    add_problem_options,
    add_run_options,
    check_distinct_outputs,
    problem_from_args,
    refuse_typed,
    whole,
)
from amsgd.cli.status import NO_ESTIMATE, OK
from amsgd.core.errors import ProblemError, RunWarning
from amsgd.core.files import check_netcdf_file
from amsgd.core.models import DEFAULT_MODEL_ETAS
from amsgd.core.problem import DEFAULT_ETA, DEFAULT_MU
from amsgd.sweep.cluster import CONNECT_TIMEOUT

HELP = "sweep a grid of eta, mu and delays (or workers) on Dask, for PCA or any model: simulation and predictions to NetCDF"
SUMMARY = "a grid of eta, mu and delays on Dask, to NetCDF"

_AXIS_HELP = "comma-separated values and/or START:STOP:STEP ranges (STOP included), e.g. "
_INTEGER_AXIS_HELP = "comma-separated values and/or START:STOP[:STEP] ranges (STOP included; STEP 1 if left out), e.g. "


def configure(parser: argparse.ArgumentParser) -> None:
    # The grid options below replace the shared scalar options of the same name.
    parser.conflict_handler = "resolve"
    add_problem_options(parser)
    grid = parser.add_argument_group("grid (each point is one Dask task)")
    grid.add_argument(
        "--eta", metavar="LIST",
        help=_AXIS_HELP + f"5e-4,1e-3 (default: {DEFAULT_ETAS_HELP})",
    )  # fmt: skip
    grid.add_argument("--mu", default=f"{DEFAULT_MU:g}", metavar="LIST", help=_AXIS_HELP + "0.7,0.8,0.9 (default: %(default)s)")
    grid.add_argument(
        "--distribution", default="gaussian", metavar="LIST", action=Given,
        help="data distributions, comma separated: gaussian, rademacher, student-t:NU (default: %(default)s; "
        "streaming PCA only)",
    )  # fmt: skip
    delays = grid.add_mutually_exclusive_group(required=True)
    delays.add_argument("--tau", metavar="RANGE", help="constant delays τ, " + _INTEGER_AXIS_HELP + "0:160:10")
    delays.add_argument("--workers", metavar="LIST", help="round-robin workers M (τ = M − 1), " + _INTEGER_AXIS_HELP + "1,2,4,8")
    grid.add_argument("--delay", help=argparse.SUPPRESS)

    sim = parser.add_argument_group("simulation (per grid point)")
    add_run_options(sim, seed_help="seed >= 0; point n uses numpy SeedSequence(seed, spawn_key=(n,))", seed_required=True)

    run_group = parser.add_argument_group("execution")
    run_group.add_argument("--out", metavar="FILE.nc", required=True, help="the NetCDF file to write (xarray Dataset)")
    run_group.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT",
        help="an existing Dask scheduler (default: a local cluster, one worker per core: threads for small "
        "sweeps, processes for large ones; see --local-processes)",
    )  # fmt: skip
    run_group.add_argument(
        "--local-workers", type=whole, metavar="N",
        help="workers of the local cluster (default: one per core; at most one per point to compute; not with --scheduler)",
    )  # fmt: skip
    kind = run_group.add_mutually_exclusive_group()
    kind.add_argument(
        "--local-processes", action="store_true", default=None,
        help="run the local workers as processes (seconds to start; faster on large sweeps; a crash in one "
        "spares the others); default: processes above 1e8 replicate-steps, threads below",
    )  # fmt: skip
    kind.add_argument(
        "--local-threads", action="store_false", dest="local_processes",
        help="run the local workers as threads of this process (milliseconds to start)",
    )  # fmt: skip
    run_group.add_argument(
        "--connect-timeout", type=float, default=CONNECT_TIMEOUT, metavar="SECONDS", action=Given,
        help="how long to wait for --scheduler to answer (default: %(default)g)",
    )  # fmt: skip
    run_group.add_argument(
        "--resume", action="store_true",
        help="continue the sweep stored at --out (FILE.nc.parts/), computing only the missing points",
    )  # fmt: skip


def sweep_from_args(args: argparse.Namespace):
    """The :class:`~amsgd.sweep.sweep.Sweep` named by the parsed options."""
    from amsgd.core.errors import ProblemError
    from amsgd.sweep.grid import SweepGrid, parse_axis
    from amsgd.sweep.sweep import Sweep

    if args.delay is not None:
        raise ProblemError("sweep takes --tau LIST (constant delays) or --workers LIST, not --delay")
    model = args.model != "pca"
    given = getattr(args, "given", frozenset())
    if model and "distribution" in given:
        raise ProblemError(f"--distribution applies to --model pca only; a model's data come from --data "
                           f"(got --model {args.model} --distribution {args.distribution})")  # fmt: skip
    if model and "start" in given:
        raise ProblemError("--start applies to --model pca only; a model's replicates start at its initialisation")
    axis = "tau" if args.tau is not None else "workers"
    eta = args.eta if args.eta is not None else f"{DEFAULT_MODEL_ETAS[args.model] if model else DEFAULT_ETA:g}"
    grid = SweepGrid(
        distributions=() if model else tuple(part.strip() for part in args.distribution.split(",")),
        etas=parse_axis(eta, "--eta"),
        mus=parse_axis(args.mu, "--mu"),
        delay_axis=axis,
        delays=parse_axis(getattr(args, axis), f"--{axis}", integer=True),
    )
    # Σ (or the model, its data and options) comes from the shared options; the grid sets the rest per point.
    distribution = grid.distributions[0] if grid.distributions else "gaussian"
    scalars = dict(eta=grid.etas[0], mu=grid.mus[0], tau=None, delay=None, distribution=distribution)
    base = problem_from_args(argparse.Namespace(**{**vars(args), **scalars}))
    return Sweep(
        base, grid, steps=args.steps, replicates=args.replicates, seed=args.seed,
        record_every=args.record_every, window=args.window, window_start=args.window_start,
        start=None if model else args.start, divergence_norm=args.divergence_norm,
    )  # fmt: skip


def _refuse_unused_execution_options(args: argparse.Namespace) -> None:
    """The local cluster's options with --scheduler, or the scheduler's timeout without one, change
    nothing: one line instead."""
    if args.scheduler is None:
        refuse_typed(args, ("--connect-timeout",), "a local cluster", ": it is how long to wait for --scheduler")
        return
    why = "the scheduler's cluster has its own workers"
    if args.local_workers is not None:
        raise ProblemError(f"--local-workers does not apply with --scheduler: {why}")
    if args.local_processes is not None:
        raise ProblemError(f"--local-processes and --local-threads do not apply with --scheduler: {why}")


def run(args: argparse.Namespace) -> int:
    from amsgd.core.jsontext import json_text

    check_netcdf_file(args.out)
    _refuse_unused_execution_options(args)
    sweep = sweep_from_args(args)
    check_distinct_outputs(args, None, out=args.out)  # its delays are an axis of constant ones, no file
    from amsgd.sweep.run import run_sweep

    try:
        outcome = run_sweep(
            sweep, args.out, resume=args.resume, scheduler=args.scheduler, n_workers=args.local_workers,
            local_processes=args.local_processes, connect_timeout=args.connect_timeout,
        )  # fmt: skip
    except KeyboardInterrupt:
        parts = Path(f"{args.out}.parts")
        kept = (f"the finished points are kept in {parts}/; rerun the same command with --resume to continue"
                if any(parts.glob("point-*.json")) else "no point was stored yet; rerun the same command "
                "with --resume to start again")  # fmt: skip
        print(f"amsgd sweep: {kept}", file=sys.stderr)
        raise
    everywhere = outcome.all_diverged == outcome.points
    if outcome.all_diverged and not everywhere:
        warnings.warn(f"every replicate diverged at {outcome.all_diverged} of the {outcome.points} points: their "
                      "estimates are NaN (all_diverged in the summary; diverged_fraction 1 in the file)", RunWarning)  # fmt: skip
    if outcome.unpredicted:
        _warn_unpredicted(outcome.unpredicted, outcome.points, sweep.unpredicted_reasons())
    print(json_text(outcome.to_dict(), indent=2))
    if everywhere:
        where = "the only point" if outcome.points == 1 else f"every one of the {outcome.points} points"
        print(f"amsgd sweep: every replicate diverged at {where}: no estimate "
              f"(the file {args.out} holds the predictions and diverged_fraction 1); lower --eta or --mu, or "
              "shorten the delays", file=sys.stderr)  # fmt: skip
        return NO_ESTIMATE
    return OK


def _warn_unpredicted(count: int, points: int, missing: dict[str | None, str]) -> None:
    """One warning per reason the theory gave for having no prediction (or one saying that it refused
    the points themselves): their predicted variables are NaN, which the summary does not show."""
    where = (f"{count} of the {points} points {'has' if count == 1 else 'have'} no prediction: their predicted "
             "variables are NaN (tau_max -1)")  # fmt: skip
    for distribution, reason in missing.items():
        of = "" if distribution is None else f" for {distribution}"
        warnings.warn(f"{where}; the theory{of}: {reason}", RunWarning)
    if not missing:
        warnings.warn(f"{where}: the theory refused them (amsgd derive at one of them says why)", RunWarning)
