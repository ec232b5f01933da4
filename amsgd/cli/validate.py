"""``amsgd validate``: predictions against simulations with 95% CIs; a report in ``--out DIR``.

Streaming PCA by preset or chosen experiments, ``--svag`` for the limits, or, with ``--model NAME``,
the theory at a model's minimum on the user's data (:mod:`amsgd.validation.model_checks`).

Exit status 0 when every check passes, 1 when one fails, 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from amsgd.cli.options import (
    PROBLEM_FLAGS,
    add_problem_options,
    int_list,
    name_list,
    problem_from_args,
    refuse_typed,
    require_pca,
    whole,
)
from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.files import check_output_dir, made_folder
from amsgd.core.models import DEFAULT_MODEL_ETAS
from amsgd.core.problem import DEFAULT_ETA
from amsgd.sweep.cluster import CONNECT_TIMEOUT
from amsgd.validation.presets import EXPERIMENTS, MODEL_PRESETS, PRESETS, chosen_experiments, get_preset

HELP = ("validate the predictions against simulation: report.json, report.md and figures in --out DIR; "
        "with --model NAME, the theory at the model's minimum (loss floor, stability boundary, rate)")  # fmt: skip
#: Runs per set, and the seed, of a model's validation when not given.
MODEL_REPLICATES = 64
MODEL_SEED = 2018
#: The runs of ``--preset paper-dnn`` inside ``--out`` (NetCDF; its cells in ``runs.nc.parts/`` while running).
RUNS_FILE = "runs.nc"
SUMMARY = "check the predictions against simulation: a report"


def configure(parser: argparse.ArgumentParser) -> None:
    add_problem_options(parser)
    group = parser.add_argument_group("validation")
    group.add_argument(
        "--preset", choices=tuple(PRESETS) + tuple(MODEL_PRESETS),
        help="a named validation of its own problem (the problem options are refused with it): "
        + "; ".join([f"{k}: {v.description}" for k, v in PRESETS.items()] + [f"{k}: {v}" for k, v in MODEL_PRESETS.items()]),
    )  # fmt: skip
    group.add_argument("--out", required=True, metavar="DIR", help="directory for report.json, report.md and PNGs (created)")
    group.add_argument(
        "--only", metavar="LIST",
        help=f"comma-separated experiments to run, from {','.join(EXPERIMENTS)} (default: the preset's, or all but sweep)",
    )  # fmt: skip
    group.add_argument("--seed", type=whole, default=None, help="seed of every run (default: the preset's, 2018)")
    group.add_argument("--threads", type=whole, default=None,
                       help="simulation threads (default: 2); with --preset paper-dnn, the threads of the local "
                       "Dask cluster that runs the cells (default: one per core)")  # fmt: skip
    group.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="with --preset paper-dnn: run the cells on this Dask scheduler (default: a local cluster)")
    group.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                       help=f"with --scheduler: how long to wait for it to answer (default: {CONNECT_TIMEOUT:g})")
    group.add_argument(
        "--svag", type=int_list, metavar="L1,L2,...",
        help="SVAG validation of the limit at the problem's eta, mu, tau (Li, Malladi & Arora 2021): the floor "
        "and the escape time at each amplification L (include 1), and the verdict",
    )  # fmt: skip
    group.add_argument("--svag-replicates", type=whole, default=None, metavar="N",
                       help="with --svag: replicates per amplification (default: 1000)")
    group.add_argument("--svag-steps", type=whole, default=None, metavar="N",
                       help="with --svag: iterations of each floor run (default: 40 relaxation times of the "
                       "slowest tangent mode, at least 2000)")
    group.add_argument("--svag-no-escape", action="store_true",
                       help="with --svag: skip the escape-time runs (the floor and N/G only)")
    group.add_argument(
        "--steps", type=whole, default=None, metavar="N",
        help="with --model: iterations of the floor and stability runs (default: the shortest run whose start at "
        "the minimum biases the floor by under 0.1%%, by the theory; at least 2000)",
    )  # fmt: skip
    group.add_argument("--replicates", type=whole, default=None, metavar="R",
                       help=f"runs per set: with --model (default: {MODEL_REPLICATES}), or a streaming-PCA "
                       "validation's stationary sets (floors, stability, the sdde-limit ladder; default: "
                       "the preset's, 1024)")  # fmt: skip
    # Scales one prediction by a factor, to show that a wrong prediction fails (NAME=FACTOR, repeatable).
    group.add_argument("--perturb", action="append", default=[], help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt as exc:
        if not getattr(exc, "folder_said", False):  # interrupted before the folder was entered: it stands as it was
            print(f"amsgd validate: interrupted before anything was written to {args.out}: nothing there changed",
                  file=sys.stderr)  # fmt: skip
        raise


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    if args.model != "pca":
        return _run_model(args)
    if args.steps is not None or (args.replicates is not None and args.preset in MODEL_PRESETS):
        given = "--steps" if args.steps is not None else "--replicates"
        raise ProblemError(f"{given} applies only with --model NAME (a streaming-PCA validation takes its run "
                           "lengths from the preset, and --preset paper-dnn its whole budget)")  # fmt: skip
    if args.preset in MODEL_PRESETS:
        return _run_paper_dnn(args)
    for option, value in (("--scheduler", args.scheduler), ("--connect-timeout", args.connect_timeout)):
        if value is not None:
            raise ProblemError(f"{option} applies only to --preset paper-dnn (its cells run on Dask)")
    if args.svag is not None:
        return _run_svag(args)
    given = [option for option, value in _svag_budget(args).values() if value is not None]
    if given:
        raise ProblemError(f"{given[0]} applies only with --svag L1,L2,...")
    from amsgd.validation.budget import Budget

    preset = get_preset(args.preset) if args.preset else None
    if preset:
        _refuse_problem_options(args)
    problem = preset.problem if preset else require_pca(problem_from_args(args), "validate")
    budget = preset.budget if preset else Budget()
    changes = {k: v for k, v in (("seed", args.seed), ("threads", args.threads), ("replicates", args.replicates))
               if v is not None}  # fmt: skip
    budget = replace(budget, **changes)
    only = name_list("--only", args.only, "experiment", "to run the preset's experiments, or without a preset all but sweep")
    chosen_experiments(preset, only)
    perturb = _perturbations(args.perturb)
    out = check_output_dir(args.out)
    from amsgd.figures.validation import draw_validation
    from amsgd.validation import run_validation, write_report

    with _incomplete_on_interrupt(out, _public_command(args)):
        report = run_validation(problem, preset=preset, budget=budget, experiments=only, perturb=perturb)
        figures = draw_validation(report, out)
        write_report(report, out, figures, command=_public_command(args))
    return _verdict(report.checks, report.elapsed, out, [p for paths in figures.values() for p in paths])


@contextlib.contextmanager
def _incomplete_on_interrupt(out: Path, command: str, kept: Callable[[], str] | None = None) -> Iterator[None]:
    """The work that writes into ``out`` (created here, removed again if the work fails before writing
    anything); on Ctrl-C, leave ``out`` clearly marked incomplete (its report.md says so) and say how to
    rerun (``kept()``: what was kept and what the rerun does with it, said at the interruption)."""
    from amsgd.validation.report import write_incomplete

    began = time.perf_counter()
    with made_folder(out):
        try:
            yield
        except KeyboardInterrupt as exc:
            marker = write_incomplete(out, command, time.perf_counter() - began)
            rerun = f"{'rerun' if kept is None else kept()}: {command}"
            print(f"amsgd validate: no report: {marker} marks the folder incomplete; {rerun}", file=sys.stderr)
            exc.folder_said = True  # the same exception goes on (a SIGTERM stays one)
            raise


def _refuse_given(args: argparse.Namespace, options: tuple[str, ...], mode: str, why: str = "") -> None:
    """One line naming the first of ``options`` given on the command line, which ``mode`` does not read
    (``why`` follows it); an option is given when its value is not the unset default (None, False, [])."""
    for option in options:
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value is not None and value is not False and value != []:  # 0 is given: not the unset default
            raise ProblemError(f"{option} does not apply to {mode}{why}")


def _refuse_problem_options(args: argparse.Namespace) -> None:
    """One line naming a problem option typed with ``--preset``, which brings its own problem."""
    refuse_typed(args, PROBLEM_FLAGS, f"--preset {args.preset}", ": a preset validates its own problem (leave "
                 "out --preset to validate the one given)")  # fmt: skip


def _perturbations(items: list[str]) -> dict[str, float]:
    """``NAME=FACTOR`` items as a mapping."""
    from amsgd.validation.checks import Perturbations  # loaded here: the package is heavy for --help

    perturb = {}
    for item in items:
        name, sep, factor = item.partition("=")
        try:
            perturb[name] = float(factor)
        except ValueError:
            raise ProblemError(f"--perturb must be NAME=FACTOR, got {item!r}") from None
        if not sep:
            raise ProblemError(f"--perturb must be NAME=FACTOR, got {item!r}")
    return Perturbations(perturb).perturb  # the factors checked before any work, by the validation's own rule


def _public_command(args) -> str:
    """The command that regenerates this report, as documented (no perturbations), each value quoted for
    the shell where it needs to be (a space in ``--out``, ``--only "ode, rate"``)."""
    parts = ["amsgd validate"]
    if args.preset:
        parts.append(_option("--preset", args.preset))
    elif args.model != "pca":
        return " ".join(parts + _model_options(args))
    else:
        parts.append(_option("--spectrum", args.spectrum) if not args.covariance else _option("--covariance", args.covariance))
        parts += [_option("--distribution", args.distribution),
                  _option("--eta", _exact(DEFAULT_ETA if args.eta is None else args.eta)), _option("--mu", _exact(args.mu))]  # fmt: skip
        parts += _delay_options(args)
    if args.only:
        parts.append(_option("--only", args.only))
    if getattr(args, "svag", None):
        parts.append(_option("--svag", ",".join(str(v) for v in args.svag)))
        parts += [_option(f"--svag-{k}", v) for k, v in (("replicates", args.svag_replicates), ("steps", args.svag_steps))
                  if v is not None]  # fmt: skip
        if args.svag_no_escape:
            parts.append("--svag-no-escape")
    parts += [_option(f"--{k}", v) for k, v in (("replicates", args.replicates), ("seed", args.seed)) if v is not None]
    parts.append(_option("--out", args.out))
    return " ".join(parts)


def _option(name: str, value: object) -> str:
    """``NAME VALUE`` with the value quoted for a POSIX shell where it needs to be."""
    return f"{name} {shlex.quote(str(value))}"


def _delay_options(args) -> list[str]:
    """``--delay`` or ``--tau`` as given (neither for no delay)."""
    if args.delay:
        return [_option("--delay", args.delay)]
    return [_option("--tau", args.tau)] if args.tau else []


def _exact(x: float) -> str:
    """A number as the shortest text that reads back as the same float (``:g`` kept six digits)."""
    return repr(float(x))


def _model_options(args) -> list[str]:
    """``--model ... --out DIR`` as given, with the defaults of the problem spelled out."""
    parts = [_option("--model", args.model), _option("--data", args.data),
             _option("--eta", _exact(DEFAULT_MODEL_ETAS[args.model] if args.eta is None else args.eta)),
             _option("--mu", _exact(args.mu)), *_delay_options(args),
             _option("--batch", args.batch), _option("--l2", _exact(args.l2))]  # fmt: skip
    if args.model == "mlp":
        parts += [_option("--hidden", args.hidden), _option("--activation", args.activation)]
    parts += [_option(f"--{k}", v) for k, v in (("steps", args.steps), ("replicates", args.replicates), ("seed", args.seed))
              if v is not None]  # fmt: skip
    return parts + [_option("--out", args.out)]


def _run_model(args: argparse.Namespace) -> int:
    """``--model NAME``: predict at the minimum, run the floor, stability and rate runs, write the report."""
    _refuse_given(args, ("--preset", "--only", "--perturb", "--svag", "--threads", "--scheduler", "--connect-timeout", "--svag-replicates",
                         "--svag-steps", "--svag-no-escape"), f"--model {args.model}",
                  ": a model's validation checks the floor, the stability boundary and the rate; its budget is "
                  "--steps, --replicates, --seed")  # fmt: skip
    from amsgd.validation.model_checks import ModelSetup, run_model_validation

    seed = MODEL_SEED if args.seed is None else args.seed
    setup = ModelSetup(args.steps, MODEL_REPLICATES if args.replicates is None else args.replicates, seed)
    out = check_output_dir(args.out)
    problem = problem_from_args(args)  # reads the data
    from amsgd.figures.model_checks import model_validation_figure
    from amsgd.validation.model_report import write_model_report

    command = _public_command(args)
    with _incomplete_on_interrupt(out, command):
        report = run_model_validation(problem, setup, announce=_announce)
        figure = model_validation_figure(report, out / "model_validation.png")
        write_model_report(report, out, [figure], command=command)
    return _verdict(report.checks, report.elapsed, out, [figure])


def _announce(prediction) -> None:
    """The prediction, on stdout before the first run."""
    p = prediction
    where = "workers M" if p.family == "workers" else "constant delay tau"
    shift = 1 if p.family == "workers" else 0
    floor = (f"loss floor {p.floor:.5g} ({p.floor_theory})" if p.stable
             else "no loss floor (the given cell is not mean-square stable)")  # fmt: skip
    largest = "none" if p.tau_ms is None else ("at least " if p.tau_ms_at_limit else "") + str(p.tau_ms + shift)
    rate = "" if math.isnan(p.rate) else f"; rate {p.rate:.4g} per iteration"
    given = f" ({p.given_steps} at the given cell)" if p.given_steps != p.steps else ""
    print(f"predicted at the minimum (loss {p.loss_at_minimum:.6g}), before the runs: {floor}; largest "
          f"mean-square-stable {where} {largest} (mean boundary tau_c = {p.tau_c:.4g}){rate}; runs of {p.steps} "
          f"iterations{given}", flush=True)  # fmt: skip


def _run_paper_dnn(args: argparse.Namespace) -> int:
    """``--preset paper-dnn``: predict, run every cell on Dask (stored in ``--out``/runs.nc, resumed when
    there), write the report and its figure."""
    from dataclasses import replace

    _refuse_given(args, ("--only", "--perturb", "--svag", *(option for option, _ in _svag_budget(args).values())),
                  "--preset paper-dnn")  # fmt: skip
    _refuse_problem_options(args)
    if args.threads is not None:
        checks.positive_int("--threads", args.threads)
    if args.connect_timeout is not None and args.scheduler is None:
        raise ProblemError("--connect-timeout applies only with --scheduler: it is how long to wait for it to answer")
    if args.threads is not None and args.scheduler is not None:
        raise ProblemError("--threads sets the threads of the local cluster and does not apply with --scheduler "
                           "(the scheduler's workers have their own)")  # fmt: skip
    timeout = CONNECT_TIMEOUT if args.connect_timeout is None else checks.positive("--connect-timeout", args.connect_timeout)
    out = check_output_dir(args.out)
    from amsgd.figures.paper_dnn import paper_dnn_figure
    from amsgd.validation.paper_dnn import DnnSetup, run_paper_dnn
    from amsgd.validation.paper_dnn_report import write_dnn_report

    setup = DnnSetup() if args.seed is None else replace(DnnSetup(), seed=args.seed)
    cluster = [_option(option, value) for option, value in (("--scheduler", args.scheduler),
                                                            ("--connect-timeout", args.connect_timeout)) if value is not None]  # fmt: skip
    rerun = " ".join([_public_command(args), *cluster])  # the report's command leaves the cluster out
    with _incomplete_on_interrupt(out, rerun, lambda: _kept_runs(out / RUNS_FILE)):
        report = run_paper_dnn(setup, runs=out / RUNS_FILE, scheduler=args.scheduler, n_workers=args.threads,
                               connect_timeout=timeout)  # fmt: skip
        figure = paper_dnn_figure(report, out / "paper-dnn.png")
        write_dnn_report(report, out, [figure], command=_public_command(args))
    return _verdict(report.checks, report.elapsed, out, [figure])


def _kept_runs(runs: Path) -> str:
    """What an interrupted paper-dnn validation leaves for its rerun, and what the rerun does with it."""
    if runs.exists():
        return f"the runs are stored in {runs}; rerun to write the report from them"
    parts = runs.with_name(runs.name + ".parts")
    if any(parts.glob("point-*.json")):
        return f"the finished cells are kept in {parts}/; rerun to continue from them"
    return "no cell had finished; rerun"


def _run_svag(args: argparse.Namespace) -> int:
    """``--svag L1,L2,...``: SVAG runs at every L, the verdict, report.json, report.md and svag.png."""
    from dataclasses import replace

    _refuse_given(args, ("--preset", "--only", "--perturb"), "--svag")
    _refuse_given(args, ("--replicates",), "--svag", ": its runs per amplification are --svag-replicates")
    problem = require_pca(problem_from_args(args), "validate")
    from amsgd.validation.svag import SvagSetup, amplifications

    amps = amplifications(args.svag)  # before the compiled kernels load
    from amsgd.simulate.svag import check_svag

    for amp in amps:
        check_svag(problem, amp)
    budget = _svag_budget(args)
    for field in ("replicates", "steps"):
        option, value = budget[field]
        if value is not None:
            checks.positive_int(option, value)
    given = (("seed", args.seed), ("threads", args.threads), *((k, v) for k, (_, v) in budget.items()))
    changes = {k: v for k, v in given if v is not None}
    setup = replace(SvagSetup(amplifications=amps), **changes)
    out = check_output_dir(args.out)
    from amsgd.figures.svag import svag_figure
    from amsgd.validation.svag import run_svag, write_svag_report

    with _incomplete_on_interrupt(out, _public_command(args)):
        report = run_svag(problem, setup)
        figure = svag_figure(report, out / "svag.png")
        write_svag_report(report, out, [figure], command=_public_command(args))
    return _verdict(report.checks, report.elapsed, out, [figure], headline=report.verdict())


def _svag_budget(args: argparse.Namespace) -> dict:
    """The SVAG budget given on the command line: ``SvagSetup`` field → (option, value or None)."""
    return {"replicates": ("--svag-replicates", args.svag_replicates), "steps": ("--svag-steps", args.svag_steps),
            "escape": ("--svag-no-escape", False if args.svag_no_escape else None)}  # fmt: skip


def _verdict(checks, elapsed: float, out, figures: list[Path], headline: str = "") -> int:
    """Print ``headline`` (where given), how many checks pass and name the failures, with the topics of
    their accuracy notes (and, on stderr, the figures in ``out`` that this run did not draw); exit status 0
    when all pass, 1 otherwise. The report is written by then: Ctrl-C here says it is complete."""
    try:
        return _print_verdict(checks, elapsed, out, figures, headline)
    except KeyboardInterrupt as exc:
        print(f"amsgd validate: interrupted after the report was written: {out / 'report.md'} is complete",
              file=sys.stderr)  # fmt: skip
        exc.folder_said = True
        raise


def _print_verdict(checks, elapsed: float, out, figures: list[Path], headline: str) -> int:
    from amsgd.validation.report import figures_not_drawn

    if headline:
        print(headline)
    failed = [c for c in checks if not c.passed]
    if stale := figures_not_drawn(out, figures):
        print(f"amsgd validate: note: {out} also holds {', '.join(stale)}, not drawn by this run and not in "
              "its report (left by an earlier run into this folder)", file=sys.stderr)  # fmt: skip
    print(f"{len(checks) - len(failed)}/{len(checks)} checks pass ({elapsed:.0f} s); report in {out / 'report.md'}")
    for check in failed:
        print(f"FAIL {check.name}" + (" (undecided: these runs cannot decide it; the report says why)" if check.undecided else "")
              + (f" (accuracy notes: {check.noted_topics})" if check.accuracy_notes else ""))  # fmt: skip
    return 0 if not failed else 1
