"""Monte Carlo against the diffusion limits of docs/theory.md, within confidence intervals.

Both limits hold to leading order in η; the parameters are chosen so that the O(η) bias is a small
fraction of the Monte Carlo interval (checked beforehand with ten times more replicates).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from amsgd import Gaussian, Problem, StudentT, parse_delay
from amsgd.core.estimates import t_interval
from amsgd.simulate import simulate

SPECTRUM = np.array([4.0, 3.0, 2.0, 1.0])


def ode_error(h0: np.ndarray, lam: np.ndarray, t: np.ndarray, mu: float) -> np.ndarray:
    """sin²∠(V(t), e_1) for the closed-form ODE solution h_i(t) ∝ h_i(0) exp(λ_i t/(1 − μ))."""
    h = h0[None, :] * np.exp(np.outer(t, lam) / (1 - mu))
    return 1 - h[:, 0] ** 2 / (h**2).sum(axis=1)


@pytest.mark.parametrize("mu, tau", [(0.0, 0), (0.5, 0), (0.5, 10)])
def test_mean_error_follows_the_ode(mu, tau):
    eta_eff = 2e-5  # η/(1 − μ): the ODE's effective step
    eta = eta_eff * (1 - mu)
    h0 = np.array([0.2, 1.0, 1.0, 1.0]) / np.linalg.norm([0.2, 1.0, 1.0, 1.0])
    steps, replicates = int(1.5 / eta_eff), 200
    problem = Problem.from_spectrum(SPECTRUM, eta=eta, mu=mu, delay=parse_delay(f"constant:{tau}"))
    res = simulate(problem, steps, replicates, rng=101, start=h0, record_every=steps // 5)
    expected = ode_error(h0, SPECTRUM, res.iterations * eta, mu)
    assert expected[-1] < 0.6 < expected[1]  # the checkpoints span the travel phase
    for j in range(1, res.iterations.size):
        ci = t_interval(res.error[:, j], confidence=0.999)
        assert ci.ci_low <= expected[j] <= ci.ci_high, (res.iterations[j], expected[j], ci)


@pytest.mark.parametrize(
    "distribution, mu",
    [(Gaussian(), 0.0), (Gaussian(), 0.5), (StudentT(8.0), 0.0)],
    ids=["gaussian", "gaussian-momentum", "student-t-8"],
)
def test_stationary_error_matches_leading_order(distribution, mu):
    """η Σ_{i>1} α_i1² / (2 (1 − μ)(λ1 − λ_i)), α_i1² = λ_i λ_1 times (ν − 2)/(ν − 4) for Student-t."""
    eta_eff = 2e-4
    eta = eta_eff * (1 - mu)
    lam = SPECTRUM
    kurtosis = 1.0 if isinstance(distribution, Gaussian) else (distribution.nu - 2) / (distribution.nu - 4)
    alpha_sq = kurtosis * lam[1:] * lam[0]
    predicted = eta * np.sum(alpha_sq / (2 * (1 - mu) * (lam[0] - lam[1:])))
    # slowest mode relaxes at rate 2 (λ1 − λ2) η_eff per step: 20 000 steps of burn-in are 8 e-folds
    problem = Problem.from_spectrum(lam, eta=eta, mu=mu, distribution=distribution)
    res = simulate(problem, 40_000, 400, rng=7, start="e1", window=0.5)
    assert res.diverged_fraction == 0.0
    ci = t_interval(res.window_error, confidence=0.99)
    assert ci.ci_low <= predicted <= ci.ci_high, (predicted, ci)
    # the reported 95% interval is the same construction
    reported = res.stationary_error
    assert reported.mean == pytest.approx(ci.mean)
    assert reported.ci_high - reported.ci_low == pytest.approx(
        2 * stats.t.ppf(0.975, 399) * ci.std_error, rel=1e-9
    )
