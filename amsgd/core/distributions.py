"""Data distributions for streaming PCA, each with covariance exactly Σ (the numeric side).

Everything is expressed in eigen-coordinates ``Y = Qᵀ X`` of ``Σ = Q Λ Qᵀ``. A distribution provides
``sample(rng, n, eigenvalues, basis)``: ``n`` draws of ``Y`` (rows). Second moments are always
``E[Y Yᵀ] = Λ``. Fourth moments of the named families (derived symbolically by
:mod:`amsgd.derivations.distributions`):

* Gaussian (Isserlis): ``E[Y_i Y_j Y_k Y_l] = Λ_ij Λ_kl + Λ_ik Λ_jl + Λ_il Λ_jk``;
* Rademacher-type (``Y_i = sqrt(λ_i) r_i``, independent signs): the same, except ``E[Y_i⁴] = λ_i²``;
* Student-t with ν degrees of freedom and one shared scale: the Gaussian values times
  ``(ν − 2)/(ν − 4)``, finite only for ν > 4;
* a user sampler: estimated from :meth:`SampledDistribution.moment_samples_for`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError, RunWarning

Sampler = Callable[[np.random.Generator, int], np.ndarray]


class Distribution(ABC):
    """A zero-mean data distribution whose covariance is the problem's Σ."""

    #: Name as written on the command line (``gaussian``, ``student-t:5`` ...).
    spec: str
    #: False when some fourth moment is infinite (moment-based predictions are refused).
    finite_fourth_moments: bool = True
    #: True when ``sample`` draws X in the original coordinates and rotates them by the basis Q (a
    #: user sampler); the named families draw Y directly and ignore ``basis`` (the simulator then
    #: passes None, so that a diagonal Σ in high dimension never forms Q).
    needs_basis: bool = False

    @abstractmethod
    def sample(
        self, rng: np.random.Generator, n: int, eigenvalues: np.ndarray, basis: np.ndarray | None
    ) -> np.ndarray:
        """Draw ``n`` samples of ``Y = Qᵀ X``, returned as an ``(n, d)`` array."""

    def to_dict(self) -> dict:
        return {"spec": self.spec}


@dataclass(frozen=True)
class Gaussian(Distribution):
    """``X = Σ^{1/2} z`` with ``z`` standard normal."""

    spec: str = field(default="gaussian", init=False)

    def sample(self, rng, n, eigenvalues, basis):
        return rng.standard_normal((n, eigenvalues.size)) * np.sqrt(eigenvalues)


@dataclass(frozen=True)
class Rademacher(Distribution):
    """Independent eigen-coordinates ``Y_i = sqrt(λ_i) r_i`` with random signs ``r_i``."""

    spec: str = field(default="rademacher", init=False)

    def sample(self, rng, n, eigenvalues, basis):
        signs = rng.integers(0, 2, size=(n, eigenvalues.size), dtype=np.int8) * 2 - 1
        return signs * np.sqrt(eigenvalues)


#: The largest Student-t ν taken: from about 1e17 on the law's moments are the Gaussian law's to double
#: precision, and from about 1e307 on its formulas overflow (the predictions hung at 1e308).
STUDENT_T_NU_MAX = 1e300


@dataclass(frozen=True)
class StudentT(Distribution):
    """Multivariate t with one shared scale: ``X = sqrt((ν − 2)/w) Σ^{1/2} z``, ``w ~ χ²_ν``, for
    ``2 < ν ≤`` :data:`STUDENT_T_NU_MAX`."""

    nu: float
    spec: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nu", checks.real("distribution student-t:NU, NU", self.nu))
        if not np.isfinite(self.nu) or self.nu <= 2:
            raise ProblemError(
                f"distribution student-t:NU needs NU > 2 for a finite covariance, got NU = {self.nu:g}"
            )
        if self.nu > STUDENT_T_NU_MAX:
            raise ProblemError(
                f"distribution student-t:NU takes NU up to {STUDENT_T_NU_MAX:g}, got NU = {self.nu:g}: beyond it its "
                "moment formulas overflow double precision, and long before it the law is the Gaussian one to "
                "rounding (give gaussian)"
            )
        object.__setattr__(self, "spec", f"student-t:{checks.spec_number(self.nu)}")

    @property
    def finite_fourth_moments(self) -> bool:  # type: ignore[override]
        return self.nu > 4

    def sample(self, rng, n, eigenvalues, basis):
        y = rng.standard_normal((n, eigenvalues.size))
        w = rng.chisquare(self.nu, size=(n, 1))
        y *= np.sqrt(eigenvalues)  # in place, in the order of z · sqrt(λ) · sqrt((ν − 2)/w): the same numbers
        np.divide(self.nu - 2.0, w, out=w)  # without two temporaries of n × d
        y *= np.sqrt(w, out=w)
        return y


