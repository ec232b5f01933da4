"""Exact stationary second moments: Lyapunov equation, random delays, simulation."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from amsgd.core.delays import ConstantDelay, UniformDelay
from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.linear_recursion import companion_matrix, delay_law
from amsgd.diffusion.theory.lyapunov import (
    autocovariance,
    delay_spread,
    second_moment_radius,
    stationary_covariance,
    stationary_variance,
)


def ar2_variance(rate, eta, mu, noise):
    """Var of x_{k+1} = φ1 x_k + φ2 x_{k−1} + η ξ: η² s² (1 − φ2)/((1 + φ2)((1 − φ2)² − φ1²))."""
    phi1, phi2 = 1 + mu - eta * rate, -mu
    return eta**2 * noise * (1 - phi2) / ((1 + phi2) * ((1 - phi2) ** 2 - phi1**2))


def random_delay_matrices(rate, eta, mu, pmf):
    """The possible A_k (one per delay value) of the random-delay state-space form."""
    n = max(len(pmf) - 1, 1) + 1
    out = []
    for i in range(len(pmf)):
        a = np.zeros((n, n))
        a[0, 0], a[0, 1] = 1 + mu, -mu
        a[0, i] -= eta * rate
        a[np.arange(1, n), np.arange(n - 1)] = 1
        out.append(a)
    return out


@pytest.mark.parametrize("tau", [0, 1, 5, 40])
def test_covariance_solves_the_discrete_lyapunov_equation(tau):
    rate, eta, mu, noise = 0.5, 0.01, 0.8, 3.0
    a, b = companion_matrix(rate, eta, mu, tau)
    reference = scipy.linalg.solve_discrete_lyapunov(a, eta**2 * noise * np.outer(b, b))
    np.testing.assert_allclose(
        stationary_covariance(rate, eta, mu, tau, noise),
        reference,
        rtol=1e-9,
        atol=1e-9 * reference[0, 0],
    )


def test_lyapunov_residual_at_a_long_delay():
    rate, eta, mu, noise, tau = 1.0, 5e-4, 0.9, 2.0, 300
    p = stationary_covariance(rate, eta, mu, tau, noise)
    a, b = companion_matrix(rate, eta, mu, tau)
    residual = p - a @ p @ a.T - eta**2 * noise * np.outer(b, b)
    assert np.abs(residual).max() < 1e-10 * p[0, 0]


@settings(max_examples=100, deadline=None)
@given(product=st.floats(1e-4, 2.5), mu=st.floats(0.0, 0.98), noise=st.floats(0.1, 10.0))
def test_tau_zero_variance_is_the_ar2_closed_form(product, mu, noise):
    eta = 0.01
    rate = product / eta
    if product >= 2 * (1 + mu) * (1 - 1e-6):
        return
    expected = ar2_variance(rate, eta, mu, noise)
    assert stationary_variance(rate, eta, mu, 0, noise) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("tau", [0, 3])
def test_small_step_limit_is_the_diffusion_variance(tau):
    # Var x / η → s²/(2 a (1 − μ)) as η → 0, with error O(η): halving η halves the error.
    rate, mu, noise = 2.0, 0.7, 1.5
    limit = noise / (2 * rate * (1 - mu))
    etas = (4e-3, 2e-3, 1e-3)
    errors = [abs(stationary_variance(rate, eta, mu, tau, noise) / eta / limit - 1) for eta in etas]
    assert errors[-1] < 0.05
    assert errors[1] / errors[0] == pytest.approx(0.5, abs=0.05)
    assert errors[2] / errors[1] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(
    "pmf", [[0.25, 0.25, 0.25, 0.25], [0.1, 0.0, 0.6, 0.3], [0.7, 0.3], [0.2, 0.0, 0.0, 0.0, 0.0, 0.8]]
)
def test_random_delay_second_moments_solve_the_augmented_equation(pmf):
    # M = Σ_i p_i A_i M A_iᵀ + η² s² e0 e0ᵀ, solved as one linear system in vec(M).
    rate, eta, mu, noise = 3.0, 0.05, 0.5, 1.3
    mats = random_delay_matrices(rate, eta, mu, pmf)
    n = mats[0].shape[0]
    superop = sum(p * np.kron(a, a) for p, a in zip(pmf, mats))
    q = np.zeros((n, n))
    q[0, 0] = eta**2 * noise
    m = np.linalg.solve(np.eye(n * n) - superop, q.ravel()).reshape(n, n)
    assert stationary_variance(rate, eta, mu, pmf, noise) == pytest.approx(m[0, 0], rel=1e-10)
    np.testing.assert_allclose(stationary_covariance(rate, eta, mu, pmf, noise), m, rtol=1e-9)
    radius = np.abs(np.linalg.eigvals(superop)).max()
    assert second_moment_radius(rate, eta, mu, pmf) == pytest.approx(radius, rel=1e-9)


def test_second_moment_instability_beyond_the_mean():
    # A delay law whose mean dynamics are stable while the second moments diverge.
    rate, mu, pmf = 1.0, 0.0, [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]
    superop_radius = []
    for eta in (0.3, 0.8):
        mats = random_delay_matrices(rate, eta, mu, pmf)
        superop = sum(p * np.kron(a, a) for p, a in zip(pmf, mats))
        superop_radius.append(np.abs(np.linalg.eigvals(superop)).max())
        assert second_moment_radius(rate, eta, mu, pmf) == pytest.approx(superop_radius[-1], rel=1e-9)
    a_mean, _ = companion_matrix(rate, 0.8, mu, pmf)
    assert np.abs(np.linalg.eigvals(a_mean)).max() < 1 < superop_radius[1]
    with pytest.raises(ProblemError, match="second-moment gain"):
        stationary_variance(rate, 0.8, mu, pmf)


@pytest.mark.parametrize("tau", [0, 2, 7])
def test_degenerate_delay_law_equals_the_constant_delay(tau):
    rate, eta, mu, noise = 0.5, 0.01, 0.9, 0.7
    point_mass = np.eye(tau + 1)[tau]
    a, b = companion_matrix(rate, eta, mu, tau)
    lyapunov = scipy.linalg.solve_discrete_lyapunov(a, eta**2 * noise * np.outer(b, b))[0, 0]
    for delay in (point_mass, ConstantDelay(tau), UniformDelay(tau, tau)):
        assert stationary_variance(rate, eta, mu, delay, noise) == pytest.approx(lyapunov, rel=1e-10)
        assert second_moment_radius(rate, eta, mu, delay) == pytest.approx(
            np.abs(np.linalg.eigvals(a)).max() ** 2, rel=1e-10
        )


def test_unstable_mode_has_no_variance():
    with pytest.raises(ProblemError, match="not mean-square stable"):
        stationary_variance(8.0, 5e-4, 0.9, 40)
    assert stationary_variance(8.0, 5e-4, 0.9, 40, if_unstable="inf") == np.inf
    with pytest.raises(ProblemError, match="noise variance"):
        stationary_variance(1.0, 0.01, 0.5, 0, -1.0)


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(0.1, 5.0),
    mu=st.floats(0.0, 0.95),
    tau=st.integers(0, 12),
    noise=st.floats(0.01, 10.0),
)
def test_variance_is_positive_and_proportional_to_the_noise(rate, mu, tau, noise):
    eta = 1e-3
    base = stationary_variance(rate, eta, mu, tau, 1.0, if_unstable="inf")
    if np.isinf(base):
        return
    assert base > 0
    assert stationary_variance(rate, eta, mu, tau, noise) == pytest.approx(noise * base, rel=1e-12)
    larger = stationary_variance(rate, eta, mu, tau, 2 * noise)
    assert larger > stationary_variance(rate, eta, mu, tau, noise)


def simulate_stationary_sample(rate, eta, mu, pmf, noise, chains, steps, seed):
    """Final values of independent chains of x_{k+1} = (1+μ)x_k − μx_{k−1} − ηa x_{k−τ_k} + ηξ_k."""
    rng = np.random.default_rng(seed)
    pmf = np.asarray(pmf, dtype=float)
    depth = max(pmf.size - 1, 1) + 1
    history = np.zeros((depth, chains))  # row (k mod depth) holds x_k
    for k in range(1, steps + 1):
        now, before = history[k % depth], history[(k - 1) % depth]
        lags = rng.choice(pmf.size, size=chains, p=pmf)
        stale = history[(k - lags) % depth, np.arange(chains)]
        xi = rng.normal(0.0, np.sqrt(noise), size=chains)
        history[(k + 1) % depth] = (1 + mu) * now - mu * before - eta * rate * stale + eta * xi
    return history[(steps + 1) % depth]


@pytest.mark.parametrize(
    "eta, mu, delay",
    [(0.05, 0.5, 0), (0.05, 0.5, 5), (0.3, 0.2, UniformDelay(0, 4))],
    ids=["tau0", "tau5", "uniform0-4"],
)
def test_simulated_stationary_variance_matches(eta, mu, delay):
    rate, noise, chains = 1.0, 2.0, 20_000
    pmf = delay_law(delay).pmf
    sample = simulate_stationary_sample(rate, eta, mu, pmf, noise, chains, steps=600, seed=11)
    predicted = stationary_variance(rate, eta, mu, delay, noise)
    # Gaussian stationary law: the sample variance of n independent draws has relative sd sqrt(2/(n−1)).
    tolerance = 4 * np.sqrt(2 / (chains - 1))
    assert sample.var(ddof=1) / predicted == pytest.approx(1.0, abs=tolerance)
    # The check has power: the delay changes the variance by more than the tolerance.
    undelayed = stationary_variance(rate, eta, mu, 0, noise)
    if delay != 0:
        assert abs(predicted / undelayed - 1) > 3 * tolerance
    if delay_law(delay).constant is None:
        # ... and so does the second-moment term beyond the mean dynamics' Lyapunov equation.
        a_mean, b = companion_matrix(rate, eta, mu, delay)
        mean_only = scipy.linalg.solve_discrete_lyapunov(a_mean, eta**2 * noise * np.outer(b, b))[0, 0]
        assert abs(predicted / mean_only - 1) > 3 * tolerance


@pytest.mark.parametrize("tau", [0, 1, 2, 7, 30])
def test_batched_gains_equal_the_one_mode_solution(tau):
    """The batched Yule–Walker solve of many modes gives each mode's stationary variance per unit noise."""
    from amsgd.diffusion.theory.lyapunov import scaled_gain, stationary_gains

    rates = np.linspace(0.001, 0.05, 40)
    batched = stationary_gains(rates, 0.05, 0.9, tau)
    np.testing.assert_allclose(batched, [scaled_gain(r, 0.05, 0.9, tau) for r in rates], rtol=1e-9)


