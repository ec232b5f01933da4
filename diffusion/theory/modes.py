"""The derived limits evaluated for a problem: every OU mode's numbers, and the linear modes at e_1.

Each stationary point ±e_j of the ODE has an OU limit ``dU_i = a_i U_i dt + b_i dB_i`` per
coordinate (:class:`amsgd.derivations.derivation.PointLimit`); here its drift rates ``a_i`` and
diffusion coefficients ``b_i`` are evaluated at the problem's spectrum, η and μ. At the optimum
e_1 the same modes, with the time scales undone, are the linear modes of the discrete recursion
(restoring rate ``a`` per unit η, noise variance ``s²``) that the exact finite-η theory works with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from amsgd.derivations.derivation import Derivation, ModeLimit, PointLimit


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


@dataclass(frozen=True)
class PointValues:
    """The OU limit at ±e_j, evaluated."""

    j: int
    modes: tuple[ModeValues, ...]

    @property
    def kind(self) -> str:
        unstable = sum(not m.stable for m in self.modes)
        if unstable == 0:
            return "minimum"  # of the error; the optimum
        return "saddle" if unstable < len(self.modes) - 1 else "maximum"

    @property
    def fastest(self) -> ModeValues:
        """The mode with the largest drift rate (at a saddle: the fastest escape direction)."""
        return max(self.modes, key=lambda m: m.drift_rate)

    def to_dict(self) -> dict:
        return {"j": self.j, "point": f"±e_{self.j}", "kind": self.kind, "modes": [m.to_dict() for m in self.modes]}


def point_values(derivation: Derivation) -> tuple[PointValues, ...]:
    """Every stationary point's OU modes at the problem's numbers."""
    return tuple(_point(p, derivation.values) for p in derivation.sde)


def _point(point: PointLimit, values: dict) -> PointValues:
    return PointValues(point.j, tuple(_mode(m, values) for m in point.modes))


def _mode(mode: ModeLimit, values: dict) -> ModeValues:
    formulas = mode.formulas()
    return ModeValues(
        mode.i, mode.kind, evaluate(mode.drift_rate, values), evaluate(sp.sqrt(mode.variance), values),
        formulas["drift_rate_formula"], formulas["diffusion_formula"],
    )  # fmt: skip


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
    modes = derivation.optimum_modes
    values = derivation.values
    return OptimumModes(
        numbers=tuple(m.i for m in modes),
        kinds=tuple(m.kind for m in modes),
        rates=np.array([evaluate(m.rate, values) for m in modes]),
        noise_variances=np.array([evaluate(m.noise_variance, values) for m in modes]),
    )
