"""The three phases from the saddle e_2 evaluated for a problem (formulas in
:mod:`amsgd.derivations.phases`), and the escape and convergence of single runs from the exact
linear recursion.

Two different numbers answer "how long is the escape": the time at which the *mean* of h_1² over
runs crosses δ² (the diffusion limit's formula, ``mean_curve``), and the mean over runs of each run's
first passage (``escape_iterations``, with its law: :mod:`.first_passage`). The second is later: a run
starts from noise. Travel follows the ODE (the same for every run). Convergence too has two: the
crossing of the mean error curve (``mean_curve``, the diffusion limit's formula) and the mean over
runs of each run's first passage below ε (``converge_iterations``, with its law): a run's error
fluctuates about the floor and crosses ε on a dip, so the law is wide, its median well before the
mean curve's crossing. A stationary window should start when the mean has settled
(``settled_iterations``), not at a run's first dip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

from amsgd.core.delays import DelayModel
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.core.problem import Problem
from amsgd.derivations import phases as ph
from amsgd.derivations.derivation import Derivation
from amsgd.derivations.recursion import eta, mu
from amsgd.diffusion.theory.first_passage import (
    MAX_ITERATIONS,
    REACH,
    ConvergeLaw,
    FirstPassageLaw,
    converge_law,
    converge_start,
    escape_law,
    iterations_for,
    paths_for,
    ratio_rates,
)
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.modes import ModeValues, PointValues, evaluate
from amsgd.diffusion.theory.options import DEFAULT_EPSILON_FACTOR
from amsgd.diffusion.theory.transient import variance_crossing

#: What the numbers of ``phases`` are (its JSON note).
PHASES_NOTE = (
    "escape_iterations is the mean over runs of each run's first passage of h_1^2/|h|^2 >= delta^2 "
    "(escape_law: its law); mean_curve.escape_iterations is when the mean of h_1^2 over runs "
    "crosses delta^2 (the diffusion limit), an earlier and different number; travel follows the "
    "ODE; converge_iterations is the mean over runs of each run's first passage of the error "
    "below epsilon from the travel's end point (converge_law: its law, from the linear tangent "
    "modes with the noise of converge_noise), a different number from "
    "mean_curve.converge_iterations (and converge_time, in diffusion time), when the mean error "
    "curve crosses epsilon; "
    "total_iterations adds the per-run means and travel, settled_iterations the per-run escape, "
    "travel and the mean-curve convergence (when the ensemble has settled)"
)
#: What phase III and the totals report per run (null without convergence), in JSON order.
_PHASE_THREE_KEYS = ("converge_time", "converge_iterations", "converge_law", "converge_noise", "total_iterations",
                     "settled_iterations")  # fmt: skip
#: Why a problem that is not mean-square stable at e_1 has no phase III (prefixed to the note).
NO_CONVERGENCE = (
    "no convergence phase: the iteration is not mean-square stable at e_1 at this eta, mu and delay "
    "(stability.mean_square), so the error has no floor to settle at and epsilon, phase III and the "
    "totals are null; escape and travel are those of the dynamics from e_2"
)

#: Why a per-run law is null (appended to the note when one is).
NOT_SAMPLED = (
    "; a per-run law that is null was not sampled: the mean curve crosses beyond "
    f"{REACH * MAX_ITERATIONS:.0f} iterations, where no sampled run would finish within the "
    f"{MAX_ITERATIONS} followed (the mean curve's numbers stand)"
)


@dataclass(frozen=True)
class Phases:
    """Phase durations: per run (``escape_law``, travel, ``converge_law``) and for the mean curve in
    diffusion time (iterations = time/η), from the diffusion limits.

    ``tangent_rates`` and ``tangent_noise`` are ``(a_i, s_i²)`` of the tangent modes i = 2 .. d at e_1
    before the time scaling (additive noise); ``problem`` gives the finite-η stationary variances the
    convergence law is calibrated to, unless ``tangent_variances`` returns them (computed elsewhere for
    the same problem, e.g. :attr:`.predictions.Predictions.finite_eta`): it is called on first use only."""

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
    tangent_rates: tuple[float, ...] = ()
    tangent_noise: tuple[float, ...] = ()
    problem: Problem | None = field(default=None, repr=False, compare=False)
    tangent_variances: Callable[[], Sequence[float]] | None = field(default=None, repr=False, compare=False)
    converges: bool = True  # False: not mean-square stable at e_1, so no floor and no phase III

    @cached_property
    def escape_law(self) -> FirstPassageLaw:
        """The law of one run's escape (:func:`.first_passage.escape_law`), sampled on first use."""
        rate, noise = self.escaping_mode
        expected = self.escape_time / self.eta
        return escape_law(rate, noise, self.eta, self.mu, self.delay, self.delta_sq, paths_for(expected),
                          iterations_for(expected), self.escape_coupling)  # fmt: skip

    @cached_property
    def escape_coupling(self) -> float:
        """``Var A`` of the escaping mode's multiplicative noise at the worst saddle (0 without a problem)."""
        from amsgd.diffusion.theory.coupling import escape_coupling

        return 0.0 if self.problem is None else escape_coupling(self.problem, self.worst_saddle)

    @property
    def escape_iterations(self) -> float:
        """The mean over runs of the escape's first passage."""
        return self.escape_law.mean.mean

    @cached_property
    def converge_law(self) -> ConvergeLaw:
        """The law of one run's convergence (:func:`.first_passage.converge_law`) from the travel's end
        point, its noise calibrated to the finite-η stationary variances, its rates those of the ratio
        coordinates (:func:`.first_passage.ratio_rates`); sampled on first use."""
        noise = np.array(self.tangent_noise)
        if noise.size == 0:
            raise ProblemError("these phases carry no tangent modes at e_1; build them with phases(...)")
        rates = ratio_rates(np.array(self.tangent_rates), noise, self.eta, self.mu)
        start = converge_start(self.delta_sq, rates.size, self.worst_saddle - 2)
        expected = self.converge_time / self.eta
        paths = paths_for(expected * rates.size)  # a path-step per mode and iteration
        variances = self._stationary_variances if self.epsilon < self.delta_sq else None  # else: no time
        return converge_law(rates, noise, self.eta, self.mu, self.delay, start, self.epsilon, paths,
                            stationary_variances=variances, iterations=iterations_for(expected))  # fmt: skip

    @cached_property
    def _stationary_variances(self) -> np.ndarray | None:
        """The finite-η theory's stationary variances of the tangent modes, multiplicative noise
        included (:mod:`.second_moments`), or None where it has none.

        Those of ``tangent_variances`` when it gives finite positive ones (the same solve of
        ``(I − diag(G) C) v = G ⊙ s``); otherwise, and without it, solved here, where the sign test of
        :func:`_tangent_variances` decides whether there are any."""
        if self.problem is None:
            return None
        try:
            if self.tangent_variances is not None:
                given = np.array(self.tangent_variances(), dtype=float)
                if np.all(np.isfinite(given)) and np.all(given > 0):
                    return given
            return _tangent_variances(self.problem)
        except (ProblemError, ArithmeticError, ValueError):
            return None

    @property
    def converge_iterations(self) -> float:
        """The mean over runs of the convergence's first passage below ε."""
        return self.converge_law.mean.mean

    @property
    def total_iterations(self) -> float:
        """Per run: the escape's mean, the travel and the convergence's mean."""
        return self.escape_iterations + self.travel_time / self.eta + self.converge_iterations

    @property
    def settled_iterations(self) -> float:
        """When the *mean* error has settled at ε: the escape's mean over runs, the travel and the
        mean curve's convergence. Later than a run's first dip below ε (``total_iterations``): a
        stationary window starts here, when the ensemble, not one run, is near the floor."""
        return self.escape_iterations + (self.travel_time + self.converge_time) / self.eta

    def to_dict(self) -> dict:
        """The JSON ``phases`` object; without convergence (``converges`` false) every quantity of phase
        III, the totals and ε are null and the note says why."""
        phase_three = self._phase_three() if self.converges else dict.fromkeys(_PHASE_THREE_KEYS)
        curve = self.converge_time if self.converges else None  # the mean curve's convergence
        return {
            "delta_sq": self.delta_sq,
            "epsilon": self.epsilon if self.converges else None,
            "worst_saddle": self.worst_saddle,
            "converges": self.converges,
            "escape_iterations": json_float(self.escape_iterations),
            "escape_law": self.escape_law.to_dict(),
            "travel_time": self.travel_time,
            "travel_iterations": self.travel_time / self.eta,
            **phase_three,
            "mean_curve": {
                "escape_time": self.escape_time,
                "escape_iterations": self.escape_time / self.eta,
                "escape_iterations_linearized": self.escape_iterations_linearized,
                "converge_time": curve,
                "converge_iterations": None if curve is None else curve / self.eta,
            },
            "note": ("" if self.converges else NO_CONVERGENCE + "; ") + PHASES_NOTE + self._unsampled_note(),
        }

    def _unsampled_note(self) -> str:
        laws = [self.escape_law] + ([self.converge_law] if self.converges else [])
        return NOT_SAMPLED if any(np.isnan(law.mean.mean) for law in laws) else ""

    def _phase_three(self) -> dict:
        """The per-run numbers of phase III and the totals (:data:`_PHASE_THREE_KEYS`)."""
        return {
            "converge_time": self.converge_time,
            "converge_iterations": json_float(self.converge_iterations),
            "converge_law": self.converge_law.to_dict(),
            "converge_noise": self.converge_law.calibration,
            "total_iterations": json_float(self.total_iterations),
            "settled_iterations": json_float(self.settled_iterations),
        }


