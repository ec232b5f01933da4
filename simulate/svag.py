"""SVAG runs of Async-MSGD on streaming PCA: the algorithm at step η/L with amplified gradient noise.

Li, Malladi and Arora (2021, "On the validity of modeling SGD with stochastic differential
equations") test whether an SDE describes SGD at a finite step η by SVAG (stochastic variance
amplified gradient): for an amplification L (a positive integer) run L times as many steps of size
η/L, each with the combination of two independent samples of the gradient,

    h_{n+1} = h_n + μ (h_n − h_{n−1}) + (η/L) [w_1 g(h_{n−Lτ}, Y_n) + w_2 g(h_{n−Lτ}, Y'_n)],
    w_{1,2} = (1 ± sqrt(2L − 1))/2,    g(h, Y) = (I − h hᵀ) Y Yᵀ h.

Since ``w_1 + w_2 = 1`` the combined gradient has the mean E g, and since ``w_1² + w_2² = L`` its
covariance is ``L Cov g``: per unit of time ``t = n η/L`` the drift ``(L/η)(η/L) E g`` and the noise
covariance ``(L/η)(η/L)² L Cov g = η Cov g`` are those of the algorithm at step η (the weights and
the identities are derived in :mod:`amsgd.derivations.svag`). The momentum μ is unchanged and the
delay becomes Lτ steps, so the delay time ``s = Lτ · η/L = τη`` is held. As L grows the runs converge
to the SDE (τ = 0) or SDDE limit; when an observable barely moves with L, that limit describes the
algorithm at η. L = 1 is the algorithm itself (``w = (1, 0)``: one sample per step).

Everything is reported in *original* iterations ``k = n/L`` (L SVAG steps are one step of the
algorithm), so that runs at different L line up: the recording grid, the averaging window of the
stationary error (the error at every original iteration ``window_start <= k <= steps``), the
divergence iteration. Constant delays and Gaussian data only. The samples come from the simulator's
streams (:mod:`amsgd.simulate.seeding`, :func:`amsgd.simulate.ziggurat.replicate_states`): replicate
b of block c draws from SFC64 stream b of the block's data sequence, ``Y_n`` then ``Y'_n`` per step,
``sqrt(λ) · z`` from the compiled ziggurat. At L = 1 a replicate's samples are exactly those of
:func:`~amsgd.simulate.engine.simulate` with the same seed, and its numbers agree with it to rounding.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from amsgd.core import checks
from amsgd.core.angles import sin2_error
from amsgd.core.delays import MAX_DELAY, EventDrivenDelay
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.core.progress import counter
from amsgd.core.seeding import RngLike, describe_seed
from amsgd.core.stationarity import window_split
from amsgd.core.threads import stoppable, thread_map
from amsgd.simulate.draws import block_draws
from amsgd.simulate.kernels import Records, Tally, sin2
from amsgd.simulate.plan import (
    DIVERGENCE_NORM,
    MAX_BLOCK_STATE_BYTES,
    Plan,
    StartSpec,
    kernel_samples,
    make_plan,
)
from amsgd.simulate.result import SimulationResult, replicate_summaries
from amsgd.simulate.ziggurat import fill_scaled_normals

__all__ = ["SvagResult", "check_svag", "simulate_svag", "svag_weights"]

#: Original iterations per chunk of a block (L times as many SVAG steps); the progress counts chunks...
CHUNK_ITERATIONS = 1024
#: ...and a chunk holds at most this many SVAG steps (at least one original iteration), so that the
#: progress moves at a large L too. The chunks do not change the numbers (the streams carry over).
CHUNK_SVAG_STEPS = 1 << 16
#: The largest amplification L: one original iteration, L SVAG steps, then fits a chunk, between which
#: the progress moves and Ctrl-C or SIGTERM is answered.
MAX_AMPLIFICATION = CHUNK_SVAG_STEPS
#: Samples a replicate draws at a time into its buffer (32 KiB, so that they stay in cache).
SAMPLE_PIECE = 4096


def svag_weights(amplification: int) -> tuple[float, float]:
    """``(w_1, w_2) = ((1 + sqrt(2L − 1))/2, (1 − sqrt(2L − 1))/2)``: ``w_1 + w_2 = 1``, ``w_1² + w_2² = L``
    (``L`` a positive integer)."""
    root = math.sqrt(2 * _amplification(amplification) - 1)
    return (1.0 + root) / 2.0, (1.0 - root) / 2.0


def _amplification(amplification: object) -> int:
    """The SVAG amplification L, a positive integer (refused otherwise)."""
    if not checks.is_whole_number(amplification) or amplification < 1:
        raise ProblemError(
            f"the SVAG amplification L must be a positive integer (1 = the algorithm itself), got {amplification!r}"
        )
    if amplification > MAX_AMPLIFICATION:
        raise ProblemError(f"the SVAG amplification L must be at most {MAX_AMPLIFICATION} (an iteration of the "
                           f"algorithm is L SVAG steps, run without a pause to answer Ctrl-C), got {amplification}")  # fmt: skip
    return int(amplification)


class SvagStep(NamedTuple):
    """A chunk of SVAG steps: the first ``n0`` (a multiple of L), how many, L, the delay Lτ in steps,
    the step η/L, μ, the weights and ``divergence_norm²``."""

    n0: int
    steps: int
    amplification: int
    delay: int
    eta: float
    mu: float
    w1: float
    w2: float
    max_norm_sq: float


@dataclass(frozen=True, eq=False)
class SvagResult(SimulationResult):
    """A :class:`~amsgd.simulate.result.SimulationResult` of an SVAG run, in original iterations.

    ``problem`` is the algorithm's problem (step η, delay τ); ``steps`` and every iteration are
    original iterations ``k = n/L``; ``delay_counts`` counts original iterations taken with the delay
    τ (Lτ SVAG steps). ``amplification`` is L; ``elapsed`` is the wall time of the L·steps SVAG steps.
    """

    amplification: int = 1

    @property
    def weights(self) -> tuple[float, float]:
        return svag_weights(self.amplification)

    @property
    def svag_steps_per_second(self) -> float:
        """``replicates · L · steps`` SVAG steps over the wall time of the loop (draws included)."""
        return self.amplification * self.replicate_steps_per_second

    def svag_dict(self) -> dict:
        L = self.amplification
        return {
            "L": L,
            "weights": list(self.weights),
            "step": self.problem.eta / L,
            "iterations": L * self.steps,
            "delay": L * self.problem.delay.max_delay,
            "svag_steps_per_second": self.svag_steps_per_second if math.isfinite(self.svag_steps_per_second) else None,
            "note": "iterations, windows and recordings are original iterations k = n/L of the algorithm at step eta",
        }

    def to_dict(self) -> dict:
        return {**super().to_dict(), "svag": self.svag_dict()}


# Long by design, as the simulator's kernels (simulate/kernels.py): the per-step bookkeeping stays inline.
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def advance_svag(ring, streams, scale, buf, step, rec, tally):
    """SVAG steps ``n0 .. n0 + steps`` of a block, replicate by replicate, with a ring ``ring[b, n mod S]``.

    ``S = max(3, Lτ + 2)`` slots hold ``h_{n−Lτ} .. h_n`` and the slot written with ``h_{n+1}``; slots 0
    and S − 1 start at ``h_0`` (the history before time 0 is the start point, as in the simulator).
    Replicate b draws its samples from ``streams[b]`` as ``scale · z`` rows, a piece at a time into
    ``buf``: a row is ``Y_n`` (and ``Y'_n`` after it when ``w_2 ≠ 0``). Every L steps (an original
    iteration k) the error enters the window sum and the recording grid is checked.
    """
    n0, n_steps, amp, delay, eta, mu, w1, w2, max_norm_sq = step
    record_at = rec.record_at
    alive, diverged_at, window_start, window_sum = tally.alive, tally.diverged_at, tally.window_start, tally.window_sum
    split, window_first = tally.window_split, tally.window_first
    n_block, slots, dim = ring.shape
    two = buf.shape[1] > dim
    n_rec = record_at.shape[0]
    r_first = np.searchsorted(record_at, n0 // amp + 1)
    for b in range(n_block):
        if not alive[b]:
            continue
        r = r_first
        window = 0.0
        phase = 0  # SVAG steps since the last original iteration (chunks start at one)
        cur = n0 % slots
        prv = (n0 + slots - 1) % slots
        nxt = (n0 + 1) % slots
        start, drawn = 0, 0
        for j in range(n_steps):
            n = n0 + j
            if j == drawn:
                start, drawn = j, min(j + buf.shape[0], n_steps)
                fill_scaled_normals(streams[b], scale, buf[: drawn - j])
            row = j - start
            if delay > n:
                stl = 0
            else:
                stl = cur - delay if cur >= delay else cur - delay + slots
            s1 = 0.0
            s2 = 0.0
            for i in range(dim):
                s1 += buf[row, i] * ring[b, stl, i]
            if two:
                for i in range(dim):
                    s2 += buf[row, dim + i] * ring[b, stl, i]
            c1 = eta * w1 * s1
            c2 = eta * w2 * s2
            q = c1 * s1 + c2 * s2
            nsq = 0.0
            if two:
                for i in range(dim):
                    hc = ring[b, cur, i]
                    new = hc + mu * (hc - ring[b, prv, i]) + c1 * buf[row, i] + c2 * buf[row, dim + i] - q * ring[b, stl, i]
                    ring[b, nxt, i] = new
                    nsq += new * new
            else:
                for i in range(dim):
                    hc = ring[b, cur, i]
                    new = hc + mu * (hc - ring[b, prv, i]) + c1 * buf[row, i] - q * ring[b, stl, i]
                    ring[b, nxt, i] = new
                    nsq += new * new
            if not nsq <= max_norm_sq:
                alive[b] = False
                diverged_at[b] = (n + amp) // amp  # the original iteration this step belongs to
                break
            phase += 1
            if phase == amp:
                phase = 0
                k = (n + 1) // amp
                recording = r < n_rec and record_at[r] == k
                if k >= window_start or recording:
                    err = sin2(ring[b, nxt], nsq)
                    if k >= window_start:
                        if k == split:
                            window_first[b] = window_sum[b] + window
                        window += err
                    if recording:
                        rec.error[b, r] = err
                        rec.norm_sq[b, r] = nsq
                        rec.alive_count[r] += 1
                        for i in range(dim):
                            c = ring[b, nxt, i]
                            rec.coord_sum[r, i] += c
                            rec.coord_sq[r, i] += c * c
                        r += 1
            prv = cur
            cur = nxt
            nxt = nxt + 1 if nxt + 1 < slots else 0
        window_sum[b] += window


def _constant_delay(problem: Problem) -> int:
    """τ of a delay whose law is one point (constant, round robin); any other delay is refused."""
    delay = problem.delay
    support = np.flatnonzero(delay.pmf()) if not isinstance(delay, EventDrivenDelay) else np.zeros(2)
    if support.size != 1:
        raise ProblemError(
            f"svag runs need a constant delay (--tau N, constant:N or workers:M), got delay {delay.spec}; "
            "use a constant delay of the same mean"
        )
    return int(support[0])


def check_svag(problem: Problem, amplification: object) -> tuple[int, int]:
    """L and τ of an SVAG run of ``problem``, refusing models, non-constant delays, non-Gaussian data and bad L."""
    if not isinstance(problem, Problem):
        raise ProblemError(f"svag runs need streaming PCA (an amsgd.Problem), got {type(problem).__name__}")
    amplification = _amplification(amplification)
    if not kernel_samples(problem.distribution):
        raise ProblemError(
            f"svag runs need Gaussian data (--distribution gaussian), got {problem.distribution.spec}"
        )
    tau = _constant_delay(problem)
    if amplification * tau > MAX_DELAY:
        raise ProblemError(f"svag delay L·tau = {amplification * tau} SVAG steps; a delay may reach at most "
                           f"{MAX_DELAY}: use a smaller L or delay")  # fmt: skip
    return amplification, tau


class _Run(NamedTuple):
    plan: Plan
    amplification: int
    tau: int
    slots: int
    weights: tuple[float, float]


# Over 60 lines only by its parameter documentation and the assembly of the result.
def simulate_svag(
    problem: Problem,
    steps: int,
    replicates: int,
    amplification: int,
    *,
    rng: RngLike = None,
    window: float | None = None,
    window_start: int | None = None,
    start: StartSpec = "e1",
    record_every: int | None = None,
    divergence_norm: float = DIVERGENCE_NORM,
    threads: int = 1,
    progress: bool | None = None,
) -> SvagResult:
    """SVAG runs (module docstring) of ``replicates`` replicates over ``steps`` original iterations.

    Parameters
    ----------
    problem
        Σ, Gaussian data, η, μ and a constant delay τ (round robin included).
    steps, replicates
        Original iterations per run (the run takes ``L · steps`` SVAG steps) and the number of runs.
    amplification
        L >= 1: step η/L, delay Lτ steps, the weights :func:`svag_weights`.
    rng, window, window_start, start, record_every, divergence_norm, threads, progress
        As in :func:`amsgd.simulate.simulate`, in original iterations; ``start`` defaults to ``"e1"``.
        Replicate block c uses the same streams as the simulator's block c.
    """
    amplification, tau = check_svag(problem, amplification)
    plan = make_plan(
        problem, steps, replicates, rng=rng, record_every=record_every, start=start, window=window,
        window_start=window_start, divergence_norm=divergence_norm,
    )  # fmt: skip
    problem.warn_without_eigengap()
    checks.warn_delay_longer_than_run(tau, plan.steps)  # in iterations of the algorithm, as the run's length
    threads = checks.positive_int("threads", threads)
    slots = max(3, amplification * tau + 2)
    state_bytes = min(plan.replicates, 256) * slots * plan.dim * 8
    if state_bytes > MAX_BLOCK_STATE_BYTES:
        raise ProblemError(
            f"svag delay L·tau = {amplification * tau} needs {state_bytes / 2**30:.1f} GiB of stored iterates per "
            f"block (limit {MAX_BLOCK_STATE_BYTES / 2**30:.0f} GiB); use a smaller L, delay or dimension"
        )
    run = _Run(plan, amplification, tau, slots, svag_weights(amplification))
    out = _Outputs(plan)
    _warm_up()
    began = time.perf_counter()
    total = plan.replicates * plan.steps * amplification
    with counter(total, "replicate-steps", f"svag L={amplification}", show=progress) as count:
        advance = stoppable(count.update, stop := threading.Event())
        thread_map(lambda block: _run_block(run, block, out, advance), range(len(plan.blocks)), threads, stop)
    return out.result(run, time.perf_counter() - began)


class _Outputs:
    """The recorded arrays of every block (each block writes its own rows or its own slot)."""

    def __init__(self, plan: Plan) -> None:
        r, n_rec, d, n_blocks = plan.replicates, plan.record_at.size, plan.dim, len(plan.blocks)
        self.error = np.full((r, n_rec), np.nan)
        self.norm_sq = np.full((r, n_rec), np.nan)
        self.coord_sum = np.zeros((n_blocks, n_rec, d))
        self.coord_sq = np.zeros((n_blocks, n_rec, d))
        self.alive_count = np.zeros((n_blocks, n_rec), dtype=np.int64)
        self.alive = np.ones(r, dtype=np.bool_)
        self.diverged_at = np.full(r, -1, dtype=np.int64)
        self.window_sum = np.zeros(r)
        self.window_first = np.zeros(r)
        self.split = window_split(plan.window_start, plan.steps)

    def views(self, plan: Plan, block: int) -> tuple[Records, Tally]:
        lo, hi = plan.blocks[block]
        rec = Records(plan.record_at, self.error[lo:hi], self.norm_sq[lo:hi], np.zeros((0, 0, 0)),
                      self.coord_sum[block], self.coord_sq[block], self.alive_count[block])  # fmt: skip
        none = np.zeros(1, dtype=np.int64)
        tally = Tally(self.alive[lo:hi], self.diverged_at[lo:hi], plan.window_start, self.window_sum[lo:hi],
                      none, none, none, self.split, self.window_first[lo:hi])  # fmt: skip
        return rec, tally

    def result(self, run: _Run, elapsed: float) -> SvagResult:
        plan = run.plan
        summaries = replicate_summaries(self.coord_sum, self.coord_sq, self.alive_count, self.window_sum,
                                        self.window_first, self.diverged_at, plan.window_start, self.split,
                                        plan.steps)  # fmt: skip
        taken = np.where(self.diverged_at >= 0, self.diverged_at, plan.steps)
        counts = np.zeros(run.tau + 1, dtype=np.int64)
        counts[run.tau] = int(taken.sum())
        return SvagResult(
            problem=plan.problem, steps=plan.steps, iterations=plan.record_at.copy(), error=self.error,
            norm_sq=self.norm_sq, coordinates=None, diverged_at=self.diverged_at, window_start=plan.window_start,
            window_split=self.split, **summaries,
            delay_counts=counts, delay_mean_per_replicate=np.full(plan.replicates, float(run.tau)),
            delay_max=run.tau, start=plan.start, seed=describe_seed(plan.root),
            divergence_norm=plan.divergence_norm, elapsed=elapsed, amplification=run.amplification,
        )  # fmt: skip


def _record_start(plan: Plan, rec: Records, tally: Tally, h0: np.ndarray) -> None:
    """Iteration 0: every replicate at its start point, ``||h_0|| = 1``."""
    err0 = sin2_error(h0)
    rec.error[:, 0], rec.norm_sq[:, 0] = err0, 1.0
    rec.coord_sum[0], rec.coord_sq[0], rec.alive_count[0] = h0.sum(axis=0), (h0**2).sum(axis=0), h0.shape[0]
    if plan.window_start == 0:
        tally.window_sum[:] += err0


def _run_block(run: _Run, block: int, out: _Outputs, advance) -> None:
    """All SVAG steps of replicate block ``block``, a chunk of original iterations at a time
    (:data:`CHUNK_ITERATIONS`, fewer at a large L: :data:`CHUNK_SVAG_STEPS`)."""
    plan, amp = run.plan, run.amplification
    draws = block_draws(plan, block, samples_in_kernel=True)  # the start points and the data streams
    rec, tally = out.views(plan, block)
    _record_start(plan, rec, tally, draws.start)
    n, d = draws.start.shape
    ring = np.empty((n, run.slots, d))
    ring[:, 0] = draws.start
    ring[:, run.slots - 1] = draws.start
    per_step = 2 if amp > 1 else 1
    scale = np.tile(draws.scale, per_step)
    buf = np.empty((max(1, SAMPLE_PIECE // (per_step * d)), per_step * d))
    w1, w2 = run.weights
    eta, mu = float(plan.problem.eta) / amp, float(plan.problem.mu)
    with np.errstate(all="ignore"):
        chunk = max(1, min(CHUNK_ITERATIONS, CHUNK_SVAG_STEPS // amp))
        for k0 in range(0, plan.steps, chunk):
            k = min(chunk, plan.steps - k0)
            step = SvagStep(k0 * amp, k * amp, amp, amp * run.tau, eta, mu, w1, w2, plan.max_norm_sq)
            advance_svag(ring, draws.streams, scale, buf, step, rec, tally)
            advance(n * k * amp)


_compiled = False


def _warm_up() -> None:
    """Compile (or load from the numba cache) the kernel once, outside any timing."""
    global _compiled
    if not _compiled:
        small = Problem.from_spectrum((2.0, 1.0))
        for amp in (1, 2):
            plan = make_plan(small, 2, 1, rng=0, start="e1")
            run = _Run(plan, amp, 0, 3, svag_weights(amp))
            _run_block(run, 0, _Outputs(plan), lambda n: None)
        _compiled = True
