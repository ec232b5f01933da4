"""Monte Carlo simulation of Async-MSGD on streaming PCA, vectorised over replicates.

The algorithm (THEORY.md section 2) is

    v_{k+1} = v_k + μ (v_k − v_{k−1}) + η g(v_{k−τ_k}, X_k),    g(v, X) = (I − v vᵀ) X Xᵀ v,

with a fresh sample X_k, a stale gradient (delay τ_k) and momentum on the current iterates; the
history before time 0 is the start point (``v_{−i} = v_0``, so the first step has no momentum;
this is the paper's ``v_0 = v_1`` with its iterations counted from 1), and ``||v_0|| = 1``.
Because ``g(Qᵀv, QᵀX) = Qᵀ g(v, X)`` for orthogonal Q, the recursion is simulated in the
eigen-coordinates ``h = Qᵀ v`` with the draws ``Y = Qᵀ X`` of :meth:`Distribution.sample`; the
special cases τ = 0 (Sync-MSGD) and μ = 0 (Async-SGD, plain SGD) run through the same code.

Replicates are processed in blocks of :data:`~amsgd.simulate.seeding.BLOCK_SIZE`, each with its
own random stream, and each block in chunks of :func:`chunk_steps` steps. Per block and chunk the
draws are, in this order: the delays' uniforms (i.i.d. delays) or the compute times (event-driven
server), then ``B·K`` samples, row ``b·K + j`` being replicate b at step ``k0 + j``. Before the first
chunk a block draws its random start points, then (event-driven server) the first compute times.
Gaussian samples come instead from one data stream per replicate (:meth:`Distribution.block_sampler`,
:func:`amsgd.ziggurat.replicate_states`): replicate b's samples are its stream's draws in step order,
whatever the chunk length.
Memory is O(B · (τ_max + 2) · d) per block in flight (a ring buffer of past iterates; M copies of
the iterate for an M-worker server) plus the recorded trajectories.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from amsgd.errors import ProblemError
from amsgd.simulate import kernels
from amsgd.simulate.delays import EventDrivenDelay
from amsgd.simulate.queue import draw_compute_times, heapify
from amsgd.simulate.result import SimulationResult
from amsgd.simulate.seeding import (
    BLOCK_SIZE,
    RngLike,
    block_bounds,
    block_data_sequence,
    block_generator,
    describe_seed,
    root_sequence,
)
from amsgd.ziggurat import ReplicateNormals

if TYPE_CHECKING:
    from amsgd.problem import Problem

#: A replicate whose ||v|| exceeds this (or becomes NaN/inf) is declared diverged and frozen.
DIVERGENCE_NORM = 1e6
#: Random numbers per block and chunk of steps that the chunk length aims at (2 MiB of samples).
CHUNK_NUMBERS = 2**18
#: Steps per chunk when the kernels draw the samples themselves (Gaussian data).
KERNEL_CHUNK_STEPS = 1024
#: Samples per piece a kernel draws at a time into its buffer (32 KiB, so they stay in cache); the
#: lane kernel draws at least one step of all its lanes at a time.
SAMPLE_PIECE = 4096
#: Constant and i.i.d. delays run LANES replicates side by side up to this dimension, one replicate
#: at a time above it (where a group's history would no longer stay in cache; see docs/simulate.md).
LANE_MAX_DIM = 24
#: Refuse delays whose stored iterates would exceed this per block of replicates in flight.
MAX_BLOCK_STATE_BYTES = 2 * 2**30
#: Recorded iterations by default (plus iteration 0).
DEFAULT_RECORDS = 100

StartSpec = str | Sequence[float] | np.ndarray


def chunk_steps(dim: int, kernel_samples: bool = False) -> int:
    """Steps per chunk, part of the draw order: K = max(1, CHUNK_NUMBERS // (BLOCK_SIZE · d)), or
    KERNEL_CHUNK_STEPS when the kernels draw the samples (no chunk of samples is then stored, and
    long chunks keep a replicate's recent history in cache).
    """
    return KERNEL_CHUNK_STEPS if kernel_samples else max(1, CHUNK_NUMBERS // (BLOCK_SIZE * dim))


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
    max_norm_sq: float
    keep_coordinates: bool
    server: bool
    tau_const: int
    cdf: np.ndarray
    slots: int
    delay_bins: int

    @property
    def dim(self) -> int:
        return self.problem.dim

    @property
    def chunk(self) -> int:
        return chunk_steps(self.dim, self.problem.distribution.kernel_samples)

    @property
    def lanes(self) -> bool:
        """Whether the lane kernel runs this plan (constant or i.i.d. delays, d <= LANE_MAX_DIM)."""
        return _runs_in_lanes(self.server, self.dim)

    @property
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
    window: float = 0.5,
    window_start: int | None = None,
    coordinates: Literal["moments", "all"] = "moments",
    divergence_norm: float = DIVERGENCE_NORM,
) -> Plan:
    """Validate the simulation options (see :func:`simulate`) and fix the draw layout."""
    from amsgd.problem import Problem

    if not isinstance(problem, Problem):
        raise ProblemError(f"problem must be an amsgd.Problem, got {type(problem).__name__}")
    steps = _positive_int("steps", steps)
    replicates = _positive_int("replicates", replicates)
    if record_every is None:
        record_every = max(1, steps // DEFAULT_RECORDS)
    record_every = _positive_int("record_every", record_every)
    record_at = np.arange(0, steps + 1, record_every, dtype=np.int64)
    if record_at[-1] != steps:
        record_at = np.append(record_at, np.int64(steps))
    if window_start is None:
        if not (isinstance(window, (int, float)) and 0.0 <= window < 1.0):
            raise ProblemError(f"window must be a fraction of the run in [0, 1), got {window!r}")
        window_start = int(math.floor(window * steps))
    elif isinstance(window_start, bool) or not isinstance(window_start, (int, np.integer)) or not 0 <= window_start <= steps:
        raise ProblemError(f"window_start must be an iteration in 0..steps = 0..{steps}, got {window_start!r}")
    if coordinates not in ("moments", "all"):
        raise ProblemError(f"coordinates must be 'moments' or 'all', got {coordinates!r}")
    if not (isinstance(divergence_norm, (int, float)) and 1.0 < divergence_norm < math.inf):
        raise ProblemError(f"divergence_norm must be a finite number > 1, got {divergence_norm!r}")
    start_name, start_h = _start_point(problem, start)

    delay = problem.delay
    server = isinstance(delay, EventDrivenDelay)
    if not server and not delay.is_iid:
        raise ProblemError(f"delay {delay.spec} is neither i.i.d. nor an event-driven server")
    pmf = delay.pmf()
    support = np.flatnonzero(pmf)
    constant = not server and support.size == 1
    tau_const = int(support[0]) if constant else 0
    cdf = np.zeros(0) if server or constant else np.ascontiguousarray(delay.cdf(), dtype=np.float64)
    # history slots: h_{k−max_delay} .. h_k and the one written, at least 3 so that it is never h_{k−1}'s
    slots = 2 if server else max(3, int(pmf.size) + 1)
    # the event-driven histogram keeps the truncated stationary support plus one overflow bin
    delay_bins = int(pmf.size) + 1 if server else int(pmf.size)
    copies = delay.workers + 2 if server else slots
    held = min(replicates, BLOCK_SIZE)
    if _runs_in_lanes(server, problem.dim):  # the lane kernel pads its last group
        held = -(-held // kernels.LANES) * kernels.LANES
    state_bytes = held * copies * problem.dim * 8
    if state_bytes > MAX_BLOCK_STATE_BYTES:
        raise ProblemError(
            f"delay {delay.spec} needs {copies} stored iterates per replicate, "
            f"{state_bytes / 2**30:.1f} GiB per block of {BLOCK_SIZE} replicates "
            f"(limit {MAX_BLOCK_STATE_BYTES / 2**30:.0f} GiB); use a shorter delay or a smaller d"
        )
    return Plan(
        problem=problem,
        steps=steps,
        replicates=replicates,
        root=root_sequence(rng),
        start=start_name,
        start_h=start_h,
        record_at=record_at,
        window_start=int(window_start),
        max_norm_sq=float(divergence_norm) ** 2,
        keep_coordinates=coordinates == "all",
        server=server,
        tau_const=tau_const,
        cdf=cdf,
        slots=slots,
        delay_bins=delay_bins,
    )


def _runs_in_lanes(server: bool, dim: int) -> bool:
    return not server and dim <= LANE_MAX_DIM


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ProblemError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _start_point(problem: Problem, start: StartSpec) -> tuple[str, np.ndarray | None]:
    """``("eJ", e_J)``, ``("random", None)`` or ``("vector", Qᵀ v0/||v0||)``."""
    d = problem.dim
    if isinstance(start, str):
        text = start.strip().lower()
        if text == "random":
            return "random", None
        if text.startswith("e") and text[1:].isdigit() and 1 <= int(text[1:]) <= d:
            h = np.zeros(d)
            h[int(text[1:]) - 1] = 1.0
            return text, h
        try:
            start = [float(part) for part in text.split(",")]
        except ValueError:
            raise ProblemError(
                f"start must be eJ (J in 1..{d}), random, or {d} comma-separated numbers; got {start!r}"
            ) from None
    v = np.asarray(start, dtype=float)
    if v.shape != (d,) or not np.all(np.isfinite(v)) or not np.any(v):
        raise ProblemError(f"start vector must be {d} finite numbers, not all zero; got {np.asarray(start).tolist()!r}")
    v = v / np.linalg.norm(v)
    return "vector:" + ",".join(f"{x:.6g}" for x in v), np.asarray(problem.basis).T @ v


@dataclass
class BlockDraws:
    """The random numbers of one block, in draw order: start points, first compute times, chunks.

    With ``streams`` set (Gaussian data left to the kernels) the chunks carry no samples, shape
    ``(B, K, 0)``; the kernels draw replicate b's from ``streams[b]`` (an SFC64 state, advanced in
    place) as ``scale · z``, the same numbers.
    """

    start: np.ndarray
    first_times: np.ndarray | None
    chunks: Iterator[tuple[int, np.ndarray, np.ndarray]]
    streams: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.uint64))
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))


def block_draws(plan: Plan, block: int, *, samples_in_kernel: bool = False) -> BlockDraws:
    """Draw block ``block``'s random numbers; ``chunks`` yields ``(k0, y[B, K, d], aux[B, K])``.

    ``aux`` holds the uniforms of i.i.d. delays, the compute times of the event-driven server, or
    nothing (shape ``(B, 0)``) for a constant delay. With ``samples_in_kernel`` Gaussian samples are
    not drawn here but left to the kernels (see :class:`BlockDraws`).
    """
    lo, hi = plan.blocks[block]
    n = hi - lo
    rng = block_generator(plan.root, block)
    lam = np.asarray(plan.problem.eigenvalues)
    basis = np.asarray(plan.problem.basis)
    if plan.start_h is None:
        z = rng.standard_normal((n, plan.dim))
        start = z / np.linalg.norm(z, axis=1, keepdims=True)
    else:
        start = np.broadcast_to(plan.start_h, (n, plan.dim)).copy()
    delay = plan.problem.delay
    sample = plan.problem.distribution.block_sampler(rng, block_data_sequence(plan.root, block), n, lam, basis)
    first = draw_compute_times(rng, delay.compute, delay.sigma, (n, delay.workers)) if plan.server else None

    in_kernel = samples_in_kernel and plan.problem.distribution.kernel_samples
    if in_kernel and not isinstance(sample, ReplicateNormals):
        raise TypeError(f"{plan.problem.distribution!r} has kernel_samples but no ReplicateNormals sampler")

    def chunks() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        empty = np.zeros((n, 0))
        for k0 in range(0, plan.steps, plan.chunk):
            k = min(plan.chunk, plan.steps - k0)
            if plan.server:
                aux = draw_compute_times(rng, delay.compute, delay.sigma, (n, k))
            elif plan.cdf.size:
                aux = rng.random((n, k))
            else:
                aux = empty
            if in_kernel:
                yield k0, np.empty((n, k, 0)), aux
            else:
                yield k0, np.ascontiguousarray(sample(n * k), dtype=np.float64).reshape(n, k, plan.dim), aux

    if in_kernel:
        return BlockDraws(start, first, chunks(), sample.states, sample.scale)
    return BlockDraws(start, first, chunks())


class _Outputs:
    """Result arrays shared by the blocks; each block writes its own rows or its own slot."""

    def __init__(self, plan: Plan) -> None:
        r, n_rec, d, n_blocks = plan.replicates, plan.record_at.size, plan.dim, len(plan.blocks)
        self.error = np.full((r, n_rec), np.nan)
        self.norm_sq = np.full((r, n_rec), np.nan)
        self.coords = np.full((r, n_rec, d), np.nan) if plan.keep_coordinates else np.zeros((0, 0, 0))
        self.coord_sum = np.zeros((n_blocks, n_rec, d))
        self.coord_sq = np.zeros((n_blocks, n_rec, d))
        self.alive_count = np.zeros((n_blocks, n_rec), dtype=np.int64)
        self.diverged_at = np.full(r, -1, dtype=np.int64)
        self.window_sum = np.zeros(r)
        self.delay_counts = np.zeros((n_blocks, plan.delay_bins), dtype=np.int64)
        self.delay_sum = np.zeros(r, dtype=np.int64)
        self.delay_max = np.zeros((n_blocks, 1), dtype=np.int64)


def _replicate_buffer(plan: Plan, draws: BlockDraws) -> np.ndarray:
    """The buffer a per-replicate kernel draws one replicate's samples into, SAMPLE_PIECE numbers at a time."""
    if not draws.streams.size:
        return np.empty((1, 0, 0))
    return np.empty((1, min(plan.chunk, max(1, SAMPLE_PIECE // plan.dim)), plan.dim))


def _lane_buffer(plan: Plan) -> np.ndarray:
    """The lane kernel's samples buffer ``[step, i, lane]``: SAMPLE_PIECE numbers, at least one step."""
    return np.empty((min(plan.chunk, max(1, SAMPLE_PIECE // (plan.dim * kernels.LANES))), plan.dim, kernels.LANES))


class _Workspace:
    """Arrays reused from block to block by one task, so that a long history is allocated (and
    its pages touched) once per task rather than once per block."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    def empty(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        key = (name, shape)
        if key not in self._arrays:
            self._arrays[key] = np.empty(shape)
        return self._arrays[key]


def _history(workspace: _Workspace, start: np.ndarray, slots: int) -> np.ndarray:
    """A ring ``[..., slot, ...]`` (slot axis 1) holding ``start`` in slots 0 and ``slots − 1``, the
    only ones read before they are written (``kernels._stale_slot``)."""
    ring = workspace.empty("ring", (start.shape[0], slots) + start.shape[1:])
    ring[:, 0] = start
    ring[:, slots - 1] = start
    return ring


def _run_block(plan: Plan, block: int, out: _Outputs, advance, workspace: _Workspace | None = None) -> None:
    workspace = workspace or _Workspace()
    lo, hi = plan.blocks[block]
    n = hi - lo
    draws = block_draws(plan, block, samples_in_kernel=True)
    h0 = draws.start
    error, norm_sq = out.error[lo:hi], out.norm_sq[lo:hi]
    coords = out.coords[lo:hi] if plan.keep_coordinates else out.coords
    coord_sum, coord_sq, alive_count = out.coord_sum[block], out.coord_sq[block], out.alive_count[block]
    err0 = 1.0 - h0[:, 0] ** 2
    error[:, 0], norm_sq[:, 0] = err0, 1.0
    coord_sum[0], coord_sq[0], alive_count[0] = h0.sum(axis=0), (h0**2).sum(axis=0), n
    if plan.keep_coordinates:
        coords[:, 0] = h0
    window_sum = out.window_sum[lo:hi]
    if plan.window_start == 0:
        window_sum += err0
    alive = np.ones(n, dtype=np.bool_)
    diverged_at, delay_sum = out.diverged_at[lo:hi], out.delay_sum[lo:hi]
    delay_counts, delay_max = out.delay_counts[block], out.delay_max[block]
    eta, mu = float(plan.problem.eta), float(plan.problem.mu)
    common_tail = (
        plan.record_at, error, norm_sq, coords, coord_sum, coord_sq, alive_count,
        alive, diverged_at, plan.window_start, window_sum, delay_counts, delay_sum,
    )  # fmt: skip
    if plan.server:
        own = _replicate_buffer(plan, draws)
        workers = plan.problem.delay.workers
        pair = np.repeat(h0[:, None, :], 2, axis=1)
        copies = np.repeat(h0[:, None, :], workers, axis=1)
        heap_times = np.ascontiguousarray(draws.first_times, dtype=np.float64)
        heap_workers = np.tile(np.arange(workers, dtype=np.int64), (n, 1))
        for b in range(n):
            heapify(heap_times[b], heap_workers[b])
        read_version = np.zeros((n, workers), dtype=np.int64)
        for k0, y, aux in draws.chunks:
            kernels.advance_server(
                pair, copies, heap_times, heap_workers, read_version, y, draws.streams, draws.scale,
                own, aux, k0, eta, mu,
                plan.max_norm_sq, *common_tail, delay_max,
            )  # fmt: skip
            advance(n * y.shape[1])
    elif plan.lanes:
        lanes = kernels.LANES
        n_groups = -(-n // lanes)
        # lane-major history; lanes past the block's end hold e_1, a fixed point with zero samples
        padded = np.zeros((n_groups * lanes, plan.dim))
        padded[:, 0] = 1.0
        padded[:n] = h0
        ring = _history(workspace, padded.reshape(n_groups, lanes, plan.dim).transpose(0, 2, 1), plan.slots)
        buf = _lane_buffer(plan)
        stale = np.empty((1, plan.dim, lanes))
        s, nsq, window, live = (np.empty(lanes) for _ in range(4))
        for k0, y, aux in draws.chunks:
            kernels.advance_lanes(
                ring, y, draws.streams, draws.scale, buf, stale, s, nsq, window, live, aux, plan.cdf,
                plan.tau_const, k0, eta, mu, plan.max_norm_sq, *common_tail,
            )  # fmt: skip
            advance(n * y.shape[1])
    else:
        own = _replicate_buffer(plan, draws)
        ring = _history(workspace, h0, plan.slots)
        for k0, y, aux in draws.chunks:
            kernels.advance_replicates(
                ring, y, draws.streams, draws.scale, own, aux, plan.cdf, plan.tau_const,
                k0, eta, mu, plan.max_norm_sq, *common_tail,
            )  # fmt: skip
            advance(n * y.shape[1])


def simulate(
    problem: Problem,
    steps: int,
    replicates: int,
    *,
    rng: RngLike = None,
    record_every: int | None = None,
    start: StartSpec = "e2",
    window: float = 0.5,
    window_start: int | None = None,
    coordinates: Literal["moments", "all"] = "moments",
    divergence_norm: float = DIVERGENCE_NORM,
    threads: int = 1,
    chunk_blocks: int | None = None,
    progress: bool | None = None,
) -> SimulationResult:
    """Simulate ``replicates`` independent runs of ``steps`` Async-MSGD updates.

    Parameters
    ----------
    problem
        Σ, the data distribution, η, μ and the delay model.
    steps, replicates
        Positive integers: iterations per run and the number of independent runs R.
    rng
        SPEC 7: a seed, a ``SeedSequence``, a ``Generator`` (consumed once for 128 bits of
        entropy) or None (fresh entropy). Replicate block b uses the b-th spawned child stream,
        so the results do not depend on ``threads`` or ``chunk_blocks``.
    record_every
        Record every this many iterations (default ``steps // 100``); 0 and ``steps`` always are.
    start
        ``v_0``: ``"e2"`` (default, the worst saddle, so the run shows escape, travel and
        convergence), any ``"eJ"``, ``"random"`` (uniform on the sphere, independently per
        replicate), or a vector in the original coordinates (normalised).
    window, window_start
        The stationary error is each replicate's time average of the error over
        ``window_start <= k <= steps``; by default ``window_start = floor(window · steps)``
        with ``window = 0.5``.
    coordinates
        ``"moments"`` keeps the mean of ``h`` and of ``h²`` over replicates per recorded iteration;
        ``"all"`` also keeps every replicate's ``h`` (``R · n_records · d`` numbers).
    divergence_norm
        A replicate with ``||v|| > divergence_norm`` or a NaN/inf is frozen and excluded.
    threads, chunk_blocks
        Blocks of replicates run on ``threads`` threads, ``chunk_blocks`` whole blocks per task.
    progress
        A tqdm bar over replicate-steps; None shows it only when stderr is a terminal.
    """
    plan = make_plan(
        problem, steps, replicates, rng=rng, record_every=record_every, start=start, window=window,
        window_start=window_start, coordinates=coordinates, divergence_norm=divergence_norm,
    )  # fmt: skip
    threads = _positive_int("threads", threads)
    n_blocks = len(plan.blocks)
    if chunk_blocks is None:
        chunk_blocks = max(1, math.ceil(n_blocks / threads))
    chunk_blocks = _positive_int("chunk_blocks", chunk_blocks)
    tasks = [range(i, min(i + chunk_blocks, n_blocks)) for i in range(0, n_blocks, chunk_blocks)]
    out = _Outputs(plan)
    warm_up()

    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=plan.replicates * plan.steps, unit="rs", unit_scale=True, desc="simulate", file=sys.stderr)
    lock = threading.Lock()

    def advance(n: int) -> None:
        if bar is not None:
            with lock:
                bar.update(n)

    def run_task(blocks: range) -> None:
        workspace = _Workspace()
        with np.errstate(all="ignore"):  # per thread: errstate does not cross threads
            for block in blocks:
                _run_block(plan, block, out, advance, workspace)

    began = time.perf_counter()
    try:
        if threads == 1:
            for task in tasks:
                run_task(task)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(run_task, tasks))
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - began
    return _assemble(plan, out, elapsed)


def _assemble(plan: Plan, out: _Outputs, elapsed: float) -> SimulationResult:
    diverged = out.diverged_at >= 0
    alive = out.alive_count.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(alive > 0, alive, 1)[:, None]
        coord_mean = np.where(alive[:, None] > 0, out.coord_sum.sum(axis=0) / denom, np.nan)
        coord_sq_mean = np.where(alive[:, None] > 0, out.coord_sq.sum(axis=0) / denom, np.nan)
        window_error = out.window_sum / (plan.steps - plan.window_start + 1)
        window_error[diverged] = np.nan
        applied = np.where(diverged, out.diverged_at, plan.steps)
        delay_mean = out.delay_sum / applied
    return SimulationResult(
        problem=plan.problem,
        steps=plan.steps,
        iterations=plan.record_at.copy(),
        error=out.error,
        norm_sq=out.norm_sq,
        coordinate_mean=coord_mean,
        coordinate_sq_mean=coord_sq_mean,
        alive=alive,
        coordinates=out.coords if plan.keep_coordinates else None,
        diverged_at=out.diverged_at,
        window_start=plan.window_start,
        window_error=window_error,
        delay_counts=out.delay_counts.sum(axis=0),
        delay_mean_per_replicate=delay_mean,
        delay_max=int(out.delay_max.max()),
        start=plan.start,
        seed=describe_seed(plan.root),
        divergence_norm=math.sqrt(plan.max_norm_sq),
        elapsed=elapsed,
    )


def draw_only(
    problem: Problem, steps: int, replicates: int, *, rng: RngLike = None, start: StartSpec = "e2"
) -> int:
    """Make exactly the draws :func:`simulate` makes, and nothing else; returns how many blocks.

    This is the floor the simulator is measured against in ``benchmarks/bench_simulate.py``. Samples
    that the kernels draw themselves are drawn here the same way, by the same code: lane by lane (or
    replicate by replicate), in pieces, into the same cache-sized buffer.
    """
    plan = make_plan(problem, steps, replicates, rng=rng, start=start)
    for block in range(len(plan.blocks)):
        draws = block_draws(plan, block, samples_in_kernel=True)
        alive = np.ones(len(draws.start), dtype=np.bool_)
        buf = _lane_buffer(plan) if plan.lanes else _replicate_buffer(plan, draws)
        for _, y, _ in draws.chunks:
            if not draws.streams.size:
                continue
            if plan.lanes:
                kernels.draw_lanes(draws.streams, draws.scale, y, buf, alive, y.shape[1])
            else:
                kernels.draw_replicates(draws.streams, draws.scale, buf, y.shape[1])
    return len(plan.blocks)


_compiled = False


def warm_up() -> None:
    """Compile (or load from the numba cache) the kernels once, outside any timing."""
    global _compiled
    if _compiled:
        return
    from amsgd.problem import Problem
    from amsgd.simulate.delays import ConstantDelay

    for delay, dim in ((ConstantDelay(1), 2), (ConstantDelay(1), LANE_MAX_DIM + 1), (EventDrivenDelay(2), 2)):
        plan = make_plan(Problem.from_spectrum(np.linspace(2.0, 1.0, dim), delay=delay), 2, 1, rng=0)
        _run_block(plan, 0, _Outputs(plan), lambda n: None)
    _compiled = True
