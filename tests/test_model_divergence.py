"""The divergence risk of a model's runs (diffusion/theory/model_divergence.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_models import problem

from amsgd.core.delays import ConstantDelay
from amsgd.core.models import ModelProblem, load_data
from amsgd.diffusion.theory.model_divergence import (
    BLOW_UP,
    LINE_MIN,
    LINE_POINTS,
    StiffestLine,
    critical_impulse,
    kick_probability,
)
from amsgd.diffusion.theory.model_predictions import predict_model
from amsgd.simulate.model_engine import simulate_model


def _stiffening_line(lam: float, cubic: float) -> StiffestLine:
    """``φ'(t) = λ t + c t³`` on the module's grid: the curvature grows away from the minimum."""
    side = np.geomspace(LINE_MIN / math.sqrt(lam), BLOW_UP, LINE_POINTS)
    t = np.r_[-side[::-1], 0.0, side]
    return StiffestLine(t, lam * t + cubic * t**3, np.zeros(3))


def _direct_blows_up(lam: float, cubic: float, eta: float, mu: float, tau: int, impulse: float) -> bool:
    """The scalar recursion with the exact derivative, one iteration at a time."""
    history = [0.0] * (tau + 1) + [eta * impulse]
    for _ in range(4000):
        stale = history[-1 - tau]
        new = history[-1] + mu * (history[-1] - history[-2]) - eta * (lam * stale + cubic * stale**3)
        if not abs(new) < BLOW_UP:
            return True
        history = history[1:] + [new]
    return False


@pytest.mark.parametrize(("eta", "mu", "tau"), [(0.05, 0.0, 0), (0.05, 0.5, 2), (0.02, 0.9, 1)])
def test_critical_impulse_of_a_stiffening_line_matches_the_scalar_recursion(eta, mu, tau):
    lam, cubic = 1.0, 0.5
    k = critical_impulse(_stiffening_line(lam, cubic), eta, mu, tau)
    assert k < 1e-3 * BLOW_UP / eta  # the basin, not the blow-up norm, sets it
    assert _direct_blows_up(lam, cubic, eta, mu, tau, 1.01 * k)
    assert not _direct_blows_up(lam, cubic, eta, mu, tau, 0.99 * k)


def test_a_linear_line_is_thrown_off_only_by_a_kick_beyond_the_blow_up_norm():
    eta, mu = 0.05, 0.5
    line = StiffestLine(np.array([-BLOW_UP, BLOW_UP]), np.array([-BLOW_UP, BLOW_UP]), np.zeros(2))
    k = critical_impulse(line, eta, mu, 0)
    # the mean dynamics of a stable linear mode returns from every kick; the first position after the
    # kick, ηK, and the momentum overshoot decide when the norm is passed
    assert 0.3 * BLOW_UP / eta < k <= BLOW_UP / eta


def test_kick_probability_counts_for_one_example_and_samples_minibatches():
    u = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    line = StiffestLine(np.zeros(1), np.zeros(1), u)
    assert kick_probability(line, 1, 2.0) == pytest.approx(0.4)
    assert kick_probability(line, 1, 0.5) == pytest.approx(0.8)
    assert kick_probability(line, 4, 3.0) == 0.0  # no mean of examples goes beyond the largest one
    two = StiffestLine(np.zeros(1), np.zeros(1), np.array([-1.0, 1.0]))
    p = kick_probability(two, 2, 0.5)  # the mean of two draws is ±1 with probability 1/2
    half_width = 4 * math.sqrt(0.25 / 200_000)
    assert abs(p - 0.5) < half_width


@pytest.mark.slow
@pytest.mark.parametrize(("model", "tau", "fate", "diverged"),
                         [("least-squares", 30, "blows up", 16), ("logistic", 60, "saturates", 0),
                          ("least-squares", 3, "stable", 0), ("mlp", 30, "saturates", 0)])  # fmt: skip
def test_fate_against_runs_from_the_minimum(model, tau, fate, diverged):
    p = problem(model, eta=0.05, mu=0.5, delay=ConstantDelay(tau))
    theory = predict_model(p)
    risk = theory.divergence
    assert risk.fate == fate
    runs = simulate_model(p, 3000, 16, rng=7, start=theory.point.x, record_every=3000)
    assert int(np.sum(runs.diverged_at >= 0)) == diverged
    if fate == "stable":
        assert risk.fraction < 0.01
        assert risk.critical_impulse > 0.1 * BLOW_UP / p.eta
    else:
        assert risk.fraction == (1.0 if fate == "blows up" else 0.0)
    block = theory.to_dict()["stability"]["divergence_risk"]
    assert block["fate"] == fate and block["steps"] == theory.options.steps and block["note"]


@pytest.mark.slow
def test_mean_square_unstable_cell_is_not_given_a_fraction():
    """Least squares on digits at η 0.004, l2 0.1: the mean dynamics is stable, the full second moments
    are not (every run diverges there: tests/test_full_moments.py)."""
    p = ModelProblem("least-squares", load_data("digits", classification=False), mu=0.9, batch=32, eta=0.004, l2=0.1)
    risk = predict_model(p).divergence
    assert risk.fate == "mean-square unstable"
    assert risk.fraction is None
    assert risk.to_dict()["fraction"] is None
