"""First-passage laws of single runs: when does one run leave the saddle?

At the worst saddle e_2 the escaping coordinate, in the ratio ``r = h_1/h_2`` that the ODE moves
exactly linearly, is the linear mode ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η (a − c) x_{k−τ} + η ξ_k +
η A'_k x_{k−τ}`` with a negative restoring rate ``a`` (the unstable OU mode before its time scaling),
noise ``Var ξ = s²``, started at rest. Two terms come from the data and the division by h_2: the
multiplicative noise ``A'`` of the random-coefficient linearisation, ``Y_1² − Y_2² − (λ_1 − λ_2)`` for
PCA (:func:`.coupling.escape_coupling`: variance ``2(λ_1² + λ_2²)`` with Gaussian data, 0 with
Rademacher data), drawn with ξ = Y_1 Y_2 from the same draw of the data law, afresh every step
(:func:`.coupling.escape_noise`: heavy tails and the dependence of the two are the data's; with
Gaussian stand-ins of the same variances Student-t 6 runs escape 13% later than the law said); and
the ratio's rate correction
``c = η s²/(1 − μ)`` of :func:`ratio_rates` (h_2's noise ``−η Y_1 Y_2 x`` is correlated with the
ratio's own). The first slows the escape, the second speeds it, by about 3% each on the default
problem: with Gaussian data they cancel, with Rademacher data the escape is the faster one. A run
escapes (``h_1²/‖h‖² ≥ δ²``) when ``r² ≥ δ² (1 + S)/(1 − δ²)``, S the other coordinates' share
``Σ_i (h_i/h_j)²`` (taken at its mean, which grows from 0 at the saddle; they also add to the ratio's
noise: :func:`escape_schedule`; 0 for d = 2): its escape time is the first passage of this linear recursion across that level. The law is sampled exactly from
the recursion (:data:`ESCAPE_PATHS` paths, fewer when a passage takes very many iterations; a fixed seed;
the mean is given with its 95% interval), in a compiled loop (:mod:`.passage_kernel`).

The law is wide: the run starts from noise, so ``x_k`` is about ``sqrt(V_k)`` times a standard normal
and the passage time inherits a ``log χ²_1`` spread; its mean lies about ``(γ + log 2)/(2 × growth
rate)`` beyond the time at which the *mean* of h_1² crosses δ², which is a different number (the
crossing of the mean curve, the diffusion limit's escape time).

**Convergence.** Near the optimum e_1 the error is ``sin² = S/(1 + S)``, ``S = Σ_i x_i²``, in the ratio
coordinates ``x_i = h_i/h_1`` (i ≥ 2), and each tangent mode is the same linear recursion with its
restoring rate: ``x_{k+1,i} = (1 + μ) x_{k,i} − μ x_{k−1,i} − η a_i x_{k−τ_k,i} + η ξ_{k,i}``, one delay per
step shared by every mode, the rate that of the ratio at finite η (:func:`ratio_rates`: the radial
noise that dividing by h_1 brings in, correlated with the mode's own, slows it by ``η E[b_i²]/(1 − μ)``,
``E[b_i²]`` the additive noise variance at e_1). This law is for a run *started* where travel ends
(``Phases.converge_law_at_rest``; a run from the saddle arrives moving, and its own phase III comes
from :mod:`.travel_law`), at the ODE's end point: the escaping direction j (the worst saddle) at ``x_j = sqrt(δ²/(1 − δ²))``, so that
``sin² = δ²``, every other mode at 0 (the ODE travels in the plane of e_1 and e_j), at rest (``x_{−m} = x_0``). Its
convergence time is the first k with ``S_k/(1 + S_k) ≤ ε``, i.e. ``S_k ≤ ε/(1 − ε)``; the law is
sampled exactly from this recursion (:func:`converge_law`). The noise ``ξ_{k,i}`` is Gaussian and
additive with the variance ``s_i² = v_i/G_i`` that makes mode i's stationary variance the finite-η
theory's ``v_i`` (:mod:`.second_moments`: the multiplicative noise included), ``G_i`` its stationary
variance per unit noise variance; without that theory, the additive ``s_i²``. Left out: the
multiplicative noise is larger while ``x_j`` is large, the gradient noise is not Gaussian, and the
random factor ``h_{1,k−1}/h_{1,k+1}`` of the exact ratio recursion's velocity term enters through its
mean effect only (the rate); measured, the law's mean is within 3% of simulated runs at μ ≥ 0.7 and
about 10% early at μ = 0, η = 5e-3 (docs/linear-theory.md). A run's error fluctuates about the floor
F, so with ``ε`` a small multiple of F it crosses ε on a dip: the law is wide, its median well before
the mean error curve's crossing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import Estimate, json_float, t_interval
from amsgd.diffusion.theory.linear_recursion import Delay, check_parameters, check_rates, delay_law

#: Paths sampled, their seed (reproducible numbers), and the most path-steps spent: at small η fewer
#: paths are sampled (at least MIN_PATHS), and the interval of the mean says so. The escape law, one
#: cheap mode per path, samples ESCAPE_PATHS: its mean to about ±0.8% (5000 paths: ±1.6%, more than
#: the law's own bias, so a single seed decided whether a check against simulation passed).
PATHS = 5_000
ESCAPE_PATHS = 20_000
#: Paths of the escape's mean curve (:func:`curve_crossing`), each followed to the escape law's median or
#: beyond (:data:`.phases.CURVE_REACH`): its crossing to about ±1.6% on the default problem.
CURVE_PATHS = 8_000
#: The most path-steps of the mean curve: at small η, where each path runs for tens of thousands of
#: iterations, fewer paths (at η 2e-5 on the default problem 756, about a second, where the law itself
#: takes five), and its interval says so.
CURVE_PATH_STEPS = 10_000_000
MIN_PATHS = 200
PATH_STEPS = 100_000_000
SEED = 20180605
#: The most iterations followed, and how many times that the mean curve's crossing may lie beyond
#: before nothing is sampled (:func:`iterations_for`).
MAX_ITERATIONS = 1_000_000
REACH = 2.0
#: Gaussian draws of the escape's coefficients when no data draws are given.
GAUSSIAN_DRAWS = 1 << 20


@dataclass(frozen=True, eq=False)
class FirstPassageLaw:
    """The first-passage iterations of the sampled paths (NaN: not within the iterations followed; the
    mean is then that of the finished passages, a lower bound, the quantiles count the unfinished ones
    as later than any, and ``unfinished`` in the JSON counts them)."""

    samples: np.ndarray

    @property
    def mean(self) -> Estimate:
        return t_interval(self.samples)

    def quantile(self, q: float) -> float:
        """The q-quantile of the passages (NumPy's linear interpolation), the unfinished ones counted
        as later than every finished one: NaN where it falls among them (or next to them)."""
        ordered = np.sort(np.where(np.isnan(self.samples), np.inf, self.samples))
        if ordered.size == 0:
            return float("nan")
        position = q * (ordered.size - 1)
        low, high = ordered[math.floor(position)], ordered[math.ceil(position)]
        if not np.isfinite(high):
            return float("nan")
        return float(low + (high - low) * (position - math.floor(position)))

    def to_dict(self) -> dict:
        mean = self.mean
        return {
            "mean": json_float(mean.mean),
            "mean_ci": [json_float(mean.ci_low), json_float(mean.ci_high)],
            "median": json_float(self.quantile(0.5)),
            "quantiles": {f"q{int(100 * q)}": json_float(self.quantile(q)) for q in (0.1, 0.25, 0.75, 0.9)},
            "paths": int(self.samples.size),
            "unfinished": int(np.isnan(self.samples).sum()),
        }


def paths_for(expected_iterations: float, most: int = PATHS, path_steps: int = PATH_STEPS) -> int:
    """Paths to sample when a passage takes about ``expected_iterations``: ``most``, fewer when
    that would exceed ``path_steps`` path-steps (the tail runs to about three times the mean),
    never fewer than :data:`MIN_PATHS`."""
    if not np.isfinite(expected_iterations) or expected_iterations <= 0:
        return most
    return int(np.clip(path_steps // (3.0 * expected_iterations), MIN_PATHS, most))


def iterations_for(expected_iterations: float) -> int:
    """Iterations to follow when the mean curve crosses after ``expected_iterations``:
    :data:`MAX_ITERATIONS`, or 0 when that crossing lies beyond :data:`REACH` × MAX_ITERATIONS.

    Escape: a run's passage is the crossing plus ``(−log|Z| + const)/g`` (g the growth rate, Z a
    standard normal: the Gaussian start), and ``crossing × g`` is half the logarithm of the level
    over the noise, about 10 or more at steps this small; a passage before half the crossing needs
    ``|Z| > e^{crossing·g/2}``, beyond e^5. Convergence: the noise is of the order of the floor, far
    below the drop from δ² to ε that the mean takes that long to make. Either way no sampled path
    would finish within the iterations followed, and sampling them would cost :data:`PATH_STEPS`
    path-steps (tens of seconds) for a law of NaN."""
    if np.isfinite(expected_iterations) and expected_iterations > REACH * MAX_ITERATIONS:
        return 0
    return MAX_ITERATIONS


@dataclass(frozen=True, eq=False)
class EscapeNoise:
    """How the escape law draws a step's ``(ξ, A)`` (:func:`.passage_kernel._escape_draw`): ``kind`` one
    of the kernel's data kinds with ``params = (λ_1, λ_j, ν)``, or its ``POOL`` with the rows of ``pool``."""

    kind: int
    params: np.ndarray
    pool: np.ndarray = field(default_factory=lambda: np.zeros((1, 2)))


