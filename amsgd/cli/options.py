"""Command-line options shared by every subcommand: the problem description."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Sequence

from amsgd.core import checks
from amsgd.core.delays import ConstantDelay, DelayModel, HistogramDelay, parse_delay
from amsgd.core.distributions import parse_distribution
from amsgd.core.errors import ProblemError
from amsgd.core.files import atomic_write_text, check_distinct_files, check_input_file
from amsgd.core.models import (
    ACTIVATIONS,
    DEFAULT_HIDDEN,
    DEFAULT_L2,
    DEFAULT_MODEL_ETAS,
    MODELS,
    ModelProblem,
    load_data,
)
from amsgd.core.problem import DEFAULT_ETA, DEFAULT_MU, DEFAULT_SPECTRUM, Problem, read_covariance
from amsgd.sweep.grid import parse_axis

#: The default step sizes, as the help gives them.
DEFAULT_ETAS_HELP = ", ".join([f"{DEFAULT_ETA:g} for pca"] + [f"{eta:g} for {model}" for model, eta in
                                                              DEFAULT_MODEL_ETAS.items()])  # fmt: skip


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.endswith("expected one argument"):  # "--mu -0.3": the value reads as an option
            option = message.split(":")[0].removeprefix("argument ").split("/")[-1]
            message += f" (a value that starts with '-' is written with '=': {option}=-0.3)"
        self.exit(2, f"{self.prog}: error: {message}\n")

    def option_names(self) -> list[str]:
        """Every option string this (sub)command takes (``-q``, ``--quiet``, ...)."""
        return [s for action in self._actions for s in action.option_strings]

    def refuse_unknown(self, extra: list[str], elsewhere: dict[str, list[str]] | None = None,
                       misplaced: Collection[str] = ()) -> None:  # fmt: skip
        """Name the arguments this (sub)command does not take: one typed before the subcommand's name
        (``misplaced``) with where it goes, an option other subcommands take with those commands
        (``elsewhere``: option → command names), else the closest option of this one where the argument
        looks like a misspelt one."""
        import difflib

        known = [s for s in self.option_names() if s.startswith("--")]
        command = self.prog.split()[-1]

        def hint(arg: str) -> str:
            name = arg.split("=")[0]
            if arg in misplaced:
                return f"{arg} (given before {command}: options go after it, amsgd {command} {arg})"
            if elsewhere and name in elsewhere:
                return f"{arg} (an option of {', '.join(elsewhere[name])}, not of {command})"
            close = difflib.get_close_matches(name, known, 1)
            return f"{arg} (did you mean {close[0]}?)" if close else arg

        self.error(f"unrecognized arguments: {' '.join(hint(arg) for arg in extra)}")


def _one_momentum(text: str) -> float:
    """``--mu``'s type: one number; a list is refused with the options that take lists."""
    if "," in text:
        raise argparse.ArgumentTypeError(
            f"one momentum, got the list {text!r}; momenta as a list: amsgd advise --mus LIST, amsgd sweep --mu LIST"
        )
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None


