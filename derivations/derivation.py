"""``derive(problem)``: the whole symbolic derivation for one streaming-PCA problem.

The chain is recursion → time scale → mean map → ODE (and its closed form) → stationary points →
linearisation → Ornstein–Uhlenbeck limits → stationary error → phase formulas. Every object here is
a SymPy expression or matrix in the eigenvalue symbols ``λ_i``, η and μ; :attr:`Derivation.values`
maps those symbols to the problem's numbers, and the numeric stage
(:func:`amsgd.diffusion.theory.predict`) evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from amsgd.core.distributions import SAMPLED_CROSS_MOMENT_TOLERANCE, SampledDistribution
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem

from . import phases as ph
from .delay_stability import DelayDifferentialLimit, delay_differential_limit
from .display import as_latex, as_text
from .limits import ODELimit, OULimit, mu, ode_limit, ou_limit
from .moments import expectation, wick_moment
from .pca import PCAModel, pca_model
from .recursion import TimeScale, derive_time_scale, eta
from .sdde import SDDELimit, sdde_limit


@dataclass(frozen=True)
class ModeLimit:
    """One coordinate mode ``U_i`` of the OU limit at ``e_j`` (indices 1-based): ``dU_i = a U_i dt + b dB``."""

    i: int
    kind: str  # "tangent" or "radial"
    drift_rate: sp.Expr  # a, per unit of diffusion time
    diffusion: sp.Expr  # b, standard deviation per sqrt(unit time) of the rescaled mode (factored)
    variance: sp.Expr  # b² = (BBᵀ)_ii as derived

    def formulas(self) -> dict:
        return {"drift_rate_formula": as_text(self.drift_rate), "diffusion_formula": as_text(self.diffusion)}


@dataclass(frozen=True)
class PointLimit:
    """The OU limit at the stationary point ±e_j."""

    j: int
    ou: OULimit
    modes: tuple[ModeLimit, ...]


@dataclass(frozen=True)
class LinearMode:
    """A mode of the linearised recursion at e_1 before the time scaling: restoring rate ``a`` (per
    unit η, ``a = −J_ii``) and gradient-noise variance ``s² = C_ii``, derived by undoing the scales of
    the OU limit (``a = −A_ii/(drift scale)``, ``s² = (BBᵀ)_ii/gain²``)."""

    i: int
    kind: str
    rate: sp.Expr
    noise_variance: sp.Expr


@dataclass(frozen=True, eq=False)
class Derivation:
    """The symbolic derivation for one problem. Attributes are computed lazily, so asking for one
    result does not pay for the others; the heavy parts are cached on the shared PCA model."""

    problem: Problem

    @cached_property
    def model(self) -> PCAModel:
        return pca_model(self.problem)

    @cached_property
    def values(self) -> dict:
        """The problem's numbers for the eigenvalue symbols and for η, μ."""
        return self.model.substitutions(self.problem)

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
        """The OU limit at every stationary point, mode by mode (diagonal in eigen-coordinates)."""
        return tuple(self._point_limit(j) for j in self.stationary_points)

    def _point_limit(self, j: int) -> PointLimit:
        ou = ou_limit(self.model.recursion, self.model.unit_vector(j - 1))
        if not ou.drift_matrix.is_diagonal():
            raise ArithmeticError("the PCA OU drift is expected to be diagonal in eigen-coordinates")
        if not ou.noise.is_diagonal():
            ou = OULimit(ou.point, ou.drift_matrix, _diagonal_noise(ou.noise, self.problem))
        modes = tuple(
            ModeLimit(
                i + 1, "radial" if i == j - 1 else "tangent", ou.drift_matrix[i, i],
                sp.factor(sp.sqrt(ou.noise[i, i])), ou.noise[i, i],
            )  # fmt: skip
            for i in range(self.model.dim)
        )
        return PointLimit(j, ou, modes)

    def point(self, j: int) -> PointLimit:
        return next(p for p in self.sde if p.j == j)

    @cached_property
    def optimum_modes(self) -> tuple[LinearMode, ...]:
        """The modes of the linearised recursion at e_1 (:class:`LinearMode`), radial first."""
        point = self.point(1)
        scale, gain = self.timing.drift_scale, self.timing.noise_gain
        return tuple(
            LinearMode(m.i, m.kind, -point.ou.drift_matrix[k, k] / scale, point.ou.noise[k, k] / gain**2)
            for k, m in enumerate(point.modes)
        )

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
    def delay_differential(self) -> DelayDifferentialLimit:
        """The delay-differential limit of one linear mode and its stability boundary ``τ*(a)``."""
        return delay_differential_limit()

    @cached_property
    def sdde(self) -> SDDELimit:
        """The finite-delay limit (τ = s/η, s fixed): the SDDE, its modes at e_1 and their floor in s."""
        return sdde_limit(self.optimum_modes)

    def to_dict(self) -> dict:
        """The derived formulas as text, in the sections of ``amsgd derive``'s JSON (no numbers)."""
        return {
            "recursion": {
                "update": str(self.model.recursion.update.T),
                "time_scale_expansion": {
                    "order_eta": as_text(self.timing.residual_order1),
                    "order_eta2": as_text(self.timing.residual_order2),
                },
            },
            "ode": {
                "time_scale": as_text(self.ode.time_scale),
                "drift": [as_text(e) for e in self.ode.drift],
                "drift_latex": as_latex(self.ode.drift),
                "modified_drift_scalar": as_text(self.timing.modified_drift, simplify=True),
            },
            "stationary_error": {"diffusion_formula": as_text(self.stationary_error)},
            "tau_max_delay_differential_formula": as_text(self.delay_differential.critical_delay),
            "sdde": self._sdde_formulas(),
        }

    def _sdde_formulas(self) -> dict:
        """The SDDE, its linear mode, characteristic equation, boundary and stationary variance, as text."""
        linear = self.sdde.linear
        return {
            "equation": "dX = G(X(t - s))/(1-mu) dt + sqrt(eta)/(1-mu) C(X(t - s))^(1/2) dW, s = tau*eta",
            "linear_mode": "dX_i = -(a_i/(1-mu)) X_i(t - s) dt + (sqrt(eta)/(1-mu)) sigma_i dW_i",
            "characteristic_equation": f"{as_text(linear.delay_differential.characteristic)} = 0",
            "critical_delay_time_formula": as_text(linear.delay_differential.critical_delay_time),
            "stationary_variance_formula": f"Var X = {as_text(linear.variance)} = {as_text(linear.closed_form)}, "
            "for dX = -c X(t - s) dt + b dW and 0 <= c s < pi/2",
            "floor_formula": "sum_i b_i^2 (1 + sin(c_i s))/(2 c_i cos(c_i s)), c_i = a_i/(1-mu), "
            "b_i^2 = eta sigma_i^2/(1-mu)^2",
        }


