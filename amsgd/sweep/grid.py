"""The grid of a parameter sweep: its axes, the syntax that names them, and the order of its points.

An axis is written as comma-separated items, each a value or an inclusive range
``START:STOP[:STEP]``: ``0:160:10`` is 0, 10, ..., 160 (the stop is included when the steps land
on it, to within 1e-9 of a step), ``0,10,20`` lists values, and ``0:40:10,80,160`` mixes the two.
Integer axes (delays, workers) take integer ranges with STEP defaulting to 1; real axes (η, μ) need
STEP. Values are sorted and must be distinct, so every point of the grid has one address.

The grid is the Cartesian product ``distribution × eta × mu × (tau | workers)`` and its points
are numbered in C order (the last axis fastest). A point's number keys its random stream, so the
numbering is part of the reproducibility contract of a sweep. A sweep of a model other than
streaming PCA has no distribution axis (its data are fixed): the grid is ``eta × mu × (tau | workers)``,
numbered the same way, and its points have ``distribution`` None.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from amsgd.core import checks
from amsgd.core.distributions import parse_distribution
from amsgd.core.errors import ProblemError

#: The delay axes a sweep knows: a constant delay τ, or a round-robin server of M workers (τ = M − 1).
DELAY_AXES = ("tau", "workers")
#: Significant digits, at the scale of the range's largest value, kept of the values a real range generates
#: (removes 0.1 + 0.2 style residue, and a residue such as 5.6e-17 where the range crosses 0).
_RANGE_DIGITS = 12
#: The most values one axis may list (a range with a tiny step is refused before it is expanded).
MAX_AXIS_VALUES = 10_000
#: The most points a grid may have.
MAX_POINTS = 1_000_000
#: Offending values a message shows at most.
_SHOWN = 5


def parse_axis(text: str, name: str, *, integer: bool = False) -> tuple[float, ...] | tuple[int, ...]:
    """Parse ``LIST`` / ``START:STOP[:STEP]`` items (module docstring) into sorted distinct values.

    ``name`` is the option the text came from, used in error messages.
    """
    items = [item.strip() for item in str(text).split(",")]
    if not text or not all(items):
        raise ProblemError(f"{name} must be comma-separated values or START:STOP:STEP ranges, got {text!r}")
    values: list[float] = []
    for item in items:
        values.extend(_parse_range(item, name, integer) if ":" in item else [_number(item, name, integer)])
        if len(values) > MAX_AXIS_VALUES:
            raise ProblemError(f"{name} lists more than {MAX_AXIS_VALUES} values; an axis takes at most {MAX_AXIS_VALUES}")
    if len(set(values)) != len(values):
        raise ProblemError(f"{name} lists a value twice: {text!r}")
    return tuple(sorted(values))


def _number(text: str, name: str, integer: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ProblemError(f"{name}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ProblemError(f"{name}: values must be finite, got {text!r}")
    if integer:
        if value != int(value):
            raise ProblemError(f"{name} takes integers, got {text!r}")
        return checks.whole_number(text)  # exact: 99999999999999999999 as typed, not as the float read
    return value


def _parse_range(text: str, name: str, integer: bool) -> list[float]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 2 and not integer):
        form = "START:STOP[:STEP]" if integer else "START:STOP:STEP"
        raise ProblemError(f"{name}: range {text!r} must be {form}")
    start, stop = (_number(p, name, integer) for p in parts[:2])
    step = _number(parts[2], name, integer) if len(parts) == 3 else 1
    if not step > 0:
        raise ProblemError(f"{name}: range {text!r} needs a step > 0")
    if stop < start:
        raise ProblemError(f"{name}: range {text!r} has STOP < START")
    span = (stop - start) / step  # inf for a step of 1e-320: refused before it meets an integer
    if not span + 1 <= MAX_AXIS_VALUES + 1e-9:
        many = f"{math.floor(span + 1e-9) + 1}" if span < 1e15 else "more than 1e15"
        raise ProblemError(f"{name}: range {text!r} has {many} values; an axis takes at most {MAX_AXIS_VALUES}")
    count = math.floor(span + 1e-9) + 1
    if integer:
        return [start + i * step for i in range(count)]
    # rounded at the range's scale, not each value's: a value that crosses 0 as 5.6e-17 becomes 0
    decimals = _RANGE_DIGITS - 1 - math.floor(math.log10(max(abs(start), abs(stop), step)))
    return [round(start + i * step, decimals) + 0.0 for i in range(count)]


def _numbers(name: str, values: object) -> tuple[float, ...]:
    """A numeric axis as a sorted tuple of finite numbers, refusing text, a single number and NaN."""
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ProblemError(f"{name} values must be a list of numbers, got {values!r}")
    numbers = [v for v in values if checks.is_number(v)]
    if len(numbers) != len(values):
        raise ProblemError(f"{name} values must be numbers, got {list(values)}")
    _refuse(f"{name} values must be finite", [v for v in numbers if not math.isfinite(v)])
    return tuple(sorted(numbers))


def _refuse(rule: str, offending: list) -> None:
    """A one-line refusal stating ``rule`` and the first few ``offending`` values, if there are any."""
    if offending:
        more = f" and {len(offending) - _SHOWN} more" if len(offending) > _SHOWN else ""
        raise ProblemError(f"{rule}, got {offending[:_SHOWN]}{more}")


@dataclass(frozen=True)
class GridPoint:
    """One point of a sweep: its number in the grid and its parameters."""

    index: int
    distribution: str | None  # None on a grid without a distribution axis (a model's)
    eta: float
    mu: float
    delay: int  # τ on a "tau" axis, M on a "workers" axis

    def delay_spec(self, delay_axis: str) -> str:
        """The :func:`~amsgd.core.delays.parse_delay` spec of this point's delay."""
        return delay_spec(delay_axis, self.delay)


