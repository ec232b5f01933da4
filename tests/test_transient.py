"""Transient variance of a linear mode, and the finite-η escape time it gives."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem, parse_delay, parse_distribution, predict
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
        phases = predict(Problem.from_spectrum(eta=eta, mu=0.8)).phases  # the mean curve's numbers of the JSON
        gaps.append(abs(phases.escape_iterations_linearized / (phases.escape_time / eta) - 1))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.03


@pytest.mark.slow
def test_delay_slows_the_linear_escape_constant_or_random():
    base = predict(Problem.from_spectrum()).phases
    delayed = predict(Problem.from_spectrum().replace(delay=parse_delay("constant:10"))).phases
    assert delayed.escape_iterations_linearized > base.escape_iterations_linearized
    assert delayed.escape_time == base.escape_time  # the limit ignores τ
    assert delayed.escape_iterations > base.escape_iterations  # single runs see the delay
    iid = predict(Problem.from_spectrum(delay=parse_delay("uniform:0-20"))).phases
    assert iid.escape_iterations_linearized > base.escape_iterations_linearized


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


def _simulated_variances(rate, eta, mu, pmf, noise, steps, paths, seed):
    """``E x_k²`` (k = 1 .. steps) and its standard error over paths of the linear recursion with i.i.d.
    delays drawn from ``pmf``, from rest."""
    rng = np.random.default_rng(seed)
    history = np.zeros((pmf.size + 1 + steps, paths))  # x_k at row pmf.size + k; rest before
    cdf = np.cumsum(pmf) / np.sum(pmf)
    for k in range(steps):
        now = pmf.size + k
        stale = history[now - cdf.searchsorted(rng.random(paths), side="right"), np.arange(paths)]
        step = mu * (history[now] - history[now - 1]) - eta * rate * stale
        history[now + 1] = history[now] + step + eta * np.sqrt(noise) * rng.standard_normal(paths)
    squares = history[pmf.size + 1 :] ** 2
    return squares.mean(axis=1), squares.std(axis=1) / np.sqrt(paths)


@pytest.mark.parametrize(("rate", "eta", "mu", "spec"), [(2.0, 0.05, 0.7, "geometric:3"),
                                                         (-2.0, 0.02, 0.9, "uniform:0-12")])  # fmt: skip
def test_random_delay_variances_are_the_recursion_s(rate, eta, mu, spec):
    """The renewal equation for Var x_k under an i.i.d. delay (a restoring and an escaping mode) against
    100 000 simulated paths at every k up to 300: within 4.5 standard errors, where leaving out the
    delay's spread (K = 0) puts the last k more than 10 standard errors off."""
    from amsgd.diffusion.theory.linear_recursion import ar_coefficients, delay_law
    from amsgd.diffusion.theory.transient_kernel import iid_variances

    law, noise, steps = delay_law(parse_delay(spec)), 3.0, 300
    c = ar_coefficients(rate, eta, mu, law)
    measured, error = _simulated_variances(rate, eta, mu, law.pmf, noise, steps, 100_000, 1)
    theory = iid_variances(c, law.pmf, (eta * rate) ** 2, eta**2 * noise, np.inf, steps)
    spreadless = iid_variances(c, law.pmf, 0.0, eta**2 * noise, np.inf, steps)
    assert np.max(np.abs(measured - theory) / error) < 4.5
    assert abs(measured[-1] - spreadless[-1]) / error[-1] > 10


@pytest.mark.parametrize(("spec", "eta"), [("geometric:3", 0.05), ("uniform:0-12", 0.02), ("poisson:4", 0.03)])
def test_random_delay_variance_tends_to_the_stationary_theory(spec, eta):
    """A restoring mode's transient variance, followed 20 000 steps, is the stationary variance of the
    Lyapunov theory (Yule–Walker with the delay's spread κ): the renewal's Σ K_n is that κ."""
    from amsgd.diffusion.theory import lyapunov
    from amsgd.diffusion.theory.linear_recursion import ar_coefficients, delay_law
    from amsgd.diffusion.theory.transient_kernel import iid_variances

    rate, mu, noise = 2.0, 0.7, 3.0
    law = delay_law(parse_delay(spec))
    variances = iid_variances(ar_coefficients(rate, eta, mu, law), law.pmf, (eta * rate) ** 2, eta**2 * noise, np.inf,
                              20_000)  # fmt: skip
    stationary = lyapunov.stationary_variance(rate, eta, mu, law, noise)
    assert variances[-1] == pytest.approx(stationary, rel=1e-9)
    spreadless = iid_variances(ar_coefficients(rate, eta, mu, law), law.pmf, 0.0, eta**2 * noise, np.inf, 20_000)
    assert variances[-1] > 1.01 * spreadless[-1]