def _restrict(cov: sp.Matrix, u: list[sp.Symbol]) -> sp.Matrix:
    """The covariance of the modes ``u`` (named ``U_i``), in their listed order."""
    index = [int(str(s).split("_")[1]) - 1 for s in u]
    return cov.extract(index, index)


def _diagonal_noise(noise: sp.Matrix, problem: Problem) -> sp.Matrix:
    """The OU noise of a sampled law without its off-diagonal entries when they are sampling error
    (below :data:`~amsgd.core.distributions.SAMPLED_CROSS_MOMENT_TOLERANCE` of ``sqrt(C_ii C_kk)``);
    a law whose fourth moments couple the eigen-coordinates is refused (the limits are mode by mode)."""
    at_rest = noise.subs(mu, 0)  # the common factor 1/(1 − μ)² leaves the ratios unchanged
    if all(entry.is_number for entry in at_rest) and isinstance(problem.distribution, SampledDistribution):
        c = np.array(at_rest.tolist(), dtype=float)
        scale = np.sqrt(np.outer(np.diag(c), np.diag(c)))
        off = np.abs(c - np.diag(np.diag(c)))
        if np.all(off <= SAMPLED_CROSS_MOMENT_TOLERANCE * scale):
            return sp.diag(*[noise[i, i] for i in range(noise.rows)])
    raise ProblemError(
        f"distribution {problem.distribution.spec}: its fourth moments couple the eigen-coordinates "
        "(E[Y_i Y_k Y_j^2] != 0 for i != k), and the limits here are mode by mode; use a law that is "
        "symmetric under sign changes of each eigen-coordinate"
    )


def derive(problem: Problem) -> Derivation:
    """The symbolic derivation of the diffusion limits of ``problem`` (formulas; numbers in ``amsgd.predict``)."""
    return Derivation(problem)
