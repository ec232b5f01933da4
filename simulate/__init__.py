"""The discrete algorithm: vectorised Monte Carlo simulation of Async-MSGD under its delay models.

``simulate(problem, steps, replicates, rng=...)`` returns a :class:`SimulationResult` (trajectories,
95% confidence intervals, ``to_dict()``, ``to_xarray()``). The modules load on first use, so that
importing this package does not compile the kernels.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amsgd.simulate.engine import simulate
    from amsgd.simulate.plan import DIVERGENCE_NORM
    from amsgd.simulate.result import SimulationResult

__all__ = ["DIVERGENCE_NORM", "SimulationResult", "simulate"]

_LAZY = {
    "simulate": "amsgd.simulate.engine",
    "DIVERGENCE_NORM": "amsgd.simulate.plan",
    "SimulationResult": "amsgd.simulate.result",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
