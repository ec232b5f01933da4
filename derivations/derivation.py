"""``derive(problem)``: the whole symbolic derivation for one streaming-PCA problem.

The chain is recursion → time scale → mean map → ODE (and its closed form) → stationary points →
linearisation → Ornstein–Uhlenbeck limits → stationary error → phases. Every formula is a SymPy
object derived here; numbers are those formulas evaluated at the problem's eigenvalues, η and μ.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from amsgd.diffusion.error_floor import FloorResult, linearized_floor
from amsgd.diffusion.stability import StabilityReport, stability_report
from amsgd.diffusion.tradeoff import TradeoffResult, tradeoff
from amsgd.diffusion.transient import variance_crossing
from amsgd.errors import ProblemError
from amsgd.estimates import json_float
from amsgd.problem import Problem
from amsgd.simulate.delays import ConstantDelay

from . import phases as ph
from .defaults import (
    DEFAULT_DELTA_SQ,
    DEFAULT_EPSILON_FACTOR,
    DEFAULT_GAMMA,
    SCALING_MUS,
    TRADEOFF_MUS,
    TRADEOFF_WORKERS,
)
from .delay_conditions import DelayConditions, delay_conditions, ode_bound
from .delay_stability import a as rate_symbol
from .delay_stability import delay_differential_limit
from .display import as_latex, as_text
from .limits import ODELimit, OULimit, ode_limit, ou_limit
from .moments import expectation, wick_moment
from .pca import PCAModel, pca_model
from .recursion import TimeScale, derive_time_scale, eta, mu


@dataclass(frozen=True)
class ModeLimit:
    """One coordinate mode ``U_i`` of the OU limit at ``e_j`` (indices 1-based)."""

    i: int
    kind: str  # "tangent" or "radial"
    drift_rate: sp.Expr
    diffusion: sp.Expr  # standard deviation per sqrt(unit time) of the rescaled mode
    drift_rate_value: float
    diffusion_value: float

    @property
    def stable(self) -> bool:
        return self.drift_rate_value < 0

    def to_dict(self) -> dict:
        return {
            "i": self.i,
            "kind": self.kind,
            "drift_rate": self.drift_rate_value,
            "drift_rate_formula": as_text(self.drift_rate),
            "diffusion": self.diffusion_value,
            "diffusion_formula": as_text(self.diffusion),
            "stable": self.stable,
        }


@dataclass(frozen=True)
class PointLimit:
    """The OU limit at the stationary point ±e_j."""

    j: int
    ou: OULimit
    modes: tuple[ModeLimit, ...]

    @property
    def kind(self) -> str:
        unstable = sum(not m.stable for m in self.modes)
        if unstable == 0:
            return "minimum"  # of the error; the optimum
        return "saddle" if unstable < len(self.modes) - 1 else "maximum"

    def to_dict(self) -> dict:
        return {"j": self.j, "point": f"±e_{self.j}", "kind": self.kind, "modes": [m.to_dict() for m in self.modes]}


@dataclass(frozen=True)
class OptimumModes:
    """The linear modes at e_1: ``a_i = −J_ii(e_1)`` (restoring rates) and noise ``s_i² = C_ii(e_1)``."""

    modes: tuple[ModeLimit, ...]
    rates: np.ndarray
    noise_variances: np.ndarray

    def describe(self, index: int) -> dict:
        mode = self.modes[index]
        return {"i": mode.i, "kind": mode.kind, "rate": float(self.rates[index])}


@dataclass(frozen=True)
class Phases:
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


class Derivation:
    """The derivation for one problem: SymPy objects (attributes) and numbers (:meth:`to_dict`).

    Attributes are computed lazily, so asking for one result does not pay for the others.
    """

    def __init__(
        self,
        problem: Problem,
        delta_sq: float = DEFAULT_DELTA_SQ,
        epsilon: float | None = None,
        gamma: float = DEFAULT_GAMMA,
        tradeoff_mus: tuple[float, ...] = TRADEOFF_MUS,
        tradeoff_workers: tuple[int, ...] = TRADEOFF_WORKERS,
    ) -> None:
        problem.require_eigengap()
        if not 0 < delta_sq < 0.5:
            raise ProblemError(f"delta_sq (δ², the phase boundary) must satisfy 0 < δ² < 1/2, got {delta_sq:g}")
        if epsilon is not None and not 0 < epsilon < 1:
            raise ProblemError(f"epsilon (the target error) must satisfy 0 < ε < 1, got {epsilon:g}")
        self.problem = problem
        self.model: PCAModel = pca_model(problem)
        self.delta_sq = delta_sq
        self.epsilon_requested = epsilon
        self.delay_conditions: DelayConditions = delay_conditions(problem, gamma)
        self.tradeoff_grid = (tuple(tradeoff_mus), tuple(tradeoff_workers))
        self.values = self.model.substitutions(problem)

    def value(self, expr: sp.Expr) -> float:
        return float(sp.sympify(expr).subs(self.values))

    @cached_property
    def timing(self) -> TimeScale:
        return derive_time_scale()

    @cached_property
    def ode(self) -> ODELimit:
        return ode_limit(self.model.recursion)

    @cached_property
    def ode_closed_form(self) -> tuple[sp.Matrix, sp.Matrix]:
        """The closed form and its (zero) residual in the ODE, see :meth:`PCAModel.ode_closed_form`."""
        return self.model.ode_closed_form()

    @cached_property
    def stationary_points(self) -> list[int]:
        """1-based j of the stationary points ±e_j on the sphere, found by solving g(h) = 0."""
        found = []
        for solution in self.model.recursion.stationary_points():
            h = [solution.get(hk, hk) for hk in self.model.h]
            if all(v.is_number for v in h) and sum(v**2 for v in h) == 1 and max(h) == 1:
                found.append(next(k + 1 for k, v in enumerate(h) if v != 0))
        return sorted(found)

    @cached_property
    def sde(self) -> tuple[PointLimit, ...]:
        points = []
        for j in self.stationary_points:
            ou = ou_limit(self.model.recursion, self.model.unit_vector(j - 1))
            if not (ou.drift_matrix.is_diagonal() and ou.noise.is_diagonal()):
                raise ArithmeticError("the PCA OU limit is expected to be diagonal in eigen-coordinates")
            modes = []
            for i in range(self.model.dim):
                rate = ou.drift_matrix[i, i]
                diffusion = sp.sqrt(ou.noise[i, i])
                modes.append(
                    ModeLimit(
                        i + 1,
                        "radial" if i == j - 1 else "tangent",
                        rate,
                        sp.factor(diffusion),
                        self.value(rate),
                        self.value(diffusion),
                    )
                )
            points.append(PointLimit(j, ou, tuple(modes)))
        return tuple(points)

    def point(self, j: int) -> PointLimit:
        return next(p for p in self.sde if p.j == j)

    @cached_property
    def stationary_covariance(self) -> sp.Matrix:
        """The OU stationary covariance of ``U = (h − e_1)/sqrt(η)`` at the optimum."""
        return self.point(1).ou.stationary_covariance()

    @cached_property
    def error_expansion(self) -> sp.Expr:
        """Leading term of sin²∠(h, e_1) at ``h = e_1 + sqrt(η) U``: a quadratic form in U."""
        u = sp.symbols(f"U_1:{self.model.dim + 1}", real=True)
        s = sp.Symbol("s", positive=True)  # s = sqrt(η)
        shifted = self.model.error.subs(
            {hk: (1 if k == 0 else 0) + s * uk for k, (hk, uk) in enumerate(zip(self.model.h, u))},
            simultaneous=True,
        )
        quadratic = sp.series(shifted, s, 0, 3).removeO().coeff(s, 2)
        return sp.expand(quadratic)

    @cached_property
    def stationary_error(self) -> sp.Expr:
        """``E sin²`` to leading order: η times the expectation of the quadratic form under the OU law."""
        u = sorted(self.error_expansion.free_symbols, key=str)
        cov = self.stationary_covariance
        mean = expectation(self.error_expansion, u, wick_moment(_restrict(cov, u)))
        return eta * mean

    @cached_property
    def phase_formulas(self) -> ph.PhaseFormulas:
        return ph.derive_phase_formulas()

    @cached_property
    def worst_saddle(self) -> int:
        """The saddle whose fastest escape rate is the slowest; for distinct eigenvalues, e_2."""
        saddles = [p for p in self.sde if p.kind != "minimum" and p.j != 1]
        return min(saddles, key=lambda p: max(m.drift_rate_value for m in p.modes)).j

    @cached_property
    def phases(self) -> Phases:
        f = self.phase_formulas
        floor = self.value(self.stationary_error)
        epsilon = self.epsilon_requested or DEFAULT_EPSILON_FACTOR * floor
        if epsilon <= floor:
            raise ProblemError(
                f"epsilon = {epsilon:g} is at or below the stationary error floor {floor:g}; "
                "it is never reached on average"
            )
        saddle = self.point(self.worst_saddle)
        escape_mode = max(saddle.modes, key=lambda m: m.drift_rate_value)
        slow_mode = max((m for m in self.point(1).modes if m.kind == "tangent"), key=lambda m: m.drift_rate_value)
        escape = f.escape_time.subs(
            {ph.a: escape_mode.drift_rate_value, ph.sigma2: escape_mode.diffusion_value**2, ph.delta2: self.delta_sq, eta: self.problem.eta}
        )
        # The ODE's log-ratio log(h_1²/h_2²) grows at twice the escape rate (λ1 − λ2)/(1 − μ).
        travel = f.travel_time_scaled.subs(ph.delta2, self.delta_sq) / escape_mode.drift_rate_value
        converge = f.converge_time.subs(
            {
                ph.a: -slow_mode.drift_rate_value,
                ph.sigma2: slow_mode.diffusion_value**2,
                ph.delta2: self.delta_sq,
                ph.floor: floor,
                ph.epsilon: epsilon,
                eta: self.problem.eta,
            }
        )
        # Already below ε when travel ends (ε >= δ²): phase III takes no time.
        converge_time = max(float(sp.re(converge)), 0.0) if epsilon < self.delta_sq else 0.0
        return Phases(
            self.delta_sq,
            epsilon,
            self.worst_saddle,
            float(escape),
            float(travel),
            converge_time,
            self.problem.eta,
            self._linear_escape(escape_mode),
        )

    def _linear_escape(self, mode: ModeLimit) -> int | None:
        """First iteration at which the escaping mode's exact linear variance reaches δ² (constant delay)."""
        if not isinstance(self.problem.delay, ConstantDelay):
            return None
        scale, gain = self.timing.drift_scale, self.timing.noise_gain
        rate = -self.value(mode.drift_rate / scale)
        noise = self.value(mode.diffusion**2 / gain**2)
        return variance_crossing(rate, noise, self.problem.eta, self.problem.mu, self.problem.tau, self.delta_sq)

    # --- finite-η, finite-τ linear theory ------------------------------------------------------

    @cached_property
    def optimum_modes(self) -> OptimumModes:
        """Undo the derived scales of the OU limit at e_1: ``a = −A_ii/(drift scale)``, ``s² = BBᵀ_ii/gain²``."""
        point = self.point(1)
        scale, gain = self.timing.drift_scale, self.timing.noise_gain
        n = self.model.dim
        rates = np.array([-self.value(point.ou.drift_matrix[i, i] / scale) for i in range(n)])
        noise = np.array([self.value(point.ou.noise[i, i] / gain**2) for i in range(n)])
        return OptimumModes(point.modes, rates, noise)

    @cached_property
    def linear_theory(self) -> tuple[FloorResult, StabilityReport] | None:
        """The exact linear floor and stability at the problem's η, μ and delay (None: not i.i.d.)."""
        if not self.problem.delay.is_iid:
            return None
        modes = self.optimum_modes
        floor = linearized_floor(modes.rates, modes.noise_variances, self.problem.eta, self.problem.mu, self.problem.delay)
        report = stability_report(modes.rates, self.problem.eta, self.problem.mu, self.problem.delay)
        return floor, report

    def delay_differential_tau_max(self, mu_value: float) -> float:
        """``π (1 − μ)/(2 a η)`` for the fastest mode: the DDE limit's largest stable delay."""
        rate = float(self.optimum_modes.rates.max())
        formula = delay_differential_limit().critical_delay
        return float(formula.subs({rate_symbol: rate, eta: self.problem.eta, mu: mu_value}))

    @cached_property
    def tau_scaling(self) -> dict:
        """τ* over the momenta of the published experiment, its fitted power of 1 − μ, and the
        published sufficient condition (1 − μ)²/(λ_1 η^{1−γ}) at the same momenta."""
        rates = self.optimum_modes.rates
        tau_max = [stability_report(rates, self.problem.eta, m, 0).tau_max for m in SCALING_MUS]
        paper = [ode_bound(self.problem, self.delay_conditions.gamma, m) for m in SCALING_MUS]
        usable = [(m, t) for m, t in zip(SCALING_MUS, tau_max) if t]
        exponent = None
        if len(usable) >= 2:
            x = np.log([1 - m for m, _ in usable])
            y = np.log([t for _, t in usable])
            exponent = float(np.polyfit(x, y, 1)[0])
        return {
            "mu": list(SCALING_MUS),
            "tau_max": tau_max,
            "tau_max_delay_differential": [self.delay_differential_tau_max(m) for m in SCALING_MUS],
            "paper_ode_bound": paper,
            "fitted_exponent": exponent,
            "paper_exponent": 2,
        }

    @cached_property
    def tradeoff(self) -> TradeoffResult:
        """Floor, local rate and stability over momenta × round-robin workers (τ = M − 1)."""
        modes = self.optimum_modes
        mus, workers = self.tradeoff_grid
        return tradeoff(modes.rates, modes.noise_variances, self.problem.eta, mus, np.asarray(workers))

    def linear_dict(self) -> tuple[dict | None, dict]:
        """The ``stationary_error.linearized`` value and the ``stability`` section."""
        theory = self.linear_theory
        if theory is None:
            note = (
                f"delay {self.problem.delay.spec} is not i.i.d.; the linear theory needs a constant or i.i.d. "
                "delay (an event-driven server with M exponential workers has geometric staleness of mean "
                "M - 1: --delay geometric:M-1 is its i.i.d. approximation)"
            )
            return None, {"tau_max": None, "limiting_mode": None, "spectral_radius": None, "note": note}
        floor, report = theory
        modes = self.optimum_modes
        stability = {
            "tau_max": report.tau_max,
            "limiting_mode": modes.describe(report.limiting_mode),
            "spectral_radius": report.spectral_radius,
            "stable": report.stable,
            "slowest_mode": modes.describe(report.slowest_mode),
            "decay_per_iteration": json_float(report.decay_per_iteration),
            "tau_max_delay_differential": self.delay_differential_tau_max(self.problem.mu),
            "tau_max_delay_differential_formula": as_text(delay_differential_limit().critical_delay),
            "scaling": self.tau_scaling,
        }
        if report.tau_max is None:
            stability["note"] = (
                f"no delay is stable at eta = {self.problem.eta:g}: the fastest mode needs "
                f"eta * {modes.rates.max():g} < 2 (1 + mu) even without delay"
            )
        elif not report.stable:
            stability["note"] = f"delay {self.problem.delay.spec} is beyond the largest stable delay"
        linearized = {
            "value": json_float(floor.floor),
            "ratio_to_diffusion": json_float(floor.ratio),
            "stable": floor.stable,
            "per_mode": [json_float(v) for v in floor.variances],
        }
        return linearized, stability

    def to_dict(self) -> dict:
        """The JSON document of ``amsgd derive``."""
        scale = self.ode.time_scale
        linearized, stability = self.linear_dict()
        return {
            "problem": self.problem.to_dict(),
            "recursion": {
                "update": str(self.model.recursion.update.T),
                "time_scale_expansion": {
                    "order_eta": as_text(self.timing.residual_order1),
                    "order_eta2": as_text(self.timing.residual_order2),
                },
            },
            "ode": {
                "time_scale": as_text(scale),
                "time_scale_value": self.value(scale),
                "drift": [as_text(e) for e in self.ode.drift],
                "drift_latex": as_latex(self.ode.drift),
                "modified_drift_scalar": as_text(self.timing.modified_drift, simplify=True),
            },
            "sde": [p.to_dict() for p in self.sde],
            "stationary_error": {
                "diffusion": self.value(self.stationary_error),
                "diffusion_formula": as_text(self.stationary_error),
                "linearized": linearized,
            },
            "stability": stability,
            "phases": self.phases.to_dict(),
            "delay_conditions": self.delay_conditions.to_dict(),
            "tradeoff": _tradeoff_summary(self.tradeoff),
        }


def _tradeoff_summary(result: TradeoffResult) -> dict:
    full = result.to_dict()
    keys = ("mus", "workers", "floor", "stable", "max_workers", "best_mu_floor", "best_mu_rate")
    return {k: full[k] for k in keys}


def _restrict(cov: sp.Matrix, u: list[sp.Symbol]) -> sp.Matrix:
    """The covariance of the modes ``u`` (named ``U_i``), in their listed order."""
    index = [int(str(s).split("_")[1]) - 1 for s in u]
    return cov.extract(index, index)


def derive(problem: Problem, **options) -> Derivation:
    """Derive the diffusion limits of ``problem``.

    Options: ``delta_sq`` (phase boundary δ²), ``epsilon`` (target error), ``gamma`` (of the quoted
    delay conditions), ``tradeoff_mus`` and ``tradeoff_workers`` (the tradeoff grid).
    """
    return Derivation(problem, **options)
