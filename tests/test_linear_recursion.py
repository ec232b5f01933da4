"""The linear mode: characteristic polynomial, companion form and spectral radius."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from amsgd.core.delays import (
    ConstantDelay,
    EventDrivenDelay,
    RoundRobinDelay,
    UniformDelay,
    parse_delay,
)
from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.linear_recursion import (
    characteristic_polynomial,
    companion_matrix,
    decay_rate,
    delay_law,
    dominant_frequency,
    spectral_radius,
)


def schur_cohn_stable(coefficients: np.ndarray) -> bool:
    """Schur–Cohn–Jury step-down: all roots of a real polynomial lie in the open unit disk."""
    p = np.asarray(coefficients, dtype=float)
    while p.size > 1:
        k = p[-1] / p[0]
        if abs(k) >= 1:
            return False
        p = (p - k * p[::-1])[:-1]
    return True


def test_polynomial_at_tau_zero_is_the_quadratic():
    rate, eta, mu = 3.0, 0.1, 0.7
    expected = [1.0, -(1 + mu - eta * rate), mu]
    np.testing.assert_allclose(characteristic_polynomial(rate, eta, mu, 0), expected, rtol=1e-15)


@pytest.mark.parametrize("tau", [1, 2, 7])
def test_polynomial_for_positive_delay(tau):
    rate, eta, mu = 3.0, 0.1, 0.7
    expected = np.zeros(tau + 2)
    expected[0] = 1.0  # z^{τ+1}
    expected[1] -= 1 + mu  # −(1 + μ) z^τ
    expected[2] += mu  # μ z^{τ−1}
    expected[-1] += eta * rate  # η a z^0
    np.testing.assert_allclose(characteristic_polynomial(rate, eta, mu, tau), expected, rtol=1e-15)


@pytest.mark.parametrize("tau", [0, 1, 4])
def test_constant_delay_is_its_point_mass(tau):
    point_mass = np.zeros(tau + 1)
    point_mass[tau] = 1.0
    reference = characteristic_polynomial(2.0, 0.01, 0.9, tau)
    padded = list(point_mass) + [0.0, 0.0]
    for delay in (point_mass, padded, ConstantDelay(tau), RoundRobinDelay(tau + 1)):
        np.testing.assert_array_equal(characteristic_polynomial(2.0, 0.01, 0.9, delay), reference)
        assert delay_law(delay).constant == tau


@pytest.mark.parametrize("delay", [0, 1, 6, [0.1, 0.2, 0.3, 0.4]])
def test_companion_matrix_advances_the_mean_recursion(delay):
    rate, eta, mu, noise = 1.7, 0.05, 0.6, 0.3
    a, b = companion_matrix(rate, eta, mu, delay)
    pmf = np.atleast_1d(delay_law(delay).pmf)
    state = np.random.default_rng(1).normal(size=a.shape[0])  # (x_k, x_{k−1}, ..., x_{k−L})
    lagged = sum(p * state[i] for i, p in enumerate(pmf))
    x_next = (1 + mu) * state[0] - mu * state[1] - eta * rate * lagged + eta * noise
    expected = np.concatenate(([x_next], state[:-1]))
    np.testing.assert_allclose(a @ state + b * eta * noise, expected, rtol=1e-13)


@pytest.mark.parametrize("delay", [0, 1, 3, 40, 200, [0.5, 0.0, 0.25, 0.25], UniformDelay(0, 30)])
def test_radius_from_polynomial_roots_matches_companion_eigenvalues(delay):
    rate, eta, mu = 2.0, 5e-3, 0.85
    roots = np.roots(characteristic_polynomial(rate, eta, mu, delay))
    assert spectral_radius(rate, eta, mu, delay) == pytest.approx(np.abs(roots).max(), rel=1e-9)
    a, _ = companion_matrix(rate, eta, mu, delay)
    assert roots.size == a.shape[0]


@settings(max_examples=200, deadline=None)
@given(
    product=st.floats(1e-4, 4.5),
    mu=st.floats(0.0, 0.999),
    tau=st.sampled_from([0, 1]),
)
def test_quadratic_verdict_matches_jury_conditions(product, mu, tau):
    # z² + c1 z + c0 is Schur stable iff |c0| < 1 and |c1| < 1 + c0.
    c1, c0 = (-(1 + mu - product), mu) if tau == 0 else (-(1 + mu), mu + product)
    margin = min(1 - abs(c0), 1 + c0 - abs(c1))
    assume(abs(margin) > 1e-9)
    assert (spectral_radius(product, 1.0, mu, tau) < 1) == (margin > 0)


def test_higher_degree_verdict_matches_schur_cohn_table():
    rng = np.random.default_rng(7)
    verdicts = []
    for _ in range(400):
        tau = int(rng.integers(2, 9))
        product, mu = 10 ** rng.uniform(-2, 0.3), rng.uniform(0, 0.99)
        poly = characteristic_polynomial(product, 1.0, mu, tau)
        radius = spectral_radius(product, 1.0, mu, tau)
        if abs(radius - 1) < 1e-8:
            continue
        verdicts.append(radius < 1)
        assert (radius < 1) == schur_cohn_stable(poly), (tau, product, mu)
    assert 0 < sum(verdicts) < len(verdicts)  # both verdicts occurred


@settings(deadline=None)
@given(product=st.floats(1e-6, 3.0))
def test_radius_without_momentum_or_delay_is_one_minus_eta_a(product):
    assert spectral_radius(product, 1.0, 0.0, 0) == pytest.approx(abs(1 - product), abs=1e-12)


def test_decay_rate_tends_to_the_diffusion_time_scale():
    # In diffusion time t = k η the mean relaxes at rate a/(1 − μ); the discrete rate differs by O(η).
    rate, mu = 2.0, 0.8
    errors = []
    for eta in (1e-3, 5e-4):
        per_time = decay_rate(rate, eta, mu, 0, per="time")
        assert per_time == pytest.approx(decay_rate(rate, eta, mu, 0) / eta, rel=1e-12)
        errors.append(abs(per_time / (rate / (1 - mu)) - 1))
    assert errors[0] < 0.05 and errors[1] / errors[0] == pytest.approx(0.5, abs=0.1)


def test_bad_delays_are_rejected():
    with pytest.raises(ProblemError, match="not i.i.d."):
        delay_law(EventDrivenDelay(4))
    with pytest.raises(ProblemError, match="sum to one"):
        delay_law([0.5, 0.4])
    with pytest.raises(ProblemError, match=">= 0"):
        delay_law([1.5, -0.5])
    with pytest.raises(ProblemError, match="non-negative"):
        delay_law(-1)
    with pytest.raises(ProblemError, match="mu"):
        spectral_radius(1.0, 0.1, 1.0, 0)
    with pytest.raises(ProblemError, match="eta"):
        spectral_radius(1.0, -0.1, 0.5, 0)


@pytest.mark.parametrize("spec", ["geometric:3", "geometric:10", "ps:8"])
@pytest.mark.parametrize("rate", [0.5, 2.0, 8.0])
def test_geometric_laws_take_the_three_state_system(spec, rate):
    """A geometric law's radius from the exact order-3 system equals the truncated law's companion radius."""
    from amsgd.core.delays import parse_delay
    from amsgd.diffusion.theory.linear_recursion import (
        ar_coefficients,
        geometric_ratio,
        radius_of,
        spectral_radius,
    )

    law = delay_law(parse_delay(spec), as_iid=True)
    assert geometric_ratio(law.pmf) is not None
    assert spectral_radius(rate, 5e-4, 0.9, law) == pytest.approx(radius_of(ar_coefficients(rate, 5e-4, 0.9, law)), abs=1e-9)
    assert geometric_ratio(delay_law(parse_delay("poisson:5")).pmf) is None


@pytest.mark.parametrize("samples", [1, 2, 9])
@pytest.mark.parametrize(("eta", "mu", "tau", "spread"), [
    (1e-3, 0.9, 63, 1.0),  # d = 1000 of closely spaced modes near the unit circle
    (0.05, 0.0, 0, 40.0),  # |1 − η a| reaches 0 and beyond one: the roots at the origin, unstable modes
    (0.02, 0.99, 15, 10.0),  # μ near one
    (0.3, 0.5, 31, 3.0),  # most modes unstable
    (1e-4, 0.0, 7, 1.0),  # radii within 1e-4 of one
])  # fmt: skip
def test_largest_radius_is_the_largest_companion_radius(monkeypatch, samples, eta, mu, tau, spread):
    """The step-down certificate against every mode's eigenvalues, with few modes sampled first (one:
    the slowest only, so the stiffest must be found by the test) and with negative (escaping) rates."""
    from amsgd.diffusion.theory import linear_recursion

    monkeypatch.setattr(linear_recursion, "CERTIFY_SAMPLES", samples)
    rng = np.random.default_rng(samples + tau)
    rates = np.r_[spread * rng.random(997), -0.3, 1.0 / eta, 0.999 / eta]  # 1/η: a root at the origin
    want = linear_recursion.spectral_radii(rates, eta, mu, tau).max()
    got = linear_recursion.largest_spectral_radius(rates, eta, mu, tau)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(("eta", "mu", "tau"), [
    (5e-4, 0.9, 70),  # the published problem's step, radii near one
    (1e-4, 0.99, 150),  # μ near one
    (0.05, 0.0, 100),  # most modes far beyond stability
    (0.01, 0.5, 66),  # just beyond the eigenvalue path's order
])  # fmt: skip
def test_bisected_radius_is_the_companion_radius(eta, mu, tau):
    """Beyond BISECT_ORDER coefficients the radius comes from bisection on the step-down test; against
    the companion eigenvalues (NumPy, each matrix on its own) for restoring, flat (radius one), escaping
    and stiff modes it agrees to 1e-11 relative."""
    from amsgd.diffusion.theory.linear_recursion import (
        BISECT_ORDER,
        ar_coefficient_rows,
        companion,
        spectral_radii,
    )

    assert tau + 2 > BISECT_ORDER
    rng = np.random.default_rng(tau)
    rates = np.r_[rng.uniform(0.0, 5.0, 4), 0.0, -0.5, 0.5 / eta]
    rows = ar_coefficient_rows(rates, eta, mu, tau)
    want = np.array([np.abs(np.linalg.eigvals(companion(row))).max() for row in rows])
    got = spectral_radii(rates, eta, mu, tau)
    assert got == pytest.approx(want, rel=1e-11)


@pytest.mark.parametrize(("rate", "eta", "mu"), [(4.0, 5e-4, 0.9), (0.5, 1e-4, 0.99), (1.0, 0.01, 0.0)])
def test_the_mean_verdict_of_a_long_recursion_is_the_radius_below_one(rate, eta, mu, monkeypatch):
    """``mean_is_stable`` decides a long recursion by one step-down, not the radius's bisection: on both
    sides of the largest stable delay τ* (beyond BISECT_ORDER coefficients) it says what the companion
    eigenvalues say."""
    from amsgd.diffusion.theory import linear_recursion
    from amsgd.diffusion.theory.linear_recursion import (
        BISECT_ORDER,
        ar_coefficients,
        companion,
        mean_is_stable,
    )
    from amsgd.diffusion.theory.stability import critical_delay

    tau_star = math.ceil(critical_delay([rate], eta, mu)[0]) - 1  # the mode's last stable delay (τ < τ_c)
    assert tau_star + 2 > BISECT_ORDER
    monkeypatch.setattr(linear_recursion, "bisected_radii", None)  # not the radius: fails if called
    linear_recursion._RADII.clear()
    for tau in (tau_star - 1, tau_star, tau_star + 1, tau_star + 2):
        c = ar_coefficients(rate, eta, mu, tau)
        assert mean_is_stable(c) == (np.abs(np.linalg.eigvals(companion(c))).max() < 1.0) == (tau <= tau_star)


def test_bisected_radius_of_roots_at_the_origin_and_far_out():
    """All roots at the origin (zero coefficients) give a radius below 1e-50; a root far outside the
    unit circle (c_0 = 1000) is found from Cauchy's bound."""
    from amsgd.diffusion.theory.linear_recursion import bisected_radii

    zero, far = np.zeros((1, 80)), np.zeros((1, 80))
    far[0, 0] = 1000.0  # x_{k+1} = 1000 x_k: the root 1000 and 79 at the origin
    assert bisected_radii(zero)[0] < 1e-50
    assert bisected_radii(far)[0] == pytest.approx(1000.0, rel=1e-12)


