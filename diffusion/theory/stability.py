"""The exact stability region of the delayed momentum recursion in (η, μ, τ), and a stability report.

For a constant delay τ the characteristic polynomial of a mode (see :mod:`.linear_recursion`) is
``z^{τ−1} g(z) + c`` with ``g(z) = (z − 1)(z − μ)`` and ``c = η a`` (times z when τ = 0). A root
crosses the unit circle at ``z = e^{iθ}`` only where ``|e^{iθ} − 1| |e^{iθ} − μ| = c``; the left
side, ``r(θ)``, has ``r² = 4 s ((1 − μ)² + 4 μ s)`` with ``s = sin²(θ/2)``. For ``0 <= μ < 1`` it
increases strictly from 0 to ``2 (1 + μ)`` on ``θ ∈ [0, π]``; for ``−1 < μ < 0`` it rises to a maximum
and falls back to ``r(π) = 2 (1 + μ)``, so it takes each value below ``2 (1 + μ)`` once, on its rising
part. Either way, for ``0 < c < 2 (1 + μ)`` there is one crossing angle θ*, independent of τ, the
smaller root of the quadratic in s:
``sin(θ*/2) = c / sqrt(2 ((1 − μ)² + sqrt((1 − μ)⁴ + 4 μ c²)))``, and ``r >= c`` exactly on ``[θ*, π]``.
Let ``ψ* = arg(e^{iθ*} − 1) + arg(e^{iθ*} − μ) = π/2 + θ*/2 + atan2(sin θ*, cos θ* − μ)``.

**Theorem.** The mode is stable at the constant delay τ iff ``(τ − 1) θ* + ψ* < π``, i.e. iff
``τ < τ_c = 1 + (π − ψ*)/θ*``; for ``c <= 0`` or ``c >= 2 (1 + μ)`` no delay is stable (τ_c := 0).

Proof (argument principle). On |z| = 1, ``P(e^{iθ}) = c + r(θ) e^{iφ(θ)}`` with
``r = |e^{iθ} − 1||e^{iθ} − μ|`` and ``φ = (τ − 1) θ + arg g(e^{iθ})``, and
``φ'(θ) = τ − 1/2 + (1 − μ cos θ)/(1 − 2 μ cos θ + μ²) > 0`` (for every |μ| < 1). The winding number of P around 0
counts the crossings of the ray (−∞, 0] by the curve, each counter-clockwise; they happen where
``r >= c`` (i.e. ``|θ| >= θ*``) and ``φ ≡ π (mod 2π)``. Since φ runs from π/2 at θ = 0⁺ to
``(τ + 1) π`` at θ = π, all τ + 1 (τ >= 1) roots lie inside the unit circle iff no odd multiple of π
is lost on ``(0, θ*)``, i.e. iff ``φ(θ*) < π``. ∎

Consequences used below, each an exact statement rather than a search:

* stability is monotone in τ (φ(θ*) grows with τ), so the largest stable delay is
  ``τ* = ⌈τ_c⌉ − 1``; no scan is needed and there is no limit on τ*;
* τ_c decreases as c = η a grows (θ* and ψ* increase), so the mode with the largest rate limits τ*
  and the largest stable step is ``c_b(τ, μ)/max a`` with ``c_b`` the boundary product, found by
  Brent's method on ``(τ − 1) θ + ψ(θ) = π`` (relative tolerance 4 ε);
* at τ = 0 the condition is ``0 < η a < 2 (1 + μ)`` (the Jury conditions of the quadratic).

For ``μ < 0`` a product ``c >= 2 (1 + μ)`` is unstable at τ = 0 (Jury), so no delay is counted stable
(τ_c := 0, and the boundary product is at most ``2 (1 + μ)``); tests/test_negative_momentum.py checks
the verdict against the companion matrix's roots on a grid of (c, τ, μ < 0).

The spectral radius itself need not be monotone in τ; only the verdict ``ρ < 1`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.linear_recursion import (
    Delay,
    check_parameters,
    check_rates,
    delay_law,
    spectral_radius,
)
from amsgd.diffusion.theory.lyapunov import second_moment_radius

Rates = float | Sequence[float] | np.ndarray


def crossing(product: np.ndarray | float, mu: float) -> tuple[np.ndarray, np.ndarray]:
    """``(θ*, ψ*)`` for ``c = η a`` in ``(0, 2 (1 + μ))`` (module docstring); NaN elsewhere."""
    c = np.asarray(product, dtype=float)
    with np.errstate(invalid="ignore"):  # μ < 0 and c above the maximum of r: no crossing (NaN)
        sin_half = c / np.sqrt(2.0 * ((1.0 - mu) ** 2 + np.sqrt((1.0 - mu) ** 4 + 4.0 * mu * c**2)))
    inside = (c > 0) & (c < 2.0 * (1.0 + mu)) & (sin_half < 1.0)
    theta = np.where(inside, 2.0 * np.arcsin(np.where(inside, sin_half, 0.5)), np.nan)
    return theta, _phase(theta, mu)


def _phase(theta: np.ndarray | float, mu: float) -> np.ndarray:
    """ψ(θ) = arg(e^{iθ} − 1) + arg(e^{iθ} − μ), continuous on [0, π]."""
    return np.pi / 2 + theta / 2 + np.arctan2(np.sin(theta), np.cos(theta) - mu)


def critical_delay(rates: Rates, eta: float, mu: float) -> np.ndarray:
    """τ_c per mode: a constant delay τ is stable iff τ < τ_c; ``τ_c = 0`` when no delay is stable.

    ``τ_c = 1 + (π − ψ*)/θ*`` (module docstring). Asymptotically, for ``η a ≪ (1 − μ)²``,
    ``τ_c ≈ π (1 − μ)/(2 η a) + 1/2 − 1/(1 − μ)``, and for ``(1 − μ)² ≪ η a ≪ 1 − μ``,
    ``τ_c ≈ (1 − μ)/(η a)``: linear in 1 − μ in both regimes.
    """
    eta, mu = check_parameters(eta, mu)
    return _tau_c(eta * check_rates(rates), mu)


def _tau_c(product: np.ndarray | float, mu: float) -> np.ndarray:
    """τ_c for products ``c = η a`` and any μ in [0, 1] (unvalidated, for root finding)."""
    theta, psi = crossing(product, mu)
    missing = np.isnan(theta)
    return np.where(missing, 0.0, 1.0 + (np.pi - psi) / np.where(missing, 1.0, theta))


def boundary_product(mu: float, tau: int) -> float:
    """``c_b(τ, μ)``: the constant delay τ is stable iff ``0 < η a < c_b`` (``2 (1 + μ)`` at τ = 0).

    For τ >= 1 the crossing angle solves ``(τ − 1) θ + ψ(θ) = π`` on (0, π) (Brent's method,
    relative tolerance 4 ε), and ``c_b = 2 sin(θ/2) |e^{iθ} − μ|``.
    """
    if tau == 0:
        return 2.0 * (1.0 + mu)
    theta = scipy.optimize.brentq(
        lambda t: (tau - 1) * t + _phase(t, mu) - np.pi, 0.0, np.pi, xtol=np.finfo(float).tiny
    )
    return float(min(2.0 * np.sin(theta / 2) * abs(np.exp(1j * theta) - mu), 2.0 * (1.0 + mu)))


@dataclass(frozen=True)
class StabilityMargin:
    """The largest stable value of one parameter (``"tau"``, ``"eta"`` or ``"mu"``), the others fixed.

    ``per_mode[i]`` is the bound mode i alone would allow; ``limiting_mode`` indexes the given rates.
    """

    parameter: str
    value: float
    limiting_mode: int
    per_mode: tuple[float, ...]

    def to_dict(self) -> dict:
        return {
            "parameter": self.parameter,
            "value": self.value,
            "limiting_mode": self.limiting_mode,
            "per_mode": [json_float(v) for v in self.per_mode],
        }


def max_stable_delay(rates: Rates, eta: float, mu: float) -> StabilityMargin:
    """τ*: the largest constant delay at which every mode is stable, ``⌈min_i τ_c,i⌉ − 1``.

    Because stability is monotone in τ (module docstring), every delay 0..τ* is stable and every
    larger one unstable. Raises ProblemError when even τ = 0 is unstable.
    """
    a = check_rates(rates)
    tau_c = critical_delay(a, eta, mu)
    _require_stable_somewhere(
        a, tau_c, f"at every delay with mu {mu:g}: even delay 0 needs eta * rate < 2 (1 + mu)"
    )
    per_mode = _largest_stable_delay(tau_c)
    mode = int(np.argmin(tau_c))
    return StabilityMargin("tau", int(per_mode[mode]), mode, tuple(int(t) for t in per_mode))


def largest_stable_delay(rates: Rates, eta: float, mu: float) -> int | None:
    """τ*: the largest constant delay at which every mode is stable; None when not even τ = 0 is."""
    tau_c = critical_delay(rates, eta, mu)
    return int(_largest_stable_delay(tau_c).min()) if np.all(tau_c > 0) else None


def _largest_stable_delay(tau_c: np.ndarray) -> np.ndarray:
    """τ* = ⌈τ_c⌉ − 1: the largest integer strictly below τ_c (−1 when no delay is stable)."""
    return np.ceil(tau_c) - 1


def max_stable_step(rates: Rates, mu: float, delay: Delay) -> StabilityMargin:
    """The supremum of stable step sizes for a constant delay: ``c_b(τ, μ)/max_i a_i``.

    Stability is monotone in η (module docstring), so every smaller η > 0 is stable.
    """
    a = check_rates(rates)
    _, mu = check_parameters(1.0, mu)
    tau = _constant_tau(delay)
    if np.any(a <= 0):
        raise ProblemError(f"every rate must be > 0 for a step size to be stable, got {a.tolist()}")
    per_mode = boundary_product(mu, tau) / a
    mode = int(np.argmin(per_mode))
    return StabilityMargin("eta", float(per_mode[mode]), mode, tuple(per_mode.tolist()))


def max_stable_momentum(rates: Rates, eta: float, delay: Delay) -> StabilityMargin:
    """The supremum of stable momenta μ in [0, 1) for a constant delay τ and step η.

    For τ >= 1, τ_c decreases in μ wherever τ_c >= 1 (checked numerically on a fine grid over
    η a in [1e-6, 3.5]; see docs/linear-theory.md) and tends to 0 as μ → 1, so the stable momenta
    form an interval [0, μ_max) and μ_max solves ``min_i τ_c,i(μ) = τ`` (Brent's method, absolute
    tolerance 1e-14). For τ = 0 every μ close enough to 1 is stable and the supremum is 1.
    """
    a = check_rates(rates)
    eta, _ = check_parameters(eta, 0.0)
    tau = _constant_tau(delay)
    if tau == 0:
        # Stable iff 0 < η a < 2 (1 + μ): the set of stable μ is (max(0, η a/2 − 1), 1).
        _require_stable_somewhere(
            a, np.minimum(a, 4.0 - eta * a), "at delay 0 for every mu: that needs eta * rate < 4"
        )
        return StabilityMargin("mu", 1.0, int(np.argmax(a)), tuple(1.0 for _ in a))
    _require_stable_somewhere(a, critical_delay(a, eta, 0.0) - tau, f"at delay {tau} even with mu 0")

    def bound(rate: float) -> float:
        return scipy.optimize.brentq(
            lambda m: float(_tau_c(eta * rate, m)) - tau, 0.0, 1.0, xtol=1e-14, rtol=1e-14
        )

    per_mode = np.array([bound(r) for r in a])
    mode = int(np.argmin(per_mode))
    return StabilityMargin("mu", float(per_mode[mode]), mode, tuple(per_mode.tolist()))


def max_stable_negative_momentum(rates: Rates, eta: float, tau: int, points: int = 400) -> float | None:
    """The supremum of the momenta μ in (−1, 0) at which every mode's mean is stable at the constant
    delay τ (``τ < τ_c,i(μ)``), for a delay that μ = 0 does not hold (negative momentum damps the
    delayed oscillation); None when none is. The stable momenta below 0 need not form one interval,
    so the margin ``min_i τ_c,i(μ) − τ`` is scanned on ``points`` momenta and the crossing above the
    largest stable one refined by Brent's method (absolute tolerance 1e-14)."""
    a = check_rates(rates)
    eta, _ = check_parameters(eta, 0.0)

    def margin(mu: float) -> float:
        return float(critical_delay(a, eta, mu).min()) - tau

    grid = np.linspace(-1.0, 0.0, points + 1)[1:]  # (−1, 0]
    stable = np.flatnonzero([margin(mu) > 0 for mu in grid])
    if stable.size == 0:
        return None
    last = int(stable[-1])
    if last == grid.size - 1:  # μ = 0 holds the delay after all
        return 0.0
    return float(scipy.optimize.brentq(margin, grid[last], grid[last + 1], xtol=1e-14, rtol=1e-14))