def worst_saddle(points: tuple[PointValues, ...]) -> int:
    """The saddle whose fastest escape rate is the slowest; for distinct eigenvalues, e_2."""
    saddles = [p for p in points if p.kind != "minimum" and p.j != 1]
    return min(saddles, key=lambda p: p.fastest.drift_rate).j


def phases(
    derivation: Derivation,
    points: tuple[PointValues, ...],
    floor: float,
    delta_sq: float,
    epsilon: float | None,
    tangent_variances: Callable[[], Sequence[float]] | None = None,
    converges: bool = True,
) -> Phases:
    """Escape (unstable OU from rest), travel (ODE closed form) and convergence (slowest tangent mode).

    ``tangent_variances``, when given, returns the finite-η stationary variances of the tangent modes at
    e_1 already computed for this problem (:attr:`Phases.tangent_variances`); without it they are
    solved when the convergence law first needs them. ``converges`` false (the iteration is not
    mean-square stable at e_1): there is no floor, so ε is not checked against it and the result
    reports no phase III.
    """
    f = derivation.phase_formulas
    problem = derivation.problem
    epsilon = epsilon or DEFAULT_EPSILON_FACTOR * floor
    if converges and epsilon <= floor:
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
    tangent_rates, tangent_noise = _tangent_modes(derivation, optimum)
    # a time is >= 0: at δ² = 1e-300 the formula's rounding gave −5.6e-18
    return Phases(
        delta_sq, epsilon, saddle.j, max(float(escape), 0.0), float(travel), converge_time, problem.eta,
        (rate, noise), problem.delay, problem.mu, _linear_escape(derivation, rate, noise, delta_sq),
        tuple(tangent_rates.tolist()), tuple(tangent_noise.tolist()), problem, tangent_variances, converges,
    )  # fmt: skip


