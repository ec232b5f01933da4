"""Monte Carlo simulation of Async-MSGD on streaming PCA, vectorised over replicates.

The algorithm (docs/theory.md) is

    v_{k+1} = v_k + μ (v_k − v_{k−1}) + η g(v_{k−τ_k}, X_k),    g(v, X) = (I − v vᵀ) X Xᵀ v,

with a fresh sample X_k, a stale gradient (delay τ_k) and momentum on the current iterates; the
history before time 0 is the start point (``v_{−i} = v_0``, so the first step has no momentum;
this is the paper's ``v_0 = v_1`` with its iterations counted from 1), and ``||v_0|| = 1``.
Because ``g(Qᵀv, QᵀX) = Qᵀ g(v, X)`` for orthogonal Q, the recursion is simulated in the
eigen-coordinates ``h = Qᵀ v`` with the draws ``Y = Qᵀ X``; the special cases τ = 0 (Sync-MSGD)
and μ = 0 (Async-SGD, plain SGD) run through the same code.

Replicates are processed in blocks of :data:`~amsgd.simulate.seeding.BLOCK_SIZE`, each with its
own random stream (:mod:`amsgd.simulate.draws` states the draw order), and each block in chunks
of :func:`~amsgd.simulate.plan.chunk_steps` steps advanced by the compiled kernels of
:mod:`amsgd.simulate.kernels`. Memory is O(B · (τ_max + 2) · d) per block in flight (a ring buffer
of past iterates; M copies of the iterate for an M-worker server) plus the recorded trajectories.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import numpy as np

from amsgd.core import checks
from amsgd.core.angles import sin2_error
from amsgd.core.delays import ConstantDelay, DelayModel, EventDrivenDelay
from amsgd.core.problem import Problem
from amsgd.core.progress import counter
from amsgd.core.seeding import RngLike, describe_seed
from amsgd.core.stationarity import window_split
from amsgd.core.threads import stoppable, thread_map
from amsgd.simulate import kernels
from amsgd.simulate.draws import BlockDraws, block_draws
from amsgd.simulate.plan import DIVERGENCE_NORM, LANE_MAX_DIM, CoordinatesSpec, Plan, StartSpec, make_plan
from amsgd.simulate.queue import heapify
from amsgd.simulate.result import SimulationResult, replicate_summaries

#: Samples per piece a kernel draws at a time into its buffer (32 KiB, so they stay in cache); the
#: lane kernel draws at least one step of all its lanes at a time.
SAMPLE_PIECE = 4096

Advance = Callable[[int], None]


class Outputs:
    """Result arrays shared by the blocks; each block writes its own rows or its own slot."""

    def __init__(self, plan: Plan) -> None:
        r, n_rec, d, n_blocks = plan.replicates, plan.record_at.size, plan.dim, len(plan.blocks)
        self.plan = plan
        self.error = np.full((r, n_rec), np.nan)
        self.norm_sq = np.full((r, n_rec), np.nan)
        self.coords = np.full((r, n_rec, d), np.nan) if plan.keep_coordinates else np.zeros((0, 0, 0))
        # no columns without the moments: the kernels' loops over them then do nothing
        width = d if plan.keep_moments else 0
        self.coord_sum = np.zeros((n_blocks, n_rec, width))
        self.coord_sq = np.zeros((n_blocks, n_rec, width))
        self.alive_count = np.zeros((n_blocks, n_rec), dtype=np.int64)
        self.diverged_at = np.full(r, -1, dtype=np.int64)
        self.window_sum = np.zeros(r)
        self.window_first = np.zeros(r)
        self.window_split = window_split(plan.window_start, plan.steps)
        self.delay_counts = np.zeros((n_blocks, plan.delay.bins), dtype=np.int64)
        self.delay_sum = np.zeros(r, dtype=np.int64)
        self.delay_max = np.zeros((n_blocks, 1), dtype=np.int64)

    def records(self, block: int) -> kernels.Records:
        """Block ``block``'s view of the recorded arrays."""
        lo, hi = self.plan.blocks[block]
        coords = self.coords[lo:hi] if self.plan.keep_coordinates else self.coords
        return kernels.Records(
            self.plan.record_at, self.error[lo:hi], self.norm_sq[lo:hi], coords,
            self.coord_sum[block], self.coord_sq[block], self.alive_count[block],
        )  # fmt: skip

    def tally(self, block: int) -> kernels.Tally:
        """Block ``block``'s bookkeeping, every replicate alive."""
        lo, hi = self.plan.blocks[block]
        return kernels.Tally(
            np.ones(hi - lo, dtype=np.bool_), self.diverged_at[lo:hi], self.plan.window_start,
            self.window_sum[lo:hi], self.delay_counts[block], self.delay_sum[lo:hi], self.delay_max[block],
            self.window_split, self.window_first[lo:hi],
        )  # fmt: skip