class SaddleOthers(NamedTuple):
    """The coordinates i ∉ {1, j} at the saddle e_j, as :func:`escape_schedule` takes them: their rates
    ``λ_j − λ_i`` and additive noise variances ``E[Y_j² Y_i²]`` there, their cross moments ``E[Y_1² Y_i²]``
    with the escaping coordinate, and the couplings ``Var A_il`` among them (None: additive noise only)."""

    rates: np.ndarray
    noise: np.ndarray
    cross: np.ndarray
    coupling: np.ndarray | None = None


def gaussian_stand_ins(noise_variance: float, coupling: float) -> EscapeNoise:
    """Independent Gaussian ``ξ`` and ``A`` of variances ``s²`` and ``Var A`` (centred draws of a fixed
    seed): the escape law's noise where the data law is not given."""
    from amsgd.diffusion.theory.passage_kernel import POOL

    spread = np.sqrt([float(noise_variance), max(float(coupling), 0.0)])
    pairs = np.random.default_rng(SEED).standard_normal((GAUSSIAN_DRAWS, 2)) * spread
    return EscapeNoise(POOL, np.zeros(3), pairs - pairs.mean(axis=0))  # a mean left in A would shift the rate


class EscapeRecursion(NamedTuple):
    """The escape's linear recursion as the compiled loops take it (:func:`escape_recursion`): the ratio's
    corrected rate, the noise draws, the delay (``constant``, or -1 and the ``cdf`` of an i.i.d. law),
    and per iteration the level of ``r²`` (``δ² (1 + S)/(1 − δ²)``, S the other coordinates' mean share) and
    the noise gain."""

    eta: float
    mu: float
    rate: float
    noise: EscapeNoise
    constant: int
    cdf: np.ndarray
    levels: np.ndarray
    gains: np.ndarray

    def loop_arguments(self) -> tuple:
        """The arguments the compiled loops share, from the rate to the delay's cdf."""
        noise = self.noise
        return (self.rate, int(noise.kind), np.asarray(noise.params, dtype=float),
                np.ascontiguousarray(noise.pool, dtype=float), self.eta, self.mu, self.constant, self.cdf)  # fmt: skip


