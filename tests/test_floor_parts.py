"""benchmarks/floor_parts.py: its simulator is the algorithm, its stored predictions are the code's, and
docs/linear-theory.md holds its table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.benchmarks import benchmark_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(monkeypatch):
    """benchmarks/floor_parts.py as a module (it imports floor_accuracy from its own folder)."""
    return benchmark_module(monkeypatch, "floor_parts")


def test_free_runs_are_the_algorithm_of_simulate(study):
    """The study's own free runs give the floor of ``amsgd.simulate`` on the same case (other streams):
    within the 99% interval of the difference, with a delay and Gaussian data."""
    from amsgd.simulate import simulate

    case = study.parts_case((2.0, 1.0), 1e-2, 0.5, 5, "gaussian", seed=7)
    runs = study.run_floors(case, 1024).floors
    reference = simulate(case.problem(), case.steps, 1024, rng=8, start="e1", progress=False).stationary_error
    own_half = study._half_width(runs)
    spread = np.hypot(own_half, 0.5 * (reference.ci_high - reference.ci_low)) * 2.576 / 1.96
    assert abs(runs.mean() - reference.mean) <= spread, (runs.mean(), reference.mean, spread)


def test_held_runs_keep_the_norm_and_move_the_floor_only_through_it(study):
    """Held runs stay at the given ``‖h‖²``. At μ = 0, τ = 0 the step is tangent to first order and the
    ratios do not see the norm but through ``η ‖h‖² (Y·h)²``, so holding the norm at the free runs' mean
    moves the floor by less than 0.1%; with momentum at μ = 0.95 the norm's motion moves it by more than
    three paired half-widths (the effect the study measures)."""
    still = study.parts_case((2.0, 1.0), 1e-2, 0.0, 0, "rademacher", seed=3)
    row = study.measure(still, 512)
    assert row["delta_measured"] > 0 and abs(row["motion"]) < 1e-3
    held = study.run_floors(still, 64, held=1.25)
    assert held.norm == pytest.approx(1.25, rel=1e-12) and held.friction == 0.0
    moving = study.measure(study.parts_case((2.0, 1.0), 2.5e-3, 0.95, 0, "rademacher", seed=3), 1024)
    assert moving["motion"] < -3 * moving["motion_half_width"]


def test_measured_friction_is_the_toolkits_where_the_norm_is_far_from_its_boundary(study):
    """The friction the study measures on h_2's velocity is the toolkit's ε_2 at τ = 0 (Σ = diag(2, 1),
    η 2.5e-3, μ 0.95): within 10% (the first-order kernel's accuracy there) beyond three of its
    half-widths, with Gaussian and Rademacher data; with the delay at the radial mode's mean-square
    boundary (τ = 4, Gaussian data) it is below three quarters of the toolkit's beyond three of its
    half-widths, as docs/linear-theory.md says (0.42 of it with 8192 runs): the measurement tells the
    two apart."""
    for data in ("gaussian", "rademacher"):
        row = study.measure(study.parts_case((2.0, 1.0), 2.5e-3, 0.95, 0, data, seed=3), 1024)
        gap = abs(row["friction_measured"] - row["friction_toolkit"])
        assert gap <= 0.1 * abs(row["friction_toolkit"]) + 3 * row["friction_measured_half_width"], (data, row)
    near = study.measure(study.parts_case((2.0, 1.0), 2.5e-3, 0.95, 4, "gaussian", seed=3), 1024)
    assert near["friction_measured"] - 3 * near["friction_measured_half_width"] > 0.75 * near["friction_toolkit"], near


def test_at_low_momentum_the_friction_is_the_data_laws_kernel(study):
    """At μ 0.5 (Σ = diag(2, 1), η 0.01, τ = 0) the velocity averages a few steps and the data law's
    kernel terms decide the friction: measured on 2048 runs it is the toolkit's ε_2 within 15% beyond
    three half-widths, with Gaussian and Rademacher data, while Isserlis's kernel alone (the toolkit's
    without the data law's constants) is further than 40% from it (0.48 and 2.4 times it,
    docs/linear-theory.md section 5)."""
    from amsgd.diffusion.theory.coupling import coefficients_for
    from amsgd.diffusion.theory.linear_recursion import delay_law
    from amsgd.diffusion.theory.norm_coupling import norm_coupled_floor
    from amsgd.diffusion.theory.second_moments import finite_eta_floor

    for data in ("gaussian", "rademacher"):
        case = study.parts_case((2.0, 1.0), 1e-2, 0.5, 0, data, seed=5)
        row = study.measure(case, 2048)
        measured, half_width = row["friction_measured"], row["friction_measured_half_width"]
        assert abs(measured - row["friction_toolkit"]) <= 0.15 * abs(row["friction_toolkit"]) + 3 * half_width, row
        c = coefficients_for(case.problem())
        first = finite_eta_floor(c, 1e-2, 0.5, 0, coupled=False)
        isserlis = norm_coupled_floor(c.rates, c.coupling, c.additive, 1e-2, 0.5, delay_law(0), np.array(first.variances))
        assert abs(isserlis.friction[0] - measured) > 0.4 * abs(measured) + 3 * half_width, (isserlis.friction, row)


def test_stored_study_is_this_code_and_its_table_is_in_the_docs(study):
    """Every stored case's predictions are what the code gives now, the grid is the study's, and
    docs/linear-theory.md holds the renderings of the stored cases (both tables). The parts are
    differences of floors near 1e-2, so they are compared to 1e-10 absolute as well: the solves' last
    digits move with the machine's floating-point kernels."""
    record = json.loads(study.OUT.read_text())
    assert len(record["cases"]) == len(study.grid())
    for row in record["cases"]:
        again = study.predicted(row)
        for name, value in again.items():
            where = (row["spectrum"], row["tau"], row["data"], name)
            assert (row[name] is None) if value is None else value == pytest.approx(row[name], rel=1e-9, abs=1e-10), where
    docs = (ROOT / "docs" / "linear-theory.md").read_text()
    assert study.table(record["cases"]) in docs and study.heavy_table(record["cases"]) in docs