def _impulse_variance(row: np.ndarray, steps: int) -> float:
    """``Σ_k h_k²`` of the impulse response of ``x_{k+1} = Σ_j c_j x_{k−j} + e`` over ``steps`` steps, with
    compensated summation: ``γ(0)`` per unit noise up to a tail of order ``ρ^{2 steps}``."""
    taps = np.flatnonzero(row)
    history = np.zeros(row.size + steps)
    history[row.size - 1] = 1.0  # h_0
    total, carry = 0.0, 0.0
    for k in range(steps):
        t = row.size - 1 + k
        value = history[t]
        y = value * value - carry
        s = total + y
        carry, total = (s - total) - y, s
        history[t + 1] = float(row[taps] @ history[t - taps])
    return total


@pytest.mark.parametrize("tau, mu, rate", [(0, 0.9, 2.0), (3, -0.3, 1.5), (70, 0.0, 3.0), (70, 0.5, 1.0),
                                           (300, 0.0, 1.0), (300, 0.9, 0.1), (300, 0.99, 0.01)])  # fmt: skip
def test_step_down_variance_is_the_sum_of_the_squared_impulse_response(tau, mu, rate):
    """The Schur–Cohn step-down against the impulse response summed until its tail is below 1e-20 (both
    lose digits near the unit circle: ρ = 0.9999 at μ = 0.99)."""
    from amsgd.diffusion.theory.linear_recursion import ar_coefficient_rows, spectral_radii
    from amsgd.diffusion.theory.lyapunov import step_down_variance

    eta = 5e-4
    row = ar_coefficient_rows(np.array([rate]), eta, mu, tau)
    radius = spectral_radii(np.array([rate]), eta, mu, tau)[0]
    steps = int(np.log(1e-20) / np.log(radius)) + 10
    assert radius < 1 and steps < 200_000
    np.testing.assert_allclose(step_down_variance(row)[0], _impulse_variance(row[0], steps), rtol=1e-8)