def escape_recursion(rate: float, noise_variance: float, eta: float, mu: float, delay: Delay, delta_sq: float,
                     iterations: int = MAX_ITERATIONS, coupling: float = 0.0, noise: EscapeNoise | None = None,
                     others: SaddleOthers | None = None) -> EscapeRecursion:  # fmt: skip
    """The recursion of :func:`escape_law` (its arguments the same), for ``iterations`` iterations."""
    from amsgd.derivations.ratio_drift import ratio_rate_correction_function

    eta, mu = check_parameters(eta, mu)
    law = delay_law(delay, as_iid=True)
    constant = -1 if law.constant is None else law.constant
    levels, extra = escape_schedule(delta_sq, eta, mu, law, int(iterations), others)
    gains = np.sqrt(1.0 + extra / float(noise_variance))  # ξ carries the other coordinates' noise too
    corrected = float(rate) - float(ratio_rate_correction_function()(eta, mu, float(noise_variance)))
    noise = noise or gaussian_stand_ins(noise_variance, coupling)
    return EscapeRecursion(eta, mu, corrected, noise, constant, law.cdf, levels, gains)


def escape_law(rate: float, noise_variance: float, eta: float, mu: float, delay: Delay, delta_sq: float,
               paths: int = ESCAPE_PATHS, iterations: int = MAX_ITERATIONS, coupling: float = 0.0,
               noise: EscapeNoise | None = None,
               others: SaddleOthers | None = None) -> FirstPassageLaw:  # fmt: skip
    """The law of the first iteration at which one run from the saddle has ``h_1²/‖h‖² ≥ δ²`` (module
    docstring), from ``paths`` sampled paths followed for ``iterations`` (NaN beyond); an i.i.d.
    delay is drawn afresh for every path and step. The ratio's rate is ``a − c``, ``c = η s²/(1 − μ)``
    (:func:`ratio_rates`' correction: dividing by the saddle's coordinate, whose noise is correlated
    with the ratio's, speeds the escape). Each step's additive and multiplicative noise ``(ξ, A)`` is
    drawn as ``noise`` says (:func:`.coupling.escape_noise`: from the data law); without it,
    :func:`gaussian_stand_ins` of variances ``s²`` and ``coupling`` (``Var A``). ``others`` describes the
    saddle's other coordinates, which raise the level and add noise (:func:`escape_schedule`)."""
    recursion = escape_recursion(rate, noise_variance, eta, mu, delay, delta_sq, iterations, coupling, noise, others)
    return passage_law(recursion, paths, iterations)


