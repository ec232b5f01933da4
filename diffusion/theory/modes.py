"""The derived limits evaluated for a problem: every OU mode's numbers, and the linear modes at e_1.

Each stationary point ±e_j of the ODE has an OU limit ``dU_i = a_i U_i dt + b_i dB_i`` per
coordinate; here its drift rates ``a_i`` and diffusion coefficients ``b_i`` are evaluated at the
problem's spectrum, η and μ. At the optimum e_1 the same modes, with the time scales undone, are the
linear modes of the discrete recursion (restoring rate ``a`` per unit η, noise variance ``s²``) that
the exact finite-η theory works with.

On the indexed route (:mod:`amsgd.derivations.indexed`) the formulas of mode i at ``e_j`` are
functions of ``(λ_j, λ_i)`` (for a sampled law also of its moments ``m_jj, m_ji, m_ii``, put in from
:attr:`~amsgd.derivations.derivation.Derivation.pair_moments`), lambdified once per data law and
evaluated over the spectrum as arrays (a d x d table of numbers, no symbolic work per mode); the
stationary error is the numeric sum of its indexed term over the modes. On the per-coordinate route
(:class:`~amsgd.derivations.derivation.PointLimit`) each mode's expression is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from amsgd.derivations.derivation import Derivation, PointLimit
from amsgd.derivations.indexed import IndexedPCA, instantiate, mode_formula_templates
from amsgd.derivations.recursion import eta, mu


def evaluate(expr: sp.Basic, values: dict) -> float:
    """A derived expression at the problem's numbers."""
    return float(sp.sympify(expr).subs(values))


@dataclass(frozen=True)
class ModeValues:
    """One coordinate mode ``U_i`` of the OU limit at ``e_j``, evaluated (indices 1-based)."""

    i: int
    kind: str
    drift_rate: float
    diffusion: float
    drift_rate_formula: str
    diffusion_formula: str

    @property
    def stable(self) -> bool:
        return self.drift_rate < 0

    def to_dict(self) -> dict:
        return {
            "i": self.i,
            "kind": self.kind,
            "drift_rate": self.drift_rate,
            "drift_rate_formula": self.drift_rate_formula,
            "diffusion": self.diffusion,
            "diffusion_formula": self.diffusion_formula,
            "stable": self.stable,
        }


@dataclass(frozen=True, eq=False)
class PointValues:
    """The OU limit at ±e_j, evaluated: drift rates ``a_i`` and diffusions ``b_i`` of the modes
    ``i = 1 .. d`` (arrays), and ``formulas(i)``, the texts of mode i's formulas."""

    j: int
    drift_rates: np.ndarray
    diffusions: np.ndarray
    formulas: Callable[[int], tuple[str, str]]

    @property
    def dim(self) -> int:
        return len(self.drift_rates)

    def mode(self, i: int) -> ModeValues:
        """Mode ``i`` (1-based)."""
        drift_rate_formula, diffusion_formula = self.formulas(i)
        return ModeValues(
            i, "radial" if i == self.j else "tangent", float(self.drift_rates[i - 1]), float(self.diffusions[i - 1]),
            drift_rate_formula, diffusion_formula,
        )  # fmt: skip

    @cached_property
    def modes(self) -> tuple[ModeValues, ...]:
        return tuple(self.mode(i) for i in range(1, self.dim + 1))

    @cached_property
    def unstable(self) -> int:
        """The number of modes that are not stable (drift rate >= 0)."""
        return int(np.sum(~(self.drift_rates < 0)))

    @property
    def kind(self) -> str:
        if self.unstable == 0:
            return "minimum"  # of the error; the optimum
        return "saddle" if self.unstable < self.dim - 1 else "maximum"

    @property
    def fastest(self) -> ModeValues:
        """The mode with the largest drift rate (at a saddle: the fastest escape direction)."""
        return self.mode(int(np.argmax(self.drift_rates)) + 1)

    def to_dict(self, listed: Sequence[int] | None = None) -> dict:
        """Every mode, or only the modes ``listed`` (1-based) with a note and the count of unstable modes."""
        out = {"j": self.j, "point": f"±e_{self.j}", "kind": self.kind}
        if listed is None:
            return {**out, "modes": [m.to_dict() for m in self.modes]}
        return {
            **out,
            "modes": [self.mode(i).to_dict() for i in listed],
            "modes_listed": f"{len(listed)} of {self.dim}: i in {list(listed)}; every other mode i of e_{self.j} "
            "follows the indexed formulas of sde_formulas",
            "unstable_modes": self.unstable,
            "fastest_mode": self.fastest.i,
        }


def point_values(derivation: Derivation) -> tuple[PointValues, ...]:
    """Every stationary point's OU modes at the problem's numbers."""
    if derivation.indexed is None:
        return tuple(_point(p, derivation.values) for p in derivation.sde)
    problem = derivation.problem
    f = _indexed_functions(derivation.indexed)
    j, i = np.arange(problem.dim)[:, None], np.arange(problem.dim)[None, :]
    radial = np.eye(problem.dim, dtype=bool)
    at_radial, at_tangent = _arguments(derivation, j, j), _arguments(derivation, j, i)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(radial, f["radial_rate"](*at_radial), f["tangent_rate"](*at_tangent))
        variances = np.where(radial, f["radial_variance"](*at_radial), f["tangent_variance"](*at_tangent))
    diffusions = np.sqrt(variances)
    templates = _templates(derivation.indexed)
    return tuple(
        PointValues(j, rates[j - 1], diffusions[j - 1], _instantiated(templates, j)) for j in derivation.stationary_points
    )


