"""benchmarks/friction_kernel.py: the radial friction's kernel, with the noise's fourth cumulant and the
gain's noise, against the simulated linearised model; its stored table is the code's and in the docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.benchmarks import benchmark_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(monkeypatch):
    """benchmarks/friction_kernel.py as a module."""
    return benchmark_module(monkeypatch, "friction_kernel")


def test_the_kernel_with_both_terms_is_the_simulated_friction_and_the_others_are_not(study):
    """Gaussian data with the algorithm's gain at η 0.01, μ 0.5 (2048 runs): the kernel with the
    cumulant and the gain's noise lies within three half-widths of the simulated friction; the
    Isserlis kernel and the cumulant alone lie more than ten half-widths away, on either side."""
    sim = study.simulate_pair(1e-2, 0.5, "gaussian", True, 2048, 2000, seed=3)
    cumulant, gain = study.law_constants("gaussian")
    both = study.kernel_friction(1e-2, 0.5, cumulant, gain, sim["delta"])
    assert abs(both - sim["friction"]) <= 3 * sim["half_width"], (both, sim)
    for other in (study.kernel_friction(1e-2, 0.5), study.kernel_friction(1e-2, 0.5, cumulant)):
        assert abs(other - sim["friction"]) > 10 * sim["half_width"], (other, sim)


def test_rademacher_data_need_the_cumulant_alone(study):
    """With Rademacher data the gain is constant (``Y_1² = λ_1``) and ξ's cumulant is negative: the
    cumulant kernel is the simulated friction at μ 0.8 within three half-widths, Isserlis's is not."""
    sim = study.simulate_pair(5e-3, 0.8, "rademacher", True, 1024, 2000, seed=4)
    cumulant, gain = study.law_constants("rademacher")
    assert gain == 0.0
    assert abs(study.kernel_friction(5e-3, 0.8, cumulant) - sim["friction"]) <= 3 * sim["half_width"]
    assert abs(study.kernel_friction(5e-3, 0.8) - sim["friction"]) > 10 * sim["half_width"]


def test_stored_study_is_this_code_and_its_table_is_in_the_docs(study):
    """Every stored row's kernels are what the code gives at its simulated mean δ, and
    docs/linear-theory.md holds the table."""
    rows = json.loads(study.OUT.read_text())["cases"]
    assert len(rows) == 2 * 2 * len(study.CASES)
    for r in rows:
        cumulant, gain = study.law_constants(r["data"])
        gain = gain if r["random_gain"] else 0.0
        assert r["isserlis"] == pytest.approx(study.kernel_friction(r["eta"], r["mu"]), rel=1e-9)
        assert r["cumulant"] == pytest.approx(study.kernel_friction(r["eta"], r["mu"], cumulant), rel=1e-9)
        assert r["both"] == pytest.approx(study.kernel_friction(r["eta"], r["mu"], cumulant, gain, r["delta"]), rel=1e-9)
    assert study.table(rows) in (ROOT / "docs" / "linear-theory.md").read_text()
