"""The published sufficient delay conditions (Liu et al., NeurIPS 2018), quoted for comparison.

These are the paper's hypotheses, not results of this toolkit: its diffusion limits hold for delays

* ODE (law of large numbers): ``τ_k ≲ (1 − μ)² / (λ_1 η^{1−γ})``, γ in (0, 1];
* SDE (central limit): ``τ_k ≲ (1 − μ)² / ((λ_1 + C_d) η^{1/2−γ})``, γ in (0, 1/2],

where ``C_d`` bounds ``||X||`` and the constants hidden in ``≲`` are unspecified. The numeric stage
evaluates them (:mod:`amsgd.diffusion.theory.conditions`) beside the exact stability results.
"""

from __future__ import annotations

import sympy as sp

from .recursion import eta, mu

gamma, lambda1, bound = sp.symbols("gamma lambda_1 C_d", positive=True)

ODE_CONDITION = (1 - mu) ** 2 / (lambda1 * eta ** (1 - gamma))
SDE_CONDITION = (1 - mu) ** 2 / ((lambda1 + bound) * eta ** (sp.Rational(1, 2) - gamma))
