"""Shared figure style: sizes, resolution, colours, and saving without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from amsgd.core.files import atomic_path, write_error
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
    (:func:`~amsgd.core.files.atomic_path`: an interrupted write leaves the file as it was), and close it;
    an OS error (a full disk, a file that cannot be replaced) is one line naming ``path``."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        plt.close(fig)
    return path


#: Eigenvalues a title lists one by one; a longer spectrum is given by its dimension and its ends.
LISTED_EIGENVALUES = 6


def sigma_label(eigenvalues, diagonal: bool = True) -> str:
    """Σ for a title: ``Σ = diag(4,3,2,1)``, or where Σ is not diagonal or its spectrum is long (a title
    would run off the figure) ``Σ of dimension d, eigenvalues 4 … 1``."""
    lam = [float(x) for x in eigenvalues]
    if diagonal and len(lam) <= LISTED_EIGENVALUES:
        return f"Σ = diag({','.join(f'{x:g}' for x in lam)})"
    listed = ",".join(f"{x:g}" for x in lam) if len(lam) <= LISTED_EIGENVALUES else f"{max(lam):g} … {min(lam):g}"
    return f"Σ of dimension {len(lam)}, eigenvalues {listed}"


def problem_sigma(p: Problem) -> str:
    """:func:`sigma_label` of ``p``'s covariance."""
    return sigma_label(p.eigenvalues, p.covariance_is_diagonal)


def problem_label(p: Problem, *, delay: bool = True) -> str:
    """A short description for figure titles: Σ, data law, η, μ and the delay (left out where ``delay`` is
    False: a figure whose axis is the delay)."""
    label = f"{problem_sigma(p)}, {p.distribution.spec}, η = {p.eta:g}, μ = {p.mu:g}"
    if not delay:
        return label
    spec = p.delay.spec
    return f"{label}, τ = {spec.split(':')[1]}" if spec.startswith("constant:") else f"{label}, delay {spec}"
