"""The finite-delay (SDDE) limit: its derivation, its stationary variance and floor, against independent
numbers (the exact discrete linear theory, SciPy's Lyapunov solvers, a simulation of Async-MSGD)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import sympy as sp

from amsgd import Problem, predict
from amsgd.core.delays import ConstantDelay, UniformDelay
from amsgd.core.errors import ProblemError
from amsgd.derivations import derive
from amsgd.derivations.recursion import eta, mu, t
from amsgd.derivations.sdde import (
    b,
    c,
    c_i,
    c_j,
    cross_covariance_formula,
    d_ij,
    delayed_expansion,
    linear_mode_sdde,
    noise_variance,
    omega,
    rate,
    s,
    stationary_cross_covariance,
    u,
)
from amsgd.diffusion.theory.linear_recursion import ar_coefficients
from amsgd.diffusion.theory.lyapunov import autocovariance, stationary_gains
from amsgd.diffusion.theory.sdde_floor import linear_sdde_covariance, linear_sdde_variance, sdde_floor
from amsgd.diffusion.theory.stability import critical_delay

SPECTRUM = (4.0, 3.0, 2.0, 1.0)


@pytest.fixture(scope="module")
def default():
    return predict(Problem.from_spectrum(SPECTRUM, eta=5e-4, mu=0.9))


# -- the derivation -------------------------------------------------------------------------------


def test_the_delayed_expansion_balances_at_the_stale_state():
    e = delayed_expansion()
    x, g = e.curve, e.update
    velocity = sp.Derivative(x(t), t)
    assert sp.simplify(e.residual_order1 - ((1 - mu) * velocity - g(x(t - s)))) == 0
    assert sp.simplify(e.velocity - g(x(t - s)) / (1 - mu)) == 0
    assert sp.simplify(e.residual_order2 - (1 + mu) / 2 * sp.Derivative(x(t), (t, 2))) == 0
    assert sp.simplify(e.noise_amplitude - sp.sqrt(eta) / (1 - mu)) == 0
    assert sp.simplify(e.balance.lhs - e.balance.rhs - e.residual_order1) == 0


def test_the_residual_over_eta_tends_to_the_delayed_balance_numerically():
    """X(t) = exp(0.7 t), G(y) = y: the recursion's residual with τ = s/η, divided by η, tends to
    (1 − μ) X'(t) − X(t − s) at the rate η, computed in floating point from the recursion itself."""
    t0, delay_time, m = 0.3, 0.2, 0.8

    def curve(time):
        return np.exp(0.7 * time)

    limit = (1 - m) * 0.7 * curve(t0) - curve(t0 - delay_time)
    errors = []
    for step in (1e-2, 5e-3, 2.5e-3):
        residual = curve(t0 + step) - curve(t0) - m * (curve(t0) - curve(t0 - step)) - step * curve(t0 - delay_time)
        errors.append(abs(residual / step - limit))
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.05)
    assert errors[1] / errors[2] == pytest.approx(2.0, rel=0.05)


def test_the_derived_variance_is_the_kuchler_mensch_form():
    linear = linear_mode_sdde()
    assert sp.simplify(linear.variance - b**2 * (1 + sp.sin(c * s)) / (2 * c * sp.cos(c * s))) == 0
    # The solved autocovariance satisfies its delayed equation on [0, s] and Itô's condition.
    sol = stationary_cross_covariance(c, c, b**2)
    r = sol.autocovariance
    assert sp.simplify(sp.diff(r, u) + c * r.subs(u, s - u)) == 0
    assert sp.simplify(-2 * c * r.subs(u, s) + b**2) == 0
    # The per-mode form in a, σ², η, μ at s = 0 is the diffusion limit's.
    assert sp.simplify(linear.diffusion_variance - eta * noise_variance / (2 * rate * (1 - mu))) == 0


def euler_variance(rate: float, noise: float, delay_time: float, steps: int) -> float:
    """Stationary Var of the Euler scheme x_{k+1} = x_k − h c x_{k−n} + sqrt(h) b ε_k, h = s/n, exactly
    from the Yule–Walker equations of the discrete linear theory."""
    h = delay_time / steps
    return float(autocovariance(ar_coefficients(rate, h, 0.0, steps), h * noise)[0])


