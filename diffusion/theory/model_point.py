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

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.problem import require_step_scale
from amsgd.diffusion.theory.second_moments import Coefficients, arnoldi_start

if TYPE_CHECKING:
    from amsgd.core.models import ModelProblem
    from amsgd.simulate.models import Derivatives

#: Largest parameter count for which the whole Hessian (and every mode's noise) is computed.
FULL_HESSIAN_MAX = 6000
#: Top Hessian modes: their slowest rate ranks momenta; they are coupled in models above COUPLED_MAX.
TOP_MODES = 10
#: Models with at most this many parameters carry the coupling between every pair of modes.
COUPLED_MAX = 200
#: Modes with ``λ <= FLAT * λ_max`` are flat (symmetries, dead units): they carry no loss.
FLAT = 1e-9
#: A ridge penalty this large (the features are standardised) is named as the likely reason when no minimum is found.
HUGE_L2 = 1e8
#: Without a penalty, the L-BFGS iterations between two checks of whether the training classes are separated
#: (every example classified correctly: no finite minimum, :func:`find_minimum` stops and refuses).
SEPARATION_CHECK_EVERY = 25
#: A point is accepted as the minimum when ``‖∇L‖ <= GRADIENT_TOL · max(1, ‖x‖)``.
GRADIENT_TOL = 1e-6
#: The largest estimated relative rounding error of the floor predictions accept (:meth:`ModelPoint.rounding_error`).
MAX_ROUNDING = 1e-6
#: The smallest ``η λ (1 − μ)`` of a curved mode predictions accept (the solves are singular near 1e-16).
MIN_MODE_RESOLUTION = 1e-15
#: Refuse a model whose minimum's per-example gradients (examples × parameters) and optimiser vectors would
#: take more than this (bytes), before its parameters are allocated.
MAX_POINT_BYTES = 4 * 2**30
#: Parameter-sized vectors kept besides the per-example gradients: L-BFGS's ten correction pairs and its
#: working vectors, the gradient, the penalty's weight mask, the Hessian's top modes.
_WORKING_VECTORS = 40
#: Examples per vectorised chunk of per-example Hessian-vector products.
_CHUNK = 64
#: Hessian columns per vectorised chunk of Hessian-vector products.
_COLUMNS = 256


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

    def curved(self) -> np.ndarray:
        """Modes with positive curvature (``λ > FLAT λ_max``): the ones whose stationary moments are solved."""
        return self.eigenvalues > FLAT * self.eigenvalues[0]

    def rounding_error(self, eta: float, mu: float) -> float:
        """The relative rounding error of the finite-η floor at (η, μ), estimated mode by mode:

            0.2 ε_machine / (η (1 − μ)) · Σ_i w_i / λ_i   over the curved modes (λ_i > FLAT λ_max),

        ``w_i = s_i / Σ_k s_k`` the mode's share of the small-η floor (each mode adds ``η s_i / (4 (1 − μ))``
        there) and ``0.2 ε / (η λ_i (1 − μ))`` the error of one mode's stationary moments, measured on
        streaming PCA (:meth:`~amsgd.core.problem.Problem.require_resolvable_step`). Least squares on
        digits at μ = 0.9 (the default l2): estimated 4.6e-6, 4.6e-5, 1.5e-4 at η = 1e-10, 1e-11,
        3e-12; the floor over η measured against its small-η line 1.5e-6, 1.1e-5, 6.2e-5 off."""
        curved = self.curved()
        noise = self.additive[curved]
        if noise.sum() <= 0:
            return 0.0
        weights = noise / noise.sum() / self.eigenvalues[curved]
        return float(0.2 * np.finfo(float).eps / (eta * (1.0 - mu)) * np.sum(weights))

    def require_resolvable_step(self, eta: float, mu: float) -> None:
        """Refuse a step whose finite-η numbers round: an estimated :meth:`rounding_error` above
        :data:`MAX_ROUNDING`, or a curved mode with ``η λ_i (1 − μ)`` below :data:`MIN_MODE_RESOLUTION`
        (its recursion's roots are 1 in double precision, and its solve is singular); or a step with
        ``η λ_max`` above :data:`~amsgd.core.problem.MAX_STEP_SCALE` (unstable at every delay, its
        moments overflow)."""
        require_step_scale(eta * float(self.eigenvalues.max(initial=0.0)), "eta·λ_max")
        curved = self.eigenvalues[self.curved()]
        if curved.size == 0:  # no curved mode: nothing is solved
            return
        error, slowest = self.rounding_error(eta, mu), eta * float(curved.min()) * (1.0 - mu)
        if error <= MAX_ROUNDING and slowest >= MIN_MODE_RESOLUTION:
            return
        why = (f"estimated rounding error of the floor {error:.2g}, above {MAX_ROUNDING:g}" if error > MAX_ROUNDING
               else f"below {MIN_MODE_RESOLUTION:g}, where its solve is singular")  # fmt: skip
        raise ProblemError(
            f"at eta = {eta:g} the finite-eta theory cannot resolve this model's slow modes in double precision "
            f"(eta·λ·(1 − mu) = {slowest:.3g} for the slowest curved mode, λ = {curved.min():.3g}; {why}); raise eta"
        )

    def mean_square_offsets(self, starts: np.ndarray) -> np.ndarray:
        """``E c_i²``: the mean over the rows of ``starts`` of the squared coordinates of ``start − x`` in the
        eigenbasis (where a run starting there begins, mode by mode)."""
        return np.mean(((np.atleast_2d(starts) - self.x) @ self.vectors) ** 2, axis=0)

    def to_dict(self) -> dict:
        out = {"source": self.source, "loss": self.loss, "gradient_norm": self.gradient_norm,
               "parameters": int(self.x.size), "hessian_top": self.eigenvalues[: self.top].tolist(),
               "negative_modes": int(np.sum(self.eigenvalues < -FLAT * self.eigenvalues[0])),
               "flat_modes": int(np.sum(np.abs(self.eigenvalues) <= FLAT * self.eigenvalues[0])),
               "full_spectrum": self.full, "coupled_modes": self.coupled}  # fmt: skip
        if not self.full:
            out["note"] = (f"above {FULL_HESSIAN_MAX} parameters only the {self.eigenvalues.size} stiffest Hessian "
                           "modes are computed (Lanczos): the loss floor counts their noise alone (a lower bound) "
                           "and the rate ranks them alone (an upper bound: the flat modes, slower, are missing)")  # fmt: skip
        return out


