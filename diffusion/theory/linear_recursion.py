"""One linear mode of Async-MSGD: the delayed momentum recursion, its polynomial and companion form.

Linearised at a stationary point, every mode of the algorithm is a scalar recursion

    x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ_k} + η ξ_k,

with mean-drift rate ``a`` (``a > 0`` restores), step size η, momentum μ, delay τ_k and zero-mean
noise ξ_k of variance s². The delay is either constant or i.i.d. with probability mass
``p[i] = P(τ_k = i)``; a constant τ is the point mass δ_τ, so both take one code path. Taking
expectations over an i.i.d. delay drawn independently of the state, the mean obeys the
autoregression

    E x_{k+1} = Σ_{j=0}^{L} c_j E x_{k−j},   c_0 = 1 + μ − η a p_0,  c_1 = −μ − η a p_1,
    c_j = −η a p_j (j ≥ 2),   L = max(τ_max, 1).

Its characteristic polynomial is ``z^{L+1} − Σ_j c_j z^{L−j}``: for τ = 0 the quadratic
``z² − (1 + μ − η a) z + μ``, for a constant τ ≥ 1 ``z^{τ+1} − (1 + μ) z^τ + μ z^{τ−1} + η a``.
With the state ``s_k = (x_k, x_{k−1}, ..., x_{k−L})`` the recursion is ``s_{k+1} = A s_k + b η ξ_k``
with the companion matrix ``A`` (first row ``c``, ones on the subdiagonal) and ``b = e_0``; the
eigenvalues of ``A`` are the roots of the polynomial, and the mode's mean is stable iff its spectral
radius ``ρ = max |z|`` is below one. Then ``E x_k`` decays like ``ρ^k``: the local rate is
``−log ρ`` per iteration, or ``−log(ρ)/η`` per unit of diffusion time ``t = k η``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg

from amsgd.core import checks
from amsgd.core.delays import DelayModel, check_reach, cumulative, parse_delay
from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.options import MAX_DELAY, MAX_GEOMETRIC_DELAY

#: Tolerance on the total mass of a user probability vector (the same as the histogram delay model).
_PMF_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class DelayLaw:
    """The law of an i.i.d. delay: ``pmf[i] = P(τ = i)`` (no trailing zeros) and a printable ``spec``."""

    pmf: np.ndarray
    spec: str

    def __post_init__(self) -> None:
        if self.pmf.size - 1 <= MAX_DELAY:
            return
        if geometric_ratio(self.pmf) is None:
            raise ProblemError(
                f"delay {self.spec} reaches {self.pmf.size - 1}, beyond the {MAX_DELAY} the linear "
                "numerics support (dense companion matrices, O(delay^3) work); its runs can be simulated "
                "(amsgd simulate), its theory cannot"
            )
        if self.pmf.size - 1 > MAX_GEOMETRIC_DELAY:
            raise ProblemError(
                f"delay {self.spec} reaches {self.pmf.size - 1}, beyond the {MAX_GEOMETRIC_DELAY} lags the "
                "linear numerics support for a law with a geometric tail (the divergence risk keeps a ring of past states "
                "that long); its runs can be simulated (amsgd simulate), its theory cannot"
            )

    @property
    def max_delay(self) -> int:
        return int(self.pmf.size - 1)

    @cached_property
    def cdf(self) -> np.ndarray:
        """The cumulative probabilities ``P(τ <= i)``, the last exactly 1: delays drawn by inversion of a
        uniform, as the simulator draws them (computed once per law)."""
        return cumulative(self.pmf)

    @property
    def order(self) -> int:
        """``L = max(τ_max, 1)``: the state is ``(x_k, ..., x_{k−L})``."""
        return max(self.max_delay, 1)

    @property
    def mean(self) -> float:
        return float(np.arange(self.pmf.size) @ self.pmf)

    @property
    def constant(self) -> int | None:
        """τ when the delay is the point mass δ_τ, otherwise None."""
        return self.max_delay if self.pmf[-1] == 1.0 else None


#: A delay: a constant τ (int), a probability mass ``p[i] = P(τ = i)``, or an i.i.d. delay model.
Delay = int | np.integer | str | Sequence[float] | np.ndarray | DelayModel | DelayLaw


def delay_law(delay: Delay, *, as_iid: bool = False) -> DelayLaw:
    """Normalise a delay argument: an int τ >= 0, a pmf vector, an i.i.d. :class:`DelayModel` or its
    spec (``"uniform:0-4"``).

    A delay model that is not i.i.d. (the event-driven server) is refused, or with ``as_iid`` taken
    as i.i.d. with its stationary law (an approximation: its delays are correlated in time)."""
    if isinstance(delay, DelayLaw):
        return delay
    if isinstance(delay, str):
        delay = parse_delay(delay)
    if isinstance(delay, DelayModel):
        if not delay.is_iid and not as_iid:
            raise ProblemError(
                f"delay {delay.spec} is not i.i.d.; the linear theory needs a constant or i.i.d. delay "
                "(pass delay.pmf() to treat it as i.i.d. with the same law, an approximation)"
            )
        return _law_from_pmf(delay.pmf(), delay.spec)
    if checks.is_whole_number(delay):
        if delay < 0:
            raise ProblemError(f"delay tau must be a non-negative integer, got {delay}")
        check_reach(f"constant:{int(delay)}", int(delay))
        pmf = np.zeros(int(delay) + 1)
        pmf[-1] = 1.0
        return DelayLaw(pmf, f"constant:{int(delay)}")
    pmf = checks.real_array("delay", delay, "an integer tau, a probability vector, a delay model or its spec")
    if pmf.ndim == 0:
        raise ProblemError(f"delay tau must be a non-negative integer, got {delay!r}")
    return _law_from_pmf(pmf, "pmf")


def _law_from_pmf(pmf: np.ndarray, spec: str) -> DelayLaw:
    if pmf.ndim != 1 or pmf.size == 0 or not np.all(np.isfinite(pmf)) or np.any(pmf < 0):
        raise ProblemError("delay probabilities must be a non-empty vector of finite numbers >= 0")
    if abs(pmf.sum() - 1.0) > _PMF_TOL:
        raise ProblemError(f"delay probabilities must sum to one, got sum {pmf.sum():.6g}")
    pmf = np.trim_zeros(pmf, "b")
    pmf = pmf / pmf.sum()
    pmf.setflags(write=False)
    if spec == "pmf" and pmf[-1] == 1.0:
        spec = f"constant:{pmf.size - 1}"
    return DelayLaw(pmf, spec)


def check_parameters(eta: float, mu: float) -> tuple[float, float]:
    """Validate η > 0 and −1 < μ < 1 (finite), returning them as floats."""
    eta, mu = float(eta), float(mu)
    if not (np.isfinite(eta) and eta > 0):
        raise ProblemError(f"eta must be a finite number > 0, got {eta!r}")
    if not (np.isfinite(mu) and -1.0 < mu < 1.0):
        raise ProblemError(f"mu must satisfy -1 < mu < 1, got {mu!r}")
    return eta, mu


def check_rates(rates: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Mode rates as a finite 1-d float array (a scalar becomes one mode)."""
    out = np.atleast_1d(np.asarray(rates, dtype=float))
    if out.ndim != 1 or out.size == 0 or not np.all(np.isfinite(out)):
        raise ProblemError(f"rates must be a non-empty list of finite numbers, got {rates!r}")
    return out


