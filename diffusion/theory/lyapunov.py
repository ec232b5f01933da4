"""Exact stationary second moments of a linear mode: the discrete Lyapunov equation, solved exactly.

For the state ``s_k = (x_k, ..., x_{k−L})`` of the mode (see :mod:`.linear_recursion`) the update is
``s_{k+1} = A_k s_k + b η ξ_k``. Assume the delays τ_k are i.i.d., independent of the state and of the
noise, and ξ_k is zero-mean with variance s², independent of the past and of τ_k. Then the second
moment ``M = E[s sᵀ]`` of the stationary law solves

    M = E[A_k M A_kᵀ] + η² s² b bᵀ.

Writing ``A_k = A_0 − η a e_0 e_{τ_k}ᵀ`` and ``Ā = E A_k`` (the mean companion matrix),

    E[A_k M A_kᵀ] = Ā M Āᵀ + (η a)² κ(M) e_0 e_0ᵀ,   κ(M) = Σ_i p_i M_ii − pᵀ M p >= 0,

so ``M = q P`` where ``P = Ā P Āᵀ + e_0 e_0ᵀ`` is the unit-noise Lyapunov solution of the mean
dynamics and the effective noise is ``q = η² s² / (1 − (η a)² κ(P))``. For a constant delay κ ≡ 0 and
``M`` is the ordinary Lyapunov solution ``P = A P Aᵀ + η² s² b bᵀ``.

``P`` is the covariance of a stationary autoregression, so it is Toeplitz, ``P_ij = γ(|i − j|)``;
substituting reduces the n² unknowns of the Lyapunov equation to the ``L + 2`` autocovariances
``γ(0), ..., γ(L + 1)`` (the Yule–Walker equations). That is how :func:`autocovariance` solves it: a
dense solve of that small system up to :data:`_DENSE_UNKNOWNS` unknowns, the step-down recursion of the
autoregression (``O(L²)``) beyond, exact and accurate for τ in the thousands, where a dense ``O(n³)``
Lyapunov solver is slow.

The second moments are stable iff the positive linear map ``M ↦ E[A_k M A_kᵀ]`` has spectral
radius below one. Its radius is ``max(ρ(Ā)², λ*)`` where λ* > ρ(Ā)² solves ``(η a)² κ(M_λ) = 1``
with ``λ M_λ = Ā M_λ Āᵀ + e_0 e_0ᵀ`` (κ(M_λ) decreases in λ), so mean-square stability is
``ρ(Ā) < 1`` together with ``(η a)² κ(P) < 1``.

A geometric delay law ``p_j = (1 − q) q^j`` (also the event-driven server's with exponential compute
times) needs no truncated lags at all (:func:`geometric_moments`): the scaled autoregression of
:func:`_kappa` has the geometric tail ``c_j λ^{−(j+1)/2} ∝ r^j``, ``r = q/sqrt(λ)``, so with
``u_k = Σ_j r^j x_{k−j} = x_k + r u_{k−1}`` the state ``(x_k, x_{k−1}, u_{k−1})`` is a linear system of
order 3. Its 3 × 3 Lyapunov solution S gives every number the second moments need:
``γ(0) = S_00``, ``Σ_j p_j λ^{−j} = (1 − q)/(1 − q/λ)`` and
``Σ_ij p_i p_j λ^{−(i+j)/2} γ(|i − j|) = (1 − q)² E[u_k²]`` with ``u_k = x_k + r u_{k−1}``.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.optimize

from amsgd.core.errors import ProblemError
from amsgd.core.problem import require_step_resolution
from amsgd.core.threads import thread_count, thread_map
from amsgd.diffusion.theory.linear_recursion import (
    Delay,
    DelayLaw,
    ar_coefficient_rows,
    ar_coefficients,
    check_parameters,
    delay_law,
    geometric_radius,
    geometric_ratio,
    mean_is_stable,
    radius_of,
    spectral_radius,
)

#: Second-moment radii below this are reported as this floor (they only matter when close to one).
_RADIUS_FLOOR = 1e-8


def autocovariance(coefficients: np.ndarray, noise_variance: float = 1.0) -> np.ndarray:
    """``γ(0), ..., γ(L)`` of the stationary ``x_{k+1} = Σ_{j=0}^{L} c_j x_{k−j} + e_{k+1}``, Var e = σ².

    Solves the Yule–Walker equations ``γ(0) = Σ_j c_j γ(j + 1) + σ²`` and
    ``γ(h) = Σ_j c_j γ(|h − 1 − j|)`` for ``h = 1, ..., L + 1``. The caller ensures the
    autoregression is stable (otherwise the solution is not a covariance). Up to :data:`_DENSE_UNKNOWNS`
    unknowns the system is solved densely (70 µs; a SciPy sparse solve's set-up alone cost more, 220 µs
    in all); above, the same γ come from the step-down and step-up of the autoregression
    (:func:`.step_down.step_down_autocovariance`, ``O(L²)``), where a sparse solve's fill-in grows like
    ``L³`` (37 ms per solve at L = 1000).
    """
    c = np.asarray(coefficients, dtype=float)
    n = c.size + 1  # unknowns γ(0), ..., γ(L + 1)
    if n > _DENSE_UNKNOWNS:
        from amsgd.diffusion.theory.step_down import step_down_autocovariance  # compiled: loaded here

        return step_down_autocovariance(np.ascontiguousarray(c), float(noise_variance))
    support = np.flatnonzero(c)
    h = np.arange(n)[:, None]
    lags = np.where(h == 0, support[None, :] + 1, np.abs(h - 1 - support[None, :]))
    system = np.eye(n)
    np.add.at(system, (np.repeat(np.arange(n), support.size), lags.ravel()), -np.tile(c[support], n))  # summed
    rhs = np.zeros(n)
    rhs[0] = noise_variance
    return np.linalg.solve(system, rhs)[: c.size]


#: Above this many Yule–Walker unknowns the gains and autocovariances come from the step-down recursion.
_DENSE_UNKNOWNS = 64
#: From this many operations (rows × taps²) on the step-down's rows are shared among threads: about
#: 20 ms of work on one core of the machine of docs/performance.md (999 rows of 101 taps, 7 ms, gained
#: nothing on 2 threads; 999 × 301, 59 ms, took 42 ms; 999 × 1001 took 329 ms instead of 664 ms).
_STEP_DOWN_SHARED = 30_000_000


def stationary_gains(rates: np.ndarray, eta: float, mu: float, tau: int, lam: float = 1.0) -> np.ndarray:
    """:func:`scaled_gain` ``G_i(λ)`` of many modes at a constant delay τ, each with ``ρ(Ā_i)² < λ`` (the
    caller ensures it): ``η² λ^{−τ} γ_i(0)``, with γ_i the autocovariance of the scaled autoregression
    ``c_j λ^{−(j+1)/2}`` with noise variance ``1/λ``; at λ = 1 the stationary ``Var x`` per unit noise.
    Up to :data:`_DENSE_UNKNOWNS` unknowns, the Yule–Walker systems of :func:`autocovariance` solved as
    one batch of dense ``(τ + 3)``-square systems; above, :func:`step_down_variance` (``O(τ²)`` per
    mode instead of ``O(τ³)``, and no ``τ²`` memory per mode)."""
    rates = np.asarray(rates, dtype=float)
    if rates.size == 0:
        return np.zeros(0)
    c = ar_coefficient_rows(rates, eta, mu, tau)
    if lam != 1.0:
        c *= lam ** (-(np.arange(c.shape[1]) + 1) / 2)
    scale = eta**2 * lam ** -(tau + 1)  # η², the noise 1/λ and the stale iterate's λ^{−τ}
    if c.shape[1] + 1 > _DENSE_UNKNOWNS:
        return scale * step_down_variance(c)
    return scale * autocovariance_rows(c)[:, 0]


def autocovariance_rows(coefficients: np.ndarray) -> np.ndarray:
    """:func:`autocovariance` ``γ(0), ..., γ(L)`` with unit noise of every row of stable autoregressions
    (the caller ensures it): up to :data:`_DENSE_UNKNOWNS` unknowns the Yule–Walker systems solved as
    one batch of dense ``(L + 2)``-square systems, above it row by row (``O(L²)`` each: the rows shared
    among threads from :data:`_STEP_DOWN_SHARED` operations on)."""
    c = np.array(coefficients, dtype=float, ndmin=2)
    n = c.shape[1] + 1
    if n > _DENSE_UNKNOWNS:
        threads = 1 if c.size * c.shape[1] < _STEP_DOWN_SHARED else None
        return np.array(thread_map(lambda row: autocovariance(row, 1.0), c, threads)).reshape(c.shape)
    h = np.arange(n)[:, None]
    j = np.arange(c.shape[1])[None, :]
    lags = np.where(h == 0, j + 1, np.abs(h - 1 - j))  # (n, L + 1)
    system = np.zeros((c.shape[0], n, n))
    system[:, np.arange(n), np.arange(n)] = 1.0
    rows = np.repeat(np.arange(n), c.shape[1])
    np.subtract.at(system, (slice(None), rows, lags.ravel()), np.tile(c, (1, n)))
    rhs = np.zeros((c.shape[0], n))
    rhs[:, 0] = 1.0
    chunk = max(1, 2_000_000 // (n * n))
    gamma = np.concatenate([np.linalg.solve(system[i : i + chunk], rhs[i : i + chunk, :, None])[:, :, 0]
                            for i in range(0, c.shape[0], chunk)])  # fmt: skip
    return gamma[:, : c.shape[1]]


def step_down_variance(coefficients: np.ndarray) -> np.ndarray:
    """``γ(0)`` per unit noise of each row's stable autoregression ``x_{k+1} = Σ_{j=0}^{L} c_j x_{k−j} + e``.

    The Schur–Cohn (Levinson) step-down: with ``a^{(p)} = c`` (p = L + 1 taps), the reflection
    coefficient ``κ_m = a^{(m)}_m`` and ``a^{(m−1)}_j = (a^{(m)}_j + κ_m a^{(m)}_{m−j}) / (1 − κ_m²)`` for
    m = p, ..., 1; the innovation variances of the orders satisfy ``σ²_{m−1} = σ²_m / (1 − κ_m²)``, so
    ``γ(0) = σ²_0 = 1 / Π_m (1 − κ_m²)``. The autoregression is stable iff every ``|κ_m| < 1``; a row
    where one is not gets ``inf``. ``O(p²)`` operations per row (:mod:`.step_down`), the rows shared
    among threads where they are many and long (:data:`_STEP_DOWN_SHARED` operations or more).
    """
    from amsgd.diffusion.theory.step_down import step_down_rows  # compiled: imported where first needed

    rows = np.array(coefficients, dtype=float, ndmin=2, order="C")
    if rows.size * rows.shape[1] < _STEP_DOWN_SHARED:
        return step_down_rows(rows)
    return np.concatenate(thread_map(step_down_rows, np.array_split(rows, thread_count())))  # views, in place


def geometric_moments(rate: float, eta: float, mu: float, q: float, lam: float = 1.0) -> tuple[float, float, float]:
    """``(γ(0), κ, Σ_j p_j λ^{−j})`` of the scaled autoregression of a mode under the geometric delay
    law ``p_j = (1 − q) q^j`` (module docstring): the unit-noise stationary ``Var``, the spread
    ``κ(M_λ)`` and the stale weight, from one 3 × 3 Lyapunov equation. The caller ensures
    ``ρ(Ā)² < λ`` and ``q < λ``: the untruncated law's stale weight ``Σ_j p_j λ^{−j}`` diverges at
    ``λ = q`` (a delay can reach back to the start), so its second-moment radius is at least q."""
    eta, mu = check_parameters(eta, mu)
    root = np.sqrt(lam)
    r, g = q / root, eta * float(rate) * (1.0 - q) / root
    system = np.array([[(1.0 + mu) / root - g, -mu / lam, -g * r], [1.0, 0.0, 0.0], [1.0, 0.0, r]])
    noise = np.zeros((3, 3))
    noise[0, 0] = 1.0 / lam
    with warnings.catch_warnings():  # near λ = ρ(Ā)² the system is nearly singular: κ is then huge, as it should be
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        cov = scipy.linalg.solve_discrete_lyapunov(system, noise)
    w = np.array([1.0, 0.0, r])
    stale = (1.0 - q) / (1.0 - q / lam)
    return float(cov[0, 0]), float(cov[0, 0] * stale - (1.0 - q) ** 2 * (w @ cov @ w)), float(stale)


def geometric_gain(rate: float, eta: float, mu: float, q: float, lam: float = 1.0, *,
                   mean_radius: float | None = None) -> float:  # fmt: skip
    """:func:`scaled_gain` under the untruncated geometric law ``(1 − q) q^j``, no lags built (``inf`` where
    ``ρ(Ā)² >= λ``, ``q >= λ`` or the feedback reaches one)."""
    radius = geometric_radius(rate, eta, mu, q) if mean_radius is None else mean_radius
    if radius**2 >= lam or q >= lam:
        return float("inf")
    gamma0, spread, stale = geometric_moments(rate, eta, mu, q, lam)
    feedback = (eta * rate) ** 2 * spread
    return float("inf") if feedback >= 1.0 else float(eta**2 * gamma0 * stale / (1.0 - feedback))


def _kappa(coefficients: np.ndarray, pmf: np.ndarray, lam: float) -> float:
    """κ(M_λ) = Σ p_i (M_λ)_ii − pᵀ M_λ p for ``λ M_λ = Ā M_λ Āᵀ + e_0 e_0ᵀ``.

    With ``T = diag(λ^{−j/2})``, ``T⁻¹ M_λ T⁻¹`` is the autocovariance (Toeplitz) matrix of the
    autoregression with coefficients ``c_j λ^{−(j+1)/2}`` and noise variance ``1/λ``.
    """
    j = np.arange(coefficients.size)
    return delay_spread(autocovariance(coefficients * lam ** (-(j + 1) / 2), 1.0 / lam), pmf, lam)


def delay_spread(gamma: np.ndarray, pmf: np.ndarray, lam: float) -> float:
    """κ(M) for ``M_ij = λ^{−(i+j)/2} γ(|i − j|)``, over the support of the delay law:
    ``Σ_i p_i λ^{−i} γ(0) − Σ_k γ(|k|) r(k)`` with ``r`` the autocorrelation of ``p_i λ^{−i/2}``
    (by FFT, ``O(L log L)`` time and ``O(L)`` memory for L lags; 0 for a point mass, exactly)."""
    if np.count_nonzero(pmf) == 1:  # a constant delay: both terms are λ^{−τ} γ(0)
        return 0.0
    weight = lam ** (-np.arange(pmf.size) / 2)
    scaled = pmf * weight
    size = 2 * pmf.size - 1
    spectrum = np.fft.rfft(scaled, size)
    r = np.fft.irfft(spectrum * np.conj(spectrum), size)[: pmf.size]  # r(k), k = 0 .. L
    return float(scaled @ weight * gamma[0] - (r[0] * gamma[0] + 2.0 * r[1:] @ gamma[1 : pmf.size]))


def _stationary(
    rate: float, eta: float, mu: float, law: DelayLaw, noise_variance: float, if_unstable: str
) -> tuple[float, np.ndarray]:
    """``(q, γ)`` with ``M_ij = q γ(|i − j|)``: γ the unit-noise autocovariance of the mean
    autoregression and ``q = η² s² / (1 − (η a)² κ)``; ``(inf, γ)`` for an unstable mode when
    ``if_unstable == "inf"``.
    """
    s2 = _check_noise(noise_variance)
    restoring = rate > 0  # a rate <= 0 leaves a root at or beyond 1, which rounding may put just inside
    if restoring:
        require_step_resolution(eta * rate * (1.0 - mu), f"eta·rate·(1 − mu) of the mode of rate {rate:g}")
    ratio = geometric_ratio(law.pmf)
    if ratio is not None:  # no lags: gamma holds γ(0) alone
        stable = restoring and spectral_radius(rate, eta, mu, law) < 1.0
        gamma0, spread, _ = geometric_moments(rate, eta, mu, ratio) if stable else (np.nan, np.nan, 1.0)
        return _effective_noise(rate, eta, mu, law, s2, stable, (eta * rate) ** 2 * spread,
                                if_unstable), np.array([gamma0])  # fmt: skip
    c = ar_coefficients(rate, eta, mu, law)
    stable = restoring and mean_is_stable(c)
    gamma = autocovariance(c) if stable else np.full(c.size, np.nan)
    gain = (eta * rate) ** 2 * delay_spread(gamma, law.pmf, 1.0)
    return _effective_noise(rate, eta, mu, law, s2, stable, gain, if_unstable), gamma


def _effective_noise(rate: float, eta: float, mu: float, law: DelayLaw, s2: float, stable: bool, gain: float,
                     if_unstable: str) -> float:  # fmt: skip
    """``q = η² s² / (1 − (η a)² κ)``, or inf / ProblemError when the mode is not mean-square stable
    (``stable``: whether its mean is)."""
    if stable and gain < 1.0:
        return eta**2 * s2 / (1.0 - gain)
    if if_unstable == "inf":
        return float("inf")
    reason = (
        f"spectral radius of the mean {spectral_radius(rate, eta, mu, law):.6g} >= 1"
        if not stable
        else f"second-moment gain (eta a)^2 kappa = {gain:.6g} >= 1"
    )
    raise ProblemError(
        f"the linear mode with rate {rate:g}, eta {eta:g}, mu {mu:g}, delay {law.spec} is not "
        f"mean-square stable ({reason}): no stationary variance"
    )


def stationary_variance(
    rate: float,
    eta: float,
    mu: float,
    delay: Delay,
    noise_variance: float = 1.0,
    *,
    if_unstable: Literal["raise", "inf"] = "raise",
) -> float:
    """Exact stationary ``Var x`` of the mode: ``η² s² P_00 / (1 − (η a)² κ(P))`` (module docstring).

    For a constant delay this is ``P[0, 0]`` of ``P = A P Aᵀ + η² s² b bᵀ``. A mode that is not
    mean-square stable has no stationary variance: ProblemError, or ``inf`` with ``if_unstable="inf"``.
    """
    if if_unstable not in ("raise", "inf"):
        raise ProblemError(f"if_unstable must be 'raise' or 'inf', got {if_unstable!r}")
    q, gamma = _stationary(rate, eta, mu, delay_law(delay), noise_variance, if_unstable)
    return q if np.isinf(q) else float(q * gamma[0])


def stationary_covariance(
    rate: float, eta: float, mu: float, delay: Delay, noise_variance: float = 1.0
) -> np.ndarray:
    """The stationary second moment ``M = E[s sᵀ]`` of the state ``(x_k, ..., x_{k−L})`` (Toeplitz)."""
    q, gamma = _stationary(rate, eta, mu, delay_law(delay), noise_variance, "raise")
    k = np.arange(gamma.size)
    return q * gamma[np.abs(k[:, None] - k[None, :])]


def second_moment_radius(rate: float, eta: float, mu: float, delay: Delay) -> float:
    """Spectral radius of ``M ↦ E[A_k M A_kᵀ]``: ``max(ρ(Ā)², λ*)`` (module docstring).

    Below one iff the stationary variance exists. λ* is found by Brent's method to relative
    tolerance 1e-12; radii below 1e-8 are reported as 1e-8. For a constant delay it is ``ρ(A)²``.
    """
    law = delay_law(delay)
    weight = (eta * rate) ** 2
    ratio = geometric_ratio(law.pmf)
    if ratio is not None:  # the untruncated law: the radius is at least q (geometric_moments)
        mean_radius = max(spectral_radius(rate, eta, mu, law), np.sqrt(ratio))

        def excess(lam: float) -> float:
            return weight * geometric_moments(rate, eta, mu, ratio, lam)[1] - 1.0
    else:
        c = ar_coefficients(rate, eta, mu, law)
        mean_radius = radius_of(c)

        def excess(lam: float) -> float:
            return weight * _kappa(c, law.pmf, lam) - 1.0

    low = max(mean_radius**2, _RADIUS_FLOOR) * (1.0 + 1e-9)
    if excess(low) <= 0.0:
        return low / (1.0 + 1e-9)
    high = 2.0 * low
    while excess(high) > 0.0:
        high *= 2.0
    return float(scipy.optimize.brentq(excess, low, high, rtol=1e-12))


def scaled_gain(
    rate: float, eta: float, mu: float, delay: Delay, lam: float = 1.0, *, mean_radius: float | None = None
) -> float:
    """``G(λ) = Σ_j p_j M_jj``: the second moment of the *stale* iterate ``x_{k−τ_k}`` in the solution of
    ``λ M = E[A_k M A_kᵀ] + η² e_0 e_0ᵀ``.

    Noise that depends on the state multiplies the stale iterate, so this is the gain through which it
    feeds back (:mod:`.second_moments`). At ``λ = 1`` every diagonal entry equals ``M_00``, the
    stationary ``Var x`` per unit noise variance (:func:`stationary_variance` with ``s² = 1``); above
    the mode's own second-moment radius G decreases in λ. With ``T = diag(λ^{−j/2})``,
    ``M = q T Γ T`` where Γ is the autocovariance of the autoregression with coefficients
    ``c_j λ^{−(j+1)/2}`` and noise variance ``1/λ`` and ``q = η² / (1 − (η a)² κ)``, so
    ``M_jj = q λ^{−j} γ(0)``. ``inf`` where that has no positive solution (λ at or below the mode's
    radius). ``mean_radius`` (``ρ(Ā)``, when already known) saves its O(L³) computation.
    """
    law = delay_law(delay)
    ratio = geometric_ratio(law.pmf)
    if ratio is not None:
        return geometric_gain(rate, eta, mu, ratio, lam, mean_radius=mean_radius)
    c = ar_coefficients(rate, eta, mu, law)
    if (radius_of(c) if mean_radius is None else mean_radius) ** 2 >= lam:
        return float("inf")
    j = np.arange(c.size)
    gamma = autocovariance(c * lam ** (-(j + 1) / 2), 1.0 / lam)
    feedback = 0.0 if law.constant is not None else (eta * rate) ** 2 * delay_spread(gamma, law.pmf, lam)
    if feedback >= 1.0:
        return float("inf")
    stale = float(law.pmf @ lam ** -np.arange(law.pmf.size))  # Σ_j p_j λ^{−j}
    return float(eta**2 * gamma[0] * stale / (1.0 - feedback))


def _check_noise(noise_variance: float) -> float:
    s2 = float(noise_variance)
    if not (np.isfinite(s2) and s2 >= 0):
        raise ProblemError(f"noise variance must be a finite number >= 0, got {noise_variance!r}")
    return s2