def _constant_tau(delay: Delay) -> int:
    law = delay_law(delay)
    if law.constant is None:
        raise ProblemError(f"this bound needs a constant delay, got delay {law.spec}")
    return law.constant


def _require_stable_somewhere(a: np.ndarray, margin: np.ndarray, where: str) -> None:
    """Raise when some mode has no stable setting (``margin <= 0``), naming the mode and the cause."""
    bad = np.flatnonzero(np.asarray(margin) <= 0)
    if bad.size == 0:
        return
    i = int(bad[0])
    if a[i] <= 0:
        raise ProblemError(f"mode {i} has rate {a[i]:g} <= 0: it is not restoring, no setting is stable")
    raise ProblemError(f"mode {i} (rate {a[i]:g}) is unstable {where}")


@dataclass(frozen=True)
class StabilityReport:
    """Linear stability of all modes at one (η, μ, delay), and the largest stable constant delay.

    ``spectral_radii`` are those of the mean dynamics, ``second_moment_radii`` those of
    ``M ↦ E[A M Aᵀ]`` (equal to ``ρ²`` for a constant delay); ``stable`` means mean-square stable.
    ``tau_max`` is τ* for these rates (None when even τ = 0 is unstable) and ``limiting_mode`` the
    mode that sets it.
    """

    eta: float
    mu: float
    delay: str
    rates: tuple[float, ...]
    spectral_radii: tuple[float, ...]
    second_moment_radii: tuple[float, ...]
    critical_delays: tuple[float, ...]
    tau_max: int | None
    limiting_mode: int

    @property
    def spectral_radius(self) -> float:
        return max(self.spectral_radii)

    @property
    def slowest_mode(self) -> int:
        return int(np.argmax(self.spectral_radii))

    @property
    def stable(self) -> bool:
        return max(self.second_moment_radii) < 1.0

    @property
    def decay_per_iteration(self) -> float:
        """``−log ρ`` of the slowest mode's mean (negative when unstable)."""
        with np.errstate(divide="ignore"):
            return float(-np.log(self.spectral_radius))

    @property
    def decay_per_unit_time(self) -> float:
        """``−log(ρ)/η``: the same rate per unit of diffusion time t = k η."""
        return self.decay_per_iteration / self.eta

    def to_dict(self) -> dict:
        return {
            "eta": self.eta,
            "mu": self.mu,
            "delay": self.delay,
            "rates": list(self.rates),
            "stable": self.stable,
            "spectral_radius": self.spectral_radius,
            "spectral_radii": list(self.spectral_radii),
            "second_moment_radii": list(self.second_moment_radii),
            "slowest_mode": self.slowest_mode,
            "decay_per_iteration": json_float(self.decay_per_iteration),
            "decay_per_unit_time": json_float(self.decay_per_unit_time),
            "tau_max": self.tau_max,
            "limiting_mode": self.limiting_mode,
            "critical_delays": [json_float(t) for t in self.critical_delays],
        }


def stability_report(rates: Rates, eta: float, mu: float, delay: Delay = 0) -> StabilityReport:
    """Spectral radii of every mode at the given delay, and τ* with the mode that limits it."""
    a = check_rates(rates)
    eta, mu = check_parameters(eta, mu)
    law = delay_law(delay)
    tau_c = critical_delay(a, eta, mu)
    return StabilityReport(
        eta=eta,
        mu=mu,
        delay=law.spec,
        rates=tuple(a.tolist()),
        spectral_radii=tuple(spectral_radius(r, eta, mu, law) for r in a),
        second_moment_radii=tuple(second_moment_radius(r, eta, mu, law) for r in a),
        critical_delays=tuple(tau_c.tolist()),
        tau_max=int(_largest_stable_delay(tau_c).min()) if np.all(tau_c > 0) else None,
        limiting_mode=int(np.argmin(tau_c)),
    )
