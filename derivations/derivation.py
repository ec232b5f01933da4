"""``derive(problem)``: the whole symbolic derivation for one streaming-PCA problem.

The chain is recursion → time scale → mean map → ODE (and its closed form) → stationary points →
linearisation → Ornstein–Uhlenbeck limits → stationary error → phase formulas. Every object here is
a SymPy expression or matrix in the eigenvalue symbols ``λ_i``, η and μ; :attr:`Derivation.values`
maps those symbols to the problem's numbers, and the numeric stage
(:func:`amsgd.diffusion.theory.predict`) evaluates them.

Two routes give the same formulas. The **indexed** route (named data laws, any d) derives each
per-mode formula once in generic indices (:mod:`.indexed`) and the numeric stage evaluates it over
the spectrum; its cost does not grow with d. A sampled law takes it in the symbols ``m_ab =
E[Y_a² Y_b²]`` of a law symmetric under sign changes (:class:`~.distributions.SignSymmetric`), with the
sampled values (:attr:`Derivation.pair_moments`) once its draws are checked to have the part of that
symmetry the limits at the stationary points use. The **per-coordinate** route builds every object for the d coordinates (the d x d
OU matrices, ``solve`` of ``g(h) = 0`` in d unknowns; a sampled law with every sampled moment), for
``d <= MAX_SYMBOLIC_DIM``. The per-coordinate attributes (:attr:`Derivation.sde`, :attr:`Derivation.ode`,
...) can be asked for on either route where d allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

import numpy as np
import sympy as sp

from amsgd.core.distributions import (
    SAMPLER_MOMENT_TOLERANCE,
    SampledDistribution,
    cross_moments_vanish,
    distance_from_centred_with_covariance,
    share_of_scale,
)
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem

from . import phases as ph
from .delay_stability import DelayDifferentialLimit, delay_differential_limit
from .display import as_latex, as_text, in_one_minus_mu
from .indexed import FULL_LISTING_DIM, INDEX, IndexedPCA, dim, indexed_pca, instantiate, plain, to_indexed
from .limits import ODELimit, OULimit, mu, ode_limit, ou_limit
from .moments import expectation, wick_moment
from .pca import MAX_SYMBOLIC_DIM, PCAModel, pca_model
from .recursion import TimeScale, derive_time_scale, eta
from .sdde import SDDELimit, linear_mode_sdde, sdde_limit

#: The two routes of :func:`derive` (module docstring).
INDEXED, PER_COORDINATE = "indexed", "per-coordinate"


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
    result does not pay for the others; the heavy parts are cached on the shared PCA model, and on
    the indexed route on the data law's :class:`~.indexed.IndexedPCA`."""

    problem: Problem
    route: str = INDEXED

    def __post_init__(self) -> None:
        """Refuse what has no derivation: not a Problem, infinite fourth moments, an unknown route, the
        per-coordinate route beyond ``MAX_SYMBOLIC_DIM``."""
        if not isinstance(self.problem, Problem):
            raise ProblemError(
                f"derive needs a Problem (a model: amsgd.diffusion.theory.predict_model), got {type(self.problem).__name__}"
            )
        self.problem.require_finite_fourth_moments()
        if self.route not in (INDEXED, PER_COORDINATE):
            raise ProblemError(f"route must be {INDEXED!r} or {PER_COORDINATE!r}, got {self.route!r}")
        if self.route == PER_COORDINATE and self.problem.dim > MAX_SYMBOLIC_DIM:
            raise ProblemError(
                f"the per-coordinate route supports d <= {MAX_SYMBOLIC_DIM}, got d = {self.problem.dim}; "
                f"the route {INDEXED!r} (the default) takes any d"
            )

    def __getstate__(self) -> dict:
        """Pickled as its problem and route: the derived parts hold local functions (the data law's
        moments), which pickle cannot take; they are derived again, or loaded from the store, on use."""
        return {"problem": self.problem, "route": self.route}

    @cached_property
    def model(self) -> PCAModel:
        return pca_model(self.problem)

    @cached_property
    def indexed(self) -> IndexedPCA | None:
        """The data law's indexed derivation (:mod:`.indexed`); None on the per-coordinate route."""
        return indexed_pca(self.problem.distribution) if self.route == INDEXED else None

    @cached_property
    def pair_moments(self) -> np.ndarray | None:
        """``m_ab = E[Y_a² Y_b²]`` of a sampled law, a d x d array from its moment draws, for the symbols
        ``m_ab`` of the indexed route; None for a named law (whose formulas have its moments in them).
        The draws are checked first to have no fourth moment that couples the eigen-coordinates at the
        stationary points (:func:`require_uncoupled`: at every point up to
        :data:`~.indexed.FULL_LISTING_DIM` coordinates, above at e_1, e_2 and e_d, those the
        predictions read most)."""
        if not isinstance(self.problem.distribution, SampledDistribution):
            return None
        n = self.problem.dim
        for j in range(1, n + 1) if n <= FULL_LISTING_DIM else (1, 2, n):
            require_uncoupled(self.problem, j)
        squares = self.problem.distribution.fourth_moment_samples_for(self.problem.eigenvalues, self.problem.basis) ** 2
        return squares.T @ squares / squares.shape[0]

    @property
    def moment_symbols(self) -> str | None:
        """What the symbols ``m_a_b`` of a sampled law's indexed formulas stand for; None where the
        formulas have none."""
        if self.indexed is None or not isinstance(self.problem.distribution, SampledDistribution):
            return None
        return (
            "m_a_b = E[Y_a^2 Y_b^2] and m_a_a = E[Y_a^4] in eigen-coordinates (Y = Q^T X): the sampled law's fourth "
            f"moments, estimated from its {self.problem.distribution.moment_samples} moment draws"
        )

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
        """1-based j of the stationary points ±e_j on the sphere, found by solving g(h) = 0 (in d unknowns,
        or on the indexed route in the representative model, where every coordinate is one)."""
        if self.indexed is not None:
            self.indexed.stationary_points  # noqa: B018 (derived and checked: every coordinate)
            return list(range(1, self.problem.dim + 1))
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
            ou = OULimit(ou.point, ou.drift_matrix, _diagonal_noise(ou.noise, self.problem, j))
        modes = tuple(
            ModeLimit(
                i + 1, "radial" if i == j - 1 else "tangent", ou.drift_matrix[i, i],
                sp.factor(sp.sqrt(ou.noise[i, i])), ou.noise[i, i],
            )  # fmt: skip
            for i in range(self.model.dim)
        )
        return PointLimit(j, ou, modes)

    def point(self, j: int) -> PointLimit:
        """The limits at the stationary point ``e_j`` (``j`` = 1 … d)."""
        found = [p for p in self.sde if p.j == j]
        if not found:
            raise ProblemError(f"the stationary points are e_1 … e_{self.model.dim}; got j = {j!r}")
        return found[0]

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
        return self.model.error_expansion

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
        """The derived formulas as text, in the sections of ``amsgd derive``'s JSON (no numbers).

        Up to :data:`~.indexed.FULL_LISTING_DIM` coordinates every component is written out; above,
        each is written with its sum over the modes (``Sum(..., (k, 1, d))``) and the LaTeX drift is
        its component i (``*_note`` keys say so).
        """
        out = {
            "recursion": {
                "update": self._update_text(),
                "time_scale_expansion": {
                    "order_eta": as_text(self.timing.residual_order1),
                    "order_eta2": as_text(self.timing.residual_order2),
                },
            },
            "ode": {
                "time_scale": as_text(self.timing.drift_scale),
                **self._drift_text(),
                "modified_drift_scalar": as_text(self.timing.modified_drift, simplify=True),
            },
            "stationary_error": {"diffusion_formula": self._stationary_error_text()},
            "tau_max_delay_differential_formula": as_text(self.delay_differential.critical_delay),
            "sdde": self._sdde_formulas(),
        }
        if self.problem.dim > FULL_LISTING_DIM and self.indexed is not None:
            out["recursion"]["update_note"] = (
                f"component i = 1..{self.problem.dim} of G(h, Y) = (I - h h^T) Y Y^T h, written with its sum over "
                f"the modes (d > {FULL_LISTING_DIM})"
            )
        return out

    @property
    def _summarised(self) -> bool:
        return self.indexed is not None and self.problem.dim > FULL_LISTING_DIM

    def _update_text(self) -> str:
        if not self._summarised:
            return str(self.model.recursion.update.T)
        return str(plain(self.indexed.update.subs(dim, self.problem.dim)))

    def _drift_text(self) -> dict:
        """``drift`` (one text per component) and ``drift_latex``."""
        if self.indexed is None:
            return {"drift": [as_text(e) for e in self.ode.drift], "drift_latex": as_latex(self.ode.drift)}
        x, n = self.indexed, self.problem.dim
        if not self._summarised:
            lam, h = self.model.lam, self.model.h
            components = sp.Matrix([
                x.mean_map.explicit(x.model, {"i": (lam[c], h[c])}, lam, h, x.drift_scale) for c in range(n)
            ])  # fmt: skip
            return {"drift": [as_text(e) for e in components], "drift_latex": as_latex(components)}
        component = x.mean_map.indexed(x.model, x.drift_scale).subs(dim, n)
        template = _indexed_text(component)
        return {
            "drift": [instantiate(template, 0, c) for c in range(1, n + 1)],
            "drift_latex": as_latex(component),
            "drift_note": f"d = {n} > {FULL_LISTING_DIM}: each component written with its sum over the modes; "
            "drift_latex is component i",
        }

    def _stationary_error_text(self) -> str:
        if self.indexed is None:
            return as_text(self.stationary_error)
        x, n = self.indexed, self.problem.dim
        if not self._summarised:
            term = to_indexed(x.error_term, x.model).xreplace({INDEX["j"]: sp.Integer(1)})
            return as_text(sp.Add(*(sp.factor(plain(term.xreplace({INDEX["i"]: sp.Integer(c)}))) for c in range(2, n + 1))))
        return _indexed_text(x.stationary_error().subs(dim, n))

    def _sdde_formulas(self) -> dict:
        """The SDDE, its linear mode, characteristic equation, boundary and stationary variance, as text."""
        linear = linear_mode_sdde()
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


