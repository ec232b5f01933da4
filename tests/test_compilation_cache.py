"""JAX's compiled programs kept between processes (amsgd.simulate.compilation_cache)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache as jax_cache

from amsgd.core.models import ModelProblem, split_data
from amsgd.simulate import compilation_cache
from amsgd.simulate.compilation_cache import keep_compilations
from amsgd.simulate.model_engine import simulate_model
from amsgd.simulate.models import compilations_during


@pytest.fixture
def fresh(monkeypatch) -> Iterator[None]:
    """No cache folder chosen yet in this process; the worker's own choice restored afterwards."""
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    jax.config.update("jax_compilation_cache_dir", None)
    keep_compilations.cache_clear()
    jax_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
        keep_compilations.cache_clear()
        jax_cache.reset_cache()


def _hits_during(task):
    """``task()``'s result and how many programs JAX loaded from the persistent cache while it ran."""
    hits = []

    def listen(event: str, **kwargs) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    jax.monitoring.register_event_listener(listen)
    try:
        result = task()
    finally:
        jax.monitoring.unregister_event_listener(listen)
    return result, len(hits)


def test_a_model_run_compiled_once_is_loaded_from_the_folder_once_the_memory_is_cleared(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("AMSGD_CACHE_DIR", str(tmp_path))
    assert keep_compilations() == tmp_path / compilation_cache.FOLDER
    assert jax.config.jax_compilation_cache_max_size == compilation_cache.MAX_BYTES
    x = np.random.default_rng(0).normal(size=(60, 3))
    data = split_data("cache", x, x @ np.array([1.0, -2.0, 0.5]), classification=False)
    problem = ModelProblem("least-squares", data, eta=0.01, batch=4)

    def run() -> np.ndarray:
        return simulate_model(problem, 37, 3, rng=5, record_every=10, progress=False).values["train_loss"]

    first = run()
    stored = sorted(p.name for p in (tmp_path / compilation_cache.FOLDER).glob("jit_advance-*-cache"))
    assert stored, "the simulator's step program was not written to the folder"
    jax.clear_caches()  # what a new process starts from: nothing compiled in memory
    (again, compiled), hits = _hits_during(lambda: compilations_during(run))
    assert hits >= 1 and "jit(advance)" in compiled  # obtained again by this process, from the folder
    np.testing.assert_array_equal(again, first)


def test_off_keeps_nothing_and_a_folder_set_for_jax_is_left_alone(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("AMSGD_CACHE_DIR", "off")
    assert keep_compilations() is None and jax.config.jax_compilation_cache_dir is None
    keep_compilations.cache_clear()
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "own"))
    monkeypatch.setenv("AMSGD_CACHE_DIR", str(tmp_path / "amsgd"))
    assert keep_compilations() == tmp_path / "own"
    assert not (tmp_path / "amsgd").exists()


def test_a_folder_that_cannot_be_made_keeps_nothing(fresh, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("AMSGD_CACHE_DIR", str(blocker))
    assert keep_compilations() is None and jax.config.jax_compilation_cache_dir is None
    assert Path(blocker).is_file()
