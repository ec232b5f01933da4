"""``amsgd derive``: the symbolic derivation of the diffusion limits and its numbers."""

from __future__ import annotations

import argparse
import json

from amsgd.cli.options import (
    add_problem_options,
    float_list,
    int_list,
    problem_from_args,
    write_output,
)
from amsgd.derivations.defaults import (
    DEFAULT_DELTA_SQ,
    DEFAULT_GAMMA,
    TRADEOFF_MUS,
    TRADEOFF_WORKERS,
)

HELP = "derive the ODE/SDE limits, phases and rates symbolically (JSON, Markdown or LaTeX)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_problem_options(parser)
    group = parser.add_argument_group("derivation")
    group.add_argument(
        "--format",
        choices=("json", "markdown", "latex"),
        default="json",
        help="output format (default: %(default)s)",
    )
    group.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    group.add_argument(
        "--delta-sq",
        type=float,
        default=DEFAULT_DELTA_SQ,
        help="phase boundary δ²: escape ends at h_1² = δ², travel at 1 − δ² (default: %(default)g)",
    )
    group.add_argument(
        "--epsilon",
        type=float,
        help="target error ε for the convergence phase (default: twice the stationary error)",
    )
    group.add_argument(
        "--tradeoff-mu",
        type=float_list,
        default=TRADEOFF_MUS,
        metavar="LIST",
        help="momenta of the momentum-asynchrony tradeoff table (default: %(default)s)",
    )
    group.add_argument(
        "--tradeoff-workers",
        type=int_list,
        default=TRADEOFF_WORKERS,
        metavar="LIST",
        help="round-robin worker counts M (tau = M - 1) of the tradeoff table (default: %(default)s)",
    )
    group.add_argument(
        "--gamma",
        type=float,
        default=DEFAULT_GAMMA,
        help="γ in (0, 1/2] of the published delay conditions (default: %(default)g)",
    )


def run(args: argparse.Namespace) -> int:
    from amsgd.derivations import derive
    from amsgd.derivations.document import render

    derivation = derive(
        problem_from_args(args),
        delta_sq=args.delta_sq,
        epsilon=args.epsilon,
        gamma=args.gamma,
        tradeoff_mus=args.tradeoff_mu,
        tradeoff_workers=args.tradeoff_workers,
    )
    if args.format == "json":
        text = json.dumps(derivation.to_dict(), indent=2, ensure_ascii=False) + "\n"
    else:
        text = render(derivation, args.format)
    write_output(text, args.out)
    return 0
