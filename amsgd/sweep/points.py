"""What a grid point of a sweep is and computes: streaming PCA, or any other model.

A sweep has one code path (the grid, the tasks, the store, the Dataset); what depends on the
problem sits behind :class:`PointKind`, implemented once for streaming PCA (:class:`PcaPoints`)
and once for the models of :mod:`amsgd.core.models` (:class:`ModelPoints`):

* in the client, :meth:`~PointKind.resolve` checks the simulation options, :meth:`~PointKind.problem_at`
  builds a grid point's problem from the base problem, :meth:`~PointKind.manifest` gives the entries
  that identify the problem (a resumed sweep must present the same), and :meth:`~PointKind.theory`
  what the predictions need, derived once per sweep (per distribution for PCA) and shipped with the
  tasks: for PCA the linear modes at e_1, for a model the Hessian's modes and noise at its minimum x*;
* on a worker, :func:`compute_point` runs the point's :class:`PointTask`: it simulates the point
  and evaluates the predictions there, returning a JSON-ready record with the keys ``fields``;
* for the Dataset, ``estimates`` (each with its 95% interval), ``curve`` (the mean curve over the
  recorded iterations) and ``predicted`` (name, dtype) name the record's variables, and
  ``descriptions`` and :meth:`~PointKind.attributes` describe them.

A model point (:class:`ModelPoints`) records the final training objective (penalised), the
stationary training loss, the final validation loss and, for a classifier, the final validation
accuracy, each with its 95% Student-t interval over the replicates kept; and, from the
random-coefficient theory at x* (:class:`~amsgd.diffusion.theory.model_predictions.ModelPredictions`)
at the point's η, μ and delay: the excess loss floor (``½ tr(ΛX)`` of the full stationary covariance
for a model of at most 100 parameters at a constant delay of at most 64, as ``derive`` and ``advise``
give it, else the diagonal theory's ``½ Σ λ_i v_i``) and the predicted stationary loss
``L(x*) + floor``, the predicted loss after the run's ``steps`` from the model's initialisation
(``L(x*) + floor + ½ Σ λ_i E c_i² ρ_i^{2 steps}``), the rate ``−log ρ`` of the slowest ranking mode,
mean stability of the top modes (``τ < τ_c(η λ_i, μ)``), mean-square stability (the second-moment
operator's radius below one, by the same theory as the floor), and the largest constant delays that
keep the mean, and the second moments, stable at this η and μ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from amsgd.core import checks
from amsgd.core.delays import parse_delay
from amsgd.core.distributions import SampledDistribution, parse_distribution
from amsgd.core.errors import ProblemError
from amsgd.core.models import Dataset, ModelProblem
from amsgd.core.problem import Problem
from amsgd.simulate.plan import DEFAULT_RECORDS, averaging_start, delay_layout, make_plan

if TYPE_CHECKING:
    from amsgd.diffusion.theory.model_point import ModelPoint
    from amsgd.sweep.grid import GridPoint, SweepGrid

#: The start of a model's replicates in a sweep: each at the model's own initialisation (its key).
MODEL_START = "init"
#: Initialisations (seed 0) averaged for a model's squared start offsets from x* (predicted final loss).
START_SAMPLES = 8
#: ``tau_max`` of a model point at which no top mode limits the delay (every one flat): no finite τ*.
NO_DELAY_LIMIT = -2
#: The reach of the full second moments (``FULL_MOMENTS_MAX`` parameters, a constant delay of at most
#: ``FULL_MOMENTS_MAX_DELAY``: :mod:`amsgd.diffusion.theory.full_moments`), restated for the Dataset's
#: descriptions so that this module loads without the theory; a test keeps them equal.
FULL_MOMENTS_REACH = (100, 64)


@dataclass(frozen=True, eq=False)
class PointTask:
    """One grid point, ready to run on a worker: its problem, the simulation options, and ``theory``,
    what its predictions need (:meth:`PointKind.theory`; None: no prediction)."""

    index: int
    problem: Problem | ModelProblem
    steps: int
    replicates: int
    seed: np.random.SeedSequence
    record_every: int
    window_start: int
    start: str
    divergence_norm: float
    theory: object


@dataclass(frozen=True)
class RunOptions:
    """The simulation options of every point, resolved: the recording stride, the first iteration of
    the stationary window, and the start."""

    record_every: int
    window_start: int
    start: str


def record_fields(estimates: tuple[str, ...], curve: str, predicted: tuple[tuple[str, type], ...]) -> tuple[str, ...]:
    """The keys of a point's record, in order: its number, the estimates, the replicates kept and the
    diverged fraction, the mean curve, the predictions, and the stationarity flag."""
    return ("index", *estimates, "replicates_kept", "diverged_fraction", curve, *(name for name, _ in predicted),
            "stationary")  # fmt: skip


class PointKind:
    """What differs between the kinds of problem a sweep runs (the module docstring)."""

    #: Record entries with a 95% interval, stored as ``[mean, ci_low, ci_high]``.
    estimates: tuple[str, ...]
    #: The record entry holding the mean curve over the recorded iterations.
    curve: str
    #: The predicted record entries and the dtype of their Dataset variables.
    predicted: tuple[tuple[str, type], ...]
    #: The Dataset's description of each variable of this kind.
    descriptions: dict[str, str]

    def __init__(self, problem: Problem | ModelProblem) -> None:
        self.problem = problem
        self._theory: dict = {}
        #: Why the theory has no prediction, per distribution (None for a model) where it has none.
        self.missing: dict[str | None, str] = {}

    @property
    def fields(self) -> tuple[str, ...]:
        """The keys of a point's record (a stored point without one of them is computed again)."""
        return record_fields(self.estimates, self.curve, self.predicted)

    def check_grid(self, grid: SweepGrid) -> None:
        """Refuse a grid this kind cannot run (its distribution axis, its momenta)."""
        raise NotImplementedError

    def resolve(self, steps: int, replicates: int, seed: int, record_every: int | None, window: float | None,
                window_start: int | None, start: str | None, divergence_norm: float) -> RunOptions:  # fmt: skip
        """Check the simulation options of every point and resolve their defaults."""
        raise NotImplementedError

    def problem_at(self, point: GridPoint, delay_axis: str) -> Problem | ModelProblem:
        """The base problem at ``point``'s (distribution,) η, μ and delay."""
        raise NotImplementedError

    def check_memory(self, grid: SweepGrid, steps: int, replicates: int) -> None:
        """Refuse, before any point runs, a grid whose longest delay would not fit in memory."""
        raise NotImplementedError

    def manifest(self) -> dict:
        """The manifest entries that identify the base problem (beside the grid and the options)."""
        raise NotImplementedError

    @staticmethod
    def compute(task: PointTask) -> dict:
        """Simulate ``task``'s point and evaluate the predictions there: its record (on a worker)."""
        raise NotImplementedError

    def theory(self, distribution: str | None) -> object:
        """What the predictions need, derived on first use (in the client) and shipped with the tasks."""
        if distribution not in self._theory:
            self._theory[distribution] = self._derive(distribution)
        return self._theory[distribution]

    def _derive(self, distribution: str | None) -> object:
        raise NotImplementedError

    def attributes(self, distributions: tuple[str, ...]) -> dict:
        """The Dataset attributes of this kind: its title, the problem and the theory shipped."""
        raise NotImplementedError


