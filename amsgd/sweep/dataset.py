"""The Dataset of a sweep: one record per grid point assembled into xarray, written and read as NetCDF.

One assembly for every kind of point: the variables are named by the sweep's
:class:`~amsgd.sweep.points.PointKind` (streaming PCA or another model).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.core.files import atomic_path, atomic_write_bytes, check_input_file, netcdf_file
from amsgd.sweep.sweep import Sweep

if TYPE_CHECKING:
    import xarray


_COMMON_DESCRIPTIONS = {
    "point": "grid point number n; its random stream is SeedSequence(seed, spawn_key=(n,))",
    "replicates_kept": "replicates that did not diverge",
    "diverged_fraction": "fraction of replicates that diverged (excluded from every mean)",
}


def _stationary_description(estimate: str) -> str:
    return (
        "1 if the averaging window is stationary; 0 if its two halves drift apart (the paired 99% "
        "Student-t interval of each replicate's first-half minus second-half time average excludes 0 and the "
        f"difference exceeds 5% of {estimate}: the window starts too early and {estimate} is biased); "
        "-1 if not checked (fewer than two replicates kept) or undecided (the halves differ by more than 20% "
        "of it, but not significantly: too few replicates to tell)"
    )


def assemble(sweep: Sweep, records: Mapping[int, dict]) -> xarray.Dataset:
    """The sweep's Dataset from one record per grid point (all points must be present).

    The variables are those the sweep's :class:`~amsgd.sweep.points.PointKind` names: each estimate
    with its 95% interval, the replicates kept and diverged, the mean curve over ``iteration``, the
    predictions and the stationarity flag (docs/sweep.md lists them for PCA and for a model)."""
    import xarray as xr

    grid = sweep.grid
    coords = dict(zip(grid.dims, (np.array(axis) for axis in grid.axes), strict=True))
    coords["iteration"] = sweep.iterations
    ds = xr.Dataset(_variables(sweep, [records[i] for i in range(grid.size)]), coords=coords)
    _describe(ds, sweep)
    if len(grid.distributions) == 1:
        ds = ds.isel(distribution=0)  # keeps the distribution as a scalar coordinate
    return ds


def _variables(sweep: Sweep, ordered: list[dict]) -> dict:
    """The Dataset's variables ``name: (dims, array)`` from the records in grid order."""
    grid, kind = sweep.grid, sweep.points
    shape, dims = grid.shape, grid.dims

    def field_array(name: str, position: int | None = None, dtype: type = float) -> np.ndarray:
        values = [r[name] if position is None else r[name][position] for r in ordered]
        return np.array(values, dtype=dtype).reshape(shape)

    data: dict = {"point": (dims, np.arange(grid.size, dtype=np.int64).reshape(shape))}
    for name in kind.estimates:
        data[name] = (dims, field_array(name, 0))
        data[f"{name}_ci_low"] = (dims, field_array(name, 1))
        data[f"{name}_ci_high"] = (dims, field_array(name, 2))
    data["replicates_kept"] = (dims, field_array("replicates_kept", dtype=np.int64))
    data["diverged_fraction"] = (dims, field_array("diverged_fraction"))
    iterations = sweep.iterations
    curves = np.array([r[kind.curve] for r in ordered], dtype=float).reshape(shape + (iterations.size,))
    data[kind.curve] = ((*dims, "iteration"), curves)
    for name, dtype in kind.predicted:
        data[name] = (dims, field_array(name, dtype=dtype))
    data["stationary"] = (dims, field_array("stationary", dtype=np.int8))
    return data


def _describe(ds: xarray.Dataset, sweep: Sweep) -> None:
    """Describe every variable and coordinate of ``ds`` and attach the sweep's attributes (in place)."""
    grid, kind = sweep.grid, sweep.points
    descriptions = {**_COMMON_DESCRIPTIONS, **kind.descriptions,
                    "stationary": _stationary_description(kind.estimates[1])}  # fmt: skip
    for name, text in descriptions.items():
        ds[name].attrs["description"] = text
    for name in kind.estimates:
        for bound in ("ci_low", "ci_high"):
            ds[f"{name}_{bound}"].attrs["description"] = f"{bound[3:]} end of the 95% Student-t interval of {name}"
    ds["tau" if grid.delay_axis == "tau" else "workers"].attrs.update(
        {"units": "iterations", "long_name": "constant delay tau"}
        if grid.delay_axis == "tau"
        else {"units": "workers", "long_name": "round-robin workers M (delay tau = M - 1)"}
    )
    ds["iteration"].attrs["units"] = "iterations"
    ds["eta"].attrs["long_name"] = "step size eta"
    ds["mu"].attrs["long_name"] = "momentum mu"
    described = kind.attributes(grid.distributions)
    ds.attrs.update(
        title=described.pop("title"),
        manifest=json.dumps(sweep.manifest()),
        **described,
        confidence="95% Student-t intervals across non-diverged replicates",
        seeding="point n simulates with numpy SeedSequence(seed, spawn_key=(n,))",
        steps=sweep.steps,
        replicates=sweep.replicates,
        seed=sweep.seed,
        window_start=sweep.window_start,
        start=sweep.start,
    )


