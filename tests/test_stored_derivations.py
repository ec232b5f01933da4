"""Derivations kept between processes (amsgd.derivations.stored): loaded results equal derived ones,
a damaged file is derived again, nothing is written when the store is off or cannot be written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sympy as sp

from amsgd.core.distributions import Gaussian, SampledDistribution, StudentT, parse_distribution
from amsgd.derivations import stored
from amsgd.derivations.indexed import indexed_parts
from amsgd.derivations.linearization import coupling_patterns
from amsgd.derivations.phases import derive_phase_formulas
from amsgd.derivations.recursion import derive_time_scale
from amsgd.derivations.sdde import linear_mode_sdde


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty store in tmp_path; every stored function forgets what it holds in memory."""
    monkeypatch.setenv(stored.CACHE_ENV, str(tmp_path))
    functions = (derive_time_scale, derive_phase_formulas, linear_mode_sdde, indexed_parts, coupling_patterns)
    for f in functions:
        f.clear_memory()
    yield tmp_path
    for f in functions:
        f.clear_memory()


def _files(folder):
    return sorted(p.name for p in folder.rglob("*.pickle"))


def test_a_stored_derivation_is_loaded_and_equals_the_derived_one(store):
    before = stored.DERIVED["derive_phase_formulas"]
    derived = derive_phase_formulas()
    assert stored.DERIVED["derive_phase_formulas"] == before + 1
    (name,) = _files(store)
    assert name.startswith("amsgd.derivations.phases.derive_phase_formulas-")
    assert (store / f"derivations-{stored.code_key()[:24]}" / name).is_file()
    derive_phase_formulas.clear_memory()
    loaded = derive_phase_formulas()
    assert stored.DERIVED["derive_phase_formulas"] == before + 1  # loaded, not derived
    assert loaded is not derived and loaded == derived
    assert sp.simplify(loaded.escape_time - derived.escape_time) == 0


@stored.derived_once
def _power_series(order: int, symbol: sp.Symbol) -> sp.Expr:
    """A cheap stand-in derivation with arguments: ``Σ_{k<=order} x^k/k!``."""
    return sp.Add(*(symbol**k / sp.factorial(k) for k in range(order + 1)))


def test_arguments_are_part_of_the_key(store):
    x, y = sp.symbols("x y")
    _power_series.clear_memory()
    two, three, other = _power_series(2, x), _power_series(3, x), _power_series(2, y)
    assert len({two, three, other}) == 3 and len(_files(store)) == 3
    _power_series.clear_memory()
    before = stored.DERIVED["_power_series"]
    assert _power_series(3, x) == three and _power_series(2, y) == other and _power_series(2, x) == two
    assert stored.DERIVED["_power_series"] == before  # all three loaded
    with pytest.raises(TypeError, match="not float"):
        _power_series(2.0, x)
    _power_series.clear_memory()


def test_a_damaged_file_is_derived_again_and_rewritten(store):
    derived = derive_time_scale()
    (path,) = store.rglob("*.pickle")
    path.write_bytes(path.read_bytes()[:40])  # a write cut short
    derive_time_scale.clear_memory()
    before = stored.DERIVED["derive_time_scale"]
    assert derive_time_scale() == derived
    assert stored.DERIVED["derive_time_scale"] == before + 1
    derive_time_scale.clear_memory()
    assert derive_time_scale() == derived and stored.DERIVED["derive_time_scale"] == before + 1


def test_a_file_holding_another_record_is_derived_again_and_rewritten(store):
    """A stored file was served whatever it held: a pickle of 42 printed ``b = 42`` in the document, and
    another derivation's (or another law's) file copied in its place was taken for its own."""
    import pickle

    derived, phases = derive_time_scale(), derive_phase_formulas()
    (path,) = store.rglob("amsgd.derivations.recursion.derive_time_scale-*.pickle")
    (other,) = store.rglob("amsgd.derivations.phases.derive_phase_formulas-*.pickle")
    before = stored.DERIVED["derive_time_scale"]
    for foreign in (pickle.dumps(42), other.read_bytes(), pickle.dumps(("derive_time_scale", "", derived))):
        path.write_bytes(foreign)
        derive_time_scale.clear_memory()
        assert derive_time_scale() == derived
        before += 1
        assert stored.DERIVED["derive_time_scale"] == before  # derived again, and rewritten:
        derive_time_scale.clear_memory()
        assert derive_time_scale() == derived and stored.DERIVED["derive_time_scale"] == before
    assert derive_phase_formulas() == phases


