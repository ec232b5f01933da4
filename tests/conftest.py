"""Shared fixtures: problems used across the test suite."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem


def random_rotation(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture
def default_problem() -> Problem:
    return Problem.from_spectrum()


@pytest.fixture
def rotated_problem() -> Problem:
    return Problem.from_spectrum(basis=random_rotation(4, 7))
