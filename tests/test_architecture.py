"""The layers of docs/architecture.md hold: the import contract, an acyclic folder graph, a current diagram,
and a command line that answers --help and bad input before any heavy library loads."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sympy", "numba", "jax", "dask", "distributed", "xarray", "matplotlib", "scipy")


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "docs" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return _graph_module().mirror(tmp_path_factory.mktemp("installed"))


def test_import_contract_is_kept(tree):
    env = dict(os.environ, PYTHONPATH=str(tree))
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), str(ROOT / "pyproject.toml")], cwd=tree, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "amsgd layers KEPT" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tree, tmp_path):
    broken = _graph_module().mirror(tmp_path)
    plan = broken / "amsgd" / "simulate" / "plan.py"
    plan.write_text(plan.read_text() + "\n\ndef _upward():\n    from amsgd.diffusion.theory import predict\n")
    env = dict(os.environ, PYTHONPATH=str(broken))
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), str(ROOT / "pyproject.toml")], cwd=broken, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "amsgd.simulate.plan -> amsgd.diffusion.theory" in result.stdout


def test_folder_graph_is_acyclic_and_its_diagram_current(tree):
    graph = _graph_module()
    edges = graph.folder_edges(tree)
    assert graph.cycles(edges) == []
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    committed = text.split(graph.BEGIN, 1)[1].split(graph.END, 1)[0].strip()
    assert committed == graph.mermaid(edges), "run: python docs/import_graph.py"


LIGHT_COMMANDS = [
    ["--help"],
    *([command, "--help"] for command in ("derive", "simulate", "integrate", "sweep", "validate", "figures")),
    ["derive", "--eta", "-1"],
    ["derive", "--delta-sq", "0.7"],
    ["derive", "--tradeoff-mu", "1.5"],
    ["derive", "--distribution", "cauchy"],
    ["derive", "--out", "/no/such/folder/x.json"],
    ["simulate", "--mu", "1"],
    ["simulate", "--delay", "uniform:5-2"],
    ["simulate", "--covariance", "/no/such/file.npy"],
    ["simulate", "--out", "/no/such/folder/x.nc"],
    ["integrate", "--spectrum", "1"],
    ["integrate", "--plot", "/no/such/folder/c.png"],
    ["sweep", "--tau", "5:1", "--seed", "1", "--out", "x.nc"],
    ["sweep", "--tau", "0:10:5", "--seed", "1", "--out", "/no/such/folder/x.nc"],
    ["validate", "--only", "bogus", "--out", "/tmp/amsgd-never-written"],
    ["validate", "--seed", "-3", "--out", "/tmp/amsgd-never-written"],
    ["figures", "--replicates", "0", "--out", "/tmp/amsgd-never-written"],
]


@pytest.mark.parametrize("argv", LIGHT_COMMANDS, ids=lambda a: " ".join(a))
def test_help_and_bad_input_return_before_heavy_imports(argv):
    script = (
        "import json, sys\n"
        "from amsgd.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules]]), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=ROOT)
    code, heavy = json.loads(result.stderr.strip().splitlines()[-1])
    assert heavy == [], heavy
    if argv[-1] == "--help":
        assert code == 0 and "usage:" in result.stdout
    else:
        assert code == 2 and len(result.stderr.strip().splitlines()) == 2  # one message, then the probe


def test_the_help_lists_every_integration_scheme():
    """``amsgd integrate --help`` names the schemes without importing them; the names must not drift."""
    from amsgd.cli.integrate import SCHEME_NAMES
    from amsgd.diffusion.schemes import SCHEMES

    assert SCHEME_NAMES.split(", ") == list(SCHEMES)
