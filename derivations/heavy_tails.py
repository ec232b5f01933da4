"""The heavy-tail factor of the finite-η floor for Student-t data: the facts behind its quadrature.

Student-t data are ``Y = sqrt(g) ζ``, ζ Gaussian, ``g = (ν − 2)/w`` with ``w ~ χ²_ν`` shared by the
coordinates. Given the per-step scales ``m_k = g_k² ζ_{1,k}²/E[g² ζ_1²]`` the tangent ratios are
Gaussian with variances ``V_i = v_i Σ_j κ_ij m_{k−j}``, and three identities turn ``E[S/(1 + S)]``
(``S = Σ_i r_i²``) into one quadrature (:mod:`amsgd.diffusion.theory.heavy_tails` has the numbers):

1. :func:`scale_second_moment`: ``E[g²] = (ν − 2)/(ν − 4)`` (ν > 4), so ``g²/E[g²] = (ν − 2)(ν − 4)/w²``;
2. :func:`gaussian_laplace`: ``E_w[e^{−t V w²}] = (1 + 2tV)^{−1/2}`` for w standard normal, which puts
   the Gaussian ratios' ``Π_i (1 + 2tV_i)^{−1/2}`` into an exponential linear in every ``m_j``:
   ``E[Π_i (1 + 2tV_i)^{−1/2}] = E_w[Π_j φ(t Σ_i w_i² v_i κ_ij)]`` with ``φ(s) = E[e^{−s m}]``;
3. :func:`resolvent`: ``1/(1 + S) = ∫_0^∞ e^{−t(1 + S)} dt`` (S ≥ 0).

Each function derives its identity with SymPy.
"""

from __future__ import annotations

import functools

import sympy as sp

nu = sp.Symbol("nu", positive=True)
w = sp.Symbol("w", positive=True)
x = sp.Symbol("x", real=True)
s = sp.Symbol("S", nonnegative=True)
t = sp.Symbol("t", nonnegative=True)
v = sp.Symbol("V", nonnegative=True)


@functools.cache
def scale_second_moment() -> sp.Expr:
    """``E[g²]`` for ``g = (ν − 2)/w``, ``w ~ χ²_ν``: the integral against the χ²_ν density (ν > 4)."""
    density = w ** (nu / 2 - 1) * sp.exp(-w / 2) / (2 ** (nu / 2) * sp.gamma(nu / 2))
    moment = sp.integrate(((nu - 2) / w) ** 2 * density, (w, 0, sp.oo), conds="none")
    return sp.simplify(sp.gammasimp(moment))


@functools.cache
def gaussian_laplace() -> sp.Expr:
    """``E[e^{−t V x²}]`` for x standard normal: ``(1 + 2tV)^{−1/2}``."""
    density = sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)
    return sp.simplify(sp.integrate(sp.exp(-t * v * x**2) * density, (x, -sp.oo, sp.oo), conds="none"))


@functools.cache
def resolvent() -> sp.Expr:
    """``∫_0^∞ e^{−t(1 + S)} dt = 1/(1 + S)``."""
    return sp.simplify(sp.integrate(sp.exp(-t * (1 + s)), (t, 0, sp.oo)))
