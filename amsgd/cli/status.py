"""The exit statuses of every ``amsgd`` command (listed in each command's ``--help``)."""

from __future__ import annotations

#: The command did what was asked.
OK = 0
#: ``validate``: at least one check failed (the report names it).
FAILED_CHECK = 1
#: Bad input: one line on stderr names the option, what it must be and what to do.
BAD_INPUT = 2
#: No estimate: every replicate diverged, so the summary has no mean (stderr says so).
NO_ESTIMATE = 3
#: Interrupted (Ctrl-C); stderr says what was kept and how to continue.
INTERRUPTED = 130
#: Stopped by SIGTERM (``kill``, a batch scheduler's time limit): handled as Ctrl-C is, with 128 + SIGTERM.
TERMINATED = 143
#: Standard output was closed before the command wrote all of it (``| head``): 128 + SIGPIPE, as a
#: shell reports a program stopped by a broken pipe; the work itself was done. Only where the write
#: fails: a reader that stops partway through an output larger than the pipe's buffer can end the
#: write short without an error (then the status is 0).
PIPE_CLOSED = 141

EPILOG = (
    f"exit status: {OK} done; {FAILED_CHECK} a validation check failed; {BAD_INPUT} bad input (one line on "
    f"stderr); {NO_ESTIMATE} no estimate, every replicate diverged; {INTERRUPTED} interrupted; {TERMINATED} terminated (SIGTERM, "
    f"handled as an interrupt); {PIPE_CLOSED} "
    "standard output closed early (| head)"
)
