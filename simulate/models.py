"""The models' losses as JAX functions of one flat parameter vector.

Every model keeps its parameters in one vector θ (weights then intercepts, layer by layer), so
that Hessians, eigenvectors and the ring buffer of past iterates are plain arrays. For a
:class:`~amsgd.core.models.ModelProblem` :func:`model_functions` returns

* ``sample_losses(θ, z, y)``: the per-example losses ℓ(θ; z_n, y_n), without the penalty;
* ``objective(θ, z, y)``: their mean plus ``(l2/2) ‖W‖²`` (the weights only);
* ``accuracy(θ, z, y)``: the fraction of correct labels (classifiers), NaN for least squares;
* ``init(key)``: the start point: zeros for the linear models; for the MLP, weights N(0, 1/fan_in)
  and zero intercepts.

:func:`model_derivatives` returns the compiled derivatives the theory needs (gradients, Hessian-vector
products, per-example gradients and projected Hessians). Both are built once per model structure
(model, features, outputs, hidden units, activation, l2), with the data as an argument, so that JAX
compiles them once for every problem, point and data set of the same shapes.

Everything is computed in float64 (callers enter ``jax.enable_x64``): the theory needs exact
Hessians, and runs and theory must see the same loss.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem

T = TypeVar("T")

#: The event JAX reports for every compilation of a program by the backend.
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def compilations_during(task: Callable[[], T]) -> tuple[T, list[str]]:
    """``task()``'s result and the names of the programs JAX compiled while it ran (``jit(advance)``
    is the model simulator's step program): a check that a run reuses what an earlier one compiled."""
    names: list[str] = []

    def listen(event: str, seconds: float, **kwargs) -> None:
        if event == _COMPILE_EVENT:
            names.append(str(kwargs.get("fun_name")))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        result = task()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return result, names


@dataclass(frozen=True)
class Layout:
    """Blocks ``(name, shape, is_weight)`` of the flat parameter vector, in order."""

    blocks: tuple[tuple[str, tuple[int, ...], bool], ...]

    @property
    def size(self) -> int:
        return int(sum(np.prod(shape) for _, shape, _ in self.blocks))

    def unpack(self, theta: jax.Array) -> dict[str, jax.Array]:
        out, start = {}, 0
        for name, shape, _ in self.blocks:
            stop = start + int(np.prod(shape))
            out[name] = theta[start:stop].reshape(shape)
            start = stop
        return out

    def weight_mask(self) -> np.ndarray:
        """1.0 on the weights (penalised), 0.0 on the intercepts."""
        return np.concatenate([np.full(int(np.prod(shape)), float(w)) for _, shape, w in self.blocks])


def layout_of(problem: ModelProblem) -> Layout:
    """The parameter blocks of ``problem``'s model."""
    return _layout(problem.model, problem.data.features, problem.outputs, problem.hidden)


