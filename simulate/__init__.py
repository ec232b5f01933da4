"""The discrete algorithm: vectorised Monte Carlo simulation of Async-MSGD under its delay models.

``simulate(problem, steps, replicates, rng=...)`` returns a :class:`SimulationResult` (trajectories,
95% confidence intervals, ``to_dict()``, ``to_xarray()``). The modules load on first use, so that
importing this package does not compile the kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amsgd.core.lazy import lazy_exports

if TYPE_CHECKING:
    from amsgd.simulate.engine import simulate
    from amsgd.simulate.plan import DIVERGENCE_NORM
    from amsgd.simulate.result import SimulationResult

__all__ = ["DIVERGENCE_NORM", "SimulationResult", "simulate"]

__getattr__ = lazy_exports(__name__, {"simulate": "amsgd.simulate.engine", "DIVERGENCE_NORM": "amsgd.simulate.plan",
                                      "SimulationResult": "amsgd.simulate.result"})  # fmt: skip