def find_minimum(problem: ModelProblem, start: np.ndarray | None = None, *, seed: int = 0) -> np.ndarray:
    """x* minimising the full-batch penalised objective (L-BFGS from ``start``, by default the model's
    initialisation with key ``seed``); refuses when no finite minimum is reached."""
    import jax
    import jax.numpy as jnp
    import scipy.optimize

    from amsgd.simulate.models import model_derivatives, model_functions

    check_point_memory(problem)
    seed = checks.integer("seed", seed)  # JAX's key took "a" as a TypeError and -1 as a seed
    with jax.enable_x64(True):
        f, d = model_functions(problem), model_derivatives(problem)
        z, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        x0 = np.asarray(f.init(jax.random.key(seed))) if start is None else np.asarray(start, dtype=float)

        def fun(x):
            v, g = d.value_and_grad(x, z, y)
            return float(v), np.asarray(g)

        def is_separated(x) -> bool:  # no finite minimum: see below
            return problem.l2 == 0 and problem.data.classes > 0 and float(f.accuracy(x, z, y)) == 1.0

        iterations = itertools.count(1)

        def stop_when_separated(intermediate_result) -> None:  # else L-BFGS scales the weights up to maxiter
            if next(iterations) % SEPARATION_CHECK_EVERY == 0 and is_separated(intermediate_result.x):
                raise StopIteration

        with np.errstate(over="ignore", invalid="ignore"):  # a huge --l2 overflows; the refusal below says so
            res = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", callback=stop_when_separated,
                                          options={"maxiter": 20_000, "gtol": 1e-12, "ftol": 0.0})  # fmt: skip
            x = res.x
            gnorm = float(np.linalg.norm(fun(x)[1]))
            scale = max(1.0, float(np.linalg.norm(x)))
        separated = is_separated(x)
    if separated:
        # every training example classified correctly: scaling the scores up lowers the loss forever
        raise ProblemError(f"no minimum found for model {problem.model}: the training classes are separated "
                           f"(gradient norm {gnorm:.2e} only shrinks as the weights grow); add --l2")  # fmt: skip
    if not (np.all(np.isfinite(x)) and gnorm <= GRADIENT_TOL * scale):  # nor are a NaN gradient or an infinite x
        if problem.l2 >= HUGE_L2:  # the penalised weights and the free biases differ in curvature by that much
            hint = f" (--l2 = {problem.l2:g} leaves the optimiser a problem conditioned beyond double precision; lower it)"
        elif problem.l2 > 0:  # the optimiser stalled: say so and what helps
            relu = problem.model == "mlp" and problem.activation == "relu"
            smooth = "; --activation tanh, since ReLU's kinks can stall it" if relu else ""
            hint = f" (the optimiser stopped making progress; a larger --l2 conditions the objective better{smooth})"
        else:
            hint = " (without a penalty the loss need not have a finite minimum, as separated classes never do: add --l2)"
        raise ProblemError(f"no minimum found for model {problem.model}: gradient norm {gnorm:.2e} after "
                           f"{res.nit} L-BFGS iterations{hint}")  # fmt: skip
    return x


def check_point_memory(problem: ModelProblem) -> None:
    """Refuse, in one line, a model whose minimum and point would need more than :data:`MAX_POINT_BYTES`:
    ``8 p (n + 40)`` bytes for p parameters and n training examples (the per-example gradients and the
    optimiser's vectors), counted from the model's shapes before anything is allocated."""
    from amsgd.simulate.model_engine import check_memory
    from amsgd.simulate.models import layout_of

    size = layout_of(problem).size
    advice = "use a smaller --hidden or fewer training examples" if problem.model == "mlp" else "use fewer training examples or features"
    check_memory(8 * size * (problem.data.examples + _WORKING_VECTORS),
                 f"the {size:,} parameters' per-example gradients and optimiser vectors", advice, MAX_POINT_BYTES)  # fmt: skip


