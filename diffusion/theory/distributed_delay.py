"""The finite-delay limit of a random delay: a distributed-delay equation, mode by mode.

With i.i.d. delays τ_k of law p and η → 0 at a fixed law of the delay time ``u = τ η``, a linear mode
at e_1 averages its stale iterates over the law: ``dX = −c Σ_k p_k X(t − k η) dt + b dW`` (``c =
a/(1 − μ)``, ``b² = η σ²/(1 − μ)²``, as for one delay, :mod:`.sdde_floor`). Its characteristic
function is ``f(λ) = λ + c φ(λ)``, ``φ(λ) = Σ_k p_k e^{−λ k η}``, and

* it is stable iff f has no zero with ``Re λ ≥ 0``. Since ``|φ| ≤ 1`` there, ``f ≈ λ`` on a large half
  circle, and the argument principle counts the zeros from the imaginary axis alone:
  ``Z = 1/2 − (arg f(iR) − arg f(0))/π`` (f(−iω) is the conjugate of f(iω); the argument unwrapped
  along ``0 ≤ ω ≤ R``, R where ``c/R`` is small);
* then its stationary variance is ``(b²/2π) ∫ dω / |f(iω)|²`` over the real line (the spectral density
  of the stationary solution), ``(b²/π) ∫_0^∞``.

For one delay (``p = δ_τ``) these are the derived boundary ``c s < π/2`` and variance
``b² (1 + sin c s)/(2 c cos c s)`` of :mod:`.sdde_floor` (tested); a spread delay differs from one
delay at its mean: on the default problem at η 5e-4, μ 0.9 the floor per unit η is 98.6 for
geometric:20 against 99.8 at its mean, and geometric:60, whose mean lies beyond the one delay's
boundary, keeps every mode stable (122.5).

The grid: ``φ`` on a uniform grid of spacing ``Δ = 2π/(η N)`` is the FFT of the law padded to N (a
power of two, at least 16 times its length, so that ``Δ ≤ π/(8 s_max)``: an eighth of a turn of its
longest delay per step), periodic in ω with period ``P = 2π/η``; below ``50 Δ`` a geometric grid
(summed directly) resolves the slow modes' width c. Beyond ``ω = c`` the imaginary part of f is
``ω + c Im φ > 0``, so from the grid's end R on f stays in the upper half-plane and its argument turns
by exactly ``π/2 − arg f(iR)`` more. Where one period is at least ``50 c_max`` (η c small, the usual
case) the grid runs to ``R = 50 c_max`` and the integral's tail is ``∫_R^∞ dω/ω² = 1/R`` (there
``|c φ| <= c`` is under 2% of ``|iω|``). Otherwise it runs to ``R = m_0 P``, the first whole number of
periods at or beyond ``2 c_max``, and the rest is summed period by period in closed form: with
``ω = θ + mP``, ``|f|² = P² ((m + x)² + y²)``, ``x = (θ + c Im φ(iθ))/P``, ``y = c Re φ(iθ)/P``, and
``Σ_{m ≥ m_0} 1/((m + x)² + y²) = Im ψ(m_0 + x + iy)/y`` (ψ the digamma function; its derivative
where y = 0), integrated over one period by the trapezoidal rule on the FFT's grid. A mode next to
its boundary has a peak about as wide as the smallest ``|f|``, across which the argument turns by
about π: where the grid does not resolve it, the stretch around it is taken again on a uniform grid
(φ by the chirp-z transform), and again within it until it is resolved. Measured against the
derived one-delay variance: within 5e-6, and 5e-7 at a gap of 1e-6 from the boundary
(tests/test_sdde_theory.py). The grid has at most about ``50 c_max/Δ`` points and at most
``2 c_max/Δ + 2N`` where one period is shorter than ``50 c_max`` (``Δ ≈ π/(8 η L)`` for a law of L
lags); beyond :data:`MAX_POINTS` (a step and a delay far outside the limit's range: ``c η`` is the
mode's decay in one step) :func:`distributed_delay_variances` refuses, naming the size (a
prediction's ``sdde`` entry is then null, with that note).
"""

from __future__ import annotations

import math

import numpy as np

from amsgd.core.errors import ProblemError