# --------------------------------------------------------------------------------- streaming PCA


class PcaPoints(PointKind):
    """Streaming PCA over distribution × η × μ × delay: the error sin²∠(v, e_1) and the linear theory at e_1."""

    estimates = ("final_error", "stationary_error")
    curve = "error_mean"
    predicted = (("diffusion_floor", float), ("linearized_floor", float), ("finite_eta_floor", float),
                 ("mean_square_stable", np.int8), ("tau_max", np.int64), ("limiting_mode", np.int64))  # fmt: skip
    descriptions: ClassVar[dict[str, str]] = {
        "final_error": "mean over non-diverged replicates of sin^2 of the angle to e_1 at the last iteration",
        "stationary_error": "mean over non-diverged replicates of each replicate's time average of sin^2 "
        "over window_start <= k <= steps",
        "error_mean": "mean error at each recorded iteration over the replicates that never diverged",
        "diffusion_floor": "leading-order diffusion limit of the stationary error, sum_i eta s_i^2 / (2 a_i (1 - mu))",
        "linearized_floor": "exact stationary error of the linearised recursion with additive noise at this eta, "
        "mu and delay (inf: its second moments grow); no floor of the runs where mean_square_stable is 0",
        "finite_eta_floor": "the toolkit's stationary error at this eta, mu and delay, amsgd derive's "
        "stationary_error.finite_eta.value: the exact second moments with the multiplicative noise, the coupling "
        "through the norm of v and, for Student-t data, the heavy-tail factor (inf: the second moments grow; "
        "NaN: no prediction)",
        "mean_square_stable": "1 if the second moments of the linearisation at e_1 with its multiplicative noise "
        "are stable, 0 if they grow (the runs then have no floor near e_1), -1 without a prediction",
        "tau_max": "largest stable constant delay tau* at this eta and mu (-1: none)",
        "limiting_mode": "mode number i at e_1 that sets tau_max (see attribute modes; 0: no prediction)",
    }

    problem: Problem

    def check_grid(self, grid: SweepGrid) -> None:
        if isinstance(self.problem.distribution, SampledDistribution):  # the grid would put a named law in its place
            raise ProblemError(
                f"a sweep takes its data laws from the grid's distributions (named laws, stored by name), not the "
                f"problem's distribution {self.problem.distribution.spec}; simulate a sampled law point by point"
            )
        if not grid.distributions:
            raise ProblemError("a streaming-PCA sweep needs at least one data distribution on its grid")
        if any(mu < 0 for mu in grid.mus):
            raise ProblemError(f"mu values must satisfy 0 <= mu < 1 for streaming PCA (negative momentum is for "
                               f"the other models), got {list(grid.mus)}")  # fmt: skip

    def resolve(self, steps, replicates, seed, record_every, window, window_start, start, divergence_norm):
        start = "e2" if start is None else start
        if not isinstance(start, str):
            raise ProblemError(f"start must be a string (eJ, random or x1,...,xd), got {start!r}")
        plan = make_plan(
            self.problem, steps, replicates, rng=int(seed), record_every=record_every, start=start,
            window=window, window_start=window_start, divergence_norm=divergence_norm,
        )  # fmt: skip
        stride = int(plan.record_at[1] - plan.record_at[0]) if plan.record_at.size > 1 else plan.steps
        return RunOptions(record_every or stride, plan.window_start, start)

    def problem_at(self, point: GridPoint, delay_axis: str) -> Problem:
        return self.problem.replace(
            distribution=parse_distribution(point.distribution),
            eta=point.eta,
            mu=point.mu,
            delay=parse_delay(point.delay_spec(delay_axis)),
        )

    def check_memory(self, grid: SweepGrid, steps: int, replicates: int) -> None:
        delay_layout(self.problem.replace(delay=parse_delay(grid.longest_delay_spec)), replicates)

    def manifest(self) -> dict:
        if self.problem.covariance_is_diagonal:  # O(d): the d × d list would be 10⁸ numbers at d = 10 000
            return {"covariance_diagonal": self.problem.covariance_diagonal.tolist()}
        return {"covariance": np.asarray(self.problem.covariance).tolist()}

    def _derive(self, distribution: str | None):
        """The modes at e_1 for ``distribution`` (they do not depend on η, μ, τ); None when the theory
        has no prediction (no eigengap, or infinite fourth moments)."""
        from amsgd.diffusion.theory.predictions import modes_at_optimum

        try:
            return modes_at_optimum(self.problem.replace(distribution=parse_distribution(distribution)))
        except ProblemError as exc:
            self.missing[distribution] = str(exc)
            return None

    def attributes(self, distributions: tuple[str, ...]) -> dict:
        import json

        problem = {**self.problem.to_dict(), "distribution": None, "eta": None, "mu": None, "delay": None}
        return {
            "title": "amsgd sweep: Async-MSGD on streaming PCA, simulated and predicted",
            "problem": json.dumps(problem),
            "modes": json.dumps({d: (m.to_dict() if (m := self.theory(d)) else None) for d in distributions}),
        }

    @staticmethod
    def compute(task: PointTask) -> dict:
        from amsgd.simulate import simulate

        result = simulate(
            task.problem, task.steps, task.replicates, rng=task.seed, record_every=task.record_every,
            start=task.start, window_start=task.window_start, divergence_norm=task.divergence_norm,
            coordinates="none", progress=False,  # a point records no coordinate moments
        )  # fmt: skip
        record: dict = {"index": task.index}
        for name in PcaPoints.estimates:
            estimate = getattr(result, name)
            record[name] = [estimate.mean, estimate.ci_low, estimate.ci_high]
        record["replicates_kept"] = int(result.replicates - result.diverged.sum())
        record["diverged_fraction"] = result.diverged_fraction
        record["error_mean"] = result.error_mean.tolist()
        record["stationary"] = _flag(result.stationarity.stationary)
        record.update(pca_predictions(task.theory, task.problem))
        return record