@pytest.mark.parametrize(
    ("rate", "delay_time"), [(1.0, 0.5), (2.0, 0.3), (4.0, 0.05), (1.0, 0.95 * np.pi / 2)]
)
def test_the_variance_matches_the_euler_scheme_extrapolated(rate, delay_time):
    noise = 0.7
    v1, v2, v4 = (euler_variance(rate, noise, delay_time, n) for n in (200, 400, 800))
    extrapolated = (8 * v4 - 6 * v2 + v1) / 3  # Richardson, first and second order removed
    derived = linear_sdde_variance(rate, noise, delay_time)
    # The scheme's own error estimate at the finest step bounds the extrapolation's error tenfold.
    assert abs(extrapolated - derived) < 0.1 * abs(v4 - v2)
    assert extrapolated == pytest.approx(derived, rel=2e-4)


def test_the_variance_is_infinite_at_and_beyond_the_boundary():
    assert np.isinf(linear_sdde_variance(2.0, 1.0, np.pi / 4))
    assert np.isinf(linear_sdde_variance(2.0, 1.0, 1.0))
    assert np.isinf(linear_sdde_variance(-1.0, 1.0, 0.1))
    assert linear_sdde_variance(2.0, 1.0, 0.0) == pytest.approx(0.25, rel=1e-14)
    with pytest.raises(ProblemError, match="delay_time must be >= 0"):
        linear_sdde_variance(1.0, 1.0, -0.1)


# -- the floor ------------------------------------------------------------------------------------


def test_the_floor_tends_to_the_diffusion_floor(default):
    d = derive(default.problem)
    assert sp.simplify(d.sdde.floor.subs(s, 0) - d.stationary_error) == 0
    modes = default.modes
    b2 = 5e-4 * modes.noise_variances / (1 - 0.9) ** 2
    slope = b2.sum() / 2  # d/ds of b² (1 + sin cs)/(2c cos cs) at s = 0 is b²/2
    for step in (1e-4, 1e-5):
        floor = sdde_floor(modes.rates, modes.noise_variances, 5e-4, 0.9, step)
        assert floor.diffusion_floor == pytest.approx(default.diffusion_floor, rel=1e-12)
        assert (floor.floor - floor.diffusion_floor) / step == pytest.approx(slope, rel=20 * step * 30)
    # The symbolic floor at the problem's numbers is the numeric one.
    value = float(d.sdde.floor.subs(d.values).subs(s, 0.01))
    assert value == pytest.approx(sdde_floor(modes.rates, modes.noise_variances, 5e-4, 0.9, 0.01).floor, rel=1e-12)


def test_the_floor_blows_up_at_the_boundary():
    rates, noise = np.array([1.0, 2.0]), np.array([1.0, 1.0])
    boundary = np.pi * 0.5 / (2 * 2.0)  # π (1 − μ)/(2 a) of the faster mode
    floor = sdde_floor(rates, noise, 1e-3, 0.5, 0.0)
    assert floor.critical_delay_time == pytest.approx(boundary, rel=1e-14) and floor.limiting_mode == 1
    # Var X ≈ b²/(c² (s* − s)) near the boundary: c = a/(1 − μ), b² = η σ²/(1 − μ)².
    c2, b2 = 2.0 / 0.5, 1e-3 / 0.25
    for gap in (1e-4, 1e-6):
        near = sdde_floor(rates, noise, 1e-3, 0.5, boundary - gap)
        assert near.variances[1] * gap == pytest.approx(b2 / c2**2, rel=10 * gap * c2)
    beyond = sdde_floor(rates, noise, 1e-3, 0.5, boundary)
    assert not beyond.stable and np.isinf(beyond.floor) and np.isfinite(beyond.variances[0])