def delay_spec(delay_axis: str, delay: int) -> str:
    """The :func:`~amsgd.core.delays.parse_delay` spec of ``delay`` on a ``"tau"`` or ``"workers"`` axis."""
    return f"constant:{delay}" if delay_axis == "tau" else f"workers:{delay}"


@dataclass(frozen=True)
class SweepGrid:
    """The axes of a sweep: distributions × η × μ × (τ or workers M), validated (−1 < μ < 1 here; a
    streaming-PCA sweep needs 0 <= μ < 1, checked by its :class:`~amsgd.sweep.points.PointKind`).

    ``delay_axis`` is ``"tau"`` (constant delays) or ``"workers"`` (round-robin server, τ = M − 1).
    ``distributions`` empty: no distribution axis (a model's sweep; its data are fixed). The numeric
    axes are lists (or 1-d arrays) of numbers, sorted here, as :func:`parse_axis` sorts the command
    line's; their values must be distinct.
    """

    distributions: tuple[str, ...]
    etas: tuple[float, ...]
    mus: tuple[float, ...]
    delay_axis: str
    delays: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.delay_axis not in DELAY_AXES:
            raise ProblemError(f"delay axis must be one of {DELAY_AXES}, got {self.delay_axis!r}")
        if isinstance(self.distributions, str) or not isinstance(self.distributions, Sequence):
            raise ProblemError(f"distributions must be a list of names, got {self.distributions!r}")
        for name, field_name in (("eta", "etas"), ("mu", "mus"), (self.delay_axis, "delays")):
            object.__setattr__(self, field_name, _numbers(name, getattr(self, field_name)))
        specs = tuple(parse_distribution(d).spec for d in self.distributions)
        if len(set(specs)) != len(specs):
            raise ProblemError(f"distributions must be distinct, got {list(self.distributions)}")
        object.__setattr__(self, "distributions", specs)
        for name, values in (("eta", self.etas), ("mu", self.mus), (self.delay_axis, self.delays)):
            if not values:
                raise ProblemError(f"{name} needs at least one value")
            if len(set(values)) != len(values):  # every point has one address (a coordinate of the Dataset)
                raise ProblemError(f"{name} values must be distinct, got {list(values)}")
        _refuse("eta values must be > 0", [eta for eta in self.etas if not eta > 0])
        _refuse("mu values must satisfy 0 <= mu < 1 (-1 < mu < 1 for a model)", [m for m in self.mus if not -1 < m < 1])
        lowest = 0 if self.delay_axis == "tau" else 1
        _refuse(f"{self.delay_axis} values must be integers >= {lowest}",
                [d for d in self.delays if int(d) != d or d < lowest])  # fmt: skip
        if self.size > MAX_POINTS:
            raise ProblemError(f"the grid has {self.size} points ({' x '.join(map(str, self.shape))}); "
                               f"a sweep takes at most {MAX_POINTS}")  # fmt: skip
        object.__setattr__(self, "etas", tuple(float(x) for x in self.etas))
        object.__setattr__(self, "mus", tuple(float(x) for x in self.mus))
        object.__setattr__(self, "delays", tuple(int(x) for x in self.delays))

    @property
    def dims(self) -> tuple[str, ...]:
        """The axes' names: ``distribution`` (when there is that axis), ``eta``, ``mu``, the delay axis."""
        head = ("distribution",) if self.distributions else ()
        return (*head, "eta", "mu", self.delay_axis)

    @property
    def axes(self) -> tuple[Sequence, ...]:
        head = (self.distributions,) if self.distributions else ()
        return (*head, self.etas, self.mus, self.delays)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(axis) for axis in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def longest_delay_spec(self) -> str:
        """The spec of the grid's longest delay (the one whose history takes the most memory)."""
        return delay_spec(self.delay_axis, max(self.delays))

    def points(self) -> Iterator[GridPoint]:
        """Every point, in C order of :attr:`dims` (the numbering that keys the random streams)."""
        head = () if self.distributions else (None,)
        for index, values in enumerate(itertools.product(*self.axes)):
            yield GridPoint(index, *head, *values)

    def to_dict(self) -> dict:
        return dict(zip(self.dims, (list(axis) for axis in self.axes), strict=True))
