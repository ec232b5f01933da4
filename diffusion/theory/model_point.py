"""A model at its minimum: the numbers the random-coefficient theory needs (docs/theory.md, the random-coefficient linearisation).

Near a minimum x* of the penalised objective ``L`` the update is the random-coefficient recursion
of :mod:`.second_moments` in the eigenbasis ``H = Q Λ Qᵀ`` of the Hessian of ``L`` at x*, with

    A = −Qᵀ ∇²ℓ_B(x*) Q,    b = −Qᵀ ∇ℓ_B(x*),

ℓ_B the minibatch objective (B examples drawn with replacement). Hence, per mode i (``q_i`` the
i-th column of Q, ``g_n`` and ``H_n`` the gradient and Hessian of example n's loss at x*):

* rate ``a_i = λ_i`` (the mean of −A_ii),
* additive noise ``s_i = E b_i² = Var_n(q_iᵀ g_n)/B + (q_iᵀ ∇L(x*))²`` (the last term is 0 at an
  exact minimum and measures how exact x* is),
* coupling ``C_ij = Var A_ij = Var_n(q_iᵀ H_n q_j)/B`` among the coupled modes: every mode of a model
  with at most :data:`COUPLED_MAX` parameters, otherwise the top-k (the stiff ones, which set
  stability); the other modes carry additive noise only.

The top-k modes (:data:`TOP_MODES`) are also the ones whose slowest rate ranks momenta.

The Hessian is built exactly (columns of Hessian-vector products) up to :data:`FULL_HESSIAN_MAX`
parameters; above it the top-k eigenpairs come from Lanczos (``scipy.sparse.linalg.eigsh``) on
Hessian-vector products, and only those modes are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.second_moments import Coefficients

if TYPE_CHECKING:
    from amsgd.core.models import ModelProblem

#: Largest parameter count for which the whole Hessian (and every mode's noise) is computed.
FULL_HESSIAN_MAX = 6000
#: Top Hessian modes: their slowest rate ranks momenta; they are coupled in models above COUPLED_MAX.
TOP_MODES = 10
#: Models with at most this many parameters carry the coupling between every pair of modes.
COUPLED_MAX = 200
#: Modes with ``λ <= FLAT * λ_max`` are flat (symmetries, dead units): they carry no loss.
FLAT = 1e-9
#: A point is accepted as the minimum when ``‖∇L‖ <= GRADIENT_TOL · max(1, ‖x‖)``.
GRADIENT_TOL = 1e-6
#: Examples per vectorised chunk of per-example Hessian-vector products.
_CHUNK = 64


@dataclass(frozen=True, eq=False)
class ModelPoint:
    """The model at ``x`` (its minimum unless said otherwise) in the Hessian's eigenbasis.

    ``eigenvalues`` are all p eigenvalues (decreasing) when ``full``, else the top ones;
    ``additive`` is ``s_i`` for the same modes, ``coupling`` the ``(m, m)`` ``C_ij`` of the first m
    (coupled) modes; the first ``top`` modes rank momenta by their slowest rate.
    """

    x: np.ndarray
    loss: float
    gradient_norm: float
    eigenvalues: np.ndarray
    additive: np.ndarray
    coupling: np.ndarray
    full: bool
    source: str
    top: int
    vectors: np.ndarray  # (p, modes): the eigenvectors, columns in the order of ``eigenvalues``

    @property
    def coupled(self) -> int:
        return int(self.coupling.shape[0])

    def coupled_modes(self) -> np.ndarray:
        """Indices of the coupled modes with curvature (flat ones carry no loss and no stationary law)."""
        return np.flatnonzero(~self.flat()[: self.coupled])

    def coupled_coefficients(self) -> Coefficients:
        """The coupled modes with curvature and their coupling (mean-square stability, the floor)."""
        m = self.coupled
        full = Coefficients(self.eigenvalues[:m], self.coupling, self.additive[:m], diagonal=False)
        return full.block(self.coupled_modes())

    def flat(self) -> np.ndarray:
        """Modes with no curvature (``|λ| <= FLAT λ_max``)."""
        return np.abs(self.eigenvalues) <= FLAT * self.eigenvalues[0]

    def mean_square_offsets(self, starts: np.ndarray) -> np.ndarray:
        """``E c_i²``: the mean over the rows of ``starts`` of the squared coordinates of ``start − x`` in the
        eigenbasis (where a run starting there begins, mode by mode)."""
        return np.mean(((np.atleast_2d(starts) - self.x) @ self.vectors) ** 2, axis=0)

    def to_dict(self) -> dict:
        return {"source": self.source, "loss": self.loss, "gradient_norm": self.gradient_norm,
                "parameters": int(self.x.size), "hessian_top": self.eigenvalues[: self.top].tolist(),
                "negative_modes": int(np.sum(self.eigenvalues < -FLAT * self.eigenvalues[0])),
                "flat_modes": int(np.sum(np.abs(self.eigenvalues) <= FLAT * self.eigenvalues[0])),
                "full_spectrum": self.full, "coupled_modes": self.coupled}  # fmt: skip


def find_minimum(problem: ModelProblem, start: np.ndarray | None = None, *, seed: int = 0) -> np.ndarray:
    """x* minimising the full-batch penalised objective (L-BFGS from ``start``, by default the model's
    initialisation with key ``seed``); refuses when no finite minimum is reached."""
    import jax
    import scipy.optimize

    from amsgd.simulate.models import model_functions

    with jax.enable_x64(True):
        f = model_functions(problem)
        z, y = problem.data.x_train, problem.data.y_train
        value_and_grad = jax.jit(jax.value_and_grad(lambda x: f.objective(x, z, y)))
        x0 = np.asarray(f.init(jax.random.key(seed))) if start is None else np.asarray(start, dtype=float)

        def fun(x):
            v, g = value_and_grad(x)
            return float(v), np.asarray(g)

        res = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B",
                                      options={"maxiter": 20_000, "gtol": 1e-12, "ftol": 0.0})  # fmt: skip
        x = res.x
        gnorm = float(np.linalg.norm(fun(x)[1]))
        separated = problem.l2 == 0 and problem.data.classes > 0 and float(f.accuracy(x, z, y)) == 1.0
    if separated:
        # every training example classified correctly: scaling the scores up lowers the loss forever
        raise ProblemError(f"no minimum found for model {problem.model}: the training classes are separated "
                           f"(gradient norm {gnorm:.2e} only shrinks as the weights grow); add --l2")  # fmt: skip
    if gnorm > GRADIENT_TOL * max(1.0, float(np.linalg.norm(x))):
        hint = " (separable classes have no finite minimum without a penalty: add --l2)" if problem.l2 == 0 else ""
        raise ProblemError(f"no minimum found for model {problem.model}: gradient norm {gnorm:.2e} after "
                           f"{res.nit} L-BFGS iterations{hint}")  # fmt: skip
    return x


def model_point(problem: ModelProblem, x: np.ndarray, *, top: int | None = None, source: str = "minimum") -> ModelPoint:
    """Eigenvalues, additive noise and coupling of ``problem`` at ``x`` (see the module docstring);
    ``top`` modes carry the coupling (default :data:`TOP_MODES`, or every mode of a smaller model)."""
    import jax
    import jax.numpy as jnp

    from amsgd.simulate.models import model_functions

    top = min(TOP_MODES, np.size(x)) if top is None else checks.positive_int("top (Hessian modes)", top)
    if top > np.size(x):
        raise ProblemError(f"top (Hessian modes) must be at most the {np.size(x)} parameters, got {top}")
    with jax.enable_x64(True):
        f = model_functions(problem)
        z, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        x = jnp.asarray(x)
        objective = lambda w: f.objective(w, z, y)  # noqa: E731
        loss, grad = jax.value_and_grad(objective)(x)
        full = x.size <= FULL_HESSIAN_MAX
        values, vectors = _eigen(objective, x, top, full)
        k = values.size if full and x.size <= COUPLED_MAX else min(top, values.size)
        per_example = jax.vmap(jax.grad(lambda w, zi, yi: f.sample_losses(w, zi[None], yi[None])[0]), (None, 0, 0))
        projected = np.asarray(per_example(x, z, y)) @ vectors  # (n, modes): q_iᵀ g_n
        mean_grad = np.asarray(grad) @ vectors
        additive = projected.var(axis=0) / problem.batch + mean_grad**2
        coupling = _coupling(f.sample_losses, x, z, y, jnp.asarray(vectors[:, :k])) / problem.batch
        gradient_norm = float(np.linalg.norm(np.asarray(grad)))
    return ModelPoint(np.asarray(x), float(loss), gradient_norm, values, additive, coupling, full, source,
                      min(top, values.size), np.asarray(vectors))  # fmt: skip


def top_eigenvalue(problem: ModelProblem, x: np.ndarray) -> float:
    """The largest Hessian eigenvalue of the penalised objective at ``x`` (Lanczos)."""
    import jax

    from amsgd.simulate.models import model_functions

    with jax.enable_x64(True):
        f = model_functions(problem)
        z, y = problem.data.x_train, problem.data.y_train
        return float(_eigen(lambda w: f.objective(w, z, y), jax.numpy.asarray(x), 1, False)[0][0])


def _eigen(objective, x, top: int, full: bool) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the Hessian at x, decreasing: all of them, or the top ``top`` by Lanczos."""
    import jax
    import jax.numpy as jnp

    hvp = jax.jit(lambda v: jax.jvp(jax.grad(objective), (x,), (v,))[1])
    p = x.size
    if full:
        columns = jax.jit(jax.vmap(hvp))
        eye = jnp.eye(p)
        hessian = np.concatenate([np.asarray(columns(eye[i : i + 256])) for i in range(0, p, 256)])
        values, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
        return values[::-1], vectors[:, ::-1]
    import scipy.sparse.linalg

    operator = scipy.sparse.linalg.LinearOperator((p, p), matvec=lambda v: np.asarray(hvp(jnp.asarray(v.ravel(), dtype=float))))
    values, vectors = scipy.sparse.linalg.eigsh(operator, k=min(top, p - 1), which="LA")
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def _coupling(sample_losses, x, z, y, q) -> np.ndarray:
    """``Var_n(q_iᵀ H_n q_j)`` over the training examples, for the columns of ``q``."""
    return projected_example_hessians(sample_losses, x, z, y, q).var(axis=0)


def projected_example_hessians(sample_losses, x, z, y, q) -> np.ndarray:
    """``Qᵀ H_n Q`` ``(N, k, k)`` for every training example n (``H_n`` the Hessian of its loss at x,
    ``Q`` the columns of ``q``): k Hessian-vector products per example, vectorised over chunks of
    :data:`_CHUNK` examples (JAX arrays in, under ``jax.enable_x64``)."""
    import jax

    def example(zi, yi):
        g = jax.grad(lambda w: sample_losses(w, zi[None], yi[None])[0])
        hq = jax.vmap(lambda v: jax.jvp(g, (x,), (v,))[1])(q.T)  # (k, p): H_n q_j
        return q.T @ hq.T  # (k, k)

    batch = jax.jit(jax.vmap(example))
    return np.concatenate([np.asarray(batch(z[i : i + _CHUNK], y[i : i + _CHUNK])) for i in range(0, z.shape[0], _CHUNK)])
