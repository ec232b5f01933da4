"""The pictures of amsgd, as PNG, drawn from the results of the other stages (nothing is computed
here): trajectories against the ODE, stationary histograms against the OU law, escape times, error
against delay per momentum, the stability phase diagram, the local rate, the momentum–asynchrony
comparison, a sweep's heat maps and a convergence study. Each function takes results and a path
and returns the path written; :func:`amsgd.figures.validation.draw_validation` draws a whole
validation report and :func:`amsgd.figures.standard.standard_figures` the standard set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amsgd.core.lazy import lazy_exports

if TYPE_CHECKING:
    from amsgd.figures.standard import standard_figures
    from amsgd.figures.validation import draw_validation

__all__ = ["draw_validation", "standard_figures"]
# matplotlib loads on first use
__getattr__ = lazy_exports(__name__, {"draw_validation": "amsgd.figures.validation",
                                      "standard_figures": "amsgd.figures.standard"})  # fmt: skip
