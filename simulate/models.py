"""The models' losses as JAX functions of one flat parameter vector.

Every model keeps its parameters in one vector θ (weights then intercepts, layer by layer), so
that Hessians, eigenvectors and the ring buffer of past iterates are plain arrays. For a
:class:`~amsgd.core.models.ModelProblem` :func:`model_functions` returns

* ``sample_losses(θ, z, y)``: the per-example losses ℓ(θ; z_n, y_n), without the penalty;
* ``objective(θ, z, y)``: their mean plus ``(l2/2) ‖W‖²`` (the weights only);
* ``accuracy(θ, z, y)``: the fraction of correct labels (classifiers), NaN for least squares;
* ``init(key)``: the start point: zeros for the linear models; for the MLP, weights N(0, 1/fan_in)
  and zero intercepts.

Everything is computed in float64 (callers enter ``jax.enable_x64``): the theory needs exact
Hessians, and runs and theory must see the same loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from amsgd.core.models import ModelProblem


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
    p, c = problem.data.features, problem.outputs
    if problem.model == "mlp":
        h = problem.hidden
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
    """Build the loss, objective, accuracy and start point of ``problem``'s model."""
    layout = layout_of(problem)
    mask = jnp.asarray(layout.weight_mask())
    l2 = problem.l2
    scores = _scores(problem, layout)
    regression = problem.model == "least-squares"

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
        return jnp.mean(jnp.argmax(scores(theta, z), axis=1) == y)

    def init(key):
        if problem.model != "mlp":
            return jnp.zeros(layout.size)
        parts = []
        for (_, shape, weight), k in zip(layout.blocks, jax.random.split(key, len(layout.blocks))):
            n = int(np.prod(shape))
            parts.append(jax.random.normal(k, (n,)) / np.sqrt(shape[0]) if weight else jnp.zeros(n))
        return jnp.concatenate(parts)

    return ModelFunctions(layout, sample_losses, objective, accuracy, init)


def _scores(problem: ModelProblem, layout: Layout) -> Callable:
    """``scores(θ, z)``: the model's outputs (n, C) before the loss."""
    if problem.model != "mlp":
        def linear(theta, z):
            q = layout.unpack(theta)
            return z @ q["W"] + q["c"]

        return linear
    act = jnp.tanh if problem.activation == "tanh" else jax.nn.relu

    def mlp(theta, z):
        q = layout.unpack(theta)
        return act(z @ q["W1"] + q["c1"]) @ q["W2"] + q["c2"]

    return mlp
