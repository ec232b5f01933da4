"""amsgd: diffusion-limit analysis of asynchronous momentum SGD.

The ground types are imported here; the stages load on first use, so ``import amsgd`` (and the
command line's ``--help``) stays light:

* :func:`amsgd.predict`: the numbers of the exact finite-η, finite-τ theory (``amsgd.diffusion.theory``);
* :func:`amsgd.derivations.derive`: the symbolic derivation;
* :func:`amsgd.simulate.simulate`: Monte Carlo runs of the algorithm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amsgd.core import (
    Gaussian,
    Problem,
    ProblemError,
    Rademacher,
    SampledDistribution,
    StudentT,
    parse_delay,
    parse_distribution,
)
from amsgd.core.lazy import lazy_exports

if TYPE_CHECKING:
    from amsgd.diffusion.theory import Predictions, predict

__all__ = [
    "Gaussian",
    "Predictions",
    "Problem",
    "ProblemError",
    "Rademacher",
    "SampledDistribution",
    "StudentT",
    "parse_delay",
    "parse_distribution",
    "predict",
]
__version__ = "0.1.0"

__getattr__ = lazy_exports(__name__, {"predict": "amsgd.diffusion.theory", "Predictions": "amsgd.diffusion.theory"})
