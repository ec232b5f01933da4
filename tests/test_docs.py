"""The Python blocks of the documentation run, and where a page shows the output, it is the output."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
from pathlib import Path

import pytest

from helpers.benchmarks import benchmark_module

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```(?:\n\nOutput:\n\n```\n(.*?)```)?", re.S)


def blocks(page: str) -> list[tuple[str, str | None]]:
    return BLOCK.findall((ROOT / page).read_text())


def run_block(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_example__"})
    return out.getvalue()


@pytest.mark.parametrize(
    "page", ["docs/linear-theory.md", "docs/limits.md", "docs/simulate.md", "docs/models.md", "README.md"]
)
@pytest.mark.slow
def test_documented_python_runs_and_prints_what_the_page_shows(page):
    found = blocks(page)
    assert found, f"no Python block in {page}"
    for code, shown in found:
        printed = run_block(code)
        if shown:
            assert printed == shown


def test_performance_page_is_what_the_benchmarks_measured(monkeypatch):
    """docs/performance.md's table is the rendering of benchmarks/performance.json, and every benchmark
    script of the runner exists and emits results (no timing is asserted)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the runner imports its sibling ratios.py
    spec = importlib.util.spec_from_file_location("performance", ROOT / "benchmarks" / "performance.py")
    performance = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(performance)
    record = json.loads(performance.RECORD.read_text())
    assert set(record["benchmarks"]) == set(performance.BENCHMARKS)
    for name, (script, _, _) in performance.BENCHMARKS.items():
        assert "emit(" in (ROOT / "benchmarks" / script).read_text(), script
        assert record["benchmarks"][name]["results"], name
    assert performance.page_block(performance.PAGE.read_text()) == performance.render(record)


@pytest.fixture
def study(monkeypatch):
    """benchmarks/floor_accuracy.py as a module."""
    return benchmark_module(monkeypatch, "floor_accuracy")


def test_floor_accuracy_table_is_what_the_study_measured(study):
    """docs/linear-theory.md's table of the accuracy study is the rendering of benchmarks/floor_accuracy.json,
    whose summaries are those of its cases, and the text's count in the target's terms is the file's."""
    record = json.loads(study.OUT.read_text())
    assert study.table(record["groups"]) in (ROOT / "docs" / "linear-theory.md").read_text()
    assert study.summary(record["cases"]) == record["groups"]
    assert study.scope(record["cases"]) == record["scope"]
    scope = record["scope"]
    stated = f"{scope['cases']} of the {len(record['cases'])} cases are in scope and {scope['within']} of them within"
    assert stated in " ".join((ROOT / "docs" / "linear-theory.md").read_text().split())  # the text's line breaks aside
    assert len(record["cases"]) == len(study.grid())


def test_floor_accuracy_measures_a_case(study):
    """The study's measurement on one small case: the simulated floor of 64 runs, with its interval,
    holds both predictions within its 99% half-width (the 95% one scaled) and the study's target: the
    runs simulate the case that is predicted (η twice as large would double the floor)."""
    from scipy import stats

    case = study.Case("tau0", (2.0, 1.0), 1e-2, 0.5, "constant:0", "gaussian", 7)
    row = study.measure(case, 64)
    assert row["steps"] == 4000 and row["replicates"] == 64
    half_width = 0.5 * (row["ci_high"] - row["ci_low"]) * stats.norm.ppf(0.995) / stats.t.ppf(0.975, 63)
    for name in ("coupled", "first_order"):
        value = row[name]["value"]
        assert abs(row["simulated"] - value) <= half_width + study.TARGET * value, name
        assert row[name]["error"] == pytest.approx(row["simulated"] / value - 1.0)


def test_floor_accuracy_cases_hold_the_predictions_of_the_code(study):
    """Every stored case's predictions are what the code gives now (``--predict-only`` rewrites them
    after a change of the theory, keeping the simulations), so the study's table speaks of this code."""
    record = json.loads(study.OUT.read_text())
    for row in record["cases"]:
        again = study.repredicted(row)
        for name in ("coupled", "first_order"):
            assert again[name]["value"] == pytest.approx(row[name]["value"], rel=1e-9), (study.describe(row), name)
            assert again[name]["within"] == row[name]["within"]


