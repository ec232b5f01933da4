"""Argument checks shared by every stage: each raises :class:`ProblemError` naming the parameter
and its allowed range, so Python callers and the command line get the same one-line message."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from amsgd.core.errors import LongDelayWarning, ProblemError

#: The largest integer a count may be: what a 64-bit integer holds (NumPy's and the compiled kernels').
MAX_INTEGER = 2**63 - 1


def integer(name: str, value: object, *, minimum: int = 0) -> int:
    """``value`` as an int, refusing booleans, non-integers, values below ``minimum`` and above
    :data:`MAX_INTEGER`."""
    if not is_whole_number(value) or value < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise ProblemError(f"{name} must be {kind}, got {value!r}")
    if value > MAX_INTEGER:
        raise ProblemError(f"{name} must be at most 2^63 - 1 (a 64-bit integer), got {value!r}")
    return int(value)


def is_number(value: object) -> bool:
    """Whether ``value`` is one real number (a Python or NumPy int or float, not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_whole_number(value: object) -> bool:
    """Whether ``value`` is one integer (a Python or NumPy int, not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def window_fraction(window: object) -> float:
    """``window``: where a stationary window starts, as a fraction of the run in [0, 1) (the window
    runs from ``window · steps`` to the end; 0.5 averages the second half)."""
    if not is_number(window) or not 0.0 <= window < 1.0:
        raise ProblemError(f"window must be a fraction of the run in [0, 1), got {window!r}")
    return float(window)


def window_first(window: object, steps: int) -> int:
    """The first iteration ``floor(window · steps)`` of the window that starts at the fraction ``window``
    of a run of ``steps``, with ``window · steps`` read as the decimal product it stands for: in binary
    0.29 · 100 is 28.999999999999996, and the window starts at 29."""
    start = window_fraction(window) * steps
    return int(math.floor(start + 1e-9 * max(1.0, start)))


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1."""
    return integer(name, value, minimum=1)


def real_array(name: str, value: object, expected: str = "numbers (a rectangular numeric array)",
               copy: bool = True) -> np.ndarray:  # fmt: skip
    """``value`` as a float array (any shape; finiteness is the caller's rule), refusing complex,
    ragged and non-numeric input, text included (the message says ``name`` must be ``expected``;
    booleans are 0 and 1). With ``copy`` False a real or integer NumPy array comes back as it is
    (floats) or converted once (integers), for callers that only read it."""
    if not copy and isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value.astype(float, copy=False)
    try:
        array = np.array(value)
        if array.dtype.kind in "USMm":  # text ("3" -> 3.0) and dates or durations convert, but are not numbers here
            raise TypeError
        if not np.iscomplexobj(array):
            return array.astype(float)
    except (TypeError, ValueError):
        raise ProblemError(f"{name} must be {expected}, got {_short(value)}") from None
    raise ProblemError(f"{name} must be real (complex numbers were given)")


def _short(value: object) -> str:
    """``repr(value)`` on one line, cut at 80 characters; an array by its element type and shape."""
    if isinstance(value, np.ndarray):
        kind = {"U": "text", "S": "bytes", "O": "Python objects", "V": "records", "M": "dates",
                "m": "durations"}.get(value.dtype.kind, "values")  # fmt: skip
        return f"{kind} of shape {value.shape}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def real(name: str, value: object) -> float:
    """``value`` as a finite float (text and booleans are not numbers here: ``float("0.1")`` and
    ``float(True)`` would pass)."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise ProblemError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ProblemError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ProblemError(f"{name} must be finite, got {out!r}")
    return out


def positive(name: str, value: object) -> float:
    """``value`` as a finite float > 0."""
    out = real(name, value)
    if not out > 0:
        raise ProblemError(f"{name} must be a finite number > 0, got {out!r}")
    return out


def confidence(value: object) -> float:
    """A confidence level as a float in (0, 1)."""
    out = real("confidence", value)
    if not 0.0 < out < 1.0:
        raise ProblemError(f"confidence must lie in (0, 1), got {out!r}")
    return out


def whole_number(text: str) -> int:
    """``text`` as an integer, also when written as a whole float (``2e4``, ``20000.0``); ValueError when it
    is not a number or not a whole one."""
    try:
        return int(text)
    except ValueError:
        pass
    value = float(text)  # ValueError: not a number
    if not (math.isfinite(value) and value == int(value)):
        raise ValueError(f"not a whole number: {text!r}")
    return int(value)


def parse_int(name: str, text: str) -> int:
    """An integer written as text (a command-line field), also as a whole float (:func:`whole_number`)."""
    try:
        return whole_number(text)
    except ValueError:
        raise ProblemError(f"{name} must be an integer (such as 20000 or 2e4), got {text!r}") from None


def parse_real(name: str, text: str) -> float:
    """A number written as text (a command-line field)."""
    try:
        return float(text)
    except ValueError:
        raise ProblemError(f"{name} must be a number, got {text!r}") from None


def warn_delay_longer_than_run(mean_delay: float, steps: int, what: str = "the mean delay") -> None:
    """Warn (:class:`~amsgd.core.errors.LongDelayWarning`) when the mean delay (``what``) is at least
    half the run: most gradients are then taken at the start point, and nothing stationary is measured."""
    if mean_delay >= steps / 2:
        length = int(steps) if float(steps).is_integer() else steps  # "40 steps" for a float 40.0 too
        warnings.warn(
            f"{what} ({mean_delay:g} iterations) is at least half the run ({length} steps): most "
            "gradients are taken at the start point; raise --steps or shorten the delay",
            LongDelayWarning,
            stacklevel=3,
        )


def spec_number(x: float) -> str:
    """``x`` as written in a spec: ``:g`` (``5``, ``0.5``, ``1e+07``) where that reads back as ``x``,
    else the shortest text that does (``1.0000001``), so that every spec parses back to its model."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))
