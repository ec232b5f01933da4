"""The three phases from the saddle e_2 evaluated for a problem (formulas in
:mod:`amsgd.derivations.phases`), and the escape of single runs from the exact linear recursion.

Two different numbers answer "how long is the escape": the time at which the *mean* of h_1² over
runs crosses δ² (the diffusion limit's formula, ``mean_curve``), and the mean over runs of each run's
first passage (``escape_iterations``, with its law: :mod:`.first_passage`). The second is later: a run
starts from noise. Travel follows the ODE (the same for every run); convergence is the crossing of
the mean curve of the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from amsgd.core.delays import ConstantDelay, DelayModel
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.derivations import phases as ph
from amsgd.derivations.derivation import Derivation
from amsgd.derivations.recursion import eta, mu
from amsgd.diffusion.theory.first_passage import FirstPassageLaw, escape_law, paths_for
from amsgd.diffusion.theory.modes import ModeValues, PointValues, evaluate
from amsgd.diffusion.theory.options import DEFAULT_EPSILON_FACTOR
from amsgd.diffusion.theory.transient import variance_crossing


@dataclass(frozen=True)
class Phases:
    """Phase durations: per run (``escape_law``, travel, convergence) and for the mean curve in
    diffusion time (iterations = time/η), from the diffusion limits."""

    delta_sq: float
    epsilon: float
    worst_saddle: int
    escape_time: float  # the mean curve's crossing (diffusion limit)
    travel_time: float
    converge_time: float
    eta: float
    escaping_mode: tuple[float, float]  # (a, s²) of the escaping mode before the time scaling
    delay: DelayModel
    mu: float
    escape_iterations_linearized: int | None = None

    @cached_property
    def escape_law(self) -> FirstPassageLaw:
        """The law of one run's escape (:func:`.first_passage.escape_law`), sampled on first use."""
        rate, noise = self.escaping_mode
        paths = paths_for(self.escape_time / self.eta)
        return escape_law(rate, noise, self.eta, self.mu, self.delay, self.delta_sq, paths)

    @property
    def escape_iterations(self) -> float:
        """The mean over runs of the escape's first passage."""
        return self.escape_law.mean.mean

    @property
    def total_iterations(self) -> float:
        return self.escape_iterations + (self.travel_time + self.converge_time) / self.eta

    def to_dict(self) -> dict:
        mean_curve = {"escape_time": self.escape_time, "escape_iterations": self.escape_time / self.eta,
                      "escape_iterations_linearized": self.escape_iterations_linearized}  # fmt: skip
        return {
            "delta_sq": self.delta_sq,
            "epsilon": self.epsilon,
            "worst_saddle": self.worst_saddle,
            "escape_iterations": self.escape_iterations,
            "escape_law": self.escape_law.to_dict(),
            "travel_time": self.travel_time,
            "travel_iterations": self.travel_time / self.eta,
            "converge_time": self.converge_time,
            "converge_iterations": self.converge_time / self.eta,
            "total_iterations": self.total_iterations,
            "mean_curve": mean_curve,
            "note": (
                "escape_iterations is the mean over runs of each run's first passage of h_1^2/|h|^2 >= delta^2 "
                "(escape_law: its law); mean_curve.escape_iterations is when the mean of h_1^2 over runs "
                "crosses delta^2 (the diffusion limit), an earlier and different number; travel follows the "
                "ODE, convergence is the crossing of the mean error curve"
            ),
        }


def worst_saddle(points: tuple[PointValues, ...]) -> int:
    """The saddle whose fastest escape rate is the slowest; for distinct eigenvalues, e_2."""
    saddles = [p for p in points if p.kind != "minimum" and p.j != 1]
    return min(saddles, key=lambda p: p.fastest.drift_rate).j


def phases(
    derivation: Derivation, points: tuple[PointValues, ...], floor: float, delta_sq: float, epsilon: float | None
) -> Phases:
    """Escape (unstable OU from rest), travel (ODE closed form) and convergence (slowest tangent mode)."""
    f = derivation.phase_formulas
    problem = derivation.problem
    epsilon = epsilon or DEFAULT_EPSILON_FACTOR * floor
    if epsilon <= floor:
        raise ProblemError(
            f"epsilon = {epsilon:g} is at or below the stationary error floor {floor:g}; it is never reached on average"
        )
    saddle = next(p for p in points if p.j == worst_saddle(points))
    escape_mode = saddle.fastest
    optimum = next(p for p in points if p.j == 1)
    slow_mode = max((m for m in optimum.modes if m.kind == "tangent"), key=lambda m: m.drift_rate)
    escape = f.escape_time.subs(
        {ph.a: escape_mode.drift_rate, ph.sigma2: escape_mode.diffusion**2, ph.delta2: delta_sq, eta: problem.eta}
    )
    # The ODE's log-ratio log(h_1²/h_2²) grows at twice the escape rate (λ1 − λ2)/(1 − μ).
    travel = f.travel_time_scaled.subs(ph.delta2, delta_sq) / escape_mode.drift_rate
    converge = f.converge_time.subs(
        {
            ph.a: -slow_mode.drift_rate,
            ph.sigma2: slow_mode.diffusion**2,
            ph.delta2: delta_sq,
            ph.floor: floor,
            ph.epsilon: epsilon,
            eta: problem.eta,
        }
    )
    # Already below ε when travel ends (ε >= δ²): phase III takes no time.
    converge_time = max(float(sp.re(converge)), 0.0) if epsilon < delta_sq else 0.0
    rate, noise = _escaping_mode(derivation, escape_mode)
    return Phases(
        delta_sq, epsilon, saddle.j, float(escape), float(travel), converge_time, problem.eta,
        (rate, noise), problem.delay, problem.mu, _linear_escape(derivation, rate, noise, delta_sq),
    )  # fmt: skip


def _escaping_mode(derivation: Derivation, mode: ModeValues) -> tuple[float, float]:
    """``(a, s²)`` of the escaping mode before the time scaling (``a < 0``): its drift rate over the drift
    scale and its diffusion squared over the noise gain squared."""
    values = {mu: derivation.problem.mu}
    scale, gain = evaluate(derivation.timing.drift_scale, values), evaluate(derivation.timing.noise_gain, values)
    return -mode.drift_rate / scale, mode.diffusion**2 / gain**2


def _linear_escape(derivation: Derivation, rate: float, noise: float, delta_sq: float) -> int | None:
    """First iteration at which the escaping mode's exact linear variance reaches δ² (constant delay):
    the mean curve's crossing at finite η."""
    problem = derivation.problem
    if not isinstance(problem.delay, ConstantDelay):
        return None
    return variance_crossing(rate, noise, problem.eta, problem.mu, problem.tau, delta_sq)


def saddle_arrival(problem: Problem, start: str) -> tuple[float | None, float | None]:
    """For runs started at the saddle ``start`` (``"eJ"``, the worst saddle of the phases), the mean
    escape and the arrival near the floor (escape + travel + convergence), in iterations; (None, None)
    for another start, or when the theory has no prediction (no eigengap, infinite fourth moments,
    unstable modes). A stationary window should start after the arrival."""
    if not (start.startswith("e") and start[1:].isdigit() and start != "e1"):
        return None, None
    from amsgd.diffusion.theory import predict

    try:
        found = predict(problem).phases
    except (ProblemError, ArithmeticError, ValueError):
        return None, None
    if found.worst_saddle != int(start[1:]):
        return None, None
    return found.escape_iterations, found.total_iterations
