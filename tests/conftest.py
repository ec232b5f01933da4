"""Shared fixtures: problems used across the test suite."""

from __future__ import annotations

import os

import numpy as np
import pytest

from amsgd import Problem
from amsgd.core import progress
from amsgd.core.threads import available_cores

#: The BLAS libraries' thread counts, read when a library loads (in this process's children too).
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker process gets its share of the cores for BLAS: by default every
    process starts a BLAS thread per core, and a worker per core then runs cores² threads that take the
    cores from one another (the full suite ran 7% longer so on two cores, 677 s against 633 s).
    Libraries loaded later and the commands the tests start read the environment; those already
    loaded are limited here."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    share = max(1, available_cores() // workers)
    for name in BLAS_THREADS:
        os.environ.setdefault(name, str(share))
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, so that it is limited too)
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")


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
