"""Exact stability region: τ*, largest stable step and momentum, the stability report."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.linear_recursion import spectral_radius
from amsgd.diffusion.theory.lyapunov import second_moment_radius
from amsgd.diffusion.theory.stability import (
    boundary_product,
    critical_delay,
    max_stable_delay,
    max_stable_momentum,
    max_stable_step,
    stability_report,
)

#: Σ = diag(4, 3, 2, 1) near e_1: tangent rates λ1 − λi and the radial rate 2 λ1.
PCA_RATES = np.array([1.0, 2.0, 3.0, 8.0])


def stable(rate, eta, mu, tau):
    return spectral_radius(rate, eta, mu, tau) < 1


@pytest.mark.parametrize(
    "product, mu",
    [(0.05, 0.0), (0.3, 0.5), (1e-2, 0.9), (4e-3, 0.95), (1.5, 0.2), (0.9, 0.0), (2e-2, 0.6)],
)
def test_critical_delay_matches_an_eigenvalue_scan(product, mu):
    tau_c = float(critical_delay(product, 1.0, mu)[0])
    assert tau_c > 0
    scan = [stable(product, 1.0, mu, tau) for tau in range(int(2 * tau_c) + 6)]
    assert scan == [tau < tau_c for tau in range(len(scan))]  # monotone in τ, switching at τ_c


def test_nothing_is_stable_beyond_the_tau_zero_bound():
    mu = 0.4
    for product in (2 * (1 + mu) * 1.001, 5.0):
        assert critical_delay(product, 1.0, mu)[0] == 0
        assert not any(stable(product, 1.0, mu, tau) for tau in range(6))
    with pytest.raises(ProblemError, match=r"mode 1 \(rate 10\) is unstable at every delay"):
        max_stable_delay([1.0, 10.0], 0.3, mu)
    with pytest.raises(ProblemError, match="not restoring"):
        max_stable_delay([1.0, -1.0], 1e-3, mu)


@pytest.mark.parametrize("mu", [0.7, 0.8, 0.85, 0.9, 0.95])
def test_largest_stable_delay_for_the_pca_example_by_brute_force(mu):
    eta = 5e-4
    margin = max_stable_delay(PCA_RATES, eta, mu)
    tau = 0
    while all(stable(r, eta, mu, tau) for r in PCA_RATES):
        tau += 1
    assert margin.value == tau - 1
    unstable_modes = [i for i, r in enumerate(PCA_RATES) if not stable(r, eta, mu, tau)]
    assert unstable_modes == [margin.limiting_mode] == [3]  # the radial mode, rate 2 λ1


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.floats(0.1, 10.0), min_size=1, max_size=5),
    eta=st.floats(1e-4, 0.05),
    mu=st.floats(0.0, 0.95),
)
def test_the_largest_rate_limits_the_delay(rates, eta, mu):
    margin = max_stable_delay(rates, eta, mu)
    assert rates[margin.limiting_mode] == max(rates)
    assert margin.value == min(margin.per_mode)


def test_small_product_asymptotics_of_the_critical_delay():
    # η a ≪ (1 − μ)²: τ_c ≈ π (1 − μ)/(2 η a) + 1/2 − 1/(1 − μ), with error O(η a).
    for mu in (0.0, 0.5, 0.8):
        c = 1e-6
        approx = np.pi * (1 - mu) / (2 * c) + 0.5 - 1 / (1 - mu)
        assert critical_delay(c, 1.0, mu)[0] == pytest.approx(approx, abs=1e-2)
    # (1 − μ)² ≪ η a ≪ 1 − μ: τ_c ≈ (1 − μ)/(η a), up to relative O((1 − μ)²/(η a) + η a/(1 − μ)).
    mu, c = 1 - 1e-4, 1e-6
    assert critical_delay(c, 1.0, mu)[0] == pytest.approx((1 - mu) / c, rel=0.03)


@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9])
def test_boundary_product_matches_the_jury_conditions_at_small_delays(mu):
    assert boundary_product(mu, 0) == 2 * (1 + mu)  # |1 + μ − c| < 1 + μ
    assert boundary_product(mu, 1) == pytest.approx(1 - mu, rel=1e-12)  # μ + c < 1


@pytest.mark.parametrize("tau", [0, 1, 4, 25])
@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9])
def test_largest_stable_step_is_on_the_boundary(tau, mu):
    rates = [0.5, 2.0, 1.0]
    margin = max_stable_step(rates, mu, tau)
    assert margin.limiting_mode == 1
    assert stable(2.0, margin.value * (1 - 1e-6), mu, tau)
    assert not stable(2.0, margin.value * (1 + 1e-6), mu, tau)
    assert all(stable(r, margin.value * 0.999, mu, tau) for r in rates)


@pytest.mark.parametrize("tau", [1, 4, 25])
def test_largest_stable_momentum_is_on_the_boundary(tau):
    eta, rates = 1e-3, [1.0, 2.0, 8.0]
    margin = max_stable_momentum(rates, eta, tau)
    mu_max = margin.value
    assert margin.limiting_mode == 2
    assert stable(8.0, eta, mu_max - 1e-6, tau) and not stable(8.0, eta, mu_max + 1e-6, tau)
    below = np.linspace(0.0, mu_max - 1e-6, 25)
    assert all(stable(r, eta, mu, tau) for mu in below for r in rates)
    if tau == 1:
        assert mu_max == pytest.approx(1 - eta * 8.0, abs=1e-12)  # Jury: μ + η a < 1


def test_momentum_bound_without_delay():
    assert max_stable_momentum([1.0, 8.0], 1e-3, 0).value == 1.0
    assert stable(3.0, 1.0, 0.6, 0) and not stable(3.0, 1.0, 0.4, 0)  # η a = 3 needs μ > 1/2
    with pytest.raises(ProblemError, match="at delay 0 for every mu"):
        max_stable_momentum([1.0, 8.0], 0.5, 0)
    with pytest.raises(ProblemError, match="at delay 3 even with mu 0"):
        max_stable_momentum([1.0, 8.0], 0.2, 3)
    with pytest.raises(ProblemError, match="constant delay"):
        max_stable_step([1.0], 0.5, [0.5, 0.5])


@pytest.mark.parametrize("delay", [20, 40, [0.5, 0, 0, 0, 0.5]])
def test_stability_report_agrees_with_the_pieces(delay):
    eta, mu = 5e-4, 0.9
    report = stability_report(PCA_RATES, eta, mu, delay)
    radii = [spectral_radius(r, eta, mu, delay) for r in PCA_RATES]
    assert report.spectral_radii == pytest.approx(radii, rel=1e-12)
    assert report.spectral_radius == max(radii)
    assert report.tau_max == max_stable_delay(PCA_RATES, eta, mu).value
    assert report.limiting_mode == 3
    assert report.stable == all(second_moment_radius(r, eta, mu, delay) < 1 for r in PCA_RATES)
    if isinstance(delay, int):
        assert report.stable == (delay <= report.tau_max)
        assert report.second_moment_radii == pytest.approx(np.square(radii), rel=1e-6)
    assert report.decay_per_unit_time == pytest.approx(-np.log(max(radii)) / eta, rel=1e-12)
    json.dumps(report.to_dict(), allow_nan=False)


def test_report_when_nothing_is_stable():
    report = stability_report([1.0, 50.0], 0.1, 0.5, 0)
    assert report.tau_max is None and not report.stable and report.limiting_mode == 1
    json.dumps(report.to_dict(), allow_nan=False)
