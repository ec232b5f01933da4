"""Shared fixtures: problems used across the test suite."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem
from amsgd.core import progress


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
