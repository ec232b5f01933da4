"""``amsgd derive``: the symbolic derivation of the diffusion limits and its numbers."""

from __future__ import annotations

import argparse

from amsgd.cli.options import (
    LIST_HELP,
    Given,
    add_problem_options,
    check_distinct_outputs,
    emit,
    float_list,
    int_list,
    listed,
    name_list,
    problem_from_args,
    refuse_typed,
    whole,
)
from amsgd.core import progress
from amsgd.core.errors import ProblemError
from amsgd.core.files import check_output_file
from amsgd.core.models import ModelProblem
from amsgd.diffusion.theory.options import (
    DEFAULT_DELTA_SQ,
    DEFAULT_GAMMA,
    DEFAULT_STEPS,
    TRADEOFF_MUS,
    TRADEOFF_WORKERS,
    PredictOptions,
)
from amsgd.diffusion.theory.sections import MODEL_SECTIONS, PCA_SECTIONS, chosen_sections

HELP = "derive the ODE/SDE limits symbolically and predict phases, floors, stability (JSON, Markdown or LaTeX)"
SUMMARY = "the ODE/SDE limits derived, and every prediction"


def configure(parser: argparse.ArgumentParser) -> None:
    add_problem_options(parser)
    group = parser.add_argument_group("derivation")
    group.add_argument(
        "--format", choices=("json", "markdown", "latex"), default="json", help="output format (default: %(default)s)"
    )
    group.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    group.add_argument(
        "--sections", metavar="LIST",
        help="JSON sections to compute, comma-separated (default: all); the others are left out and their work "
        f"not done: e.g. stability without the sampled phase laws. Streaming PCA: {', '.join(PCA_SECTIONS)}; "
        f"--model: {', '.join(MODEL_SECTIONS)}",
    )  # fmt: skip
    group.add_argument(
        "--delta-sq", type=float, default=DEFAULT_DELTA_SQ, action=Given,
        help="phase boundary δ²: escape ends at h_1² = δ², travel at 1 − δ² (default: %(default)g)",
    )  # fmt: skip
    group.add_argument(
        "--epsilon", type=float, action=Given, help="target error ε for the convergence phase (default: twice the stationary error F where that lies between the finite-η floor F' and (1 + F')/2, else (1 + F')/2)"
    )
    group.add_argument(
        "--tradeoff-mu", type=float_list, default=TRADEOFF_MUS, metavar="LIST",
        help=f"momenta of the momentum-asynchrony tradeoff table: {LIST_HELP} (default: {listed(TRADEOFF_MUS)})",
    )  # fmt: skip
    group.add_argument(
        "--tradeoff-workers", type=int_list, default=TRADEOFF_WORKERS, metavar="LIST",
        help=f"round-robin worker counts M (tau = M - 1) of the tradeoff table: {LIST_HELP} "
        f"(default: {listed(TRADEOFF_WORKERS)})",
    )  # fmt: skip
    group.add_argument(
        "--steps", type=whole, default=DEFAULT_STEPS, metavar="N",
        help="run length: the divergence risk is the fraction of runs of N iterations that blow up, and "
        "with --model the momenta are ranked for runs of N iterations (default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--gamma", type=float, default=DEFAULT_GAMMA, action=Given,
        help="γ in (0, 1/2] of the published delay conditions (default: %(default)g)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from amsgd.core.jsontext import json_text

    problem = problem_from_args(args)
    if isinstance(problem, ModelProblem):  # before the options' own checks: a value of one a model lacks is moot
        refuse_typed(args, ("--delta-sq", "--epsilon", "--gamma"), f"--model {args.model}",
                     ": --delta-sq, --epsilon and --gamma set streaming PCA's phases and its published delay "
                     "conditions")  # fmt: skip
    options = PredictOptions(
        delta_sq=args.delta_sq, epsilon=args.epsilon, gamma=args.gamma,
        tradeoff_mus=args.tradeoff_mu, tradeoff_workers=args.tradeoff_workers, steps=args.steps,
    )  # fmt: skip
    sections = _sections(args, MODEL_SECTIONS if isinstance(problem, ModelProblem) else PCA_SECTIONS)
    if args.out is not None:
        check_output_file(args.out)
    check_distinct_outputs(args, problem.delay, out=args.out)
    if isinstance(problem, ModelProblem):
        if args.format != "json":
            raise ProblemError("--format markdown and latex document the streaming-PCA derivation; models give json")
        from amsgd.diffusion.theory.model_predictions import predict_model

        with progress.stage("minimum, Hessian and predictions"):
            predictions = predict_model(problem, options)
        emit(json_text(predictions.to_dict(sections), indent=2, ensure_ascii=False) + "\n", args.out)
        return 0
    from amsgd.diffusion.theory import predict

    with progress.stage("symbolic derivation and predictions"):
        predictions = predict(problem, options)
        if args.format == "json":
            text = json_text(predictions.to_dict(sections), indent=2, ensure_ascii=False) + "\n"
    if args.format != "json":
        with progress.stage(f"{args.format} document"):
            text = predictions.document(args.format)
    emit(text, args.out)
    return 0


def _sections(args: argparse.Namespace, known: tuple[str, ...]) -> tuple[str, ...] | None:
    """``--sections`` as names, checked before anything is derived (None: every section)."""
    names = name_list("--sections", args.sections, "section", "for every section")
    if names is None:
        return None
    if args.format != "json":
        raise ProblemError(f"--sections selects parts of the JSON; the {args.format} document needs every section")
    return chosen_sections(names, known)