def pca_predictions(modes, problem: Problem) -> dict:
    """Diffusion and linearised floors, whether the linearisation's second moments (multiplicative noise
    included) are stable, τ* and its limiting mode (number i) at ``problem``'s η, μ, delay, from
    :func:`amsgd.predict` with the modes at e_1 already derived.

    ``tau_max`` is −1 when even τ = 0 is unstable; every value is NaN (the mean-square flag and τ* −1,
    mode 0) without modes or where the theory refuses the point (a step too small to resolve, a delay
    beyond the linear numerics' :data:`~amsgd.diffusion.theory.linear_recursion.MAX_DELAY`).
    """
    none = {"diffusion_floor": math.nan, "linearized_floor": math.nan, "finite_eta_floor": math.nan,
            "mean_square_stable": -1, "tau_max": -1, "limiting_mode": 0}  # fmt: skip
    if modes is None:
        return none
    from amsgd.diffusion.theory import predict

    try:  # the predictions are computed when first asked for: every one inside
        p = predict(problem, modes=modes)
        tau_max = p.tau_max
        return {
            "diffusion_floor": p.linearized.diffusion_floor,
            "linearized_floor": p.linearized.floor,
            "finite_eta_floor": _finite_eta_floor(p),
            "mean_square_stable": _mean_square_flag(p),
            "tau_max": -1 if tau_max is None else int(tau_max),
            "limiting_mode": p.limiting_mode()["i"],
        }
    except ProblemError:
        return none


