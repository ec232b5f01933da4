"""``amsgd integrate``: ensembles of the stochastic modified equation (SME) and convergence studies.

The SME is integrated in diffusion time ``t = kη`` with step ``--dt`` iterations (``Δt = dt · η``).
Two ensembles of ``--paths`` paths run for ``--steps`` iterations: one from the optimum ``e_1`` gives the
stationary error (per-path time average from ``--window``·steps to the end, as in ``amsgd simulate``,
then a 95% t-interval across paths); one from the worst saddle ``e_2`` gives the escape time (first iteration with error
``≤ 1 − δ²``) and the travel time (from escape to error ``≤ δ²``). With ``--convergence-study`` the
schemes' strong and weak errors against a fine-step reference on shared Brownian paths give fitted
orders instead.

``--limit`` chooses the limit: ``sde`` (default) is the SME above, which does not depend on the delay;
``sdde`` keeps a constant delay ``--tau N`` as ``s = τη`` in diffusion time and integrates
``dH = b(H(t − s)) dt + σ(H(t − s)) dW`` (the same summary, plus ``delay_time`` and the stability limit
``s*``); ``ode`` is refused: the ODE has no noise, so it has no stationary error and never leaves the
saddle e_2, and its travel time is reported by ``amsgd derive``.

For a model other than streaming PCA (``--model``, :mod:`amsgd.diffusion.model_limits`) ``--limit sde``
integrates the SME of the training objective (``--paths`` paths from the model's initialisation,
Euler–Maruyama with step ``--dt`` iterations) and ``--limit ode`` its gradient flow; the summary has
the mean objective on the recorded iterations and the stationary loss with its interval.
"""

from __future__ import annotations

import argparse
import sys

from amsgd.cli.options import (
    Given,
    add_problem_options,
    check_distinct_outputs,
    problem_from_args,
    refuse_typed,
    require_pca,
    whole,
)
from amsgd.cli.status import NO_ESTIMATE, OK
from amsgd.core import progress
from amsgd.core.files import atomic_write_text, check_figure_file, check_output_file
from amsgd.core.seeding import describe_seed, root_sequence
from amsgd.diffusion.theory.options import DEFAULT_DELTA_SQ

HELP = "integrate the SDE limit (SME) ensemble: stationary error, escape time, convergence orders"
SUMMARY = "integrate the SDE limit: floor, escape, convergence orders"
#: The schemes of amsgd.diffusion.schemes.SCHEMES, named here so that --help imports nothing heavy
#: (tests/test_architecture.py checks the two agree).
SCHEME_NAMES = "euler, milstein, weak2, sdeint-euler, sdeint-sri2"
LIMITS = ("ode", "sde", "sdde")
#: The schemes of the delayed SME (amsgd.diffusion.sme.integrate_sme_delayed).
SDDE_SCHEME_NAMES = ("euler", "milstein", "euler-jit")