def _escaping_mode(derivation: Derivation, mode: ModeValues) -> tuple[float, float]:
    """``(a, s²)`` of the escaping mode before the time scaling (``a < 0``): its drift rate over the drift
    scale and its diffusion squared over the noise gain squared."""
    scale, gain = _time_scales(derivation)
    return -mode.drift_rate / scale, mode.diffusion**2 / gain**2


def _time_scales(derivation: Derivation) -> tuple[float, float]:
    """The drift scale and the noise gain of the time scaling at the problem's μ."""
    values = {mu: derivation.problem.mu}
    return evaluate(derivation.timing.drift_scale, values), evaluate(derivation.timing.noise_gain, values)


def _tangent_modes(derivation: Derivation, optimum: PointValues) -> tuple[np.ndarray, np.ndarray]:
    """``(a_i, s_i²)`` of the tangent modes i = 2 .. d at e_1 before the time scaling (``a_i > 0``), as
    :func:`_escaping_mode` has them: drift rates over the drift scale, diffusions squared over the
    noise gain squared."""
    scale, gain = _time_scales(derivation)
    tangent = np.arange(optimum.dim) != optimum.j - 1
    return -optimum.drift_rates[tangent] / scale, optimum.diffusions[tangent] ** 2 / gain**2


def _tangent_variances(problem: Problem) -> np.ndarray | None:
    """The stationary variances ``v`` of the tangent block of the random-coefficient linearisation at
    e_1 (:mod:`.second_moments`): ``(I − diag(G) C) v = G ⊙ s``. With ``s > 0`` and ``diag(G) C >= 0``
    a positive solution exists iff the Perron root is below one (then ``v = Σ_k (diag(G) C)^k G ⊙ s``;
    conversely ``v > 0`` with ``diag(G) C v < v`` bounds the root below one), so the sign of the solve
    decides without an eigenvalue problem; None where there is no positive solution."""
    from amsgd.diffusion.theory.coupling import coefficients_for
    from amsgd.diffusion.theory.linear_recursion import delay_law
    from amsgd.diffusion.theory.second_moments import gains, stationary_variances

    c = coefficients_for(problem)
    tangent = c.block(c.tangent)
    law = delay_law(problem.delay, as_iid=True)
    g = gains(tangent.rates, problem.eta, problem.mu, law)
    if not np.all(np.isfinite(g)):
        return None
    if not np.all(tangent.additive > 0):  # the sign test needs s > 0: the Perron root decides
        v = stationary_variances(tangent, problem.eta, problem.mu, law, g)
    else:
        v = np.linalg.solve(np.eye(g.size) - g[:, None] * tangent.coupling, g * tangent.additive)
    return v if np.all(np.isfinite(v)) and np.all(v > 0) else None


