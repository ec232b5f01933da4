"""The exact finite-η, finite-τ theory behind one entry: ``predict(problem) -> Predictions``.

Linearised at a stationary point, each mode of Async-MSGD is a scalar delayed momentum recursion
(:mod:`.linear_recursion`); its characteristic roots give the exact local rates and the stability
region in (η, μ, τ) (:mod:`.stability`), its stationary second moments the exact error floor
(:mod:`.lyapunov`, :mod:`.error_floor`), and a grid of both the momentum–asynchrony tradeoff
(:mod:`.tradeoff`). :func:`predict` evaluates the derived limits and runs these for a problem; it
is the only place the toolkit computes floors, stability, phases and the tradeoff. Modules load on
first use, so :class:`PredictOptions` can be checked without SymPy or SciPy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from amsgd.diffusion.theory.options import PredictOptions

if TYPE_CHECKING:
    from amsgd.diffusion.theory.predictions import Predictions, predict

__all__ = ["PredictOptions", "Predictions", "predict"]


def __getattr__(name: str):
    if name in ("Predictions", "predict"):
        return getattr(import_module("amsgd.diffusion.theory.predictions"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
