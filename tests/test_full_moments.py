"""The full second moments of a small model at its minimum (every cross-covariance kept): the cross
gains against the impulse response, the diagonal theory as the special case it must reduce to, the
linear system against an independent Kronecker construction, and floors and stability against runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_models import problem

from amsgd.core.delays import ConstantDelay, UniformDelay
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem, load_data
from amsgd.diffusion.theory.full_moments import (
    FULL_MOMENTS_MAX,
    cross_gains,
    full_covariance,
    full_second_moments,
    stationary_solution,
)
from amsgd.diffusion.theory.linear_recursion import ar_coefficient_rows
from amsgd.diffusion.theory.lyapunov import stationary_gains
from amsgd.diffusion.theory.model_point import find_minimum, model_point, top_eigenvalue
from amsgd.diffusion.theory.model_predictions import loss_floor, predict_model
from amsgd.diffusion.theory.second_moments import (
    Coefficients,
    gains,
    largest_modulus,
    perron_root,
    stationary_variances,
)
from amsgd.simulate.model_engine import simulate_model

#: Model tolerance of a floor in the quadratic approximation (logistic), relative, as for the diagonal theory.
QUADRATIC_TOLERANCE = 0.01


def _impulse_gains(rates: np.ndarray, eta: float, mu: float, tau: int, terms: int) -> np.ndarray:
    """``η² Σ_m r_i(m) r_j(m)`` from the impulse responses, run for ``terms`` steps."""
    c = ar_coefficient_rows(rates, eta, mu, tau)
    taps = c.shape[1]
    x = np.zeros((rates.size, terms + taps))
    x[:, taps] = 1.0  # r(0) = 1
    for k in range(taps, terms + taps - 1):
        x[:, k + 1] = np.einsum("ij,ij->i", c, x[:, k - np.arange(taps)])
    r = x[:, taps:]
    assert np.abs(r[:, -50:]).max() < 1e-14 * np.abs(r).max()  # the tail is negligible
    return eta**2 * r @ r.T


@pytest.mark.parametrize("eta, mu, tau", [(0.1, 0.5, 0), (0.1, -0.3, 2), (0.02, 0.9, 1), (0.2, 0.0, 1),
                                          (0.02, 0.7, 6), (0.1, -0.6, 0)])  # fmt: skip
def test_cross_gains_equal_the_impulse_response_sum(eta, mu, tau):
    rates = np.array([2.0, 1.0, 0.5, 0.2, 0.07])
    g = cross_gains(rates, eta, mu, tau)
    np.testing.assert_allclose(g, _impulse_gains(rates, eta, mu, tau, 40_000), rtol=1e-10)
    np.testing.assert_allclose(np.diag(g), stationary_gains(rates, eta, mu, tau), rtol=1e-10)
    assert np.all(np.linalg.eigvalsh(g) > 0)  # a Gram matrix of independent impulse responses


def _sign_symmetric(rng: np.random.Generator, m: int, base: int) -> np.ndarray:
    """Centred symmetric matrices whose law is invariant under every sign change of the coordinates:
    ``s D s`` for every sign vector s and ``base`` random D (then ``E[D_ac D_bd] = 0`` unless the
    indices pair up, and the diagonal theory is exact)."""
    d = rng.standard_t(4, size=(base, m, m))
    d = d + d.transpose(0, 2, 1)
    signs = np.array(np.meshgrid(*[[1.0, -1.0]] * m)).reshape(m, -1).T  # (2^m, m)
    out = (signs[:, None, :, None] * d[None] * signs[:, None, None, :]).reshape(-1, m, m)
    return out - out.mean(axis=0)


@pytest.mark.parametrize("mu, tau", [(0.9, 0), (0.5, 2), (-0.3, 1)])
def test_full_reduces_to_the_diagonal_theory_when_the_fluctuations_are_sign_symmetric(mu, tau):
    rng = np.random.default_rng(4)
    m, batch, eta = 5, 8, 0.01
    rates = np.array([3.0, 1.5, 1.0, 0.4, 0.1])
    d = _sign_symmetric(rng, m, 6)
    s = np.diag(rng.uniform(0.5, 2.0, m))
    x, radius, mean_stable = full_covariance(rates, d, s, eta, mu, tau, batch)
    coupling = np.mean(d**2, axis=0) / batch  # C_ij = Var(D_ij)/B
    c = Coefficients(rates, coupling, np.diag(s), diagonal=False)
    v = stationary_variances(c, eta, mu, tau)
    assert mean_stable and np.all(np.isfinite(v))
    np.testing.assert_allclose(np.diag(x), v, rtol=1e-9)
    np.testing.assert_allclose(x - np.diag(np.diag(x)), 0.0, atol=1e-12 * v.max())
    # T acts on the diagonal as diag(G) C and on X_ab (a ≠ b) as G_ab E[D_aa D_bb]/B
    g = cross_gains(rates, eta, mu, tau)
    off = np.abs(g * np.einsum("naa,nbb->ab", d, d) / d.shape[0] / batch)[~np.eye(m, dtype=bool)]
    expected = max(perron_root(gains(rates, eta, mu, tau)[:, None] * coupling), off.max())
    assert radius == pytest.approx(expected, rel=1e-9)


def test_full_covariance_solves_its_equation_built_independently():
    """X = G ∘ (E_n[D_n X D_n]/B + S) with a generic (correlated) law of D, and the feedback radius
    equals that of the operator built from Kronecker products on all m² entries."""
    rng = np.random.default_rng(11)
    m, n, batch, eta, mu, tau = 12, 60, 4, 5e-5, 0.6, 1
    rates = np.sort(rng.uniform(0.2, 3.0, m))[::-1]
    z = rng.standard_t(3, size=(n, m))
    d = np.einsum("na,nb->nab", z, z)
    d -= d.mean(axis=0)
    gvec = rng.normal(size=(n, m))
    s = np.cov(gvec.T, bias=True) / batch
    x, radius, _ = full_covariance(rates, d, s, eta, mu, tau, batch)
    g = cross_gains(rates, eta, mu, tau)
    np.testing.assert_allclose(x, g * (np.einsum("nac,cd,ndb->ab", d, x, d) / n / batch + s), rtol=1e-10, atol=0)
    assert np.all(np.linalg.eigvalsh(x) > 0)
    kron = np.einsum("nac,nbd->abcd", d, d).reshape(m * m, m * m) / n / batch  # vec(DXD) by rows
    operator = g.reshape(-1)[:, None] * kron
    assert radius == pytest.approx(np.abs(np.linalg.eigvals(operator)).max(), rel=1e-8)
    assert 0.05 < radius < 1.0  # a case where the feedback matters


@pytest.mark.parametrize("case", ["neumann", "dense", "non-normal"])
def test_the_stationary_solution_is_the_dense_solve(case, monkeypatch):
    """(I − F) u = r by the Neumann series where it is cheap, by LU where it is not (radius 0.95: 719
    terms), and by LU again where a strongly non-normal F (radius 0.4, 3 on the superdiagonal: the
    series' terms still grow at three times the terms the radius asks for) defeats the series; the LU
    path is seen by its overwriting F. The series is allowed at this small size (n/2 terms)."""
    from amsgd.diffusion.theory import full_moments

    monkeypatch.setattr(full_moments, "NEUMANN_COST", 2)
    rng = np.random.default_rng(3)
    n = 100
    if case == "non-normal":
        f = 0.4 * np.eye(n) + 3.0 * np.eye(n, k=1)
    else:
        f = rng.normal(size=(n, n))
        f *= (0.45 if case == "neumann" else 0.95) / np.abs(np.linalg.eigvals(f)).max()
    radius = float(np.abs(np.linalg.eigvals(f)).max())
    r = rng.normal(size=n)
    expected = np.linalg.solve(np.eye(n) - f, r)
    assert np.all(np.isfinite(expected))
    given = f.copy()
    u = stationary_solution(given, r, radius)
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert np.array_equal(given, f) == (case == "neumann")


def test_the_series_is_chosen_where_it_is_cheaper():
    """At 5050 unknowns (100 parameters) the series takes radii up to about 0.48 (50 terms), at 2145
    (65) up to 0.17 (21); a radius of 0 needs one term."""
    from amsgd.diffusion.theory.full_moments import NEUMANN_COST, series_terms

    assert series_terms(0.0) == 1 and series_terms(0.5) == 54 and series_terms(0.1) == 16
    assert series_terms(0.47) <= 5050 / NEUMANN_COST < series_terms(0.49)
    assert series_terms(0.17) <= 2145 / NEUMANN_COST < series_terms(0.19)


@pytest.mark.slow
def test_refusals_and_the_predictions_block():
    p = problem("least-squares", eta=0.05, mu=0.9, batch=8)
    theory = predict_model(p)
    with pytest.raises(ProblemError, match="constant delay of at most 64 and at most"):
        full_second_moments(p, theory.point, 0.05, 0.9, UniformDelay(0, 3))
    with pytest.raises(ProblemError, match="got 5 parameters and delay constant:65"):
        full_second_moments(p, theory.point, 0.05, 0.9, 65)
    with pytest.raises(ProblemError, match=f"at most {FULL_MOMENTS_MAX} parameters; got {FULL_MOMENTS_MAX + 1}"):
        full_second_moments(p, dataclasses.replace(theory.point, x=np.zeros(FULL_MOMENTS_MAX + 1)), 0.05, 0.9, 0)
    block = theory.full_moments.to_dict()
    assert set(block) == {"loss_floor", "mean_square_stable", "radius"} and block["mean_square_stable"]
    random = type(theory)(p.replace(delay=UniformDelay(0, 3)), theory.point)
    assert random.full_moments is None


def _run_floor(p: ModelProblem, theory, steps: int, replicates: int):
    run = simulate_model(p, steps, replicates, rng=3, start=theory.point.x, record_every=max(1, steps // 500),
                         progress=False)  # fmt: skip
    est = run.stationary_loss()
    return run, est.mean - theory.point.loss, est.ci_high - est.mean


@pytest.mark.slow
def test_least_squares_floor_on_gaussian_features():
    """Exact for least squares: the full floor lies inside the 95% CI of runs from x*."""
    p = problem("least-squares", eta=0.05, mu=0.9, delay=ConstantDelay(0), batch=8)
    theory = predict_model(p)
    run, excess, half = _run_floor(p, theory, 3000, 128)
    full = theory.full_moments
    assert run.diverged_fraction == 0 and full.stable
    assert abs(excess - full.floor) <= half, (excess, half, full.floor)  # 0.024125 ± 0.00029 against 0.024117


def _digits(**kw) -> ModelProblem:
    return ModelProblem("least-squares", load_data("digits", classification=False), **{"mu": 0.9, "batch": 32, **kw})


@pytest.mark.slow
def test_least_squares_on_digits_floor_where_the_diagonal_misses():
    """Heavy-tailed pixels: at η = 0.002, μ = 0.9 the diagonal floor is 3% high, outside the CI many
    times over; the full floor is inside it."""
    p = _digits(eta=0.002, l2=0.1)
    theory = predict_model(p)
    run, excess, half = _run_floor(p, theory, 10_000, 256)
    full = theory.full_moments
    assert run.diverged_fraction == 0 and full.stable and 0.5 < full.radius < 1.0
    assert abs(excess - full.floor) <= half, (excess, half, full.floor)  # 0.028509 ± 8.5e-5 against 0.028533
    assert abs(excess - theory.floor.value) > 5 * half, (excess, half, theory.floor.value)  # diagonal 0.029376


@pytest.mark.slow
def test_least_squares_on_digits_at_its_default_step_has_a_floor_and_the_runs_reach_it():
    """The default step of least squares (DEFAULT_MODEL_ETAS; it was 0.05, where every run on digits
    diverges) is mean-square stable on the default data at the default μ, l2 and B, and runs from x*
    settle on the full floor."""
    from amsgd.core.models import DEFAULT_MODEL_ETAS

    p = ModelProblem("least-squares", load_data("digits", classification=False))
    assert p.eta == DEFAULT_MODEL_ETAS["least-squares"] and (p.mu, p.batch) == (0.9, 32)
    theory = predict_model(p)
    full = theory.full_moments
    assert full.stable and full.radius < 0.9
    run, excess, half = _run_floor(p, theory, 10_000, 64)
    assert run.diverged_fraction == 0 and abs(excess - full.floor) <= half, (excess, half, full.floor)


@pytest.mark.slow
@pytest.mark.parametrize("eta, l2", [(0.01, 1e-3), (0.004, 0.1)])
def test_least_squares_on_digits_diverges_where_only_the_full_theory_says_so(eta, l2):
    """The diagonal theory calls these cells mean-square stable; the full feedback radius is above one
    (3.9 and 1.5), and every run from x* diverges."""
    p = _digits(eta=eta, l2=l2)
    theory = predict_model(p)
    assert theory.mean_square.stable
    full = theory.full_moments
    assert not full.stable and full.radius > 1.2 and full.floor == np.inf
    run = simulate_model(p, 10_000, 32, rng=5, start=theory.point.x, progress=False)
    assert run.diverged_fraction == 1.0


@pytest.mark.slow
def test_the_reports_and_the_advice_follow_the_full_theory_where_it_applies():
    """At η 0.004, l2 0.1 the diagonal theory calls μ 0.9 stable with one worker; the full second moments
    do not (every run diverges, above). derive's mean-square block and floor, the relaxation time and
    advise's grid follow the full theory there, and the largest stable delay is the full theory's
    boundary, found by scanning it; at μ 0.8, the momentum the advice keeps, runs from x* do not diverge."""
    from amsgd.advise import advise

    p = _digits(eta=0.004, l2=0.1)
    theory = predict_model(p)
    out = theory.to_dict(["stability", "stationary_loss", "relaxation_iterations"])
    assert theory.mean_square.stable and out["stability"]["mean_square"]["stable"] is False
    assert out["stability"]["mean_square"]["theory"] == out["stationary_loss"]["theory"] == "full second moments"
    assert out["stationary_loss"]["value"] is None and out["relaxation_iterations"] is None
    advice = advise(p, workers=(1, 2, 8), mus=(0.5, 0.8, 0.9))
    rows = advice.rows()
    assert [r["largest_stable_mu"] for r in rows[:2]] == [0.8, 0.8]
    cells = theory.full_cells  # (η, μ, τ) ↦ the full second moments, the fluctuation operator built once
    for m, workers in enumerate(advice.grid.workers):
        for u, mu in enumerate(advice.grid.mus):
            full = cells(p.eta, mu, int(workers) - 1)
            assert advice.grid.stable[m, u] == full.stable
            if full.stable:
                assert advice.grid.floor[m, u] == pytest.approx(full.floor, rel=1e-12)
    scanned = next(tau for tau in range(64, -1, -1) if cells(p.eta, 0.5, tau).stable)  # the largest stable
    assert advice.grid.max_workers[0] == scanned + 1  # μ 0.5, the first of the sorted grid
    run = simulate_model(dataclasses.replace(p, mu=0.8), 10_000, 32, rng=5, start=theory.point.x, progress=False)
    assert run.diverged_fraction == 0.0


@pytest.mark.slow
def test_logistic_floor_in_the_quadratic_approximation():
    """Logistic regression on overlapping classes: the full floor against runs from x*, within the CI
    and the quadratic approximation's 1%."""
    p = problem("logistic", eta=0.1, mu=0.5, delay=ConstantDelay(1), batch=8)
    theory = predict_model(p)
    steps = int(max(20 * theory.relaxation_iterations, 3000))
    run, excess, half = _run_floor(p, theory, steps, 128)
    full = theory.full_moments
    assert run.diverged_fraction == 0 and full.stable
    assert abs(excess - full.floor) <= half + QUADRATIC_TOLERANCE * full.floor, (excess, half, full.floor)
    assert full.floor == pytest.approx(loss_floor(theory.point, p.eta, p.mu, 1).value, rel=0.01)  # Gaussian-like data


def test_the_arnoldi_radius_is_the_same_bits_every_time():
    """Arnoldi (the feedback radius above 300 rows) starts from a fixed vector: ten asks give one
    number (from ARPACK's random start, 5 to 8 distinct values in the last digits), the dense one."""
    matrix = np.random.default_rng(5).random((400, 400))
    radii = {largest_modulus(matrix) for _ in range(10)}
    assert len(radii) == 1, radii
    assert radii.pop() == pytest.approx(np.max(np.abs(np.linalg.eigvals(matrix))), rel=1e-12)


@pytest.mark.slow
def test_the_lanczos_top_eigenvalue_is_the_same_bits_every_time():
    """Lanczos (the top Hessian eigenvalue) starts from the same fixed vector: ten asks give one
    number (4 distinct from ARPACK's random start), the full Hessian's."""
    p = problem("mlp")
    x = find_minimum(p)
    tops = {top_eigenvalue(p, x) for _ in range(10)}
    assert len(tops) == 1, tops
    assert tops.pop() == pytest.approx(model_point(p, x).eigenvalues[0], rel=1e-9)


@pytest.mark.slow
def test_the_advised_loss_after_n_steps_stands_on_the_floor_the_advice_reports():
    """The loss after N iterations is the grid's floor, the full second moments' here, plus a transient
    that fades: it took the diagonal floor (0.0369 under the full 0.0455 at μ 0.9), and at 300
    iterations ranked μ 0.9 first where the full floor puts 0.88 ahead."""
    from amsgd.advise import advise

    p = _digits(eta=0.0025)
    mus = (0.8, 0.85, 0.88, 0.9)
    short, long = (advise(p, workers=(1, 2), mus=mus, steps=n) for n in (300, 10**8))
    stable = short.grid.stable
    assert stable[0].all() and np.array_equal(long.grid.stable, stable)
    assert np.all(short.loss_after[stable] > short.grid.floor[stable])
    np.testing.assert_allclose(long.loss_after[stable], long.grid.floor[stable], rtol=1e-12)
    assert short.best_mu_loss(0) == mus[int(np.argmin(short.loss_after[0]))]


@pytest.mark.slow
def test_advise_on_a_model_does_not_check_the_problems_own_momentum():
    """advise ignores the problem's μ: a step the default μ 0.9 cannot resolve in double precision is
    advised on for the momenta asked, as with the problem's μ at 0."""
    from amsgd.advise import advise

    at_default, at_zero = (advise(_digits(eta=1e-10, mu=mu), workers=(1,), mus=(0.0,), steps=1000) for mu in (0.9, 0.0))
    assert at_default.rows() == at_zero.rows() and np.isfinite(at_default.loss_after).all()
    with pytest.raises(ProblemError, match="raise eta"):
        predict_model(_digits(eta=1e-10, mu=0.9))


def test_the_fluctuation_operator_is_built_once_for_equal_statistics():
    """Equal per-example Hessians (a sweep's points share their minimum) get one operator, built once and
    read-only; Hessians that differ in one entry get their own; each equals a fresh build."""
    from amsgd.diffusion.theory import full_moments

    rng = np.random.default_rng(3)
    d = rng.standard_normal((50, 4, 4))
    d = d + d.transpose(0, 2, 1)
    first = full_moments.shared_fluctuation_operator(d)
    assert full_moments.shared_fluctuation_operator(d.copy()) is first and not first.flags.writeable
    other = d.copy()
    other[7, 1, 2] += 1e-12
    second = full_moments.shared_fluctuation_operator(other)
    assert second is not first and np.array_equal(second, full_moments._fluctuation_operator(other))
    assert np.array_equal(first, full_moments._fluctuation_operator(d))
