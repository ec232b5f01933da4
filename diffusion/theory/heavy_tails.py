"""Student-t data: the curvature of sin² under the heavy-tailed stationary law of the tangent ratios.

The first-order floor is ``E[S/(1 + S)]``, ``S = Σ_i r_i²``, for *Gaussian* ratios ``r_i = h_i/h_1``
with the exact second moments ``v_i`` (:func:`.second_moments.curvature_mean`). With Student-t data
``Y = sqrt((ν − 2)/w) ζ`` (ζ Gaussian with covariance Λ, ``w ~ χ²_ν`` shared by the coordinates)
the ratios are far from Gaussian, and the floor that closure gives is too high (7–13% at ν = 6).
Near e_1 the noise of tangent mode i at step k is ``Y_1 Y_i = g_k ζ_{1,k} ζ_{i,k}``, ``g = (ν − 2)/w``;
given the sequences ``(g_k, ζ_{1,k})`` the ratios are linear in the independent Gaussian ``ζ_{i,k}``,
so Gaussian with variances

    V_i = v_i Σ_j κ_ij m_{k−j},    m = g² ζ_1² / E[g² ζ_1²],    κ_ij = c_ij² / Σ_l c_il²,

one mixing variable ``m`` per step shared by every mode, ``c_ij`` the impulse response of mode i's
mean recursion ``x_{k+1} = x_k + μ (x_k − x_{k−1}) − η a_i Σ_τ p_τ x_{k−τ} + η u_k`` (its rate ``a_i``
and the delay law ``p``), scaled so that ``E V_i = v_i``. With ``(1 + 2tV)^{−1/2} = E_w[e^{−t V w²}]``
(w standard normal) and ``1/(1 + S) = ∫_0^∞ e^{−t(1 + S)} dt``,

    E[1/(1 + S)] = ∫_0^∞ e^{−t} E_w[ Π_j φ(t Σ_i w_i² v_i κ_ij) ] dt,
    φ(s) = E[e^{−s m}] = E_g[(1 + 2 s g²/E[g²])^{−1/2}]   (Gaussian data: g ≡ 1, φ(s) = (1 + 2s)^{−1/2}),

w standard normal in ``d − 1`` dimensions. :func:`heavy_tail_factor` is ``E[S/(1 + S)]`` under the
Student-t law over the same under Gaussian data, both by the same quadrature (Gauss–Laguerre in t,
a scrambled Sobol set of fixed seed for w, the lags summed exactly up to :data:`EXACT_LAGS` and in
blocks of about 1% of the lag beyond), so that their errors cancel; the Gaussian one equals
:func:`~.second_moments.curvature_mean` of ``v`` to 0.4% (the product ``ζ_1 ζ_i`` is not Gaussian,
but it is averaged over many steps). The floor with the norm coupling is multiplied by it. Left out:
the heavy tails of the multiplicative noise beyond their share of ``v``, and the norm's motion beyond
the Gaussian friction. At ν = 6 the simulated floor at a held norm lies 3–4% above this one and the
norm's motion lowers the free floor by 5%, where the friction says 0.1–0.4%: two errors that nearly
cancel (benchmarks/floor_parts.py; docs/linear-theory.md section 5 has the accuracy against simulation).
From ν = 9 to 12 (η 5e-4, μ 0.95; ν = 10 also at η 1.5e-3, μ 0.7) the held runs' floor is the
Gaussian closure's within 0.5%: there the mixing overstates what the tails do to the floor by about
the factor's own size (0.6–1.8%). The factor is exact for the additive recursion it models
(benchmarks/mixing_factor.py: inside the 95% intervals of paired runs of it in five cases); the algorithm's
projected step driven by that noise alone lowers the deficit by a third at η 5e-4, μ 0.95, ν = 9 and
10, and the rest of the overstatement comes with the multiplicative noise, not modelled here.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from amsgd.core.distributions import Distribution, StudentT
from amsgd.diffusion.theory.linear_recursion import DelayLaw, ar_coefficients, spectral_radius
from amsgd.diffusion.theory.norm_coupling import impulse_response

#: Gauss–Laguerre nodes in t, and Sobol points for w (a power of 2).
T_NODES = 32
W_POINTS = 512
#: Lags summed one by one; beyond, blocks of about BLOCK_SHARE of the lag.
EXACT_LAGS = 256
BLOCK_SHARE = 0.01
#: The impulse responses run this many relaxation times 1/(1 − ρ) of the slowest mode (at most MAX_LAGS).
LAG_RELAXATIONS = 15.0
MAX_LAGS = 1 << 20
#: The grid of s on which log φ is tabulated (log-spaced), and of log w for its quadrature.
S_RANGE = (1e-14, 1e14)
S_PER_DECADE = 40
W_GRID = 4000


def heavy_tail_factor(distribution: Distribution, rates: np.ndarray, variances: np.ndarray, eta: float, mu: float,
                      law: DelayLaw, slowest: float | None = None) -> float | None:  # fmt: skip
    """The factor on the floor for Student-t data (module docstring): ``E[S/(1 + S)]`` with the mixing
    of ``g² ζ_1²`` over the same for Gaussian data, for the tangent modes' rates (per unit η) and
    first-order variances ``v``; None for other laws, for ν ≤ 4 (no E[g²]) or where a variance is
    infinite. ``slowest`` is the largest mean radius of the tangent modes when known."""
    v = np.asarray(variances, dtype=float)
    if not isinstance(distribution, StudentT) or distribution.nu <= 4 or not np.all(np.isfinite(v)) or not v.size:
        return None
    weights, sizes = lag_weights(np.asarray(rates, dtype=float), eta, mu, law, slowest)
    points = _sobol_chi2(v.size)
    heavy = curvature_under_mixing(v, weights, sizes, points, log_laplace_student_t(distribution.nu))
    gaussian = curvature_under_mixing(v, weights, sizes, points, log_laplace_gaussian)
    return float(heavy / gaussian)


def lag_weights(rates: np.ndarray, eta: float, mu: float, law: DelayLaw,
                slowest: float | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(κ, n)``: per mode and lag block, the mean of ``κ_ij = c_ij²/Σ_l c_il²`` over the block's
    lags (``(modes, blocks)``) and each block's number of lags: the first :data:`EXACT_LAGS` one by
    one, then blocks of about :data:`BLOCK_SHARE` of the lag. ``slowest``, the largest of the modes'
    mean radii, sets how many lags (computed when not given)."""
    if slowest is None:
        slowest = max(spectral_radius(r, eta, mu, law) for r in rates)
    lags = int(min(MAX_LAGS, max(EXACT_LAGS, math.ceil(LAG_RELAXATIONS / max(1.0 - slowest, 1e-12)))))
    starts = _block_starts(lags)
    sizes = np.diff(np.append(starts, lags))
    weights = np.empty((rates.size, starts.size))
    for i, rate in enumerate(rates):  # one mode's lags at a time: memory O(lags + modes × blocks)
        squares = impulse_response(ar_coefficients(rate, eta, mu, law), lags) ** 2
        weights[i] = np.add.reduceat(squares / squares.sum(), starts) / sizes
    return weights, sizes