def test_the_student_t_accuracy_note_quotes_the_accuracy_study(study):
    """The accuracy note of Student-t data at ν = 9 gives the study's errors at η 5e-4 (ν = 9 at μ <= 0.9 and
    0.95, ν = 10 at μ 0.95) and the fall of the floor from ν = 8 to 9 beside the runs' (μ 0.95)."""
    from amsgd import Problem, parse_distribution, predict
    from amsgd.diffusion.theory.report import coupling_accuracy_notes

    rows = json.loads(study.OUT.read_text())["cases"]

    def at(nu: int, mu: float, eta: float = 5e-4) -> dict:
        (row,) = [r for r in rows if r["data"] == f"student-t:{nu}" and r["eta"] == eta and r["mu"] == mu]
        return row

    law = parse_distribution("student-t:9")
    problem = Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), eta=5e-4, mu=0.95, distribution=law)
    (note,) = [n for n in coupling_accuracy_notes(predict(problem)) if "Student-t data (nu = 9)" in n]
    lower_momenta = ((0.9, 5e-4), (0.7, 1.5e-3), (0.5, 2e-3))
    below = sorted(100 * at(9, mu, eta)["coupled"]["error"] for mu, eta in lower_momenta)
    ninth, tenth = at(9, 0.95), at(10, 0.95)
    floor_fall = 100 * (1 - ninth["coupled"]["value"] / at(8, 0.95)["coupled"]["value"])
    runs_fall = 100 * (1 - ninth["simulated"] / at(8, 0.95)["simulated"])
    for quoted in (f"{tenth['coupled']['error'] * 100:.1f}% below simulation at mu = 0.95",
                   f"at nu = 9 {below[0]:.1f}% to {below[-1]:.1f}% below at mu <= 0.9",
                   f"and {100 * ninth['coupled']['error']:.1f}% below at mu = 0.95",
                   f"falls by {floor_fall:.1f}% from nu = 8 to 9 where the runs' fell by {runs_fall:.1f}%"):  # fmt: skip
        assert quoted in note, (quoted, note)


def test_readme_numbers_are_the_ones_the_script_measured():
    spec = importlib.util.spec_from_file_location("readme_numbers", ROOT / "benchmarks" / "readme_numbers.py")
    numbers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(numbers)
    record = json.loads(numbers.RECORD.read_text())
    assert set(record["runs"]) == set(numbers.RUNS)
    assert numbers.readme_block((ROOT / "README.md").read_text()) == numbers.render(record)


def test_every_entry_point_of_the_api_index_imports_from_its_package():
    """docs/api/index.md names each package's entry points: ``from PACKAGE import NAME`` works for every
    one (amsgd.sweep and amsgd.figures once documented names they did not export)."""
    import importlib

    rows = re.findall(r"^\| \[(amsgd[\w.]*)\]\([\w.]+\) \| (.+) \|$", (ROOT / "docs/api/index.md").read_text(), re.M)
    assert len(rows) == 10
    missing = [(package, name) for package, names in rows for name in re.findall(r"`(\w+)`", names)
               if not hasattr(importlib.import_module(package), name)]  # fmt: skip
    assert missing == []


def test_the_committed_derivation_documents_are_what_derive_writes_now():
    """docs/derivation.md and docs/derivation.tex are `amsgd derive`'s documents for the default problem
    (README: regenerate with `amsgd derive --format markdown --out docs/derivation.md`, and latex)."""
    from amsgd import Problem, predict

    prediction = predict(Problem.from_spectrum())
    for fmt, name in (("markdown", "derivation.md"), ("latex", "derivation.tex")):
        assert (ROOT / "docs" / name).read_text() == prediction.document(fmt), f"regenerate docs/{name}"