def digest_path(path: str | os.PathLike) -> Path:
    """Where the SHA-256 of a file written by :func:`write_dataset` is kept: ``.NAME.sha256`` beside the
    file (a symbolic link's target)."""
    target = Path(os.path.realpath(path))
    return target.with_name(f".{target.name}.sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_dataset(ds: xarray.Dataset, out: Path) -> None:
    """Write ``ds`` to NetCDF (h5netcdf) at ``out`` through a temporary file and a rename, then its
    SHA-256 to :func:`digest_path`. The old digest is removed first, so that a write cut short leaves
    none rather than one of another file."""
    digest = digest_path(out)
    digest.unlink(missing_ok=True)
    with atomic_path(out) as tmp:
        netcdf_file(ds, tmp)
        written = _sha256(tmp)
    name = Path(os.path.realpath(out)).name  # the file's own name (a link's target), as sha256sum -c reads it
    atomic_write_bytes(digest, f"{written}  {name}\n".encode("ascii"))


def _recorded_digest(source: Path) -> str | None:
    """The SHA-256 written beside ``source``; None without one (a file copied alone) or where it is
    unreadable (then the file is read unchecked, as without one)."""
    try:
        words = digest_path(source).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return words[0] if words and re.fullmatch("[0-9a-f]{64}", words[0]) else None


class UnreadableSweepFile(ProblemError):
    """A file that cannot be read as NetCDF at all: damaged, truncated, or of another kind."""


def read_dataset(path: str | os.PathLike) -> xarray.Dataset:
    """Load a sweep file into memory (the file is closed on return).

    A file that cannot be read as NetCDF raises :class:`UnreadableSweepFile`; a NetCDF file that is
    not a sweep, :class:`~amsgd.core.errors.ProblemError`.
    """
    source, ds = load_netcdf(path, "sweep file", "amsgd sweep", "give the FILE.nc of amsgd sweep --out",
                             "remove it and run the sweep again with --resume")  # fmt: skip
    if "manifest" not in ds.attrs or not ("stationary_error" in ds or "stationary_loss" in ds):
        raise ProblemError(f"{str(source)!r} is a NetCDF file but not a sweep written by amsgd sweep")
    return ds


def load_netcdf(
    path: str | os.PathLike, what: str, writer: str, hint: str, changed_hint: str
) -> tuple[Path, xarray.Dataset]:
    """The checked path and the NetCDF file's Dataset, loaded into memory (the file is closed on return);
    :class:`UnreadableSweepFile`, naming the command that writes such files (``writer``) and what to do
    (``hint``), when it cannot be read as NetCDF at all. A file whose SHA-256 differs from the one
    :func:`write_dataset` wrote beside it is refused before it is opened, with ``changed_hint``."""
    source = check_input_file(path, what)
    recorded = _recorded_digest(source)
    if recorded is not None and _sha256(source) != recorded:
        raise ProblemError(
            f"{str(source)!r} has changed since {writer} wrote it (its SHA-256 is not the one in "
            f"{digest_path(source).name}): it may be damaged, so it is not opened (a damaged HDF5 file can "
            f"hang the library reading it); {changed_hint}, or, if the change is yours, remove {digest_path(source).name}"
        )
    import xarray as xr

    try:
        with xr.open_dataset(source, engine="h5netcdf") as ds:
            return source, ds.load()
    except (OSError, ValueError, KeyError, RuntimeError):  # KeyError, RuntimeError: damaged HDF5 metadata
        raise UnreadableSweepFile(f"{str(source)!r} is not a NetCDF file written by {writer}; {hint}") from None

