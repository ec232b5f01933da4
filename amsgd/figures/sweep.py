"""Figures of a sweep file (``amsgd sweep``): measured against predicted error over (μ, delay).

:func:`sweep_figures` draws, for every step size η (and data distribution) in the sweep:

* ``sweep_heatmaps*.png``: the measured stationary error, the predicted floor (the finite-η floor of
  ``amsgd derive``; in files of earlier formats, without it, the exact linearised floor) and their
  ratio over momentum μ × delay τ (or workers M), with the largest stable delay τ*(μ) of the
  linear theory drawn over them (an arrowhead at the edge where it lies beyond the grid); grey cells
  mostly diverged (measured: more than half the runs, :data:`MOSTLY_DIVERGED`) or have no prediction
  (predicted: linearly unstable, or no theory);
  hatched cells have an averaging window not shown stationary (variable ``stationary`` 0, drifting:
  the estimate is biased by the transient, not a property of μ and τ; or −1, undecided or not checked);
* ``sweep_error_vs_delay*.png``: the measured stationary error against the delay, one curve per μ
  with its 95% intervals (mostly diverged points left out), beside the predicted floor (dashed) and
  the diffusion floor (dotted), the published experiment's picture; open markers: window not shown
  stationary;
* ``sweep_best_mu*.png``: the best momentum per worker count M (τ = M − 1 for a round-robin
  server): the μ with the lowest measured final and stationary error, and the largest μ on the
  grid that the linear theory predicts stable at that delay (τ* ≥ τ). The predicted floor itself
  grows like 1/(1 − μ), so it alone would always pick the smallest μ.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray


#: A point whose runs diverged more than this share is left out of the figures of measured error: the
#: mean of the few that did not is not the algorithm's error (the same rule as the validation's).
MOSTLY_DIVERGED = 0.5
#: The variables of a streaming-PCA sweep that the figures draw (``stationary``, ``mean_square_stable`` and
#: ``finite_eta_floor`` are optional: files of earlier formats lack them and draw without their marks, and
#: with the linearised floor as the prediction).
DRAWN = ("stationary_error", "stationary_error_ci_low", "stationary_error_ci_high", "final_error", "linearized_floor",
         "diffusion_floor", "diverged_fraction", "tau_max")  # fmt: skip


def _predicted_floor(ds: xarray.Dataset) -> tuple[xarray.DataArray, str]:
    """The predicted floor and its name: the finite-η floor (``amsgd derive``'s), else, in a file of an
    earlier format, the exact linearised floor; NaN where it is infinite or the linearisation's second
    moments grow (``mean_square_stable`` 0: no floor near e_1)."""
    finite_eta = "finite_eta_floor" in ds
    floor = ds["finite_eta_floor" if finite_eta else "linearized_floor"]
    keep = np.isfinite(floor)
    if "mean_square_stable" in ds:
        keep = keep & (ds["mean_square_stable"] != 0)
    return floor.where(keep), "finite-η floor" if finite_eta else "exact linearised floor"


def check_drawable(ds: xarray.Dataset) -> xarray.Dataset:
    """``ds`` when its figures can be drawn: a streaming-PCA sweep with no empty axis; otherwise a
    one-line :class:`~amsgd.core.errors.ProblemError` (the command line checks this before any run)."""
    from amsgd.core.errors import ProblemError

    if "stationary_error" not in ds:
        raise ProblemError("the sweep figures are for streaming PCA; this is a model's sweep (its losses are variables "
                           "of the Dataset over the grid: plot them with xarray)")  # fmt: skip
    missing = [name for name in DRAWN if name not in ds]
    if missing:
        raise ProblemError(f"the sweep lacks the variables {', '.join(missing)} that its figures draw (a file "
                           "written by amsgd sweep has them)")  # fmt: skip
    empty = [name for name, size in ds.sizes.items() if size == 0]
    if empty:
        raise ProblemError(f"the sweep has no values on its axis {', '.join(empty)}: nothing to draw")
    delay = next((axis for axis in ("tau", "workers") if axis in ds.dims), "tau (or workers)")
    grid = ("eta", "mu", delay)
    lacking = [axis for axis in grid if axis not in ds.dims]
    if lacking:
        raise ProblemError(f"the sweep has no axis {', '.join(lacking)}: its figures need eta, mu and tau (or workers) "
                           "as dimensions, each of one value or more, as amsgd sweep writes them")  # fmt: skip
    for name in DRAWN:
        if set(grid) - set(ds[name].dims) or set(ds[name].dims) - {*grid, "distribution"}:
            raise ProblemError(f"the sweep's {name} has the dimensions ({', '.join(ds[name].dims)}); its figures "
                               f"need ({', '.join(grid)}), with distribution where the sweep has several")  # fmt: skip
    repeated = [axis for axis in (*grid, "distribution") if axis in ds.dims and np.unique(ds[axis].values).size < ds.sizes[axis]]
    if repeated:
        raise ProblemError(f"the sweep repeats values on its axis {', '.join(repeated)}: each cell must be one point of the grid")
    error, low, high = (ds[name].values for name in ("stationary_error", "stationary_error_ci_low", "stationary_error_ci_high"))
    with np.errstate(invalid="ignore"):
        outside = int(np.sum((low > error) | (error > high)))  # NaN cells (nothing measured) compare false
    if outside:
        raise ProblemError(f"the sweep's stationary_error lies outside its interval (stationary_error_ci_low, "
                           f"stationary_error_ci_high) at {outside} cell(s): the file has been changed")  # fmt: skip
    try:
        problem = json.loads(ds.attrs.get("problem", "{}"))
    except (TypeError, ValueError):
        problem = None
    if not isinstance(problem, dict):
        raise ProblemError("the sweep's attribute problem is not the JSON object amsgd sweep writes")
    return ds


def sweep_figures(source: str | os.PathLike | xarray.Dataset, out_dir: str | os.PathLike) -> list[Path]:
    """Draw the figures of a sweep Dataset (or NetCDF file) as PNG files in ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import xarray as xr

    from amsgd.sweep.dataset import read_dataset

    ds = check_drawable(source if isinstance(source, xr.Dataset) else read_dataset(source))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "distribution" not in ds.dims:
        ds = ds.expand_dims("distribution")
    paths: list[Path] = []
    names = _distinct_names(ds["eta"].values)
    for dist in ds["distribution"].values:
        for eta, name in zip(ds["eta"].values, names):
            part = ds.sel(distribution=dist, eta=eta)
            suffix = ""
            if ds.sizes["eta"] > 1:
                suffix += f"_eta{name}"
            if ds.sizes["distribution"] > 1:
                suffix += "_" + str(dist).replace(":", "-")
            label = (f"{_sigma(ds)}, η = {name}, {dist}, {ds.attrs.get('replicates', '?')} replicates × "
                     f"{ds.attrs.get('steps', '?')} steps")  # fmt: skip
            paths.append(_heatmaps(part, label, out / f"sweep_heatmaps{suffix}.png"))
            paths.append(_error_vs_delay(part, label, out / f"sweep_error_vs_delay{suffix}.png"))
            paths.append(_best_mu(part, label, out / f"sweep_best_mu{suffix}.png"))
    return paths


def _distinct_names(values: np.ndarray) -> list[str]:
    """The values as ``%g`` prints them, or in full (``repr``) where two would print alike (5e-4 and
    5.000001e-4: their figures had one file name, the second replacing the first)."""
    short = [f"{v:g}" for v in values]
    return short if len(set(short)) == len(short) else [repr(float(v)) for v in values]


def _sigma(ds: xarray.Dataset) -> str:
    """The sweep's covariance, as its file records it: ``Σ = diag(4, 3, 2, 1)``, or its dimension."""
    problem = json.loads(ds.attrs.get("problem", "{}"))
    spectrum = problem.get("spectrum")
    if spectrum is None:
        return "Σ unrecorded"
    from amsgd.figures.style import sigma_label

    return sigma_label(spectrum, problem.get("covariance_is_diagonal", False))


def _delay_axis(ds: xarray.Dataset) -> tuple[str, str]:
    """The delay dimension and its axis label."""
    if "tau" in ds.dims:
        return "tau", "delay τ (iterations)"
    return "workers", "workers M (round robin, τ = M − 1)"


def _stable_delay_limit(ds: xarray.Dataset, axis: str) -> np.ndarray:
    """τ*(μ) of the linear theory in units of the delay axis (M* = τ* + 1 for workers), NaN if none."""
    tau_max = ds["tau_max"].isel({axis: 0}).values.astype(float)
    tau_max[tau_max < 0] = np.nan
    return tau_max if axis == "tau" else tau_max + 1


def _drifting(ds: xarray.Dataset, dims: tuple[str, ...]) -> np.ndarray:
    """True where the point's averaging window is not shown stationary (``stationary`` = 0, drifting,
    or −1, undecided or not checked) and it has an estimate that the figures show (not more than half
    its runs diverged: :func:`_kept`), over ``dims``; all False for a sweep file without the variable."""
    if "stationary" not in ds:
        return np.zeros([ds.sizes[d] for d in dims], dtype=bool)
    measured = np.isfinite(_kept(ds, "stationary_error").transpose(*dims).values)
    return (ds["stationary"].transpose(*dims).values != 1) & measured


#: What the legends say of a point whose averaging window is not shown stationary.
DRIFT_LABEL = "window not shown stationary (estimate may be biased)"
#: Its heat-map cells are cross-hatched, white one way and black the other (visible on any colour).
DRIFT_HATCHES = (("///", "w"), ("\\\\\\", "k"))


def _hatch_patches(xy: tuple[float, float] = (0.0, 0.0), size: float = 1.0) -> list:
    from matplotlib.patches import Rectangle

    return [Rectangle(xy, size, size, fill=False, hatch=h, edgecolor=c, lw=0) for h, c in DRIFT_HATCHES]


def _hatch_cells(ax, mask: np.ndarray) -> None:
    """Hatch the cells ``mask[i, j]`` (row i: μ, column j: delay) of a heat map drawn in cell coordinates."""
    for i, j in zip(*np.nonzero(mask), strict=True):
        for patch in _hatch_patches((j - 0.5, i - 0.5)):
            ax.add_patch(patch)


def _heatmaps(ds: xarray.Dataset, label: str, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    axis, xlabel = _delay_axis(ds)
    delays, mus = ds[axis].values, ds["mu"].values
    measured = _kept(ds, "stationary_error").transpose("mu", axis).values
    predicted, name = _predicted_floor(ds)
    predicted = predicted.transpose("mu", axis).values
    finite = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in (measured, predicted)])
    norm = LogNorm(finite.min(), finite.max()) if finite.size and finite.min() < finite.max() else None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(predicted) & (predicted > 0), measured / predicted, np.nan)
    with np.errstate(divide="ignore"):
        logs = np.abs(np.log2(ratio))
    spread = float(np.max(logs[np.isfinite(logs)])) if np.isfinite(logs).any() else 1.0  # a 0 measured: no colour
    spread = max(spread, 0.05)
    ratio_norm = LogNorm(2.0**-spread, 2.0**spread)  # symmetric about 1

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    panels = (
        (measured, "measured stationary error (mean sin²)", norm, "viridis"),
        (predicted, f"predicted: {name}", norm, "viridis"),
        (ratio, f"measured / {name}", ratio_norm, "RdBu_r"),
    )
    limit = _stable_delay_limit(ds, axis)
    drifting = _drifting(ds, ("mu", axis))
    for ax, (values, title, color_norm, cmap_name) in zip(axes, panels, strict=True):
        cmap = plt.get_cmap(cmap_name).with_extremes(bad="0.75")
        image = ax.pcolormesh(
            np.arange(delays.size + 1) - 0.5, np.arange(mus.size + 1) - 0.5,
            np.ma.masked_invalid(values), norm=color_norm, cmap=cmap, shading="flat",
        )  # fmt: skip
        bar = fig.colorbar(image, ax=ax, label="sin²∠(v, e₁)" if cmap_name == "viridis" else "ratio")
        if color_norm is ratio_norm:  # ticks on both sides of 1, symmetric on the log scale
            ticks = 2.0 ** np.array([-spread, -spread / 2, 0.0, spread / 2, spread])
            bar.set_ticks(ticks, labels=[f"{t:.3g}" for t in ticks])
            bar.minorticks_off()
        _index_ticks(ax, delays, mus)
        _draw_limit(ax, limit, delays, "w" if cmap_name == "viridis" else "k")  # visible on either colour map
        if values is not predicted:  # the measured panels
            _hatch_cells(ax, drifting)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("momentum μ")
        ax.set_title(title)
    handles, labels = axes[0].get_legend_handles_labels()
    if drifting.any():
        handles.append(tuple(_hatch_patches()))  # drawn on top of each other
        labels.append(DRIFT_LABEL)
    axes[0].legend(handles, labels, loc="lower left", fontsize=8, facecolor="0.4", labelcolor="white")
    hatched = "; hatched: window not shown stationary" if drifting.any() else ""
    fig.suptitle(f"Stationary error over momentum and delay ({label})\ngrey: more than half the runs diverged, "
                 f"or no prediction{hatched}")  # fmt: skip
    return _write(fig, path)


