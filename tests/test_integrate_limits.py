"""ODE closed form vs solve_ivp, and exact OU sampling vs the analytic law."""

import mpmath
import numpy as np
import pytest
from scipy import stats
from scipy.integrate import simpson
from scipy.linalg import expm
from scipy.stats import special_ortho_group

from amsgd import Problem
from amsgd.core.errors import ProblemError
from amsgd.diffusion.ode import integrate_ode, ode_closed_form, sin2_error
from amsgd.diffusion.ou import ou_mean_cov, ou_stationary_cov, ou_transition, sample_ou


def ode_drift(eigenvalues: np.ndarray, mu: float, h: np.ndarray) -> np.ndarray:
    """``(Λ h − (hᵀΛh) h)/(1 − μ)`` over the last axis of ``h``."""
    lh = eigenvalues * h
    return (lh - np.sum(h * lh, axis=-1, keepdims=True) * h) / (1.0 - mu)


@pytest.mark.parametrize("norm", [1.0, 0.6, 1.7])
def test_ode_closed_form_matches_solve_ivp_in_rotated_coordinates(norm):
    basis = special_ortho_group.rvs(4, random_state=1)
    problem = Problem.from_spectrum((4, 3, 2, 1), basis=basis, eta=1e-3, mu=0.5)
    v0 = basis @ np.array([0.05, 0.9, 0.3, 0.2])
    v0 *= norm / np.linalg.norm(v0)
    iterations = np.linspace(0, 4000, 81)
    closed = integrate_ode(problem, v0, iterations)
    numeric = integrate_ode(problem, v0, iterations, method="solve_ivp")
    assert np.abs(closed.v - numeric.v).max() < 1e-8
    assert np.allclose(closed.t, iterations * 1e-3) and np.allclose(closed.iterations, iterations)
    # It escapes toward e_1 and the sphere attracts: the error falls, the norm tends to 1.
    assert closed.error[0] > 0.9 and closed.error[-1] < 1e-3
    assert abs(np.linalg.norm(closed.h[-1]) - 1) < 1e-6


def test_ode_closed_form_solves_the_ode_and_keeps_the_sphere():
    lam, mu = np.array([5.0, 2.0, 0.5]), 0.8
    h0 = np.array([0.1, 0.7, 0.2])
    h0 /= np.linalg.norm(h0)
    t = np.linspace(0, 0.5, 5001)
    h = ode_closed_form(lam, mu, h0, t)
    derivative = np.gradient(h, t, axis=0, edge_order=2)
    drift = ode_drift(lam, mu, h)
    assert np.abs(derivative - drift).max() < 1e-3 * np.abs(drift).max()
    t = np.linspace(0, 2, 11)
    h = ode_closed_form(lam, mu, h0, t)
    assert np.allclose(np.linalg.norm(h, axis=1), 1.0)
    expected = h0 * np.exp(lam * t[-1] / (1 - mu))
    assert np.allclose(h[-1], expected / np.linalg.norm(expected))
    # No overflow at very large times: the state is exactly e_1.
    assert np.allclose(ode_closed_form(lam, mu, h0, np.array([1e6]))[0], [1, 0, 0])
    assert sin2_error(np.array([[3.0, 4.0]])) == pytest.approx(16 / 25)


def test_ode_rejects_bad_input():
    problem = Problem.from_spectrum((2, 1))
    with pytest.raises(ProblemError, match="start"):
        integrate_ode(problem, np.zeros(2), [0, 1])
    with pytest.raises(ProblemError, match="unit"):
        integrate_ode(problem, np.ones(2), [0, 1], unit="seconds")
    for times in ([0, np.nan], [0, np.inf]):
        with pytest.raises(ProblemError, match="finite non-negative"):
            integrate_ode(problem, np.ones(2), times)
    for tolerance in (np.nan, np.inf, -1.0, "a", [1e-9, np.nan]):  # a NaN tolerance made solve_ivp loop for ever
        with pytest.raises(ProblemError, match="rtol"):
            integrate_ode(problem, np.ones(2), [0, 1], method="solve_ivp", rtol=tolerance)
        with pytest.raises(ProblemError, match="atol"):
            integrate_ode(problem, np.ones(2), [0, 1], method="solve_ivp", atol=tolerance)
    by_coordinate = integrate_ode(problem, np.ones(2), [0, 10], method="solve_ivp", atol=[0.0, 1e-12])  # as solve_ivp takes
    assert np.allclose(by_coordinate.h, integrate_ode(problem, np.ones(2), [0, 10]).h, atol=1e-8)
    with pytest.raises(ProblemError, match="solve_ivp' takes starts with entries up to 1e"):
        integrate_ode(problem, [1e200, 1e200], [0, 1], method="solve_ivp")  # it hung there
    with pytest.raises(ProblemError, match="start must be"):
        integrate_ode(problem, ["a", 1], [0, 1])


