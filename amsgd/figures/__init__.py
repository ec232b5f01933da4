"""The standard pictures of amsgd, as PNG: trajectories against the ODE, stationary histograms
against the OU law, escape times, error against delay per momentum, the stability phase diagram,
the local rate and the momentum–asynchrony comparison. Each function takes results of
:mod:`amsgd.validation` and a path, and returns the path written.
"""

from amsgd.figures.delays import delay_curves_figure, phase_diagram_figure
from amsgd.figures.dynamics import (
    escape_figure,
    rate_figure,
    stationary_figure,
    trajectory_figure,
)
from amsgd.figures.momentum import momentum_figure

__all__ = [
    "delay_curves_figure",
    "escape_figure",
    "momentum_figure",
    "phase_diagram_figure",
    "rate_figure",
    "stationary_figure",
    "trajectory_figure",
]
