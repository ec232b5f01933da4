"""Interval estimates the checks need beyond a mean over replicates.

Means over replicates use :func:`amsgd.simulate.result.t_interval` (two-sided 95% Student-t).
Here:

* :func:`crossing_interval`: when a mean curve first reaches a level, with the interval given by the
  first crossings of the pointwise 95% band (for a monotone mean curve the true crossing lies
  between them whenever the band covers the curve);
* :func:`decay_rate`: the exponential rate of a mean curve ``m(k) ≈ A e^{−r k}`` by least squares
  on ``log m`` over a window, with a percentile bootstrap interval over replicates;
* :func:`ratio_interval`: a ratio of two independent means by the delta method;
* :func:`proportion_interval`: the Clopper–Pearson interval of a fraction (from :mod:`amsgd.core.estimates`, where the theory uses it too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from amsgd.core.estimates import CONFIDENCE, Estimate, proportion_interval, t_interval

#: Bootstrap resamples for the interval of a fitted rate (fixed seed: reproducible reports).
BOOTSTRAP_RESAMPLES = 400
BOOTSTRAP_SEED = 20180601


def pointwise_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over rows of ``values`` (replicates × times) with the pointwise 95% t-band (NaN where
    there are no rows: every run diverged)."""
    x = np.asarray(values, dtype=float)
    n = x.shape[0]
    if n == 0:
        nothing = np.full(x.shape[1:], np.nan)
        return nothing, nothing.copy(), nothing.copy()
    mean = x.mean(axis=0)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, max(n - 1, 1)) * x.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def first_crossing(times: np.ndarray, curve: np.ndarray, level: float, upward: bool = True) -> float:
    """The first time at which ``curve`` reaches ``level`` (linear interpolation; NaN if never)."""
    hit = curve >= level if upward else curve <= level
    if not hit.any():
        return math.nan
    i = int(np.argmax(hit))
    if i == 0:
        return float(times[0])
    c0, c1 = curve[i - 1], curve[i]
    frac = (level - c0) / (c1 - c0) if c1 != c0 else 1.0
    return float(times[i - 1] + frac * (times[i] - times[i - 1]))


def crossing_interval(times: np.ndarray, values: np.ndarray, level: float) -> Estimate:
    """First time the mean of an increasing quantity reaches ``level``, with the band's crossings."""
    mean, low, high = pointwise_band(values)
    point = first_crossing(times, mean, level)
    early = first_crossing(times, high, level)
    late = first_crossing(times, low, level)
    return Estimate(point, early, late, (late - early) / (2 * 1.96), int(values.shape[0]))


@dataclass(frozen=True)
class RateFit:
    """``m(k) ≈ A e^{−r k}`` fitted on iterations ``window``; ``rate`` per iteration with its interval."""

    rate: float
    ci_low: float
    ci_high: float
    window: tuple[float, float]
    iterations: np.ndarray
    mean: np.ndarray
    amplitude: float