def ar_coefficients(rate: float, eta: float, mu: float, delay: Delay) -> np.ndarray:
    """``c_0 .. c_L`` of the mean recursion ``E x_{k+1} = Σ_j c_j E x_{k−j}`` (module docstring)."""
    eta, mu = check_parameters(eta, mu)
    law = delay_law(delay)
    c = np.zeros(law.order + 1)
    c[0], c[1] = 1.0 + mu, -mu
    c[: law.pmf.size] -= eta * float(rate) * law.pmf
    return c


def characteristic_polynomial(rate: float, eta: float, mu: float, delay: Delay) -> np.ndarray:
    """Coefficients, highest power first, of ``z^{L+1} − Σ_j c_j z^{L−j}`` (degree ``L + 1``)."""
    return np.concatenate(([1.0], -ar_coefficients(rate, eta, mu, delay)))


def companion(coefficients: np.ndarray) -> np.ndarray:
    """Companion matrix of ``x_{k+1} = Σ_j c_j x_{k−j}``: first row ``c``, ones on the subdiagonal."""
    n = coefficients.size
    a = np.zeros((n, n))
    a[0] = coefficients
    a[np.arange(1, n), np.arange(n - 1)] = 1.0
    return a


def companion_matrix(rate: float, eta: float, mu: float, delay: Delay) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` with ``s_{k+1} = A s_k + b η ξ_k`` for the state ``s_k = (x_k, ..., x_{k−L})``.

    For a random delay ``A`` is the mean of the random matrix ``A_k``; ``b = e_0``.
    """
    a = companion(ar_coefficients(rate, eta, mu, delay))
    b = np.zeros(a.shape[0])
    b[0] = 1.0
    return a, b


#: Spectral radii of recent coefficient vectors, by a 128-bit digest of their bytes (:func:`radius_of`).
_RADII: OrderedDict[bytes, float] = OrderedDict()
_RADII_KEPT = 4096


def radius_of(coefficients: np.ndarray) -> float:
    """Spectral radius of the companion matrix of ``coefficients`` (largest root modulus; by
    :func:`bisected_radii` beyond :data:`BISECT_ORDER` coefficients).

    The stability report, the second-moment radius and the stationary variance each ask for it for
    every mode at the problem's delay, and at τ = 100 one costs about 12 ms; so the last
    :data:`_RADII_KEPT` answers are kept, keyed by a digest of the coefficients (the same float
    back, not recomputed)."""
    c = np.ascontiguousarray(coefficients, dtype=float)
    key = _digest(c)
    radius = _RADII.get(key)
    if radius is None:
        if c.size > BISECT_ORDER:
            radius = float(bisected_radii(c[None, :])[0])
        else:
            radius = float(np.abs(scipy.linalg.eigvals(companion(c), check_finite=False)).max())
        _RADII[key] = radius
        if len(_RADII) > _RADII_KEPT:
            _RADII.popitem(last=False)
    return radius


def _digest(c: np.ndarray) -> bytes:
    """The key of contiguous float coefficients ``c`` in :data:`_RADII`."""
    return hashlib.blake2b(c.tobytes(), digest_size=16).digest()


def mean_is_stable(coefficients: np.ndarray) -> bool:
    """Whether every root of the recursion's characteristic polynomial lies in ``|z| < 1``: the verdict
    ``radius_of(coefficients) < 1`` without the radius where it is not known and would be bisected
    (beyond :data:`BISECT_ORDER` coefficients): one Schur–Cohn step-down (:func:`roots_inside` at
    r = 1) in place of the bisection's fifty or more."""
    c = np.ascontiguousarray(coefficients, dtype=float)
    if c.size <= BISECT_ORDER:
        return radius_of(c) < 1.0
    known = _RADII.get(_digest(c))
    return known < 1.0 if known is not None else bool(roots_inside(c[None, :], np.ones(1))[0])


def spectral_radius(rate: float, eta: float, mu: float, delay: Delay) -> float:
    """``ρ = max |z|`` over the roots of the characteristic polynomial, from the companion eigenvalues
    (``O(L³)``) up to :data:`BISECT_ORDER` coefficients and by bisection beyond (``O(L²)`` per step,
    :func:`bisected_radii`; 0.1–0.3 s for seven modes at τ = 600, where the eigenvalues took 18–35 s).

    The mean of the mode decays iff ``ρ < 1``.
    A geometric law ``p_j = (1 − q) q^j`` (also the event-driven server's) is solved exactly in three
    states instead (:func:`geometric_ratio`): ``y_k = Σ_j p_j x_{k−j}`` obeys
    ``y_k = (1 − q) x_k + q y_{k−1}``, so ``(x_k, x_{k−1}, y_{k−1})`` is a linear system of order 3
    whose eigenvalues are the roots of the untruncated law's characteristic equation.
    """
    law = delay_law(delay)
    q = geometric_ratio(law.pmf)
    if q is None:
        return radius_of(ar_coefficients(rate, eta, mu, law))
    return geometric_radius(rate, eta, mu, q)


def geometric_system(rate: float, eta: float, mu: float, q: float) -> np.ndarray:
    """The 3 × 3 matrix of ``(x_k, x_{k−1}, y_{k−1})`` under the untruncated geometric law ``(1 − q) q^j``
    (:func:`spectral_radius`): its eigenvalues are the roots of that law's characteristic equation."""
    eta, mu = check_parameters(eta, mu)
    g = eta * float(rate)
    return np.array([[1.0 + mu - g * (1.0 - q), -mu, -g * q], [1.0, 0.0, 0.0], [1.0 - q, 0.0, q]])


def geometric_radius(rate: float, eta: float, mu: float, q: float) -> float:
    """:func:`spectral_radius` under the untruncated geometric law ``(1 − q) q^j``, from its 3 × 3 system."""
    return float(np.abs(np.linalg.eigvals(geometric_system(rate, eta, mu, q))).max())


def geometric_ratio(pmf: np.ndarray, rtol: float = 1e-9) -> float | None:
    """``q`` when ``pmf`` is a (truncated, renormalised) geometric law ``∝ q^j`` with at least 8 lags,
    else None."""
    if pmf.size < 8 or np.any(pmf <= 0):
        return None
    ratios = pmf[1:] / pmf[:-1]
    q = float(ratios[0])
    return q if 0 < q < 1 and np.allclose(ratios, q, rtol=rtol, atol=0.0) else None


def ar_coefficient_rows(rates: np.ndarray, eta: float, mu: float, tau: int) -> np.ndarray:
    """:func:`ar_coefficients` of many modes at one constant delay τ, one row per mode."""
    rows = np.tile(ar_coefficients(0.0, eta, mu, tau), (np.size(rates), 1))
    rows[:, tau] -= eta * np.asarray(rates, dtype=float)  # the delayed tap is the only one that depends on the rate
    return rows


def spectral_radii(rates: np.ndarray, eta: float, mu: float, tau: int) -> np.ndarray:
    """:func:`spectral_radius` of many modes at one constant delay τ, as one batch of companion
    eigenvalue problems (``(τ + 1)``-square; for the thousands of modes of a model's Hessian), or of
    bisections (:func:`bisected_radii`) beyond :data:`BISECT_ORDER` coefficients."""
    return radii_of_rows(ar_coefficient_rows(check_rates(rates), eta, mu, tau))


def radii_of_rows(rows: np.ndarray) -> np.ndarray:
    """The spectral radius of each row's recursion ``x_{k+1} = Σ_j c_j x_{k−j}`` (rows of AR
    coefficients of one length): one batch of companion eigenvalue problems, or of bisections
    (:func:`bisected_radii`) beyond :data:`BISECT_ORDER` coefficients."""
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    n = rows.shape[1]
    if n > BISECT_ORDER:
        return bisected_radii(rows)
    stack = np.zeros((rows.shape[0], n, n))
    stack[:, 0, :] = rows
    stack[:, np.arange(1, n), np.arange(n - 1)] = 1.0
    return np.abs(np.linalg.eigvals(stack)).max(axis=1)


#: Coefficient counts beyond which a radius comes from :func:`bisected_radii`, not from companion
#: eigenvalues (measured for seven modes: τ = 20, 1.1 ms against 2.4 ms; τ = 100, 76 ms against 6 ms;
#: τ = 600, 18–35 s against 0.1–0.3 s; 20 cases at τ = 63–300 agree to 2e-12 relative).
BISECT_ORDER = 64
#: Relative width of the bracket at which :func:`bisected_radii` stops (a few units of rounding).
BISECT_RTOL = 1e-15
#: Steps of :func:`bisected_radii` at most (200 halvings reach a radius 2^-200 of Cauchy's bound).
BISECT_STEPS = 200


def roots_inside(rows: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Per row of AR coefficients ``c``, whether every root of ``z^{L+1} − Σ_j c_j z^{L−j}`` lies in
    ``|z| < r`` (``r`` its entry of ``radii``): iff the autoregression with the scaled coefficients
    ``c_j / r^{j+1}`` is stable, which the Schur–Cohn step-down decides in ``O(L²)``
    (:func:`.lyapunov.step_down_variance`)."""
    from amsgd.diffusion.theory.step_down import step_down_rows  # compiled: imported where first needed

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        scaled = rows / np.asarray(radii, dtype=float)[:, None] ** np.arange(1, rows.shape[1] + 1)
    scaled[rows == 0.0] = 0.0  # a zero tap stays zero where r^{j+1} underflows (not 0/0)
    return np.isfinite(step_down_rows(np.ascontiguousarray(scaled)))


def bisected_radii(rows: np.ndarray) -> np.ndarray:
    """The spectral radius of each row's recursion ``x_{k+1} = Σ_j c_j x_{k−j}`` by bisection on the
    test :func:`roots_inside`, ``O(L²)`` per step against ``O(L³)`` for the companion eigenvalues.

    From Cauchy's bound ``max(1, Σ_j |c_j|)``, which every root lies within, r is halved while every
    root stays inside, then the bracket ``[lo, hi]`` is bisected geometrically (about 50 steps) to relative width
    :data:`BISECT_RTOL`; the result is ``hi``, a radius the test places every root inside (the
    true radius lies within the width below it, up to the step-down's rounding for a root right at
    the boundary). Roots all at the origin give about ``2^-200`` of the bound."""
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    hi = np.maximum(1.0, np.abs(rows).sum(axis=1)) * (1.0 + 1e-9)
    lo = np.zeros(rows.shape[0])
    for _ in range(BISECT_STEPS):
        open_ = np.flatnonzero(hi - lo > BISECT_RTOL * hi)
        if open_.size == 0:
            break
        mid = np.where(lo[open_] > 0.0, np.sqrt(lo[open_] * hi[open_]), hi[open_] / 2.0)
        inside = roots_inside(rows[open_], mid)
        hi[open_[inside]] = mid[inside]
        lo[open_[~inside]] = mid[~inside]
    return hi


#: Relative margin of the radius every mode is certified below in :func:`largest_spectral_radius`.
CERTIFY_SLACK = 1e-12
#: Modes, spread over the sorted rates (the slowest and the stiffest among them), whose radius
#: :func:`largest_spectral_radius` computes before it tests the others.
CERTIFY_SAMPLES = 9


def largest_spectral_radius(rates: np.ndarray, eta: float, mu: float, tau: int) -> float:
    """``max_i ρ(a_i)`` over many modes at one constant delay τ, with companion eigenvalues for a few.

    Whether all roots lie in ``|z| < r`` takes ``O(L²)`` (:func:`roots_inside`) against ``O(L³)`` for the
    eigenvalues. So a few modes spread
    over the sorted rates, the slowest and the stiffest among them, get their radius from the
    eigenvalues (:func:`spectral_radii`), ``R`` their maximum; every other mode is tested at
    ``r = R (1 + CERTIFY_SLACK)``, and those the test does not place inside get their eigenvalues too.
    The result is the largest radius computed: the true maximum exceeds it by at most the slack
    (relative; plus the step-down's rounding for a mode right at ``r``).
    """
    rates = check_rates(rates)
    return largest_radius_of_rows(ar_coefficient_rows(rates, eta, mu, tau), rates)


def largest_radius_of_rows(rows: np.ndarray, rates: np.ndarray) -> float:
    """``max`` of :func:`radii_of_rows` over recursions ordered by their ``rates`` (one per row), by
    :func:`largest_spectral_radius`'s certificate: the radii of a few rows spread over the sorted
    rates, then the step-down test of the others at their maximum (plus :data:`CERTIFY_SLACK`)."""
    rows, rates = np.atleast_2d(rows), np.asarray(rates, dtype=float)
    order = np.argsort(rates, kind="stable")
    first = np.unique(order[np.linspace(0, rates.size - 1, min(CERTIFY_SAMPLES, rates.size)).round().astype(int)])
    radius = float(radii_of_rows(rows[first]).max())
    rest = np.setdiff1d(np.arange(rates.size), first)
    bound = radius * (1.0 + CERTIFY_SLACK)
    if rest.size and bound > 1e-8:  # (below, the roots sit at the origin: nothing to scale by)
        rest = rest[~roots_inside(rows[rest], np.full(rest.size, bound))]  # not placed inside
    if rest.size:
        radius = max(radius, float(radii_of_rows(rows[rest]).max()))
    return radius


def dominant_frequency(rate: float, eta: float, mu: float, delay: Delay) -> float:
    """``|arg z|`` of the root of largest modulus (radians per iteration; 0 for a real root): the mean
    of the mode decays like ``ρ^k cos(ω k + φ)``. From the companion eigenvalues, ``O(L³)``; for a
    geometric law from its 3 × 3 system (:func:`geometric_system`)."""
    law = delay_law(delay)
    q = geometric_ratio(law.pmf)
    matrix = companion(ar_coefficients(rate, eta, mu, law)) if q is None else geometric_system(rate, eta, mu, q)
    roots = scipy.linalg.eigvals(matrix, check_finite=False)
    modulus = np.abs(roots)
    top = roots[modulus >= modulus.max() * (1.0 - 1e-9)]
    return float(np.abs(np.angle(top)).min())


def decay_rate(rate: float, eta: float, mu: float, delay: Delay, per: str = "iteration") -> float:
    """Local convergence rate of the mean: ``−log ρ`` per iteration, or ``−log(ρ)/η`` per unit time.

    Negative when the mode is unstable. ``per`` is ``"iteration"`` or ``"time"`` (t = k η).
    """
    if per not in ("iteration", "time"):
        raise ProblemError(f"per must be 'iteration' or 'time', got {per!r}")
    with np.errstate(divide="ignore"):
        value = -np.log(spectral_radius(rate, eta, mu, delay))
    return float(value / eta if per == "time" else value)
