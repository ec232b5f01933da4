"""One validation check: a prediction, its measurement with a 95% confidence interval, and a verdict.

A check passes by one of three relations, stated in the check itself:

* ``"inside"``: the prediction lies inside the measured interval widened on each side by an explicit
  model tolerance, ``ci_low − tol <= predicted <= ci_high + tol``. The tolerance is zero unless the
  prediction is a limit whose next-order term is known to be of a given size; each check then says
  why (``tolerance_reason``);
* ``"below"``: the whole interval lies below the predicted bound, ``ci_high < predicted``;
* ``"above"``: the whole interval lies above the predicted bound, ``ci_low > predicted``;
* ``"window"``: the measured value lies in the accepted window ``window[0] < measured <= window[1]``
  derived from the prediction (used for a knee located on a grid of delays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float

if TYPE_CHECKING:
    from amsgd.diffusion.theory.report import AccuracyNote

Relation = Literal["inside", "below", "above", "window"]


def _clean(x: float | None) -> float | None:
    return None if x is None else json_float(x)


@dataclass(frozen=True)
class Check:
    """A named comparison of ``predicted`` with ``measured`` and its interval ``[ci_low, ci_high]``."""

    name: str
    group: str
    predicted: float
    measured: float
    ci_low: float
    ci_high: float
    relation: Relation = "inside"
    tolerance: float = 0.0
    tolerance_reason: str = ""
    unit: str = ""
    criterion: str = ""
    context: dict = field(default_factory=dict)
    extra_pass: bool = True  # an additional condition stated in ``criterion`` (e.g. no divergence)
    window: tuple[float, float] | None = None
    out_of_range: str = ""  # why the prediction lies outside its theory's range (then the check fails)
    undecided: str = ""  # why these runs cannot decide the check (then it fails, and says so)
    #: where the theory itself says its accuracy was measured off at these parameters (``derive``'s
    #: accuracy notes of the prediction); they explain a failure, they do not change the verdict
    accuracy_notes: tuple[AccuracyNote, ...] = ()

    @property
    def passed(self) -> bool:
        if self.out_of_range or self.undecided:
            return False
        if self.relation == "window":
            lo, hi = self.window  # type: ignore[misc]
            return bool(math.isfinite(self.measured) and lo < self.measured <= hi and self.extra_pass)
        if not all(math.isfinite(v) for v in (self.predicted, self.ci_low, self.ci_high)):
            return False
        if self.relation == "inside":
            ok = self.ci_low - self.tolerance <= self.predicted <= self.ci_high + self.tolerance
        elif self.relation == "below":
            ok = self.ci_high < self.predicted
        else:
            ok = self.ci_low > self.predicted
        return bool(ok and self.extra_pass)

    @property
    def failure(self) -> str | None:
        """Why the check fails, in words (None when it passes): no prediction, nothing measured (every
        run diverged), runs diverged where the criterion allows none (or outside the predicted
        divergence risk), or the comparison itself."""
        if self.passed:
            return None
        if self.out_of_range:
            return f"the prediction is outside its theory's range: {self.out_of_range}"
        if self.undecided:
            return f"these runs cannot decide it: {self.undecided}"
        diverged = self.context.get("diverged_fraction")
        if not math.isfinite(self.predicted):
            return "the theory gives no finite prediction at these parameters"
        if self.relation == "window" and not math.isfinite(self.measured):
            return "nothing was measured" + (f": {self.context['unmeasured']}" if "unmeasured" in self.context else "")
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)) and self.relation != "window":
            every = diverged == 1.0 or self.context.get("replicates") == 0
            return "nothing was measured" + (": every run diverged" if every else "")
        if not self.extra_pass:
            if diverged and "predicted_diverged_interval" in self.context:
                low, high = self.context["predicted_diverged_interval"]
                return (f"{diverged:.1%} of the runs diverged, which the predicted divergence risk "
                        f"{self.context['predicted_diverged_fraction']:.2%} [{low:.2%}, {high:.2%}] does not allow")
            if diverged:
                return f"{diverged:.1%} of the runs diverged, where the criterion allows none"
            return f"its criterion is not met ({self.criterion})"
        return {
            "inside": "the prediction lies outside the interval widened by the tolerance",
            "below": "the interval reaches the predicted bound",
            "above": "the interval reaches down to the predicted bound",
            "window": "the measured value lies outside the accepted window",
        }[self.relation]

    @property
    def noted_topics(self) -> str:
        """The topics of the accuracy notes, as "A, B and C" ("" without notes)."""
        if not self.accuracy_notes:
            return ""
        *first, last = [note.topic for note in self.accuracy_notes]
        return f"{', '.join(first)} and {last}" if first else last

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "group": self.group,
            "predicted": _clean(self.predicted),
            "measured": _clean(self.measured),
            "ci_low": _clean(self.ci_low),
            "ci_high": _clean(self.ci_high),
            "pass": self.passed,
            "relation": self.relation,
            "tolerance": _clean(self.tolerance),
            "unit": self.unit,
            "criterion": self.criterion or _default_criterion(self.relation),
        }
        if self.window is not None:
            out["window"] = [_clean(self.window[0]), _clean(self.window[1])]
        if self.tolerance_reason:
            out["tolerance_reason"] = self.tolerance_reason
        if self.out_of_range:
            out["out_of_range"] = self.out_of_range
        if self.undecided:
            out["undecided"] = self.undecided
        if self.accuracy_notes:
            out["accuracy_notes"] = [{"topic": n.topic, "text": n.text} for n in self.accuracy_notes]
        out.update({k: _json_ready(v) for k, v in self.context.items()})
        return out


def _default_criterion(relation: Relation) -> str:
    return {
        "inside": "ci_low - tolerance <= predicted <= ci_high + tolerance",
        "below": "ci_high < predicted",
        "above": "ci_low > predicted",
        "window": "window[0] < measured <= window[1]",
    }[relation]


def _json_ready(value: object) -> object:
    if isinstance(value, float):
        return _clean(value)
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalars
        return _json_ready(value.item())
    return value


class Perturbations:
    """Hands out predictions by check name, scaled by ``perturb[name]`` when given.

    Scaling one prediction by a wrong factor is how the validation is shown to be able to fail
    (``amsgd validate --perturb NAME=FACTOR``); the factor used is recorded in the check.
    """

    def __init__(self, perturb: dict[str, float] | None = None) -> None:
        if not isinstance(perturb, (dict, type(None))):
            raise ProblemError(f"perturb must map check names to factors, got {type(perturb).__name__}")
        self.perturb = {}
        for name, factor in (perturb or {}).items():
            if not isinstance(name, str):
                raise ProblemError(f"perturb: check names are text, got {name!r}")
            self.perturb[name] = checks.positive(f"perturb {name}: the factor", factor)
        self.used: set[str] = set()

    def __call__(self, name: str, value: float) -> float:
        factor = self.perturb.get(name)
        if factor is None:
            return float(value)
        self.used.add(name)
        return float(value) * factor

    def factor(self, name: str) -> float | None:
        return self.perturb.get(name)

    def unused(self) -> list[str]:
        return sorted(set(self.perturb) - self.used)