#: For a sampler, a cross moment below this fraction of the product of the standard deviations is
#: sampling error, not a coupling between eigen-coordinates (about 10 standard errors at 200 000
#: draws of light-tailed data).
SAMPLED_CROSS_MOMENT_TOLERANCE = 0.05
#: The largest share of ``Σ_n Y_i⁴`` one moment draw may carry (:meth:`SampledDistribution.fourth_moment_samples_for`).
MAX_FOURTH_MOMENT_SHARE = 0.2
#: A user sampler whose moment draws put a mean or a covariance entry further than this from 0 and Σ
#: (relative to the scale sqrt(λ_i λ_j)) gets a warning: the predictions assume mean 0 and covariance Σ.
SAMPLER_MOMENT_TOLERANCE = 0.05
#: ... beyond this many of the draws' own standard errors (a heavy-tailed or small sample estimates them poorly).
SAMPLER_SIGMAS = 5.0


def cross_moments_vanish(forcing: np.ndarray) -> bool:
    """Whether per-draw forcings (draws in rows, one column per coordinate) are uncorrelated up to sampling:
    every ``|mean(b_i b_k)|``, ``i ≠ k``, at most :data:`SAMPLED_CROSS_MOMENT_TOLERANCE` of
    ``sqrt(E b_i² E b_k²)`` plus :data:`SAMPLER_SIGMAS` of its own standard error (a small sample's cross
    moments are large by chance: 2000 Gaussian draws have a standard error of about 0.04 there)."""
    b = np.asarray(forcing, dtype=float)
    n = b.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):  # draws too large for their moments tell nothing: False
        second = b.T @ b / n
        spread = np.sqrt(np.maximum((b**2).T @ (b**2) / n - second**2, 0.0) / n)  # standard errors of the means
        variances = np.diag(second)
        allowed = SAMPLED_CROSS_MOMENT_TOLERANCE * np.sqrt(np.outer(variances, variances)) + SAMPLER_SIGMAS * spread
        off = np.abs(second - np.diag(variances))
    return bool(np.all(np.isfinite(allowed)) and np.all(off <= allowed))


def largest_share(values: np.ndarray) -> np.ndarray:
    """Per column of non-negative ``values`` (draws in rows), the largest draw's share of the column's
    sum (0 for a column of zeros): near 1 where one draw carries a moment whose estimate is infinite."""
    totals = values.sum(axis=0)
    return np.divide(values.max(axis=0), totals, out=np.zeros_like(totals), where=totals > 0)


@dataclass(frozen=True)
class SampledDistribution(Distribution):
    """A user-supplied sampler ``sampler(rng, n) -> (n, d)`` array of ``X`` in original coordinates.

    Fourth moments are estimated once from ``moment_samples`` draws (seed ``moment_seed``), so
    derived quantities that depend on them are Monte Carlo estimates, reported as numbers.
    The sampler must have mean zero and covariance equal to the problem's Σ.
    """

    sampler: Sampler
    name: str = "sampler"
    moment_samples: int = 200_000
    moment_seed: int = 0
    spec: str = field(init=False)
    _moments: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    needs_basis = True  # X in the original coordinates, rotated by Q (a class attribute, not a field)

    def __post_init__(self) -> None:
        if not callable(self.sampler):
            raise ProblemError("distribution sampler must be callable as sampler(rng, n)")
        checks.integer("moment_samples", self.moment_samples, minimum=2)
        checks.integer("moment_seed", self.moment_seed)
        object.__setattr__(self, "spec", f"sampler:{self.name}")

    def __getstate__(self) -> dict:
        """Pickled (to Dask workers) without the cached moment draws."""
        return {**self.__dict__, "_moments": {}}

    def sample(self, rng, n, eigenvalues, basis):
        x = checks.real_array(f"distribution {self.spec}: the sampler's draws", self.sampler(rng, n), copy=False)
        if x.shape != (n, basis.shape[0]):
            raise ProblemError(
                f"distribution sampler returned shape {x.shape}, expected ({n}, {basis.shape[0]})"
            )
        if not np.isfinite(x).all():
            raise ProblemError(f"distribution {self.spec}: the sampler returned non-finite draws")
        return x @ basis

    def moment_samples_for(self, eigenvalues: np.ndarray, basis: np.ndarray) -> np.ndarray:
        """The ``moment_samples`` draws of ``Y`` (seed ``moment_seed``), drawn once for the last basis
        asked for (the derivation, the coefficients and the tail probability share them)."""
        key = (np.asarray(eigenvalues).tobytes(), np.asarray(basis).tobytes())
        cached = self._moments.get(key)
        if cached is None:
            rng = np.random.default_rng(self.moment_seed)
            cached = self.sample(rng, self.moment_samples, eigenvalues, basis)
            cached.setflags(write=False)
            self._moments.clear()
            self._moments[key] = cached
        return cached

    def fourth_moment_samples_for(self, eigenvalues: np.ndarray, basis: np.ndarray) -> np.ndarray:
        """The moment samples, refused when they cannot estimate fourth moments: if in some coordinate
        one draw carries more than :data:`MAX_FOURTH_MOMENT_SHARE` of ``Σ_n Y_i⁴``, the estimate rests
        on a single draw, as it does when ``E Y_i⁴`` is infinite. Heavy tails near ν = 4 cannot be told
        apart from samples; at the default 200 000 draws and d = 4, Student-t coordinates are refused
        in most seeds for ν <= 3, sometimes for ν = 4 to 5 and never for ν >= 6; the d coordinates are
        each a chance (independent Student-t 7 coordinates at d = 30: 4 of 20 seeds refused). Samples that pass are checked
        for mean 0 and covariance Σ (:func:`_warn_unless_centred_with_covariance`); both checks are made
        once per draw of the samples."""
        y = self.moment_samples_for(eigenvalues, basis)
        checked = ("fourth moments", np.asarray(eigenvalues).tobytes(), np.asarray(basis).tobytes())
        if checked in self._moments:  # checked once per draw
            return y
        with np.errstate(over="ignore"):
            square = y * y
            fourth = square * square  # not y**4: NumPy's general power is 3.5 times slower on 200 000 × 100 draws
        if not np.isfinite(fourth).all():
            raise ProblemError(
                f"distribution {self.spec}: its draws reach {np.abs(y).max():.3g}, whose fourth powers overflow double "
                "precision; moment-based predictions need them (is the sampler's covariance Sigma?)"
            )
        share = largest_share(fourth)
        worst = int(np.argmax(share))
        if share[worst] > MAX_FOURTH_MOMENT_SHARE:
            raise ProblemError(
                f"distribution {self.spec}: one of {y.shape[0]} draws carries {share[worst]:.0%} of the fourth "
                f"moment of coordinate {worst + 1}, so its fourth moments cannot be estimated from these "
                f"{y.shape[0]} draws (they look infinite, or the draws are too few): moment-based predictions need "
                "them; give more moment_samples, or a law with finite fourth moments"
            )
        self._moments[checked] = True
        _warn_unless_centred_with_covariance(self.spec, y, np.asarray(eigenvalues, dtype=float))
        return y


