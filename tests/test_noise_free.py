"""The compiled noise-free recursion behind the divergence risk (diffusion/theory/noise_free.py)
against the same recursion written with NumPy arrays, state by state."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd.diffusion.theory.noise_free import noise_free_blowups


def reference(lam, eta, mu, pmf, start, velocity, iterations, limit):
    """The recursion on a list of past states, the batch as rows, the mean map of each lag weighted by
    ``pmf``; a blown row is frozen at e_1."""
    e1 = np.eye(lam.size)[0]
    history = [np.tile(e1, (start.shape[0], 1)) for _ in range(pmf.size)] + [start.copy(), start + velocity]
    blown = np.zeros(start.shape[0], dtype=bool)
    with np.errstate(all="ignore"):
        for _ in range(iterations):
            cur, prev = history[-1], history[-2]
            drift = 0.0
            for lag, weight in enumerate(pmf):
                stale = history[-1 - lag]
                quad = np.sum(stale * lam * stale, axis=1, keepdims=True)
                drift = drift + weight * (lam * stale - quad * stale)
            new = cur + mu * (cur - prev) + eta * drift
            blown |= ~(np.linalg.norm(new, axis=1) < limit)
            new[blown] = e1
            history.append(new)
    return blown


def point_mass(tau: int) -> np.ndarray:
    return np.eye(tau + 1)[tau]


@pytest.mark.parametrize(("eta", "mu", "pmf"), [(0.05, 0.0, point_mass(0)), (0.02, 0.5, point_mass(1)),
                                                (0.01, 0.9, point_mass(4)), (0.02, 0.7, point_mass(8)),
                                                (0.02, 0.7, np.array([0.1, 0.0, 0.2, 0.3, 0.0, 0.0, 0.4]))])
def test_compiled_recursion_matches_numpy(eta, mu, pmf):
    """Random kicks of many sizes around e_1 (d = 5), constant delays and a law with gaps: the same rows
    blow up, and some do and some do not."""
    rng = np.random.default_rng(7)
    lam = np.array([2.0, 1.5, 1.0, 0.4, 0.1])
    scale = np.geomspace(1e-3, 30.0, 40)[:, None]
    start = np.eye(5)[0] + 0.1 * scale * rng.standard_normal((40, 5))
    velocity = scale * rng.standard_normal((40, 5))
    lags = np.flatnonzero(pmf)
    got = noise_free_blowups(lam, eta, mu, lags, pmf[lags], 0.0, start, velocity, 3000, 1e3)
    want = reference(lam, eta, mu, pmf, start, velocity, 3000, 1e3)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < got.size, got.sum()


@pytest.mark.parametrize(("eta", "mu", "q"), [(0.02, 0.7, 0.8), (0.01, 0.9, 0.5)])
def test_geometric_recursion_is_the_long_table(eta, mu, q):
    """Under a geometric law the averaged force's recursion gives the rows that the law's table, cut
    where its tail is below 1e-15, gives through the lag sum."""
    rng = np.random.default_rng(3)
    lam = np.array([2.0, 1.5, 1.0, 0.4, 0.1])
    scale = np.geomspace(1e-3, 30.0, 40)[:, None]
    start = np.eye(5)[0] + 0.1 * scale * rng.standard_normal((40, 5))
    velocity = scale * rng.standard_normal((40, 5))
    lags = np.arange(int(np.log(1e-15) / np.log(q)) + 1)
    table = (1 - q) * q**lags
    by_table = noise_free_blowups(lam, eta, mu, lags, table / table.sum(), 0.0, start, velocity, 3000, 1e3)
    by_ratio = noise_free_blowups(lam, eta, mu, np.zeros(1, dtype=np.int64), np.ones(1), q, start, velocity, 3000, 1e3)
    np.testing.assert_array_equal(by_ratio, by_table)
    assert 0 < by_ratio.sum() < by_ratio.size, by_ratio.sum()


def test_a_tiny_threshold_catches_the_first_step():
    """A limit below the start's norm: every run blows up at once, none when the limit is infinite."""
    start = np.array([[1.0, 0.5]])
    lam = np.array([1.0, 0.5])
    lag, weight = np.array([2]), np.array([1.0])
    assert noise_free_blowups(lam, 0.1, 0.5, lag, weight, 0.0, start, np.zeros_like(start), 1, 0.5)[0]
    assert not noise_free_blowups(lam, 0.1, 0.5, lag, weight, 0.0, start, np.zeros_like(start), 100, np.inf)[0]