@pytest.mark.slow
def test_stationary_gains_at_long_delays_equal_the_yule_walker_solutions_in_little_memory():
    """Above the dense limit the batch uses the step-down: the same gains as each mode's sparse
    Yule–Walker solve (slow modes near the unit circle included) and as the dense batch, with no
    τ²-sized array per mode (a dense batch of these 400 modes at τ = 1000 would hold 3.2 GB)."""
    import tracemalloc

    import amsgd.diffusion.theory.lyapunov as lyapunov
    from amsgd.diffusion.theory.linear_recursion import ar_coefficient_rows
    from amsgd.diffusion.theory.lyapunov import autocovariance

    eta, mu = 5e-4, 0.9
    rates = np.geomspace(1e-3, 1.0, 12)  # every one mean-stable at both delays (ρ from 0.99 to 1 − 5e-6)
    for tau in (63, 150):
        step_down = lyapunov.stationary_gains(rates, eta, mu, tau)
        sparse = [eta**2 * autocovariance(row)[0] for row in ar_coefficient_rows(rates, eta, mu, tau)]
        np.testing.assert_allclose(step_down, sparse, rtol=1e-6)
    dense_limit = lyapunov._DENSE_UNKNOWNS
    try:
        lyapunov._DENSE_UNKNOWNS = 10_000
        dense = lyapunov.stationary_gains(rates, eta, mu, 150)
    finally:
        lyapunov._DENSE_UNKNOWNS = dense_limit
    np.testing.assert_allclose(lyapunov.stationary_gains(rates, eta, mu, 150), dense, rtol=1e-6)
    many = np.geomspace(1e-3, 0.3, 400)
    tracemalloc.start()
    gains = lyapunov.stationary_gains(many, eta, mu, 1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.all(np.isfinite(gains)) and np.all(gains > 0)
    assert peak < 50e6, peak  # the coefficients and a few copies: 400 × 1002 × 8 bytes each


def test_step_down_variance_marks_an_unstable_autoregression():
    from amsgd.diffusion.theory.lyapunov import step_down_variance

    rows = np.array([[1.9, -0.95, 0.0], [1.0, 0.5, 0.0], [0.5, 0.0, 0.0]])  # stable, unstable, AR(1)
    out = step_down_variance(rows)
    assert np.isinf(out[1]) and np.isfinite(out[0])
    assert out[2] == pytest.approx(1 / (1 - 0.25), rel=1e-14)


def _yule_walker_dense(c: np.ndarray, noise_variance: float) -> np.ndarray:
    """γ(0..L) from the Yule–Walker equations of autocovariance's docstring, built and solved densely."""
    n = c.size + 1
    system = np.eye(n)
    for h in range(n):
        for j, cj in enumerate(c):
            system[h, j + 1 if h == 0 else abs(h - 1 - j)] -= cj
    rhs = np.zeros(n)
    rhs[0] = noise_variance
    return np.linalg.solve(system, rhs)[: c.size]


@pytest.mark.parametrize(("eta", "mu", "low", "high", "rate"), [
    (5e-4, 0.9, 0, 100, 0.5), (5e-4, 0.9, 0, 70, 1.0), (5e-4, 0.99, 0, 80, 0.2), (1e-2, 0.5, 50, 300, 0.1),
    (2e-3, 0.0, 0, 150, 0.5), (1e-3, 0.0, 0, 300, 1.0),
])  # fmt: skip
def test_long_autoregressions_take_the_step_down_with_the_same_autocovariance(eta, mu, low, high, rate):
    """Above 64 unknowns the γ come from the step-down and step-up (O(L²)): the same numbers as the
    Yule–Walker equations solved densely, for the momentum recursion of a mode under a uniform delay;
    an unstable one is NaN, not a covariance."""
    law = delay_law(UniformDelay(low, high))
    c = np.zeros(high + 1)
    c[0], c[1] = 1.0 + mu, -mu
    c -= eta * rate * law.pmf
    gamma = autocovariance(c, 1.7)
    expected = _yule_walker_dense(c, 1.7)
    assert gamma.shape == expected.shape and expected[0] > 0
    assert np.abs(gamma - expected).max() <= 1e-10 * np.abs(expected).max()
    unstable = c.copy()
    unstable[-1] -= 0.5  # a stale gradient of weight 0.5 at the longest delay: far beyond τ*
    assert np.isnan(autocovariance(unstable, 1.0)).all()


@pytest.mark.parametrize("lags", [1, 3, 40, 1500])
def test_delay_spread_by_fft_is_the_quadratic_form(lags):
    """κ(M), ``M_ij = λ^{−(i+j)/2} γ(|i − j|)``, by the autocorrelation of the scaled law against the
    dense quadratic form ``Σ_i p_i M_ii − pᵀ M p`` it stands for, for λ below, at and above one; a point
    mass gives 0 exactly."""
    rng = np.random.default_rng(lags)
    pmf = rng.random(lags + 1)
    pmf /= pmf.sum()
    k = np.arange(lags + 1)
    gamma = 0.99**k * np.cos(0.1 * k)
    for lam in (0.97, 1.0, 1.03):
        scale = lam ** (-k / 2)
        m = scale[:, None] * gamma[np.abs(k[:, None] - k[None, :])] * scale[None, :]
        assert delay_spread(gamma, pmf, lam) == pytest.approx(pmf @ np.diag(m) - pmf @ m @ pmf, rel=1e-12)
    assert delay_spread(gamma, np.eye(lags + 1)[lags], 0.97) == 0.0