def configure(parser: argparse.ArgumentParser) -> None:
    add_problem_options(parser)
    group = parser.add_argument_group("integration")
    group.add_argument(
        "--limit", choices=LIMITS, default="sde",
        help="sde: the SME, which ignores the delay; sdde: the delay kept as s = τη (constant --tau N); "
        "ode: the gradient flow of a --model (refused for streaming PCA: no noise, see amsgd derive) "
        "(default: %(default)s)",
    )  # fmt: skip
    group.add_argument("--paths", type=whole, default=200, action=Given, help="paths per ensemble (default: %(default)s)")
    group.add_argument("--steps", type=whole, help="horizon in iterations k (default: 5000; 200 for --convergence-study)")
    group.add_argument(
        "--dt", type=float, default=1.0, action=Given,
        help="SDE step in iterations, i.e. Δt = dt·η in diffusion time (default: %(default)g); "
        "in a convergence study the finest of the compared steps",
    )  # fmt: skip
    group.add_argument(
        "--scheme", default=None,
        help=f"scheme: {SCHEME_NAMES}, or euler-jit (Euler compiled with numba: same noise and result, "
        "faster; not for --convergence-study) (default: euler); a comma-separated list with "
        "--convergence-study (default: euler,milstein,weak2)",
    )  # fmt: skip
    group.add_argument("--seed", type=whole, default=0, help="random seed (default: %(default)s)")
    group.add_argument(
        "--no-scheme-check", dest="check_scheme", action="store_false",
        help="a --model's SME: skip the check that the Euler–Maruyama step is mean-square stable near the "
        "minimum (it finds the minimum and its noise first: seconds to tens of seconds)",
    )  # fmt: skip
    group.add_argument("--delta-sq", type=float, default=DEFAULT_DELTA_SQ, action=Given, help="phase boundary δ² (default: %(default)g)")
    group.add_argument(
        "--window", type=float, default=0.5, metavar="FRACTION", action=Given,
        help="the stationary error averages iterations from FRACTION·steps to steps, as in simulate (default: %(default)g)",
    )  # fmt: skip
    study = parser.add_argument_group("convergence study")
    study.add_argument(
        "--convergence-study", action="store_true",
        help="fit strong and weak orders of the schemes on the SME from h0 = (1, ..., 1)/√d",
    )  # fmt: skip
    study.add_argument("--levels", type=whole, default=4, action=Given, help="step sizes dt·2^j, j < LEVELS (default: %(default)s)")
    study.add_argument(
        "--reference-factor", type=whole, default=8, action=Given, help="reference step = finest step / FACTOR (default: %(default)s)"
    )
    study.add_argument("--plot", metavar="FILE.png", help="write the log-log convergence plot")
    parser.add_argument("--out", metavar="FILE.json", help="also write the JSON summary to FILE")


def run(args: argparse.Namespace) -> int:
    import time

    from amsgd.core.models import ModelProblem

    problem = problem_from_args(args)
    _check_run_options(args)
    if not args.convergence_study:
        refuse_typed(args, ("--levels", "--reference-factor"), "an ensemble",
                     ": --levels and --reference-factor set a --convergence-study")  # fmt: skip
    else:
        refuse_typed(args, ("--window", "--delta-sq"), "a --convergence-study",
                     ": it measures the schemes' errors, not the stationary error or the phases")  # fmt: skip
    if isinstance(problem, ModelProblem):
        refuse_typed(args, ("--delta-sq",), f"--model {args.model}", ": it sets streaming PCA's phases")
        return _emit(_model_limit(problem, args), args)
    problem = require_pca(problem, "integrate")
    _check_limit(problem, args)
    if args.out is not None:
        check_output_file(args.out)
    if args.plot is not None:
        check_figure_file(args.plot)
    check_distinct_outputs(args, problem.delay, out=args.out, plot=args.plot)
    started = time.perf_counter()
    seed = describe_seed(root_sequence(args.seed))  # the record simulate and the model limits print
    summary: dict = {"problem": problem.to_dict(), "paths": args.paths, "seed": seed, "dt_iterations": args.dt}
    summary["limit"] = args.limit
    if args.limit == "sde" and problem.delay.spec != "constant:0":
        summary["note"] = (
            f"the diffusion limit does not depend on the delay: {problem.delay.spec} is ignored here "
            "(--limit sdde keeps a constant delay; amsgd derive reports its finite-delay effect)"
        )
    summary.update(_study(problem, args) if args.convergence_study else _ensemble(problem, args))
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return _emit(summary, args)


def _emit(summary: dict, args: argparse.Namespace) -> int:
    """Print (and write) the summary; :data:`~amsgd.cli.status.NO_ESTIMATE` when every path diverged."""
    from amsgd.core.jsontext import json_text

    text = json_text(summary, indent=2) + "\n"
    if args.out is not None:  # written before the summary is printed: a printed summary has its file
        atomic_write_text(args.out, text)
    print(text, end="")
    if not _every_path_diverged(summary):
        return OK
    paths = (f"the {args.paths} paths diverged with every scheme" if "convergence" in summary
             else f"the {args.paths} paths diverged" if "blown_up_paths" in summary
             else f"the {2 * args.paths} paths of the two ensembles (from e_2 and from e_1) diverged")  # fmt: skip
    print(f"amsgd integrate: every one of {paths}: no estimate"
          + (", no figure written" if args.plot else "") + "; lower --dt, --eta or --mu", file=sys.stderr)  # fmt: skip
    return NO_ESTIMATE