def test_the_boundary_is_the_limit_of_the_exact_critical_delay():
    """τ_c η of the exact discrete stability theory tends to s* = π (1 − μ)/(2 a) as η → 0."""
    a_, m = 8.0, 0.9
    s_star = sdde_floor([a_], [0.0], 1e-4, m, 0.0).critical_delay_time
    gaps = [abs(critical_delay([a_], step, m)[0] * step - s_star) for step in (1e-4, 1e-5, 1e-6)]
    assert gaps[1] < gaps[0] / 5 and gaps[2] < gaps[1] / 5 and gaps[2] < 1e-3 * s_star


def test_the_exact_floor_tends_to_the_sdde_floor_as_eta_falls(default):
    """At fixed s = τη the exact discrete floor (momentum, finite η) tends to the SDDE floor, at rate η."""
    modes, m, delay_time = default.modes, 0.9, 0.01
    gaps = []
    for step in (1e-4, 5e-5, 2.5e-5):
        tau = round(delay_time / step)
        exact = float(stationary_gains(modes.rates, step, m, tau) @ modes.noise_variances)
        limit = sdde_floor(modes.rates, modes.noise_variances, step, m, delay_time).floor
        gaps.append(abs(exact / limit - 1))
    assert 1.7 < gaps[0] / gaps[1] < 2.3 and 1.7 < gaps[1] / gaps[2] < 2.3 and gaps[2] < 1e-3


# -- coupled modes --------------------------------------------------------------------------------


def discrete_covariance(drift: np.ndarray, noise: np.ndarray, delay_time: float, steps: int) -> np.ndarray:
    """Stationary Cov of the vector Euler scheme x_{k+1} = x_k − h K x_{k−n} + sqrt(h) B ε_k (SciPy)."""
    h, d = delay_time / steps, drift.shape[0]
    m = d * (steps + 1)
    a = np.zeros((m, m))
    a[:d, :d] = np.eye(d)
    a[:d, d * steps :] -= h * drift
    a[d:, :-d] = np.eye(d * steps)
    q = np.zeros((m, m))
    q[:d, :d] = h * noise
    return scipy.linalg.solve_discrete_lyapunov(a, q)[:d, :d]


@pytest.mark.slow
def test_the_cross_covariance_form_is_derived():
    general = stationary_cross_covariance().value
    one_mode = general.subs(c_j, c_i).subs(d_ij, b**2).subs(c_i, c)
    assert sp.simplify(one_mode - linear_mode_sdde().closed_form) == 0
    formula = cross_covariance_formula()
    rng = np.random.default_rng(3)
    for _ in range(5):
        ci, cj, dij = rng.uniform(0.2, 3.0), rng.uniform(0.2, 3.0), rng.uniform(-1.0, 1.0)
        delay_time = rng.uniform(0, 0.95) * np.pi / (2 * max(ci, cj))
        point = {c_i: ci, c_j: cj, d_ij: dij, s: delay_time}
        shown = float(formula.subs(point).subs(omega, np.sqrt(ci * cj)))
        assert shown == pytest.approx(float(general.subs(point)), rel=1e-12)


def test_coupled_modes_against_the_discrete_vector_lyapunov():
    vectors = np.array([[1.0, 0.4], [-0.3, 1.0]])
    drift = vectors @ np.diag([1.0, 2.5]) @ np.linalg.inv(vectors)
    factor = np.array([[1.0, 0.2], [0.5, 0.8]])
    noise = factor @ factor.T
    derived = linear_sdde_covariance(drift, noise, 0.4)
    coarse, fine = discrete_covariance(drift, noise, 0.4, 25), discrete_covariance(drift, noise, 0.4, 50)
    extrapolated = 2 * fine - coarse
    assert np.max(np.abs(extrapolated - derived)) < 0.1 * np.max(np.abs(fine - coarse))
    # s = 0: the Ornstein–Uhlenbeck covariance, K P + P Kᵀ = B Bᵀ.
    ou = scipy.linalg.solve_continuous_lyapunov(drift, noise)
    np.testing.assert_allclose(linear_sdde_covariance(drift, noise, 0.0), ou, rtol=1e-12)
    assert np.all(np.isinf(linear_sdde_covariance(drift, noise, 0.7)))


