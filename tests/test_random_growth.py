"""The top Lyapunov exponent of a model's random recursion and the blow-up fraction of its runs
(diffusion/theory/random_growth.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from amsgd.diffusion.theory.growth_kernel import tilted_growth_rate
from amsgd.diffusion.theory.linear_recursion import delay_law, spectral_radius
from amsgd.diffusion.theory.random_growth import (
    MAX_TILTS,
    MIN_BLOCK,
    Growth,
    Recursion,
    blow_up_fraction,
    factor_hessians,
    growth_exponent,
    tail_exponent,
)


def test_factors_rebuild_each_hessian_with_the_rank_it_needs():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 4))
    rank_one = z[:, :, None] * z[:, None, :]
    u, s = factor_hessians(rank_one)
    assert u.shape == (50, 4, 1) and s.shape == (50, 1)
    assert np.allclose(np.einsum("nir,nr,njr->nij", u, s, u), rank_one, atol=1e-12)
    full = rank_one + np.eye(4)[None] * rng.uniform(-1, 1, size=(50, 1, 1))  # indefinite, full rank
    u, s = factor_hessians(full)
    assert u.shape == (50, 4, 4)
    assert np.allclose(np.einsum("nir,nr,njr->nij", u, s, u), full, atol=1e-12)


def test_scalar_exponent_and_variance_are_those_of_log_one_minus_eta_h():
    """m = 1, μ = 0, τ = 0, B = 1: ``h_{k+1} = (1 − η (R + H_n)) h_k`` with n uniform, so γ and σ² are
    the mean and variance of ``log|1 − η (R + H_n)|`` over the examples (independent steps)."""
    h = np.array([0.2, 0.5, 1.0, 3.0, 9.0])
    eta, ridge = 0.3, 0.1
    g = growth_exponent(np.array([[ridge]]), h[:, None, None], eta, 0.0, delay_law(0), 1)
    logs = np.log(np.abs(1.0 - eta * (ridge + h)))
    assert g.exponent == pytest.approx(logs.mean(), abs=4.0 * g.standard_error)
    # the batch-means variance over n blocks of MIN_BLOCK steps (μ = 0): relative standard error sqrt(2/(n − 1))
    blocks = g.path_steps // MIN_BLOCK
    assert g.variance == pytest.approx(logs.var(), rel=4.0 * math.sqrt(2.0 / (blocks - 1)))
    assert g.standard_error < 0.01 * abs(g.exponent)


@pytest.mark.parametrize(("eta", "mu", "tau"), [(0.05, 0.9, 0), (0.4, 0.5, 3), (0.9, 0.0, 1), (0.2, 0.7, 6)])
def test_identical_examples_grow_at_the_mean_recursions_radius(eta, mu, tau):
    """Every example with the same Hessian diag(2, 1): no noise, and ``log ‖h_k‖/k`` tends to the log of
    the spectral radius of the stiffer mode's delayed momentum recursion (stable or not)."""
    hessians = np.repeat(np.diag([2.0, 1.0])[None], 7, axis=0)
    g = growth_exponent(np.zeros((2, 2)), hessians, eta, mu, delay_law(tau), 3)
    expected = max(math.log(spectral_radius(lam, eta, mu, delay_law(tau))) for lam in (2.0, 1.0))
    assert g.exponent == pytest.approx(expected, abs=2e-4)


