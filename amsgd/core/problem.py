"""The Problem type: one streaming-PCA instance of Async-MSGD, validated once at the boundary.

A problem is the covariance Σ (any symmetric positive-definite matrix, or a spectrum meaning
``Σ = diag(spectrum)``), the data distribution, the step size η, the momentum μ and the delay model.
Its eigen-decomposition ``Σ = Q Λ Qᵀ`` (eigenvalues in decreasing order) is computed once here;
every later stage works in eigen-coordinates ``h = Qᵀ v``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from amsgd.core import checks
from amsgd.core.delays import ConstantDelay, DelayModel
from amsgd.core.distributions import Distribution, Gaussian
from amsgd.core.errors import ProblemError

#: The default problem of the published experiment: d = 4, Σ = diag(4, 3, 2, 1).
DEFAULT_SPECTRUM: tuple[float, ...] = (4.0, 3.0, 2.0, 1.0)
DEFAULT_ETA = 5e-4
DEFAULT_MU = 0.9

#: Relative tolerance for symmetry of a user covariance and for treating eigenvalues as equal.
_REL_TOL = 1e-10
#: The smallest η (λ1 − λ2)(1 − μ) predictions accept (:meth:`Problem.require_resolvable_step`).
MIN_STEP_RESOLUTION = 1e-10
#: The largest η λ1 predictions accept: every delay is unstable from η λ1 = 2 (1 + μ) <= 4 on, and
#: beyond this the theory's fourth powers of η λ overflow double precision (η λ1 = 1e200: a traceback).
MAX_STEP_SCALE = 1e50


def require_step_scale(scale: float, name: str) -> None:
    """Refuse a step whose ``scale`` (``η`` times the largest curvature, called ``name``) is above
    :data:`MAX_STEP_SCALE`: unstable at every delay, and the theory's moments overflow."""
    if scale > MAX_STEP_SCALE:
        raise ProblemError(f"{name} = {scale:.3g} is above {MAX_STEP_SCALE:g}, where the finite-eta theory's moments "
                           f"overflow double precision (every delay is unstable from {name} = 2 (1 + mu) on); lower eta")


