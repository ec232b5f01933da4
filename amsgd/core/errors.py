"""Exceptions raised at the toolkit's boundary."""

from __future__ import annotations


class ProblemError(ValueError):
    """An input is outside its allowed range.

    The message names the parameter and the range it must lie in; the command line prints it as
    one line on stderr and exits with status 2.
    """


class RunWarning(UserWarning):
    """Inputs that run but are unlikely to mean what was intended (a delay longer than the run).

    The command line prints each as one line, ``amsgd COMMAND: warning: ...``, and goes on.
    """


class LongDelayWarning(RunWarning):
    """A mean delay of at least half the run. The command line prints the first only: a sweep warns
    once for its longest delay before its points run, and each point's run would add a line (one per
    delay of the grid, hundreds for a long grid)."""
