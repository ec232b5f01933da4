"""The Problem type: one streaming-PCA instance of Async-MSGD, validated once at the boundary.

A problem is the covariance Σ (any symmetric positive-definite matrix, or a spectrum meaning
``Σ = diag(spectrum)``), the data distribution, the step size η, the momentum μ and the delay model.
Its eigen-decomposition ``Σ = Q Λ Qᵀ`` (eigenvalues in decreasing order) is computed once here;
every later stage works in eigen-coordinates ``h = Qᵀ v``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from amsgd.core import checks
from amsgd.core.delays import ConstantDelay, DelayModel, RoundRobinDelay, as_delay_model
from amsgd.core.distributions import Distribution, Gaussian, parse_distribution
from amsgd.core.errors import ProblemError, RunWarning

#: The default problem of the published experiment: d = 4, Σ = diag(4, 3, 2, 1).
DEFAULT_SPECTRUM: tuple[float, ...] = (4.0, 3.0, 2.0, 1.0)
DEFAULT_ETA = 5e-4
DEFAULT_MU = 0.9

#: Relative tolerance for symmetry of a user covariance and for treating eigenvalues as equal.
_REL_TOL = 1e-10
#: The range of the largest eigenvalue of Σ (in magnitude): beyond it the theory's squares and fourth
#: powers of Σ (and of η for a tiny Σ) leave double precision, e.g. Σ = 1e308 overflowed when
#: symmetrised and a spectrum of 1e-300 with η = 1e295 overflowed η².
MIN_SCALE, MAX_SCALE = 1e-100, 1e100
#: The smallest η (λ1 − λ2)(1 − μ) predictions accept (:meth:`Problem.require_resolvable_step`).
MIN_STEP_RESOLUTION = 1e-10
#: The largest η λ1 predictions accept: every delay is unstable from η λ1 = 2 (1 + μ) <= 4 on, and
#: beyond this the theory's fourth powers of η λ overflow double precision (η λ1 = 1e200: a traceback).
MAX_STEP_SCALE = 1e50


def require_step_resolution(resolution: float, what: str) -> None:
    """Refuse a step resolution ``what = resolution`` (η times a rate times 1 − μ) below
    :data:`MIN_STEP_RESOLUTION` (:meth:`Problem.require_resolvable_step`); at the bound itself, to
    rounding, it is accepted."""
    if resolution < MIN_STEP_RESOLUTION * (1 - 1e-9):
        raise ProblemError(
            f"{what} = {resolution:.3g} is below {MIN_STEP_RESOLUTION:g}, where the finite-eta theory's numbers "
            "carry rounding errors above 1e-6 (double precision); raise eta"
        )


def require_step_scale(scale: float, name: str) -> None:
    """Refuse a step whose ``scale`` (``η`` times the largest curvature, called ``name``) is above
    :data:`MAX_STEP_SCALE`: unstable at every delay, and the theory's moments overflow."""
    if scale > MAX_STEP_SCALE:
        raise ProblemError(f"{name} = {scale:.3g} is above {MAX_STEP_SCALE:g}, where the finite-eta theory's moments "
                           f"overflow double precision (every delay is unstable from {name} = 2 (1 + mu) on); lower eta")


_GAUSSIAN = Gaussian()
_NO_DELAY = ConstantDelay(0)


@dataclass(frozen=True, eq=False)
class _Sigma:
    """Σ as the problem keeps it, validated and decomposed once (:func:`_decompose`): the diagonal
    ``entries`` of a diagonal Σ (the matrix is never formed) or the symmetric ``matrix``; the
    eigenvalues in decreasing order; for a diagonal Σ the axis ``order[j]`` of eigenvector j, else
    the eigenvectors ``q``."""

    entries: np.ndarray | None
    matrix: np.ndarray | None
    eigenvalues: np.ndarray
    order: np.ndarray | None
    q: np.ndarray | None


