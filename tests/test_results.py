"""One result convention: stage results are frozen dataclasses with a JSON-safe ``to_dict()`` and,
where they have axes, ``to_xarray()``; the same quantity keeps its name across results."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from amsgd import Problem, predict
from amsgd.diffusion.ode import integrate_ode
from amsgd.diffusion.sme import integrate_sme
from amsgd.simulate import simulate


def _json_safe(document: dict) -> dict:
    return json.loads(json.dumps(document, allow_nan=False))


@pytest.fixture(scope="module")
def results():
    problem = Problem.from_spectrum((3.0, 1.0), eta=1e-3, mu=0.5)
    return {
        "predictions": predict(problem),
        "simulation": simulate(problem, 200, 8, rng=1),
        "ode": integrate_ode(problem, np.array([0.6, 0.8]), np.arange(0, 100, 10)),
        "sme": integrate_sme(problem, np.array([1.0, 0.0]), 40, paths=3, rng=2),
    }


@pytest.mark.parametrize("name", ["predictions", "simulation", "ode", "sme"])
def test_results_are_frozen_and_json_safe(results, name):
    result = results[name]
    assert dataclasses.is_dataclass(result)
    field = dataclasses.fields(result)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, field, None)
    assert isinstance(_json_safe(result.to_dict()), dict)


@pytest.mark.parametrize(("name", "dims"), [("simulation", {"replicate", "iteration"}), ("ode", {"iteration", "coordinate"}),
                                            ("sme", {"iteration", "path"})])  # fmt: skip
def test_results_with_axes_give_datasets(results, name, dims):
    assert dims <= set(results[name].to_xarray().sizes)


def test_the_same_quantity_has_the_same_name(results):
    simulated = results["simulation"].to_dict()
    predicted = results["predictions"].to_dict()
    assert "stationary_error" in simulated and "stationary_error" in predicted
    tradeoff = results["predictions"].tradeoff
    assert set(tradeoff.to_xarray().data_vars) >= {"floor", "stable", "max_workers", "best_mu_rate"}
    assert {"floor", "stable", "max_workers", "best_mu_rate"} <= set(predicted["tradeoff"])
