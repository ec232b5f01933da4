"""Named validation runs: the problem, the Monte Carlo budget and the experiments.

* ``default``: the README problem (d = 4, Σ = diag(4, 3, 2, 1), Gaussian data, η = 5e-4, μ = 0.9,
  τ = 0) through every check; about half a minute on 2 cores.
* ``paper-pca``: the published streaming-PCA experiment (Liu et al. 2018, section 4): the same Σ,
  η = 5e-4 (the step size was not published), μ in {0.7, 0.8, 0.85, 0.9, 0.95}, constant τ from 0 to
  160 in steps of 5, random starts, 1024 runs of 30 000 iterations per point; plus the
  momentum–asynchrony comparison. About a minute on 2 cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.validation.budget import Budget

#: Every experiment, in report order.
EXPERIMENTS = ("ode", "phases", "rate", "stationary", "finite-eta", "stability", "sweep", "momentum", "sdde-limit")
PAPER_MUS = (0.7, 0.8, 0.85, 0.9, 0.95)
PAPER_TAUS = tuple(range(0, 161, 5))


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    problem: Problem = field(default_factory=Problem.from_spectrum)
    budget: Budget = field(default_factory=Budget)
    experiments: tuple[str, ...] = ("ode", "phases", "rate", "stationary", "finite-eta", "stability", "momentum")
    sweep_mus: tuple[float, ...] = PAPER_MUS
    sweep_taus: tuple[int, ...] = PAPER_TAUS


PRESETS: dict[str, Preset] = {
    "default": Preset(
        "default",
        "every experiment but sweep and sdde-limit on the default problem (d = 4, Sigma = diag(4,3,2,1), Gaussian, "
        "eta = 5e-4, mu = 0.9, tau = 0)",
    ),
    "paper-pca": Preset(
        "paper-pca",
        "the published streaming-PCA experiment: error against tau in 0..160 for mu in "
        "{0.7, 0.8, 0.85, 0.9, 0.95} at eta = 5e-4, and the momentum-asynchrony comparison",
        budget=Budget(sweep_replicates=1024, sweep_steps=30_000),
        experiments=("sweep", "momentum"),
    ),
}


#: Presets on models other than PCA (:mod:`amsgd.validation.paper_dnn`), run by their own driver.
MODEL_PRESETS: dict[str, str] = {
    "paper-dnn": "the paper's deep-network experiment on an MLP on digits: best momentum per number of "
    "asynchronous workers (1..32, round-robin and event-driven), fixed eta and fixed eta/(1 - mu), "
    "predicted from the Hessian before the runs; 3 to 7 minutes on 2 cores",
}


def get_preset(name: str) -> Preset:
    """The preset of the streaming-PCA validation named ``name`` (one of :data:`PRESETS`; the
    deep-network experiment, ``paper-dnn`` of :data:`MODEL_PRESETS`, runs by
    :func:`amsgd.validation.paper_dnn.run_paper_dnn`)."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):  # TypeError: not a name at all (a list)
        model = (f" ({name} runs by amsgd.validation.paper_dnn.run_paper_dnn, or amsgd validate --preset {name})"
                 if isinstance(name, str) and name in MODEL_PRESETS else "")  # fmt: skip
        raise ProblemError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}{model}") from None


def chosen_experiments(preset: Preset | None, experiments: Sequence[str] | None) -> tuple[str, ...]:
    """``experiments``, else the preset's, else every experiment but the sweep; unknown names and an
    empty list refused (a single name may be given as a string)."""
    if isinstance(experiments, str):
        experiments = (experiments,)
    if experiments is not None and not len(experiments):
        raise ProblemError(f"no experiment chosen; choose from {', '.join(EXPERIMENTS)} (or None for the default set)")
    chosen = tuple(experiments or (preset.experiments if preset else tuple(e for e in EXPERIMENTS if e != "sweep")))
    unknown = [e for e in chosen if e not in EXPERIMENTS]
    if unknown:
        raise ProblemError(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    return chosen