def _finite_eta_floor(p) -> float:
    """``stationary_error.finite_eta.value`` of ``amsgd derive`` (``inf`` where the second moments grow),
    NaN where the finite-η theory has no verdict (the point's other predictions stand)."""
    try:
        return float(p.finite_eta.value)
    except ProblemError:
        return math.nan


def _mean_square_flag(p) -> int:
    """1 / 0 where the linearisation's second moments are stable / grow, −1 where the theory has no verdict
    (the point's other predictions stand)."""
    try:
        return int(p.mean_square_stable)
    except (ProblemError, ArithmeticError):
        return -1


# --------------------------------------------------------------------------------- other models

_MODEL_DESCRIPTIONS = {
    "final_train_loss": "mean over non-diverged replicates of the training objective (penalised, full training "
    "split) at the last iteration",
    "stationary_loss": "mean over non-diverged replicates of each replicate's time average of the training "
    "objective over the recorded iterations window_start <= k <= steps",
    "final_validation_loss": "mean over non-diverged replicates of the validation loss (no penalty) at the last iteration",
    "final_validation_accuracy": "mean over non-diverged replicates of the validation accuracy at the last iteration",
    "train_loss_mean": "mean training objective at each recorded iteration over the replicates alive there",
    "loss_floor": "predicted stationary excess loss E L(x) - L(x*) at this eta, mu and delay by the random-coefficient "
    "theory at the minimum x*: 1/2 tr(Lambda X), X the full stationary covariance, where full_second_moments is 1, "
    "else 1/2 sum_i lambda_i v_i (inf: not mean-square stable; NaN: no prediction)",
    "predicted_loss": "predicted stationary training loss L(x*) + loss_floor, to compare with stationary_loss",
    "predicted_final_loss": "predicted training loss after steps iterations from the model's initialisation, "
    "L(x*) + loss_floor + 1/2 sum_i lambda_i E c_i^2 rho_i^(2 steps) (c_i: the start's offset from x* along "
    "Hessian mode i, averaged over 8 initialisations; rho_i: the mode's mean radius; inf: not mean-square "
    "stable), to compare with final_train_loss",
    "predicted_rate": "predicted rate -log rho per iteration of the slowest ranking Hessian mode at this eta, mu "
    "and delay (negative: that mode grows)",
    "mean_stable": "1 if the mean dynamics of every top Hessian mode is stable at this delay (tau < tau_c), "
    "0 if not, -1 if no prediction",
    "mean_square_stable": "1 if the linearisation is mean-square stable at this delay (second-moment operator's "
    "radius < 1, by the theory full_second_moments names), 0 if not, -1 if no prediction",
    "tau_max": "largest constant delay tau* at which the mean of every top mode is stable at this eta and mu "
    f"(-1: none, or no prediction; {NO_DELAY_LIMIT}: no limit, every top mode flat); with round-robin workers, "
    "M* = tau_max + 1",
    "tau_max_mean_square": "largest constant delay at which the linearisation is mean-square stable at this eta "
    "and mu, by the theory full_second_moments names (-1: none, or no prediction; 2000, the longest delay the "
    "numerics take: at least 2000); with round-robin workers, M = tau_max_mean_square + 1",
    "limiting_mode": "the top Hessian mode (0: the stiffest) with the smallest critical delay, which sets "
    "tau_max (-1: no prediction)",
    "full_second_moments": "1 if the full second moments (every cross-covariance of the per-example Hessians kept: "
    f"a model of at most {FULL_MOMENTS_REACH[0]} parameters at a constant delay of at most {FULL_MOMENTS_REACH[1]}) "
    "decide loss_floor, mean_square_stable and tau_max_mean_square, as amsgd derive and advise do; 0 if the "
    "diagonal theory does; -1 if no prediction",
}