def test_largest_radius_of_modes_with_all_roots_at_the_origin():
    """μ = 0, τ = 0 and η a = 1 for every mode: x_{k+1} = 0, every radius zero."""
    from amsgd.diffusion.theory.linear_recursion import largest_spectral_radius

    assert largest_spectral_radius(np.full(5, 2.0), 0.5, 0.0, 0) == 0.0


def test_radius_of_keeps_recent_answers_by_their_coefficients(monkeypatch):
    """Asked again for the same coefficients it answers without an eigenvalue problem; different
    coefficients (a changed entry, an extra zero tap) get their own."""
    import scipy.linalg

    from amsgd.diffusion.theory import linear_recursion

    calls = []
    eigvals = scipy.linalg.eigvals
    monkeypatch.setattr(scipy.linalg, "eigvals", lambda *a, **k: calls.append(1) or eigvals(*a, **k))
    monkeypatch.setattr(linear_recursion, "_RADII", type(linear_recursion._RADII)())
    c = np.array([1.5, -0.5, 0.0, -0.01])
    first = linear_recursion.radius_of(c)
    assert first == pytest.approx(np.abs(np.roots(np.r_[1.0, -c])).max(), rel=1e-12) and len(calls) == 1
    assert linear_recursion.radius_of(c.copy()) == first and len(calls) == 1
    others = [np.array([1.5, -0.5, 0.0, -0.02]), np.r_[c, 0.0]]
    assert [linear_recursion.radius_of(o) for o in others] == pytest.approx(
        [np.abs(np.roots(np.r_[1.0, -o])).max() for o in others], rel=1e-12
    )
    assert len(calls) == 3


def test_dominant_frequency_is_the_angle_of_the_largest_root():
    """Against the roots of the characteristic polynomial (constant delay: a complex pair near the
    delay boundary, a real root without delay) and, for a geometric law, against the truncated law's
    companion roots (the 3 × 3 system is the untruncated law)."""
    def largest_angle(coefficients: np.ndarray) -> float:
        roots = np.roots(coefficients)
        return float(abs(np.angle(roots[np.argmax(np.abs(roots))])))

    law = delay_law(parse_delay("constant:10"))
    omega = dominant_frequency(3.0, 5e-4, 0.95, law)
    assert omega == pytest.approx(largest_angle(characteristic_polynomial(3.0, 5e-4, 0.95, law)), rel=1e-9)
    assert 0.03 < omega < 0.04  # a period of about 186 iterations
    assert dominant_frequency(1.0, 5e-4, 0.9, delay_law(parse_delay("constant:0"))) == 0.0
    geometric = delay_law(parse_delay("geometric:8"))
    truncated = largest_angle(characteristic_polynomial(2.0, 2e-3, 0.9, geometric))
    assert dominant_frequency(2.0, 2e-3, 0.9, geometric) == pytest.approx(truncated, rel=1e-6)