#: The grid reaches this many times the fastest mode's c where one period ``2π/η`` is at least as long:
#: beyond it ``|c φ| <= c`` is under 2% of ``|iω|``, and the tail is ``1/R``.
REACH = 50.0
#: Otherwise it reaches a whole number of periods, at least this many times c: beyond it
#: ``|f| >= ω/2``, and the periods' closed-form sum takes the rest.
PERIODIC_REACH = 2.0
#: The most frequencies of the grid: about 110 bytes each while a mode is summed (5.5e6 took 0.6 GB
#: and 3 s for five modes).
MAX_POINTS = 1 << 22
#: Geometric points per decade below the uniform grid.
PER_DECADE = 800
#: A peak of ``1/|f|²`` counts as resolved where ``|f|`` at its top is this many grid steps; else it is
#: summed again on REFINED points.
RESOLVED = 10.0
REFINED = 8001
#: The refined stretch reaches this many half-widths either side of the peak; it is refined again
#: within, at most ZOOMS times in all, until the peak is resolved.
WINDOW = 200.0
ZOOMS = 8
#: Frequencies summed at once where φ is summed directly.
CHUNK = 256


def distributed_delay_variances(rates: np.ndarray, noise: np.ndarray, eta: float, pmf: np.ndarray) -> np.ndarray:
    """The stationary variances of ``dX_i = −c_i Σ_k p_k X_i(t − k η) dt + b_i dW`` for ``rates`` c_i > 0 and
    ``noise`` b_i² (module docstring); ``inf`` for a mode without a stationary law (a zero of
    ``λ + c_i φ(λ)`` with ``Re λ ≥ 0``, or ``c_i ≤ 0``), noise or not."""
    c = np.asarray(rates, dtype=float)
    b2 = np.broadcast_to(np.asarray(noise, dtype=float), c.shape)
    out = np.full(c.shape, np.inf)
    live = c > 0
    if not live.any():
        return out
    law = np.asarray(pmf, dtype=float)
    omega, phi, period = _grid(c[live].min(), c[live].max(), eta, law)
    for i in np.flatnonzero(live):
        f = 1j * omega + c[i] * phi
        turn, integral = _turn_and_integral(omega, f, c[i], eta, law)
        turn += math.pi / 2 - float(np.angle(f[-1]))  # beyond R, f stays in the upper half-plane
        if abs(0.5 - turn / math.pi) < 0.5:  # no zero in the closed right half-plane
            tail = 1.0 / omega[-1] if period is None else _periods_beyond(c[i], period, omega[-1])
            out[i] = b2[i] / math.pi * (integral + tail)
    return out


def _periods_beyond(c: float, period: tuple[np.ndarray, np.ndarray], reach: float) -> float:
    """``∫_R^∞ dω/|f(iω)|²`` from ``R = reach``, a whole number ``m_0`` of periods P, on; ``period`` the
    frequencies ``θ`` of one period (0 to P) and ``φ(iθ)`` there: ``(1/P²) ∫_0^P Im ψ(m_0 + x + iy)/y dθ``
    (module docstring)."""
    theta, phi = period
    width = theta[-1]
    x = round(reach / width) + (theta + c * phi.imag) / width
    return float(np.trapezoid(lorentzian_sums(x, c * phi.real / width), theta)) / width**2


#: :func:`lorentzian_sums` sums its first terms one by one, then ψ's asymptotic series at ``z + SHIFT``.
SHIFT = 8


