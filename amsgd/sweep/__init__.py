"""Parameter sweeps on Dask, from a laptop to a cluster: a grid of problems simulated and predicted
point by point, persisted as it goes, assembled into one xarray Dataset (NetCDF).

:class:`~amsgd.sweep.sweep.Sweep` describes a sweep (streaming PCA or any other model; what differs
between them is in :mod:`amsgd.sweep.points`) on a :class:`~amsgd.sweep.grid.SweepGrid` (its axes,
written as :func:`~amsgd.sweep.grid.parse_axis` reads them), :func:`~amsgd.sweep.run.run_sweep` runs it
(a :class:`~amsgd.sweep.run.SweepOutcome`) and :func:`~amsgd.sweep.dataset.read_dataset` reads its
file back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amsgd.core.lazy import lazy_exports

if TYPE_CHECKING:
    from amsgd.sweep.dataset import read_dataset
    from amsgd.sweep.grid import SweepGrid, parse_axis
    from amsgd.sweep.run import SweepOutcome, run_sweep
    from amsgd.sweep.sweep import Sweep

__all__ = ["Sweep", "SweepGrid", "SweepOutcome", "parse_axis", "read_dataset", "run_sweep"]
# xarray and Dask load on first use
__getattr__ = lazy_exports(__name__, {"Sweep": "amsgd.sweep.sweep", "SweepGrid": "amsgd.sweep.grid",
                                      "parse_axis": "amsgd.sweep.grid", "run_sweep": "amsgd.sweep.run",
                                      "SweepOutcome": "amsgd.sweep.run", "read_dataset": "amsgd.sweep.dataset"})  # fmt: skip
