"""The result of a model simulation: losses and accuracies on the recording grid, summaries with 95% CIs.

Intervals are Student-t intervals across the replicates that did not diverge
(:func:`amsgd.core.estimates.t_interval`). The stationary loss of a replicate is the mean of its
training objective over the recorded iterations in the window (from ``window_start`` to the end);
replicates are independent, so the interval over them is valid whatever the autocorrelation
inside a run.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.core.estimates import Estimate, t_interval
from amsgd.core.stationarity import Stationarity, window_split, window_stationarity

if TYPE_CHECKING:
    import xarray

    from amsgd.core.models import ModelProblem

#: Rows of the recorded values, in order.
QUANTITIES = ("train_loss", "validation_loss", "train_accuracy", "validation_accuracy")
#: The range of each quantity, to which its confidence intervals are cut (losses >= 0, accuracies in [0, 1]).
RANGES = {"train_loss": (0.0, math.inf), "validation_loss": (0.0, math.inf), "train_accuracy": (0.0, 1.0),
          "validation_accuracy": (0.0, 1.0)}  # fmt: skip


@dataclass(frozen=True, eq=False)
class ModelSimulationResult:
    """Runs of Async-MSGD on a model, recorded at ``iterations`` (always 0 and ``steps``).

    ``values[q]`` is ``(replicates, records)`` for each name in :data:`QUANTITIES` (the training
    loss is the penalised objective; the others carry no penalty), NaN from the record where a
    replicate diverged; ``diverged_at[r]`` is that iteration (−1 if it never diverged);
    ``window_loss[r]`` the replicate's stationary training loss; ``last_iterates`` the last iterates;
    ``elapsed`` the seconds of the run, compilation included. ``window_halves[:, 0]`` and ``[:, 1]`` are
    each replicate's mean training loss over the recorded iterations of the window's first half
    (``window_start <= k < window_split``) and of its second (see :attr:`stationarity`), both NaN for a
    replicate that diverged before the window's end.
    """

    problem: ModelProblem
    steps: int
    iterations: np.ndarray
    values: dict[str, np.ndarray]
    diverged_at: np.ndarray
    window_start: int
    window_loss: np.ndarray
    last_iterates: np.ndarray
    delay_mean: float
    delay_max: int
    seed: dict
    elapsed: float
    window_split: int
    window_halves: np.ndarray

    @classmethod
    def build(cls, problem: ModelProblem, steps: int, records: dict, delays: np.ndarray, window_start: int,
              seed: dict, elapsed: float) -> ModelSimulationResult:  # fmt: skip
        iterations = records["iterations"]
        diverged_at = records["diverged_at"]
        dead = (diverged_at[:, None] >= 0) & (iterations[None, :] >= diverged_at[:, None])
        values = {q: np.where(dead, np.nan, records["values"][:, i, :]) for i, q in enumerate(QUANTITIES)}
        in_window = iterations >= window_start
        window_loss = values["train_loss"][:, in_window].mean(axis=1)
        split = window_split(window_start, steps)
        halves = np.stack([_mean_over(values["train_loss"], in_window & (iterations < split)),
                           _mean_over(values["train_loss"], iterations >= split)], axis=1)  # fmt: skip
        halves[np.isnan(window_loss)] = np.nan  # diverged in the second half: out of the first too
        return cls(problem, steps, iterations, values, diverged_at, window_start, window_loss,
                   records["final"], float(delays.mean()), int(delays.max()), seed, elapsed, split, halves)  # fmt: skip

    @property
    def replicates(self) -> int:
        return int(self.diverged_at.size)

    @property
    def diverged_fraction(self) -> float:
        return float(np.mean(self.diverged_at >= 0))

    def final(self, quantity: str = "train_loss") -> Estimate:
        """The mean of ``quantity`` at the last iteration over the replicates alive, with its CI (cut to
        the quantity's range, :data:`RANGES`); an unknown quantity is refused, naming those recorded."""
        if quantity not in self.values:
            raise ProblemError(f"no recorded quantity {quantity!r}; recorded: {', '.join(self.values)}")
        return t_interval(self.values[quantity][:, -1], support=RANGES[quantity])

    def stationary_loss(self) -> Estimate:
        """The mean stationary training loss over the replicates alive, with its CI (cut at 0)."""
        return t_interval(self.window_loss, support=RANGES["train_loss"])

    @property
    def stationarity(self) -> Stationarity:
        """Whether the window's two halves agree (:class:`~amsgd.core.stationarity.Stationarity`, the rule of
        :class:`~amsgd.simulate.result.SimulationResult` on the recorded training loss)."""
        return window_stationarity(
            self.window_halves[:, 0], self.window_halves[:, 1], start=self.window_start, end=self.steps,
            estimate=self.stationary_loss().mean,
            advice=f"use more steps (e.g. --steps {4 * self.steps})",  # a shorter window silences the check, not the bias
        )  # fmt: skip

    def to_dict(self) -> dict:
        alive = int(np.sum(self.diverged_at < 0))
        out = {
            "problem": self.problem.to_dict(),
            "steps": self.steps,
            "replicates": self.replicates,
            "seed": self.seed,
            "diverged_fraction": self.diverged_fraction,
            "alive": alive,
            "final": {q: self.final(q).to_dict() for q in QUANTITIES if not self._all_nan(q)},
            "stationary_loss": {**self.stationary_loss().to_dict(), "window_start": self.window_start},
            "stationarity": self.stationarity.to_dict(),
            "delay": {"mean": self.delay_mean, "measured_max": self.delay_max},
            "elapsed_seconds": self.elapsed,
            "replicate_steps_per_second": self.replicates * self.steps / self.elapsed,
        }
        if alive == 0:
            out["note"] = "every replicate diverged: no estimate"
        return out

    def _all_nan(self, quantity: str) -> bool:
        return bool(np.all(np.isnan(self.values[quantity])))

    def mean_curve(self, quantity: str = "train_loss") -> np.ndarray:
        """The mean of ``quantity`` over the replicates alive at each recorded iteration."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a record where every replicate diverged
            return np.nanmean(self.values[quantity], axis=0)

    def to_xarray(self) -> xarray.Dataset:
        """Dimensions ``replicate`` and ``iteration``; one variable per recorded quantity."""
        import xarray as xr

        cell = ("replicate", "iteration")
        return xr.Dataset(
            {q: (cell, v) for q, v in self.values.items()} | {"diverged_at": ("replicate", self.diverged_at)},
            coords={"replicate": np.arange(self.replicates), "iteration": self.iterations},
            attrs={"model": self.problem.model, "eta": self.problem.eta, "mu": self.problem.mu,
                   "delay": self.problem.delay.spec, "batch": self.problem.batch,
                   # everything else that made the run (l2, hidden units, data), and its seed, as JSON
                   "problem": json.dumps(self.problem.to_dict()), "seed": json.dumps(self.seed),
                   "steps": self.steps, "window_start": self.window_start},  # fmt: skip
        )


def _mean_over(values: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Each row's mean over ``columns`` (NaN when there is none, or where the row has a NaN)."""
    if not columns.any():
        return np.full(values.shape[0], np.nan)
    return values[:, columns].mean(axis=1)
