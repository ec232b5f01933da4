"""Transient variance of a linear mode, and the finite-η escape time it gives."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem, parse_delay, predict
from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.transient import variance_crossing


def test_plain_sgd_crossing_equals_the_ar1_closed_form():
    growth, noise, eta, level = 1.5, 12.0, 1e-3, 0.05
    phi = 1 + eta * growth  # x_{k+1} = φ x_k + η ξ_k
    k = np.arange(1, 10_000)
    variance = eta**2 * noise * (phi ** (2 * k) - 1) / (phi**2 - 1)
    expected = int(k[np.argmax(variance >= level)])
    assert variance_crossing(-growth, noise, eta, 0.0, 0, level) == expected


def test_crossing_is_none_for_a_stable_mode_below_its_floor():
    assert variance_crossing(2.0, 1.0, 1e-3, 0.5, 0, level=1.0, max_iterations=5000) is None
    with pytest.raises(ProblemError):
        variance_crossing(-1.0, 1.0, 1e-3, 0.5, 0, level=0.0)


@pytest.mark.slow
def test_linear_escape_tends_to_the_diffusion_escape_as_eta_shrinks():
    gaps = []
    for eta in (2e-3, 5e-4, 1.25e-4):
        curve = predict(Problem.from_spectrum(eta=eta, mu=0.8)).to_dict()["phases"]["mean_curve"]
        gaps.append(abs(curve["escape_iterations_linearized"] / curve["escape_iterations"] - 1))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.03


@pytest.mark.slow
def test_delay_slows_the_linear_escape_and_random_delays_are_not_guessed():
    base = predict(Problem.from_spectrum()).to_dict()["phases"]
    delayed = predict(Problem.from_spectrum().replace(delay=parse_delay("constant:10"))).to_dict()["phases"]
    assert delayed["mean_curve"]["escape_iterations_linearized"] > base["mean_curve"]["escape_iterations_linearized"]
    assert delayed["mean_curve"]["escape_iterations"] == base["mean_curve"]["escape_iterations"]  # the limit ignores τ
    assert delayed["escape_iterations"] > base["escape_iterations"]  # single runs see the delay
    iid = predict(Problem.from_spectrum(delay=parse_delay("uniform:0-4"))).to_dict()["phases"]
    assert iid["mean_curve"]["escape_iterations_linearized"] is None


def _covariance_crossing(rate, noise, eta, mu, tau, level, max_iterations):
    """The crossing from the companion covariance ``P_{k+1} = A P_k Aᵀ + η² s² b bᵀ``, step by step."""
    from amsgd.diffusion.theory.linear_recursion import companion_matrix

    a, b = companion_matrix(rate, eta, mu, tau)
    cov = np.zeros_like(a)
    for k in range(1, max_iterations + 1):
        cov = a @ cov @ a.T + eta**2 * noise * np.outer(b, b)
        if cov[0, 0] >= level:
            return k
    return None


@pytest.mark.parametrize(("rate", "mu", "tau", "level"), [
    (-1.5, 0.0, 0, 0.05), (-0.3, 0.9, 1, 0.1), (-4.0, 0.5, 7, 0.02), (-0.8, 0.99, 30, 0.3), (-2.0, -0.3, 3, 0.01),
    (2.0, 0.5, 3, 1e-4),  # a stable mode whose floor lies above the level
])  # fmt: skip
def test_crossing_along_the_impulse_response_is_the_covariance_recursion(rate, mu, tau, level):
    eta, noise = 2e-3, 7.0
    want = _covariance_crossing(rate, noise, eta, mu, tau, level, 20_000)
    assert want is not None and variance_crossing(rate, noise, eta, mu, tau, level, 20_000) == want
