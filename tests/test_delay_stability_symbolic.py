"""The symbolic delay theory against numeric polynomial roots."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from amsgd.derivations.delay_stability import (
    a,
    c,
    characteristic_polynomial,
    delay_differential_limit,
    dominant_root_expansion,
    small_delay_stability,
    z,
)
from amsgd.derivations.recursion import eta, mu, tau


def numeric_radius(step_rate: float, momentum: float, delay: int) -> float:
    """Spectral radius of x_{k+1} = (1+μ) x_k − μ x_{k−1} − c x_{k−τ}, by simulating its modes.

    Built from the recursion directly (state-space matrix), independent of the symbolic polynomial.
    """
    n = max(delay, 1) + 1
    m = np.zeros((n, n))
    m[0, 0] += 1 + momentum
    m[0, 1] += -momentum
    m[0, delay] += -step_rate
    m[1:, :-1] = np.eye(n - 1)
    return float(np.max(np.abs(np.linalg.eigvals(m))))


@pytest.mark.parametrize("delay", [0, 1, 2, 3, 7])
def test_polynomial_roots_are_the_recursion_eigenvalues(delay):
    rng = np.random.default_rng(delay)
    for _ in range(5):
        m, cv = rng.uniform(0, 0.99), rng.uniform(0, 1.5)
        coeffs = sp.Poly(characteristic_polynomial(delay).subs({eta * a: cv, mu: m}), z).all_coeffs()
        radius = np.max(np.abs(np.roots(np.array(coeffs, dtype=float))))
        assert radius == pytest.approx(numeric_radius(cv, m, delay), rel=1e-9)


def test_symbolic_tau_polynomial_specialises_to_integer_delays():
    general = characteristic_polynomial()
    for delay in (1, 2, 5):
        assert sp.expand(general.subs(tau, delay) - characteristic_polynomial(delay)) == 0


@pytest.mark.parametrize("delay", [0, 1, 2, 3])
def test_schur_cohn_verdict_equals_the_numeric_radius(delay):
    """At τ = 3 the boundary is a cubic's real root, in Cardano's form with complex intermediate terms
    (its value at μ = 1/2 once went unrecognised as positive, and a wrong root, 2.5 times it, was taken)."""
    stab = small_delay_stability(delay)
    critical = sp.lambdify(mu, stab.critical_step, "mpmath")
    rng = np.random.default_rng(10 + delay)
    agree = 0
    for _ in range(200):
        m, cv = rng.uniform(0, 0.99), rng.uniform(0.0, 4.5)
        conditions = [float(cond.subs({c: cv, mu: m})) for cond in stab.conditions]
        radius = numeric_radius(cv, m, delay)
        if abs(radius - 1) < 1e-9:
            continue
        assert all(v > 0 for v in conditions) == (radius < 1)
        agree += 1
        # The closed-form critical step is the boundary.
        assert (cv < float(sp.re(complex(critical(m))))) == (radius < 1)
    assert agree > 150


def test_critical_steps_in_closed_form():
    assert sp.simplify(small_delay_stability(0).critical_step - 2 * (1 + mu)) == 0
    assert sp.simplify(small_delay_stability(1).critical_step - (1 - mu)) == 0


@pytest.mark.parametrize(("momentum", "delay"), [(0.0, 0), (0.9, 0), (0.5, 4), (0.8, 12)])
def test_dominant_root_expansion_matches_numeric_roots_to_second_order(momentum, delay):
    rate_rate = 1.7
    expansion = dominant_root_expansion()
    root_errors, rate_errors = [], []
    for step in (2e-4, 1e-4):
        coeffs = sp.Poly(characteristic_polynomial(delay).subs({eta * a: step * rate_rate, mu: momentum}), z)
        roots = np.roots(np.array(coeffs.all_coeffs(), dtype=float))
        near_one = roots[np.argmin(np.abs(roots - 1))]
        values = {a: rate_rate, mu: momentum, tau: delay, eta: step}
        predicted = 1 + float((expansion.c1 * eta + expansion.c2 * eta**2).subs(values))
        root_errors.append(abs(near_one - predicted))
        rate_errors.append(abs(np.log(abs(near_one)) / step - float(expansion.rate.subs(values))))
    # Remainders of order η³ (root) and η² (rate): halving η divides them by 8 and 4.
    assert root_errors[1] < root_errors[0] / 6 or root_errors[0] < 1e-13
    assert rate_errors[1] < rate_errors[0] / 3 or rate_errors[0] < 1e-9
    # And the correction beats the bare limit rate −a/(1 − μ).
    limit = -rate_rate / (1 - momentum)
    assert rate_errors[1] <= abs(np.log(abs(near_one)) / step - limit)


def critical_delay(step_rate: float, momentum: float) -> int:
    """Largest τ with radius < 1, by bisection (the radius grows with τ in this range; checked below)."""
    low, high = 0, 1
    while numeric_radius(step_rate, momentum, high) < 1:
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if numeric_radius(step_rate, momentum, mid) < 1 else (low, mid)
    return low


def test_delay_differential_boundary_is_the_large_delay_limit_of_the_exact_recursion():
    dde = delay_differential_limit()
    assert sp.simplify(dde.critical_delay_time - sp.pi * (1 - mu) / (2 * a)) == 0
    # With s = τη fixed and η → 0 the exact critical delay approaches the DDE one.
    momentum, rate_rate = 0.6, 2.0
    predicted_s = float(dde.critical_delay_time.subs({mu: momentum, a: rate_rate}))
    gaps = []
    for step in (4e-3, 1e-3):
        delay = critical_delay(step * rate_rate, momentum)
        assert numeric_radius(step * rate_rate, momentum, delay // 2) < 1  # stable below the boundary
        gaps.append(abs(delay * step - predicted_s) / predicted_s)
    assert gaps[1] < gaps[0] and gaps[1] < 0.05