@pytest.mark.filterwarnings("error")
def test_ode_at_long_times_from_saddles_and_extreme_starts():
    """Where every entry of ``exp(Λt) h0`` under- or overflows: a start on the saddle e_2 (no e_1
    component) stays there, one with a component of 1e-300 along e_1 still escapes, a start of norm
    1e-200 grows along the unstable direction; each against solve_ivp or the closed form's meaning."""
    problem = Problem.from_spectrum((3, 2, 1), eta=0.01, mu=0.5)
    saddle = integrate_ode(problem, [0, 0.6, 0.8], [0, 2000, 50_000])
    assert np.all(saddle.error == 1.0) and np.allclose(saddle.h[-1], [0, 1, 0])
    tiny = integrate_ode(problem, [1e-300, 1, 0], [0, 50_000])  # escape after t ≈ 690 (1 − μ) = 345
    # at t = 500 the ratio h_2/h_1 is 1e300 e^{−(3 − 2) 500/0.5}: its square is the error, no longer rounded to 0
    assert tiny.error[0] == 1.0 and tiny.error[1] == pytest.approx(np.exp(2 * (300 * np.log(10) - 1000)), rel=1e-10, abs=0)
    small = integrate_ode(problem, [1e-200, 1e-200, 1e-200], [0, 100, 1e5])
    growth = np.exp(np.array([3, 2, 1]) * 1.0 / 0.5)  # t = 1 at iteration 100
    np.testing.assert_allclose(small.h[1], 1e-200 * growth, rtol=1e-12)  # far inside the sphere: w itself
    assert np.allclose(small.h[-1], [1, 0, 0]) and np.isclose(small.error[0], 2 / 3)
    for start in ([3.0, 1.0, 0.5], [0.3, 0.1, 0.05], [1e50, 3e49, 5e48]):  # outside and inside the sphere
        closed = integrate_ode(problem, start, [0, 10, 100, 1000])
        numeric = integrate_ode(problem, start, [0, 10, 100, 1000], method="solve_ivp")
        assert np.abs(closed.h[1:] - numeric.h[1:]).max() < 1e-8
        np.testing.assert_allclose(closed.h[0], numeric.h[0], rtol=1e-14)  # the start, rotated there and back
    still = integrate_ode(problem, [0.1, 1, 0], [0, 0, 0], method="solve_ivp")  # an empty interval
    huge = integrate_ode(problem, [3e200, 1e200, 0], [0, 10, 100], coordinates="eigen")  # ‖h0‖² overflows
    ratio = 3.0 * np.exp(np.array([0, 10, 100]) * 0.01 / 0.5)  # h_1/h_2 = 3 e^{(λ_1 − λ_2) t/(1 − μ)}
    np.testing.assert_allclose(huge.error, 1.0 / (1.0 + ratio**2), rtol=1e-12)
    np.testing.assert_allclose(huge.h[0], [3e200, 1e200, 0], rtol=1e-12)  # through the logarithms
    with mpmath.workdps(50):  # w/sqrt(1 − ‖h0‖² + ‖w‖²) as written, in 50 digits
        w = [mpmath.mpf(h) * mpmath.exp(lam * mpmath.mpf("0.2")) for h, lam in ((3e200, 3), (1e200, 2))]
        norm = mpmath.sqrt(1 - mpmath.mpf(3e200) ** 2 - mpmath.mpf(1e200) ** 2 + w[0] ** 2 + w[1] ** 2)
        np.testing.assert_allclose(huge.h[1, :2], [float(x / norm) for x in w], rtol=1e-12)  # t = 0.1/(1 − μ)
    assert np.all(still.h == [0.1, 1, 0])