def passage_law(recursion: EscapeRecursion, paths: int = ESCAPE_PATHS,
                iterations: int = MAX_ITERATIONS) -> FirstPassageLaw:  # fmt: skip
    """:func:`escape_law` of a prepared recursion."""
    from amsgd.diffusion.theory.passage_kernel import first_passages

    return FirstPassageLaw(first_passages(int(paths), *recursion.loop_arguments(), recursion.levels, recursion.gains,
                                          int(iterations), SEED))  # fmt: skip


@dataclass(frozen=True)
class CurveCrossing:
    """When the mean over runs of the escaping share ``h_1²/‖h‖²`` reaches δ² (:func:`curve_crossing`):
    ``iterations`` (None: not within the ``horizon`` followed), and ``interval``, the first iterations
    at which the 95% band of the sampled mean reaches it, from its upper and from its lower edge."""

    iterations: int | None
    interval: tuple[int | None, int | None]
    paths: int
    horizon: int


def curve_crossing(recursion: EscapeRecursion, delta_sq: float, paths: int, horizon: int) -> CurveCrossing:
    """The mean curve of single runs from the saddle: each path of the escape's linear recursion, followed
    past its passage, has the share ``r²/(1 + r² + S)`` of ``‖h‖²`` (S the other coordinates' mean share),
    which saturates as a run's ``h_1²/‖h‖²`` does while the linear ratio grows on; the first iteration
    at which its mean over ``paths`` paths, each followed for ``horizon`` iterations, reaches δ². The
    linear crossing (:mod:`.transient`, the variance of the linear ratio) leaves that saturation out
    and lies early, by about 9% with Gaussian data and 22% with Student-t 6 data, whose escape times
    spread widest, at η 1e-3, μ 0.9 on Σ = diag(4, 3, 2, 1) (docs/linear-theory.md, section 7)."""
    from amsgd.diffusion.theory.passage_kernel import escape_curve

    shares = recursion.levels * (1.0 - delta_sq) / delta_sq - 1.0  # S from the level δ² (1 + S)/(1 − δ²)
    sums = escape_curve(int(paths), *recursion.loop_arguments(), shares, recursion.gains, int(horizon), SEED + 1)
    mean = sums[0] / paths
    half = 1.96 * np.sqrt(np.maximum(sums[1] / paths - mean**2, 0.0) / max(paths - 1, 1))

    def first(values: np.ndarray) -> int | None:
        reached = np.flatnonzero(values >= delta_sq)
        return int(reached[0]) if reached.size else None

    return CurveCrossing(first(mean), (first(mean + half), first(mean - half)), int(paths), int(horizon))