def _replicate_buffer(plan: Plan, draws: BlockDraws) -> np.ndarray:
    """The buffer a per-replicate kernel draws one replicate's samples into, SAMPLE_PIECE numbers at a time."""
    if not draws.streams.size:
        return np.empty((1, 0, 0))
    return np.empty((1, min(plan.chunk, max(1, SAMPLE_PIECE // plan.dim)), plan.dim))


def _lane_buffer(plan: Plan) -> np.ndarray:
    """The lane kernel's samples buffer ``[step, i, lane]``: SAMPLE_PIECE numbers, at least one step."""
    return np.empty((min(plan.chunk, max(1, SAMPLE_PIECE // (plan.dim * kernels.LANES))), plan.dim, kernels.LANES))


class Workspace:
    """Arrays reused from block to block by one task, so that a long history is allocated (and
    its pages touched) once per task rather than once per block."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    def empty(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        key = (name, shape)
        if key not in self._arrays:
            self._arrays[key] = np.empty(shape)
        return self._arrays[key]


def _history(workspace: Workspace, start: np.ndarray, slots: int) -> np.ndarray:
    """A ring ``[..., slot, ...]`` (slot axis 1) holding ``start`` in slots 0 and ``slots − 1``, the
    only ones read before they are written (``kernels._stale_slot``)."""
    ring = workspace.empty("ring", (start.shape[0], slots) + start.shape[1:])
    ring[:, 0] = start
    ring[:, slots - 1] = start
    return ring


def _record_start(plan: Plan, rec: kernels.Records, tally: kernels.Tally, h0: np.ndarray) -> None:
    """Iteration 0: every replicate at its start point, ``||h_0|| = 1``."""
    err0 = sin2_error(h0)
    rec.error[:, 0], rec.norm_sq[:, 0] = err0, 1.0
    rec.alive_count[0] = h0.shape[0]
    if plan.keep_moments:
        rec.coord_sum[0], rec.coord_sq[0] = h0.sum(axis=0), (h0**2).sum(axis=0)
    if plan.keep_coordinates:
        rec.coords[:, 0] = h0
    if plan.window_start == 0:
        tally.window_sum[:] += err0


def run_block(plan: Plan, block: int, out: Outputs, advance: Advance, workspace: Workspace | None = None) -> None:
    """Simulate replicate block ``block`` of ``plan`` into ``out``, reporting replicate-steps to ``advance``."""
    draws = block_draws(plan, block, samples_in_kernel=True)
    rec, tally = out.records(block), out.tally(block)
    _record_start(plan, rec, tally, draws.start)
    if plan.server:
        _run_server(plan, draws, rec, tally, advance)
    elif plan.lanes:
        _run_lanes(plan, draws, rec, tally, advance, workspace or Workspace())
    else:
        _run_replicates(plan, draws, rec, tally, advance, workspace or Workspace())


def _step(plan: Plan, k0: int) -> kernels.Step:
    return kernels.Step(k0, float(plan.problem.eta), float(plan.problem.mu), plan.max_norm_sq)


def _delays(plan: Plan, uniforms: np.ndarray) -> kernels.Delays:
    return kernels.Delays(uniforms, plan.delay.cdf, plan.delay.tau_const)


def _run_server(plan: Plan, draws: BlockDraws, rec, tally, advance: Advance) -> None:
    h0 = draws.start
    n, workers = h0.shape[0], plan.problem.delay.workers
    server = kernels.Server(
        np.repeat(h0[:, None, :], 2, axis=1), np.repeat(h0[:, None, :], workers, axis=1),
        np.ascontiguousarray(draws.first_times, dtype=np.float64),
        np.tile(np.arange(workers, dtype=np.int64), (n, 1)), np.zeros((n, workers), dtype=np.int64),
    )  # fmt: skip
    for b in range(n):
        heapify(server.heap_times[b], server.heap_workers[b])
    own = _replicate_buffer(plan, draws)
    for k0, y, compute_times in draws.chunks:
        samples = kernels.Samples(y, draws.streams, draws.scale, own)
        kernels.advance_server(server, samples, compute_times, _step(plan, k0), rec, tally)
        advance(n * y.shape[1])


def _run_lanes(plan: Plan, draws: BlockDraws, rec, tally, advance: Advance, workspace: Workspace) -> None:
    h0 = draws.start
    n, lanes = h0.shape[0], kernels.LANES
    n_groups = -(-n // lanes)
    # lane-major history; lanes past the block's end hold e_1, a fixed point with zero samples
    padded = np.zeros((n_groups * lanes, plan.dim))
    padded[:, 0] = 1.0
    padded[:n] = h0
    ring = _history(workspace, padded.reshape(n_groups, lanes, plan.dim).transpose(0, 2, 1), plan.delay.slots)
    buf = _lane_buffer(plan)
    scratch = kernels.LaneScratch(np.empty((1, plan.dim, lanes)), *(np.empty(lanes) for _ in range(4)))
    for k0, y, uniforms in draws.chunks:
        samples = kernels.Samples(y, draws.streams, draws.scale, buf)
        kernels.advance_lanes(ring, samples, _delays(plan, uniforms), _step(plan, k0), rec, tally, scratch)
        advance(n * y.shape[1])


def _run_replicates(plan: Plan, draws: BlockDraws, rec, tally, advance: Advance, workspace: Workspace) -> None:
    n = draws.start.shape[0]
    own = _replicate_buffer(plan, draws)
    ring = _history(workspace, draws.start, plan.delay.slots)
    for k0, y, uniforms in draws.chunks:
        samples = kernels.Samples(y, draws.streams, draws.scale, own)
        kernels.advance_replicates(ring, samples, _delays(plan, uniforms), _step(plan, k0), rec, tally)
        advance(n * y.shape[1])


# Over 60 lines only by its parameter documentation; the body is a dozen lines.
def simulate(
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
        with ``window = 0.5``. Give one of them, not both.
    coordinates
        ``"moments"`` keeps the mean of ``h`` and of ``h²`` over replicates per recorded iteration;
        ``"all"`` also keeps every replicate's ``h`` (``R · n_records · d`` numbers); ``"none"``
        keeps neither (``coordinate_mean`` and ``coordinate_sq_mean`` are None), for high dimensions,
        where each recording adds 2d numbers per replicate to rows that do not stay in cache.
    divergence_norm
        A replicate with ``||v|| > divergence_norm`` or a NaN/inf is frozen and excluded.
    threads, chunk_blocks
        Blocks of replicates run on ``threads`` threads, ``chunk_blocks`` whole blocks per task.
    progress
        Count replicate-steps in the running command's progress (:mod:`amsgd.core.progress`), or
        outside a command on a tqdm bar of its own; None shows it only when stderr is a terminal,
        False never.
    """
    plan = make_plan(
        problem, steps, replicates, rng=rng, record_every=record_every, start=start, window=window,
        window_start=window_start, coordinates=coordinates, divergence_norm=divergence_norm,
    )  # fmt: skip
    checks.warn_delay_longer_than_run(problem.delay.mean, plan.steps)
    problem.warn_without_eigengap()
    threads = checks.positive_int("threads", threads)
    n_blocks = len(plan.blocks)
    chunk_blocks = checks.positive_int(
        "chunk_blocks", max(1, math.ceil(n_blocks / threads)) if chunk_blocks is None else chunk_blocks
    )
    tasks = [range(i, min(i + chunk_blocks, n_blocks)) for i in range(0, n_blocks, chunk_blocks)]
    out = Outputs(plan)
    warm_up()
    began = time.perf_counter()
    _run_tasks(plan, out, tasks, threads, progress)
    return _assemble(plan, out, time.perf_counter() - began)


def _run_tasks(plan: Plan, out: Outputs, tasks: list[range], threads: int, progress: bool | None) -> None:
    """Run the tasks (ranges of blocks) on ``threads`` threads, one workspace per task; interrupted, the
    tasks under way end at their next chunk of steps."""
    with counter(plan.replicates * plan.steps, "replicate-steps", "simulate", show=progress) as count:
        advance = stoppable(count.update, stop := threading.Event())

        def run_task(blocks: range) -> None:
            workspace = Workspace()
            with np.errstate(all="ignore"):  # per thread: errstate does not cross threads
                for block in blocks:
                    run_block(plan, block, out, advance, workspace)

        thread_map(run_task, tasks, threads, stop)


def _assemble(plan: Plan, out: Outputs, elapsed: float) -> SimulationResult:
    summaries = replicate_summaries(out.coord_sum, out.coord_sq, out.alive_count, out.window_sum, out.window_first,
                                    out.diverged_at, plan.window_start, out.window_split, plan.steps)  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        delay_mean = out.delay_sum / np.where(out.diverged_at >= 0, out.diverged_at, plan.steps)
    counts = out.delay_counts.sum(axis=0)
    return SimulationResult(
        problem=plan.problem,
        steps=plan.steps,
        iterations=plan.record_at.copy(),
        error=out.error,
        norm_sq=out.norm_sq,
        coordinates=out.coords if plan.keep_coordinates else None,
        diverged_at=out.diverged_at,
        window_start=plan.window_start,
        window_split=out.window_split,
        **summaries,
        delay_counts=counts,
        delay_mean_per_replicate=delay_mean,
        delay_max=_largest_delay_applied(plan.problem.delay, counts, out.delay_max),
        start=plan.start,
        seed=describe_seed(plan.root),
        divergence_norm=plan.divergence_norm,
        elapsed=elapsed,
    )


def _largest_delay_applied(delay: DelayModel, counts: np.ndarray, server_max: np.ndarray) -> int:
    """The largest delay applied to any update: counted exactly by the event-driven server's kernel
    (``server_max``, per block), and the last non-empty bin of the histogram ``counts`` of the delays
    drawn for constant and i.i.d. delays (an update at iteration k < τ reads the start point, which the
    history before iteration 0 is: its staleness is k, and the histogram counts τ; it matters only
    where delays reach across much of the run, which simulate warns of)."""
    if not delay.is_iid:
        return int(server_max.max())
    used = np.flatnonzero(counts)
    return int(used[-1]) if used.size else 0


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
            samples = kernels.Samples(y, draws.streams, draws.scale, buf)
            if plan.lanes:
                kernels.draw_lanes(samples, alive, y.shape[1])
            else:
                kernels.draw_replicates(samples, y.shape[1])
    return len(plan.blocks)


_compiled = False


def warm_up() -> None:
    """Compile (or load from the numba cache) the kernels once, outside any timing."""
    global _compiled
    if _compiled:
        return
    for delay, dim in ((ConstantDelay(1), 2), (ConstantDelay(1), LANE_MAX_DIM + 1), (EventDrivenDelay(2), 2)):
        plan = make_plan(Problem.from_spectrum(np.linspace(2.0, 1.0, dim), delay=delay), 2, 1, rng=0)
        run_block(plan, 0, Outputs(plan), lambda n: None)
    _compiled = True