def _instantiated(templates: dict, j: int) -> Callable[[int], tuple[str, str]]:
    def formulas(i: int) -> tuple[str, str]:
        rate, diffusion = templates["radial" if i == j else "tangent" if i > j else "tangent_before"]
        return instantiate(rate, j, i), instantiate(diffusion, j, i)

    return formulas


@lru_cache(maxsize=8)
def _templates(indexed: IndexedPCA) -> dict:
    return mode_formula_templates(indexed)


def _arguments(derivation: Derivation, j: np.ndarray, i: np.ndarray) -> tuple:
    """The arguments ``(λ_j, λ_i, m_jj, m_ji, m_ii, η, μ)`` of :func:`_indexed_functions` for the
    0-based coordinates ``j`` and ``i`` (broadcasting arrays): a named law's formulas have no ``m``, which
    are then NaN."""
    problem = derivation.problem
    lam = np.asarray(problem.eigenvalues, dtype=float)
    m = derivation.pair_moments
    moments = (np.nan,) * 3 if m is None else (m[j, j], m[j, i], m[i, i])
    return lam[j], lam[i], *moments, problem.eta, problem.mu


@lru_cache(maxsize=8)
def _indexed_functions(indexed: IndexedPCA) -> dict:
    """The formulas of :class:`~amsgd.derivations.indexed.IndexedPCA` as NumPy functions of
    ``(λ_j, λ_i, m_jj, m_ji, m_ii, η, μ)``, broadcasting over arrays (the ``m`` appear only in a sampled
    law's formulas)."""
    j, i = (indexed.model.names.index(label) for label in ("j", "i"))
    moment = indexed.model.moment_symbol
    args = (indexed.symbol("lam", "j"), indexed.symbol("lam", "i"), moment(j, j), moment(j, i), moment(i, i), eta, mu)

    def numeric(expr: sp.Expr) -> Callable:
        fn = sp.lambdify(args, expr, "numpy")

        def evaluated(*values) -> np.ndarray:
            return np.broadcast_to(fn(*values), np.broadcast(*values).shape).astype(float)

        return evaluated

    out = {"error_term": numeric(indexed.error_term)}
    for kind, mode in indexed.modes.items():
        out[f"{kind}_rate"] = numeric(mode.drift_rate)
        out[f"{kind}_variance"] = numeric(mode.variance)
        out[f"{kind}_linear_rate"] = numeric(mode.rate)
        out[f"{kind}_noise_variance"] = numeric(mode.noise_variance)
    return out


def _point(point: PointLimit, values: dict) -> PointValues:
    rates = np.array([evaluate(m.drift_rate, values) for m in point.modes])
    diffusions = np.array([evaluate(sp.sqrt(m.variance), values) for m in point.modes])
    texts = [m.formulas() for m in point.modes]

    def formulas(i: int) -> tuple[str, str]:
        return texts[i - 1]["drift_rate_formula"], texts[i - 1]["diffusion_formula"]

    return PointValues(point.j, rates, diffusions, formulas)


def diffusion_floor(derivation: Derivation) -> float:
    """The leading-order stationary error ``E sin²`` at e_1: on the indexed route the numeric sum of the
    indexed term ``t(λ_1, λ_i)`` over ``i = 2 .. d``, else the derived expression evaluated."""
    if derivation.indexed is None:
        return evaluate(derivation.stationary_error, derivation.values)
    term = _indexed_functions(derivation.indexed)["error_term"]
    return float(np.sum(term(*_arguments(derivation, np.array(0), np.arange(1, derivation.problem.dim)))))


@dataclass(frozen=True, eq=False)
class OptimumModes:
    """The linear modes at e_1: numbers ``i`` (1-based), kinds, restoring rates ``a_i`` (per unit η,
    index 0 the radial mode) and gradient-noise variances ``s_i²``; they depend on Σ and the data
    law only, not on η, μ or the delay."""

    numbers: tuple[int, ...]
    kinds: tuple[str, ...]
    rates: np.ndarray
    noise_variances: np.ndarray

    def describe(self, index: int) -> dict:
        return {"i": self.numbers[index], "kind": self.kinds[index], "rate": float(self.rates[index])}

    @property
    def tangent(self) -> list[int]:
        """Indices of the tangent modes (those that enter the error sin²)."""
        return [k for k, kind in enumerate(self.kinds) if kind == "tangent"]

    def to_dict(self) -> dict:
        return {
            "i": list(self.numbers),
            "kind": list(self.kinds),
            "rate": self.rates.tolist(),
            "noise_variance": self.noise_variances.tolist(),
        }


def optimum_modes(derivation: Derivation) -> OptimumModes:
    """The derived linear modes at e_1 evaluated at the problem's numbers."""
    if derivation.indexed is not None:
        f = _indexed_functions(derivation.indexed)
        n = derivation.problem.dim
        first, others = np.array([0]), np.arange(1, n)
        at_radial, at_tangent = _arguments(derivation, first, first), _arguments(derivation, np.array(0), others)
        return OptimumModes(
            numbers=tuple(range(1, n + 1)),
            kinds=("radial",) + ("tangent",) * (n - 1),
            rates=np.concatenate([f["radial_linear_rate"](*at_radial), f["tangent_linear_rate"](*at_tangent)]),
            noise_variances=np.concatenate([f["radial_noise_variance"](*at_radial),
                                            f["tangent_noise_variance"](*at_tangent)]),
        )  # fmt: skip
    modes = derivation.optimum_modes
    values = derivation.values
    return OptimumModes(
        numbers=tuple(m.i for m in modes),
        kinds=tuple(m.kind for m in modes),
        rates=np.array([evaluate(m.rate, values) for m in modes]),
        noise_variances=np.array([evaluate(m.noise_variance, values) for m in modes]),
    )
