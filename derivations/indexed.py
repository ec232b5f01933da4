"""The streaming-PCA derivation in indexed form: every per-mode formula derived once, for any d.

The PCA model has the same structure in every dimension. In eigen-coordinates the mean map needs the
second moments ``E[Y Yᵀ] = Λ`` and the noise the fourth moments ``E[Y_a Y_b Y_c Y_e]``; for a named
data law (:mod:`.distributions`) a fourth moment depends only on which of its four indices are equal
and on the eigenvalues of those indices. Any entry of the mean map, of its Jacobian, of the noise
covariance ``C(h)`` or of ``S(h) = Cov[Y Yᵀ h]`` is a polynomial in ``h`` whose monomials involve at
most four coordinates, so a model of four coordinates with *generic* eigenvalue symbols,
``(j, i, k, l)`` with ``λ_j, λ_i, λ_k, λ_l``, has every such entry of a d-dimensional model, the
symbols renamed. This module derives the model once in that representative form
(:class:`~.pca.PCAModel` with ``labels = ("j", "i", "k", "l")``) and reads off:

* **coordinate functions with a sum over the modes.** A component such as the mean map
  ``g_i(h)`` or ``S_ii(h)`` splits into the part in its own coordinates and one term per other
  coordinate ``c``; the terms of the spectators ``j, k, l`` are checked to be one function relabelled
  and no monomial to couple two spectators. Then ``f = base + Σ_{c=1}^{d} term(c)`` for every d
  (:func:`split_over_modes`, :class:`ModeSum`), e.g. ``g_i = λ_i h_i − h_i Σ_k λ_k h_k²``;
* **the OU limit at a stationary point.** At ``e_j`` (coordinate j of the representative model) the
  drift ``A`` and the noise ``B Bᵀ`` are derived by the engine (:func:`~.limits.ou_limit`); they are
  checked diagonal, the entries of ``i`` and ``k`` checked to be one formula relabelled, so mode i
  at ``e_j`` has the drift rate ``a(λ_j, λ_i)`` and noise ``b²(λ_j, λ_i)`` (tangent) and the radial
  mode ``a(λ_j)``; the pair entries ``A_ik`` and ``(B Bᵀ)_ik`` (``i ≠ k``) are zero;
* **the stationary error** at ``e_1``: the quadratic form of sin² (one weight per tangent mode,
  no cross terms) times the OU variance of each mode, a term ``t(λ_1, λ_i)`` summed over ``i ≥ 2``;
* **the stationary points** ``±e_c``, found by solving ``g(h) = 0`` in the representative model;
* **the ODE's closed form** for component i, with the sums ``W = Σ_k w_k²`` and ``V = Σ_k λ_k w_k²``
  kept as functions of t, so the residual is zero for every d.

The numbers for a spectrum are these formulas evaluated over arrays
(:mod:`amsgd.diffusion.theory.modes`); sums over all modes are numeric sums of the indexed terms.
A sampled law's fourth moments are estimates, not formulas in the eigenvalues. It is derived here as a
law symmetric under sign changes of each eigen-coordinate (:class:`~.distributions.SignSymmetric`; its
draws are checked for the part of the symmetry the limits at the stationary points use), whose
fourth moments are the symbols ``m_ab = E[Y_a² Y_b²]`` (indexed ``m[a, b]``); the numeric stage
puts in the sampled values. The per-coordinate derivation (:class:`~.derivation.Derivation`, the
d-dimensional model with every sampled moment, ``d <= MAX_SYMBOLIC_DIM``) is the check of both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import sympy as sp

from amsgd.core.distributions import Distribution, SampledDistribution
from amsgd.core.errors import ProblemError

from .display import as_text
from .distributions import SignSymmetric
from .limits import OULimit, ou_limit
from .pca import PCAModel
from .recursion import derive_time_scale, eta, t
from .stored import derived_once_per_law

#: The coordinates of the representative model: the stationary direction j, a mode i and two more.
LABELS = ("j", "i", "k", "l")
#: Up to this dimension ``amsgd derive`` lists every coordinate (drift components, every mode of every
#: stationary point); above it its lists stay linear in d and the indexed formulas give the rest.
FULL_LISTING_DIM = 20
#: The symbolic SME (a d x d matrix S(h) of SymPy expressions) is built up to this dimension.
MAX_SME_DIM = 200

#: The dimension and the indices of the indexed formulas.
dim = sp.Symbol("d", integer=True, positive=True)
INDEX = {label: sp.Symbol(label, integer=True, positive=True) for label in LABELS}
LAMBDA = sp.IndexedBase("lambda", positive=True)
H = sp.IndexedBase("h", real=True)
MOMENT = sp.IndexedBase("m", positive=True)
NOISE = sp.IndexedBase("Y", real=True)
_ASSUMPTIONS = {"lambda": {"positive": True}, "h": {"real": True}, "Y": {"real": True}, "h0": {"real": True},
               "m": {"positive": True}}  # fmt: skip


def plain(expr: sp.Basic) -> sp.Basic:
    """``expr`` with every indexed symbol ``x[n]`` written as the plain symbol ``x_n`` (``m[a, b]`` as
    ``m_a_b``), for text."""
    indexed = {e for e in sp.preorder_traversal(expr) if isinstance(e, sp.Indexed)}
    return expr.xreplace({
        e: sp.Symbol("_".join(map(str, (e.base.label, *e.indices))), **_ASSUMPTIONS.get(str(e.base.label), {}))
        for e in indexed
    })  # fmt: skip


@dataclass(frozen=True)
class ModeSum:
    """A coordinate function ``f = base + Σ_{c=1}^{d} term(c)`` of the d-dimensional model.

    ``base`` is in the symbols of the function's own coordinates (``λ_i, h_i`` and, for a pair,
    ``λ_k, h_k``); ``term`` also in those of the summed coordinate ``c`` (label ``summed``).
    """

    base: sp.Expr
    term: sp.Expr
    summed: str
    own: tuple[str, ...]

    def parts(self, model: PCAModel, scale: sp.Expr = sp.S.One) -> tuple[sp.Expr, sp.Dummy, sp.Expr]:
        """``(outer, q, inner)`` with ``scale · f = outer`` at ``q = Σ_c inner(c)``: the term's factor in
        the own coordinates taken out of the sum, the rest factored (``−h_i (q − λ_i)`` for ``g_i``)."""
        return _parts(self, model, scale)

    def indexed(self, model: PCAModel, scale: sp.Expr = sp.S.One) -> sp.Expr:
        """``scale`` times the function, with indexed symbols and the sum over all modes ``Σ_{c=1}^{d}``."""
        outer, q, inner = self.parts(model, scale)
        total = sp.Sum(to_indexed(inner, model), (INDEX[self.summed], 1, dim))
        return to_indexed(outer, model).xreplace({q: total})

    def explicit(self, model: PCAModel, own: dict, lam: Sequence, h: Sequence, scale: sp.Expr = sp.S.One) -> sp.Expr:
        """``scale`` times the function of the coordinates ``own`` (label → (λ, h), values or symbols),
        its sum written out over the coordinates ``zip(lam, h)``."""
        outer, q, inner = self.parts(model, scale)
        if (outer.free_symbols | inner.free_symbols) & set(model.moment_symbols):
            raise ProblemError("a formula in the symbols m_ab of a sampled law is written out only in indexed form")
        rename = {}
        for label, (lam_value, h_value) in own.items():
            rename[_symbol(model, "lam", label)] = lam_value
            rename[_symbol(model, "h", label)] = h_value
        c_lam, c_h = _symbol(model, "lam", self.summed), _symbol(model, "h", self.summed)
        if inner.free_symbols & set(rename):
            total = sp.Add(*(inner.xreplace({**rename, c_lam: lc, c_h: hc}) for lc, hc in zip(lam, h)))
        else:  # the same sum for every own coordinate
            total = _sum_over(inner, c_lam, c_h, tuple(lam), tuple(h))
        return outer.xreplace(rename).xreplace({q: total})


@lru_cache(maxsize=64)
def _parts(f: ModeSum, model: PCAModel, scale: sp.Expr) -> tuple[sp.Expr, sp.Dummy, sp.Expr]:
    q = sp.Dummy("q")
    if f.term == 0:
        return sp.factor(scale * f.base), q, sp.S.Zero
    summed = model.symbols_of(model.names.index(f.summed))
    coefficient, inner = f.term.as_independent(*summed, as_Add=False)
    return sp.factor(scale * (f.base + coefficient * q)), q, inner


@lru_cache(maxsize=16)
def _sum_over(inner: sp.Expr, c_lam: sp.Symbol, c_h: sp.Symbol, lam: tuple, h: tuple) -> sp.Expr:
    return sp.Add(*(inner.xreplace({c_lam: lc, c_h: hc}) for lc, hc in zip(lam, h)))


def _symbol(model: PCAModel, kind: str, label: str) -> sp.Symbol:
    return getattr(model, kind)[model.names.index(label)]


def to_indexed(expr: sp.Basic, model: PCAModel) -> sp.Basic:
    """The representative model's symbols ``λ_c, h_c, Y_c`` (and ``m_ab``) as indexed symbols ``λ[c], h[c],
    Y[c]`` (``m[a, b]``)."""
    mapping = {}
    for label, lam, h, y in zip(model.names, model.lam, model.h, model.y):
        mapping.update({lam: LAMBDA[INDEX[label]], h: H[INDEX[label]], y: NOISE[INDEX[label]]})
    for m, (a, b) in model.moment_symbols.items():
        mapping[m] = MOMENT[INDEX[model.names[a]], INDEX[model.names[b]]]
    return expr.xreplace(mapping)


def ordered(expr: sp.Expr, model: PCAModel, rename: dict[str, str] | None = None) -> tuple[sp.Expr, dict]:
    """``expr`` for display: its eigenvalue symbols replaced by stand-ins that sort as j, i, k, l (so that
    SymPy writes ``λ_j − λ_i`` rather than ``−λ_i + λ_j``), factored; returns it with the LaTeX names of
    the stand-ins. ``rename`` (label → name) writes a coordinate under another name: ``{"j": "1"}`` writes
    ``λ_j`` and ``m_ji`` as ``λ_1`` and ``m_{1,i}``."""
    rename = rename or {}
    stand_in = {
        lam: sp.Symbol(f"lambda_{rename[label]}" if label in rename else f"lambda_{rank}{label}", positive=True)
        for rank, (label, lam) in enumerate(zip(model.names, model.lam))
    }
    names = {stand_in[lam]: f"\\lambda_{{{label}}}" for label, lam in zip(model.names, model.lam) if label not in rename}
    for m, pair in model.moment_symbols.items():
        a, b = (rename.get(model.names[c], model.names[c]) for c in pair)
        stand_in[m] = sp.Symbol(f"m_{a}{b}", positive=True)
        names[stand_in[m]] = f"m_{{{a},{b}}}"  # as the indexed m[a, b] prints
    return sp.factor(expr.xreplace(stand_in)), names


def split_over_modes(expr: sp.Expr, model: PCAModel, own: tuple[int, ...], summed: int) -> ModeSum:
    """Split a polynomial in ``h`` of the representative model into its own part and one term per
    other coordinate (module docstring); ``summed`` is the coordinate whose term stands for all."""
    others = [c for c in range(model.dim) if c not in own]
    poly = sp.Poly(sp.expand(expr), *model.h)
    own_part: list[sp.Expr] = []
    parts: dict[int, list[sp.Expr]] = {c: [] for c in others}
    for monomial, coefficient in poly.terms():
        present = [c for c in others if monomial[c]]
        term = coefficient * sp.Mul(*(hc**e for hc, e in zip(model.h, monomial)))
        if len(present) > 1:
            raise ArithmeticError(f"{expr} couples two other coordinates ({term}): it is no sum over single modes")
        (parts[present[0]] if present else own_part).append(term)
    own_expr = sp.Add(*own_part)
    if own_expr.free_symbols & {s for c in others for s in model.symbols_of(c)}:
        raise ArithmeticError(f"{expr}: its own part depends on the eigenvalues or moments of other coordinates")
    term = sp.Add(*parts[summed])
    for c in others:
        swap = model.relabelling({summed: c, c: summed})
        if sp.expand(sp.Add(*parts[c]) - term.xreplace(swap)) != 0:
            raise ArithmeticError(f"{expr}: the terms of the other coordinates are not one formula relabelled")
    at_own = [term.xreplace(model.relabelling({summed: o})) for o in own]
    base = sp.factor(sp.expand(own_expr - sp.Add(*at_own)))
    return ModeSum(base, sp.factor(term), model.names[summed], tuple(model.names[o] for o in own))


@dataclass(frozen=True)
class GenericMode:
    """Mode i of the OU limit at ``e_j`` in the generic symbols: ``dU_i = a U_i dt + b dB``."""

    kind: str  # "tangent" (in λ_j, λ_i) or "radial" (i = j, in λ_j)
    drift_rate: sp.Expr  # a, per unit of diffusion time
    variance: sp.Expr  # b² = (B Bᵀ)_ii
    diffusion: sp.Expr  # b (factored)
    rate: sp.Expr  # the restoring rate per unit η before the time scaling, −a/(drift scale)
    noise_variance: sp.Expr  # the gradient-noise variance C_ii, b²/gain²
    stationary_variance: sp.Expr  # the OU variance −b²/(2a) (at a stable point)


@dataclass(frozen=True, eq=False)
class IndexedPCA:
    """The PCA derivation of a data law in indexed form (a sampled law's as
    :class:`~.distributions.SignSymmetric`, module docstring); every part is derived on first use."""

    distribution: Distribution

    @cached_property
    def model(self) -> PCAModel:
        """The representative model: coordinates ``(j, i, k, l)``, generic eigenvalues."""
        return PCAModel(len(LABELS), self.distribution, labels=LABELS)

    def symbol(self, kind: str, label: str) -> sp.Symbol:
        """``symbol("lam", "i")`` is λ_i of the representative model (kinds: lam, h, y)."""
        return _symbol(self.model, kind, label)

    @cached_property
    def update(self) -> sp.Expr:
        """``G_i(h, Y) = (Y_i − h_i Σ_k Y_k h_k) Σ_k Y_k h_k``, checked against the representative update."""
        y, h = NOISE, H
        i, k = INDEX["i"], INDEX["k"]
        inner = sp.Sum(y[k] * h[k], (k, 1, dim))
        indexed = (y[i] - h[i] * inner) * inner
        m = self.model
        explicit = sp.Add(*(yc * hc for yc, hc in zip(m.y, m.h)))
        component = (self.symbol("y", "i") - self.symbol("h", "i") * explicit) * explicit
        if sp.expand(m.recursion.update[m.names.index("i")] - component) != 0:
            raise ArithmeticError("the indexed update differs from the representative model's")
        return indexed

    @cached_property
    def drift_scale(self) -> sp.Expr:
        return derive_time_scale().drift_scale

    @cached_property
    def mean_map(self) -> ModeSum:
        """``g_i(h) = base + Σ_k term(k)``: the mean map's component i."""
        return indexed_parts(self.distribution).mean_map

    def derive_mean_map(self) -> ModeSum:
        """:attr:`mean_map`, derived and checked."""
        m = self.model
        return split_over_modes(m.recursion.mean_map[m.names.index("i")], m, (1,), 2)

    @cached_property
    def stationary_points(self) -> tuple[str, ...]:
        """The labels c of the points ``±e_c`` among the solutions of ``g(h) = 0``: every coordinate."""
        return indexed_parts(self.distribution).stationary_points

    def derive_stationary_points(self) -> tuple[str, ...]:
        """:attr:`stationary_points`, derived and checked."""
        found = set()
        for solution in self.model.recursion.stationary_points():
            h = [solution.get(hc, hc) for hc in self.model.h]
            if all(v.is_number for v in h) and sum(v**2 for v in h) == 1 and max(h) == 1:
                found.add(next(label for label, v in zip(self.model.names, h) if v != 0))
        if found != set(self.model.names):
            raise ArithmeticError(f"the unit vectors {sorted(found)} solve g(h) = 0, expected every coordinate")
        return tuple(label for label in self.model.names if label in found)

    @cached_property
    def ou(self) -> OULimit:
        """The OU limit at ``e_j`` of the representative model."""
        return ou_limit(self.model.recursion, self.model.unit_vector(0))

    @cached_property
    def modes(self) -> dict[str, GenericMode]:
        """``"radial"`` (mode j at ``e_j``) and ``"tangent"`` (mode i ≠ j at ``e_j``), checked to be
        the only entries of A and B Bᵀ and one formula for every tangent mode (stored between
        processes: :func:`indexed_parts`)."""
        return indexed_parts(self.distribution).modes

    def derive_modes(self) -> dict[str, GenericMode]:
        """:attr:`modes`, derived."""
        a, bb = self.ou.drift_matrix, self.ou.noise
        if not (a.is_diagonal() and bb.is_diagonal()):
            raise ProblemError(
                f"distribution {self.distribution.spec}: its fourth moments couple the eigen-coordinates, and the "
                "limits here are mode by mode; use a law that is symmetric under sign changes of each eigen-coordinate"
            )
        swap = self.model.relabelling({1: 2})  # i -> k
        for entry in (a, bb):
            if sp.simplify(entry[2, 2] - entry[1, 1].xreplace(swap)) != 0:
                raise ArithmeticError("the tangent modes of the representative model are not one formula")
        timing = derive_time_scale()
        out = {}
        for kind, c in (("radial", 0), ("tangent", 1)):
            variance = bb[c, c]
            stationary = OULimit({}, sp.Matrix([[a[c, c]]]), sp.Matrix([[variance]])).stationary_covariance()[0, 0]
            out[kind] = GenericMode(
                kind, a[c, c], variance, sp.factor(sp.sqrt(variance)),
                sp.simplify(-a[c, c] / timing.drift_scale), sp.simplify(variance / timing.noise_gain**2), stationary,
            )  # fmt: skip
        return out

    @cached_property
    def pair(self) -> tuple[sp.Expr, sp.Expr]:
        """``(A_ik, (B Bᵀ)_ik)`` for two tangent modes ``i ≠ k`` at ``e_j``: both zero (the modes decouple)."""
        return indexed_parts(self.distribution).pair

    @cached_property
    def error_weight(self) -> sp.Expr:
        """The weight w of ``U_i²`` in the leading term of sin² at ``e_1``: ``sin² ≈ η Σ_{i≠1} w U_i²``
        (checked: no radial term, no cross terms, one weight for every tangent mode)."""
        m = self.model
        u = m.fluctuations
        quadratic = sp.Poly(m.error_expansion, *u)
        weights = {}
        for monomial, coefficient in quadratic.terms():
            powers = [(c, e) for c, e in enumerate(monomial) if e]
            if len(powers) != 1 or powers[0][1] != 2 or powers[0][0] == 0:
                raise ArithmeticError(f"the error expansion {m.error_expansion} is not a sum of tangent squares")
            weights[powers[0][0]] = coefficient
        if len(weights) != m.dim - 1 or len(set(weights.values())) != 1:
            raise ArithmeticError(f"the error expansion {m.error_expansion} has not one weight per tangent mode")
        return weights[1]

    @cached_property
    def error_term(self) -> sp.Expr:
        """The stationary error of tangent mode i at ``e_1`` (λ_j standing for λ_1): ``η w P_ii``."""
        return indexed_parts(self.distribution).error_term

    def derive_error_term(self, modes: dict[str, GenericMode]) -> sp.Expr:
        """:attr:`error_term` from the derived ``modes``."""
        return eta * self.error_weight * modes["tangent"].stationary_variance

    def stationary_error(self) -> sp.Expr:
        """``E sin² = Σ_{i=2}^{d} η w P_ii`` at ``e_1``, indexed."""
        i = INDEX["i"]
        term = to_indexed(self.error_term, self.model).xreplace({INDEX["j"]: sp.Integer(1)})
        return sp.Sum(sp.factor(term), (i, 2, dim))

    @cached_property
    def noise_covariance(self) -> tuple[ModeSum, ModeSum]:
        """``S_ii(h)`` and ``S_ik(h)`` (``i ≠ k``) of ``S(h) = Cov[Y Yᵀ h]``, each a sum over the modes."""
        m = self.model
        _, s = m.projected_noise
        return split_over_modes(s[1, 1], m, (1,), 2), split_over_modes(s[1, 2], m, (1, 2), 3)

    @cached_property
    def ode_closed_form(self) -> tuple[sp.Expr, sp.Expr]:
        """``h_i(t) = w_i(t)/sqrt(Σ_k w_k(t)²)`` with ``w_k = h0_k exp(λ_k t/(1 − μ))``, and its residual in
        the ODE (zero).

        ``w_i`` solves the linear flow ``w_i' = λ_i w_i/(1 − μ)`` (``dsolve``). With ``W = Σ_k w_k²`` and
        ``V = Σ_k λ_k w_k²`` as functions of t, the derivative of one summand of W is a multiple of the
        same summand of V, so ``W' = 2V/(1 − μ)``; ``h = w/sqrt(W)`` has ``hᵀΛh = V/W``, and the residual
        ``h_i' − (λ_i h_i − (V/W) h_i)/(1 − μ)`` simplifies to zero for every d.
        """
        lam_i, h0_i = self.symbol("lam", "i"), sp.Symbol("h0_i", real=True)
        lam_k = self.symbol("lam", "k")
        w_i, w_k = sp.Function("w_i")(t), sp.Function("w_k")(t)
        big_w, big_v = sp.Function("W")(t), sp.Function("V")(t)
        flow = self.drift_scale * lam_i * w_i
        solved = sp.dsolve(sp.Eq(w_i.diff(t), flow), w_i, ics={w_i.subs(t, 0): h0_i}).rhs
        summand_rate = sp.simplify(sp.diff(w_k**2, t).subs(w_k.diff(t), self.drift_scale * lam_k * w_k) / (lam_k * w_k**2))
        if summand_rate.has(lam_k) or summand_rate.has(w_k):
            raise ArithmeticError("the derivative of the norm is not a multiple of the sum V")
        h_i = w_i / sp.sqrt(big_w)
        velocity = h_i.diff(t).subs({w_i.diff(t): flow, big_w.diff(t): summand_rate * big_v})
        residual = sp.simplify(velocity - self.drift_scale * (lam_i * h_i - big_v / big_w * h_i))
        k = INDEX["k"]
        w_indexed = solved.xreplace({lam_i: LAMBDA[INDEX["i"]], h0_i: sp.IndexedBase("h0", real=True)[INDEX["i"]]})
        norm = sp.Sum(w_indexed.xreplace({INDEX["i"]: k}) ** 2, (k, 1, dim))
        return w_indexed / sp.sqrt(norm), residual


