"""Streaming PCA as a momentum recursion, in eigen-coordinates.

With ``Σ = Q Λ Qᵀ``, ``h = Qᵀ v`` and ``Y = Qᵀ X``, the update of docs/theory.md reads

    G(h, Y) = (I − h hᵀ) Y Yᵀ h,

the same form as in the original coordinates, so every derivation here is done with a diagonal
Λ of eigenvalue symbols ``λ_1 > λ_2 >= ... >= λ_d`` and holds for any covariance. The noise ``Y``
enters through its second moments Λ and its fourth moments, which the data distribution supplies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from amsgd.core.distributions import Distribution, SampledDistribution
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem

from .distributions import SignSymmetric, fourth_moment, sign_symmetric_moment
from .moments import fourth_order_moment
from .recursion import MomentumRecursion, eta, mu, t

#: Above this dimension the per-coordinate derivation (a d x d symbolic noise covariance, O(d⁴) terms) is
#: not built; every data law has the indexed derivation (:mod:`.indexed`) at every d.
MAX_SYMBOLIC_DIM = 12


def eigenvalue_symbols(dim: int) -> tuple[sp.Symbol, ...]:
    return sp.symbols(f"lambda_1:{dim + 1}", positive=True)


def coordinate_symbols(prefix: str, labels: tuple[str, ...], **assumptions) -> tuple[sp.Symbol, ...]:
    """``prefix_label`` for each label, e.g. ``lambda_1, lambda_2`` or ``h_j, h_i``."""
    return tuple(sp.Symbol(f"{prefix}_{label}", **assumptions) for label in labels)


@dataclass(frozen=True)
class PCAModel:
    """The streaming-PCA recursion for dimension ``dim`` and a data distribution.

    The coordinates are numbered ``1 .. dim`` unless ``labels`` names them: a model with the labels
    ``("j", "i", "k", "l")`` has the eigenvalue symbols ``λ_j, λ_i, λ_k, λ_l`` and stands for any four
    distinct coordinates of a larger problem (:mod:`.indexed`).
    """

    dim: int
    distribution: Distribution
    estimated_moments: tuple | None = None  # (samples of Y) for a sampled distribution
    labels: tuple[str, ...] | None = None

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The coordinate labels, ``1 .. dim`` by default."""
        if self.labels is None:
            return tuple(str(k + 1) for k in range(self.dim))
        if len(self.labels) != self.dim:
            raise ValueError(f"{len(self.labels)} labels for a model of dimension {self.dim}")
        return self.labels

    @cached_property
    def lam(self) -> tuple[sp.Symbol, ...]:
        return coordinate_symbols("lambda", self.names, positive=True)

    @cached_property
    def h(self) -> tuple[sp.Symbol, ...]:
        return coordinate_symbols("h", self.names, real=True)

    @cached_property
    def y(self) -> tuple[sp.Symbol, ...]:
        return coordinate_symbols("Y", self.names, real=True)

    def moment_symbol(self, a: int, b: int) -> sp.Symbol:
        """``m_ab = E[Y_a² Y_b²]`` (``m_aa = E[Y_a⁴]``) of a :class:`~.distributions.SignSymmetric` law,
        one symbol for both orders (coordinates 0-based, named in the order of :attr:`names`)."""
        a, b = sorted((a, b))
        return sp.Symbol(f"m_{self.names[a]}{self.names[b]}", positive=True)

    @cached_property
    def moment_symbols(self) -> dict[sp.Symbol, tuple[int, int]]:
        """Every ``m_ab`` (``a <= b``) with its coordinates; empty for a law with moment formulas."""
        if not isinstance(self.distribution, SignSymmetric):
            return {}
        return {self.moment_symbol(a, b): (a, b) for a in range(self.dim) for b in range(a, self.dim)}

    def symbols_of(self, c: int) -> tuple[sp.Symbol, ...]:
        """The symbols that belong to coordinate ``c``: ``λ_c, h_c, Y_c`` and every ``m_ac``."""
        return (self.lam[c], self.h[c], self.y[c], *(m for m, pair in self.moment_symbols.items() if c in pair))

    def relabelling(self, mapping: dict[int, int]) -> dict[sp.Symbol, sp.Symbol]:
        """The replacement of symbols that renames coordinate ``c`` as ``mapping[c]`` (the others kept),
        moments included: ``{i: k}`` maps ``λ_i, h_i, m_ji`` to ``λ_k, h_k, m_jk``."""
        out = {}
        for c, new in mapping.items():
            out.update({self.lam[c]: self.lam[new], self.h[c]: self.h[new], self.y[c]: self.y[new]})
        for m, (a, b) in self.moment_symbols.items():
            if a in mapping or b in mapping:
                out[m] = self.moment_symbol(mapping.get(a, a), mapping.get(b, b))
        return out

    @cached_property
    def recursion(self) -> MomentumRecursion:
        h = sp.Matrix(self.h)
        y = sp.Matrix(self.y)
        update = (sp.eye(self.dim) - h * h.T) * y * (y.T * h)
        lam = self.lam

        def second(i: int, j: int) -> sp.Expr:
            return lam[i] if i == j else sp.S.Zero

        if self.estimated_moments is not None:
            samples = self.estimated_moments[0]

            def fourth(i, j, k, l):
                return sp.Float(float(np.mean(samples[:, i] * samples[:, j] * samples[:, k] * samples[:, l])))
        elif isinstance(self.distribution, SignSymmetric):

            def fourth(i, j, k, l):
                return sign_symmetric_moment((i, j, k, l), self.moment_symbol)
        else:

            def fourth(i, j, k, l):
                return fourth_moment(self.distribution, i, j, k, l, lam)

        return MomentumRecursion(
            name="streaming PCA",
            state=self.h,
            noise=self.y,
            update=update,
            moment=fourth_order_moment(second, fourth),
        )

    @cached_property
    def projected_noise(self) -> tuple[sp.Matrix, sp.Matrix]:
        """``G = P(h) N(h, Y)`` with the noise-free projector ``P = I − h hᵀ`` and ``N = Y Yᵀ h``.

        Returns ``(P, S)`` with ``S(h) = Cov[N(h, Y)]``, so that ``C(h) = P S(h) P``: the same
        covariance as :attr:`MomentumRecursion.noise_covariance`, in a form with far fewer terms
        (and ``P S^{1/2}`` is a smooth square root of C where S is positive definite).
        """
        h = sp.Matrix(self.h)
        y = sp.Matrix(self.y)
        unprojected = MomentumRecursion(
            name="streaming PCA, unprojected gradient",
            state=self.h,
            noise=self.y,
            update=y * (y.T * h),
            moment=self.recursion.moment,
        )
        return sp.eye(self.dim) - h * h.T, unprojected.noise_covariance

    def unit_vector(self, j: int) -> dict:
        """The stationary point ``e_j`` (0-based ``j``) as a substitution dict."""
        return {hk: (1 if k == j else 0) for k, hk in enumerate(self.h)}

    @cached_property
    def error(self) -> sp.Expr:
        """The optimisation error ``sin²∠(h, e_1) = 1 − h_1²/||h||²``."""
        norm2 = sum(hk**2 for hk in self.h)
        return 1 - self.h[0] ** 2 / norm2

    @cached_property
    def fluctuations(self) -> tuple[sp.Symbol, ...]:
        """``U = (h − e_1)/sqrt(η)``, one symbol per coordinate."""
        return coordinate_symbols("U", self.names, real=True)

    @cached_property
    def error_expansion(self) -> sp.Expr:
        """Leading term of sin²∠(h, e_1) at ``h = e_1 + sqrt(η) U``: a quadratic form in U."""
        s = sp.Symbol("s", positive=True)  # s = sqrt(η)
        shifted = self.error.subs(
            {hk: (1 if k == 0 else 0) + s * uk for k, (hk, uk) in enumerate(zip(self.h, self.fluctuations))},
            simultaneous=True,
        )
        quadratic = sp.series(shifted, s, 0, 3).removeO().coeff(s, 2)
        return sp.expand(quadratic)

    def ode_closed_form(self) -> tuple[sp.Matrix, sp.Matrix]:
        """The closed-form ODE solution and the residual of the ansatz in the ODE.

        Ansatz: ``h = w/||w||`` with the linear flow ``w' = Λ w/(1 − μ)``, solved by ``dsolve``
        coordinate by coordinate. The residual ``h' − (Λh − (hᵀΛh) h)/(1 − μ)`` is computed for a
        general curve ``w(t)`` obeying the linear flow (chain rule, then ``w' = Λ w/(1 − μ)``); it
        simplifies to zero, so every such ``h`` solves the ODE.
        """
        h0 = coordinate_symbols("h0", self.names, real=True)
        w_fun = [sp.Function(f"w_{label}")(t) for label in self.names]
        flow = {wk.diff(t): lam * wk / (1 - mu) for wk, lam in zip(w_fun, self.lam)}
        explicit = [
            sp.dsolve(sp.Eq(wk.diff(t), rate), wk, ics={wk.subs(t, 0): h0k}).rhs
            for (wk, rate), h0k in zip(zip(w_fun, flow.values()), h0)
        ]
        lam = sp.diag(*self.lam)

        def normalised(w: list) -> sp.Matrix:
            return sp.Matrix(w) / sp.sqrt(sum(wk**2 for wk in w))

        h = normalised(w_fun)
        rhs = (lam * h - (h.T * lam * h)[0] * h) / (1 - mu)
        residual = (h.diff(t).subs(flow) - rhs).applyfunc(sp.simplify)
        return normalised(explicit), residual

    def substitutions(self, problem: Problem) -> dict:
        """Numeric values of the eigenvalue symbols and of η, μ for a problem."""
        values = {lam: sp.Float(float(x)) for lam, x in zip(self.lam, problem.eigenvalues)}
        values[eta] = sp.Float(problem.eta)
        values[mu] = sp.Float(problem.mu)
        return values


def pca_model(problem: Problem) -> PCAModel:
    """The PCA model of a problem, refusing what the moment-based derivation cannot do.

    The model of a named distribution depends only on d and the distribution (the spectrum enters
    as symbols), so it is built once per process and shared, with every derivation cached on it.
    """
    problem.require_finite_fourth_moments()
    if isinstance(problem.distribution, SampledDistribution):
        samples = problem.distribution.fourth_moment_samples_for(problem.eigenvalues, problem.basis)
        return PCAModel(problem.dim, problem.distribution, (samples,))
    return _named_model(problem.dim, problem.distribution)


@lru_cache(maxsize=16)
def _named_model(dim: int, distribution: Distribution) -> PCAModel:
    return PCAModel(dim, distribution)


def require_symbolic_dim(dim: int, what: str) -> None:
    if dim > MAX_SYMBOLIC_DIM:
        raise ProblemError(
            f"{what} builds a symbolic d x d noise covariance and supports d <= {MAX_SYMBOLIC_DIM}, got d = {dim}"
        )