def test_an_empty_cache_variable_is_unset_and_no_other_folder_is_removed(store, monkeypatch):
    """``AMSGD_CACHE_DIR=`` stored into the current folder, whose clean-up of old keys then removed the
    user's own folders named ``derivations-...``."""
    monkeypatch.setenv(stored.CACHE_ENV, " ")
    monkeypatch.setenv("XDG_CACHE_HOME", str(store / "xdg"))
    assert stored.cache_root() == store / "xdg" / "amsgd"
    monkeypatch.setenv(stored.CACHE_ENV, str(store))
    mine = [store / f"derivations-mywork-v{n}" for n in range(stored.KEEP_KEYS + 3)]
    for age, folder in enumerate(mine):
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
        os.utime(folder, (1e9 + age, 1e9 + age))
    derive_time_scale.clear_memory()
    derive_time_scale()
    assert all((folder / "notes.txt").read_text() == "mine" for folder in mine)


def test_a_relative_xdg_folder_or_a_blank_home_is_no_cache_folder(monkeypatch, tmp_path):
    """With ``HOME=""`` the store went to ``/.cache/amsgd``, and a relative ``XDG_CACHE_HOME`` (which the
    XDG specification says to ignore) to a folder under wherever the command ran."""
    monkeypatch.delenv(stored.CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert stored.cache_root() == tmp_path / ".cache" / "amsgd"
    monkeypatch.setenv("HOME", "")
    assert stored.cache_root() is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert stored.cache_root() == tmp_path / "xdg" / "amsgd"


def test_off_and_an_unwritable_folder_keep_results_in_memory_only(store, monkeypatch):
    monkeypatch.setenv(stored.CACHE_ENV, "off")
    assert stored.cache_root() is None
    first = derive_time_scale()
    assert derive_time_scale() is first and _files(store) == []
    blocker = store / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(stored.CACHE_ENV, str(blocker))
    derive_time_scale.clear_memory()
    assert derive_time_scale() == first and _files(store) == []


def test_only_the_most_recent_earlier_keys_are_kept(store):
    old = [store / f"derivations-{n:024d}" for n in range(stored.KEEP_KEYS + 3)]
    for age, folder in enumerate(old):
        folder.mkdir()
        os.utime(folder, (1e9 + age, 1e9 + age))
    derive_time_scale()
    kept = sorted(p.name for p in store.glob("derivations-*"))
    newest = sorted(f.name for f in old[-stored.KEEP_KEYS :])
    assert kept == sorted([*newest, f"derivations-{stored.code_key()[:24]}"])


def test_a_named_law_is_stored_under_text_that_reads_back_exactly(store):
    law = StudentT(6.123456789)
    text = stored.law_text(law)
    assert parse_distribution(text).nu == law.nu and text == "student-t:6.123456789"
    assert stored.law_text(Gaussian()) == "gaussian"
    assert stored.law_text(SampledDistribution(lambda rng, n, d: rng.standard_normal((n, d)), "mine")) is None
    before = stored.DERIVED["indexed_parts"]
    derived = indexed_parts(law)
    indexed_parts.clear_memory()
    loaded = indexed_parts(StudentT(6.123456789))
    assert stored.DERIVED["indexed_parts"] == before + 1 and loaded is not derived
    assert loaded.stationary_points == derived.stationary_points and loaded.pair == derived.pair
    assert loaded.error_term == derived.error_term
    assert {k: vars(m) for k, m in loaded.modes.items()} == {k: vars(m) for k, m in derived.modes.items()}
    assert any(".indexed_parts-" in name for name in _files(store))


def test_a_loaded_expression_keeps_the_form_it_was_derived_in(store):
    """The coefficients' variances are factored, ``2 (λ_1² + λ_2²)``; unpickled with evaluation that
    would come back distributed, ``2 λ_1² + 2 λ_2²``, and the documents would print it so."""
    derived = coupling_patterns(Gaussian()).coupling
    assert any(isinstance(e, sp.Mul) and any(isinstance(f, sp.Add) for f in e.args) for e in derived)
    coupling_patterns.clear_memory()
    loaded = coupling_patterns(Gaussian()).coupling
    assert [sp.srepr(e) for e in loaded] == [sp.srepr(e) for e in derived]


PROBE = """
import hashlib, json
from amsgd import Problem, predict
from amsgd.derivations import stored
problem = Problem.from_spectrum((4, 3, 2, 1), eta=2e-3, mu=0.9)
theory = predict(problem)
text = json.dumps(theory.to_dict(), sort_keys=True, default=str) + theory.document("markdown")
print(json.dumps({"derived": dict(stored.DERIVED), "json": hashlib.sha256(text.encode()).hexdigest()}))
"""


@pytest.mark.slow
def test_a_second_process_loads_every_stored_derivation_and_reports_the_same(tmp_path):
    env = dict(os.environ, **{stored.CACHE_ENV: str(tmp_path)})

    def probe() -> dict:
        done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = probe(), probe()
    assert {"derive_time_scale", "derive_phase_formulas", "linear_mode_sdde", "indexed_parts", "coupling_patterns",
            "delay_differential_limit"} <= set(first["derived"])  # fmt: skip
    assert second["derived"] == {} and second["json"] == first["json"]
