"""The published sufficient delay conditions (Liu et al., NeurIPS 2018), quoted for comparison.

These are the paper's hypotheses, not results of this toolkit: its diffusion limits hold for delays

* ODE (law of large numbers): ``τ_k ≲ (1 − μ)² / (λ_1 η^{1−γ})``, γ in (0, 1];
* SDE (central limit): ``τ_k ≲ (1 − μ)² / ((λ_1 + C_d) η^{1/2−γ})``, γ in (0, 1/2],

where ``C_d`` bounds ``||X||`` and the constants hidden in ``≲`` are unspecified. They are reported
beside the toolkit's exact stability results so that the two can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from amsgd.distributions import Rademacher
from amsgd.errors import ProblemError
from amsgd.problem import Problem

from .recursion import eta, mu

gamma, lambda1, bound = sp.symbols("gamma lambda_1 C_d", positive=True)

ODE_CONDITION = (1 - mu) ** 2 / (lambda1 * eta ** (1 - gamma))
SDE_CONDITION = (1 - mu) ** 2 / ((lambda1 + bound) * eta ** (sp.Rational(1, 2) - gamma))


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