def _scalar_rate(ridge: float, h: np.ndarray, eta: float, mu: float, power: float, seed: int) -> float:
    """Λ(power) of the scalar recursion (examples' Hessians ``h``, B = 1, no delay) by population dynamics."""
    factors, signs = factor_hessians(h[:, None, None])
    return tilted_growth_rate(np.array([[ridge]]), factors, signs, eta, mu, np.array([1.0]), 1, power,
                              1000, 400, 3600, seed)  # fmt: skip


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 3.0])
def test_tilted_rate_without_momentum_is_the_log_mean_power(power):
    """m = 1, μ = 0: the steps are independent, so ``Λ(s) = log mean_n |1 − η (R + H_n)|^s`` exactly;
    four seeds of the population dynamics against it, within 4 standard errors of their mean."""
    h, eta, ridge = np.array([0.2, 0.5, 1.0, 3.0, 9.0]), 0.3, 0.1
    exact = math.log(np.mean(np.abs(1.0 - eta * (ridge + h)) ** power))
    rates = [_scalar_rate(ridge, h, eta, 0.0, power, seed) for seed in range(4)]
    assert np.mean(rates) == pytest.approx(exact, abs=4.0 * np.std(rates, ddof=1) / 2.0 + 1e-6)


def test_tilted_rate_with_momentum_against_direct_moments():
    """μ = 0.5: ``Λ(1/2)`` against the growth of ``log E|h_k|^{1/2}`` between k = 40 and 80 over 400 000
    directly simulated scalar runs (8 groups give its standard error)."""
    h, eta, mu, ridge, power = np.array([0.2, 0.5, 1.0, 3.0, 6.0]), 0.3, 0.5, 0.1, 0.5
    rng = np.random.default_rng(1)
    direct = []
    for _ in range(8):
        x, previous, logs = np.ones(50_000), np.ones(50_000), []
        for k in range(1, 81):
            scale = ridge + h[rng.integers(0, h.size, x.size)]
            x, previous = (1.0 + mu) * x - mu * previous - eta * scale * x, x
            if k in (40, 80):
                logs.append(math.log(np.mean(np.abs(x) ** power)))
        direct.append((logs[1] - logs[0]) / 40.0)
    rates = [_scalar_rate(ridge, h, eta, mu, power, seed) for seed in range(4)]
    error = math.hypot(np.std(direct, ddof=1) / math.sqrt(8), np.std(rates, ddof=1) / 2.0)
    assert np.mean(rates) == pytest.approx(np.mean(direct), abs=4.0 * error)


@pytest.mark.slow
def test_tail_exponent_is_the_root_of_the_log_mean_power():
    """m = 1, μ = 0: κ solves ``mean_n |1 − η (R + H_n)|^κ = 1``; here far from the Gaussian walk's
    ``2|γ|/σ²`` (about 0.93 against 2.04), so the root search has to leave it. Six seeds spread by
    about 0.003."""
    h, eta, ridge = np.array([0.2, 0.5, 1.0, 3.0, 9.0]), 0.3, 0.1
    steps = np.abs(1.0 - eta * (ridge + h))
    exact = brentq(lambda s: math.log(np.mean(steps**s)), 1e-3, 50.0)
    growths = [growth_exponent(np.array([[ridge]]), h[:, None, None], eta, 0.0, delay_law(0), 1, seed=seed)
               for seed in range(4)]  # fmt: skip
    kappas = [g.tail_exponent for g in growths]
    assert np.mean(kappas) == pytest.approx(exact, abs=4.0 * np.std(kappas, ddof=1) / 2.0 + 1e-3)
    assert all(2.0 * abs(g.exponent) / g.variance < 0.5 * exact for g in growths)  # the Gaussian walk's root


def test_no_tail_exponent_where_every_step_contracts_or_runs_grow():
    """Every |1 − η (R + H_n)| < 1: Λ(s) < 0 for every s > 0, no power tail (κ = ∞, the walk has no
    spread and no run blows up); runs that grow have none, and their walk keeps the variance σ²."""
    h, eta, ridge = np.array([0.5, 1.0, 1.5, 2.0, 6.0]), 0.3, 0.1
    g = growth_exponent(np.array([[ridge]]), h[:, None, None], eta, 0.0, delay_law(0), 1)
    assert g.tail_exponent == math.inf and g.walk_variance == 0.0
    assert blow_up_fraction(g.exponent, g.walk_variance, 5.0, 10_000) == 0.0
    # steps of 0.5 and 0.99: f = Λ(s)/s levels off just below 0 (at log 0.99), so the secants creep
    # outward and never bracket a root within the estimates allowed: still no power tail
    slow = growth_exponent(np.zeros((1, 1)), np.array([0.5, 0.01])[:, None, None], 1.0, 0.0, delay_law(0), 1)
    assert slow.tail_exponent == math.inf and slow.walk_variance == 0.0
    grows = growth_exponent(np.array([[ridge]]), h[:, None, None], 2.0, 0.0, delay_law(0), 1)
    assert grows.exponent > 0 and math.isnan(grows.tail_exponent) and grows.walk_variance == grows.variance
    assert grows.to_dict()["tail_exponent"] is None


