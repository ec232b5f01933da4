"""Is an averaging window stationary? Its two halves compared replicate by replicate.

The "stationary" error of a run is a time average over a window ``start <= k <= end``. When the
window opens before the runs have settled (from a saddle with too few steps), the average is biased
and nothing else shows it. The rule: split the window at :func:`window_split`, take each replicate's
average over each half, and call the window drifting when the paired interval of the differences
excludes 0 *and* the mean difference is more than :data:`DRIFT_TOLERANCE` of the estimate (a
significant but negligible drift, with many replicates, is not flagged). A difference of more than
:data:`UNDECIDED` of the estimate that the replicates cannot tell from noise leaves it undecided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from amsgd.core.estimates import UNBOUNDED, Estimate, json_float, paired_difference, t_interval

#: The stationarity rule of an averaging window: its two halves' means differ at this confidence...
DRIFT_CONFIDENCE = 0.99
#: ...and by more than this fraction of the window's estimate (smaller drifts are negligible).
DRIFT_TOLERANCE = 0.05
#: Halves that differ by more than this fraction of the estimate, though not significantly, leave the
#: check undecided (too few replicates to tell such a drift from noise).
UNDECIDED = 0.2


def window_split(start: int, end: int) -> int:
    """The first iteration of the second half of the window ``start <= k <= end``: the first half
    has ``(end − start + 1) // 2`` iterations, the second the others (one more when their number is odd)."""
    return start + (end - start + 1) // 2