def _indexed_text(expr: sp.Expr) -> str:
    """Text of an indexed formula: written in ``1 − μ`` while its symbols are indexed (so that a summand
    stays inside its sum), then with ``lambda[k]`` printed as ``lambda_k``."""
    return str(plain(in_one_minus_mu(expr)))


def _restrict(cov: sp.Matrix, u: list[sp.Symbol]) -> sp.Matrix:
    """The covariance of the modes ``u`` (named ``U_i``), in their listed order."""
    index = [int(str(s).split("_")[1]) - 1 for s in u]
    return cov.extract(index, index)


def _diagonal_noise(noise: sp.Matrix, problem: Problem, j: int) -> sp.Matrix:
    """The OU noise ``E[Y_j² Y_i Y_k]`` at ``e_j`` of a sampled law without its off-diagonal entries, which
    :func:`require_uncoupled` finds to be sampling error; any other law with off-diagonal noise is refused."""
    if not (isinstance(problem.distribution, SampledDistribution) and all(e.is_number for e in noise.subs(mu, 0))):
        _refuse_coupled(problem)
    require_uncoupled(problem, j)
    return sp.diag(*[noise[i, i] for i in range(noise.rows)])


def require_uncoupled(problem: Problem, j: int) -> None:
    """Refuse a sampled law whose fourth moments ``E[Y_j² Y_i Y_k]`` (``i ≠ k``, both ≠ j) at ``e_j`` are
    more than sampling error (:func:`~amsgd.core.distributions.cross_moments_vanish` of the forcings
    ``Y_j Y_i``): the limits are mode by mode. Draws off mean 0 or covariance Σ are refused for that."""
    law = problem.distribution
    y = law.fourth_moment_samples_for(problem.eigenvalues, problem.basis)
    forcing = y * y[:, [j - 1]]
    forcing[:, j - 1] = 0.0  # no noise along e_j itself
    if cross_moments_vanish(forcing):
        return
    off = distance_from_centred_with_covariance(y, problem.eigenvalues)
    if off > SAMPLER_MOMENT_TOLERANCE:  # a mean, or a covariance other than Σ, alone makes such moments
        raise ProblemError(
            f"distribution {law.spec}: its draws are not centred with the problem's covariance Sigma (mean or "
            f"covariance {share_of_scale(off)} away), which alone couples the eigen-coordinates' fourth "
            "moments; give a sampler with mean 0 and covariance Sigma"
        )
    _refuse_coupled(problem)


def _refuse_coupled(problem: Problem) -> NoReturn:
    raise ProblemError(
        f"distribution {problem.distribution.spec}: its fourth moments couple the eigen-coordinates "
        "(E[Y_i Y_k Y_j^2] != 0 for i != k), and the limits here are mode by mode; use a law that is "
        "symmetric under sign changes of each eigen-coordinate"
    )


def derive(problem: Problem, route: str | None = None) -> Derivation:
    """The symbolic derivation of the diffusion limits of ``problem`` (formulas; numbers in ``amsgd.predict``).

    ``route``: ``"indexed"`` (the default, any d) or ``"per-coordinate"`` (``d <= MAX_SYMBOLIC_DIM``); see
    the module docstring.
    """
    return Derivation(problem, route or INDEXED)