@dataclass(frozen=True, eq=False)
class Problem:
    """Async-MSGD on streaming PCA: ``v ← v + μ (v − v_prev) + η (I − v vᵀ) X Xᵀ v_{stale}``.

    Parameters
    ----------
    covariance
        Σ, a symmetric positive-definite ``(d, d)`` matrix.
    distribution
        The law of the samples X (covariance exactly Σ).
    eta
        Step size η > 0.
    mu
        Momentum μ in [0, 1).
    delay
        The delay model of the stale gradient (default: no delay).
    """

    covariance: np.ndarray
    distribution: Distribution = field(default_factory=Gaussian)
    eta: float = DEFAULT_ETA
    mu: float = DEFAULT_MU
    delay: DelayModel = field(default_factory=lambda: ConstantDelay(0))
    eigenvalues: np.ndarray = field(init=False, repr=False)
    basis: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sigma, diagonal = _validate_covariance(self.covariance)
        object.__setattr__(self, "covariance", sigma)
        object.__setattr__(self, "eta", _validate_eta(self.eta))
        object.__setattr__(self, "mu", _validate_mu(self.mu))
        if not isinstance(self.distribution, Distribution):
            raise ProblemError(f"distribution must be a Distribution, got {self.distribution!r}")
        if not isinstance(self.delay, DelayModel):
            raise ProblemError(f"delay must be a DelayModel, got {self.delay!r}")
        lam, q = _eigen_decomposition(sigma, diagonal)
        for name, value in (("eigenvalues", lam), ("basis", q)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def from_spectrum(
        cls,
        spectrum: Sequence[float] = DEFAULT_SPECTRUM,
        basis: np.ndarray | None = None,
        **kwargs,
    ) -> Problem:
        """Build Σ = B diag(spectrum) Bᵀ from eigenvalues and an orthonormal basis (default I)."""
        try:
            lam = np.asarray(spectrum, dtype=float)
        except (TypeError, ValueError):
            raise ProblemError(f"spectrum must be a sequence of numbers such as (4, 3, 2, 1), got {spectrum!r}") from None
        if lam.ndim != 1 or lam.size < 2:
            raise ProblemError(f"spectrum must list at least two eigenvalues, got {spectrum!r}")
        if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
            raise ProblemError(f"spectrum entries must be finite and > 0, got {lam.tolist()}")
        if basis is None:
            return cls(np.diag(lam), **kwargs)
        b = np.asarray(basis, dtype=float)
        if b.shape != (lam.size, lam.size) or not np.allclose(b.T @ b, np.eye(lam.size), atol=1e-9):
            raise ProblemError(f"basis must be an orthonormal ({lam.size}, {lam.size}) matrix")
        return cls(b @ np.diag(lam) @ b.T, **kwargs)

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.size)

    @property
    def tau(self) -> int:
        """The constant delay, when the delay model is constant; otherwise an error."""
        if isinstance(self.delay, ConstantDelay):
            return self.delay.tau
        raise ProblemError(f"this needs a constant delay (--tau N), got delay {self.delay.spec}")

    @property
    def eigengap(self) -> float:
        return float(self.eigenvalues[0] - self.eigenvalues[1])

    def require_eigengap(self) -> None:
        """Refuse problems with λ1 = λ2: the optimum e_1 is then not isolated."""
        if self.eigengap <= _REL_TOL * self.eigenvalues[0]:
            raise ProblemError(
                "covariance needs an eigengap λ1 > λ2 for this prediction, got "
                f"λ1 = {self.eigenvalues[0]:g}, λ2 = {self.eigenvalues[1]:g}"
            )

    def require_resolvable_step(self) -> None:
        """Refuse ``η (λ1 − λ2)(1 − μ) <`` :data:`MIN_STEP_RESOLUTION` and ``η λ1 >`` :data:`MAX_STEP_SCALE`.

        The finite-η theory solves for the stationary moments of recursions whose roots approach 1
        as η → 0, and in double precision its numbers then carry a relative rounding error of about
        ``0.2 ε_machine / (η (λ1 − λ2)(1 − μ))``: measured on the floor for μ = 0, 0.9, 0.99 and
        delays 0 and 5, 4e-7 or less at the bound, 2e-5 a hundred times below it, and the floor
        negative or the solve singular near 1e-15. Only ``η Σ`` enters the algorithm, so rescaling
        the data does not help; the step must grow. A step with ``η λ1 >`` :data:`MAX_STEP_SCALE` is
        refused too: it is unstable at every delay, and its moments overflow."""
        require_step_scale(self.eta * self.eigenvalues[0], "eta·λ1")
        resolution = self.eta * self.eigengap * (1.0 - self.mu)
        if resolution < MIN_STEP_RESOLUTION * (1 - 1e-9):  # at the bound itself (to rounding): accepted
            raise ProblemError(
                f"eta·(λ1 − λ2)·(1 − mu) = {resolution:.3g} is below {MIN_STEP_RESOLUTION:g}, where the "
                "finite-eta theory's numbers carry rounding errors above 1e-6 (double precision); raise eta"
            )

    def require_finite_fourth_moments(self) -> None:
        """Refuse distributions whose fourth moments, hence the gradient-noise covariance, are infinite."""
        if not self.distribution.finite_fourth_moments:
            raise ProblemError(
                f"distribution {self.distribution.spec} has infinite fourth moments; "
                "moment-based predictions need student-t:NU with NU > 4"
            )

    def replace(self, **changes) -> Problem:
        """A copy with some fields changed (re-validated)."""
        fields = dict(
            covariance=self.covariance,
            distribution=self.distribution,
            eta=self.eta,
            mu=self.mu,
            delay=self.delay,
        )
        fields.update(changes)
        return Problem(**fields)

    def to_dict(self) -> dict:
        """A JSON-ready description of the problem."""
        diagonal = np.allclose(self.covariance, np.diag(np.diag(self.covariance)))
        out = {
            "dim": self.dim,
            "spectrum": self.eigenvalues.tolist(),
            "covariance_is_diagonal": bool(diagonal),
            "distribution": self.distribution.spec,
            "eta": self.eta,
            "mu": self.mu,
            "delay": self.delay.spec,
        }
        if not diagonal:
            out["covariance"] = self.covariance.tolist()
        return out


