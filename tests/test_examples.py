"""The examples run (with small sizes) and produce their figure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_limit_vs_simulation_draws_its_figure(tmp_path):
    out = load("limit_vs_simulation").main(str(tmp_path / "fig.png"), iterations=300, paths=8, replicates=16)
    assert out.exists() and out.stat().st_size > 10_000
