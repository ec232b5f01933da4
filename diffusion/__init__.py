"""The numeric stage: integrators of the limits (ODE, SDE/SME, exact OU, Brownian source,
convergence orders) and, in :mod:`amsgd.diffusion.theory`, the exact finite-η theory behind
``predict(problem)``. The integrators are exported here but load on first use, so the subpackages
load only what they need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from amsgd.core.lazy import lazy_exports

if TYPE_CHECKING:
    from amsgd.diffusion.brownian import BrownianIncrements
    from amsgd.diffusion.convergence import convergence_study
    from amsgd.diffusion.ode import integrate_ode
    from amsgd.diffusion.ou import sample_ou
    from amsgd.diffusion.sde import integrate_sde

__all__ = ["BrownianIncrements", "convergence_study", "integrate_ode", "integrate_sde", "sample_ou"]
__getattr__ = lazy_exports(__name__, {"BrownianIncrements": "amsgd.diffusion.brownian",
                                      "convergence_study": "amsgd.diffusion.convergence",
                                      "integrate_ode": "amsgd.diffusion.ode", "sample_ou": "amsgd.diffusion.ou",
                                      "integrate_sde": "amsgd.diffusion.sde"})  # fmt: skip
