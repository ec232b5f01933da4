"""``amsgd`` run in the test's own process: the modules a command needs are loaded once per test
process instead of once per command."""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Sequence


def run_in_process(args: Sequence[str]) -> subprocess.CompletedProcess:
    """``amsgd ARGS`` as a finished process: its exit status (argparse's refusals included) and what
    it wrote on stdout and stderr."""
    from amsgd.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as stop:  # argparse's own errors
            status = stop.code
    return subprocess.CompletedProcess(["amsgd", *args], int(status), out.getvalue(), err.getvalue())