def test_identical_examples_tilt_by_the_mean_recursions_radius():
    """No noise: ``‖h_n‖^s`` grows as ``ρ^{s n}`` on every path, so ``Λ(s) = s log ρ``."""
    hessians = np.repeat(np.diag([2.0, 1.0])[None], 7, axis=0)
    factors, signs = factor_hessians(hessians)
    law = delay_law(3)
    cdf = np.cumsum(law.pmf)
    rate = tilted_growth_rate(np.zeros((2, 2)), factors, signs, 0.2, 0.7, cdf, 3, 1.5, 50, 2000, 2000, 1)
    expected = 1.5 * max(math.log(spectral_radius(lam, 0.2, 0.7, law)) for lam in (2.0, 1.0))
    assert rate == pytest.approx(expected, abs=1e-4)


def _floored_walk(drift: float, variance: float, level: float, steps: int, walks: int, seed: int) -> float:
    """The fraction of Gaussian random walks held at the floor 0 (``x ← max(x + ξ, 0)``) and started
    there that reach ``level`` within ``steps`` steps, by direct simulation."""
    rng = np.random.default_rng(seed)
    x = np.zeros(walks)
    hit = np.zeros(walks, dtype=bool)
    for _ in range(steps):
        x = np.maximum(x + drift + math.sqrt(variance) * rng.standard_normal(walks), 0.0)
        hit |= x >= level
    return float(hit.mean())


@pytest.mark.parametrize(("drift", "variance", "level", "steps"),
                         [(0.01, 0.05, 8.0, 1500), (-0.01, 0.04, 6.0, 2000), (0.0, 0.02, 5.0, 1000),
                          (0.03, 0.001, 20.0, 600), (0.001, 0.004, 14.0, 10_000)])  # fmt: skip
def test_blow_up_fraction_against_floored_walks(drift, variance, level, steps):
    """The grid against walks watched every step. Its macro steps (128 steps in the last case) watch
    both barriers only now and then; with the level alone corrected the last case was 0.02 low."""
    walks = 20_000
    simulated = _floored_walk(drift, variance, level, steps, walks, seed=11)
    half_width = 4.0 * math.sqrt(max(simulated * (1 - simulated), 1.0 / walks) / walks)
    # the grid: its cells and the continuity corrections leave up to about 0.004 here
    assert blow_up_fraction(drift, variance, level, steps) == pytest.approx(simulated, abs=half_width + 0.004)


def test_blow_up_fraction_limits():
    assert blow_up_fraction(0.01, 0.0, 10.0, 900) < 1e-6  # reaches 9 of 10
    assert blow_up_fraction(0.01, 0.0, 10.0, 1100) > 1 - 1e-6
    assert blow_up_fraction(-0.01, 1e-4, 10.0, 100_000) < 1e-6
    assert blow_up_fraction(0.5, 0.1, -1.0, 10) == 1.0
    assert blow_up_fraction(1e-9, 1e-12, 10.0, 100) == 0.0
    assert blow_up_fraction(-math.inf, 0.0, 10.0, 100) == 0.0  # a state that vanished
    with pytest.raises(ValueError, match="no blow-up fraction"):
        blow_up_fraction(math.nan, 0.1, 10.0, 100)


