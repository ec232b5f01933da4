"""The symbolic side of the data distributions: fourth moments in eigen-coordinates.

The derivation engine needs ``E[Y_i Y_j Y_k Y_l]`` for ``Y = Qᵀ X`` as SymPy expressions in the
eigenvalue symbols ``λ``; the second moments are always ``E[Y Yᵀ] = Λ``.

* Gaussian (Isserlis): ``E[Y_i Y_j Y_k Y_l] = Λ_ij Λ_kl + Λ_ik Λ_jl + Λ_il Λ_jk``;
* Rademacher-type (``Y_i = sqrt(λ_i) r_i``, independent signs): the same, except ``E[Y_i⁴] = λ_i²``
  (``r_i⁴ = 1`` where a Gaussian has 3);
* Student-t with ν degrees of freedom and one shared scale ``sqrt((ν − 2)/w)``, ``w ~ χ²_ν``: the
  Gaussian values times ``E[(ν − 2)²/w²] = (ν − 2)/(ν − 4)``, finite only for ν > 4.

Moments of higher degree (:func:`product_moment`, for the radial friction's kernel) follow the same
three rules: independent coordinates, ``E z^{2n} = (2n − 1)!!`` for a Gaussian, 1 for a sign, and
for Student-t the Gaussian value times ``E[((ν − 2)/w)^n] = (ν − 2)^n/Π_{k=1}^{n} (ν − 2k)``, infinite
for ν ≤ 2n.

A user sampler has no closed form; its moments are estimated from samples by :mod:`.pca`. On the
indexed route it is taken to be symmetric under sign changes of each eigen-coordinate, with the
fourth moments of :class:`SignSymmetric`: ``E[Y_a² Y_b²] = m_ab`` (``m_aa = E[Y_a⁴]``) and zero wherever an index appears
an odd number of times, with the ``m_ab`` as symbols; the indexed derivation is written in them and
the numeric stage puts in the sampled ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sympy as sp

from amsgd.core.distributions import Distribution, Gaussian, Rademacher, StudentT
from amsgd.core.errors import ProblemError

#: The spec of :class:`SignSymmetric`, under which its derivation is stored.
SIGN_SYMMETRIC = "sign-symmetric"


@dataclass(frozen=True)
class SignSymmetric(Distribution):
    """Any centred law with covariance Λ that is symmetric under sign changes of each eigen-coordinate,
    its fourth moments kept as symbols (:func:`sign_symmetric_moment`): the symbolic stand-in for a
    sampled law, whose moments the numeric stage estimates. It has no sampler of its own."""

    spec: str = field(default=SIGN_SYMMETRIC, init=False)

    def sample(self, rng, n, eigenvalues, basis):
        raise ProblemError(f"{SIGN_SYMMETRIC} stands for the moments of a sampled law and has no sampler")


def sign_symmetric_moment(indices: Sequence[int], pair_symbol: Callable[[int, int], sp.Symbol]) -> sp.Expr:
    """``E[Y_a Y_b Y_c Y_e]`` of a :class:`SignSymmetric` law: ``pair_symbol(a, b)`` (``m_ab``) when the
    four indices are ``a, a, b, b`` (``pair_symbol(a, a)`` when all four are ``a``), else 0 (an index
    that appears an odd number of times changes sign with its coordinate)."""
    counts = Counter(indices)
    if any(n % 2 for n in counts.values()):
        return sp.S.Zero
    a, b = sorted(counts) if len(counts) == 2 else 2 * list(counts)
    return pair_symbol(a, b)


def isserlis(i: int, j: int, k: int, l: int, lam: Sequence[sp.Expr]) -> sp.Expr:
    """Fourth moment of a centred Gaussian vector with diagonal covariance ``diag(lam)``."""

    def cov(a: int, b: int) -> sp.Expr:
        return lam[a] if a == b else sp.S.Zero

    return cov(i, j) * cov(k, l) + cov(i, k) * cov(j, l) + cov(i, l) * cov(j, k)


def exact_degrees(nu: float) -> sp.Rational:
    """ν as the exact rational of its decimal value (``12.07`` is ``1207/100``), the shortest decimal
    that gives the float back. SymPy's plain ``nsimplify`` would look for a closed form and can return
    radicals (``12.07`` as a product of powers of 2, 3, 5 and 7 with exponents like 271/469), which made
    every later simplification crawl; with ``rational=True`` it rounds (4.0000001 to 4, whose fourth
    moments are infinite though the float's are finite)."""
    return sp.Rational(repr(float(nu)))


def kurtosis_factor(nu: float) -> sp.Expr:
    """``(ν − 2)/(ν − 4)``: the ratio of every Student-t fourth moment to its Gaussian value."""
    value = exact_degrees(nu)
    return (value - 2) / (value - 4)


def scale_moment(nu: float, n: int) -> sp.Expr:
    """``E[((ν − 2)/w)^n]`` for ``w ~ χ²_ν``: ``(ν − 2)^n/Π_{k=1}^{n} (ν − 2k)`` (from
    ``E w^{−n} = Γ(ν/2 − n)/(2^n Γ(ν/2))``), ``∞`` for ν ≤ 2n; the ratio of a Student-t moment of degree
    2n to its Gaussian value."""
    value = exact_degrees(nu)
    if value <= 2 * n:
        return sp.oo
    return (value - 2) ** n / sp.Mul(*(value - 2 * k for k in range(1, n + 1)))


def product_moment(distribution: Distribution, exponents: Sequence[int], lam: Sequence[sp.Expr]) -> sp.Expr:
    """``E[Π_i Y_i^{e_i}]`` of a named distribution, any degree (module docstring): 0 unless every
    exponent is even; ``∞`` where a Student-t moment of that degree is infinite."""
    if any(e % 2 for e in exponents):
        return sp.S.Zero
    gaussian = sp.Mul(*(sp.factorial2(e - 1) * lam[i] ** (e // 2) for i, e in enumerate(exponents) if e))
    if isinstance(distribution, Gaussian):
        return gaussian
    if isinstance(distribution, Rademacher):
        return sp.Mul(*(lam[i] ** (e // 2) for i, e in enumerate(exponents) if e))
    if isinstance(distribution, StudentT):
        return scale_moment(distribution.nu, sum(exponents) // 2) * gaussian
    raise ProblemError(f"distribution {distribution.spec} has no closed-form moments; they are estimated from samples")


def fourth_moment(distribution: Distribution, i: int, j: int, k: int, l: int, lam: Sequence[sp.Expr]) -> sp.Expr:
    """``E[Y_i Y_j Y_k Y_l]`` of a named distribution, in terms of the eigenvalue symbols ``lam``."""
    if isinstance(distribution, Gaussian):
        return isserlis(i, j, k, l, lam)
    if isinstance(distribution, Rademacher):
        gaussian = isserlis(i, j, k, l, lam)
        return gaussian - 2 * lam[i] ** 2 if i == j == k == l else gaussian
    if isinstance(distribution, StudentT):
        if not distribution.finite_fourth_moments:
            raise ProblemError(
                f"distribution {distribution.spec} has infinite fourth moments (needs NU > 4); "
                "moment-based predictions are undefined"
            )
        return kurtosis_factor(distribution.nu) * isserlis(i, j, k, l, lam)
    raise ProblemError(
        f"distribution {distribution.spec} has no closed-form fourth moments; "
        "they are estimated from samples (amsgd.derivations.pca.pca_model)"
    )