class Given(argparse.Action):
    """Store the value and note the option as given on the command line (``namespace.given``), so that
    an option the chosen model does not use is refused rather than silently ignored."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


#: The options each kind of problem reads; given for another, they are refused (:func:`problem_from_args`).
PCA_OPTIONS = ("spectrum", "covariance", "distribution")
MODEL_OPTIONS = {"least-squares": ("data", "batch", "l2"), "logistic": ("data", "batch", "l2"),
                 "mlp": ("data", "batch", "l2", "hidden", "activation")}  # fmt: skip
#: Every option that sets the problem, as typed (what a command that brings its own problem refuses).
PROBLEM_FLAGS = tuple(f"--{name}" for name in (*PCA_OPTIONS, "eta", "mu", "tau", "delay", *MODEL_OPTIONS["mlp"]))


def add_problem_options(parser: argparse.ArgumentParser, *, point: bool = True, models: bool = True) -> None:
    """The problem options shared by every subcommand: spectrum or covariance, distribution, η, μ, delay,
    and a model's. ``point=False`` (a command that ranges over the momenta and delays itself) keeps --mu,
    --tau and --delay out of the help, ``models=False`` (a command for streaming PCA only) the model's
    options; they are still parsed, for the command to refuse in its own words."""
    shown = (lambda text: text) if point else (lambda text: argparse.SUPPRESS)
    group = parser.add_argument_group("problem")
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        "--spectrum", action=Given,
        default=listed(DEFAULT_SPECTRUM),
        help="eigenvalues of Σ = diag(spectrum), comma separated (default: %(default)s)",
    )
    source.add_argument(
        "--covariance", action=Given,
        metavar="FILE.npy",
        help="a symmetric positive-definite (d, d) covariance saved with numpy.save",
    )
    group.add_argument(
        "--distribution", action=Given,
        default="gaussian",
        help="data distribution: gaussian, rademacher (independent signs on the eigenvectors of Σ) or "
        "student-t:NU (one scale shared by the coordinates) (default: %(default)s)",
    )
    group.add_argument(
        "--eta", type=float, default=None, action=Given,
        help=f"step size η > 0 (default: {DEFAULT_ETAS_HELP if models else f'{DEFAULT_ETA:g}'})",
    )  # fmt: skip
    model_mu = "; for a model other than pca in (-1, 1), written --mu=-0.3" if models else ""
    group.add_argument(
        "--mu", type=_one_momentum, default=DEFAULT_MU, action=Given,
        help=shown(f"momentum μ in [0, 1){model_mu} (default: %(default)g)"),
    )  # fmt: skip
    # (exclusive only where shown: Python 3.11's usage line fails on a hidden member of such a group)
    delay = group.add_mutually_exclusive_group() if point else group
    delay.add_argument("--tau", type=whole, action=Given, help=shown("constant delay τ >= 0 (default: 0)"))
    delay.add_argument(
        "--delay", action=Given,
        help=shown("delay model: constant:N | uniform:A-B | geometric:MEAN | poisson:MEAN | "
                   "histogram:FILE | workers:M | ps:M[:exp|lognormal[:SIGMA]]"),
    )  # fmt: skip
    _add_model_options(parser, (lambda text: text) if models else (lambda text: argparse.SUPPRESS))


def _add_model_options(parser: argparse.ArgumentParser, shown: Callable[[str], str]) -> None:
    group = parser.add_argument_group("model (other than streaming PCA)")
    group.add_argument(
        "--model", default="pca", choices=("pca",) + MODELS,
        help=shown("the loss: streaming PCA (default), least squares, multinomial logistic regression or an MLP "
                   "classifier"),
    )  # fmt: skip
    group.add_argument(
        "--data", action=Given, default="digits", metavar="digits|FILE.npz|FILE.csv",
        help=shown("the data of a model: scikit-learn's bundled digits (default), an .npz with arrays X and y, "
                   "or a .csv with the target in the last column (a first row of column names is skipped)"),
    )  # fmt: skip
    group.add_argument("--batch", action=Given, type=whole, default=32, help=shown("minibatch size B (default: %(default)s)"))
    group.add_argument("--l2", action=Given, type=float, default=DEFAULT_L2,
                       help=shown("ridge penalty on the weights (default: %(default)g)"))  # fmt: skip
    group.add_argument("--hidden", action=Given, type=whole, default=DEFAULT_HIDDEN,
                       help=shown("hidden units of the MLP (default: %(default)s)"))  # fmt: skip
    group.add_argument("--activation", action=Given, default="tanh", choices=ACTIVATIONS,
                       help=shown("MLP activation (default: %(default)s)"))  # fmt: skip


def add_run_options(group, *, seed_help: str, seed_required: bool = False) -> None:
    """Options of a set of simulated runs, shared by ``simulate`` and ``sweep`` (per grid point)."""
    group.add_argument("--steps", type=whole, default=10_000, help="iterations per run (default: %(default)s)")
    group.add_argument("--replicates", type=whole, default=100, help="independent runs R (default: %(default)s)")
    group.add_argument("--seed", type=whole, default=None, required=seed_required, help=seed_help)
    group.add_argument(
        "--record-every", type=whole, default=None, metavar="K",
        help="record trajectories every K iterations (default: steps // 100); 0 and steps always",
    )  # fmt: skip
    group.add_argument(
        "--start", default="e2", action=Given,
        help="start point: eJ (an eigenvector, e2 = worst saddle, the default), random (uniform on the "
        "sphere per replicate), or comma-separated coordinates in the original basis",
    )  # fmt: skip
    window = group.add_mutually_exclusive_group()
    window.add_argument(
        "--window", type=float, default=None, metavar="FRACTION",
        help="the stationary error averages iterations from FRACTION·steps to steps (default: 0.5)",
    )  # fmt: skip
    window.add_argument("--window-start", type=whole, metavar="ITER", help="first iteration of the stationary window")
    group.add_argument(
        "--divergence-norm", type=float, default=1e6,
        help="a replicate with ||v|| above this, or NaN, is frozen and excluded; with --model, one that moves this "
             "much further from the centre than its start (least squares: the targets' mean at the intercept, "
             "distances in their standard deviation) (default: %(default)g)",
    )  # fmt: skip


def _list_entries(text: str) -> list[str] | None:
    """The comma-separated entries of ``text`` (spaces ignored); None when one is empty (``4,,1``,
    ``1,``: a slip, not a shorter list); ``[]`` for no text at all."""
    parts = text.replace(" ", "").split(",")
    if parts == [""]:
        return []
    return None if "" in parts else parts


def name_list(option: str, text: str | None, kind: str, absent: str) -> list[str] | None:
    """The comma-separated names an option gave (None where it was not given); refused when it gave
    none or named one twice (``kind``: what the names name; ``absent``: what leaving the option out does)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ProblemError(f"{option} needs {kind} names, comma separated (leave it out {absent})")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ProblemError(f"{option} names {', '.join(repeated)} more than once: {text!r}")
    return names


