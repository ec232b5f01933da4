"""benchmarks/held_coordinates.py: its runs are floor_parts' held runs, its fit recovers a known
recursion, the angle step's expansion is the exact one, and its stored table is the code's and in the docs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.benchmarks import benchmark_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(monkeypatch):
    """benchmarks/held_coordinates.py as a module (it imports floor_parts from its own folder)."""
    return benchmark_module(monkeypatch, "held_coordinates")


def test_the_runs_are_floor_parts_held_runs(study):
    """The same seed gives the same runs as ``floor_parts.run_floors`` with the norm held at 1: equal floors."""
    import floor_parts

    eta, mu, _ = study.CASES[0]
    row = study.simulate(eta, mu, 2, "rademacher", 256, seed=11)
    case = floor_parts.parts_case(study.SPECTRUM, eta, mu, 2, "rademacher", seed=11)
    held = floor_parts.run_floors(case, 256, held=1.0).floors
    assert row["floor"] == pytest.approx(float(held.mean()), rel=1e-12)


@pytest.mark.parametrize("tau", [0, 3])
def test_the_fit_recovers_a_known_linear_recursion(study, tau):
    """Runs of ``x_{k+1} = (1 + μ + m − η b) x_k − (μ + m) x_{k−1} − η d x_{k−τ} + η σ z`` fed to the fit give
    back b, d, m and σ² within four standard errors (b + d alone at τ = 0)."""
    eta, mu, _ = study.CASES[0]
    current, stale, change, noise = 0.3, 0.6, 4e-3, 2.0
    if not tau:
        current, stale = current + stale, 0.0
    rng = np.random.default_rng(5)
    runs = 4096
    history = [np.zeros(runs) for _ in range(tau + 2)]
    sums = study._Sums(tau, eta, mu, runs)
    for k in range(3000):
        now, before, old = history[-1], history[-2], history[-1 - tau]
        new = ((1 + mu + change - eta * current) * now - (mu + change) * before
               - eta * stale * old + eta * np.sqrt(noise) * rng.standard_normal(runs))  # fmt: skip
        history = history[1:] + [new]
        if k > 1500:
            sums.add([new, now, before, old], np.ones(runs, dtype=bool))
    fit = sums.result()
    for name, truth in (("current", current), ("stale", stale), ("momentum", change), ("noise", noise)):
        if tau or name != "stale":
            assert abs(fit[name] - truth) <= 4 * fit[f"{name}_se"], (name, fit)


@pytest.mark.parametrize("mu", [0.5, 0.95])
def test_the_angle_steps_expansion_is_the_exact_step(study, mu):
    """Without the gradient the held step moves the angle by ``arg[(1 + μ) − μ e^{−iΔ}]``; the closure's
    ``μ Δ − (μ/6 + μ²/2 + μ³/3) Δ³`` is it to O(Δ⁵)."""
    for delta in (1e-2, 2e-2):
        exact = np.angle((1 + mu) - mu * np.exp(-1j * delta))
        cubic = mu * delta - (mu / 6 + mu**2 / 2 + mu**3 / 3) * delta**3
        assert abs(exact - cubic) < 2 * delta**5


def test_stored_study_is_this_code_and_its_tables_are_in_the_docs(study):
    """Every stored row's toolkit floor and closure are what the code gives, and docs/linear-theory.md
    holds the tables."""
    rows = json.loads(study.OUT.read_text())["cases"]
    assert len(rows) == len(study.DATA) * sum(len(delays) for *_, delays in study.CASES)
    for r in rows:
        case = (r["eta"], r["mu"], r["tau"], r["data"])
        assert r["toolkit"] == pytest.approx(study.toolkit_held(*case), rel=1e-9)
        assert r["closure"] == pytest.approx(study.angle_closure(*case), rel=1e-9)
    assert study.table(rows) in (ROOT / "docs" / "linear-theory.md").read_text()