#: Datasets already seen by this process, by content: the tasks of one sweep then share one object,
#: so that the simulator's compiled programs (cached per data object) are reused across points.
_DATASETS: OrderedDict[str, Dataset] = OrderedDict()
_DATASETS_KEPT = 4
_DATASETS_LOCK = threading.Lock()


def array_digest(array: np.ndarray) -> str:
    """The SHA-256 (hex) of an array's dtype, shape and bytes (C order)."""
    a = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    digest.update(a.tobytes())
    return digest.hexdigest()


def data_digests(data: Dataset) -> dict:
    """The SHA-256 of the training and the validation arrays (features, then targets), as used."""
    def pair(x: np.ndarray, y: np.ndarray) -> str:
        return hashlib.sha256((array_digest(x) + array_digest(y)).encode()).hexdigest()

    return {"train_sha256": pair(data.x_train, data.y_train), "validation_sha256": pair(data.x_val, data.y_val)}


def shared_data(data: Dataset) -> Dataset:
    """The first Dataset with ``data``'s content that this process has seen (``data`` itself if none)."""
    d = data_digests(data)
    key = d["train_sha256"] + d["validation_sha256"]
    with _DATASETS_LOCK:
        kept = _DATASETS.setdefault(key, data)
        _DATASETS.move_to_end(key)
        while len(_DATASETS) > _DATASETS_KEPT:
            _DATASETS.popitem(last=False)
    return kept


@dataclass(frozen=True, eq=False)
class ModelTheory:
    """What a model point's predictions need, shipped with every task: the model at its minimum x*
    (Hessian eigenvalues, noise, coupling; the eigenvectors only for a model small enough for the full
    second moments, :func:`~amsgd.diffusion.theory.full_moments.applies`, which project every example's
    Hessian on them: a larger model's would make every task large and nothing uses them) and
    ``offsets``, the mean squared coordinates ``E c_i²`` of the model's initialisation
    (:data:`START_SAMPLES` of them, seed 0) relative to x* in the eigenbasis."""

    point: ModelPoint
    offsets: np.ndarray


