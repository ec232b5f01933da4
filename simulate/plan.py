"""The plan of a simulation: the problem in eigen-coordinates, the options checked, the draw layout.

:func:`make_plan` validates every option of :func:`amsgd.simulate.simulate` once and fixes what
the blocks of replicates need: the recording grid, the averaging window, the start point, the
delay law in the form the kernels use (a constant, or the cumulative law of an i.i.d. delay, or
the event-driven server) and the size of the ring of past iterates.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from amsgd.core import checks
from amsgd.core.delays import EventDrivenDelay, cumulative
from amsgd.core.distributions import Distribution, Gaussian
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.core.seeding import RngLike, root_sequence
from amsgd.simulate.seeding import BLOCK_SIZE, block_bounds

#: The stationary window starts at this fraction of the steps unless a window or its first iteration is given.
DEFAULT_WINDOW = 0.5

#: Replicates advanced side by side by the lane kernel (a block's last group is padded).
LANES = 64
#: A replicate whose ||v|| exceeds this (or becomes NaN/inf) is declared diverged and frozen.
DIVERGENCE_NORM = 1e6
#: Random numbers per block and chunk of steps that the chunk length aims at (2 MiB of samples).
CHUNK_NUMBERS = 2**18
#: Steps per chunk when the kernels draw the samples themselves (Gaussian data).
KERNEL_CHUNK_STEPS = 1024
#: Constant and i.i.d. delays run LANES replicates side by side up to this dimension, one replicate
#: at a time above it (where a group's history would no longer stay in cache; see docs/simulate.md).
LANE_MAX_DIM = 24
#: Refuse delays whose stored iterates would exceed this per block of replicates in flight.
MAX_BLOCK_STATE_BYTES = 2 * 2**30
#: Recorded iterations by default (plus iteration 0).
DEFAULT_RECORDS = 100

StartSpec = str | Sequence[float] | np.ndarray
#: What a run keeps of the eigen-coordinates (:func:`amsgd.simulate.simulate`, ``coordinates``).
CoordinatesSpec = Literal["moments", "all", "none"]


def kernel_samples(distribution: Distribution) -> bool:
    """True when the kernels draw this distribution's samples themselves (Gaussian data)."""
    return isinstance(distribution, Gaussian)


