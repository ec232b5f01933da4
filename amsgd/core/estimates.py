"""Interval estimates shared by every measurement: a mean with its Student-t confidence interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from amsgd.core import checks
from amsgd.core.errors import ProblemError

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean over replicates with its 95% Student-t confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    std_error: float
    n: int

    def to_dict(self) -> dict:
        return {
            "mean": json_float(self.mean),
            "ci_low": json_float(self.ci_low),
            "ci_high": json_float(self.ci_high),
            "std_error": json_float(self.std_error),
            "n": self.n,
        }


#: No bounds: the range of a quantity that can take any real value.
UNBOUNDED = (-math.inf, math.inf)


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE, support: tuple[float, float] = UNBOUNDED) -> Estimate:
    """Mean of the finite ``values`` with the two-sided Student-t interval at ``confidence``.

    The interval is cut to ``support``, the range the mean lies in by construction (an error
    ``sin²`` in [0, 1], a squared norm >= 0): an interval that covers the true mean still covers it
    once cut, so the coverage is unchanged, and a few replicates no longer give a bound no such mean
    can reach (an error "between −3.0 and 4.2"). ``confidence`` outside (0, 1) is refused (it gave NaN
    bounds, or [low, high] of the support at 1, without a word)."""
    confidence = checks.confidence(confidence)
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, math.nan, 1)
    se = float(x.std(ddof=1) / math.sqrt(n))
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * se  # the Student-t quantile (stats.t.ppf)
    low, high = support
    return Estimate(mean, max(mean - half, low), min(mean + half, high), se, n)


def proportion_interval(count: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """The fraction ``count/n`` with its Clopper–Pearson (exact binomial) interval (95% by default): the
    ends are the beta quantiles ``B(α/2; k, n − k + 1)`` and ``B(1 − α/2; k + 1, n − k)``, 0 at k = 0 and
    1 at k = n."""
    alpha = 1 - checks.confidence(confidence)
    if not (checks.is_whole_number(count) and checks.is_whole_number(n) and 0 <= count <= n and n >= 1):
        raise ProblemError(f"a proportion needs whole numbers 0 <= count <= n and n >= 1, got {count!r} of {n!r}")
    low = 0.0 if count == 0 else float(special.betaincinv(count, n - count + 1, alpha / 2))
    high = 1.0 if count == n else float(special.betaincinv(count + 1, n - count, 1 - alpha / 2))
    p = count / n
    return Estimate(p, low, high, math.sqrt(p * (1 - p) / n), n)


def json_float(x: float) -> float | None:
    """``x``, or None where JSON has no number (NaN, ±inf)."""
    return float(x) if math.isfinite(x) else None


def json_values(values: np.ndarray) -> list:
    """An array of any shape as nested lists of :func:`json_float`."""
    array = np.asarray(values, dtype=float)
    return np.where(np.isfinite(array), array, None).tolist()


def paired_difference(first: np.ndarray, second: np.ndarray, confidence: float = CONFIDENCE,
                      support: tuple[float, float] = UNBOUNDED) -> Estimate:  # fmt: skip
    """The mean of ``first − second`` over the pairs where both are finite, with the Student-t interval
    of the per-pair differences (cut to ``support``): each pair comes from one replicate, so the
    correlation between a replicate's two values is accounted for."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    both = np.isfinite(a) & np.isfinite(b)
    return t_interval(a[both] - b[both], confidence, support)


def ratio_of_means(numerator: np.ndarray, denominator: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """``mean(x)/mean(y)`` over the pairs where both are finite, with the delta-method interval: the
    Student-t interval of the linearised residuals ``(x − R y)/mean(y)``, one per pair. When every x
    is >= 0 and every y > 0 the ratio cannot be negative, and the interval is cut at 0 (with few
    pairs the symmetric interval reaches below it)."""
    x, y = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0 or y.mean() == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, int(x.size))
    ratio = float(x.mean() / y.mean())
    spread = t_interval((x - ratio * y) / y.mean(), confidence)
    half = spread.ci_high - spread.mean if x.size > 1 else math.nan
    low = ratio - half
    if low < 0.0 and np.all(x >= 0.0) and np.all(y > 0.0):
        low = 0.0
    return Estimate(ratio, low, ratio + half, spread.std_error, int(x.size))
