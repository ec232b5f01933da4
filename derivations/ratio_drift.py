"""The finite-η drift of a ratio coordinate: why ``x_i = h_i/h_1`` relaxes more slowly than ``a_i``.

Near e_1 the error is a function of the ratios ``x_i = h_i/h_1``. To first order in x, a step adds
``η h_1 ξ_i`` to ``h_i`` (``ξ_i`` mode i's additive noise, ``E ξ_i² = s²``) and ``−η h_1 Σ_j x_j ξ_j``
to ``h_1`` (the radial part of the same gradient), so the ratio after a step without momentum is

    x' = (x + η ξ) / (1 − η x ξ)

in the noise that mode i shares with the radial coordinate (mean drifts aside: they give the rate
``a_i`` exactly). Expanded to second order in η, ``E x' = x + η² s² x + O(η³, x³)``: the division adds
a drift away from e_1. With momentum the ratio's velocity ``w_k = x_k − x_{k−1}`` enters the next
step multiplied by ``h_{1,k−1}/h_{1,k+1} ≈ 1 − u_{k+1} − u_k``, ``u_k`` the radial log-velocity. Both
velocities carry the same noises with the momentum's memory,
``w_k = Σ_l μ^l η ξ_{k−1−l}`` and ``u_k = −x Σ_l μ^l η ξ_{k−1−l}``, so
``E[w_k u_k] = −η² x s² Σ_l μ^{2l}``, ``E[w_k u_{k+1}] = μ E[w_k u_k]``, and the velocity term adds
``−μ E[w_k (u_k + u_{k+1})]`` to the mean. The sum of both drifts is ``η c x`` per step with the
rate correction :func:`ratio_rate_correction`, ``c = η s²/(1 − μ)``: the mean ratio relaxes at
``a_i − c``. Derived at τ = 0, the radial restoring force left out (the radial velocity's memory is
the momentum's).
"""

from __future__ import annotations

import functools

import sympy as sp

from .stored import derived_once

#: The step size, the momentum and mode i's additive noise variance ``s² = E ξ_i²``.
ETA, MU, NOISE = sp.Symbol("eta", positive=True), sp.Symbol("mu", positive=True), sp.Symbol("s_i^2", positive=True)


@derived_once
def ratio_rate_correction() -> sp.Expr:
    """``c(η, μ, s²)``: the mean drift the ratio picks up, per step and per unit ``η x`` (module docstring)."""
    x = sp.Symbol("x", positive=True)
    xi = sp.Symbol("xi", real=True)
    step = sp.series((x + ETA * xi) / (1 - ETA * x * xi), ETA, 0, 3).removeO()
    moments = {0: sp.Integer(1), 1: sp.Integer(0), 2: NOISE}  # E ξ^n: centred, variance s²
    mean_step = sum(coefficient * moments[n] for (n,), coefficient in sp.Poly(sp.expand(step), xi).terms())
    own = sp.expand(mean_step - x).coeff(x, 1)  # first order in x: η² s²
    l = sp.Symbol("l", integer=True, nonnegative=True)
    memory = sp.summation(MU ** (2 * l), (l, 0, sp.oo))
    if isinstance(memory, sp.Piecewise):  # the branch |μ| < 1
        memory = memory.args[0][0]
    same_step = -(ETA**2) * NOISE * memory  # E[w_k u_k] per unit x
    carried = -MU * (same_step + MU * same_step)  # −μ E[w_k (u_k + u_{k+1})] per unit x
    gap = sp.Symbol("q", positive=True)  # simplified in q = 1 − μ, so that it reads in 1 − μ
    return sp.simplify(((own + carried) / ETA).subs(MU, 1 - gap)).subs(gap, 1 - MU)


@functools.lru_cache(maxsize=1)
def ratio_rate_correction_function():
    """:func:`ratio_rate_correction` as a NumPy function of ``(η, μ, s²)``."""
    return sp.lambdify((ETA, MU, NOISE), ratio_rate_correction(), "numpy")
