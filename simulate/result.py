"""The result of a simulation: trajectories on the recording grid and summaries with 95% CIs.

Confidence intervals are two-sided 95% Student-t intervals across replicates,
``mean ± t_{0.975, n−1} s/√n``, over the ``n`` replicates that did not diverge; with ``n < 2`` the
bounds are undefined (NaN in Python, ``null`` in JSON). Replicates are independent (each block of
replicates has its own random stream and each replicate its own data and delays), so the interval
is exact for normal per-replicate values and asymptotically correct otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import CONFIDENCE, Estimate, json_float, t_interval
from amsgd.core.stationarity import Stationarity, window_stationarity

if TYPE_CHECKING:
    import xarray

    from amsgd.core.problem import Problem

__all__ = ["SimulationResult"]

#: A suggested window starts this many times the predicted arrival near the floor into the run: the
#: arrival is when the mean error over runs reaches ε (by default twice the floor); on the default
#: problem from e_2 (4000 runs) the mean is 3% above the floor at twice that and at it by 2.5 times.
ARRIVAL_MARGIN = 2.5
#: The range of the error 1 − h_1²/||h||², to which its confidence intervals are cut.
ERROR_RANGE = (0.0, 1.0)


#: The ``description`` attribute of each variable of :meth:`SimulationResult.to_xarray`.
DESCRIPTIONS = {
    "error": "sin^2 of the angle between v_k and e_1; NaN after divergence",
    "norm_sq": "||v_k||^2; NaN after divergence",
    "error_mean": "mean error over the replicates that never diverged",
    "coordinate_mean": "mean of h_i = (Q^T v_k)_i over replicates alive at iteration k",
    "coordinate_sq_mean": "mean of h_i^2 over replicates alive at iteration k",
    "alive": "replicates not diverged by iteration k",
    "diverged": "1 if the replicate diverged",
    "diverged_at": "iteration of divergence, -1 if none",
    "stationary_error": "time average of the error over window_start <= k <= steps",
    "stationary_error_first_half": "time average of the error over window_start <= k < window_split",
    "stationary_error_second_half": "time average of the error over window_split <= k <= steps",
    "delay_mean": "mean delay of this replicate's updates (constant and i.i.d. delays: as drawn; "
    "an update at iteration k < tau meets staleness k)",
    "delay_counts": "updates with each delay, all replicates (constant and i.i.d. delays: as drawn)",
}


#: The most iterations :meth:`SimulationResult.with_predicted_phases` takes for a phase (advice built on more
#: would be a run no machine makes).
MAX_PREDICTED_ITERATIONS = 1e18


def _round_up(x: float) -> int:
    """``x`` rounded up to two significant digits (a number of steps to suggest)."""
    if x <= 100:
        return max(1, math.ceil(x))
    scale = 10 ** (math.floor(math.log10(x)) - 1)
    return int(math.ceil(x / scale) * scale)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Monte Carlo runs of Async-MSGD, recorded at ``iterations`` (always including 0 and ``steps``).

    Per replicate (rows) and recorded iteration (columns), ``error`` is the optimisation error
    ``sin²∠(v_k, e_1) = 1 − h_1²/||h||²`` and ``norm_sq`` is ``||v_k||²``; both are NaN from the
    iteration where the replicate diverged. ``window_error`` is each replicate's time average of the
    error over every iteration ``window_start <= k <= steps`` (not only recorded ones).
    ``coordinate_mean`` and ``coordinate_sq_mean`` are the mean of ``h_i`` and of ``h_i²`` over the
    replicates still alive at each recorded iteration (``alive`` counts them; both None for a run
    asked to keep no coordinates); ``coordinates`` keeps every replicate's ``h`` only when asked for,
    since it needs ``R · n_records · d`` numbers.
    ``delay_counts[i]`` counts the updates with delay i (drawn, for constant and i.i.d. delays), over
    all replicates; for the event-driven server the last bin also holds the (rare) larger delays.
    ``delay_max`` is the largest delay of any update (:attr:`measured_max_delay` reads it), for every
    delay model: the staleness applied for the event-driven server, the delays drawn for constant and
    i.i.d. ones (an update at iteration k < τ reads the start point, staleness k).

    ``window_halves[:, 0]`` and ``[:, 1]`` are each replicate's time averages of the error over the
    window's first half ``window_start <= k < window_split`` and its second ``window_split <= k <= steps``
    (see :attr:`stationarity`). ``predicted_escape`` and ``predicted_arrival`` are the theory's mean
    escape from the start point and arrival near the floor, in iterations, when a caller supplied them
    (:meth:`with_predicted_phases`; ``amsgd simulate`` does when the halves differ significantly).
    """

    problem: Problem
    steps: int
    iterations: np.ndarray
    error: np.ndarray
    norm_sq: np.ndarray
    coordinate_mean: np.ndarray | None
    coordinate_sq_mean: np.ndarray | None
    alive: np.ndarray
    coordinates: np.ndarray | None
    diverged_at: np.ndarray
    window_start: int
    window_error: np.ndarray
    window_split: int
    window_halves: np.ndarray
    delay_counts: np.ndarray
    delay_mean_per_replicate: np.ndarray
    delay_max: int  # the largest delay of any update (measured_max_delay)
    start: str
    seed: dict
    divergence_norm: float
    elapsed: float
    predicted_escape: float | None = None
    predicted_arrival: float | None = None

    @property
    def replicates(self) -> int:
        return int(self.error.shape[0])

    @property
    def diverged(self) -> np.ndarray:
        """Per replicate: True when ``||v||`` left ``[0, divergence_norm]`` or became NaN/inf."""
        return self.diverged_at >= 0

    @property
    def diverged_fraction(self) -> float:
        return float(self.diverged.mean())

    @property
    def error_mean(self) -> np.ndarray:
        """Mean error at each recorded iteration over the replicates that never diverged."""
        kept = self.error[~self.diverged]
        if kept.shape[0] == 0:
            return np.full(self.iterations.shape, np.nan)
        return kept.mean(axis=0)

    @property
    def final_error(self) -> Estimate:
        """The error at the last iteration, over the replicates that never diverged."""
        return t_interval(self.error[~self.diverged, -1], support=ERROR_RANGE)

    @property
    def stationary_error(self) -> Estimate:
        """The per-replicate time averages of the error over the window, across replicates."""
        return t_interval(self.window_error[~self.diverged], support=ERROR_RANGE)

    @property
    def stationarity(self) -> Stationarity:
        """Whether the window's two halves agree (:class:`~amsgd.core.stationarity.Stationarity`): a paired
        interval of the per-replicate difference of their time averages, over non-diverged replicates."""
        halves = self.window_halves[~self.diverged]
        return window_stationarity(
            halves[:, 0], halves[:, 1], start=self.window_start, end=self.steps,
            estimate=self.stationary_error.mean, bound=1.0, advice=self._advice(),
            predicted_escape=self.predicted_escape, predicted_arrival=self.predicted_arrival,
        )  # fmt: skip

    def _advice(self) -> str:
        """What to change when the window drifts: more steps with the window at the same fraction of the
        run, so that it starts :data:`ARRIVAL_MARGIN` times past the predicted arrival near the floor
        when that is known (at least twice the steps; four times when it is not), a start at e_1 (unless
        the run started there), or a window starting that margin past the arrival where that leaves half
        the run or more (a later window of a run still settling shortens the window until the check has no
        power, and silences it without removing the bias). A window of the last iteration alone gets an
        earlier window, or, where the run ends before that margin past the arrival, a longer run."""
        fraction = self.window_start / self.steps
        arrival = self.predicted_arrival
        known = arrival is not None and math.isfinite(arrival)
        at_e1 = "" if self.start == "e1" else " or start at the optimum (--start e1)"
        if self.window_start == self.steps:  # one iteration: no halves
            if known and self.steps < ARRIVAL_MARGIN * arrival:  # and before the floor: a longer run, not an earlier window
                return f"use more steps (e.g. --steps {2 * _round_up(ARRIVAL_MARGIN * arrival)} --window 0.5){at_e1}"
            return f"start the window earlier (--window-start below {self.steps}, or --window){at_e1}"
        if fraction == 0:
            start = _round_up(ARRIVAL_MARGIN * arrival) if known else max(1, self.steps // 2)
            return f"start the window later (e.g. --window-start {start} with --steps {max(self.steps, 2 * start)}){at_e1}"
        steps = max(2 * self.steps, _round_up(ARRIVAL_MARGIN * arrival / fraction)) if known else 4 * self.steps
        window = "" if fraction == 0.5 else f" --window {fraction:.3g}"
        later = _round_up(ARRIVAL_MARGIN * arrival) if known else None
        if later is not None and self.window_start < later <= self.steps // 2:  # half the run or more is left
            at_e1 += f", or start the window later (--window-start {later})"
        return f"use more steps (e.g. --steps {steps}{window}){at_e1}"

    def with_predicted_phases(self, escape: float | None, arrival: float | None) -> SimulationResult:
        """This result with the theory's mean escape and arrival near the floor from its start point
        (iterations; None, or NaN, when the theory has none), which :attr:`stationarity` reports."""

        def iterations(name: str, value: float | None) -> float | None:
            if value is None or (checks.is_number(value) and math.isnan(value)):
                return None
            if not 0 <= checks.real(name, value) < MAX_PREDICTED_ITERATIONS:
                raise ProblemError(f"{name} must be None or a number of iterations in [0, {MAX_PREDICTED_ITERATIONS:g}), "
                                   f"got {value!r}")  # fmt: skip
            return float(value)

        return replace(self, predicted_escape=iterations("escape", escape), predicted_arrival=iterations("arrival", arrival))

    @property
    def final_norm_sq(self) -> Estimate:
        return t_interval(self.norm_sq[~self.diverged, -1], support=(0.0, math.inf))

    @property
    def replicate_steps_per_second(self) -> float:
        """``replicates · steps`` over the wall time of the simulation loop (draws included)."""
        return self.replicates * self.steps / self.elapsed if self.elapsed > 0 else math.inf

    @property
    def measured_max_delay(self) -> int:
        """The largest delay of any update (:attr:`delay_max`; drawn, for constant and i.i.d. delays)."""
        return int(self.delay_max)

    def delay_summary(self) -> dict:
        """The delay model and the delays actually applied."""
        counts = self.delay_counts
        out = {
            "spec": self.problem.delay.spec,
            "model_mean": json_float(self.problem.delay.mean),
            "measured_mean": json_float(float(np.arange(counts.size) @ counts / max(counts.sum(), 1))),
            "measured_max": self.measured_max_delay,
        }
        if not self.problem.delay.is_iid:
            per_replicate = t_interval(self.delay_mean_per_replicate)
            out["measured_mean"] = json_float(per_replicate.mean)
            out["measured_mean_ci"] = [json_float(per_replicate.ci_low), json_float(per_replicate.ci_high)]
            out["staleness_histogram"] = np.trim_zeros(counts, "b").astype(int).tolist()
        return out

    def to_dict(self) -> dict:
        """A JSON-ready summary: the problem, the estimates with 95% CIs, divergence, throughput."""
        return {
            "problem": self.problem.to_dict(),
            "steps": self.steps,
            "replicates": self.replicates,
            "start": self.start,
            "seed": self.seed,
            "window": {"start_iteration": self.window_start, "iterations": self.steps - self.window_start + 1},
            "confidence": f"{CONFIDENCE:.0%} Student-t interval across non-diverged replicates",
            "final_error": self.final_error.to_dict(),
            "stationary_error": self.stationary_error.to_dict(),
            "stationarity": self.stationarity.to_dict(),
            "final_norm_sq": self.final_norm_sq.to_dict(),
            "diverged_fraction": self.diverged_fraction,
            "diverged_replicates": int(self.diverged.sum()),
            "divergence_norm": self.divergence_norm,
            "delay": self.delay_summary(),
            "elapsed_seconds": self.elapsed,
            "replicate_steps_per_second": json_float(self.replicate_steps_per_second),
        }

    def write_netcdf(self, path: str) -> None:
        """Write :meth:`to_xarray` to ``path`` (NetCDF 4, atomically)."""
        from amsgd.core.files import write_netcdf

        write_netcdf(self.to_xarray(), path)

    def to_xarray(self) -> xarray.Dataset:
        """The trajectories as a Dataset with dims ``replicate``, ``iteration``, ``coordinate``, ``delay``."""
        import xarray as xr

        d = self.problem.dim
        data = {
            "error": (("replicate", "iteration"), self.error),
            "norm_sq": (("replicate", "iteration"), self.norm_sq),
            "error_mean": (("iteration",), self.error_mean),
            "alive": (("iteration",), self.alive),
            "diverged": (("replicate",), self.diverged.astype(np.int8)),
            "diverged_at": (("replicate",), self.diverged_at),
            "stationary_error": (("replicate",), self.window_error),
            "stationary_error_first_half": (("replicate",), self.window_halves[:, 0]),
            "stationary_error_second_half": (("replicate",), self.window_halves[:, 1]),
            "delay_mean": (("replicate",), self.delay_mean_per_replicate),
            "delay_counts": (("delay",), self.delay_counts),
            "eigenvalues": (("coordinate",), np.asarray(self.problem.eigenvalues)),
        }
        if self.coordinate_mean is not None:
            data["coordinate_mean"] = (("iteration", "coordinate"), self.coordinate_mean)
            data["coordinate_sq_mean"] = (("iteration", "coordinate"), self.coordinate_sq_mean)
        if self.coordinates is not None:
            data["coordinates"] = (("replicate", "iteration", "coordinate"), self.coordinates)
        ds = xr.Dataset(
            data,
            coords={
                "replicate": np.arange(self.replicates),
                "iteration": self.iterations,
                "coordinate": np.arange(1, d + 1),
                "delay": np.arange(self.delay_counts.size),
            },
        )
        for name, text in DESCRIPTIONS.items():
            if name in ds:  # the coordinate moments are left out of a run that kept none
                ds[name].attrs["description"] = text
        ds.attrs.update(
            problem=json.dumps(self.problem.to_dict()),
            delay=self.problem.delay.spec,
            distribution=self.problem.distribution.spec,
            eta=self.problem.eta,
            mu=self.problem.mu,
            steps=self.steps,
            window_start=self.window_start,
            window_split=self.window_split,
            start=self.start,
            seed=json.dumps(self.seed),
            summary=json.dumps(self.to_dict()),
        )
        return ds


def replicate_summaries(
    coord_sum: np.ndarray, coord_sq: np.ndarray, alive_count: np.ndarray, window_sum: np.ndarray,
    window_first: np.ndarray, diverged_at: np.ndarray, window_start: int, window_split: int, steps: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """The per-record and per-replicate numbers of a result from the kernels' sums: the mean and mean
    square of the coordinates over the replicates alive at each record (NaN where none is; None where
    the sums have no columns, no moments kept), each replicate's time average of the error over the window ``window_start <= k <= steps`` and over its
    halves split at ``window_split`` (NaN for a replicate that diverged)."""
    diverged = diverged_at >= 0
    alive = alive_count.sum(axis=0)
    coordinate_mean = coordinate_sq_mean = None
    with np.errstate(invalid="ignore", divide="ignore"):
        if coord_sum.shape[-1] > 0:
            denom = np.where(alive > 0, alive, 1)[:, None]
            coordinate_mean = np.where(alive[:, None] > 0, coord_sum.sum(axis=0) / denom, np.nan)
            coordinate_sq_mean = np.where(alive[:, None] > 0, coord_sq.sum(axis=0) / denom, np.nan)
        window_error = window_sum / (steps - window_start + 1)
        first = window_first / (window_split - window_start)
        second = (window_sum - window_first) / (steps - window_split + 1)
    window_error[diverged] = first[diverged] = second[diverged] = np.nan
    return {
        "alive": alive, "coordinate_mean": coordinate_mean, "coordinate_sq_mean": coordinate_sq_mean,
        "window_error": window_error, "window_halves": np.stack([first, second], axis=1),
    }  # fmt: skip