#: What a LIST option takes, for its help.
LIST_HELP = "values, comma-separated, and/or START:STOP:STEP ranges (STOP included)"


def listed(values) -> str:
    """A default list as the command line writes it: ``0,0.3,0.5``."""
    return ",".join(f"{v:g}" for v in values)


def _number_list(text: str, integer: bool) -> tuple:
    """Comma-separated values and ``START:STOP[:STEP]`` ranges, sorted and distinct, as the axes of
    ``amsgd sweep`` take them (:func:`amsgd.sweep.grid.parse_axis`); refused in argparse's way."""
    try:
        return parse_axis(text, "LIST", integer=integer)
    except ProblemError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def float_list(text: str) -> tuple[float, ...]:
    """``0.5,0.9`` or ``0.5:0.9:0.1`` -> ``(0.5, 0.6, 0.7, 0.8, 0.9)`` (an argparse type)."""
    return _number_list(text, integer=False)


def whole(text: str) -> int:
    """An integer, also when written as a whole float (``2e4``, ``20000.0``, as the lists of
    :func:`int_list` and the sweep's axes take it): an argparse type."""
    try:
        return checks.whole_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r} (a whole number, such as 20000 or 2e4)") from None


def int_list(text: str) -> tuple[int, ...]:
    """``1,2,4`` or ``1:4`` -> ``(1, 2, 3, 4)`` (an argparse type)."""
    return _number_list(text, integer=True)


def parse_spectrum(text: str) -> list[float]:
    entries = _list_entries(text)
    if entries is None:
        raise ProblemError(f"spectrum has an empty entry: {text!r} (comma-separated numbers such as 4,3,2,1)")
    try:
        values = [float(part) for part in entries]
    except ValueError:
        raise ProblemError(
            f"spectrum must be comma-separated numbers such as 4,3,2,1; got {text!r}"
        ) from None
    if len(values) < 2:
        raise ProblemError(f"spectrum must list at least two eigenvalues, got {text!r}")
    return values


