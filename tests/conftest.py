"""Shared fixtures: problems used across the test suite."""

from __future__ import annotations

import os

import numpy as np
import pytest

from amsgd import Problem
from amsgd.core import progress
from amsgd.core.threads import available_cores


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker process gets its share of the cores for BLAS: by default every
    process starts a BLAS thread per core, and a worker per core then runs cores² threads that take the
    cores from one another (on two cores the full suite took 677 s so, and 633–660 s with the limit,
    one run each). The limit is this process's alone: the commands the tests start run as a user's would."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS beside NumPy's, so that both are limited)
    from threadpoolctl import threadpool_limits

    threadpool_limits(max(1, available_cores() // workers), user_api="blas")


def random_rotation(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture(autouse=True)
def no_timed_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal a command prints a progress line every ``progress.INTERVAL`` seconds, so
    whether one appears depends on the machine's speed (a cold compilation cache takes seconds);
    tests that read stderr must not. Tests of the progress lines set their own interval."""
    monkeypatch.setattr(progress, "INTERVAL", 1e9)


@pytest.fixture
def default_problem() -> Problem:
    return Problem.from_spectrum()


@pytest.fixture
def rotated_problem() -> Problem:
    return Problem.from_spectrum(basis=random_rotation(4, 7))