@dataclass(frozen=True)
class Stationarity:
    """Whether an averaging window ``start <= k <= end`` looks stationary: its first half
    (``start <= k < split``) against its second (``split <= k <= end``), replicate by replicate.

    ``first`` and ``second`` are the across-replicate means of the halves' per-replicate averages
    (95% intervals); ``difference`` is their paired difference (first − second) at
    :data:`DRIFT_CONFIDENCE`; ``estimate`` is the window's own estimate. The window **drifts**
    (``stationary`` False) when that interval excludes 0 and ``|difference| > DRIFT_TOLERANCE · scale``,
    the scale being ``|estimate|`` or, for a quantity in [0, ``bound``] (sin² in [0, 1]), the
    smaller of ``|estimate|`` and ``bound − estimate``: near the bound (runs still at a saddle) a
    small change is the transient itself. The check is undefined (None) with fewer than two
    replicates or an empty half, and undecided (None, with a message) where the halves differ by
    more than :data:`UNDECIDED` of that scale but the interval does not exclude 0 (:attr:`undecided`).
    ``predicted_escape`` and ``predicted_arrival`` are the theory's mean escape from the start point
    and arrival near the floor (escape, travel and convergence), in iterations, when supplied; a window
    that starts before the escape is reported (``before_escape``) but does not decide ``stationary``.
    """

    start: int
    split: int
    end: int
    first: Estimate
    second: Estimate
    difference: Estimate
    estimate: float
    bound: float | None = None
    advice: str = ""
    predicted_escape: float | None = None
    predicted_arrival: float | None = None
    #: what the runs are called and the option that sets their number, for the messages
    runs: tuple[str, str] = ("replicates", "--replicates")

    @property
    def near_bound(self) -> bool:
        """Whether the drift is measured against ``bound − estimate`` rather than the estimate."""
        return self.bound is not None and self.bound - self.estimate < abs(self.estimate)

    @property
    def relative_difference(self) -> float:
        """``|difference| / scale`` (inf when the scale is 0 and the difference is not)."""
        d = abs(self.difference.mean)
        e = max(self.bound - self.estimate, 0.0) if self.near_bound else abs(self.estimate)
        if e > 0:
            return d / e
        return 0.0 if d == 0 else math.inf

    @property
    def significant(self) -> bool:
        """Whether the interval of the difference excludes 0, however small the difference."""
        return bool(self.difference.ci_low > 0 or self.difference.ci_high < 0)

    @property
    def compared(self) -> bool:
        """Whether there is anything to compare: two replicates or more, and a finite interval."""
        diff = self.difference
        return diff.n >= 2 and math.isfinite(diff.ci_low) and math.isfinite(diff.ci_high)

    @property
    def undecided(self) -> bool:
        """Whether the halves differ by more than :data:`UNDECIDED` of the scale though not significantly:
        the replicates are too few to tell such a drift from noise."""
        return self.compared and not self.significant and self.relative_difference > UNDECIDED

    @property
    def stationary(self) -> bool | None:
        if not self.compared or self.undecided:
            return None
        return not (self.significant and self.relative_difference > DRIFT_TOLERANCE)

    @property
    def before_escape(self) -> bool | None:
        """Whether the window starts before the predicted escape (None: no prediction)."""
        if not _known(self.predicted_escape):
            return None
        return bool(self.start < self.predicted_escape)

    @property
    def message(self) -> str | None:
        """One line saying how the window drifts and what to do; None when it is stationary and does
        not start before the predicted escape."""
        drifts, early, undecided = self.stationary is False, self.before_escape is True, self.undecided
        if not (drifts or early or undecided):
            return None
        d = self.difference
        text = f"the averaging window (iterations {self.start}..{self.end})"
        if drifts:
            text += " is not stationary"
        elif not undecided and self.split != self.start and d.n >= 2:  # halves compared: no drift to speak of
            text += " is not shown to drift"
        if undecided:
            text += f" cannot be told stationary or not with {d.n} {self.runs[0]}"
        if self.split == self.start:
            text += " has one iteration: no halves to compare"
        elif d.n < 2:  # no interval for the difference of the halves, nor a verdict
            text += (f": its halves are compared over two or more {self.runs[0]} that stay finite, and "
                     f"{'one' if d.n == 1 else 'none'} did; use more {self.runs[0]} ({self.runs[1]})")  # fmt: skip
        else:
            text += (
                f": its first half averages {self.first.mean:.4g} and its second {self.second.mean:.4g} "
                f"(difference {d.mean:.3g}, {DRIFT_CONFIDENCE:.0%} CI [{d.ci_low:.3g}, {d.ci_high:.3g}], "
                f"{self.relative_difference:.0%} of {self._scale_name})"
            )
        if early:
            text += f"; the window starts before the predicted escape (~{self.predicted_escape:.0f} iterations)"
        elif _known(self.predicted_escape):
            text += f"; the window starts after the predicted mean escape (~{self.predicted_escape:.0f} iterations)"
            if _known(self.predicted_arrival) and self.start < self.predicted_arrival:
                text += f" but before the mean error's predicted arrival near the floor (~{self.predicted_arrival:.0f})"
            elif _known(self.predicted_arrival):
                text += (f" and the mean error's arrival near the floor (~{self.predicted_arrival:.0f}), which it "
                         "approaches only slowly from there, as the last runs escape")  # fmt: skip
        if undecided:
            text += f"; use more {self.runs[0]} ({self.runs[1]})"
        return f"{text}; {self.advice}" if self.advice else text

    @property
    def _scale_name(self) -> str:
        if self.near_bound:
            return f"{self.bound:g} - the estimate {self.estimate:.4g}"
        return f"the estimate {self.estimate:.4g}"

    @staticmethod
    def _iterations(first: int, last: int) -> list[int] | None:
        """A half's first and last iteration; None for an empty half (a window of one iteration)."""
        return [first, last] if last >= first else None

    def to_dict(self) -> dict:
        out = {
            "rule": (
                f"the window drifts when the paired {DRIFT_CONFIDENCE:.0%} Student-t interval of the per-replicate "
                f"difference first half - second half excludes 0 and the difference exceeds "
                f"{DRIFT_TOLERANCE:.0%} of the estimate"
                + ("" if self.bound is None else f", or of {self.bound:g} - estimate when that is smaller")
                + f"; undecided (null) when the halves differ by more than {UNDECIDED:.0%} of it but not significantly"
            ),
            "first_half": {"iterations": self._iterations(self.start, self.split - 1), **self.first.to_dict()},
            "second_half": {"iterations": self._iterations(self.split, self.end), **self.second.to_dict()},
            "difference": {**self.difference.to_dict(), "confidence": DRIFT_CONFIDENCE},
            "relative_difference": json_float(self.relative_difference),
            "tolerance": DRIFT_TOLERANCE,
            "predicted_escape": json_float(self.predicted_escape) if _known(self.predicted_escape) else None,
            "predicted_arrival": json_float(self.predicted_arrival) if _known(self.predicted_arrival) else None,
            "before_escape": self.before_escape,
            "stationary": self.stationary,
        }
        if self.message is not None:
            out["message"] = self.message
        return out


def _known(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def window_stationarity(first: np.ndarray, second: np.ndarray, *, start: int, end: int, estimate: float,
                        **context) -> Stationarity:  # fmt: skip
    """The :class:`Stationarity` of the window ``start..end`` from each replicate's averages over its two
    halves (split at :func:`window_split`; NaN for a replicate left out, e.g. diverged); ``context`` sets
    the other fields (``bound``, ``advice``, the predicted escape and arrival). With a ``bound`` the
    averages lie in [0, bound] and their difference in [−bound, bound]: the intervals are cut to those."""
    bound = context.get("bound")
    halves = UNBOUNDED if bound is None else (0.0, bound)
    difference = UNBOUNDED if bound is None else (-bound, bound)
    return Stationarity(
        start, window_split(start, end), end, t_interval(first, support=halves), t_interval(second, support=halves),
        paired_difference(first, second, DRIFT_CONFIDENCE, difference), float(estimate), **context,
    )  # fmt: skip