def test_coupled_modes_refuse_a_drift_without_real_positive_eigenvalues():
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]]) + np.eye(2)
    with pytest.raises(ProblemError, match="real positive eigenvalues"):
        linear_sdde_covariance(rotation, np.eye(2), 0.1)
    with pytest.raises(ProblemError, match="symmetric"):
        linear_sdde_covariance(np.eye(2), np.array([[1.0, 0.5], [0.0, 1.0]]), 0.1)


# -- the derive JSON ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_derive_json_has_the_sdde_entry(default):
    entries = {tau: default.at(delay=tau).to_dict(["sdde"])["sdde"] for tau in (0, 20, 50)}
    for tau, entry in entries.items():
        assert entry["delay_time"] == pytest.approx(tau * 5e-4)
        assert entry["critical_delay_time"] == pytest.approx(np.pi * 0.1 / (2 * 8.0))
        assert entry["limiting_mode"] == {"i": 1, "kind": "radial", "rate": 8.0}
        assert entry["diffusion_floor"] == pytest.approx(default.diffusion_floor)
        assert "sin(c_i s)" in entry["formula"] and "cos(c*s)" in entry["formulas"]["stationary_variance_formula"]
    assert entries[0]["stationary_error"] == pytest.approx(default.diffusion_floor, rel=1e-12)
    # τ = 20: between the diffusion floor and the exact finite-η floor, within 1% of the latter.
    exact = default.at(delay=20).linearized.floor
    assert default.diffusion_floor * 1.1 < entries[20]["stationary_error"] < exact
    assert entries[20]["stationary_error"] == pytest.approx(exact, rel=0.01)
    # τ = 50 > s*/η = 39.3: no stationary law.
    assert entries[50]["stationary_error"] is None and entries[50]["stable"] is False and "note" in entries[50]
    # A random delay: its mean, said so.
    random = default.at(delay=UniformDelay(0, 40)).to_dict(["sdde"])["sdde"]
    assert random["delay_time"] == pytest.approx(20 * 5e-4) and "mean delay" in random["delay_time_note"]


# -- against the algorithm ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_sdde_floor_against_simulated_async_msgd():
    """μ = 0, η = 1e-3, τ = 150 (s = 0.15, 0.76 s*): 2000 runs of 30 000 steps from e_1. The SDDE floor
    is inside the 95% interval of the simulated floor; the τ-free diffusion floor is 20% below it."""
    from amsgd.simulate import simulate

    problem = Problem.from_spectrum(SPECTRUM, eta=1e-3, mu=0.0, delay=ConstantDelay(150))
    p = predict(problem)
    measured = simulate(problem, 30_000, 2000, rng=7, start="e1", window_start=3000).stationary_error
    assert measured.ci_low <= p.sdde.floor <= measured.ci_high
    assert p.diffusion_floor < 0.85 * measured.ci_low


def _distributed_delay_mode(c: float, b2: float, times: np.ndarray, probs: np.ndarray) -> float:
    """The stationary variance of ``dX = −c Σ_k p_k X(t − s_k) dt + b dW``, a random delay's limit, computed
    here independently of the toolkit: stable iff ``λ + c φ(λ)`` (``φ(λ) = Σ p_k e^{−λ s_k}``) has no zero
    in the closed right half-plane, counted by the argument principle on the imaginary axis (``f ≈ λ`` on
    the large half-circle); then ``(b²/π) ∫_0^∞ dω / |iω + c φ(iω)|²``. Infinite where unstable."""
    import math

    from scipy import integrate

    bound = 50.0 * c  # beyond it |c φ| <= c is under 2% of |iω|: the argument has settled at π/2
    w = np.arange(0.0, bound, math.pi / (8.0 * times.max()))
    f = 1j * w + c * (np.exp(-1j * np.outer(w, times)) @ probs)
    zeros = 0.5 - (np.unwrap(np.angle(f))[-1] - np.angle(f[0])) / math.pi
    if round(zeros) != 0:
        return math.inf
    if b2 == 0:
        return 0.0
    density = lambda x: 1.0 / abs(1j * x + c * (np.exp(-1j * x * times) @ probs)) ** 2  # noqa: E731
    value, _ = integrate.quad(density, 0.0, 1000.0 * c, limit=2000)
    return b2 / math.pi * (value + 1.0 / (1000.0 * c))