def _every_path_diverged(summary: dict) -> bool:
    """Whether no path of the ensemble (or of any scheme of a convergence study) stayed finite."""
    if "convergence" in summary:
        study = summary["convergence"]
        return all(s["diverged_paths"] >= study["paths"] for s in study["schemes"].values())
    if "blown_up_paths" in summary:  # a model's limit
        return summary["blown_up_paths"] >= summary["paths"]
    return summary.get("diverged_fraction") == 1.0


def _model_limit(problem, args: argparse.Namespace) -> dict:
    """``--model``: the SME ensemble or the gradient flow of the model (one line for what does not apply)."""
    from amsgd.core.errors import ProblemError

    if args.limit == "sdde" or args.convergence_study or args.plot is not None or args.scheme not in (None, "euler"):
        raise ProblemError(
            "for a model, integrate takes --limit sde (Euler-Maruyama) or --limit ode; --limit sdde, "
            "--convergence-study, --plot and other schemes are for streaming PCA"
        )
    if not args.check_scheme and args.limit != "sde":
        raise ProblemError("--no-scheme-check applies to --limit sde: the gradient flow has no Euler–Maruyama step")
    if args.limit == "ode":  # recorded every iteration, the adaptive solver choosing its own steps
        refuse_typed(args, ("--dt", "--paths"), "--limit ode",
                     ": the gradient flow is one deterministic path, solved with adaptive steps")  # fmt: skip
    if args.out is not None:
        check_output_file(args.out)
    check_distinct_outputs(args, problem.delay, out=args.out)
    from amsgd.diffusion.model_limits import integrate_model_limit

    steps = 5000 if args.steps is None else args.steps
    solution = integrate_model_limit(problem, steps, args.paths, limit=args.limit, dt=args.dt, rng=args.seed,
                                     window=args.window, check_scheme=args.check_scheme)  # fmt: skip
    summary = {"problem": problem.to_dict(), **solution.to_dict()}
    if problem.delay.spec != "constant:0":
        summary["note"] = f"the diffusion limit does not depend on the delay: {problem.delay.spec} is ignored here"
    return summary


def _check_run_options(args: argparse.Namespace) -> None:
    """Refuse a horizon that is not a positive number of iterations, an empty --scheme, and a --plot
    outside a convergence study (an ensemble draws no figure), in one line."""
    from amsgd.core.errors import ProblemError

    if args.steps is not None and args.steps < 1:
        raise ProblemError(f"--steps must be a positive number of iterations, got {args.steps}")
    if args.scheme is not None and not args.scheme.strip():
        names = SCHEME_NAMES if args.convergence_study else SCHEME_NAMES + ", euler-jit"  # a study pairs the others
        raise ProblemError(f"--scheme is empty; name a scheme ({names}) or leave it out")
    if args.plot is not None and not args.convergence_study:
        raise ProblemError("--plot draws the convergence study's figure (--convergence-study); an ensemble draws none "
                           "(amsgd figures draws the escape and the stationary histograms)")  # fmt: skip


