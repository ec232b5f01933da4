"""Comparisons of sweep Datasets shared by the sweep tests (not part of the package)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def assert_same(ds: xr.Dataset, reference: xr.Dataset) -> None:
    """``ds`` is ``reference``: identical in xarray's sense, and every value bit for bit."""
    xr.testing.assert_identical(ds, reference)
    for name, variable in reference.variables.items():
        assert np.asarray(ds[name].values).tobytes() == np.asarray(variable.values).tobytes(), name


class Interrupted(Exception):
    """Raised from a point callback to stop a sweep part-way, as an interruption would."""