def problem_from_args(args: argparse.Namespace) -> Problem | ModelProblem:
    """Build and validate the Problem (streaming PCA) or ModelProblem named by the shared options; an
    option given for another kind of problem (``--spectrum`` with ``--model logistic``, ``--hidden``
    without ``--model mlp``) is refused."""
    _refuse_options_not_read(getattr(args, "model", "pca"), getattr(args, "given", frozenset()))
    if args.delay is not None:
        delay = parse_delay(args.delay)
    else:
        delay = ConstantDelay(0 if args.tau is None else args.tau)
    if getattr(args, "model", "pca") != "pca":
        data = load_data(args.data, classification=args.model != "least-squares")
        layer = dict(hidden=args.hidden, activation=args.activation) if args.model == "mlp" else {}
        return ModelProblem(args.model, data, eta=args.eta, mu=args.mu, delay=delay, batch=args.batch, l2=args.l2, **layer)
    common = dict(
        distribution=parse_distribution(args.distribution),
        eta=DEFAULT_ETA if args.eta is None else args.eta,
        mu=args.mu,
        delay=delay,
    )
    if args.covariance is not None:  # an empty name is refused, not taken for the default spectrum
        return Problem(read_covariance(str(check_input_file(args.covariance, "--covariance"))), **common)
    return Problem.from_spectrum(parse_spectrum(args.spectrum), **common)


def refuse_typed(args: argparse.Namespace, options: Sequence[str], mode: str, why: str = "") -> None:
    """One line naming the first of ``options`` typed on the command line (recorded by :class:`Given`,
    so a value equal to the default counts too) that ``mode`` does not read; ``why`` follows it."""
    given = getattr(args, "given", frozenset())
    for option in options:
        if option.lstrip("-").replace("-", "_") in given:
            raise ProblemError(f"{option} does not apply to {mode}{why}")


def _refuse_options_not_read(model: str, given: frozenset[str]) -> None:
    """A one-line refusal naming the given options that ``model`` does not read."""
    reads = PCA_OPTIONS if model == "pca" else MODEL_OPTIONS[model]
    problem_options = (*PCA_OPTIONS, *MODEL_OPTIONS["mlp"])
    ignored = sorted((given & set(problem_options)) - set(reads), key=problem_options.index)
    if ignored:
        names = ", ".join(f"--{name}" for name in ignored)
        raise ProblemError(f"{names} do{'es' if len(ignored) == 1 else ''} not apply to --model {model}; "
                           f"it reads {', '.join(f'--{name}' for name in reads)}")  # fmt: skip


def require_pca(problem: Problem | ModelProblem, command: str) -> Problem:
    """``problem`` when it is streaming PCA; otherwise a one-line refusal naming the commands that take models."""
    if isinstance(problem, ModelProblem):
        raise ProblemError(
            f"{command} supports --model pca only; models other than PCA run in simulate, integrate, sweep, "
            "derive (JSON), advise and validate"
        )
    return problem


def check_distinct_outputs(args: argparse.Namespace, delay: DelayModel | None, **outputs: str | None) -> None:
    """Refuse output files (``out=args.out``: the option without its dashes) where two name one file, or
    one names a file the command reads (``--data``, ``--covariance``, the file of a ``histogram:FILE``
    ``delay``, the problem's parsed delay: its file is not read again)."""
    data = getattr(args, "data", None)
    inputs = {"--data": None if data == "digits" else data, "--covariance": getattr(args, "covariance", None),
              "--delay": delay.source if isinstance(delay, HistogramDelay) else None}  # fmt: skip
    check_distinct_files({f"--{option}": path for option, path in outputs.items()}, inputs)


def emit(text: str, path: str | None) -> None:
    """Print ``text``, or write it atomically to ``path`` (checked beforehand with ``check_output_file``)."""
    if path is None:
        print(text, end="")
    else:
        atomic_write_text(path, text)
