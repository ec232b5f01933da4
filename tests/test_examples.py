"""The examples run (with small sizes) and produce their figure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_limit_vs_simulation_draws_its_figure(tmp_path):
    out = load("limit_vs_simulation").main(str(tmp_path / "fig.png"), iterations=300, paths=8, replicates=16)
    assert out.exists() and out.stat().st_size > 10_000


def test_momentum_vs_delay_draws_its_figure(tmp_path, capsys):
    out = load("momentum_vs_delay").main(str(tmp_path / "fig.png"), steps=600, replicates=16)
    assert out.exists() and out.stat().st_size > 10_000
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 9  # three momenta, three delays each
    theory = {(float(r[0]), int(r[1])): float(r[2]) for r in rows}
    for mu in (0.7, 0.8, 0.9):  # the finite-η floor rises with the delay and with the momentum
        floors = [v for (m, _), v in sorted(theory.items()) if m == mu]
        assert floors == sorted(floors) and len(set(floors)) == 3
    assert theory[(0.7, 0)] < theory[(0.8, 0)] < theory[(0.9, 0)]


@pytest.mark.slow
def test_workers_and_momentum_draws_its_figure(tmp_path, capsys):
    out = load("workers_and_momentum").main(str(tmp_path / "fig.png"), steps=80, replicates=2)
    assert out.exists() and out.stat().st_size > 10_000
    lines = capsys.readouterr().out.splitlines()
    assert "largest stable mu" in lines[1]  # the advice's table first
    cells = [line.split() for line in lines]
    verdicts = [c[2] for c in cells if len(c) > 2 and c[0].isdigit() and c[2] in ("stable", "unstable")]
    assert len(verdicts) == 15 and verdicts[0] == "stable" and verdicts[-1] == "unstable"  # M = 1, μ = 0; M = 32, μ = 0.9


@pytest.mark.parametrize("name", ["limit_vs_simulation", "momentum_vs_delay", "workers_and_momentum"])
@pytest.mark.parametrize("out, words", [("no-such-folder/fig.png", "does not exist"), ("fig.txt", "figure format")])
def test_a_figure_that_cannot_be_written_is_refused_before_the_work(name, out, words, tmp_path, monkeypatch):
    """A missing folder or a suffix matplotlib does not write failed only once the figure was saved,
    after the whole computation (16 to 45 s)."""
    from amsgd import ProblemError

    module = load(name)
    monkeypatch.setattr(module, "new_figure", lambda *a, **k: pytest.fail("the work began"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProblemError, match=words):
        module.main(out)
