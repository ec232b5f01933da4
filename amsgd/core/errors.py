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