def escape_schedule(delta_sq: float, eta: float, mu: float, delay: Delay, iterations: int,
                    others: SaddleOthers | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """What the saddle's other coordinates ``x_i = h_i/h_j`` (i ∉ {1, j}) do to the escape of ``r = h_1/h_j``,
    per iteration ``k = 0, 1, ...`` (each held at its last entry beyond its end, at most ``iterations``):
    the level of r² and the extra variance of r's additive noise.

    * A run has ``h_1²/‖h‖² = r²/(1 + r² + S)``, ``S = Σ_i x_i²``, so it escapes when
      ``r² ≥ δ² (1 + S)/(1 − δ²)``;
    * the step of h_1, divided by h_j, carries ``Y_1 (Y·h)/h_j ⊃ Y_1 Σ_i Y_i x_i``, uncorrelated with the
      plane's ``ξ = Y_1 Y_j`` and ``A``, of variance ``Σ_i E[Y_1² Y_i²] x_i²``.

    Both are taken at the mean, from the variances ``v_i(k)`` of the other coordinates started at rest
    at the saddle, which grow towards their floor there with their additive and multiplicative noise
    (:func:`.transient.summed_transient_variances`): ``others`` describes them (:class:`SaddleOthers`, the
    couplings from :func:`.coupling.saddle_coupling`; coordinates with a rate <= 0 left out); without them (d = 2) the level is ``δ²/(1 − δ²)`` and there
    is no extra noise. The later level delays the escape, the noise hastens it: on
    Σ = diag(8, 7, ..., 1) at η 2e-4, μ 0.9 (S about 0.07 at the escape) the law's mean goes from 441.6
    (neither) to 462.6 (the level) and 452.3 (both) iterations, against 454.1 [451.5, 456.7] measured
    over 65 536 runs (449.4 with the additive noise alone). On Σ = diag(20, 19, ..., 1) at η 1e-4 (S
    about 0.44, a quarter of it from the multiplicative noise, ``Var(Y_i² − Y_2²)`` = 1370 against a rate
    of 1 for the slowest coordinate): 345.7, 458.6 and 381.3 against 386.4 [384.1, 388.7] (374.0 with
    the additive noise alone); left out is S's coupling to r itself, ``Var(Y_i Y_1) r²``, worth 0.3%
    with the mean r² of the runs still at the saddle (docs/linear-theory.md section 7). On
    Σ = diag(4, 3, 2, 1), η 5e-4, μ 0.9 (S about 0.02) they move the law by about 1 iteration of 278.
    The law carries the extra noise by scaling the plane's own draw of ξ to the variance
    ``E ξ² + extra``: in law exact for Gaussian and Student-t data, whose
    ``ξ + Y_1 Σ_i Y_i x_i = Y_1 (Y_j + Σ_i Y_i x_i)`` is ``Y_1`` times a scaled copy of ``Y_j`` (its joint law
    with A aside), the variance alone for Rademacher data. A run's own S fluctuates about the mean,
    which the escape time feels only through ``log(1 + S)``."""
    from amsgd.diffusion.theory.transient import summed_transient_variances

    base = delta_sq / (1.0 - delta_sq)
    others = others or SaddleOthers(np.zeros(0), np.zeros(0), np.zeros(0))
    rates, noise, cross = (np.asarray(v, dtype=float) for v in others[:3])
    stable = rates > 0
    rates, noise, cross = rates[stable], noise[stable], cross[stable]
    coupling = None if others.coupling is None else np.asarray(others.coupling, dtype=float)[np.ix_(stable, stable)]
    share, extra = summed_transient_variances(rates, noise, eta, mu, delay, iterations, coupling,
                                              np.stack([np.ones_like(cross), cross]))  # fmt: skip
    return base * (1.0 + share), extra  # extra = Σ_i E[Y_1² Y_i²] v_i


@dataclass(frozen=True, eq=False)
class ConvergeLaw(FirstPassageLaw):
    """The sampled convergence times, with the noise variances the recursion used and how they were
    chosen: ``"finite-eta"`` (stationary variances of the finite-η theory), ``"additive"`` (the
    additive noise alone), ``"none"`` (the start is already below ε: nothing sampled, every sample 0)
    or ``"unstable"`` (a tangent mode's mean is unstable: nothing sampled, every sample NaN)."""

    noise_variances: np.ndarray
    calibration: str


def converge_start(delta_sq: float, modes: int, index: int) -> np.ndarray:
    """The ratio coordinates where travel ends: ``x_index = sqrt(δ²/(1 − δ²))`` (error ``δ²``), the other
    ``modes − 1`` at 0."""
    if not (np.isfinite(delta_sq) and 0.0 < delta_sq < 1.0):
        raise ProblemError(f"delta_sq must satisfy 0 < δ² < 1, got {delta_sq!r}")
    if not 0 <= index < modes:
        raise ProblemError(f"the start mode index must lie in [0, {modes}), got {index}")
    start = np.zeros(modes)
    start[index] = np.sqrt(delta_sq / (1.0 - delta_sq))
    return start


def ratio_rates(rates: np.ndarray, noise_variances: np.ndarray, eta: float, mu: float) -> np.ndarray:
    """The restoring rates of the ratio coordinates ``x_i = h_i/h_1`` at finite η: ``a_i²/(a_i + c_i)``,
    ``c_i = η s_i²/(1 − μ)`` (``s_i²`` mode i's additive noise variance at e_1), the correction
    derived in :mod:`amsgd.derivations.ratio_drift`: dividing by h_1 brings in the radial noise,
    correlated with the mode's own, in one step and, through the momentum, in the ratio's velocity
    term. The mean ratio relaxes at ``a_i − c_i``; written ``a_i²/(a_i + c_i)``, equal to first order
    in ``c_i/a_i`` and positive however large the correction (they differ by ``(c_i/a_i)²`` relative,
    0.4% of the rate at η = 5e-4, μ = 0.9 on Σ = diag(4, 3, 2, 1))."""
    from amsgd.derivations.ratio_drift import ratio_rate_correction_function

    rates = check_rates(rates)
    c = ratio_rate_correction_function()(eta, mu, np.asarray(noise_variances, dtype=float))
    out = rates.copy()
    noisy = c > 0
    out[noisy] = rates[noisy] ** 2 / (rates[noisy] + c[noisy])
    return out


def converge_law(rates: np.ndarray, noise_variances: np.ndarray, eta: float, mu: float, delay: Delay,
                 start: np.ndarray, epsilon: float, paths: int = PATHS, *,
                 stationary_variances: np.ndarray | None = None, iterations: int = MAX_ITERATIONS) -> ConvergeLaw:  # fmt: skip
    """The law of the first iteration ``k ≥ 0`` at which one run near e_1 has ``S_k/(1 + S_k) ≤ ε``
    (module docstring), from ``paths`` sampled paths started at rest at ``start`` and followed for
    ``iterations`` (NaN beyond; 0 for every path when the start is already there, e.g. ε ≥ 1).

    ``rates`` are the tangent modes' ``a_i`` and ``noise_variances`` their additive ``s_i²``. With
    ``stationary_variances`` ``v_i`` (finite and positive), the noise is recalibrated to
    ``s_i² = v_i/G_i`` (:func:`.second_moments.gains`) so that each mode's stationary variance is
    ``v_i``. An i.i.d. delay is drawn afresh for every step, one for all modes. O(paths × iterations ×
    modes)."""
    from amsgd.diffusion.theory.passage_kernel import converge_passages
    from amsgd.diffusion.theory.second_moments import gains
    from amsgd.simulate.ziggurat import replicate_states

    eta, mu = check_parameters(eta, mu)
    rates = check_rates(rates)
    noise = np.atleast_1d(np.asarray(noise_variances, dtype=float))
    start = np.atleast_1d(np.asarray(start, dtype=float))
    if noise.shape != rates.shape or not np.all(np.isfinite(noise)) or np.any(noise < 0):
        raise ProblemError(
            f"noise variances must be {rates.size} finite numbers >= 0, one per rate, got {noise_variances!r}"
        )
    if start.shape != rates.shape or not np.all(np.isfinite(start)):
        raise ProblemError(f"start must be {rates.size} finite numbers (one per rate), got {start!r}")
    if not (np.isfinite(epsilon) and epsilon > 0.0):
        raise ProblemError(f"epsilon (the target error) must be a finite number > 0, got {epsilon!r}")
    paths = checks.positive_int("paths", paths)
    law = delay_law(delay, as_iid=True)
    level = epsilon / (1.0 - epsilon) if epsilon < 1.0 else np.inf  # S/(1 + S) <= ε  ⇔  S <= ε/(1 − ε)
    if float(start @ start) <= level:  # already there when the phase begins
        return ConvergeLaw(np.zeros(int(paths)), noise, "none")
    g = gains(rates, eta, mu, law)
    if not np.all(np.isfinite(g)):  # a mode whose mean is unstable never settles
        return ConvergeLaw(np.full(int(paths), np.nan), noise, "unstable")
    calibration = "additive"
    if stationary_variances is not None:
        v = np.asarray(stationary_variances, dtype=float)
        if v.shape == rates.shape and np.all(np.isfinite(v)) and np.all(v > 0):
            noise, calibration = v / g, "finite-eta"
    constant = -1 if law.constant is None else law.constant
    scales = eta * np.sqrt(noise)
    cdf = law.cdf
    state = replicate_states(np.random.SeedSequence(SEED), 1)[0].copy()
    samples = converge_passages(int(paths), rates, scales, eta, mu, constant, cdf, start, level, int(iterations),
                                state)  # fmt: skip
    return ConvergeLaw(samples, noise, calibration)
