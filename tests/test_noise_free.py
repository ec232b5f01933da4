"""The compiled noise-free recursion behind the divergence risk (diffusion/theory/noise_free.py)
against the same recursion written with NumPy arrays, state by state."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd.diffusion.theory.noise_free import noise_free_blowups


def reference(lam, eta, mu, tau, start, velocity, iterations, limit):
    """The recursion on a list of past states, the batch as rows; a blown row is frozen at e_1."""
    e1 = np.eye(lam.size)[0]
    history = [np.tile(e1, (start.shape[0], 1)) for _ in range(tau + 1)] + [start.copy(), start + velocity]
    blown = np.zeros(start.shape[0], dtype=bool)
    with np.errstate(all="ignore"):
        for _ in range(iterations):
            cur, prev, stale = history[-1], history[-2], history[-1 - tau]
            quad = np.sum(stale * lam * stale, axis=1, keepdims=True)
            new = cur + mu * (cur - prev) + eta * (lam * stale - quad * stale)
            blown |= ~(np.linalg.norm(new, axis=1) < limit)
            new[blown] = e1
            history.append(new)
    return blown


@pytest.mark.parametrize(("eta", "mu", "tau"), [(0.05, 0.0, 0), (0.02, 0.5, 1), (0.01, 0.9, 4), (0.02, 0.7, 8)])
def test_compiled_recursion_matches_numpy(eta, mu, tau):
    """Random kicks of many sizes around e_1 (d = 5): the same rows blow up, and some do and some do not."""
    rng = np.random.default_rng(7)
    lam = np.array([2.0, 1.5, 1.0, 0.4, 0.1])
    scale = np.geomspace(1e-3, 30.0, 40)[:, None]
    start = np.eye(5)[0] + 0.1 * scale * rng.standard_normal((40, 5))
    velocity = scale * rng.standard_normal((40, 5))
    got = noise_free_blowups(lam, eta, mu, tau, start, velocity, 3000, 1e3)
    want = reference(lam, eta, mu, tau, start, velocity, 3000, 1e3)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < got.size, got.sum()


def test_a_tiny_threshold_catches_the_first_step():
    """A limit below the start's norm: every run blows up at once, none when the limit is infinite."""
    start = np.array([[1.0, 0.5]])
    lam = np.array([1.0, 0.5])
    assert noise_free_blowups(lam, 0.1, 0.5, 2, start, np.zeros_like(start), 1, 0.5)[0]
    assert not noise_free_blowups(lam, 0.1, 0.5, 2, start, np.zeros_like(start), 100, np.inf)[0]