def divergence_ball(problem: ModelProblem, norm: float, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The balls ``‖x − x_c‖ <= r_k`` the runs must stay in (outside, or non-finite, a run has
    diverged), one per start point (the rows of ``starts``): ``r_k = norm · s + ‖x_{0,k} − x_c‖``, so a
    run diverges when it moves ``norm`` units s further from the centre x_c than its own start. x_c is
    zero but for least squares' intercept, which holds the training targets' mean, and s their standard
    deviation (1 for classifiers and constant targets). Changing the targets' units, ``y → a y + b``,
    maps a least-squares run started at ``(W_0, c_0)`` to the run started at ``(a W_0, a c_0 + b)`` and
    its ball onto the image: whether a run diverges does not depend on the units (neither a run at the
    minimum of targets of order 1e7 nor one started at 0 far from them is outside)."""
    layout = layout_of(problem)
    centre = np.zeros(layout.size)
    if problem.model == "least-squares":
        centre[-1] = problem.data.target_mean  # the intercept c, the last block of (W, c)
    reach = np.linalg.norm(np.atleast_2d(starts) - centre, axis=1)
    return centre, float(norm) * problem.data.target_scale + reach


def check_start(start: object, problem: ModelProblem) -> np.ndarray | None:
    """``start`` as a finite parameter vector of ``problem``'s model, or one clear error; None (the
    model's own initialisation) stays None."""
    if start is None:
        return None
    size = layout_of(problem).size
    x = checks.real_array("start", start)
    if x.shape != (size,) or not np.isfinite(x).all():
        raise ProblemError(f"start must be a finite parameter vector of length {size}, got shape {x.shape}")
    return x


def _layout(model: str, p: int, c: int, h: int) -> Layout:
    if model == "mlp":
        return Layout((("W1", (p, h), True), ("c1", (h,), False), ("W2", (h, c), True), ("c2", (c,), False)))
    return Layout((("W", (p, c), True), ("c", (c,), False)))


@dataclass(frozen=True)
class ModelFunctions:
    """The JAX functions of one model (see the module docstring)."""

    layout: Layout
    sample_losses: Callable
    objective: Callable
    accuracy: Callable
    init: Callable


def model_functions(problem: ModelProblem) -> ModelFunctions:
    """The loss, objective, accuracy and start point of ``problem``'s model: the same functions for
    every problem of the same model structure, so that what JAX compiled for one serves the next."""
    return _functions(problem.model, problem.data.features, problem.outputs, problem.hidden, problem.activation,
                      float(problem.l2))  # fmt: skip


@functools.lru_cache(maxsize=32)
def _functions(model: str, features: int, outputs: int, hidden: int, activation: str, l2: float) -> ModelFunctions:
    layout = _layout(model, features, outputs, hidden)
    mask = layout.weight_mask()  # NumPy: a constant of the float width of whoever traces it
    scores = _scores(model, activation, layout)
    regression = model == "least-squares"

    def sample_losses(theta, z, y):
        s = scores(theta, z)
        if regression:
            return 0.5 * (s[:, 0] - y) ** 2
        return jax.nn.logsumexp(s, axis=1) - jnp.take_along_axis(s, y[:, None], axis=1)[:, 0]

    def objective(theta, z, y):
        return jnp.mean(sample_losses(theta, z, y)) + 0.5 * l2 * jnp.sum(mask * theta**2)

    def accuracy(theta, z, y):
        if regression:
            return jnp.nan
        return jnp.mean((jnp.argmax(scores(theta, z), axis=1) == y).astype(theta.dtype))  # a bool mean is float32

    def init(key):
        if model != "mlp":
            return jnp.zeros(layout.size)
        parts = []
        for (_, shape, weight), k in zip(layout.blocks, jax.random.split(key, len(layout.blocks))):
            n = int(np.prod(shape))
            parts.append(jax.random.normal(k, (n,)) / np.sqrt(shape[0]) if weight else jnp.zeros(n))
        return jnp.concatenate(parts)

    return ModelFunctions(layout, sample_losses, objective, accuracy, init)


def _scores(model: str, activation: str, layout: Layout) -> Callable:
    """``scores(θ, z)``: the model's outputs (n, C) before the loss."""
    if model != "mlp":
        def linear(theta, z):
            q = layout.unpack(theta)
            return z @ q["W"] + q["c"]

        return linear
    act = jnp.tanh if activation == "tanh" else jax.nn.relu

    def mlp(theta, z):
        q = layout.unpack(theta)
        return act(z @ q["W1"] + q["c1"]) @ q["W2"] + q["c2"]

    return mlp


@dataclass(frozen=True)
class Derivatives:
    """Compiled derivatives of one model's objective ``L(θ) = mean_n ℓ(θ; z_n, y_n) + (l2/2)‖W‖²``,
    the data ``(z, y)`` an argument of each, so that one compilation serves every point and data set
    of the same shapes (:func:`model_derivatives`). Callers enter ``jax.enable_x64``.

    * ``value_and_grad(θ, z, y)``: ``(L(θ), ∇L(θ))``;
    * ``hessian_rows(θ, V, z, y)``: ``∇²L(θ) v`` for each row v of V (Hessian-vector products);
    * ``example_grads(θ, z, y)``: ``∇ℓ(θ; z_n, y_n)`` for every example, ``(N, p)``;
    * ``example_hessians(θ, Q, z, y)``: ``Qᵀ ∇²ℓ(θ; z_n, y_n) Q`` for every example, ``(N, k, k)``;
    * ``line_slopes(θ, q, s, z, y)``: ``qᵀ ∇L(θ + s_j q)`` for every entry s_j of s.
    """

    value_and_grad: Callable
    hessian_rows: Callable
    example_grads: Callable
    example_hessians: Callable
    line_slopes: Callable


def model_derivatives(problem: ModelProblem) -> Derivatives:
    """The :class:`Derivatives` of ``problem``'s model (compiled on first use, once per structure)."""
    return _derivatives(model_functions(problem))


@functools.lru_cache(maxsize=32)
def _derivatives(f: ModelFunctions) -> Derivatives:
    grad = jax.grad(f.objective)

    def hvp(theta, v, z, y):
        return jax.jvp(lambda w: grad(w, z, y), (theta,), (v,))[1]

    def example_grad(theta, zi, yi):
        return jax.grad(lambda w: f.sample_losses(w, zi[None], yi[None])[0])(theta)

    def example_hessian(theta, q, zi, yi):
        hq = jax.vmap(lambda v: jax.jvp(lambda w: example_grad(w, zi, yi), (theta,), (v,))[1])(q.T)  # (k, p)
        return q.T @ hq.T

    def line_slope(theta, q, s, z, y):
        return jax.jvp(lambda w: f.objective(w, z, y), (theta + s * q,), (q,))[1]

    return Derivatives(
        value_and_grad=jax.jit(jax.value_and_grad(f.objective)),
        hessian_rows=jax.jit(jax.vmap(hvp, in_axes=(None, 0, None, None))),
        example_grads=jax.jit(jax.vmap(example_grad, in_axes=(None, 0, 0))),
        example_hessians=jax.jit(jax.vmap(example_hessian, in_axes=(None, None, 0, 0))),
        line_slopes=jax.jit(jax.vmap(line_slope, in_axes=(None, None, 0, None, None))),
    )
