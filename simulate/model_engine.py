"""Async-MSGD on any model: one JAX program, replicates side by side (``vmap``), steps in ``lax.scan``.

Each replicate r keeps its iterate, the previous iterate and a ring buffer of the last ``T + 1``
iterates (T the largest delay drawn), so the stale gradient at step k reads ``x_{k−τ_k}``; the
buffer starts full of the start point (the history before time 0). Per step

    x_{k+1} = x_k + μ (x_k − x_{k−1}) − η ∇ℓ_B(x_{k−τ_k})

with B examples drawn uniformly with replacement from the training split. A replicate whose
iterate becomes non-finite or moves ``divergence_norm`` further from the centre ``x_c`` than its
start (:func:`~amsgd.simulate.models.divergence_ball`: zero, or for least squares the targets' mean
at the intercept with distances in their standard deviation) is frozen from that step and reported
as diverged, never averaged in.

Randomness (SPEC 7): replicate r owns the stream ``child_sequence(root, r)``; its delays (and an
event-driven server's compute times) come from a NumPy generator on it, its minibatches and start
point from a JAX key made from the same sequence's state. A seed gives the same numbers whatever
the replicates run together, since every replicate's numbers depend only on (seed, r).

The host advances all replicates ``record_every`` steps (in calls of at most :data:`BLOCK` steps)
of one compiled program and records the training objective, validation loss and accuracies between
them. A call's delays come padded to a block of :data:`BLOCK` and its step count is an argument, so
one compilation serves every run length and recording interval of a number of replicates (a
program compiled per segment length cost 1.2 to 1.8 s for each new length). Programs are
cached per model structure and history length (a multiple of :data:`SLOT_BLOCK`); the data, η and
μ are arguments, so a grid over η and μ, or another data set of the same shapes, compiles nothing
more.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.progress import counter
from amsgd.core.seeding import RngLike, child_sequence, describe_seed, root_sequence
from amsgd.simulate.delay_sequences import delay_sequence
from amsgd.simulate.model_result import ModelSimulationResult
from amsgd.simulate.plan import averaging_start

if TYPE_CHECKING:
    from amsgd.core.models import ModelProblem
    from amsgd.simulate.models import ModelFunctions

#: The start point's key is ``fold_in(key, INIT_STREAM)``; step k's minibatch uses ``fold_in(key, k)``.
INIT_STREAM = 2**31 - 1
#: The ring buffer holds a multiple of this many iterates (fewer compilations across delay draws).
SLOT_BLOCK = 16
#: Steps one call of the compiled program advances at most: its delays come in a block of this
#: length whatever the segment (the steps beyond the segment are not run), so one compilation serves
#: every segment and run length; a longer segment takes several calls.
BLOCK = 1024
#: Refuse runs whose ring buffers, or whose minibatches, would exceed this (bytes, all replicates together).
MAX_HISTORY_BYTES = 2 * 2**30


def simulate_model(problem: ModelProblem, steps: int, replicates: int, *, rng: RngLike = None,
                   record_every: int | None = None, window: float | None = None, window_start: int | None = None,
                   start: np.ndarray | None = None, divergence_norm: float = 1e6,
                   progress: bool | None = None) -> ModelSimulationResult:  # fmt: skip
    """Run ``replicates`` independent runs of ``steps`` iterations of Async-MSGD on ``problem``.

    ``start`` is a common start point (a parameter vector); by default each replicate starts at the
    model's own initialisation (zeros for the linear models, random weights for the MLP).
    The stationary loss averages the recorded iterations from ``window_start`` to ``steps``; by
    default ``window_start = floor(window · steps)`` (``window`` in [0, 1), as for streaming PCA's
    :func:`~amsgd.simulate.simulate`: 0.5, the default, averages the second half; give one, not both).
    """
    import jax

    from amsgd.core.models import ModelProblem

    if not isinstance(problem, ModelProblem):
        raise ProblemError(f"simulate_model needs a ModelProblem (streaming PCA: amsgd.simulate.simulate), "
                           f"got {type(problem).__name__}")  # fmt: skip
    steps = checks.positive_int("steps", steps)
    if steps >= INIT_STREAM:
        raise ProblemError(f"steps must be below {INIT_STREAM}, got {steps}")
    replicates = checks.positive_int("replicates", replicates)
    checks.warn_delay_longer_than_run(problem.delay.mean, steps)
    record_every = _check_record_every(record_every, steps)
    first = averaging_start(steps, window, window_start)
    checks.positive("divergence_norm", divergence_norm)
    from amsgd.simulate.models import check_start  # loaded for the run anyway

    start = check_start(start, problem)
    check_run_memory(problem, steps, replicates, 0)  # before any per-replicate work
    began = time.perf_counter()
    root = root_sequence(rng)
    seqs = [child_sequence(root, r) for r in range(replicates)]
    delays = np.stack([delay_sequence(problem.delay, np.random.default_rng(s), steps) for s in seqs])
    with jax.enable_x64(True):
        program = _Program(problem, _history_slots(int(delays.max())), float(divergence_norm))
        check_memory(program.slots * program.size * replicates * 8, "the delayed iterates",
                     "use fewer replicates, a shorter delay or a smaller model")
        width = problem.data.features + problem.outputs + (problem.hidden if problem.model == "mlp" else 0)
        check_memory(replicates * problem.batch * width * 8, "the minibatches (examples and activations)",
                     "use a smaller --batch or fewer replicates")  # fmt: skip
        keys = stream_keys(seqs)
        state = program.start(keys, start)
        records = program.run(state, delays, record_every, steps, (problem.eta, problem.mu), progress)
    elapsed = time.perf_counter() - began
    return ModelSimulationResult.build(problem, steps, records, delays, first, describe_seed(root), elapsed)


def start_points(problem: ModelProblem, replicates: int, *, rng: RngLike = None) -> np.ndarray:
    """The start point of each replicate of :func:`simulate_model` with the same ``rng`` (the model's
    initialisation with the replicate's key), ``(replicates, parameters)``."""
    import jax

    from amsgd.simulate.models import model_functions

    root = root_sequence(rng)
    seqs = [child_sequence(root, r) for r in range(checks.positive_int("replicates", replicates))]
    with jax.enable_x64(True):
        init = model_functions(problem).init
        return np.asarray(jax.vmap(lambda key: init(jax.random.fold_in(key, INIT_STREAM)))(stream_keys(seqs)))


def stream_keys(seqs: list[np.random.SeedSequence]):
    """The JAX keys of the replicates' streams (threefry, each from 64 bits of its sequence's state),
    as one key array: wrapped in one call, since a call per key costs milliseconds (minutes at 10⁵
    replicates)."""
    import jax

    return jax.random.wrap_key_data(np.stack([np.asarray(s.generate_state(2), np.uint32) for s in seqs]))


def _check_record_every(record_every: int | None, steps: int) -> int:
    if record_every is None:
        return max(1, steps // 100)
    return min(checks.positive_int("record_every", record_every), steps)


def check_run_memory(problem: ModelProblem, steps: int, replicates: int, max_delay: int) -> None:
    """Refuse runs whose delays and delayed iterates (at least one block of slots, more for a delay of
    ``max_delay``) would take more than :data:`MAX_HISTORY_BYTES`, before anything is drawn."""
    from amsgd.simulate.models import layout_of

    check_memory(replicates * (steps + _history_slots(max_delay) * layout_of(problem).size) * 8, "the delays and the delayed iterates",
                 "use fewer replicates, fewer steps, a shorter delay or a smaller model")  # fmt: skip


def _history_slots(max_delay: int) -> int:
    """The delayed iterates kept per replicate for delays up to ``max_delay``: whole blocks of
    :data:`SLOT_BLOCK`, so that runs with nearby longest delays share one compiled program."""
    return SLOT_BLOCK * (int(max_delay) // SLOT_BLOCK + 1)


def check_memory(nbytes: int, what: str, advice: str, limit: int = MAX_HISTORY_BYTES) -> None:
    """Refuse work whose ``what`` would take more than ``limit`` bytes (``advice`` says what to do)."""
    if nbytes > limit:
        raise ProblemError(f"{what} need {nbytes / 2**30:.1f} GiB (limit {limit / 2**30:.0f} GiB); {advice}")


@functools.lru_cache(maxsize=8)
def _steps(f: ModelFunctions, batch: int, slots: int) -> _Steps:
    """The compiled programs of one model structure (``f``), minibatch and history length. The data,
    η, μ and the divergence ball are arguments: runs that differ only in them, in a data set of the
    same shapes or in a delay of the same history length reuse the compilations."""
    import jax
    import jax.numpy as jnp

    grad = jax.grad(f.objective)

    def advance(state, k0, count, taus, eta, mu, xt, yt, centre, radius):
        def step(j, state):
            x, prev, ring, bad, key = state
            k = k0 + j
            idx = jax.random.randint(jax.random.fold_in(key, k), (batch,), 0, xt.shape[0])
            stale = ring[(k - taus[j]) % slots]
            new = x + mu * (x - prev) - eta * grad(stale, xt[idx], yt[idx])
            bad = bad | ~jnp.all(jnp.isfinite(new)) | (jnp.linalg.norm(new - centre) > radius)
            new = jnp.where(bad, x, new)
            return new, jnp.where(bad, prev, x), ring.at[(k + 1) % slots].set(new), bad, key

        return jax.lax.fori_loop(0, count, step, state)

    def measure(x, xt, yt, xv, yv):
        return jnp.stack([f.objective(x, xt, yt), jnp.mean(f.sample_losses(x, xv, yv)),
                          f.accuracy(x, xt, yt), f.accuracy(x, xv, yv)])  # fmt: skip

    return _Steps(
        advance=jax.jit(jax.vmap(advance, in_axes=(0, None, None, 0, None, None, None, None, None, 0))),
        measure=jax.jit(jax.vmap(measure, in_axes=(0, None, None, None, None))),
        init=jax.jit(jax.vmap(f.init)),
    )


@dataclass(frozen=True)
class _Steps:
    """``advance(state, k0, count, taus, η, μ, x_train, y_train, centre, radius)``: every replicate
    ``count`` steps on from step ``k0`` (delays ``taus[r, j]``, the divergence balls ``‖x − centre‖ <=
    radius[r]``); ``measure(x, x_train, y_train, x_val, y_val)``: the
    training objective, validation loss and both accuracies of every replicate; ``init(keys)``: the
    model's start points."""

    advance: Callable
    measure: Callable
    init: Callable


class _Program:
    """One model's run: its data on the device and the compiled steps of its structure."""

    def __init__(self, problem: ModelProblem, slots: int, divergence_norm: float) -> None:
        import jax.numpy as jnp

        from amsgd.simulate.models import model_functions

        f = model_functions(problem)
        data = problem.data
        self.problem, self.divergence_norm = problem, divergence_norm
        self.size, self.slots = f.layout.size, slots
        self._steps = _steps(f, problem.batch, slots)
        self._train = (jnp.asarray(data.x_train), jnp.asarray(data.y_train))
        self._val = (jnp.asarray(data.x_val), jnp.asarray(data.y_val))

    def _measure(self, x):
        return np.asarray(self._steps.measure(x, *self._train, *self._val))

    def start(self, keys, start: np.ndarray | None):
        """The replicates' first state, and the divergence ball around their start points."""
        import jax
        import jax.numpy as jnp

        from amsgd.simulate.models import divergence_ball

        r = keys.shape[0]
        if start is None:
            x0 = self._steps.init(jax.vmap(lambda k: jax.random.fold_in(k, INIT_STREAM))(keys))
        else:
            x0 = jnp.broadcast_to(jnp.asarray(start), (r, self.size))
        ring = jnp.broadcast_to(x0[:, None, :], (r, self.slots, self.size))
        centre, radii = divergence_ball(self.problem, self.divergence_norm, np.asarray(x0))
        self._ball = (jnp.asarray(centre), jnp.asarray(radii))
        return (x0, x0, ring, jnp.zeros(r, dtype=bool), keys)

    def run(self, state, delays: np.ndarray, record_every: int, steps: int, step: tuple[float, float],
            progress: bool | None) -> dict:  # fmt: skip
        """Advance to ``steps``, measuring at 0, record_every, 2·record_every, ..., steps."""
        import jax.numpy as jnp

        marks = sorted(set(range(0, steps, record_every)) | {steps})
        rows, diverged_at = [self._measure(state[0])], np.full(delays.shape[0], -1)
        padded = np.pad(delays, ((0, 0), (0, BLOCK)))  # a call reads a whole block, runs only its count
        with counter(steps, "steps", "simulate", show=progress) as count:
            for lo, hi in zip(marks[:-1], marks[1:]):
                for a in range(lo, hi, BLOCK):
                    taus = jnp.asarray(padded[:, a : a + BLOCK])
                    state = self._steps.advance(state, a, min(BLOCK, hi - a), taus, *step, *self._train, *self._ball)
                rows.append(self._measure(state[0]))
                bad = np.asarray(state[3])
                diverged_at[(diverged_at < 0) & bad] = hi
                count.update(hi - lo)
        values = np.stack(rows, axis=2)  # (replicates, 4, records)
        return {"iterations": np.array(marks), "values": values, "diverged_at": diverged_at,
                "final": np.asarray(state[0])}  # fmt: skip