def test_a_state_that_vanishes_has_exponent_minus_infinity():
    """m = 1, μ = 0, τ = 0 with η H = 1 for every example: h becomes exactly 0 at the first step."""
    g = growth_exponent(np.zeros((1, 1)), np.full((3, 1, 1), 2.0), 0.5, 0.0, delay_law(0), 1)
    assert g.exponent == -math.inf


def test_the_walk_keeps_the_clt_variance_where_the_exponent_is_not_told_from_zero():
    """2|γ|/κ → σ² as γ → 0, but there it is the ratio of two small estimates, mostly their noise: where
    γ's 95% interval holds 0 the walk keeps σ²; where it does not, 2|γ|/κ (the norm's tail)."""
    unresolved = Growth(exponent=-1e-4, variance=0.5, standard_error=1e-4, path_steps=1, tail_exponent=1e-3)
    assert unresolved.walk_variance == 0.5
    resolved = Growth(exponent=-0.01, variance=0.5, standard_error=1e-4, path_steps=1, tail_exponent=0.05)
    assert resolved.walk_variance == pytest.approx(0.4)


def _scripted_tilts(monkeypatch, f):
    """Replace Λ's estimator: Λ(s) = s · f(s, call), the call counted from 0."""
    import amsgd.diffusion.theory.growth_kernel as kernel

    calls = []

    def tilted(*args):
        calls.append(args[7])
        return args[7] * f(args[7], len(calls) - 1)

    monkeypatch.setattr(kernel, "tilted_growth_rate", tilted)
    return calls


_SCALAR = (np.array([[0.1]]), np.array([0.2, 0.5, 1.0, 3.0, 9.0])[:, None, None], 0.3)


def test_a_tail_exponent_that_did_not_converge_is_flagged_in_the_growth_and_its_json(monkeypatch):
    """The second estimate of f = Λ(s)/s falls below γ: the search stops at the last point tried, and
    says so."""
    calls = _scripted_tilts(monkeypatch, lambda s, call: 1.0 if call == 0 else -1e6)
    ridge, hessians, eta = _SCALAR
    g = growth_exponent(ridge, hessians, eta, 0.0, delay_law(0), 1)
    assert g.exponent < 0 and len(calls) == 2
    assert g.tail_exponent == calls[0] and g.tail_converged is False  # the last point tried
    assert g.to_dict()["tail_exponent_converged"] is False


@pytest.mark.parametrize(("wobble", "converged"), [(0.0, True), (0.02, False)])
def test_the_tail_exponents_search_says_whether_it_converged(monkeypatch, wobble, converged):
    """f(s) = γ + c s (log‖h‖ with Gaussian steps): the secants land on −γ/c and stop there; the same f
    with estimates that jump by ±``wobble`` keeps moving until the six estimates are spent."""
    gamma, slope = -0.05, 0.08
    calls = _scripted_tilts(monkeypatch, lambda s, call: gamma + slope * s + wobble * (-1) ** call)
    ridge, hessians, eta = _SCALAR
    recursion = Recursion(ridge, *factor_hessians(hessians), eta, 0.0, np.ones(1), 1)
    kappa, done = tail_exponent(recursion, gamma, 2.0 * slope, 100_000)
    assert done is converged
    if converged:
        assert kappa == pytest.approx(-gamma / slope, rel=1e-9)
    else:
        assert len(calls) == MAX_TILTS and 0.0 < kappa < math.inf  # the last secant's root

def test_non_finite_coefficients_get_one_clear_error():
    from amsgd.core.errors import ProblemError

    hessians = np.ones((3, 1, 1))
    hessians[1] = np.nan
    with pytest.raises(ProblemError, match="not finite"):
        growth_exponent(np.zeros((1, 1)), hessians, 0.1, 0.0, delay_law(0), 1)
    with pytest.raises(ProblemError, match="not finite"):
        growth_exponent(np.zeros((1, 1)), np.ones((3, 1, 1)), math.inf, 0.0, delay_law(0), 1)