@pytest.mark.slow
def test_at_a_large_delta_sq_the_saturated_crossing_is_not_called_exact():
    """δ² 0.49 on the default problem: the limit's escape is out of range and the note names the
    saturated crossing, which comes from the escape law's paths and is late with them (500 against the
    runs' mean-curve crossing 474.5 [469.7, 479.6], 8000 runs): the note says it inherits that lateness."""
    from amsgd.diffusion.theory import PredictOptions
    from amsgd.simulate import simulate
    from amsgd.validation.statistics import crossing_interval

    problem = Problem.from_spectrum()
    phases = predict(problem, PredictOptions(delta_sq=0.49)).phases
    note, saturated = phases.limit_escape_note, phases.escape_curve.iterations
    assert "escape_iterations_saturated holds here, though at this delta_sq it inherits" in note
    run = simulate(problem, 1500, 8000, rng=3, start="e2", record_every=1, coordinates="none", progress=False,
                   threads=2)  # fmt: skip
    errors = run.error[~run.diverged]
    crossing = crossing_interval(run.iterations.astype(float), 1.0 - errors, 0.49)
    assert saturated > crossing.ci_high  # late, as the note says
    assert abs(saturated - crossing.mean) < abs(phases.escape_time / phases.eta - crossing.mean)  # still the nearer


def test_the_limit_escape_is_out_of_range_where_the_finite_eta_crossing_is_a_quarter_e_fold_away():
    """The finite-η crossing the limit's is measured against is the escape law's own mean curve's
    (each run's share saturating). μ 0.95 on the default problem: the limit's mean-curve escape (49
    iterations) lies 43 from it (92), more than the quarter e-folding time of 25; at μ 0.9 (147 and 187,
    against 50) it does not, and no note is given. With Student-t 6 data at η 1e-3 the linear
    crossing (46) lies within the quarter e-fold (25) of the limit's 30, the saturated one (58) beyond
    it, as do the runs (58.7 [56.5, 61.1], docs/linear-theory.md section 7): the note names the latter."""
    from amsgd.diffusion.theory.phases import LIMIT_ESCAPE_TOLERANCE

    cases = ((dict(mu=0.9), False), (dict(mu=0.95), True),
             (dict(eta=1e-3, mu=0.9, distribution=parse_distribution("student-t:6")), True))  # fmt: skip
    for options, out_of_range in cases:
        prediction = predict(Problem.from_spectrum(**options))
        phases = prediction.phases
        limit, saturated = phases.escape_time / phases.eta, phases.escape_curve.iterations
        e_fold = (1 - phases.mu) / (phases.eta * abs(phases.escaping_mode[0]))
        assert (abs(saturated - limit) > LIMIT_ESCAPE_TOLERANCE * e_fold) is out_of_range
        note = phases.limit_escape_note
        assert bool(note) is out_of_range
        if out_of_range:
            assert f"{abs(saturated - limit):.0f} iterations" in note and "momentum's build-up" in note
            assert "escape_iterations_saturated holds here" in note and "inherits" not in note
        sentence = "Here the limit's escape lies more than a quarter of its e-folding time from that mean curve's"
        assert (sentence in prediction.document("markdown")) is out_of_range
        linear_gap = abs(phases.escape_iterations_linearized - limit)
        if "distribution" in options:  # the linear crossing alone would have called it in range
            assert linear_gap <= LIMIT_ESCAPE_TOLERANCE * e_fold


