"""The symbolic stage (SymPy): recursion → ODE/SDE limits, phases, delay stability, documents.

The engine (:mod:`.recursion`, :mod:`.moments`, :mod:`.limits`) works for any momentum recursion
``x_{k+1} = x_k + μ (x_k − x_{k−1}) + η G(x_{k−τ}, ξ_k)`` with ``G`` a SymPy expression; streaming
PCA (:mod:`.pca`) and streaming least squares (:mod:`.least_squares`) are two models built on it.
Results are SymPy objects; their numbers come from :func:`amsgd.predict`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .derivation import Derivation, derive

__all__ = ["Derivation", "derive"]


def __getattr__(name: str):
    # Loaded on first use, so that importing the package does not import SymPy.
    if name in __all__:
        return getattr(import_module(".derivation", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
