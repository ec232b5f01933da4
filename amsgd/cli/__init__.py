"""The ``amsgd`` command line: one subcommand per module, sharing the problem options.

Each subcommand module exposes ``SUMMARY`` (its line in ``amsgd --help``), ``HELP`` (the description
on its own ``--help``), ``configure(parser)`` and ``run(args) -> int``;
it parses, calls the API and prints. Only the ground layer and argparse are imported here, so
``--help`` and bad input return before SymPy, numba, Dask, xarray or matplotlib load. Bad input
raises :class:`~amsgd.core.errors.ProblemError`, printed here as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import gc
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence

from amsgd.cli import advise, derive, figures, integrate, simulate, sweep, validate
from amsgd.cli.options import ArgumentParser
from amsgd.cli.status import BAD_INPUT, EPILOG, INTERRUPTED, PIPE_CLOSED, TERMINATED
from amsgd.core import progress
from amsgd.core.errors import LongDelayWarning, ProblemError, RunWarning
from amsgd.core.files import plain_reason

COMMANDS = {
    "derive": derive,
    "simulate": simulate,
    "integrate": integrate,
    "sweep": sweep,
    "validate": validate,
    "figures": figures,
    "advise": advise,
}


class _OneLineCommands(argparse.HelpFormatter):
    """``amsgd --help`` on 80 columns: every command and its summary on one line (argparse would put
    the summary of the longest name, ``integrate``, on a line of its own)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=80)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        self._action_max_length = max(self._action_max_length, 16)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="amsgd", epilog=EPILOG, formatter_class=_OneLineCommands,
        description="Diffusion-limit analysis of asynchronous momentum SGD on streaming PCA and any model: "
        "derive, predict, simulate, integrate, validate, advise.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=module.SUMMARY, description=module.HELP, epilog=EPILOG)
        module.configure(command)
        command.add_argument(
            "-q", "--quiet", action="store_true",
            help="no progress on stderr (warnings and errors still print); progress is a bar on a terminal, "
            f"else a line every {progress.INTERVAL:g} s",
        )  # fmt: skip
    parser.commands = sub.choices
    return parser


def _options_elsewhere(commands: dict[str, ArgumentParser], given: str) -> dict[str, list[str]]:
    """Each long option of the subcommands other than ``given``, with the commands that take it."""
    elsewhere: dict[str, list[str]] = {}
    for name, command in commands.items():
        if name != given:
            for option in command.option_names():
                if option.startswith("--"):
                    elsewhere.setdefault(option, []).append(name)
    return elsewhere


def console() -> None:
    """The ``amsgd`` program: :func:`main` on the process's arguments, then the process ends with its
    status. A Ctrl-C or SIGTERM after the command has ended gave a bare status 130 or a traceback from
    the threading module, though the output was whole: while threads are joined and exit handlers run,
    such a signal now ends the process at once with the command's status, and in the interpreter's last
    teardown (JAX, Dask, xarray, SymPy and Numba unloaded: about half a second after a sweep's summary),
    where Python resets its own handlers to the default, it is ignored."""
    try:
        status = main()
        _end(status)
    except KeyboardInterrupt:  # between main's return and the handlers: the status main recorded
        status = INTERRUPTED if _STATUS is None else _STATUS
        _end(status)
    sys.exit(status)


def _end(status: int) -> None:
    """From here on a Ctrl-C or SIGTERM ends the process at once with ``status``."""
    global _ENDED
    _ENDED = True

    def leave(signum, frame) -> None:
        os._exit(status)

    for late in (signal.SIGINT, signal.SIGTERM):
        signal.signal(late, leave)


#: Set once :func:`console`'s command has ended.
_ENDED = False
#: The status of :func:`main`'s command once it has ended (its output flushed), else None.
_STATUS: int | None = None