def read_covariance(path: str) -> np.ndarray:
    """A covariance matrix saved with ``numpy.save`` (checked when the Problem is built)."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ProblemError(f"covariance file {path!r} does not exist") from None
    except (OSError, ValueError):
        raise ProblemError(f"covariance file {path!r} is not a .npy array (write it with numpy.save)") from None


def _validate_covariance(covariance: object) -> tuple[np.ndarray, bool]:
    """Σ as a float matrix, checked square, finite, symmetric and positive definite; and whether it is diagonal."""
    if np.iscomplexobj(covariance):
        raise ProblemError("covariance must be real (a complex matrix was given)")
    try:
        sigma = np.array(covariance, dtype=float)
    except (TypeError, ValueError):
        raise ProblemError("covariance must be a numeric (d, d) matrix") from None
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1] or sigma.shape[0] < 2:
        raise ProblemError(f"covariance must be a square (d, d) matrix with d >= 2, got shape {sigma.shape}")
    if not np.all(np.isfinite(sigma)):
        raise ProblemError("covariance entries must be finite")
    scale = max(np.abs(sigma).max(), np.finfo(float).tiny)
    diagonal = _is_diagonal(sigma)
    if diagonal:
        smallest = np.diagonal(sigma).min()
    else:
        if np.abs(sigma - sigma.T).max() > _REL_TOL * scale * 1e3:
            raise ProblemError("covariance must be symmetric")
        sigma = (sigma + sigma.T) / 2
        smallest = np.linalg.eigvalsh(sigma)[0]
    if smallest <= _REL_TOL * scale:
        raise ProblemError(
            f"covariance must be positive definite, its smallest eigenvalue is {smallest:.3g} "
            f"(at most {_REL_TOL:g} times its largest entry, {scale:.3g})"
        )
    return sigma, diagonal


def _is_diagonal(sigma: np.ndarray) -> bool:
    """Whether every off-diagonal entry of the square ``sigma`` is zero (one pass, no temporary matrix)."""
    return np.count_nonzero(sigma) == np.count_nonzero(np.diagonal(sigma))


def _eigen_decomposition(sigma: np.ndarray, diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """``Σ = Q Λ Qᵀ`` with the eigenvalues decreasing and each eigenvector's largest entry positive (a
    deterministic sign keeps e_j reproducible).

    A diagonal Σ (a spectrum) keeps the coordinate axes: ``Q`` permutes them into decreasing order of
    the diagonal, equal entries in coordinate order, with no O(d³) solve (d = 10 000 takes seconds,
    where LAPACK took minutes). For distinct entries this is the basis LAPACK returns; for equal ones
    LAPACK's order within the eigenspace is its own."""
    if diagonal:
        entries = np.diagonal(sigma)
        order = np.argsort(-entries, kind="stable")
        q = np.zeros_like(sigma)
        q[order, np.arange(order.size)] = 1.0
        return entries[order], q
    lam, q = np.linalg.eigh(sigma)
    order = np.argsort(lam)[::-1]
    lam, q = lam[order], q[:, order]
    signs = np.sign(q[np.argmax(np.abs(q), axis=0), np.arange(q.shape[1])])
    return lam, q * signs


def _validate_eta(eta: object) -> float:
    return checks.positive("eta", eta)


def _validate_mu(mu: object) -> float:
    value = checks.real("mu", mu)
    if not 0.0 <= value < 1.0:
        raise ProblemError(f"mu must satisfy 0 <= mu < 1, got {value:g}")
    return value
