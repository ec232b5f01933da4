"""The benchmark scripts as modules, for the tests of the studies they hold."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

FOLDER = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark_module(monkeypatch: pytest.MonkeyPatch, name: str) -> ModuleType:
    """``benchmarks/NAME.py`` imported, with its folder on the path (the scripts import their siblings)."""
    monkeypatch.syspath_prepend(str(FOLDER))
    return importlib.import_module(name)
