"""The published sufficient delay conditions evaluated for a problem (formulas in
:mod:`amsgd.derivations.delay_conditions`), reported beside the exact stability results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amsgd.core.distributions import Rademacher
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.derivations.delay_conditions import ODE_CONDITION, SDE_CONDITION, bound, gamma, lambda1
from amsgd.derivations.recursion import eta, mu


@dataclass(frozen=True)
class DelayConditions:
    gamma: float
    sample_bound: float | None  # C_d, None when ||X|| is unbounded
    ode_tau: float
    sde_tau: float | None

    def to_dict(self) -> dict:
        return {
            "gamma": self.gamma,
            "sample_bound": self.sample_bound,
            "ode_tau_bound": self.ode_tau,
            "ode_formula": str(ODE_CONDITION),
            "sde_tau_bound": self.sde_tau,
            "sde_formula": str(SDE_CONDITION),
            "note": "sufficient conditions up to unspecified constants, quoted from the paper",
        }


def sample_bound(problem: Problem) -> float | None:
    """``C_d = sup ||X||``: ``sqrt(tr Σ)`` for Rademacher-type data, unbounded otherwise."""
    if isinstance(problem.distribution, Rademacher):
        return float(np.sqrt(problem.eigenvalues.sum()))
    return None


def delay_conditions(problem: Problem, gamma_value: float = 0.25) -> DelayConditions:
    """Both conditions at the problem's λ_1, η and μ (the SDE one only for bounded samples)."""
    if not 0 < gamma_value <= 0.5:
        raise ProblemError(f"gamma must satisfy 0 < gamma <= 1/2 (valid for both conditions), got {gamma_value:g}")
    values = _values(problem, gamma_value, problem.mu)
    c_d = sample_bound(problem)
    sde = None if c_d is None else float(SDE_CONDITION.subs(values).subs(bound, c_d))
    return DelayConditions(gamma_value, c_d, ode_bound(problem, gamma_value, problem.mu), sde)


def ode_bound(problem: Problem, gamma_value: float, mu_value: float) -> float:
    """The published ODE delay condition evaluated at momentum ``mu_value``."""
    return float(ODE_CONDITION.subs(_values(problem, gamma_value, mu_value)))


def _values(problem: Problem, gamma_value: float, mu_value: float) -> dict:
    return {gamma: gamma_value, lambda1: float(problem.eigenvalues[0]), eta: problem.eta, mu: mu_value}
