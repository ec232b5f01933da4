"""Expectations of polynomials in the noise variables, from a moment model.

A *moment model* maps the exponent vector ``(e_1, ..., e_n)`` of a monomial ``ξ_1^{e_1} ⋯ ξ_n^{e_n}``
to its expectation. The expectation of any polynomial in ξ (with coefficients depending on the
state) then follows by linearity: expand, and replace each monomial by its moment. This is all the
derivation engine needs to know about the noise, so a model's randomness is described once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp

Exponents = tuple[int, ...]
MomentModel = Callable[[Exponents], sp.Expr]


def expectation(expr: sp.Expr, noise: Sequence[sp.Symbol], moment: MomentModel) -> sp.Expr:
    """``E[expr]`` over the noise symbols, with the state symbols held fixed."""
    poly = sp.Poly(sp.expand(expr), *noise)
    return sp.Add(*(coeff * moment(monom) for monom, coeff in poly.terms()))


def matrix_expectation(matrix: sp.Matrix, noise: Sequence[sp.Symbol], moment: MomentModel) -> sp.Matrix:
    """Entry-wise expectation of a matrix polynomial in the noise."""
    return matrix.applyfunc(lambda entry: expectation(entry, noise, moment))


def _indices(exponents: Exponents) -> list[int]:
    """``(2, 0, 1)`` -> ``[0, 0, 2]``: the index of every factor of the monomial."""
    return [i for i, e in enumerate(exponents) for _ in range(e)]


def wick_moment(covariance: sp.Matrix) -> MomentModel:
    """Moments of a centred Gaussian vector with the given covariance (Isserlis/Wick's theorem).

    ``E[ξ_{i_1} ⋯ ξ_{i_{2m}}]`` is the sum over perfect matchings of the factors of the products of
    the matched covariances; odd moments vanish.
    """

    def matchings(items: list[int]) -> sp.Expr:
        if not items:
            return sp.S.One
        first, rest = items[0], items[1:]
        return sp.Add(
            *(covariance[first, rest[k]] * matchings(rest[:k] + rest[k + 1 :]) for k in range(len(rest)))
        )

    def moment(exponents: Exponents) -> sp.Expr:
        items = _indices(exponents)
        return sp.S.Zero if len(items) % 2 else matchings(items)

    return moment


def fourth_order_moment(
    second: Callable[[int, int], sp.Expr],
    fourth: Callable[[int, int, int, int], sp.Expr],
) -> MomentModel:
    """A symmetric law known through its second and fourth moments (odd moments vanish).

    Enough for quadratic-in-noise updates such as streaming PCA's ``(I − v vᵀ) X Xᵀ v``, whose mean
    needs degree 2 and whose covariance needs degree 4.
    """

    def moment(exponents: Exponents) -> sp.Expr:
        items = _indices(exponents)
        if not items:
            return sp.S.One
        if len(items) % 2:
            return sp.S.Zero
        if len(items) == 2:
            return second(*items)
        if len(items) == 4:
            return fourth(*items)
        raise NotImplementedError(f"moments of degree {len(items)} are not provided by this model")

    return moment


__all__ = [
    "MomentModel",
    "expectation",
    "fourth_order_moment",
    "matrix_expectation",
    "wick_moment",
]