def test_summed_variances_grow_to_the_stationary_floor_and_match_each_crossing():
    """The summed variances of stable modes from rest rise monotonically to the sum of their exact
    stationary variances (constant delay 3 and an i.i.d. one, whose spread is left out: below it), and
    each mode alone reaches a level at the iteration :func:`variance_crossing` gives."""
    from amsgd.diffusion.theory.linear_recursion import delay_law
    from amsgd.diffusion.theory.lyapunov import stationary_variance
    from amsgd.diffusion.theory.transient import summed_transient_variances

    rates, noise = np.array([1.0, 2.0]), np.array([6.0, 3.0])
    for delay, rtol in ((3, 1e-9), ("uniform:0-6", None)):
        law = delay_law(parse_delay(delay) if isinstance(delay, str) else delay)
        curve = summed_transient_variances(rates, noise, 5e-4, 0.9, law, 40_000)
        assert curve[0] == 0.0 and np.all(np.diff(curve) >= 0)
        stationary = sum(stationary_variance(r, 5e-4, 0.9, law, s) for r, s in zip(rates, noise))
        if rtol is not None:
            assert curve[-1] == pytest.approx(stationary, rel=rtol)
        else:
            assert 0.97 * stationary < curve[-1] < stationary
    one = summed_transient_variances(rates[:1], noise[:1], 5e-4, 0.9, 3, 5000)
    level = 0.5 * one[-1]
    assert int(np.argmax(one >= level)) == variance_crossing(1.0, 6.0, 5e-4, 0.9, 3, level)


@pytest.mark.parametrize("tau", [0, 2])
def test_coupled_transient_variances_against_runs_of_the_random_coefficient_recursion(tau):
    """Two modes from rest with multiplicative noise on the stale iterate,
    ``x_{i,k+1} = (1 + μ) x_{i,k} − μ x_{i,k−1} − η a_i x_{i,k−τ} + η (b_i + Σ_l A_il x_{l,k−τ})``, the b_i and
    A_il independent normals of variances s_i and C_il: the variances the state covariances carry against
    200 000 runs (within five standard errors at three times), and the last against the stationary
    solution ``v = (I − G C)⁻¹ G s`` of the Lyapunov gains G (an independent computation)."""
    from amsgd.diffusion.theory.linear_recursion import delay_law
    from amsgd.diffusion.theory.lyapunov import stationary_variance
    from amsgd.diffusion.theory.transient import summed_transient_variances

    eta, mu, rates, noise = 0.05, 0.5, np.array([1.0, 2.0]), np.array([1.0, 0.5])
    coupling = np.array([[4.0, 1.0], [1.0, 3.0]])
    curves = summed_transient_variances(rates, noise, eta, mu, tau, 4000, coupling, np.eye(2))
    rng = np.random.default_rng(11)
    paths, steps = 200_000, 80
    x = np.zeros((steps + 2 + tau, paths, 2))  # x[k + 1 + tau] is x_k; x_k = 0 for k <= 0
    for k in range(steps):
        now, stale = x[k + 1 + tau], x[k + 1]
        a = rng.standard_normal((paths, 2, 2)) * np.sqrt(coupling)
        b = rng.standard_normal((paths, 2)) * np.sqrt(noise)
        x[k + 2 + tau] = (now + mu * (now - x[k + tau]) - eta * rates * stale
                          + eta * (b + np.einsum("pil,pl->pi", a, stale)))  # fmt: skip
    for k in (10, 40, 80):
        square = x[k + 1 + tau] ** 2
        error = square.std(axis=0) / np.sqrt(paths)
        assert np.all(np.abs(square.mean(axis=0) - curves[:, k]) < 5 * error), (k, square.mean(axis=0), curves[:, k])
    gains = np.array([stationary_variance(r, eta, mu, delay_law(tau), 1.0) for r in rates])
    stationary = np.linalg.solve(np.eye(2) - gains[:, None] * coupling, gains * noise)
    assert curves[:, -1] == pytest.approx(stationary, rel=1e-9)