@dataclass(frozen=True)
class IndexedParts:
    """What the predictions read of :class:`IndexedPCA`, derived together and stored between
    processes for a named law (:func:`~.stored.derived_once_per_law`)."""

    modes: dict[str, GenericMode]
    error_term: sp.Expr
    pair: tuple[sp.Expr, sp.Expr]
    stationary_points: tuple[str, ...]
    mean_map: ModeSum


@derived_once_per_law
def indexed_parts(distribution: Distribution) -> IndexedParts:
    """:attr:`IndexedPCA.modes`, ``error_term``, ``pair``, ``stationary_points`` and ``mean_map`` of
    ``distribution``."""
    indexed = IndexedPCA(distribution)
    modes = indexed.derive_modes()
    pair = (indexed.ou.drift_matrix[1, 2], indexed.ou.noise[1, 2])
    return IndexedParts(modes, indexed.derive_error_term(modes), pair, indexed.derive_stationary_points(),
                        indexed.derive_mean_map())  # fmt: skip


def indexed_pca(distribution: Distribution) -> IndexedPCA:
    """The indexed derivation of a data law, shared by every problem with that law; a sampled law's is
    that of :class:`~.distributions.SignSymmetric` (module docstring), one for every sampler."""
    return _indexed_pca(SignSymmetric() if isinstance(distribution, SampledDistribution) else distribution)


