"""benchmarks/friction_feedback.py: its runs are floor_parts' free runs, its feedback sum is the covariance
it stands for, its norm model gives the variance of a recursion with white gain noise, and its stored
tables are the code's and in the docs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.benchmarks import benchmark_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(monkeypatch):
    """benchmarks/friction_feedback.py as a module (it imports floor_parts from its own folder)."""
    return benchmark_module(monkeypatch, "friction_feedback")


def test_the_runs_are_floor_parts_free_runs(study):
    """The same seed gives floor_parts' free runs: the window's mean ‖h‖² and the runs' floors are
    ``run_floors``' own."""
    import floor_parts

    case = floor_parts.parts_case(study.SPECTRUM, 2.5e-3, 0.95, 3, "gaussian", seed=11)
    norms, energies, floors, gains = study.window_series(case, 256)
    assert gains.shape == norms.shape and np.all(gains >= 0.0)
    assert norms.shape == energies.shape == (case.steps - case.steps // 2, 256)
    runs = floor_parts.run_floors(case, 256)
    assert float(norms.mean()) == pytest.approx(runs.norm, rel=1e-12)
    np.testing.assert_allclose(floors, runs.floors, rtol=1e-12)


def test_the_gains_are_those_of_the_stale_iterate(study):
    """``s_k² = (Y_kᵀ h_{k−τ})²``, the gain of the step from the stale iterate, against a plain loop that
    keeps every iterate (τ = 3; the ring's slot of h_{k−τ} is the one h_{k+1} then takes)."""
    import floor_parts

    case = floor_parts.parts_case(study.SPECTRUM, 2.5e-3, 0.95, 3, "rademacher", seed=5)
    gains = study.window_series(case, 32)[3]
    rng = np.random.default_rng(case.seed)
    history = [np.tile([1.0, 0.0], (32, 1))] * 5  # h_{k−4} .. h_k, at rest at e_1
    expected = []
    for k in range(case.steps):
        y = floor_parts._draw(rng, case.data, 32, 2) * np.sqrt(study.SPECTRUM)
        stale = history[-4]
        if k >= case.steps // 2:
            expected.append(np.einsum("rd,rd->r", y, stale) ** 2)
        history = history[1:] + [floor_parts.step(history[-1], history[-2], stale, y, case.eta, case.mu)]
    np.testing.assert_array_equal(gains, np.array(expected))


def _oscillating_norm(runs: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(2) process with a slow damped oscillation (period about 60 steps), rows = steps."""
    a1, a2 = 2 * 0.97 * np.cos(2 * np.pi / 60), -(0.97**2)
    x = np.zeros((steps + 500, runs))
    for k in range(2, x.shape[0]):
        x[k] = a1 * x[k - 1] + a2 * x[k - 2] + rng.standard_normal(runs)
    return 1.0 + 0.01 * x[500:]


def test_the_feedback_sum_is_the_covariance_it_stands_for(study):
    """A kinetic energy that is exactly a response to the norm, ``w_k² = E + Σ_L g_L (n_{k−L} − n*)``: the
    friction of the pair is the feedback sum of g's step response and the norm's autocovariance (to 1%,
    the window's edges); the same sum with the response one lag late or early is off by 20-25%."""
    rng = np.random.default_rng(7)
    n = _oscillating_norm(400, 3000, rng)  # n_k, k = 0 .. 2999
    g = 0.4 * 0.8 ** np.arange(120)
    mean = float(n.mean())
    energy = 1.0 + sum(g[lag] * (n[120 - lag : n.shape[0] - lag] - mean) for lag in range(g.size))  # w_k, k ≥ 120
    norms, energies = n[121:], energy[:-1]  # rows: n_{k+1} beside w_k²
    measured = study.friction(norms, energies)
    covariance = study.autocovariance(norms, mean, study.LAGS)
    summed = study.feedback(np.cumsum(g), covariance, float(energies.mean()))
    assert summed == pytest.approx(measured, rel=0.01), (summed, measured)
    for shifted in (np.concatenate([[0.0], np.cumsum(g)]), np.cumsum(g)[1:]):
        wrong = study.feedback(shifted, covariance, float(energies.mean()))
        assert abs(wrong - measured) > 0.15 * abs(measured), (wrong, measured)


def test_the_norm_model_of_a_recursion_with_white_gain_noise(study):
    """``δ_{k+1} = Σ_i c_i δ_{k−i} + σ ξ_k − 2η (g_k − E g) δ_{k−τ}`` with i.i.d. gains (mean 2, variance 8,
    as ``Y_1²`` of Gaussian data on Σ = diag(2, 1)) and the norm model's own c: the identity and the
    additive drive over ``1 − m`` both give Var δ (to 3% and 5%, the runs' spread), and m is
    ``4η² Var g Σ H²``."""
    import floor_parts

    from amsgd import parse_delay
    from amsgd.diffusion.theory.linear_recursion import ar_coefficients
    from amsgd.diffusion.theory.norm_coupling import impulse_response

    case = floor_parts.parts_case(study.SPECTRUM, 2.5e-3, 0.95, 2, "gaussian")
    c = ar_coefficients(4.0, case.eta, case.mu, parse_delay(case.delay))
    rng = np.random.default_rng(9)
    runs, steps, keep = 400, 8000, 4000
    past = np.zeros((c.size, runs))  # δ_k, δ_{k−1}, ..., δ_{k−L}
    norms, gains = [], []
    for k in range(steps):
        g = 2.0 * rng.standard_normal(runs) ** 2
        new = c @ past + 1e-3 * rng.standard_normal(runs) - 2.0 * case.eta * (g - 2.0) * past[2]
        past = np.vstack([new, past[:-1]])
        if k >= steps - keep:
            norms.append(1.0 + new)
            gains.append(g)
    norms, gains = np.array(norms), np.array(gains)
    model = study.norm_model(case, norms, gains)
    variance = float(norms.var())
    h = impulse_response(c, study.HORIZON)
    assert model["gain_noise"] == pytest.approx(4.0 * case.eta**2 * 8.0 * float(h @ h), rel=0.03)
    assert model["norm_identity"] == pytest.approx(variance, rel=0.03)
    assert model["norm_additive"] / (1.0 - model["gain_noise"]) == pytest.approx(variance, rel=0.05)


def test_stored_study_is_this_code_and_its_table_is_in_the_docs(study):
    """Every stored row's toolkit ε_2 and floors (as they are, and with the measured friction) are what
    the code gives, its open loop is the measured friction less the feedback, and docs/linear-theory.md
    holds the table."""
    import floor_parts

    rows = json.loads(study.OUT.read_text())["cases"]
    assert len(rows) == len(study.DATA) * sum(len(delays) for *_, delays in study.CASES)
    for r in rows:
        case = floor_parts.parts_case(study.SPECTRUM, r["eta"], r["mu"], r["tau"], r["data"])
        assert r["toolkit"] == pytest.approx(floor_parts.toolkit_friction(case), rel=1e-9)
        assert r["floor_toolkit"] == pytest.approx(study.floor_with(case, 1.0), rel=1e-9)
        assert r["floor_measured"] == pytest.approx(study.floor_with(case, r["measured"] / r["toolkit"]), rel=1e-9)
        assert r["open_loop"] == pytest.approx(r["measured"] - r["feedback"], rel=1e-9, abs=1e-12)
    docs = (ROOT / "docs" / "linear-theory.md").read_text()
    assert study.table(rows) in docs and study.norm_table(rows) in docs