def test_the_docs_numbers_on_the_balances_delta_are_the_studys(study):
    """docs/linear-theory.md (section 5) on the norm balance's δ against the simulated ``E‖h‖² − 1``:
    within 2.4% at τ = 0 with Gaussian data, 9–23% high with Rademacher data, and the near-τ* pair."""
    record = json.loads(study.OUT.read_text())
    text = " ".join((ROOT / "docs" / "linear-theory.md").read_text().split())

    def high(row: dict) -> float:
        return row["delta_toolkit"] / row["delta_measured"] - 1.0

    still = [r for r in record["cases"] if r["tau"] == 0]
    assert max(abs(high(r)) for r in still if r["data"] == "gaussian") <= 0.024 and "within 2.4% at τ = 0" in text
    rademacher = [high(r) for r in still if r["data"] == "rademacher"]
    assert f"{100 * min(rademacher):.0f}–{100 * max(rademacher):.0f}% high with Rademacher data" in text
    (near,) = [r for r in record["cases"] if r["spectrum"] == [2.0, 1.0] and r["mu"] == 0.95 and r["tau"] == 4
               and r["data"] == "gaussian"]  # fmt: skip
    assert f"{near['delta_toolkit']:.4f} against {near['delta_measured']:.4f}" in text


def test_the_kernels_checked_range_is_what_the_study_measured(study):
    """``KERNEL_CUMULANT_MAX`` rests on the stored study (Σ = diag(4, 3, 2, 1), η 5e-4, μ 0.95, τ = 0): at
    Student-t 9 (``q_i`` = 102, taken) the kernel's friction lies inside the runs' 95% interval; at Student-t
    8.5 (``q_i`` = 208) the kernel with its data-law terms lies beyond three of its half-widths, and the
    accuracy note of ν = 8.5 quotes that ratio and the floor's error with the Gaussian kernel."""
    from amsgd import Problem, parse_distribution, predict
    from amsgd.diffusion.theory.report import coupling_accuracy_notes

    rows = json.loads(study.OUT.read_text())["cases"]

    def at(data: str) -> dict:
        (row,) = [r for r in rows if r["data"] == data and r["eta"] == 5e-4 and r["mu"] == 0.95]
        return row

    nine, half = at("student-t:9"), at("student-t:8.5")
    assert nine["friction_unchecked"] == nine["friction_toolkit"]
    assert abs(nine["friction_toolkit"] - nine["friction_measured"]) <= nine["friction_measured_half_width"], nine
    assert half["friction_unchecked"] < half["friction_measured"] - 3 * half["friction_measured_half_width"], half
    assert half["friction_toolkit"] != half["friction_unchecked"]
    law = parse_distribution("student-t:8.5")
    p = predict(Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), eta=5e-4, mu=0.95, distribution=law))
    (note,) = [n for n in coupling_accuracy_notes(p) if "Student-t data (nu = 8.5)" in n]
    ratio = half["friction_unchecked"] / half["friction_measured"]
    assert f"they gave {ratio:.1f} times the runs' friction" in note, note
    assert half["total"] < 0 and f"mu = 0.95 it was {-100 * half['total']:.1f}% above simulation" in note, note
