"""Every derived quantity checked against an independent numeric computation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.linalg import solve_continuous_lyapunov

from amsgd import Gaussian, Problem, ProblemError, Rademacher, SampledDistribution, StudentT, predict
from amsgd.core.errors import RunWarning
from amsgd.derivations import derive
from amsgd.derivations.least_squares import least_squares_model
from amsgd.derivations.limits import ou_limit
from amsgd.derivations.pca import PCAModel
from amsgd.derivations.recursion import derive_time_scale, eta, mu, tau
from amsgd.diffusion.coefficients import sme_coefficients
from amsgd.diffusion.theory import PredictOptions

from .conftest import random_rotation

LAM = np.array([4.0, 3.0, 2.0, 1.0])


def numeric_mean_map(h: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``E G(h, Y)`` computed directly: ``Λh − (hᵀΛh) h``."""
    return lam * h - (h @ (lam * h)) * h


def sample_gradients(h: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``G(h, Y) = (I − h hᵀ) Y Yᵀ h`` for each row of ``y``."""
    proj = y @ h
    return y * proj[:, None] - np.outer(proj**2, h)


def random_unit(d: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


# --- time scale ---------------------------------------------------------------------------------


def test_time_scale_and_noise_gain_are_one_over_one_minus_mu():
    timing = derive_time_scale()
    assert sp.simplify(timing.drift_scale - 1 / (1 - mu)) == 0
    assert sp.simplify(timing.noise_gain - 1 / (1 - mu)) == 0
    assert not timing.residual_order1.has(tau)  # the delay drops out at leading order
    assert timing.residual_order2.has(tau)


@pytest.mark.parametrize(("mu_value", "tau_value"), [(0.0, 0), (0.5, 0), (0.9, 3), (0.7, 10)])
def test_modified_drift_matches_the_exact_root_of_the_linear_recursion(mu_value, tau_value):
    """For G(x) = −a x the rate of the dominant root, log(z)/η, is the modified drift to O(η²)."""
    a = 1.3
    x = sp.Symbol("x")
    big_g = derive_time_scale().update
    curve = derive_time_scale().curve
    modified = derive_time_scale().modified_drift
    t = sp.Symbol("t", real=True)
    rate_expr = (
        modified.subs(sp.Derivative(big_g(curve(t)), curve(t)), -a).subs(big_g(curve(t)), -a * x) / x
    )
    errors = []
    for eta_value in (1e-3, 5e-4):
        predicted = float(rate_expr.subs({eta: eta_value, mu: mu_value, tau: tau_value}))
        # x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ}: z^{τ+2} − (1+μ) z^{τ+1} + μ z^τ + η a z = 0
        coeffs = np.zeros(tau_value + 3)
        coeffs[0], coeffs[1], coeffs[2] = 1.0, -(1 + mu_value), mu_value
        coeffs[tau_value + 1] += eta_value * a
        roots = np.roots(coeffs)
        dominant = roots[np.argmax(np.abs(roots))]
        exact = np.log(np.abs(dominant)) / eta_value
        errors.append(abs(exact - predicted))
        leading = -a / (1 - mu_value)
        assert abs(exact - predicted) < abs(exact - leading)  # the correction helps
    assert errors[1] < errors[0] / 3  # error shrinks like η² (ratio 4 for a halving)


def test_noise_free_recursion_moves_at_the_ode_speed():
    """Iterate the mean recursion with a tiny step: its velocity per unit time is g(h)/(1 − μ)."""
    d = derive(Problem.from_spectrum(eta=1e-6, mu=0.8))
    rng = np.random.default_rng(3)
    h0 = random_unit(4, rng)
    step, momentum = 1e-6, 0.8
    prev, cur = h0.copy(), h0.copy()
    n = 400  # many momentum time constants 1/(1 − μ) = 5 steps, but nη tiny
    for _ in range(n):
        prev, cur = cur, cur + momentum * (cur - prev) + step * numeric_mean_map(cur, LAM)
    velocity = (cur - prev) / step
    drift = sp.lambdify(d.model.h, d.ode.drift.subs(d.values), "numpy")
    predicted = np.asarray(drift(*cur), dtype=float).ravel()
    np.testing.assert_allclose(velocity, predicted, rtol=1e-3, atol=1e-6)


# --- mean map, ODE, closed form -----------------------------------------------------------------


def test_ode_drift_equals_monte_carlo_mean_gradient_over_one_minus_mu():
    d = derive(Problem.from_spectrum())
    drift = sp.lambdify(d.model.h, d.ode.drift.subs(d.values), "numpy")
    rng = np.random.default_rng(0)
    n = 400_000
    for _ in range(3):
        h = random_unit(4, rng)
        g = sample_gradients(h, Gaussian().sample(rng, n, LAM, np.eye(4)))
        mc, se = g.mean(axis=0), g.std(axis=0) / np.sqrt(n)
        predicted = np.asarray(drift(*h), dtype=float).ravel() * (1 - 0.9)
        assert np.all(np.abs(predicted - mc) < 5 * se + 1e-12)


def test_jacobian_equals_finite_differences_of_the_mean_map():
    model = PCAModel(4, Gaussian())
    values = {lam: float(x) for lam, x in zip(model.lam, LAM)}
    jac = sp.lambdify(model.h, model.recursion.jacobian.subs(values), "numpy")
    rng = np.random.default_rng(1)
    eps = 1e-6
    for _ in range(5):
        h = rng.standard_normal(4)
        fd = np.column_stack(
            [
                (numeric_mean_map(h + eps * e, LAM) - numeric_mean_map(h - eps * e, LAM)) / (2 * eps)
                for e in np.eye(4)
            ]
        )
        np.testing.assert_allclose(np.asarray(jac(*h), dtype=float), fd, rtol=1e-7, atol=1e-8)


def test_closed_form_solves_the_ode_like_solve_ivp():
    d = derive(Problem.from_spectrum(mu=0.7))
    solution, residual = d.ode_closed_form
    assert residual == sp.zeros(*residual.shape)
    h0_symbols = sorted(
        (s for s in solution.free_symbols if str(s).startswith("h0_")), key=lambda s: int(str(s)[3:])
    )
    t = sp.Symbol("t", real=True)
    closed = sp.lambdify((t, *h0_symbols), solution.subs(d.values), "numpy")
    drift = sp.lambdify(d.model.h, d.ode.drift.subs(d.values), "numpy")
    rng = np.random.default_rng(2)
    for _ in range(3):
        h0 = random_unit(4, rng)
        times = np.linspace(0.0, 1.0, 11)
        ivp = solve_ivp(
            lambda _, h: np.asarray(drift(*h), dtype=float).ravel(),
            (0.0, 1.0),
            h0,
            t_eval=times,
            rtol=1e-10,
            atol=1e-12,
        )
        exact = np.column_stack([np.asarray(closed(s, *h0), dtype=float).ravel() for s in times])
        np.testing.assert_allclose(ivp.y, exact, atol=1e-7)


# --- noise covariance ---------------------------------------------------------------------------


def _tail_sampler(rng: np.random.Generator, n: int) -> np.ndarray:
    """A user sampler: Laplace coordinates scaled to variance LAM (a non-Gaussian kurtosis)."""
    return rng.laplace(size=(n, 4)) * np.sqrt(LAM / 2.0)


@pytest.mark.parametrize(
    "distribution",
    [Gaussian(), Rademacher(), StudentT(12.0), SampledDistribution(_tail_sampler, name="laplace")],
    ids=lambda d: d.spec,
)
@pytest.mark.slow
def test_noise_covariance_matches_monte_carlo(distribution):
    problem = Problem.from_spectrum(distribution=distribution)
    c = sme_coefficients(problem)
    rng = np.random.default_rng(11)
    n = 400_000
    for _ in range(2):
        h = random_unit(4, rng)
        g = sample_gradients(h, distribution.sample(rng, n, problem.eigenvalues, problem.basis))
        centred = g - g.mean(axis=0)
        products = centred[:, :, None] * centred[:, None, :]
        mc = products.mean(axis=0)
        se = products.std(axis=0) / np.sqrt(n)
        predicted = c.noise_covariance(h)
        if isinstance(distribution, SampledDistribution):
            # The prediction is itself an estimate from moment_samples draws: add its variance.
            se = se * np.sqrt(1 + n / distribution.moment_samples)
        assert np.all(np.abs(predicted - mc) < 5 * se + 1e-9), np.max(np.abs(predicted - mc) / se)


def _coupled_sampler(rng: np.random.Generator, n: int) -> np.ndarray:
    """Covariance diag(3, 2, 1) and mean 0, but ``E[Y_1² Y_2 Y_3] ≠ 0``: Y_3 carries ``s (Z_1² − 1) Z_2``,
    uncorrelated with every coordinate, correlated with Y_2 given Y_1² (0.54 of ``sqrt(E[Y_1²Y_2²] E[Y_1²Y_3²])``)."""
    z = rng.standard_normal((n, 3))
    s = 0.5
    z[:, 2] = (z[:, 2] + s * (z[:, 0] ** 2 - 1.0) * z[:, 1]) / np.sqrt(1.0 + 2.0 * s**2)
    return z * np.sqrt([3.0, 2.0, 1.0])


def test_a_sampler_is_mode_by_mode_unless_its_fourth_moments_couple_the_coordinates():
    """Independent Gaussian coordinates from 2000 moment draws (their cross moments are 0.04 of the
    scale by chance, the tolerance's 0.05 alone refused them) derive mode by mode, in every seed tried;
    a law whose ``E[Y_1² Y_2 Y_3]`` is 0.54 of the scale is refused from 2000 draws as from 200 000, on
    either route, and its finite-η coefficients are marked not diagonal."""
    from amsgd.core.distributions import cross_moments_vanish
    from amsgd.diffusion.theory.coupling import coefficients_for

    def gaussian(rng, n):
        return rng.standard_normal((n, 3)) * np.sqrt([3.0, 2.0, 1.0])

    for seed in range(20):
        law = SampledDistribution(gaussian, moment_samples=2000, moment_seed=seed)
        problem = Problem.from_spectrum((3, 2, 1), distribution=law)
        assert all(point.ou.noise.is_diagonal() for point in derive(problem).sde), seed
    for draws in (2000, 200_000):
        problem = Problem.from_spectrum((3, 2, 1), distribution=SampledDistribution(_coupled_sampler, moment_samples=draws))
        with pytest.raises(ProblemError, match="couple the eigen-coordinates"):
            derive(problem, route="per-coordinate").sde
        with pytest.raises(ProblemError, match="couple the eigen-coordinates"):
            derive(problem).pair_moments  # the indexed route's sampled moments
        assert not coefficients_for(problem).diagonal
        y = problem.distribution.moment_samples_for(problem.eigenvalues, problem.basis)
        forcing = y * y[:, [0]]
        forcing[:, 0] = 0.0  # the noise at e_1, as derive builds it
        assert not cross_moments_vanish(forcing)


@pytest.mark.parametrize("point", [1, 2, 25])
def test_above_the_listing_dimension_a_coupling_at_e_1_e_2_or_e_d_is_refused(point):
    """d = 25: the indexed route checks the draws at e_1, e_2 and e_d (every point up to d = 20). A
    coupling ``E[Y_j² Y_a Y_b] ≠ 0`` made as in :func:`_coupled_sampler`, at j = ``point``, is refused."""
    lam = np.linspace(3.0, 1.0, 25)
    a, b = [c for c in range(25) if c != point - 1][:2]

    def coupled(rng, n):
        z = rng.standard_normal((n, 25))
        z[:, b] = (z[:, b] + 0.5 * (z[:, point - 1] ** 2 - 1.0) * z[:, a]) / np.sqrt(1.5)
        return z * np.sqrt(lam)

    problem = Problem.from_spectrum(lam, distribution=SampledDistribution(coupled))
    with pytest.raises(ProblemError, match="couple the eigen-coordinates"):
        derive(problem).pair_moments


def test_a_sampler_off_its_mean_is_refused_for_that_not_for_its_moments():
    """Draws with mean 1 (sqrt(λ) = 1 to 1.7 of the scale) couple the fourth moments through the mean
    alone: the refusal said "use a law that is symmetric under sign changes" beside a warning about the
    mean. It now names the mean and covariance."""
    def shifted(rng, n):
        return rng.standard_normal((n, 3)) * np.sqrt([3.0, 2.0, 1.0]) + 1.0

    problem = Problem.from_spectrum((3, 2, 1), distribution=SampledDistribution(shifted, moment_samples=20_000))
    with pytest.warns(RunWarning, match="away from mean 0 and covariance Sigma"):
        with pytest.raises(ProblemError, match="not centred with the problem's covariance Sigma .* give a sampler"):
            derive(problem, route="per-coordinate").sde
        with pytest.raises(ProblemError, match="not centred with the problem's covariance Sigma .* give a sampler"):
            derive(problem).pair_moments


@pytest.mark.parametrize("scale, message", [
    (1e200, r"draws reach [0-9.]+e\+200, whose fourth powers overflow double precision"),
    (1e50, r"not centred with the problem's covariance Sigma \(mean or covariance [0-9.]+e\+99 times the scale away\)"),
])  # fmt: skip
def test_a_sampler_far_from_its_covariance_is_refused_in_words(scale, message):
    """Draws 1e200 times the scale overflowed in their fourth powers, and the checks flooded NumPy's
    overflow warnings before refusing the law as one that couples the coordinates; 1e50 times was
    refused with a percentage of a hundred digits. Each is refused for what it is, with only the
    covariance warning beside it."""
    def scaled(rng, n):
        return rng.standard_normal((n, 3)) * np.sqrt([3.0, 2.0, 1.0]) * scale

    problem = Problem.from_spectrum((3, 2, 1), distribution=SampledDistribution(scaled, moment_samples=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", RunWarning)
        with pytest.raises(ProblemError, match=message):
            predict(problem).to_dict(["stationary_error"])


def test_gaussian_noise_covariance_equals_the_projected_closed_form():
    c = sme_coefficients(Problem.from_spectrum())
    rng = np.random.default_rng(4)
    for _ in range(5):
        v = random_unit(4, rng)
        p = np.eye(4) - np.outer(v, v)
        lv = LAM * v
        expected = p @ (np.outer(lv, lv) + (v @ lv) * np.diag(LAM)) @ p
        np.testing.assert_allclose(c.noise_covariance(v), expected, atol=1e-12)
    sigma = c.diffusion(v)
    np.testing.assert_allclose(sigma @ sigma.T, expected * 5e-4 / 0.1**2, atol=1e-12)


def test_rotated_covariance_gives_the_noise_of_its_diagonal_form_in_original_coordinates():
    q = random_rotation(4, 5)
    problem = Problem.from_spectrum(basis=q)
    c = sme_coefficients(problem)
    rng = np.random.default_rng(6)
    v = random_unit(4, rng)
    n = 400_000
    x = rng.standard_normal((n, 4)) @ np.linalg.cholesky(problem.covariance).T  # X ~ N(0, Σ) directly
    g = sample_gradients(v, x)
    centred = g - g.mean(axis=0)
    products = centred[:, :, None] * centred[:, None, :]
    h = problem.basis.T @ v
    predicted = problem.basis @ c.noise_covariance(h) @ problem.basis.T
    assert np.all(np.abs(predicted - products.mean(axis=0)) < 5 * products.std(axis=0) / np.sqrt(n) + 1e-9)


@pytest.mark.slow
def test_rotated_and_diagonal_derivations_agree(rotated_problem, default_problem):
    rotated, diagonal = predict(rotated_problem).to_dict(), predict(default_problem).to_dict()
    for key in ("ode", "sde", "stationary_error", "phases"):
        _assert_close(rotated[key], diagonal[key], key)


def _assert_close(a, b, where: str) -> None:
    """Equal structure, equal non-float leaves, floats to 1e-8 relative (1e-12 absolute: a part that is
    the difference of two close floors, such as the norm coupling, keeps their absolute rounding)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-8, abs=1e-12, nan_ok=True), where
    else:
        assert a == b, where


# --- OU limits, stationary error ----------------------------------------------------------------


def _ar2_variance(phi1: float, phi2: float, noise_var: float) -> float:
    """Stationary variance of x_{k+1} = φ1 x_k + φ2 x_{k−1} + w, Var w = noise_var (Yule–Walker)."""
    return noise_var * (1 - phi2) / ((1 + phi2) * ((1 - phi2) ** 2 - phi1**2))


@pytest.mark.parametrize("distribution", [Gaussian(), StudentT(6.0)], ids=lambda d: d.spec)
def test_ou_coefficients_are_the_small_step_limit_of_the_linearised_recursion(distribution):
    """Mode i at e_1: x_{k+1} = (1+μ) x_k − μ x_{k−1} + η J_ii x_k + η ξ, Var ξ = C_ii(e_1).

    As η → 0 its root gives rate log|z|/η → A_ii and its variance gives Var x/η → P_ii.
    """
    m = 0.8
    problem = Problem.from_spectrum(distribution=distribution, mu=m)
    d = derive(problem)
    rates = {mode.i: mode.drift_rate for mode in next(p for p in predict(problem).points if p.j == 1).modes}
    point = d.point(1)
    cov = d.stationary_covariance
    for mode in point.modes:
        if mode.kind == "radial":
            continue
        i = mode.i - 1
        jac = float(d.model.recursion.jacobian.subs(d.model.unit_vector(0)).subs(d.values)[i, i])
        noise_var = float(d.model.recursion.noise_covariance_at(d.model.unit_vector(0)).subs(d.values)[i, i])
        for step in (1e-4, 1e-5):
            roots = np.roots([1.0, -(1 + m + step * jac), m])
            rate = np.log(np.max(np.abs(roots))) / step
            var = _ar2_variance(1 + m + step * jac, -m, step**2 * noise_var) / step
            tolerance = 50 * step * abs(jac) ** 2 / (1 - m) ** 2
            assert rate == pytest.approx(rates[mode.i], abs=tolerance)
            assert var == pytest.approx(float(cov[i, i].subs(d.values)), rel=50 * step * abs(jac) / (1 - m))


@pytest.mark.slow
def test_stationary_error_is_the_published_leading_order_formula():
    for distribution, factor in ((Gaussian(), 1.0), (StudentT(7.0), 5.0 / 3.0), (Rademacher(), 1.0)):
        p = Problem.from_spectrum(distribution=distribution)
        lam1, rest = LAM[0], LAM[1:]
        expected = p.eta * np.sum(factor * lam1 * rest / (2 * (1 - p.mu) * (lam1 - rest)))
        assert predict(p).to_dict(["stationary_error"])["stationary_error"]["diffusion"] == pytest.approx(expected, rel=1e-12)


def test_stationary_covariance_solves_the_continuous_lyapunov_equation():
    d = derive(Problem.from_spectrum())
    point = d.point(1)
    a = np.array(point.ou.drift_matrix.subs(d.values), dtype=float)
    bb = np.array(point.ou.noise.subs(d.values), dtype=float)
    expected = solve_continuous_lyapunov(a, -bb)
    np.testing.assert_allclose(np.array(d.stationary_covariance.subs(d.values), dtype=float), expected, atol=1e-12)


def test_stationary_points_and_their_kinds():
    predictions = predict(Problem.from_spectrum([5.0, 3.0, 2.0]))
    assert predictions.derivation.stationary_points == [1, 2, 3]
    kinds = {p.j: p.kind for p in predictions.points}
    assert kinds == {1: "minimum", 2: "saddle", 3: "maximum"}
    for point in predictions.points:
        radial = [m for m in point.modes if m.kind == "radial"]
        assert len(radial) == 1 and radial[0].i == point.j and radial[0].diffusion == 0
        # The radial mode contracts at rate 2 λ_j/(1 − μ): a finite difference of the mean map's norm.
        lam = np.array([5.0, 3.0, 2.0])
        e = np.eye(3)[point.j - 1]
        fd = (numeric_mean_map(e * (1 + 1e-6), lam) - numeric_mean_map(e * (1 - 1e-6), lam)) / 2e-6
        assert radial[0].drift_rate == pytest.approx(fd[point.j - 1] / (1 - 0.9), rel=1e-6)


# --- phases -------------------------------------------------------------------------------------


def test_phase_durations_match_direct_numeric_solutions():
    p = Problem.from_spectrum()
    predictions = predict(p, PredictOptions(delta_sq=0.1))
    ph = predictions.phases
    delta2 = 0.1
    lam1, lam2 = LAM[:2]
    # I: unstable OU variance ODE V' = 2aV + σ², V(0) = 0, integrated until η V = δ².
    a, s2 = (lam1 - lam2) / (1 - p.mu), lam1 * lam2 / (1 - p.mu) ** 2
    escape = _time_to_event(lambda t, v: 2 * a * v + s2, [0.0], lambda t, v: p.eta * v[0] - delta2)
    assert ph.escape_time == pytest.approx(escape, rel=1e-6)
    # II: the ODE itself, from h_1² = δ² (rest in h_2) until h_1² = 1 − δ².
    h0 = np.array([np.sqrt(delta2), np.sqrt(1 - delta2), 0.0, 0.0])
    travel = _time_to_event(
        lambda t, h: numeric_mean_map(h, LAM) / (1 - p.mu), h0, lambda t, h: h[0] ** 2 - (1 - delta2)
    )
    assert ph.travel_time == pytest.approx(travel, rel=1e-6)
    # III: the slowest mode relaxes from δ², the others at their stationary variance.
    floor = predictions.diffusion_floor
    a2 = (lam1 - lam2) / (1 - p.mu)
    slow_floor = p.eta * s2 / (2 * a2)
    converge = _time_to_event(
        lambda t, v: -2 * a2 * v + s2,
        [delta2 / p.eta],
        lambda t, v: p.eta * v[0] + (floor - slow_floor) - ph.epsilon,
    )
    assert ph.converge_time == pytest.approx(converge, rel=1e-6)
    out = ph.to_dict()
    assert out["total_iterations"] == pytest.approx(
        out["escape_iterations"] + out["travel_iterations"] + out["converge_iterations"]
    )
    assert out["mean_curve"]["escape_iterations"] == pytest.approx(ph.escape_time / p.eta)
    # a single run escapes later than the mean curve crosses: it starts from noise
    assert out["escape_iterations"] > out["mean_curve"]["escape_iterations"]


def _time_to_event(rhs, y0, event) -> float:
    event.terminal = True
    sol = solve_ivp(rhs, (0.0, 100.0), np.asarray(y0, dtype=float), events=event, rtol=1e-11, atol=1e-13)
    assert sol.t_events[0].size == 1
    return float(sol.t_events[0][0])


def test_target_error_below_the_floor_is_refused():

    with pytest.raises(ProblemError, match="floor"):
        predict(Problem.from_spectrum(), PredictOptions(epsilon=0.01)).phases


# --- a second model on the same engine ----------------------------------------------------------


def test_least_squares_limits_match_numerics():
    s_matrix = sp.Matrix([[2, sp.Rational(1, 2)], [sp.Rational(1, 2), 1]])
    model = least_squares_model(2, s_matrix)
    rec = model.recursion
    (point,) = rec.stationary_points()
    assert point == dict(zip(rec.state, model.target))
    values = {model.noise_variance: 0.3, mu: 0.6, **dict(zip(model.target, (1.0, -2.0)))}
    # Mean map and noise covariance at a random point vs Monte Carlo.
    rng = np.random.default_rng(8)
    n = 400_000
    s_num = np.array(s_matrix, dtype=float)
    a = rng.standard_normal((n, 2)) @ np.linalg.cholesky(s_num).T
    e = rng.standard_normal(n) * np.sqrt(0.3)
    x = np.array([0.4, 0.1])
    g = a * ((a @ (np.array([1.0, -2.0]) - x)) + e)[:, None]
    at_x = dict(zip(rec.state, x))
    mean = np.array(rec.mean_map.subs(values).subs(at_x), dtype=float).ravel()
    assert np.all(np.abs(mean - g.mean(axis=0)) < 5 * g.std(axis=0) / np.sqrt(n))
    cov = np.array(rec.noise_covariance_at(at_x).subs(values), dtype=float)
    # Each covariance entry is the mean of (g_i − ḡ_i)(g_j − ḡ_j); its standard error is that
    # product's spread over √n. Measured: the largest miss is 1.2 SE (entry (0, 0)).
    centred = g - g.mean(axis=0)
    products = centred[:, :, None] * centred[:, None, :]
    standard_error = products.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(cov - np.cov(g.T)) < 5 * standard_error)
    # OU at x*: stationary covariance vs scipy's Lyapunov solver; equals s²/(2(1 − μ)) I.
    ou = ou_limit(rec, point)
    p = np.array(ou.stationary_covariance().subs(values), dtype=float)
    expected = solve_continuous_lyapunov(
        np.array(ou.drift_matrix.subs(values), dtype=float), -np.array(ou.noise.subs(values), dtype=float)
    )
    np.testing.assert_allclose(p, expected, atol=1e-12)
    np.testing.assert_allclose(p, 0.3 / (2 * 0.4) * np.eye(2), atol=1e-12)


@pytest.mark.parametrize("distribution", [Gaussian(), Rademacher(), StudentT(6.0)], ids=lambda d: d.spec)
def test_projected_form_of_the_noise_covariance_is_exact(distribution):
    model = PCAModel(3, distribution)
    projector, unprojected = model.projected_noise
    difference = (projector * unprojected * projector - model.recursion.noise_covariance).applyfunc(sp.expand)
    assert difference == sp.zeros(3, 3)