def _linear_escape(derivation: Derivation, rate: float, noise: float, delta_sq: float) -> int | None:
    """First iteration at which the escaping mode's exact linear variance reaches δ² (a constant delay,
    or an i.i.d. law with the delay's spread fed back, :mod:`.transient`; the event-driven server's
    stationary staleness law taken as i.i.d.): the mean curve's crossing at finite η."""
    problem = derivation.problem
    return variance_crossing(rate, noise, problem.eta, problem.mu, delay_law(problem.delay, as_iid=True), delta_sq)


def saddle_arrival(problem: Problem, start: str) -> tuple[float | None, float | None]:
    """For runs started at the saddle ``start`` (``"eJ"``, the worst saddle of the phases), the mean
    escape and the arrival near the floor, in iterations: :attr:`Phases.settled_iterations` (the
    escape's mean over runs, travel and the mean error curve's convergence, not a run's first dip
    below ε); (None, None) for another start, or when the theory has no prediction (no eigengap,
    infinite fourth moments, unstable modes). A stationary window should start after the arrival."""
    if not (start.startswith("e") and start[1:].isdigit() and start != "e1"):
        return None, None
    from amsgd.diffusion.theory import predict

    try:
        found = predict(problem).phases
    except (ProblemError, ArithmeticError, ValueError):
        return None, None
    if found.worst_saddle != int(start[1:]):
        return None, None
    return found.escape_iterations, found.settled_iterations