@lru_cache(maxsize=8)
def _indexed_pca(distribution: Distribution) -> IndexedPCA:
    return IndexedPCA(distribution)


def mode_formula_templates(indexed: IndexedPCA) -> dict[str, tuple[str, str]]:
    """``{"radial"|"tangent"|"tangent_before": (drift-rate text, diffusion text)}`` written in ``lambda_j``
    and ``lambda_i``; :func:`instantiate` puts in the numbers of a point j and a mode i. ``tangent`` is
    printed in the term order of a mode after its point (i > j), ``tangent_before`` of one before it."""
    lam_j, lam_i = indexed.symbol("lam", "j"), indexed.symbol("lam", "i")

    def text(expr: sp.Expr, i_first: bool) -> str:
        # Stand-ins named for their role (i or j) whose names sort in the order of the indices.
        order = ("i", "j") if i_first else ("j", "i")
        stand_in = {
            {"i": lam_i, "j": lam_j}[role]: sp.Symbol(f"lambda_{rank}{role}", positive=True)
            for rank, role in enumerate(order)
        }
        printed = as_text(sp.factor(expr.xreplace(stand_in)))
        printed = _MOMENT_TEXT.sub(r"m_\1_\2", printed)  # m_ji as m_j_i, as the formulas with numbers write it
        return re.sub(r"\blambda_[01]([ij])\b", r"lambda_\1", printed)

    radial, tangent = indexed.modes["radial"], indexed.modes["tangent"]
    return {
        "radial": (text(radial.drift_rate, False), text(radial.diffusion, False)),
        "tangent": (text(tangent.drift_rate, False), text(tangent.diffusion, False)),
        "tangent_before": (text(tangent.drift_rate, True), text(tangent.diffusion, True)),
    }


_GENERIC = re.compile(r"\b(lambda|h)_([ij])\b")
_MOMENT_TEXT = re.compile(r"\bm_([ijkl])([ijkl])\b")
_GENERIC_MOMENT = re.compile(r"\bm_([ij])_([ij])\b")


def instantiate(template: str, j: int, i: int) -> str:
    """A formula text in the generic ``lambda_j, lambda_i`` (and ``h_j, h_i``, ``m_j_i``) with the indices
    j and i (``m_j_i`` as ``m_a_b``, ``a <= b``: the moment is symmetric)."""
    index = {"j": j, "i": i}
    text = _GENERIC.sub(lambda found: f"{found.group(1)}_{index[found.group(2)]}", template)
    return _GENERIC_MOMENT.sub(lambda found: "m_{}_{}".format(*sorted(index[g] for g in found.groups())), text)


__all__ = [
    "FULL_LISTING_DIM",
    "INDEX",
    "LABELS",
    "LAMBDA",
    "MAX_SME_DIM",
    "MOMENT",
    "GenericMode",
    "IndexedPCA",
    "ModeSum",
    "dim",
    "indexed_pca",
    "instantiate",
    "mode_formula_templates",
    "ordered",
    "plain",
    "split_over_modes",
    "to_indexed",
]