def _block_starts(lags: int) -> np.ndarray:
    """The first lag of each block: 0, 1, .., EXACT_LAGS − 1, then blocks of ``ceil(BLOCK_SHARE · j)`` lags."""
    starts = list(range(min(EXACT_LAGS, lags)))
    j = EXACT_LAGS
    while j < lags:
        starts.append(j)
        j += math.ceil(BLOCK_SHARE * j)
    return np.array(starts)


@functools.cache
def _sobol_chi2(dim: int) -> np.ndarray:
    """:data:`W_POINTS` scrambled Sobol points (fixed seed) mapped to ``w² ~ χ²_1`` in each of ``dim`` coordinates."""
    from scipy import stats
    from scipy.stats import qmc

    return stats.chi2.ppf(qmc.Sobol(dim, scramble=True, seed=20181204).random(W_POINTS), 1)


def curvature_under_mixing(v: np.ndarray, weights: np.ndarray, sizes: np.ndarray, points: np.ndarray,
                           log_laplace) -> float:  # fmt: skip
    """``E[S/(1 + S)] = 1 − ∫ e^{−t} E_w[exp(Σ_blocks n_b log φ(t Σ_i w_i² v_i κ_ib))] dt`` (module docstring)."""
    from scipy import special

    t, t_weights = special.roots_laguerre(T_NODES)
    exposure = points @ (v[:, None] * weights)  # (points, blocks): Σ_i w_i² v_i κ_ib per unit t
    inner = np.array([np.mean(np.exp(log_laplace(tk * exposure) @ sizes)) for tk in t])
    return float(1.0 - t_weights @ inner)