@pytest.mark.parametrize("delay", ["constant:4", "uniform:0-6", "geometric:3"])
def test_the_impulse_response_kernel_carries_the_state_covariances_sums(delay):
    """The coupled sums along the modes' impulse responses equal those of their state covariances (to
    1e-11, rounding), with a coupling of one negative eigenvalue (a factor of sign −1) and two weightings."""
    from amsgd.diffusion.theory.linear_recursion import ar_coefficients, delay_law
    from amsgd.diffusion.theory.transient import factored_coupling
    from amsgd.diffusion.theory.transient_kernel import coupled_variances, response_variances

    eta, mu, rates = 5e-3, 0.9, np.array([1.0, 2.0, 3.0])
    coupling = np.array([[3.0, 1.0, 0.5], [1.0, 2.0, -2.5], [0.5, -2.5, 4.0]])
    law = delay_law(parse_delay(delay), as_iid=True)
    c = np.stack([ar_coefficients(r, eta, mu, law) for r in rates])
    diagonal, factors, signs = factored_coupling(eta**2 * coupling)
    assert np.any(signs < 0)
    weights, noise, pmf = np.stack([np.ones(3), np.array([1.0, 2.0, 0.5])]), eta**2 * np.array([1.0, 2.0, 3.0]), law.pmf
    state = coupled_variances(c, noise, diagonal, factors, signs, pmf, weights, 3000)
    response = response_variances(c, noise, diagonal, factors, signs, pmf, weights, 3000)
    n = min(state.shape[1], response.shape[1])  # each stops where its variances stop moving (to 1e-13)
    assert n > 400 and abs(state.shape[1] - response.shape[1]) <= 2
    np.testing.assert_allclose(response[:, :n], state[:, :n], rtol=1e-11, atol=0.0)


def test_a_long_delay_laws_coupled_sums_follow_the_impulse_responses():
    """Under the staleness law of ps:724 (about 20 000 lags) the state covariances would take two arrays of
    taps² entries per mode (6.4 GB a mode); the sums go along the impulse responses instead, for over a
    thousand iterations within the work bound, where the state covariances reach one."""
    from amsgd.diffusion.theory.linear_recursion import ar_coefficients, delay_law
    from amsgd.diffusion.theory.transient import _coupled_kernel, summed_transient_variances
    from amsgd.diffusion.theory.transient_kernel import coupled_variances, response_variances

    law = delay_law(parse_delay("ps:724"), as_iid=True)
    taps = ar_coefficients(1.0, 5e-4, 0.9, law).size
    assert taps > 19_000
    kernel, steps = _coupled_kernel(2, taps, law.pmf.size, 1, 100_000)
    assert kernel is response_variances and steps > 1000
    assert _coupled_kernel(2, 7, 1, 1, 100_000) == (coupled_variances, 100_000)  # a short delay: the states
    curves = summed_transient_variances(np.array([1.0, 2.0]), np.array([1.0, 0.5]), 5e-4, 0.9, law, 100_000,
                                        np.array([[4.0, 1.0], [1.0, 3.0]]), np.eye(2))  # fmt: skip
    assert curves.shape[1] == steps + 1 and np.all(np.diff(curves, axis=1) >= 0) and curves[0, -1] > 0


def test_the_coupling_factors_reproduce_the_matrix_with_one_factor_for_the_named_laws():
    """``C = diag(D) + Σ_r s_r u_r u_rᵀ``: one factor where the off-diagonal part is ``κ λ_i λ_l`` (the saddle
    coupling of Student-t 9 data on diag(8, ..., 1)), the scaled eigenvectors of any other symmetric C."""
    from amsgd.diffusion.theory.coupling import saddle_coupling
    from amsgd.diffusion.theory.transient import factored_coupling

    named = saddle_coupling(Problem.from_spectrum(tuple(float(x) for x in range(8, 0, -1)),
                                                  distribution=parse_distribution("student-t:9")), 2, [3, 4, 5, 6, 7, 8])  # fmt: skip
    other = np.random.default_rng(3).random((5, 5))
    for matrix, rank in ((named, 1), (other + other.T, 5), (np.array([[4.0, 1.0], [1.0, 3.0]]), 2)):
        diagonal, factors, signs = factored_coupling(matrix)
        assert factors.shape == (rank, matrix.shape[0])
        assert np.diag(diagonal) + (factors.T * signs) @ factors == pytest.approx(matrix, rel=1e-10, abs=1e-12)