def _kept(ds: xarray.Dataset, name: str) -> xarray.DataArray:
    """``ds[name]`` with the points whose runs mostly diverged (:data:`MOSTLY_DIVERGED`) set to NaN."""
    return ds[name].where(ds["diverged_fraction"] <= MOSTLY_DIVERGED)


def _draw_limit(ax, limit: np.ndarray, delays: np.ndarray, colour: str) -> None:
    """τ*(μ) in cell coordinates (row i is μ_i), interpolated between the delay values where it lies
    on the grid; a τ* beyond the grid's ends is an arrowhead at that edge (two such τ* would otherwise
    read as equal), and a momentum without one (NaN) has no mark."""
    rows = np.arange(limit.size)
    known = np.isfinite(limit)
    inside = known & (limit >= delays[0]) & (limit <= delays[-1])
    x = np.interp(limit[inside], delays, np.arange(delays.size)) if delays.size > 1 else np.zeros(inside.sum())
    ax.plot(x, rows[inside], f"{colour}--", marker="o", lw=1.5, label="linear τ* (largest stable)")
    for beyond, edge, marker, where in ((limit > delays[-1], delays.size - 0.5, ">", "beyond"),
                                        (limit < delays[0], -0.5, "<", "below")):  # fmt: skip
        if (beyond & known).any():
            ax.plot(np.full((beyond & known).sum(), edge), rows[beyond & known], marker, color=colour, ms=9,
                    ls="none", clip_on=False, label=f"linear τ* {where} the grid")  # fmt: skip