@atexit.register  # at import, before the libraries the commands load: among the last exit handlers to run
def _ignore_signals_in_the_teardown() -> None:
    if _ENDED:  # an ignored signal stays ignored through the teardown; a handler would be reset
        for late in (signal.SIGINT, signal.SIGTERM):
            signal.signal(late, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. A Ctrl-C or SIGTERM that arrives once the command has ended
    (its output flushed), while its progress and warnings are closed, leaves the command's status."""
    global _STATUS
    _STATUS = None
    parser = build_parser()
    typed = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(typed)
    if extra:  # named by the command that was given (argparse names the top-level program)
        if args.command is None:
            parser.refuse_unknown(extra)
        else:
            before = typed[: typed.index(args.command)]
            parser.commands[args.command].refuse_unknown(extra, _options_elsewhere(parser.commands, args.command),
                                                         [arg for arg in extra if arg in before])  # fmt: skip
    if args.command is None:
        parser.print_help(sys.stderr)
        return BAD_INPUT
    command = parser.commands[args.command]
    repeated = _repeated_options(typed, command.option_names())
    if repeated:
        print(f"amsgd {args.command}: error: {repeated} is given more than once, and only the last would count; "
              "give it once (a list of values is comma separated)", file=sys.stderr)  # fmt: skip
        return BAD_INPUT
    try:
        with _sigterm_as_interrupt(), progress.reporting(f"amsgd {args.command}", quiet=args.quiet), \
                _warnings_as_lines(args.command):  # fmt: skip
            status = int(COMMANDS[args.command].run(args) or 0)
            sys.stdout.flush()  # here, where a failure is caught, not at the interpreter's exit
            _STATUS = status
        return status
    except ProblemError as exc:
        print(f"amsgd {args.command}: error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt as exc:
        if _STATUS is not None:  # the command had ended: its output is whole
            return _STATUS
        if args.command not in _SAY_WHAT_WAS_KEPT:  # these write their output only once they end
            print(f"amsgd {args.command}: its output is written when it ends, and files whole or not at all, so "
                  "what is missing was not computed; rerun the same command", file=sys.stderr)  # fmt: skip
        terminated = isinstance(exc, _Terminated)
        print(f"amsgd {args.command}: {'terminated (SIGTERM)' if terminated else 'interrupted'}", file=sys.stderr)
        _release_quietly(exc)
        return TERMINATED if terminated else INTERRUPTED
    except BrokenPipeError:  # the reader of stdout stopped early: no traceback, and no second one at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    except OSError as exc:
        if exc.filename is not None or exc.errno not in _OUTPUT_ERRORS:  # files fail as ProblemError, by name
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the unwritten rest is dropped
        print(f"amsgd {args.command}: error: cannot write standard output: {plain_reason(exc)}", file=sys.stderr)
        return BAD_INPUT


def _release_quietly(interrupt: BaseException) -> None:
    """Free the frames an interrupt left, without the tracebacks of their objects' finalizers: an object
    half built when the interrupt came may fail to close (a NetCDF file opened as Ctrl-C arrived printed
    "Exception ignored in: <function File.close ...>" and a traceback under "interrupted")."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        interrupt.__traceback__ = None
        gc.collect()
    finally:
        sys.unraisablehook = hook


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it ends as on Ctrl-C: what it kept is said, a
    validation folder is marked incomplete, a local Dask cluster is shut down."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` while a command runs (on the main thread, where handlers
    can be set; elsewhere, as when a test calls main from a thread, SIGTERM keeps its default)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: The commands that say on Ctrl-C what they kept (finished points, figures, a partial report).
_SAY_WHAT_WAS_KEPT = frozenset({"sweep", "validate", "figures"})
#: Options that collect every value given (``action="append"``).
_REPEATABLE = frozenset({"--perturb"})


def _repeated_options(argv: Sequence[str], known: Sequence[str]) -> str | None:
    """The first long option typed twice (``--mu 0.5 --mu 0.9``, or ``--mu=0.5``; an abbreviation, which
    argparse takes, as the ``known`` option it stands for: ``--steps 50 --step 0``), which argparse would
    settle silently by keeping the last; None when there is none."""
    seen = set()
    for token in argv:
        if not token.startswith("--"):
            continue
        typed = token.split("=", 1)[0]
        meant = [k for k in known if k == typed] or [k for k in known if k.startswith(typed)]
        name = meant[0] if len(meant) == 1 else typed
        if name not in _REPEATABLE:
            if name in seen:
                return name
            seen.add(name)
    return None


#: Errors of a write to standard output redirected to a full or failing device (``> /dev/full``).
_OUTPUT_ERRORS = (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def _warnings_as_lines(command: str) -> Iterator[None]:
    """Print the toolkit's :class:`~amsgd.core.errors.RunWarning` as ``amsgd COMMAND: warning: ...``,
    each text once (a sweep's points, run on worker threads, raise the same warning one by one) and a
    :class:`~amsgd.core.errors.LongDelayWarning` only the first time, each line whole: one write under
    a lock (``print`` writes the text and its newline apart, and lines of two threads ran together), on
    a line of its own where a bar is drawn (:func:`~amsgd.core.progress.write_line`)."""
    shown, printed, lock = warnings.showwarning, set(), threading.Lock()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, RunWarning):
            key = category if issubclass(category, LongDelayWarning) else str(message)
            with lock:
                if key not in printed:
                    printed.add(key)
                    progress.write_line(f"amsgd {command}: warning: {message}")
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", RunWarning)
        warnings.showwarning = show
        yield


if __name__ == "__main__":
    console()
