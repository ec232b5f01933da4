"""Symbolic derivations (SymPy): recursion → ODE/SDE limits, phases, rates, LaTeX.

The engine (:mod:`.recursion`, :mod:`.moments`, :mod:`.limits`) works for any momentum recursion
``x_{k+1} = x_k + μ (x_k − x_{k−1}) + η G(x_{k−τ}, ξ_k)`` with ``G`` a SymPy expression; streaming
PCA (:mod:`.pca`) and streaming least squares (:mod:`.least_squares`) are two models built on it.
"""

from .derive import Derivation, derive
from .sme import SMECoefficients, sme_coefficients

__all__ = ["Derivation", "SMECoefficients", "derive", "sme_coefficients"]
