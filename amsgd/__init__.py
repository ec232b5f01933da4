"""amsgd: diffusion-limit analysis of asynchronous momentum SGD on streaming PCA."""

from amsgd.distributions import (
    Gaussian,
    Rademacher,
    SampledDistribution,
    StudentT,
    parse_distribution,
)
from amsgd.errors import ProblemError
from amsgd.problem import Problem
from amsgd.simulate.delays import parse_delay

__all__ = [
    "Gaussian",
    "Problem",
    "ProblemError",
    "Rademacher",
    "SampledDistribution",
    "StudentT",
    "parse_delay",
    "parse_distribution",
]
__version__ = "0.1.0"
