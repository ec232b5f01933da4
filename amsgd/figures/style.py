"""Shared figure style: sizes, resolution, colours, and saving without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from amsgd.core.files import atomic_path
from amsgd.core.problem import Problem

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: PNG resolution: legible, and small enough to commit.
DPI = 120
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.constrained_layout.use": True,
}


def new_figure(width: float = 6.4, height: float = 4.2, ncols: int = 1, nrows: int = 1, **kwargs):
    """A figure and its axes in the shared style."""
    with plt.rc_context(RC):
        return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` at :data:`DPI` in the shared style and close it (:func:`write_figure`)."""
    with plt.rc_context(RC):
        return write_figure(fig, path, DPI)


def write_figure(fig, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` at ``dpi`` in the format its suffix names (PNG without one), whole or not at all
    (:func:`~amsgd.core.files.atomic_path`: an interrupted write leaves the file as it was), and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    return path


def problem_label(p: Problem) -> str:
    """A short description for figure titles: spectrum, data law, η, μ and the delay."""
    lam = ",".join(f"{x:g}" for x in p.eigenvalues)
    spec = p.delay.spec
    delay = f"τ = {spec.split(':')[1]}" if spec.startswith("constant:") else f"delay {spec}"
    return f"Σ = diag({lam}), {p.distribution.spec}, η = {p.eta:g}, μ = {p.mu:g}, {delay}"