def test_a_distributed_delay_limit_too_large_to_grid_is_named_and_the_rest_stands():
    """η 0.216, μ 0.999 with geometric:20.5 (the fastest mode's c η about 1700 per step): the grid would
    need about 1e7 frequencies, and the ``sdde`` entry is null with the reason, while the other entries and
    the derivation document stand. The closed-form sum over periods' terms, against the terms summed."""
    from amsgd.core.delays import parse_delay
    from amsgd.diffusion.theory.distributed_delay import MAX_POINTS, lorentzian_sums

    problem = Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), eta=0.216, mu=0.999, delay=parse_delay("geometric:20.5"))
    predictions = predict(problem)
    out = predictions.to_dict()
    sdde = out["sdde"]
    assert sdde["stationary_error"] is None and sdde["stable"] is None and set(sdde["per_mode"]) == {None}
    assert sdde["note"].startswith("not computed: the random delay's finite-delay limit needs")
    assert f"more than the {MAX_POINTS:.3g}" in sdde["note"] and sdde["unresolved"] in sdde["note"]
    assert out["stability"]["tau_max"] is not None
    assert "Its floor is not computed" in predictions.document("markdown")
    x, y = np.array([0.05, 0.7, 3.0, 30.0]), np.array([0.0, 1e-9, 0.4, 25.0])
    m = np.arange(200_000)[:, None]
    assert lorentzian_sums(x, y) == pytest.approx(np.sum(1.0 / ((m + x) ** 2 + y**2), axis=0) + 1.0 / (m[-1] + x), rel=1e-9)


def test_the_distributed_delay_limit_of_one_delay_is_the_derived_sdde():
    """A law of one value is the one-delay SDDE: the spectral integral and the argument principle give the
    derived variance and boundary (c s < π/2), near it too, and where η c is large."""
    from amsgd.diffusion.theory.distributed_delay import distributed_delay_variances

    cases = [(5e-4, tau, restoring) for tau, restoring in ((0, 5.0), (10, 10.0), (20, 1.0), (20, 80.0), (39, 80.0),
                                                          (40, 80.0))]  # fmt: skip
    cases += [(5e-5, tau, 80.0) for tau in (391, 392, 393)]  # c s = 1.564, 1.568, 1.572 against π/2 = 1.5708
    cases += [(5e-4, 20, (math.pi / 2 - gap) / 0.01) for gap in (1e-4, 1e-6)]  # a peak 1e6 times the floor's
    # one period 2π/η shorter than 50 c: the periods beyond the grid summed in closed form (up to 32 of them)
    cases += [(0.05, 5, 5.0), (0.05, 5, 6.2), (0.5, 1, 1.5), (0.5, 2, 1.5), (1.0, 0, 100.0)]
    for eta_value, tau, restoring in cases:
        pmf = np.zeros(tau + 1)
        pmf[-1] = 1.0
        got = distributed_delay_variances(np.array([restoring]), np.array([1.0]), eta_value, pmf)[0]
        want = linear_sdde_variance(restoring, 1.0, tau * eta_value)  # inf from c s >= π/2 on
        assert got == pytest.approx(want, rel=1e-5) if np.isfinite(want) else np.isinf(got)
    spread = np.full(5, 0.2)  # a mode that does not restore has no stationary law, noise or not
    assert np.isinf(distributed_delay_variances(np.array([-1.0, 0.0]), np.array([1.0, 0.0]), 5e-4, spread)).all()