def log_laplace_gaussian(s: np.ndarray) -> np.ndarray:
    """``log φ(s) = −½ log(1 + 2s)``: the mixing of Gaussian data (``m = ζ_1²/λ_1``)."""
    return -0.5 * np.log1p(2.0 * s)


@functools.cache
def log_laplace_student_t(nu: float):
    """``log φ`` for Student-t data, ``φ(s) = E_g[(1 + 2 s g²/E[g²])^{−1/2}]``, ``g = (ν − 2)/w``,
    ``w ~ χ²_ν``: tabulated on a log grid of s (trapezoid rule in log w, where the integrand is smooth)
    and interpolated linearly in log s; ``log φ(0) = 0``, and ``log φ ≤ 0`` (φ ≤ 1) is kept.

    What is interpolated is either ``log φ`` or its difference from the Gaussian ``log φ`` (whose own
    part is then exact), whichever the table reproduces better at the midpoints of its grid. For
    moderate and large ν the difference is O(1/ν), and interpolating it keeps the error of interpolating
    ``log φ ≈ −s`` (about 4e-4 s) out of the factor: it tends to 1 as ν grows, where it had tended to
    1.00025. As ν falls to 4, E[g²] = (ν − 2)/(ν − 4) grows without bound, ``log φ`` tends to 0 and the
    difference to the whole Gaussian ``−log φ``: there the difference's interpolation error (4e-5)
    exceeded ``|log φ|`` itself (at ν = 4.00001 ``log φ`` came out positive, the floor negative), and
    ``log φ`` is interpolated instead. Tabulated once per ν."""
    points = int(S_PER_DECADE * math.log10(S_RANGE[1] / S_RANGE[0])) + 1
    s = np.geomspace(*S_RANGE, points)
    mid = np.sqrt(s[1:] * s[:-1])
    mid = mid[(mid > 1e-6) & (mid < 1e6)]  # below, log φ ≈ −s is within rounding of the trapezoid's 1 − φ
    reach = 80.0 * math.sqrt(2.0 / nu) + 200.0 / nu  # of w/ν: the χ²_ν law's mass lies within it
    x = np.linspace(math.log(max(1e-10, 1.0 - reach)), math.log1p(reach), W_GRID)  # x = log(w/ν)
    log_density = -(nu / 2.0) * (np.expm1(x) - x)  # log(p(w) w) up to a constant: at ν = 1e15 it resolves
    density = np.exp(log_density - log_density.max())  # the peak of width sqrt(2/ν) that (ν/2) log w − w/2 lost
    density /= np.trapezoid(density, x)
    ratio = (1.0 - 2.0 / nu) * (1.0 - 4.0 / nu) * np.exp(-2.0 * x)  # g²/E[g²] = (ν − 2)(ν − 4)/w²

    def tabulated(at: np.ndarray) -> np.ndarray:
        return np.log(np.trapezoid((1.0 + 2.0 * at[:, None] * ratio[None, :]) ** -0.5 * density, x, axis=1))

    table, at_mid = tabulated(s), tabulated(mid)
    log_s = np.log(s)

    def interpolated(x: np.ndarray, part: float, values: np.ndarray) -> np.ndarray:
        beyond = np.interp(np.log(np.maximum(x, S_RANGE[0])), log_s, values)
        exact = part * log_laplace_gaussian(x)
        return np.minimum(0.0, exact + np.where(x < S_RANGE[0], -(1.0 - part) * x, beyond))  # both ≈ −s for tiny s

    def miss(part: float) -> float:
        values = table - part * log_laplace_gaussian(s)
        return float(np.max(np.abs(interpolated(mid, part, values) - at_mid) / np.maximum(np.abs(at_mid), 1e-300)))

    part = min((1.0, 0.0), key=miss)  # the Gaussian part taken out exactly (the difference), or log φ itself
    values = table - part * log_laplace_gaussian(s)

    def log_phi(x: np.ndarray) -> np.ndarray:
        return interpolated(x, part, values)

    return log_phi