def _index_ticks(ax, delays: np.ndarray, mus: np.ndarray, most: int = 12) -> None:
    """Label cells by their values, thinning the delay labels to at most ``most``."""
    step = max(1, int(np.ceil(delays.size / most)))
    ax.set_xticks(np.arange(0, delays.size, step), [f"{d:g}" for d in delays[::step]])
    ax.set_yticks(np.arange(mus.size), [f"{m:g}" for m in mus])


def _error_vs_delay(ds: xarray.Dataset, label: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    axis, xlabel = _delay_axis(ds)
    delays = ds[axis].values
    fig, ax = plt.subplots(figsize=(8, 5.5), constrained_layout=True)
    colors = plt.get_cmap("plasma")(np.linspace(0.0, 0.85, ds.sizes["mu"]))
    floors, name = _predicted_floor(ds)
    # the predicted floor is NaN beyond the stable delays: markers show a point with no finite neighbour,
    # and on a grid of one delay tell it from the diffusion floor (a line of one point is invisible)
    predicted_style = {"marker": "x", "ms": 5}
    diffusion_style = {"marker": "_", "ms": 16, "mew": 1.5} if delays.size == 1 else {}
    for color, mu in zip(colors, ds["mu"].values, strict=True):
        row = ds.sel(mu=mu)
        mean = _kept(row, "stationary_error").values
        low, high = _kept(row, "stationary_error_ci_low").values, _kept(row, "stationary_error_ci_high").values
        yerr = np.vstack([mean - low, high - mean])
        ax.errorbar(delays, mean, yerr=np.where(np.isfinite(yerr), yerr, 0), color=color, marker="o", ms=4,
                    capsize=2, label=f"μ = {mu:g} measured")  # fmt: skip
        drifting = _drifting(row, (axis,))
        ax.plot(delays[drifting], mean[drifting], "o", ms=6, mfc="white", mec=color, ls="none", zorder=3)
        ax.plot(delays, floors.sel(mu=mu).values, "--", color=color, lw=1.2, **predicted_style)
        ax.plot(delays, row["diffusion_floor"].values, ":", color=color, lw=1.0, **diffusion_style)
    ax.plot([], [], "k--", label=name, **predicted_style)
    ax.plot([], [], "k:", label="diffusion floor (no τ)", **diffusion_style)
    if _drifting(ds, ("mu", axis)).any():
        ax.plot([], [], "o", color="k", mfc="white", ls="none", label=f"open marker: {DRIFT_LABEL}")
    ax.set_yscale("log")
    if axis == "workers":
        ax.set_xscale("log", base=2)
        ax.set_xticks(delays, [f"{d:g}" for d in delays])
    elif delays.size == 1:  # its own tick: the padded range around it had ticks at 2.80 … 3.20
        ax.set_xticks(delays, [f"{d:g}" for d in delays])
    else:  # whole iterations
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("stationary error, mean sin²∠(v, e₁)")
    ax.set_title(f"Error against delay: simulation (95% CI) and predictions\n{label}\n"
                 "(points where more than half the runs diverged are left out)")  # fmt: skip
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return _write(fig, path)


def _best_mu(ds: xarray.Dataset, label: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    axis, _ = _delay_axis(ds)
    workers = ds[axis].values + (1 if axis == "tau" else 0)
    mus = ds["mu"].values

    def best(values: np.ndarray) -> np.ndarray:
        """Per delay, the μ of the lowest finite value (NaN where none is finite)."""
        out = np.full(values.shape[1], np.nan)
        for j in range(values.shape[1]):
            column = values[:, j]
            if np.isfinite(column).any():
                out[j] = mus[np.nanargmin(np.where(np.isfinite(column), column, np.nan))]
        return out

    clean = ds["diverged_fraction"].transpose("mu", axis).values == 0

    def measured(name: str) -> np.ndarray:
        return np.where(clean, ds[name].transpose("mu", axis).values, np.nan)

    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    series = (
        (best(measured("final_error")), "o-", "measured: lowest final error"),
        (best(measured("stationary_error")), "s-", "measured: lowest stationary error"),
        (_largest_stable_mu(ds, axis), "^--", "predicted: largest stable μ (linear τ* ≥ τ)"),
    )
    # small vertical offsets keep coinciding choices visible
    for offset, (values, style, name) in zip((-0.01, 0.0, 0.01), series, strict=True):
        ax.plot(workers, values + offset * float(np.ptp(mus)), style, ms=6, label=name)
    if axis == "workers":
        ax.set_xscale("log", base=2)
    step = max(1, int(np.ceil(workers.size / 12)))
    ax.set_xticks(workers[::step], [f"{w:g}" for w in workers[::step]])
    ax.set_yticks(mus, [f"{m:g}" for m in mus])
    pad = 0.06 * float(np.ptp(mus)) or 0.05
    ax.set_ylim(mus.min() - pad, mus.max() + pad)
    ax.set_xlabel("workers M (round robin, delay τ = M − 1 iterations)")
    ax.set_ylabel("best momentum μ")
    ax.set_title(f"Best momentum per worker count (diverged points excluded)\n{label}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _write(fig, path)


def _largest_stable_mu(ds: xarray.Dataset, axis: str) -> np.ndarray:
    """Per delay, the largest μ of the grid whose linear τ* reaches that delay (NaN if none)."""
    mus = ds["mu"].values
    tau = ds[axis].values - (1 if axis == "workers" else 0)
    tau_max = ds["tau_max"].isel({axis: 0}).values
    stable = tau_max[:, None] >= tau[None, :]
    return np.array([mus[column].max() if column.any() else np.nan for column in stable.T])


def _write(fig, path: str | Path) -> Path:
    """A sweep figure at 110 dpi, whole or not at all (matplotlib is loaded only when one is drawn)."""
    from amsgd.figures.style import write_figure

    return write_figure(fig, path, dpi=110)
