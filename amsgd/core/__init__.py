"""The ground layer: what a problem is, validated once at the boundary.

The :class:`Problem` (Σ, the data distribution, η, μ, the delay model), the data distributions'
numeric side, the delay models, interval estimates, the error type and the one seed normaliser.
Nothing here imports SymPy, numba, JAX, Dask, xarray or matplotlib, so the command line can build
and check a problem before any heavy library loads.
"""

from amsgd.core.delays import DelayModel, parse_delay
from amsgd.core.distributions import (
    Distribution,
    Gaussian,
    Rademacher,
    SampledDistribution,
    StudentT,
    parse_distribution,
)
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem

__all__ = [
    "DelayModel",
    "Distribution",
    "Gaussian",
    "Problem",
    "ProblemError",
    "Rademacher",
    "SampledDistribution",
    "StudentT",
    "parse_delay",
    "parse_distribution",
]