def test_van_loan_transition_matches_closed_form_and_lyapunov():
    a = np.array([[-2.0, 0.5], [0.0, -1.0]])
    b = np.array([[0.3, 0.0], [0.2, 0.4]])
    phi, q = ou_transition(a, b, 0.7)
    assert np.allclose(phi, expm(0.7 * a))
    # Q(Δ) = ∫ e^{As} BBᵀ e^{Aᵀs} ds by Simpson quadrature.
    s = np.linspace(0, 0.7, 201)
    integrand = np.stack([expm(a * x) @ b @ b.T @ expm(a * x).T for x in s])
    assert np.allclose(q, simpson(integrand, x=s, axis=0), atol=1e-9)
    stationary = ou_stationary_cov(a, b)
    assert np.allclose(a @ stationary + stationary @ a.T, -b @ b.T)
    assert np.allclose(ou_transition(a, b, 50.0)[1], stationary)
    with pytest.raises(ProblemError, match="stationary"):
        ou_stationary_cov(-a, b)


def test_ou_transition_over_long_steps_is_finite_and_exact():
    """Over steps where the block exponential's ``e^{−AΔ}`` overflows (``|a| Δ`` beyond 709) the transition
    of a stable, non-normal A is ``Q(Δ) = S − e^{AΔ} S e^{AᵀΔ}`` (S stationary; an identity independent of
    the construction), at short and long steps; an exact draw over such a step has the stationary law;
    an unstable A over a step it overflows on, and times that are not finite, are refused."""
    a = np.array([[-3.0, 40.0], [0.0, -0.5]])
    b = np.array([[0.3, 0.0], [0.2, 0.4]])
    stationary = ou_stationary_cov(a, b)
    for delta in (0.3, 5.0, 2000.0, 1e6):
        phi, q = ou_transition(a, b, delta)
        assert np.allclose(phi, expm(a * delta), rtol=1e-9, atol=1e-300), delta
        assert np.allclose(q, stationary - phi @ stationary @ phi.T, rtol=1e-9, atol=1e-12 * np.abs(stationary).max()), delta
    paths = 20000
    u = sample_ou(np.diag([-1.0, -2.0]), np.eye(2), [3.0, -3.0], [0.0, 1000.0, 2000.0], paths=paths, rng=2).u
    assert np.all(np.isfinite(u))
    variance = np.array([0.5, 0.25])  # b²/(2|a|)
    se = variance * np.sqrt(2.0 / paths)
    assert np.all(np.abs(u[1:].var(axis=1) - variance) < 4 * se)
    with pytest.raises(ProblemError, match="overflows double precision"):
        sample_ou([[0.5]], [[1.0]], [0.0], [0.0, 3000.0])
    np.testing.assert_allclose(ou_transition(a, b, 1e308)[1], stationary, rtol=1e-9)  # 1024 doublings, none overflowing
    for delta in (np.inf, -1.0):
        with pytest.raises(ProblemError, match=r"time step\)? must be finite"):
            ou_transition(a, b, delta)
    for times in ([0.0, np.nan], [0.0, np.inf]):
        with pytest.raises(ProblemError, match="finite"):
            sample_ou([[-1.0]], [[1.0]], [0.0], times)


def test_exact_ou_sampling_matches_analytic_mean_and_covariance():
    # An unstable and a stable mode with correlated noise, as at a saddle of streaming PCA.
    a = np.array([[1.5, 0.0], [0.3, -2.0]])
    b = np.array([[0.5, 0.1], [0.0, 0.8]])
    u0 = np.array([0.2, -1.0])
    times = np.array([0.0, 0.1, 0.35, 1.0])  # non-uniform: each gap gets its own transition
    paths = 20000
    sample = sample_ou(a, b, u0, times, paths=paths, rng=7)
    mean, cov = ou_mean_cov(a, b, u0, times)
    for k in range(1, times.size):
        u = sample.u[k]
        se = np.sqrt(np.diag(cov[k]) / paths)
        assert np.all(np.abs(u.mean(axis=0) - mean[k]) < 4 * se)
        # Sample covariance entries: SE of s_ij is about sqrt((σ_ii σ_jj + σ_ij²)/n).
        s_cov = np.cov(u.T)
        se_cov = np.sqrt((np.outer(np.diag(cov[k]), np.diag(cov[k])) + cov[k] ** 2) / paths)
        assert np.all(np.abs(s_cov - cov[k]) < 4 * se_cov)
    # Each coordinate is Gaussian (Kolmogorov–Smirnov at the last time).
    z = (sample.u[-1, :, 0] - mean[-1, 0]) / np.sqrt(cov[-1, 0, 0])
    assert stats.kstest(z, "norm").pvalue > 1e-3