def model_point(problem: ModelProblem, x: np.ndarray, *, top: int | None = None, source: str = "minimum") -> ModelPoint:
    """Eigenvalues, additive noise and coupling of ``problem`` at ``x`` (see the module docstring);
    ``top`` modes carry the coupling (default :data:`TOP_MODES`, or every mode of a smaller model)."""
    import jax
    import jax.numpy as jnp

    from amsgd.simulate.models import model_derivatives

    check_point_memory(problem)
    top = min(TOP_MODES, np.size(x)) if top is None else checks.positive_int("top (Hessian modes)", top)
    if top > np.size(x):
        raise ProblemError(f"top (Hessian modes) must be at most the {np.size(x)} parameters, got {top}")
    with jax.enable_x64(True):
        d = model_derivatives(problem)
        z, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        x = jnp.asarray(x)
        loss, grad = d.value_and_grad(x, z, y)
        full = x.size <= FULL_HESSIAN_MAX
        values, vectors = _eigen(d, x, z, y, top, full)
        k = values.size if full and x.size <= COUPLED_MAX else min(top, values.size)
        projected = np.asarray(d.example_grads(x, z, y)) @ vectors  # (n, modes): q_iᵀ g_n
        mean_grad = np.asarray(grad) @ vectors
        additive = projected.var(axis=0) / problem.batch + mean_grad**2
        coupling = projected_example_hessians(d, x, z, y, jnp.asarray(vectors[:, :k])).var(axis=0) / problem.batch
        gradient_norm = float(np.linalg.norm(np.asarray(grad)))
    return ModelPoint(np.asarray(x), float(loss), gradient_norm, values, additive, coupling, full, source,
                      min(top, values.size), np.asarray(vectors))  # fmt: skip


def top_eigenvalue(problem: ModelProblem, x: np.ndarray) -> float:
    """The largest Hessian eigenvalue of the penalised objective at ``x`` (Lanczos)."""
    import jax
    import jax.numpy as jnp

    from amsgd.simulate.models import model_derivatives

    with jax.enable_x64(True):
        d = model_derivatives(problem)
        z, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        return float(_eigen(d, jnp.asarray(x), z, y, 1, False)[0][0])


def _eigen(d: Derivatives, x, z, y, top: int, full: bool) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the Hessian of the objective at x, decreasing: all of them (the Hessian from its
    columns, :data:`_COLUMNS` Hessian-vector products at a time), or the top ``top`` by Lanczos (from
    :func:`~amsgd.diffusion.theory.second_moments.arnoldi_start`, the same bits in every process)."""
    import jax.numpy as jnp

    p = x.size
    if full:
        values, vectors = np.linalg.eigh(whole_hessian(d, x, z, y))
        return values[::-1], vectors[:, ::-1]
    import scipy.sparse.linalg

    def matvec(v: np.ndarray) -> np.ndarray:
        return np.asarray(d.hessian_rows(x, jnp.asarray(v.reshape(1, p), dtype=float), z, y))[0]

    operator = scipy.sparse.linalg.LinearOperator((p, p), matvec=matvec)
    values, vectors = scipy.sparse.linalg.eigsh(operator, k=min(top, p - 1), which="LA", v0=arnoldi_start(p))
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def whole_hessian(d: Derivatives, x, z, y) -> np.ndarray:
    """The Hessian of the objective at x, symmetrised, from its rows: :data:`_COLUMNS` Hessian-vector
    products at a time (JAX arrays in, under ``jax.enable_x64``)."""
    import jax.numpy as jnp

    eye = np.eye(x.size)
    hessian = np.concatenate([np.asarray(d.hessian_rows(x, jnp.asarray(eye[rows]), z, y))[:n]
                              for rows, n in padded_chunks(x.size, _COLUMNS)])  # fmt: skip
    return 0.5 * (hessian + hessian.T)


def projected_example_hessians(d: Derivatives, x, z, y, q) -> np.ndarray:
    """``Qᵀ H_n Q`` ``(N, k, k)`` for every training example n (``H_n`` the Hessian of its loss at x,
    ``Q`` the columns of ``q``): k Hessian-vector products per example, vectorised over chunks of
    :data:`_CHUNK` examples (JAX arrays in, under ``jax.enable_x64``)."""
    return np.concatenate([np.asarray(d.example_hessians(x, q, z[rows], y[rows]))[:n]
                           for rows, n in padded_chunks(z.shape[0], _CHUNK)])  # fmt: skip


def padded_chunks(total: int, size: int) -> Iterator[tuple[np.ndarray, int]]:
    """``(indices, n)`` covering ``0..total−1`` in order, ``min(size, total)`` indices each, the last
    chunk padded by repeating ``total − 1`` (its first n are real): every chunk has one shape, and JAX
    compiles one program for all of them."""
    size = min(size, total)
    for start in range(0, total, size):
        yield np.minimum(np.arange(start, start + size), total - 1), min(size, total - start)