def distance_from_centred_with_covariance(y: np.ndarray, eigenvalues: np.ndarray) -> float:
    """How far the draws ``y`` (eigen-coordinates) lie from mean 0 and covariance ``diag(λ)`` beyond
    :data:`SAMPLER_SIGMAS` standard errors, as a share of the scale (``sqrt(λ_i)`` for the mean,
    ``sqrt(λ_i λ_j)`` for the second moments); above :data:`SAMPLER_MOMENT_TOLERANCE` the draws are
    not those of the problem's law."""
    n = y.shape[0]
    scale = np.sqrt(np.outer(eigenvalues, eigenvalues))
    second = y.T @ y / n  # E[y_i y_j], and the spread of y_i y_j, which sets its error (heavy tails, small n)
    spread = np.sqrt(np.maximum((y * y).T @ (y * y) / n - second**2, 0.0))
    mean = np.abs(y.mean(axis=0)) - SAMPLER_SIGMAS * y.std(axis=0) / np.sqrt(n)
    covariance = np.abs(second - np.diag(eigenvalues)) - SAMPLER_SIGMAS * spread / np.sqrt(n)
    return max(float((mean / np.sqrt(eigenvalues)).max()), float((covariance / scale).max()))


def _warn_unless_centred_with_covariance(spec: str, y: np.ndarray, eigenvalues: np.ndarray) -> None:
    """A :class:`~amsgd.core.errors.RunWarning` where the draws ``y`` are not centred with covariance
    Σ (:func:`distance_from_centred_with_covariance`): the predictions rest on mean 0 and covariance Σ
    (a wrong one made the finite-η floor infinite without a word)."""
    n = y.shape[0]
    worst = distance_from_centred_with_covariance(y, eigenvalues)
    if worst > SAMPLER_MOMENT_TOLERANCE:
        warnings.warn(
            f"distribution {spec}: its {n} moment draws have a mean or covariance at least {share_of_scale(worst)} "
            "away from mean 0 and covariance Sigma, beyond their sampling error; the predictions assume both: give "
            "a sampler with the problem's covariance",
            RunWarning,
            stacklevel=4,
        )


def share_of_scale(share: float) -> str:
    """A distance as a share of the scale, for messages: ``35% of the scale`` below ten times the scale,
    ``1.2e+05 times the scale`` above (a percentage with a hundred digits reads as nothing)."""
    return f"{share:.0%} of the scale" if share < 10 else f"{share:.3g} times the scale"


def parse_distribution(spec: str) -> Distribution:
    """Parse ``gaussian``, ``rademacher`` or ``student-t:NU``."""
    if not isinstance(spec, str):
        raise ProblemError(f"distribution must be a name such as gaussian, rademacher or student-t:5, got {spec!r}")
    text = spec.strip().lower()
    if text in ("gaussian", "normal"):
        return Gaussian()
    if text == "rademacher":
        return Rademacher()
    if text.startswith(("student-t:", "t:")):
        value = text.split(":", 1)[1]
        try:
            nu = float(value)
        except ValueError:
            raise ProblemError(
                f"distribution student-t:NU needs a number NU > 2, got {value!r}"
            ) from None
        return StudentT(nu)
    raise ProblemError(
        f"unknown distribution {spec!r}; allowed: gaussian, rademacher, student-t:NU (NU > 2)"
    )