def test_the_spectral_integral_the_document_displays_gives_its_random_delays_variances():
    """The document's formula for a random delay, ``(b²/π) ∫ |iω + c φ(ω)|⁻² dω`` with the factor it names,
    ``φ(ω) = Σ_k p_k e^{−iωkη}``, by SciPy's quadrature for uniform:0-40 on the default problem's mode 2
    (``c = (λ_1 − λ_2)/(1 − μ) = 10``, ``b² = η λ_1 λ_2/(1 − μ)² = 0.6``): the reported variance. With the
    characteristic function itself, ``E e^{+iωS}``, which the text named, it is 16% lower."""
    from scipy.integrate import quad

    problem = Problem.from_spectrum(SPECTRUM, delay=UniformDelay(0, 40))
    predictions = predict(problem)
    reported = predictions.to_dict(["sdde"])["sdde"]["per_mode"][1]
    assert "\\varphi(\\omega) = \\sum_k p_k e^{-i\\omega k\\eta}$" in predictions.document("markdown")
    lags = np.arange(41) * problem.eta
    restoring, noise = 1.0 / (1 - problem.mu), problem.eta * 12.0 / (1 - problem.mu) ** 2

    def variance(sign: float) -> float:
        def density(w: float) -> float:
            factor = np.mean(np.exp(sign * 1j * w * lags))
            return 1.0 / abs(1j * w + restoring * factor) ** 2

        return noise / math.pi * sum(quad(density, lo, hi, limit=400)[0] for lo, hi in ((0, 50), (50, 2e3), (2e3, np.inf)))

    assert variance(-1.0) == pytest.approx(reported, rel=1e-5)  # the quadrature's oscillating tail: 2e-6
    assert variance(+1.0) < 0.9 * reported


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "eta_value"), [("geometric:20", 5e-4), ("geometric:60", 5e-4),
                                                 ("uniform:0-160", 1.25e-4), ("geometric:3", 5e-3)])  # fmt: skip
def test_a_random_delays_limit_spreads_the_delay_over_its_law(spec, eta_value):
    """For a random delay the ``sdde`` entry is the distributed-delay equation's floor, against the same
    equation solved here by SciPy's quadrature and a dense argument principle: on the default problem
    geometric:20 gives 98.6 per unit η (one delay at its mean: 99.8), and geometric:60, whose mean lies
    beyond one delay's boundary s* = 0.0196, a stationary law (122.5). At η 5e-3 one period ``2π/η`` is
    shorter than 50 times the fastest mode's c: the frequencies beyond a whole number of periods are
    summed in closed form."""
    from amsgd.core.delays import parse_delay

    predictions = predict(Problem.from_spectrum(eta=eta_value, delay=parse_delay(spec)))
    law, p, modes = predictions.delay_law, predictions.problem, predictions.modes
    lags = np.nonzero(law.pmf > 1e-12)[0]
    probs = law.pmf[lags] / law.pmf[lags].sum()
    c = modes.rates / (1 - p.mu)
    b2 = p.eta * modes.noise_variances / (1 - p.mu) ** 2
    limit = sum(_distributed_delay_mode(ci, bi, lags * p.eta, probs) for ci, bi in zip(c, b2, strict=True))
    out = predictions.to_dict(["sdde"])["sdde"]
    assert out["delay"] == "distributed" and out["stable"] and f"delay {spec} is not constant" in out["delay_time_note"]
    assert out["stationary_error"] == pytest.approx(limit, rel=1e-4)
    one = sdde_floor(modes.rates, modes.noise_variances, p.eta, p.mu, predictions.delay_time)  # one delay at the mean
    assert one.floor > limit  # 1.2% above for geometric:20, 0.4% for the uniform law, none for geometric:60


@pytest.mark.slow
def test_the_exact_floor_of_a_random_delay_tends_to_its_distributed_limit():
    """geometric delays at a fixed mean delay time 0.03 (beyond one delay's s*): as η falls fourfold the exact
    linear floor per unit η nears the distributed-delay limit's about fourfold (the gap is of order η)."""
    from amsgd.core.delays import parse_delay

    gaps = []
    for eta_value, mean in ((5e-4, 60), (1.25e-4, 240)):
        predictions = predict(Problem.from_spectrum(eta=eta_value, delay=parse_delay(f"geometric:{mean}")))
        gaps.append((predictions.linearized.floor - predictions.sdde.floor) / eta_value)
    assert gaps[0] > 0 and 0 < gaps[1] < gaps[0] / 3
