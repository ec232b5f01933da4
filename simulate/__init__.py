"""The discrete algorithm: vectorised Monte Carlo simulation of Async-MSGD and its delay models.

``simulate(problem, steps, replicates, rng=...)`` returns a :class:`SimulationResult` (trajectories,
95% confidence intervals, ``summary()``, ``to_xarray()``). The simulator's modules are loaded on
first use, so importing the delay models (which :mod:`amsgd.problem` does) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amsgd.simulate.engine import DIVERGENCE_NORM, simulate
    from amsgd.simulate.result import Estimate, SimulationResult

__all__ = ["DIVERGENCE_NORM", "Estimate", "SimulationResult", "simulate"]

_LAZY = {
    "simulate": "amsgd.simulate.engine",
    "DIVERGENCE_NORM": "amsgd.simulate.engine",
    "SimulationResult": "amsgd.simulate.result",
    "Estimate": "amsgd.simulate.result",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
