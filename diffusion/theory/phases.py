"""The three phases from the saddle e_2 evaluated for a problem (formulas in
:mod:`amsgd.derivations.phases`), and the finite-step escape from the exact linear recursion."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from amsgd.core.delays import ConstantDelay
from amsgd.core.errors import ProblemError
from amsgd.derivations import phases as ph
from amsgd.derivations.derivation import Derivation
from amsgd.derivations.recursion import eta
from amsgd.diffusion.theory.modes import PointValues, evaluate
from amsgd.diffusion.theory.options import DEFAULT_EPSILON_FACTOR
from amsgd.diffusion.theory.transient import variance_crossing


@dataclass(frozen=True)
class Phases:
    """Phase durations in diffusion time (iterations = time/η) from the diffusion limits."""

    delta_sq: float
    epsilon: float
    worst_saddle: int
    escape_time: float
    travel_time: float
    converge_time: float
    eta: float
    escape_iterations_linearized: int | None = None

    def to_dict(self) -> dict:
        out = {"delta_sq": self.delta_sq, "epsilon": self.epsilon, "worst_saddle": self.worst_saddle}
        # The exact linear recursion of the escaping mode at the problem's η, μ and constant delay.
        out["escape_iterations_linearized"] = self.escape_iterations_linearized
        total = 0.0
        for name in ("escape", "travel", "converge"):
            time = getattr(self, f"{name}_time")
            out[f"{name}_time"] = time
            out[f"{name}_iterations"] = time / self.eta
            total += time
        out["total_time"] = total
        out["total_iterations"] = total / self.eta
        return out


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
    return Phases(
        delta_sq, epsilon, saddle.j, float(escape), float(travel), converge_time, problem.eta,
        _linear_escape(derivation, saddle.j, escape_mode.i, delta_sq),
    )  # fmt: skip


def _linear_escape(derivation: Derivation, j: int, i: int, delta_sq: float) -> int | None:
    """First iteration at which the escaping mode's exact linear variance reaches δ² (constant delay)."""
    problem = derivation.problem
    if not isinstance(problem.delay, ConstantDelay):
        return None
    mode = next(m for m in derivation.point(j).modes if m.i == i)
    scale, gain = derivation.timing.drift_scale, derivation.timing.noise_gain
    rate = -evaluate(mode.drift_rate / scale, derivation.values)
    noise = evaluate(mode.diffusion**2 / gain**2, derivation.values)
    return variance_crossing(rate, noise, problem.eta, problem.mu, problem.tau, delta_sq)