def lorentzian_sums(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``Σ_{m ≥ 0} 1/((m + x)² + y²)`` for ``x > 0``: ``Im ψ(x + iy)/y``, ψ the digamma function (its
    derivative ψ' where ``y = 0``), as the first :data:`SHIFT` terms plus ``Im ψ(w)/y`` at
    ``w = x + SHIFT + iy`` from the asymptotic series ``ψ(w) = log w − 1/(2w) − Σ_k B_2k/(2k w^{2k})``
    (five terms: a relative error below 1e-12 at ``|w| >= 8``; ``ψ'(w) = 1/w + 1/(2w²) + Σ_k B_2k/w^{2k+1}``
    where y is 0). Vectorised: SciPy's complex digamma took twenty times longer on these arguments."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    near = sum(1.0 / ((x + j) ** 2 + y**2) for j in range(SHIFT))
    w = x + SHIFT + 1j * y
    inv2 = 1.0 / (w * w)
    psi = np.log(w) - 0.5 / w - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    flat = np.abs(y) <= 1e-8 * np.abs(w)  # Im ψ(w)/y is ψ'(Re w) to O(y²) there
    u = x + SHIFT
    v = 1.0 / (u * u)
    slope = 1.0 / u + 0.5 * v + v / u * (1 / 6 - v * (1 / 30 - v * (1 / 42 - v / 30)))
    return near + np.where(flat, slope, psi.imag / np.where(flat, 1.0, y))


def _turn_and_integral(omega: np.ndarray, f: np.ndarray, c: float, eta: float, pmf: np.ndarray) -> tuple[float, float]:
    """The unwrapped ``arg f(iR) − arg f(0)`` and ``∫_0^R dω/|f(iω)|²`` (the trapezoidal rule on the grid),
    R the grid's end. Where the grid does not resolve the peak at the smallest ``|f|`` (a mode near
    its boundary: the peak is about as wide as ``|f|`` there, and the argument turns by about π across
    it), :data:`WINDOW` half-widths either side of it are taken again on :data:`REFINED` points, for
    both, and again within those until the peak is resolved (at most :data:`ZOOMS` times)."""
    density = 1.0 / np.abs(f) ** 2
    phase = np.unwrap(np.angle(f))
    turn, total = float(phase[-1] - phase[0]), float(np.trapezoid(density, omega))
    for _ in range(ZOOMS):
        j = int(np.argmin(np.abs(f)))
        width = float(np.abs(f[j]))  # the peak's half-width, about
        step = float(np.max(np.diff(omega[max(j - 1, 0) : j + 2])))  # the grid's steps beside the peak
        if width >= RESOLVED * step:
            break
        low = max(int(np.searchsorted(omega, omega[j] - WINDOW * width)) - 1, 0)
        high = min(int(np.searchsorted(omega, omega[j] + WINDOW * width)) + 1, omega.size - 1)
        local = np.linspace(omega[low], omega[high], REFINED)
        near = 1j * local + c * _phi_uniform(local[0], local[1] - local[0], REFINED, eta, pmf)
        fine, sharp = np.unwrap(np.angle(near)), 1.0 / np.abs(near) ** 2
        turn += float(fine[-1] - fine[0]) - float(phase[high] - phase[low])
        total += float(np.trapezoid(sharp, local)) - float(np.trapezoid(density[low : high + 1], omega[low : high + 1]))
        omega, f, density, phase = local, near, sharp, fine
    return turn, total


def _phi_direct(omega: np.ndarray, eta: float, pmf: np.ndarray) -> np.ndarray:
    """``φ(iω) = Σ_k p_k e^{−iωkη}`` at any frequencies, summed :data:`CHUNK` frequencies at a time (memory
    CHUNK × the law's length)."""
    out = np.empty(omega.size, dtype=complex)
    lags = np.arange(pmf.size) * eta
    for first in range(0, omega.size, CHUNK):
        out[first : first + CHUNK] = np.exp(-1j * np.outer(omega[first : first + CHUNK], lags)) @ pmf
    return out


def _phi_uniform(start: float, step: float, count: int, eta: float, pmf: np.ndarray) -> np.ndarray:
    """``φ(iω)`` at ``ω = start + j·step``, j < count, by the chirp-z transform
    (``Σ_k p_k a^{−k} w^{jk}`` with ``a = e^{iηω_0}``, ``w = e^{−iη step}``)."""
    from scipy.signal import czt

    return czt(pmf, m=count, w=np.exp(-1j * eta * step), a=np.exp(1j * eta * start))


def _grid(low: float, high: float, eta: float,
          pmf: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:  # fmt: skip
    """The frequencies from 0 to R, the law's ``φ(iω)`` there, and (where R is a whole number of periods
    ``2π/η``, else None) one period's uniform frequencies from 0 to ``2π/η`` with φ (module docstring);
    a :class:`ProblemError` beyond :data:`MAX_POINTS` frequencies."""
    size = 1 << max(int(math.ceil(math.log2(16 * pmf.size))), 4)
    spectrum = np.fft.fft(pmf, size)  # φ(i 2π j/(η size)), j = 0 .. size − 1
    step = 2.0 * math.pi / (eta * size)
    switch = 50.0 * step
    period = size * step  # 2π/η
    periodic = period < REACH * high
    if periodic:  # whole periods, beyond the geometric grid's end too
        last = size * max(math.ceil(PERIODIC_REACH * high / period), math.ceil(2 * switch / period))
    else:
        last = int(math.ceil(REACH * high / step))
    if last > MAX_POINTS:
        raise ProblemError(
            f"the random delay's finite-delay limit needs {last:.3g} frequencies (the fastest mode's "
            f"c eta = {high * eta:.3g} per step, its law {pmf.size} lags), more than the {MAX_POINTS:.3g} it takes: "
            "the step and the delay lie far outside the limit's range"
        )
    bottom = low * 1e-3
    fine = np.geomspace(bottom, switch, max(int(PER_DECADE * math.log10(switch / bottom)), 2)) if switch > bottom else np.zeros(0)
    uniform = np.arange(int(math.ceil(switch / step)), last + 1)
    omega = np.concatenate([[0.0], fine, uniform * step])
    phi = np.concatenate([[complex(pmf.sum())], _phi_direct(fine, eta, pmf), spectrum[uniform % size]])
    if not periodic:
        return omega, phi, None
    cycle = np.arange(size + 1)
    return omega, phi, (cycle * step, spectrum[cycle % size])
