"""Negative momentum (−1 < μ < 0), allowed for models: the exact stability theorem of
diffusion/theory/stability.py and the stationary variances against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd.core.delays import ConstantDelay
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem
from amsgd.core.problem import Problem
from amsgd.diffusion.theory.lyapunov import stationary_gains, stationary_variance
from amsgd.diffusion.theory.stability import boundary_product, critical_delay, max_stable_negative_momentum

MUS = (-0.3, -0.6, -0.9)


def _companion_radius(c: float, mu: float, tau: int) -> float:
    """The largest root modulus of ``z^{τ+1} − (1 + μ) z^τ + μ z^{τ−1} + c`` (times z at τ = 0), by NumPy."""
    poly = np.zeros(max(tau, 1) + 2)
    poly[:3] = [1.0, -(1.0 + mu), mu]
    poly[max(tau, 1) + 1 - (0 if tau else 1)] += c
    return float(np.abs(np.roots(poly)).max())


@pytest.mark.parametrize("mu", MUS)
def test_the_stability_verdict_is_the_roots_verdict(mu):
    """Below ``c = 2 (1 + μ)`` the theorem's verdict is the roots' at every delay. Above it τ = 0 is
    unstable and no delay is counted stable (τ_c = 0), although with μ < 0 some positive delays can
    be stable there (conservative, documented): checked both ways."""
    edge = 2 * (1 + mu)
    products = np.r_[np.linspace(0.01, 2.6, 60), edge * np.array([0.999, 1.001])]
    stable_beyond_edge = 0
    for tau in range(0, 13):
        for c, tau_c in zip(products, critical_delay(products, 1.0, mu)):
            radius = _companion_radius(c, mu, tau)
            if abs(radius - 1.0) < 1e-9:
                continue  # on the boundary itself
            if c < edge:
                assert (tau < tau_c) == (radius < 1.0), (mu, tau, c, tau_c, radius)
            else:
                assert tau_c == 0.0 and (tau > 0 or radius > 1.0)
                stable_beyond_edge += radius < 1.0
    if mu <= -0.6:  # the conservative band holds stable delays here (at μ = −0.3 none on this grid)
        assert stable_beyond_edge > 0


@pytest.mark.parametrize("mu", MUS)
def test_boundary_product_separates_stable_from_unstable(mu):
    for tau in range(0, 8):
        cb = boundary_product(mu, tau)
        assert _companion_radius(cb * (1 - 1e-6), mu, tau) < 1.0
        assert _companion_radius(cb * (1 + 1e-6), mu, tau) > 1.0 or cb == pytest.approx(2 * (1 + mu))


def _impulse_variance(rate: float, eta: float, mu: float, tau: int, steps: int = 20_000) -> float:
    """``Var x`` of ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ} + η ξ_k`` as ``η² Σ_k g_k²``, the
    impulse response ``g`` iterated directly."""
    g = np.zeros(steps + tau + 2)
    g[tau + 1] = 1.0  # x_{k} with the unit impulse entering at index tau + 1 (the history before is 0)
    for k in range(tau + 1, steps + tau + 1):
        g[k + 1] = (1 + mu) * g[k] - mu * g[k - 1] - eta * rate * g[k - tau]
    return eta**2 * float(np.sum(g**2))


@pytest.mark.parametrize("mu, tau", [(-0.3, 0), (-0.6, 3), (-0.9, 1), (-0.3, 6)])
def test_stationary_variances_equal_the_impulse_response_sum(mu, tau):
    rates, eta = np.array([0.5, 2.0, 4.0]), 0.05
    batch = stationary_gains(rates, eta, mu, tau)
    for rate, gain in zip(rates, batch):
        direct = _impulse_variance(rate, eta, mu, tau)
        assert stationary_variance(rate, eta, mu, ConstantDelay(tau)) == pytest.approx(direct, rel=1e-9)
        assert gain == pytest.approx(direct, rel=1e-9)


def test_models_take_negative_momentum_and_pca_does_not(tmp_path):
    from test_models import problem

    assert problem("least-squares", mu=-0.3).mu == -0.3
    with pytest.raises(ProblemError, match="-1, 1"):
        problem("least-squares", mu=-1.0)
    with pytest.raises(ProblemError, match="0 <= mu < 1"):
        Problem.from_spectrum([4, 3, 2, 1], mu=-0.3)
    assert isinstance(problem("logistic", mu=-0.5), ModelProblem)


@pytest.mark.parametrize("tau", [3, 4])
def test_the_largest_stable_negative_momentum_is_where_the_companion_roots_cross_one(tau):
    """A delay that μ = 0 does not hold (rates 3, 1, 0.2 at η 0.2: τ_c 2.08 at μ 0): the supremum of the
    stable μ < 0 is where the largest root of the stiffest modes crosses the unit circle."""
    rates, eta = np.array([3.0, 1.0, 0.2]), 0.2
    top = max_stable_negative_momentum(rates, eta, tau)
    assert top is not None and -1 < top < 0

    def radius(mu: float) -> float:
        return max(_companion_radius(eta * r, mu, tau) for r in rates)

    assert radius(top - 1e-6) < 1 < radius(top + 1e-6)
    assert critical_delay(rates, eta, top - 1e-9).min() > tau  # the toolkit's verdict agrees below it
    assert max_stable_negative_momentum(rates, eta, 1) == 0.0  # μ = 0 holds τ = 1
    assert max_stable_negative_momentum(rates, eta, 12) is None


@pytest.mark.slow
def test_a_model_with_no_stable_delay_reports_none_as_streaming_pca_does():
    """Least squares on digits at μ = −0.9: τ = 0 is not stable in the mean (so no τ* exists), which
    the model's JSON gave as tau_max −1 where streaming PCA gives null; max_workers stays 0."""
    from amsgd.core.delays import ConstantDelay
    from amsgd.core.models import load_data
    from amsgd.diffusion.theory.model_predictions import predict_model

    digits = ModelProblem("least-squares", load_data("digits", classification=False), eta=0.05, mu=-0.9,
                          delay=ConstantDelay(1))  # fmt: skip
    stability = predict_model(digits).to_dict(["stability"])["stability"]
    assert stability["tau_max"] is None and stability["max_workers"] == 0