def _check_limit(problem, args: argparse.Namespace) -> None:
    """Refuse what ``--limit`` (or ``--no-scheme-check``) cannot do for streaming PCA, in one line, before any
    heavy import."""
    from amsgd.core.delays import ConstantDelay, RoundRobinDelay, UniformDelay
    from amsgd.core.errors import ProblemError

    if not args.check_scheme:
        raise ProblemError("--no-scheme-check applies to a --model's SME; streaming PCA's schemes have no such check")
    if args.limit == "ode":
        raise ProblemError(
            "--limit ode: the ODE has no noise, so it has no stationary error and never leaves the saddle e_2; "
            "its travel time is in amsgd derive (phases), its paths in amsgd.diffusion.ode.integrate_ode"
        )
    if args.limit != "sdde":
        return
    if args.convergence_study:
        raise ProblemError("--convergence-study is for --limit sde; use amsgd.diffusion.sdde.sdde_convergence_study")
    if not isinstance(problem.delay, (ConstantDelay, RoundRobinDelay)):
        delay = problem.delay
        one = isinstance(delay, UniformDelay) and delay.low == delay.high
        single = f" ({delay.spec} is one delay: give it as constant:{delay.low})" if one else ""
        raise ProblemError(
            f"--limit sdde needs a constant delay (--tau N, constant:N or workers:M), got --delay {delay.spec}: "
            f"the delay-differential limit holds a fixed s = τη{single}"
        )
    if args.scheme is not None and args.scheme not in SDDE_SCHEME_NAMES:
        raise ProblemError(
            f"unknown scheme {args.scheme!r} for --limit sdde; allowed: {', '.join(SDDE_SCHEME_NAMES)}"
        )
    if not args.dt > 0:
        raise ProblemError(f"dt (in iterations) must be finite and > 0, got {args.dt!r}")
    steps = problem.tau / args.dt
    if abs(steps - round(steps)) > 1e-9 * max(steps, 1.0):
        raise ProblemError(
            f"--tau {problem.tau} is not a whole number of SDE steps --dt {args.dt:g}: "
            "the delay must be k·dt iterations; choose --dt dividing --tau"
        )


def _ensemble(problem, args: argparse.Namespace) -> dict:
    """Escape, travel and stationary error of the SME (``--limit sde``) or of the SDDE (``--limit sdde``,
    with the delay, the stability limit and the closed-form SDDE floor beside the ensemble's)."""
    from amsgd.diffusion import sme

    steps = 5000 if args.steps is None else args.steps
    scheme = args.scheme or "euler"
    options = dict(iterations=steps, dt=args.dt, paths=args.paths, scheme=scheme, rng=args.seed,
                   delta_sq=args.delta_sq, window=args.window)  # fmt: skip
    delayed = args.limit == "sdde"
    theory = {}
    if delayed:  # before the runs: a problem the theory refuses is refused before they are paid for
        from amsgd.diffusion.theory import predict

        theory.update(delay_iterations=problem.tau, delay_time=problem.tau * problem.eta,
                      predicted=predict(problem).sdde.to_dict())  # fmt: skip
        if problem.tau > 0:
            theory["stability_limit"] = sme.delay_limit(problem).to_dict()
    progress.plan(2, "ensembles")
    result = (sme.delayed_phase_predictions if delayed else sme.phase_predictions)(problem, **options)
    phases = result.to_dict()
    window = result.stationarity  # the window as averaged: from its first saved iteration on the SDE's grid
    first = args.window * steps if window is None else window.start
    phases["stationary_window_iterations"] = [float(first), float(steps)]
    return {"steps": steps, "scheme": scheme, **phases, **theory}


def _study(problem, args: argparse.Namespace) -> dict:
    from amsgd.diffusion.sme import sme_convergence_study

    steps = 200 if args.steps is None else args.steps
    schemes = (args.scheme or "euler,milstein,weak2").split(",")
    study = sme_convergence_study(
        problem, iterations=steps, dt=args.dt, levels=args.levels, schemes=schemes, paths=args.paths,
        rng=args.seed, reference_factor=args.reference_factor,
    )  # fmt: skip
    out = study.to_dict()
    if args.plot and not _every_path_diverged({"convergence": out}):
        from amsgd.figures.convergence import convergence_figure

        convergence_figure(study, args.plot)
    out["start"] = "h0 = (1, ..., 1)/sqrt(d)"
    out["horizon_iterations"] = steps
    out["time_unit"] = "dt and t_end in diffusion time t = k eta (a level's step is dt / eta iterations)"
    return {"steps": steps, "convergence": out}