def decay_rate(iterations: np.ndarray, values: np.ndarray, first: float, min_snr: float = 10.0,
               min_fraction: float = 0.02, frequency: float = 0.0) -> RateFit:  # fmt: skip
    """Fit the decay rate of the mean over replicates (rows of ``values``) of a decaying quantity.

    The window starts at iteration ``first`` and ends before the mean falls below ``min_fraction`` of its
    value at ``first``, or below ``min_snr`` standard errors at two records in a row: at one record alone
    that is one replicate's large step (heavy-tailed data), which inflates the standard error there and
    leaves the mean where it was (Student-t 6 data at η 0.01: 93, 75, then 9 standard errors, then 40
    again). The interval is the percentile bootstrap over replicates (:data:`BOOTSTRAP_RESAMPLES`
    resamples, fixed seed).

    With ``frequency`` ω > 0 (a complex dominant root ``e^{−r ± iω}``) the mean oscillates and changes
    sign, so a straight line through its logarithm means nothing: the fit is
    ``m(k) ≈ e^{−r k} (A cos ω' k + B sin ω' k)`` by least squares in ``(r, ω')`` (``A, B`` solved
    linearly for each), started at ω, and the window ends where the envelope (the largest ``|m|``
    from there on) falls below those thresholds; ``amplitude`` is ``√(A² + B²)``.
    """
    x = np.asarray(values, dtype=float)
    n = x.shape[0]
    if n < 2:  # no spread to fit against (every run, or every run but one, diverged)
        mean = x[0] if n else np.full(x.shape[1:], np.nan)
        return RateFit(math.nan, math.nan, math.nan, (math.nan, math.nan), iterations, mean, math.nan)
    mean = x.mean(axis=0)
    se = x.std(axis=0, ddof=1) / math.sqrt(n)
    start = int(np.searchsorted(iterations, first))
    level = mean if frequency <= 0.0 else np.maximum.accumulate(np.abs(mean)[::-1])[::-1]
    decayed = ~(level[start:] > min_fraction * level[min(start, level.size - 1)])
    noisy = ~(level[start:] > min_snr * se[start:])
    ends = decayed | (noisy & np.append(noisy[1:], True))
    sel = np.arange(start, start + int(np.argmax(ends)) if ends.any() else level.size)
    if sel.size < (3 if frequency <= 0.0 else 5):
        return RateFit(math.nan, math.nan, math.nan, (math.nan, math.nan), iterations, mean, math.nan)
    k = np.asarray(iterations, dtype=float)[sel]
    fit = _exponential_fit(k, sel) if frequency <= 0.0 else _oscillating_fit(k, sel, frequency, mean)
    rate, amplitude = fit(mean)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP_RESAMPLES) / n
    boots = np.array([fit(w @ x)[0] for w in weights])
    lo, hi = np.percentile(boots, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return RateFit(rate, float(lo), float(hi), (float(k[0]), float(k[-1])), iterations, mean, amplitude)


def _exponential_fit(k: np.ndarray, sel: np.ndarray) -> Callable[[np.ndarray], tuple[float, float]]:
    """``(rate, amplitude)`` of a straight line through ``log m`` on the window."""

    def fit(curve: np.ndarray) -> tuple[float, float]:
        y = np.log(np.clip(curve[sel], 1e-300, None))
        slope, intercept = np.polyfit(k, y, 1)
        return -float(slope), float(np.exp(intercept))

    return fit


def _oscillating_fit(k: np.ndarray, sel: np.ndarray, frequency: float,
                     mean: np.ndarray) -> Callable[[np.ndarray], tuple[float, float]]:  # fmt: skip
    """``(rate, amplitude)`` of ``e^{−r k}(A cos ωk + B sin ωk)`` on the window (:func:`decay_rate`), the
    nonlinear pair ``(r, ω)`` started from a fit to the mean (the bootstrap's curves start there too)."""
    import scipy.optimize

    t = k - k[0]

    def basis(r: float, w: float) -> np.ndarray:
        return np.exp(-r * t)[:, None] * np.column_stack([np.cos(w * t), np.sin(w * t)])

    def solve(curve: np.ndarray, guess: tuple[float, float]) -> tuple[float, float, np.ndarray]:
        y = curve[sel]

        def residual(p: np.ndarray) -> np.ndarray:
            b = basis(*p)
            return b @ np.linalg.lstsq(b, y, rcond=None)[0] - y

        r, w = scipy.optimize.least_squares(residual, guess, method="lm").x
        return float(r), float(w), np.linalg.lstsq(basis(r, w), y, rcond=None)[0]

    envelope = np.abs(mean[sel])
    slope = -np.polyfit(t, np.log(np.maximum.accumulate(envelope[::-1])[::-1] + 1e-300), 1)[0]
    r0, w0, _ = solve(mean, (max(float(slope), 1e-12), frequency))

    def fit(curve: np.ndarray) -> tuple[float, float]:
        r, _, ab = solve(curve, (r0, w0))
        return r, float(np.hypot(*ab)) * math.exp(r * k[0])

    return fit


def ratio_interval(numerator: Estimate, denominator: Estimate) -> Estimate:
    """``a/b`` of two independent means with the delta-method 95% interval: standard error
    ``sqrt(se_a² + (a/b)² se_b²)/|b|``, Student's quantile at the smaller count less one."""
    if not (numerator.n > 1 and denominator.n > 1 and denominator.mean != 0):
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    r = numerator.mean / denominator.mean
    se = math.hypot(numerator.std_error, r * denominator.std_error) / abs(denominator.mean)  # a numerator of 0 too
    n = min(numerator.n, denominator.n)
    q = stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1)  # as the means' own intervals: few runs widen it
    return Estimate(r, r - q * se, r + q * se, se, n)


__all__ = [
    "Estimate",
    "RateFit",
    "crossing_interval",
    "decay_rate",
    "first_crossing",
    "pointwise_band",
    "proportion_interval",
    "ratio_interval",
    "t_interval",
]
