"""Symbolic derivations (SymPy): recursion → ODE/SDE limits, phases, rates, LaTeX.

The engine (:mod:`.recursion`, :mod:`.moments`, :mod:`.limits`) works for any momentum recursion
``x_{k+1} = x_k + μ (x_k − x_{k−1}) + η G(x_{k−τ}, ξ_k)`` with ``G`` a SymPy expression; streaming
PCA (:mod:`.pca`) and streaming least squares (:mod:`.least_squares`) are two models built on it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .derivation import Derivation, derive
    from .sme import SMECoefficients, sme_coefficients

__all__ = ["Derivation", "SMECoefficients", "derive", "sme_coefficients"]
_HOMES = {"Derivation": ".derivation", "derive": ".derivation", "SMECoefficients": ".sme", "sme_coefficients": ".sme"}


def __getattr__(name: str):
    # Loaded on first use, so that light submodules (defaults) do not import SymPy.
    if name in _HOMES:
        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
