"""``amsgd advise``: with M asynchronous workers, which momentum is stable, and which is best."""

from __future__ import annotations

import argparse

from amsgd.advise import DEFAULT_MUS, DEFAULT_STEPS, DEFAULT_WORKERS
from amsgd.cli.options import (
    LIST_HELP,
    Given,
    add_problem_options,
    check_distinct_outputs,
    emit,
    float_list,
    int_list,
    listed,
    problem_from_args,
    refuse_typed,
    whole,
)
from amsgd.core.files import check_figure_file, check_output_file
from amsgd.core.problem import Problem

HELP = "advise the momentum for M asynchronous workers: the largest stable and the best (rate, floor)"
SUMMARY = "the stable and the best momentum for M workers, any model"


def configure(parser: argparse.ArgumentParser) -> None:
    add_problem_options(parser, point=False)
    group = parser.add_argument_group("advice")
    group.add_argument(
        "--workers", type=int_list, default=DEFAULT_WORKERS, metavar="LIST",
        help=f"worker counts M, round-robin (tau = M - 1): {LIST_HELP} (default: {listed(DEFAULT_WORKERS)})",
    )  # fmt: skip
    group.add_argument(
        "--mus", type=float_list, default=DEFAULT_MUS, metavar="LIST",
        help=f"momenta to compare, each in [0, 1) (in (-1, 1) for a model, written --mus=-0.3,0,0.5): {LIST_HELP} "
        f"(default: {listed(DEFAULT_MUS)})",
    )  # fmt: skip
    group.add_argument(
        "--steps", type=whole, default=DEFAULT_STEPS, metavar="N", action=Given,
        help="a model's run length: momenta are ranked for N iterations (default: %(default)s)",
    )  # fmt: skip
    group.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: %(default)s)")
    group.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    group.add_argument("--plot", metavar="FILE.png", help="also draw the local rate (of the error, or a model's "
                       "loss) against mu per worker count, the fastest ringed")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from amsgd.core.jsontext import json_text

    refuse_typed(args, ("--mu", "--tau", "--delay"), "advise",
                 ": it compares the momenta of --mus over the worker counts of --workers (τ = M − 1)")  # fmt: skip
    problem = problem_from_args(args)
    if isinstance(problem, Problem):
        refuse_typed(args, ("--steps",), "streaming PCA", ": it sets a model's run length (PCA ranks the "
                     "momenta by their floors and rates, for any length)")  # fmt: skip
    if args.out is not None:
        check_output_file(args.out)
    if args.plot is not None:
        check_figure_file(args.plot)
    check_distinct_outputs(args, problem.delay, out=args.out, plot=args.plot)
    from amsgd.advise import advise

    advice = advise(problem, args.workers, args.mus, steps=args.steps)
    text = advice.table() if args.format == "table" else json_text(advice.to_dict(), indent=2) + "\n"
    emit(text, args.out)
    if args.plot is not None:
        from amsgd.figures.advice import advice_figure

        advice_figure(advice, args.plot)
    return 0
