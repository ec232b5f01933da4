"""The boundary of a random delay family: the largest member that keeps the linearisation
mean-square stable.

A random delay comes in a family with one free parameter: ``uniform:A-B`` (the largest B, A
fixed), ``poisson:MEAN`` and ``geometric:MEAN`` (the largest mean) and the event-driven server with
exponential compute times, ``ps:M`` (the most workers; its staleness law is geometric with mean M − 1,
taken as i.i.d.). Delays grow with the parameter, and stability is
lost as they grow, so the boundary is found by bracketing and bisection on the stability test of
:func:`.second_moments.stationary_variances` (finite iff mean-square stable): to the integer for B,
to a relative 1e-3 for a mean. Laws whose support passes :data:`SEARCH_SUPPORT` are beyond the
search: it stops there and says so. Geometric laws (and ``ps:M``) are exempt: their second moments
come from a 3 × 3 Lyapunov equation per mode whatever the mean (:func:`.second_moments.geometric_gains`,
the untruncated law). The rest of the theory takes a geometric law as its table truncated where the
tail falls below :data:`~amsgd.core.delays.TAIL_MASS`, up to :data:`~.options.MAX_GEOMETRIC_DELAY` lags
(a mean of about 723, ``ps:724``): ``largest_member_with_theory`` says which member that is, so that a boundary
beyond it is not read as a delay whose other predictions can be asked for. A server with log-normal
compute times (a staleness law estimated by simulation) is not searched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from amsgd.core.delays import (
    TAIL_MASS,
    DelayModel,
    EventDrivenDelay,
    GeometricDelay,
    PoissonDelay,
    UniformDelay,
    geometric_reach,
)
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.options import MAX_GEOMETRIC_DELAY
from amsgd.diffusion.theory.second_moments import Coefficients, gains, geometric_gains, stationary_variances

#: Relative tolerance of the bisection on a real parameter (a mean delay).
_MEAN_RTOL = 1e-3
#: The search stops at laws with more lags than this (each test solves companion problems of that size).
SEARCH_SUPPORT = 400


@dataclass(frozen=True)
class FamilyBoundary:
    """``largest_stable``: the largest parameter of ``family`` that is mean-square stable (None: not even
    the smallest member); ``beyond_search``: the search reached laws longer than :data:`SEARCH_SUPPORT`
    lags, so the true boundary may lie above; ``given``: the parameter of the delay asked about;
    ``largest_member_with_theory``: for a geometric family, the largest parameter whose law the rest of
    the theory takes (module docstring; None for the others, whose search stays below it)."""

    family: str
    parameter: str
    largest_stable: float | None
    beyond_search: bool
    given: float
    largest_member_with_theory: float | None = None

    @property
    def fraction(self) -> float | None:
        """``given / largest_stable``: how far toward the boundary the delay asked about lies (None
        where no member is stable; at most that where ``beyond_search``, the boundary lying further)."""
        return None if not self.largest_stable else self.given / self.largest_stable

    def to_dict(self) -> dict:
        return {"family": self.family, "parameter": self.parameter, "largest_stable": self.largest_stable,
                "beyond_search": self.beyond_search, "given": self.given,
                "largest_member_with_theory": self.largest_member_with_theory}  # fmt: skip


class _Family(NamedTuple):
    """A random delay's family: its name and parameter's name, the delay's own parameter (``given``),
    the member of parameter x, the smallest member, whether the parameter is an integer, and for a
    geometric family the map from the parameter to its law's mean (None for the others)."""

    name: str
    parameter: str
    given: float
    member: Callable[[float], DelayModel]
    smallest: float
    integer: bool
    geometric_mean: Callable[[float], float] | None


def _family(delay: DelayModel) -> _Family | None:
    """The family of a random delay, None for a fixed one."""
    if isinstance(delay, UniformDelay):
        return _Family(f"uniform:{delay.low}-B", "B", delay.high, lambda b: UniformDelay(delay.low, int(b)), delay.low,
                       True, None)  # fmt: skip
    if isinstance(delay, PoissonDelay):
        return _Family("poisson:MEAN", "MEAN", delay.mean_delay, PoissonDelay, 1e-3, False, None)
    if isinstance(delay, GeometricDelay):
        return _Family("geometric:MEAN", "MEAN", delay.mean_delay, GeometricDelay, 1e-3, False, float)
    if isinstance(delay, EventDrivenDelay) and delay.compute == "exp":
        return _Family("ps:M", "M", delay.workers, lambda m: EventDrivenDelay(int(m)), 1, True, lambda m: m - 1.0)
    return None


def family_boundary(c: Coefficients, eta: float, mu: float, delay: DelayModel) -> FamilyBoundary | None:
    """The largest mean-square-stable member of ``delay``'s family (None for a delay without a searched
    family: constant, histogram, the event-driven server with log-normal compute times)."""
    family = _family(delay)
    if family is None:
        return None
    member, low, integer, geometric_mean = family.member, family.smallest, family.integer, family.geometric_mean

    def stable(x: float) -> bool | None:
        if geometric_mean is not None:  # 3 × 3 Lyapunov equations per mode, no lags: no search limit
            mean = geometric_mean(x)
            g = geometric_gains(c.rates, eta, mu, mean / (1.0 + mean)) if mean > 0 else gains(c.rates, eta, mu, 0)
            return bool(np.all(np.isfinite(stationary_variances(c, eta, mu, 0, g))))
        law = delay_law(member(x), as_iid=True)
        if law.max_delay > SEARCH_SUPPORT:
            return None
        return bool(np.all(np.isfinite(stationary_variances(c, eta, mu, law))))

    reach = None if geometric_mean is None else largest_member_with_theory(integer)
    if not stable(low):
        return FamilyBoundary(family.name, family.parameter, None, False, family.given, reach)
    high = max(2 * low, 1)
    while (verdict := stable(high)) is True:
        low, high = high, 2 * high
    beyond = verdict is None
    while (high - low > 1) if integer else (high - low > _MEAN_RTOL * low):
        mid = (low + high) // 2 if integer else 0.5 * (low + high)
        if stable(mid):
            low = mid
        else:
            high = mid  # unstable, or beyond the search: the answer lies below
    value = int(low) if integer else float(low)
    return FamilyBoundary(family.name, family.parameter, value, beyond and stable(high) is None, family.given, reach)


def largest_member_with_theory(workers: bool) -> float | int:
    """The largest geometric mean whose truncated table reaches at most MAX_GEOMETRIC_DELAY lags (``q^(n)``
    below TAIL_MASS from ``n = MAX_GEOMETRIC_DELAY + 1``), or with ``workers`` the most workers M of ``ps:M``, whose
    staleness law has mean M − 1."""
    q = TAIL_MASS ** (1.0 / (MAX_GEOMETRIC_DELAY + 1))
    mean = q / (1.0 - q)
    while geometric_reach(mean) > MAX_GEOMETRIC_DELAY:  # rounding at the edge
        mean = float(np.nextafter(mean, 0.0))
    return int(mean + 1.0) if workers else mean