@dataclass(frozen=True, eq=False, init=False)
class Problem:
    """Async-MSGD on streaming PCA: ``v ← v + μ (v − v_prev) + η g(v_stale, X)``, ``g(v, X) = (I − v vᵀ) X Xᵀ v``.

    A diagonal Σ (every problem built by :meth:`from_spectrum` without a basis) is kept as its
    diagonal, and its eigenbasis as a permutation of the axes: memory and work O(d), where the
    matrices take ``16 d²`` bytes (1.5 GiB at d = 10 000). :attr:`covariance` and :attr:`basis`
    are then formed when first asked for; :meth:`to_eigen` and :meth:`from_eigen` change
    coordinates without them.

    Parameters
    ----------
    covariance
        Σ, a symmetric positive-definite ``(d, d)`` matrix.
    distribution
        The law of the samples X (covariance exactly Σ): a :class:`Distribution` or its spec
        (``"student-t:8"``, :func:`~amsgd.core.distributions.parse_distribution`).
    eta
        Step size η > 0.
    mu
        Momentum μ in [0, 1).
    delay
        The delay model of the stale gradient (default: no delay): a :class:`DelayModel`, its spec
        (``"uniform:0-8"``, :func:`~amsgd.core.delays.parse_delay`), or an integer τ (a constant delay).
    """

    distribution: Distribution
    eta: float
    mu: float
    delay: DelayModel
    eigenvalues: np.ndarray = field(repr=False)

    def __init__(
        self,
        covariance: np.ndarray,
        distribution: Distribution = _GAUSSIAN,
        eta: float = DEFAULT_ETA,
        mu: float = DEFAULT_MU,
        delay: DelayModel = _NO_DELAY,
    ) -> None:
        # a _Sigma comes from this module (a spectrum, or a copy by `replace`), already validated
        sigma = covariance if isinstance(covariance, _Sigma) else _validate_covariance(covariance)
        if isinstance(distribution, str):
            distribution = parse_distribution(distribution)
        if not isinstance(distribution, Distribution):
            raise ProblemError(f"distribution must be a Distribution or its spec, got {distribution!r}")
        delay = as_delay_model(delay)
        for name, value in (("distribution", distribution), ("eta", _validate_eta(eta)), ("mu", _validate_mu(mu)),
                            ("delay", delay), ("eigenvalues", sigma.eigenvalues), ("_sigma", sigma),
                            ("_order", sigma.order), ("_q", sigma.q)):  # fmt: skip
            object.__setattr__(self, name, value)

    @classmethod
    def from_spectrum(
        cls,
        spectrum: Sequence[float] = DEFAULT_SPECTRUM,
        basis: np.ndarray | None = None,
        **kwargs,
    ) -> Problem:
        """Build Σ = B diag(spectrum) Bᵀ from eigenvalues and an orthonormal basis (default I, kept
        as the diagonal alone)."""
        lam = checks.real_array("spectrum", spectrum, "a sequence of numbers such as (4, 3, 2, 1)")
        if lam.ndim != 1:
            raise ProblemError(f"spectrum must be a flat list of eigenvalues, got an array of shape {lam.shape}")
        if lam.size < 2:
            raise ProblemError(f"spectrum must list at least two eigenvalues, got {spectrum!r}")
        if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
            raise ProblemError(f"spectrum entries must be finite and > 0, got {lam.tolist()}")
        if basis is None:
            return cls(_positive_diagonal(lam), **kwargs)  # real_array made lam a fresh array
        b = checks.real_array("basis", basis)
        if b.shape != (lam.size, lam.size) or not np.allclose(b.T @ b, np.eye(lam.size), atol=1e-9):
            raise ProblemError(f"basis must be an orthonormal ({lam.size}, {lam.size}) matrix")
        return cls(b @ np.diag(lam) @ b.T, **kwargs)

    @property
    def covariance_is_diagonal(self) -> bool:
        """Whether Σ is diagonal (its eigenbasis a permutation of the axes)."""
        return self._sigma.entries is not None

    @property
    def covariance_diagonal(self) -> np.ndarray:
        """The diagonal of Σ in the original coordinates (read-only; O(d) for a diagonal Σ)."""
        if self._sigma.entries is not None:
            return _read_only(self._sigma.entries)
        return _read_only(np.diag(self._sigma.matrix).copy())

    @cached_property
    def covariance(self) -> np.ndarray:
        """Σ as a ``(d, d)`` matrix (read-only; formed on first use for a diagonal Σ)."""
        if self._sigma.matrix is not None:
            return self._sigma.matrix
        return _read_only(np.diag(self._sigma.entries))

    @cached_property
    def basis(self) -> np.ndarray:
        """Q of ``Σ = Q Λ Qᵀ`` as a ``(d, d)`` matrix, eigenvector j in column j (read-only; formed on
        first use for a diagonal Σ, where it permutes the axes)."""
        if self._q is not None:
            return self._q
        q = np.zeros((self.dim, self.dim))
        q[self._order, np.arange(self.dim)] = 1.0
        return _read_only(q)

    def to_eigen(self, x: np.ndarray) -> np.ndarray:
        """``Qᵀ x`` for vectors ``x`` in the original coordinates (the last axis), O(d) for a diagonal Σ."""
        x = self._vectors("to_eigen", x)
        return x[..., self._order] if self._order is not None else x @ self._q

    def from_eigen(self, h: np.ndarray) -> np.ndarray:
        """``Q h`` for vectors ``h`` in eigen-coordinates (the last axis), O(d) for a diagonal Σ."""
        h = self._vectors("from_eigen", h)
        if self._order is None:
            return h @ self._q.T
        x = np.empty_like(h)
        x[..., self._order] = h
        return x

    def _vectors(self, what: str, x: object) -> np.ndarray:
        """``x`` as real vectors of length d along its last axis, or one clear error (a wrong length was
        cut or reordered silently for a diagonal Σ)."""
        x = checks.real_array(what, x, copy=False)  # read only: to_eigen and from_eigen form new arrays
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ProblemError(f"{what} needs vectors of length d = {self.dim} along the last axis, got shape {x.shape}")
        return x

    def __getstate__(self) -> dict:
        """Pickled without the matrices a diagonal Σ forms on demand."""
        state = dict(self.__dict__)
        if self.covariance_is_diagonal:
            state.pop("covariance", None)
            state.pop("basis", None)
        return state

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.size)

    @property
    def tau(self) -> int:
        """The constant delay, when the delay model is constant (``constant:N``, or ``workers:M``: M − 1);
        otherwise an error."""
        if isinstance(self.delay, ConstantDelay):
            return self.delay.tau
        if isinstance(self.delay, RoundRobinDelay):
            return self.delay.workers - 1
        raise ProblemError(f"this needs a constant delay (--tau N), got delay {self.delay.spec}")

    @property
    def eigengap(self) -> float:
        return float(self.eigenvalues[0] - self.eigenvalues[1])

    @property
    def rounding_gap(self) -> float:
        """The difference of eigenvalues that counts as none: :data:`_REL_TOL` × λ1."""
        return _REL_TOL * float(self.eigenvalues[0])

    @property
    def has_eigengap(self) -> bool:
        """Whether λ1 > λ2 beyond rounding (:attr:`rounding_gap`)."""
        return self.eigengap > self.rounding_gap

    def require_eigengap(self) -> None:
        """Refuse problems with λ1 = λ2: the optimum e_1 is then not isolated."""
        if not self.has_eigengap:
            raise ProblemError(f"covariance needs an eigengap λ1 > λ2 for this prediction, got {self._top_pair()}")

    def _top_pair(self) -> str:
        """``λ1 = …, λ2 = …`` and why a gap is none where they differ by rounding: as given for a diagonal
        Σ; a matrix's are computed, and merged where they lie that close (:func:`_merged`), which is said."""
        first, second = (checks.spec_number(float(x)) for x in self.eigenvalues[:2])
        if not self.covariance_is_diagonal:
            within = (f" (the matrix's eigenvalues, computed; those within {_REL_TOL:g} × λ1 of each other are "
                      "taken as one repeated eigenvalue)")  # fmt: skip
        else:
            within = f" (a gap below {_REL_TOL:g} × λ1 counts as none)" if first != second else ""
        return f"λ1 = {first}, λ2 = {second}{within}"

    def warn_without_eigengap(self) -> None:
        """Warn (:class:`~amsgd.core.errors.RunWarning`) where λ1 = λ2: the error ``sin²∠(v, e_1)`` is
        then the distance from one vector of the top eigenspace, not from the space, and a run that
        reaches the space may keep any error below 1 (the start e_2 is itself a maximiser)."""
        if not self.has_eigengap:
            warnings.warn(
                f"{self._top_pair()}: the top eigenvector is not unique, and the error sin² of the "
                "angle to e_1 does not measure convergence to the top eigenspace (runs that reach it keep any "
                "error, and e2, the default start, maximises the objective too); give a covariance with an eigengap",
                RunWarning,
                stacklevel=3,
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
        require_step_scale(self.eta * float(self.eigenvalues[0]), "eta·λ1")  # Python floats: inf, no warning
        require_step_resolution(self.eta * self.eigengap * (1.0 - self.mu), "eta·(λ1 − λ2)·(1 − mu)")

    def require_resolvable_momenta(self, mus, name: str) -> None:
        """:meth:`require_resolvable_step` at each momentum of ``mus`` (a table over momenta, named
        ``name`` in the message): 1 − μ → 0 shrinks the step below what the numbers resolve. Without an
        eigengap no step is resolvable: :meth:`require_eigengap` says so first."""
        self.require_eigengap()
        for mu in mus:
            at_mu = self.replace(mu=float(mu))  # a momentum out of range is refused in its own words
            try:
                at_mu.require_resolvable_step()
            except ProblemError as exc:
                raise ProblemError(f"{name}: at mu = {float(mu)!r}, {exc} or lower that momentum") from None

    def require_finite_fourth_moments(self) -> None:
        """Refuse distributions whose fourth moments, hence the gradient-noise covariance, are infinite."""
        if not self.distribution.finite_fourth_moments:
            raise ProblemError(
                f"distribution {self.distribution.spec} has infinite fourth moments; "
                "moment-based predictions need student-t:NU with NU > 4"
            )

    def replace(self, **changes) -> Problem:
        """A copy with some fields changed (re-validated; Σ is not validated or decomposed again unless it changes)."""
        fields = dict(distribution=self.distribution, eta=self.eta, mu=self.mu, delay=self.delay)
        unknown = sorted(set(changes) - set(fields) - {"covariance"})
        if unknown:
            raise ProblemError(f"Problem.replace takes covariance, {', '.join(fields)}; got {', '.join(unknown)}")
        if "covariance" in changes:
            return Problem(changes.pop("covariance"), **{**fields, **changes})
        return Problem(self._sigma, **{**fields, **changes})

    def to_dict(self) -> dict:
        """A JSON-ready description of the problem."""
        out = {
            "dim": self.dim,
            "spectrum": self.eigenvalues.tolist(),
            "covariance_is_diagonal": self.covariance_is_diagonal,
            "distribution": self.distribution.spec,
            "eta": self.eta,
            "mu": self.mu,
            "delay": self.delay.spec,
        }
        if not self.covariance_is_diagonal:
            out["covariance"] = self.covariance.tolist()
        elif np.any(np.diff(self._sigma.entries) > 0):  # the spectrum alone does not say which axis is which
            out["covariance_diagonal"] = self._sigma.entries.tolist()
        return out


def read_covariance(path: str) -> np.ndarray:
    """A covariance matrix saved with ``numpy.save`` (checked when the Problem is built)."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ProblemError(f"covariance file {path!r} does not exist") from None
    except (OSError, ValueError):
        raise ProblemError(f"covariance file {path!r} is not a .npy array (write it with numpy.save)") from None


def _validate_covariance(covariance: object) -> _Sigma:
    """Σ as floats, checked square, finite, symmetric and positive definite; a diagonal one kept as its diagonal."""
    sigma = checks.real_array("covariance", covariance)
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1] or sigma.shape[0] < 2:
        raise ProblemError(f"covariance must be a square (d, d) matrix with d >= 2, got shape {sigma.shape}")
    if not np.all(np.isfinite(sigma)):
        raise ProblemError("covariance entries must be finite")
    if _is_diagonal(sigma):
        return _positive_diagonal(np.diagonal(sigma).copy())
    if np.abs(sigma - sigma.T).max() > _REL_TOL * np.abs(sigma).max() * 1e3:
        raise ProblemError("covariance must be symmetric")
    sigma = sigma / 2 + sigma.T / 2
    _require_positive(np.linalg.eigvalsh(sigma))
    return _decompose(None, _read_only(sigma))


def _positive_diagonal(entries: np.ndarray) -> _Sigma:
    """A diagonal Σ from its (finite) diagonal, checked positive definite."""
    _require_positive(entries)
    return _decompose(_read_only(entries), None)


def _require_positive(eigenvalues: np.ndarray) -> None:
    """Refuse Σ unless its largest eigenvalue in magnitude lies in [:data:`MIN_SCALE`, :data:`MAX_SCALE`]
    and its smallest is above :data:`_REL_TOL` times that: rules of the eigenvalues alone, so that a
    rotation of Σ is refused or accepted as its diagonal form is."""
    scale = float(np.abs(eigenvalues).max())
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ProblemError(
            f"covariance's largest eigenvalue is {scale:.3g} in magnitude; it must lie in [{MIN_SCALE:g}, "
            f"{MAX_SCALE:g}], where the theory's powers of Σ stay within double precision (only eta·Σ enters the "
            "algorithm: rescale the data and eta together)"
        )
    smallest = float(eigenvalues.min())
    if smallest <= _REL_TOL * scale:
        raise ProblemError(
            f"covariance must be positive definite with its smallest eigenvalue above {_REL_TOL:g} times its "
            f"largest in magnitude ({scale:.3g}); its smallest eigenvalue is {smallest:.3g}"
        )


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _is_diagonal(sigma: np.ndarray) -> bool:
    """Whether every off-diagonal entry of the square ``sigma`` is zero (one pass, no temporary matrix)."""
    return np.count_nonzero(sigma) == np.count_nonzero(np.diagonal(sigma))


def _decompose(entries: np.ndarray | None, matrix: np.ndarray | None) -> _Sigma:
    """``Σ = Q Λ Qᵀ`` with the eigenvalues decreasing, for a diagonal Σ (``entries``) or a symmetric
    ``matrix``; each dense eigenvector's largest entry positive (a deterministic sign keeps e_j
    reproducible).

    A diagonal Σ keeps the coordinate axes in decreasing order of the diagonal, equal entries in
    coordinate order, with no O(d³) solve and no matrix (d = 10 000 takes milliseconds, where LAPACK
    took minutes). For distinct entries this is the basis LAPACK returns; for equal ones LAPACK's
    order within the eigenspace is its own. A matrix's eigenvalues within rounding of each other are
    made equal (:func:`_merged`): a rotated Σ gives the eigenvalues of its diagonal form exactly (a
    diagonal's are kept as given)."""
    if entries is not None:
        order = np.argsort(-entries, kind="stable")
        return _Sigma(entries, None, _read_only(entries[order]), _read_only(order), None)
    lam, q = np.linalg.eigh(matrix)
    order = np.argsort(lam)[::-1]
    lam, q = lam[order], q[:, order]
    signs = np.sign(q[np.argmax(np.abs(q), axis=0), np.arange(q.shape[1])])
    return _Sigma(None, matrix, _read_only(_merged(lam)), None, _read_only(q * signs))


def _merged(lam: np.ndarray) -> np.ndarray:
    """Decreasing eigenvalues with each run of neighbours closer than :data:`_REL_TOL` × λ1 replaced
    by its mean. LAPACK returns a repeated eigenvalue of a rotated Σ as values 1e-16 apart (Σ = Q
    diag(4, 1, 1, 1) Qᵀ: 1 ± 1e-15), whose differences then read as rates of the modes at a saddle:
    signs that differ from the diagonal form's exact zeros, and a singular solve."""
    if lam.size < 2:
        return lam
    starts = np.flatnonzero(np.r_[True, -np.diff(lam) > _REL_TOL * abs(lam[0])])
    means = np.add.reduceat(lam, starts) / np.diff(np.r_[starts, lam.size])
    return np.repeat(means, np.diff(np.r_[starts, lam.size]))


def _validate_eta(eta: object) -> float:
    return checks.positive("eta", eta)


def _validate_mu(mu: object) -> float:
    value = checks.real("mu", mu)
    if not 0.0 <= value < 1.0:
        raise ProblemError(f"mu must satisfy 0 <= mu < 1, got {checks.spec_number(value)}")
    return value