class ModelPoints(PointKind):
    """A model of :mod:`amsgd.core.models` over η × μ × delay (no distribution axis: the data are fixed)."""

    curve = "train_loss_mean"
    predicted = (("loss_floor", float), ("predicted_loss", float), ("predicted_final_loss", float), ("predicted_rate", float),
                 ("mean_stable", np.int8), ("mean_square_stable", np.int8), ("tau_max", np.int64),
                 ("tau_max_mean_square", np.int64), ("limiting_mode", np.int64),
                 ("full_second_moments", np.int8))  # fmt: skip

    problem: ModelProblem

    def __init__(self, problem: ModelProblem) -> None:
        super().__init__(problem)
        self.estimates = model_estimates(problem)
        self.descriptions = {name: text for name, text in _MODEL_DESCRIPTIONS.items()
                             if name in self.fields}  # fmt: skip

    def check_grid(self, grid: SweepGrid) -> None:
        if grid.distributions:
            raise ProblemError("a model's sweep has no distribution axis (its data come from --data); "
                               "leave out --distribution")  # fmt: skip

    def resolve(self, steps, replicates, seed, record_every, window, window_start, start, divergence_norm):
        from amsgd.simulate.model_engine import INIT_STREAM

        steps = checks.positive_int("steps", steps)
        if steps >= INIT_STREAM:
            raise ProblemError(f"steps must be below {INIT_STREAM}, got {steps}")
        checks.positive_int("replicates", replicates)
        if start not in (None, MODEL_START):
            raise ProblemError("start applies to streaming PCA only: a model's replicates start at its "
                               "initialisation; leave out --start")  # fmt: skip
        stride = max(1, steps // DEFAULT_RECORDS) if record_every is None else record_every
        stride = min(checks.positive_int("record_every", stride), steps)
        first = averaging_start(steps, window, window_start)
        if first >= steps:
            raise ProblemError(f"window_start must lie in 0..steps-1 for a model (the window needs a recorded "
                               f"iteration before the last), got {first}")  # fmt: skip
        checks.positive("divergence_norm", divergence_norm)
        return RunOptions(stride, first, MODEL_START)

    def problem_at(self, point: GridPoint, delay_axis: str) -> ModelProblem:
        return self.problem.replace(eta=point.eta, mu=point.mu, delay=parse_delay(point.delay_spec(delay_axis)))

    def check_memory(self, grid: SweepGrid, steps: int, replicates: int) -> None:
        from amsgd.simulate.model_engine import check_run_memory

        check_run_memory(self.problem, steps, replicates, parse_delay(grid.longest_delay_spec).max_delay)

    def manifest(self) -> dict:
        p = self.problem
        model = {"name": p.model, "batch": p.batch, "l2": p.l2}
        if p.model == "mlp":
            model.update(hidden=p.hidden, activation=p.activation)
        data = {"classes": p.data.classes, "train": list(p.data.x_train.shape), "validation": list(p.data.x_val.shape),
                **data_digests(p.data)}  # fmt: skip
        return {"model": model, "data": data}

    def _derive(self, distribution: str | None) -> ModelTheory | None:
        """The model at its minimum x* and the start offsets (:class:`ModelTheory`); None, with
        :attr:`missing` saying why, when no minimum is found."""
        from amsgd.diffusion.theory.full_moments import applies
        from amsgd.diffusion.theory.linear_recursion import delay_law
        from amsgd.diffusion.theory.model_predictions import minimum_point
        from amsgd.simulate.model_engine import start_points

        try:
            point = minimum_point(self.problem)  # each η's resolvability is checked at its point
        except ProblemError as exc:
            self.missing[None] = str(exc)
            return None
        offsets = point.mean_square_offsets(start_points(self.problem, START_SAMPLES, rng=0))
        if not applies(point.x.size, delay_law(0), point.full):  # the full second moments need no vectors
            point = dataclasses.replace(point, vectors=np.zeros((point.x.size, 0)))
        return ModelTheory(point, offsets)

    def attributes(self, distributions: tuple[str, ...]) -> dict:
        import json

        theory = self.theory(None)
        point = None if theory is None else theory.point
        problem = {**self.problem.to_dict(), "eta": None, "mu": None, "delay": None}
        theory = ({"point": None, "reason": self.missing.get(None)} if point is None else
                  {"point": point.to_dict(), "loss_at_minimum": point.loss,
                   "method": "random-coefficient linearisation at the minimum x* (docs/models.md)"})  # fmt: skip
        return {
            "title": f"amsgd sweep: Async-MSGD on model {self.problem.model}, simulated and predicted",
            "problem": json.dumps(problem),
            "theory": json.dumps(theory),
        }

    @staticmethod
    def compute(task: PointTask) -> dict:
        from amsgd.simulate.model_engine import simulate_model

        problem = dataclasses.replace(task.problem, data=shared_data(task.problem.data))
        result = simulate_model(
            problem, task.steps, task.replicates, rng=task.seed, record_every=task.record_every,
            window_start=task.window_start, divergence_norm=task.divergence_norm, progress=False,
        )  # fmt: skip
        estimates = {
            "final_train_loss": lambda: result.final("train_loss"),
            "stationary_loss": result.stationary_loss,
            "final_validation_loss": lambda: result.final("validation_loss"),
            "final_validation_accuracy": lambda: result.final("validation_accuracy"),
        }
        record: dict = {"index": task.index}
        for name in model_estimates(problem):
            estimate = estimates[name]()
            record[name] = [float(estimate.mean), float(estimate.ci_low), float(estimate.ci_high)]
        record["replicates_kept"] = int(np.sum(result.diverged_at < 0))
        record["diverged_fraction"] = result.diverged_fraction
        record["train_loss_mean"] = [float(v) for v in result.mean_curve("train_loss")]
        record["stationary"] = _flag(result.stationarity.stationary)
        record.update(model_predictions(task.theory, problem, task.steps))
        return record


def model_estimates(problem: ModelProblem) -> tuple[str, ...]:
    """The estimates of a model point: losses, and the validation accuracy of a classifier."""
    return ("final_train_loss", "stationary_loss", "final_validation_loss",
            *(("final_validation_accuracy",) if problem.data.classes else ()))  # fmt: skip


_NO_PREDICTION = {"loss_floor": math.nan, "predicted_loss": math.nan, "predicted_final_loss": math.nan,
                  "predicted_rate": math.nan, "mean_stable": -1, "mean_square_stable": -1, "tau_max": -1,
                  "tau_max_mean_square": -1, "limiting_mode": -1, "full_second_moments": -1}  # fmt: skip


def model_predictions(shipped: ModelTheory | None, problem: ModelProblem, steps: int) -> dict:
    """The predictions at ``problem``'s η, μ and delay from the model at its minimum, by
    :class:`~amsgd.diffusion.theory.model_predictions.ModelPredictions` with the momenta ranked for a run
    of ``steps`` iterations (module docstring); the values of "no prediction" without a theory.

    The loss after ``steps`` iterations is :meth:`~amsgd.diffusion.theory.model_predictions.ModelPredictions.excess_after`
    from the shipped start offsets, plus ``L(x*)``."""
    if shipped is None:
        return dict(_NO_PREDICTION)
    point = shipped.point
    from amsgd.diffusion.theory.linear_recursion import spectral_radius
    from amsgd.diffusion.theory.model_predictions import ModelPredictions
    from amsgd.diffusion.theory.options import PredictOptions

    theory = ModelPredictions(problem, point, PredictOptions(steps=steps))
    try:
        point.require_resolvable_step(problem.eta, problem.mu)  # as predict_model does
        critical = theory.critical
        limit = float(critical.min())
        law = theory.law
        if law.constant is not None:
            mean_stable = bool(law.constant < limit)
        else:  # an i.i.d. delay: every top mode's mean radius below one
            top = point.eigenvalues[: point.top]
            mean_stable = all(spectral_radius(r, problem.eta, problem.mu, law) < 1 for r in top)
        floor = theory.stationary_excess
        after = theory.excess_after(steps, problem.eta, problem.mu, problem.delay, shipped.offsets, floor=floor)
        tau_ms, _ = theory.mean_square_delay
        return {
            "loss_floor": float(floor),
            "predicted_loss": float(point.loss + floor),
            "predicted_final_loss": float(point.loss + after),
            "predicted_rate": float(theory.rate),
            "mean_stable": int(mean_stable),
            "mean_square_stable": int(theory.mean_square_stable),
            "tau_max": int(math.ceil(limit)) - 1 if math.isfinite(limit) else NO_DELAY_LIMIT,
            "tau_max_mean_square": -1 if tau_ms is None else int(tau_ms),
            "limiting_mode": int(np.argmin(critical)),
            "full_second_moments": int(theory.full_moments is not None),
        }
    except ProblemError:  # a point the linear theory does not apply to, or a step too small to resolve
        return dict(_NO_PREDICTION)


# ---------------------------------------------------------------------------------------- shared


def point_kind(problem: Problem | ModelProblem) -> PointKind:
    """The :class:`PointKind` of a sweep over ``problem``."""
    if isinstance(problem, ModelProblem):
        return ModelPoints(problem)
    if isinstance(problem, Problem):
        return PcaPoints(problem)
    raise ProblemError(f"a sweep needs a Problem or a ModelProblem, got {type(problem).__name__}")


def compute_point(task: PointTask) -> dict:
    """Simulate one grid point and attach the predictions: a JSON-ready record (runs on a worker)."""
    kind = ModelPoints if isinstance(task.problem, ModelProblem) else PcaPoints
    return kind.compute(task)


def _flag(stationary: bool | None) -> int:
    """1 / 0 for a window found stationary / drifting, −1 when not checked or undecided."""
    return -1 if stationary is None else int(stationary)