def chunk_steps(dim: int, samples_in_kernel: bool = False) -> int:
    """Steps per chunk, part of the draw order: K = max(1, CHUNK_NUMBERS // (BLOCK_SIZE · d)), or
    KERNEL_CHUNK_STEPS when the kernels draw the samples (no chunk of samples is then stored, and
    long chunks keep a replicate's recent history in cache).
    """
    return KERNEL_CHUNK_STEPS if samples_in_kernel else max(1, CHUNK_NUMBERS // (BLOCK_SIZE * dim))


@dataclass(frozen=True)
class DelayLayout:
    """The delay as the kernels see it: the event-driven server, a constant τ, or the cumulative law
    of an i.i.d. delay; ``slots`` iterates of history; ``bins`` of the histogram of applied delays."""

    server: bool
    tau_const: int
    cdf: np.ndarray
    slots: int
    bins: int


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything a block needs, validated: the problem in eigen-coordinates and the bookkeeping."""

    problem: Problem
    steps: int
    replicates: int
    root: np.random.SeedSequence
    start: str
    start_h: np.ndarray | None
    record_at: np.ndarray
    window_start: int
    divergence_norm: float
    coordinates: CoordinatesSpec
    delay: DelayLayout

    @property
    def dim(self) -> int:
        return self.problem.dim

    @property
    def keep_coordinates(self) -> bool:
        """Every replicate's h at every recording (``coordinates="all"``)."""
        return self.coordinates == "all"

    @property
    def keep_moments(self) -> bool:
        """The coordinates' mean and mean square at every recording (all but ``coordinates="none"``)."""
        return self.coordinates != "none"

    @property
    def max_norm_sq(self) -> float:
        """``divergence_norm²``, the kernels' test; inf past 1.3e154, where only a non-finite norm diverges."""
        return self.divergence_norm * self.divergence_norm

    @property
    def server(self) -> bool:
        return self.delay.server

    @property
    def chunk(self) -> int:
        return chunk_steps(self.dim, kernel_samples(self.problem.distribution))

    @property
    def lanes(self) -> bool:
        """Whether the lane kernel runs this plan (constant or i.i.d. delays, d <= LANE_MAX_DIM)."""
        return runs_in_lanes(self.server, self.dim)

    @cached_property
    def blocks(self) -> list[tuple[int, int]]:
        return block_bounds(self.replicates)


def make_plan(
    problem: Problem,
    steps: int,
    replicates: int,
    *,
    rng: RngLike = None,
    record_every: int | None = None,
    start: StartSpec = "e2",
    window: float | None = None,
    window_start: int | None = None,
    coordinates: CoordinatesSpec = "moments",
    divergence_norm: float = DIVERGENCE_NORM,
) -> Plan:
    """Validate the simulation options (see :func:`amsgd.simulate.simulate`) and fix the draw layout."""
    if not isinstance(problem, Problem):
        raise ProblemError(f"problem must be an amsgd.Problem, got {type(problem).__name__}")
    steps = checks.positive_int("steps", steps)
    replicates = checks.positive_int("replicates", replicates)
    if coordinates not in ("moments", "all", "none"):
        raise ProblemError(f"coordinates must be 'moments', 'all' or 'none', got {coordinates!r}")
    if not (checks.is_number(divergence_norm) and 1.0 < divergence_norm < math.inf):
        raise ProblemError(f"divergence_norm must be a finite number > 1, got {divergence_norm!r}")
    start_name, start_h = start_point(problem, start)
    layout = delay_layout(problem, replicates)
    every = recording_interval(steps, record_every)
    check_result_memory(replicates, steps // every + 1 + (steps % every > 0), problem.dim, coordinates)
    record_at = recording_grid(steps, every)
    return Plan(
        problem=problem,
        steps=steps,
        replicates=replicates,
        root=root_sequence(rng),
        start=start_name,
        start_h=start_h,
        record_at=record_at,
        window_start=averaging_start(steps, window, window_start),
        divergence_norm=float(divergence_norm),
        coordinates=coordinates,
        delay=layout,
    )


def recording_grid(steps: int, record_every: int | None) -> np.ndarray:
    """Every ``record_every`` iterations (default ``steps // 100``), 0 and ``steps`` always."""
    record_every = recording_interval(steps, record_every)
    record_at = np.arange(0, steps + 1, record_every, dtype=np.int64)
    return record_at if record_at[-1] == steps else np.append(record_at, np.int64(steps))


def recording_interval(steps: int, record_every: int | None) -> int:
    """``record_every`` checked, or the default ``max(1, steps // 100)``."""
    if record_every is None:
        return max(1, steps // DEFAULT_RECORDS)
    return checks.positive_int("record_every", record_every)


def check_result_memory(replicates: int, records: int, dim: int, coordinates: CoordinatesSpec) -> None:
    """Refuse a run whose recorded arrays would not fit in this machine's memory: the error and
    ``||h||²`` of every replicate at every recording (``16 R n`` bytes), every replicate's h with
    ``coordinates="all"`` (``8 R n d``) and the coordinate moments per block of replicates."""
    blocks = -(-replicates // BLOCK_SIZE)
    nbytes = 16 * replicates * records
    if coordinates == "all":
        nbytes += 8 * replicates * records * dim
    if coordinates != "none":
        nbytes += 16 * blocks * records * dim
    memory = physical_memory()
    if memory is not None and nbytes > memory:
        raise ProblemError(
            f"the recorded results of {replicates} replicates at {records} recordings need {nbytes / 2**30:.1f} GiB, "
            f"more than this machine's {memory / 2**30:.1f} GiB; record less often (--record-every, or "
            "record_every in Python), run fewer replicates, or keep no coordinates (--coordinates none, "
            "coordinates='none')"
        )


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def averaging_start(steps: int, window: float | None, window_start: int | None) -> int:
    """The first iteration of the stationary window: ``window_start``, or ``floor(window · steps)``
    (``window`` :data:`DEFAULT_WINDOW` where neither is given; giving both is refused)."""
    fraction = checks.window_fraction(DEFAULT_WINDOW if window is None else window)
    if window is not None and window_start is not None:
        raise ProblemError(f"give window (a fraction of the steps) or window_start (an iteration), not both: got "
                           f"window={window!r} and window_start={window_start!r}")  # fmt: skip
    if window_start is None:
        return checks.window_first(fraction, steps)
    if not checks.is_whole_number(window_start) or not 0 <= window_start <= steps:
        raise ProblemError(f"window_start must be an iteration in 0..steps = 0..{steps}, got {window_start!r}")
    return int(window_start)


def delay_layout(problem: Problem, replicates: int) -> DelayLayout:
    """The kernels' view of ``problem.delay``, refusing a history too large to hold."""
    delay = problem.delay
    server = isinstance(delay, EventDrivenDelay)
    if not server and not delay.is_iid:
        raise ProblemError(f"delay {delay.spec} is neither i.i.d. nor an event-driven server")
    pmf = delay.pmf()
    support = np.flatnonzero(pmf)
    constant = not server and support.size == 1
    cdf = np.zeros(0) if server or constant else np.ascontiguousarray(cumulative(pmf), dtype=np.float64)
    # history slots: h_{k−max_delay} .. h_k and the one written, at least 3 so that it is never h_{k−1}'s
    slots = 2 if server else max(3, int(pmf.size) + 1)
    copies = delay.workers + 2 if server else slots
    held = min(replicates, BLOCK_SIZE)
    if runs_in_lanes(server, problem.dim):  # the lane kernel pads its last group
        held = -(-held // LANES) * LANES
    state_bytes = held * copies * problem.dim * 8
    if state_bytes > MAX_BLOCK_STATE_BYTES:
        raise ProblemError(
            f"delay {delay.spec} needs {copies} stored iterates per replicate, "
            f"{state_bytes / 2**30:.1f} GiB per block of {held} replicates "
            f"(limit {MAX_BLOCK_STATE_BYTES / 2**30:.0f} GiB); use a shorter delay or a smaller d"
        )
    # the event-driven histogram keeps the truncated stationary support plus one overflow bin
    bins = int(pmf.size) + 1 if server else int(pmf.size)
    return DelayLayout(server, int(support[0]) if constant else 0, cdf, slots, bins)


def runs_in_lanes(server: bool, dim: int) -> bool:
    """The lane kernel runs constant and i.i.d. delays up to :data:`LANE_MAX_DIM`."""
    return not server and dim <= LANE_MAX_DIM


def start_point(problem: Problem, start: StartSpec) -> tuple[str, np.ndarray | None]:
    """``("eJ", e_J)``, ``("random", None)`` or ``("vector:...", Qᵀ v0/||v0||)``."""
    d = problem.dim
    if isinstance(start, str):
        text = start.strip().lower()
        if text == "random":
            return "random", None
        index = text[1:]
        if text.startswith("e") and index.isascii() and index.isdigit() and 1 <= int(index) <= d:
            h = np.zeros(d)
            h[int(index) - 1] = 1.0
            return f"e{int(index)}", h  # e02 is e2
        try:
            start = [float(part) for part in text.split(",")]
        except ValueError:
            raise ProblemError(
                f"start must be eJ (J in 1..{d}), random, or {d} comma-separated numbers; got {start!r}"
            ) from None
    v = checks.real_array("start", start)
    if v.shape != (d,) or not np.all(np.isfinite(v)) or not np.any(v):
        raise ProblemError(f"start vector must be {d} finite numbers, not all zero; got {np.asarray(start).tolist()!r}")
    with np.errstate(over="ignore", under="ignore"):
        norm = np.linalg.norm(v)
    if not 1e-150 < norm < 1e150:  # entries such as 1e300 or 1e-200: the norm over- or underflows
        v = v / np.abs(v).max()
        norm = np.linalg.norm(v)
    v = v / norm
    return "vector:" + ",".join(f"{x:.6g}" for x in v), problem.to_eigen(v)
