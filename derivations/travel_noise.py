"""The gradient noise along the travel from the saddle e_j to e_1, for any symmetric data law.

On the way the iterate lies in the plane of e_1 and e_j: ``h = (sin θ, cos θ)`` in those two
coordinates, with the direction of travel ``e = (cos θ, −sin θ)``. The plane's angle moves with the
gradient's component along e, ``(yᵀh)(yᵀe)``; the other coordinates i with ``(yᵀh) Y_i``. For data
whose odd moments vanish (Gaussian, Rademacher-type, Student-t with a shared scale, ...) the fourth
moments that enter are ``E Y_1⁴``, ``E Y_j⁴``, ``E[Y_1² Y_j²]`` and ``E[Y_{1,j}² Y_i²]``, and

    ``Var[(yᵀh)(yᵀe)] = S cos² 2θ + (V/4) sin² 2θ``,  ``S = E[Y_1² Y_j²]``,  ``V = Var(Y_1² − Y_j²)``,
    ``E[(yᵀh)² Y_i²] = sin² θ E[Y_1² Y_i²] + cos² θ E[Y_j² Y_i²]``:

the plane's noise is the escaping mode's S at both ends and takes the escape's multiplicative
coupling V in between; the other coordinates' noise is linear in the shares ``sin² θ``, ``cos² θ``
between its values at e_1 and at e_j. :func:`plane_noise` and :func:`orthogonal_noise` derive both
from the moments and check the stated forms.
"""

from __future__ import annotations

import sympy as sp

from .stored import derived_once

#: The angle from the saddle, the two coordinates' eigenvalues and their fourth moments.
THETA = sp.Symbol("theta", real=True)
LAMBDA_1, LAMBDA_J = sp.symbols("lambda_1 lambda_j", positive=True)
M4_1, M4_J, M22 = sp.symbols("M_1111 M_jjjj M_11jj", positive=True)
M1I, MJI = sp.symbols("M_11ii M_jjii", positive=True)


def _expectation(expr: sp.Expr, coordinates: tuple[sp.Symbol, ...], moments: dict) -> sp.Expr:
    """``E expr`` for a polynomial in ``coordinates`` whose monomials' expectations are ``moments``
    (keyed by the exponent tuple; monomials with an odd exponent have expectation 0)."""
    total = sp.Integer(0)
    for powers, coefficient in sp.Poly(sp.expand(expr), *coordinates).terms():
        if any(p % 2 for p in powers):
            continue
        total += coefficient * moments[powers]
    return total


@derived_once
def plane_noise() -> tuple[sp.Expr, sp.Expr]:
    """``(S, V)`` with ``Var[(yᵀh)(yᵀe)] = S cos² 2θ + (V/4) sin² 2θ`` (module docstring), derived from
    the fourth moments; raises if the variance does not have that form."""
    y1, yj = sp.symbols("Y_1 Y_j", real=True)
    h = (sp.sin(THETA), sp.cos(THETA))
    e = (sp.cos(THETA), -sp.sin(THETA))
    along = (y1 * h[0] + yj * h[1]) * (y1 * e[0] + yj * e[1])
    moments = {(4, 0): M4_1, (0, 4): M4_J, (2, 2): M22, (2, 0): LAMBDA_1, (0, 2): LAMBDA_J, (0, 0): 1}
    variance = _expectation(along**2, (y1, yj), moments) - _expectation(along, (y1, yj), moments) ** 2
    s = sp.simplify(variance.subs(THETA, 0))
    v = sp.expand(4 * variance.subs(THETA, sp.pi / 4))  # cos 2θ = 0, sin 2θ = 1 there
    form = s * sp.cos(2 * THETA) ** 2 + v / 4 * sp.sin(2 * THETA) ** 2
    if sp.simplify(sp.expand_trig(variance - form)) != 0:
        raise ArithmeticError("the plane's noise is not S cos² 2θ + (V/4) sin² 2θ")
    return s, v


@derived_once
def orthogonal_noise() -> sp.Expr:
    """``E[(yᵀh)² Y_i²]`` for an orthogonal coordinate i, as a function of θ (module docstring); raises
    if it is not linear in the shares."""
    y1, yj, yi = sp.symbols("Y_1 Y_j Y_i", real=True)
    h1, hj = sp.sin(THETA), sp.cos(THETA)
    moments = {(2, 0, 2): M1I, (0, 2, 2): MJI}
    noise = _expectation((y1 * h1 + yj * hj) ** 2 * yi**2, (y1, yj, yi), moments)
    if sp.simplify(noise - (h1**2 * M1I + hj**2 * MJI)) != 0:
        raise ArithmeticError("the orthogonal coordinates' noise is not linear in the shares")
    return noise
