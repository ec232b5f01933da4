"""The finite-η floor's coupling to the norm of h and the ratio's own next order: beyond :mod:`.second_moments`.

The first-order floor treats each tangent mode i as the delayed momentum recursion
``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a_i x_{k−τ} + η ξ_k``. Four effects change it at relative
order F (derived in :mod:`amsgd.derivations.norm_coupling` and :mod:`amsgd.derivations.ratio_drift`):

* the restoring force splits: ``b = λ_1 (1 − (1 + δ)(1 − F)) − (1 + δ)(1 − F) Σ_j λ_j v_j`` of it acts
  on the current ratio and ``a_i − b`` on the delayed one, so the mode is the two-tap recursion
  ``x_{k+1} = (1 + μ_i − η b) x_k − μ_i x_{k−1} − η (a_i − b − c_i) x_{k−τ_k} + η ξ_k`` (no change at
  τ = 0); for an i.i.d. delay its mean recursion takes ``E x_{k−τ}`` over the law, and the delay's
  spread multiplies the noise by ``1/(1 − (η (a_i − b − c_i))² κ)`` as in :func:`.lyapunov.stationary_variance`;
* with momentum, the norm's response to the kinetic energy damps each mode's velocity: its momentum
  is ``μ_i = μ (1 + ε_i)`` with the radial friction ``ε_i = Σ_j H_j [κ_i(j + 2) − κ_i(j)]/(2 γ^w_i(0))``
  (``H`` the impulse response of the radial recursion with rate ``2λ_1`` at τ = 0, ``γ^w_i`` the
  mode's velocity autocovariance, ``κ_i(ℓ) = 2 γ^w_i(ℓ − 1)² + 2 μ γ^w_i(ℓ)²`` for Gaussian velocities,
  with two terms of the data law beside it where the noise's fourth cumulant is at most
  :data:`KERNEL_CUMULANT_MAX`, :func:`kernel_beyond_isserlis`);
* dividing by h_1 drifts the ratio away from e_1: the radial part of a step carries the stale ratio
  (``−η h_1 Σ_j x_{j,k−τ} ξ_j``), whose covariance with the mode's own noise, through the step's
  division and the velocity's factor ``h_{1,k−1}/h_{1,k+1}``, lowers the delayed restoring rate by
  ``c_i = η s_i/(1 − μ_i)`` (the velocity's memory is the mode's own momentum);
* the additive noise is correlated with the step's second-order part (the stale normalisation and
  the factor ``h'_1/h_{1,k+1}``), which adds ``s_i (2 E γ_i(τ) − 4 v_i)`` to the noise variance
  ``s_i``: ``−2 s_i v_i`` at τ = 0, where it offsets ``c_i`` to first order, and a larger reduction
  with a delay (``γ_i(τ) < v_i``), where ``c_i`` acts on the stale ratio.

``δ`` comes from the norm balance ``δ = (Σ_i (λ_1 − λ_i)(v_i − E γ_i(τ)) + (1 + μ) K/(2η))/λ_1``, K the
kinetic energy ``E‖h_k − h_{k−1}‖²`` of the tangent modes driven by their additive noise ``s_i`` and
of the radial mode driven by ``Σ_j C_1j v_j`` (first-order v). ``v``, δ, b, ε and the noise depend on
each other; starting from the first-order ``v`` they are updated together :data:`ITERATIONS` times
(each update moves the floor by about a tenth of the one before; after four, by 0.01% or less on
the tests' cases; the noise's excess, linear in v, is solved with v rather than iterated). An
untruncated geometric law is taken through its stored finite pmf. The corrected mean recursions
also give each mode's rate at finite η, ``−log ρ`` per iteration (:attr:`NormCoupling.decay_rates`),
the rate at which a mean tilt of its ratio decays (docs/linear-theory.md section 5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from amsgd.core.estimates import json_float
from amsgd.derivations.norm_coupling import KERNEL_CUMULANT_MAX
from amsgd.diffusion.theory.linear_recursion import (
    DelayLaw,
    ar_coefficients,
    largest_radius_of_rows,
    radii_of_rows,
)
from amsgd.diffusion.theory.lyapunov import (
    autocovariance,
    autocovariance_rows,
    delay_spread,
    step_down_variance,
)

#: Joint updates of (v, δ, b, ε, c) from the first-order variances.
ITERATIONS = 4
#: The friction's sum over lags stops when the second half of the lags adds less than this fraction.
_SUM_RTOL = 1e-9
#: The fewest and the most lags of that sum.
_MIN_LAGS, _MAX_LAGS = 64, 1 << 21
#: The most entries of one batch of the friction kernel's FFTs (:func:`_autocorrelations`): small enough to stay
#: in cache (batches of 2**22 entries ran nine times slower per row than batches of 2**16).
_FFT_ENTRIES = 1 << 16


@dataclass(frozen=True)
class NormCoupling:
    """The floor with the norm coupling, and the quantities that carry it (module docstring)."""

    value: float
    variances: tuple[float, ...]  # v_i of the tangent modes with the coupling
    norm_excess: float  # δ = E‖h‖² − 1
    restoring_split: float  # b
    friction: tuple[float, ...]  # ε_i per tangent mode (0 at μ = 0, where it has no effect)
    ratio_drift: tuple[float, ...]  # c_i per tangent mode (per unit η), the ratio's drift away from e_1
    #: (q_i, g_i) per tangent mode, the friction kernel's data constants (:func:`kernel_beyond_isserlis`),
    #: q_i infinite where the kernel does not take it (:func:`kernel_takes`); None where the kernel is
    #: Isserlis's for every mode (no constants given)
    kernel: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    #: The tangent modes' corrected mean recursions (rows of AR coefficients, :func:`_split_rows`: the
    #: split, the friction and the ratio's drift in them) and their delayed rates ``a_i − b − c_i``
    mean_rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)), compare=False, repr=False)
    delayed_rates: tuple[float, ...] = ()

    @cached_property
    def decay_rates(self) -> tuple[float, ...]:
        """``−log ρ`` per iteration of each tangent mode's corrected mean recursion: the rate at which a
        mean tilt of its ratio decays at finite η."""
        return tuple((-np.log(radii_of_rows(self.mean_rows))).tolist()) if self.delayed_rates else ()

    @cached_property
    def slowest_decay(self) -> float | None:
        """The smallest of :attr:`decay_rates` (the error's local rate), certified without every mode's
        radius (:func:`.linear_recursion.largest_radius_of_rows`); None without modes."""
        if not self.delayed_rates:
            return None
        return float(-np.log(largest_radius_of_rows(self.mean_rows, np.array(self.delayed_rates))))

    def to_dict(self) -> dict:
        kernel = None
        if self.kernel is not None:  # null entries: infinite or beyond the checked range (the kernel is Isserlis's)
            kernel = {"cumulant": [json_float(q) for q in self.kernel[0]], "gain": [json_float(g) for g in self.kernel[1]]}
        return {
            "norm_excess": json_float(self.norm_excess),
            "restoring_split": json_float(self.restoring_split),
            "friction": [json_float(e) for e in self.friction],
            "ratio_drift": [json_float(c) for c in self.ratio_drift],
            "decay_per_iteration": [json_float(r) for r in self.decay_rates],
            "kernel_constants": kernel,
            "per_mode": [json_float(v) for v in self.variances],
        }


def autocovariances(coefficients: np.ndarray, lags: int, head: np.ndarray | None = None) -> np.ndarray:
    """``γ(0), ..., γ(lags)`` of the stationary autoregression with unit noise: the Yule–Walker
    solution ``head`` = γ(0 .. L) (:func:`.lyapunov.autocovariance` when not given) continued by
    ``γ(h) = Σ_j c_j γ(h − 1 − j)``."""
    from amsgd.diffusion.theory.sparse_recursion import continue_recursion  # compiled: loaded here

    head = autocovariance(coefficients, 1.0) if head is None else head
    return head[: lags + 1] if lags < head.size else continue_recursion(coefficients, head, lags + 1)


def impulse_response(coefficients: np.ndarray, n: int) -> np.ndarray:
    """``H_0 = 1, H_1, ..., H_{n−1}`` of the autoregression."""
    from amsgd.diffusion.theory.sparse_recursion import continue_recursion

    head = np.zeros(np.asarray(coefficients).size)
    head[-1] = 1.0  # H_0 = 1 after as many zeros as the recursion looks back, less one
    return continue_recursion(coefficients, head, n + head.size - 1)[head.size - 1 :]


def velocity_autocovariance(gamma: np.ndarray) -> np.ndarray:
    """``γ^w(h) = 2γ(h) − γ(h − 1) − γ(h + 1)`` of ``w_k = x_k − x_{k−1}`` for ``h = 0 .. len − 2``."""
    before = np.concatenate(([gamma[1]], gamma[:-2]))  # γ(h − 1), γ(−1) = γ(1)
    return 2.0 * gamma[:-1] - before - gamma[1:]


def friction_lags(mode: np.ndarray, head: np.ndarray, radial: np.ndarray, mu: float, guess: int = _MIN_LAGS) -> int:
    """Lags enough for :func:`radial_friction`'s sum (``head`` the mode's γ(0 .. L)): doubled from
    :data:`_MIN_LAGS` until the second half of them adds less than :data:`_SUM_RTOL` of the sum (its
    terms decay geometrically, so the lags beyond add less still), at most :data:`_MAX_LAGS`. The terms
    are computed at ``guess`` lags (one of the doubling's, a neighbouring mode's answer, say) and every
    smaller candidate checked on their prefix, so the answer is the doubling's whatever the guess."""
    span, lags = min(max(guess, _MIN_LAGS), _MAX_LAGS), _MIN_LAGS
    while True:
        gamma = autocovariances(mode, span + 2, head)
        terms = _friction_terms(velocity_autocovariance(gamma), impulse_response(radial, span), mu)
        while lags <= span:
            if abs(np.sum(terms[lags // 2 : lags])) <= _SUM_RTOL * abs(np.sum(terms[:lags])) or lags >= _MAX_LAGS:
                return lags
            lags *= 2
        span = lags


def _friction_terms(velocity: np.ndarray, response: np.ndarray, mu: float,
                    beyond: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """``H_j [κ(j + 2) − κ(j)]`` for ``j = 0 .. n − 1``, ``γ^w(0 .. n + 1)`` given (and κ's terms
    ``beyond`` Isserlis at the same lags)."""
    from amsgd.derivations.norm_coupling import norm_coupling_functions

    kernel = norm_coupling_functions()[3]
    j = np.arange(velocity.size)
    kappa = kernel(mu, velocity[np.abs(j - 1)], velocity)  # κ(0 .. n + 1)
    if beyond is not None:
        kappa = kappa + beyond
    n = velocity.size - 2
    return response[:n] * (kappa[2:] - kappa[:-2])


def radial_friction(velocity: np.ndarray, response: np.ndarray, mu: float, beyond: np.ndarray | None = None) -> float:
    """``ε_i = Σ_j H_j [κ_i(j + 2) − κ_i(j)]/(2 γ^w_i(0))`` from the mode's velocity autocovariance
    ``γ^w(0 .. n + 1)`` and the radial impulse response ``H_0 .. H_{n−1}`` (module docstring), with
    :func:`kernel_beyond_isserlis`'s terms where given."""
    return float(np.sum(_friction_terms(velocity, response, mu, beyond))) / (2.0 * velocity[0])


def kernel_beyond_isserlis(mode: np.ndarray, size: int, constants: tuple[float, float], noise: float, eta: float,
                           mu: float, lam1: float, delta: float) -> np.ndarray:  # fmt: skip
    """The kernel's two terms of the data law at ``ℓ = 0 .. size − 1``
    (:func:`amsgd.derivations.norm_coupling.kinetic_noise`; ``constants = (q_i, g_i)``, ``noise = s_i``):
    with ``G`` the impulse response of the velocity of the mode's recursion ``mode`` (``G_0 = 1``),
    the noise's fourth cumulant adds ``e(|ℓ − 1|) + μ e(ℓ)``, ``e(ℓ) = q_i s_i² η⁴ Σ_m G_m² G_{m+ℓ}²``,
    and the radial gain's noise ``−2η³ δ g_i λ_1 s_i G_{ℓ−1}²`` for ℓ >= 1."""
    return kernels_beyond_isserlis([mode], [size], [constants], [noise], eta, mu, lam1, delta)[0]


def kernels_beyond_isserlis(modes: Sequence[np.ndarray], sizes: Sequence[int], constants: Sequence[tuple[float, float]],
                            noises: Sequence[float], eta: float, mu: float, lam1: float,
                            delta: float) -> list[np.ndarray]:  # fmt: skip
    """:func:`kernel_beyond_isserlis` of several modes at once (their sums ``Σ_m G_m² G_{m+ℓ}²`` by FFT,
    modes of one size together: :func:`_autocorrelations`)."""
    squares = [np.diff(impulse_response(mode, size), prepend=0.0) ** 2 for mode, size in zip(modes, sizes)]
    out = []
    for g2, fourth, (cumulant, gain), noise in zip(squares, _autocorrelations(squares), constants, noises):
        step_noise = eta**2 * noise  # η² s_i and ηλ_1: unchanged when Σ is scaled by 1/c and η by c
        energy = cumulant * step_noise**2 * fourth
        lag = np.arange(g2.size)
        beyond = energy[np.abs(lag - 1)] + mu * energy
        beyond[1:] -= 2.0 * delta * gain * (eta * lam1) * step_noise * g2[:-1]
        out.append(beyond)
    return out


def _autocorrelations(rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``Σ_m x_m x_{m+ℓ}`` for ``ℓ = 0 .. n − 1`` of each row x (n its length): the inverse FFT of
    ``|X|²`` at a length of at least ``2n − 1`` (no wrap-around), rows of one length in one batch of at
    most :data:`_FFT_ENTRIES` entries."""
    import scipy.fft

    out: list[np.ndarray] = [np.zeros(0)] * len(rows)
    by_size: dict[int, list[int]] = {}
    for k, row in enumerate(rows):
        by_size.setdefault(row.size, []).append(k)
    for n, members in by_size.items():
        length = scipy.fft.next_fast_len(2 * n - 1, real=True)
        chunk = max(1, _FFT_ENTRIES // length)
        for lo in range(0, len(members), chunk):
            batch = members[lo : lo + chunk]
            spectra = scipy.fft.rfft(np.stack([rows[k] for k in batch]), n=length, axis=1)
            power = spectra.real**2 + spectra.imag**2
            for k, correlation in zip(batch, scipy.fft.irfft(power, n=length, axis=1)[:, :n]):
                out[k] = correlation
    return out


def kernel_takes(cumulant: float, gain: float, cumulant_max: float = KERNEL_CUMULANT_MAX) -> bool:
    """Whether a mode's friction kernel takes the data-law terms of its constants ``(q_i, g_i)``: both
    finite and ``q_i`` at most ``cumulant_max`` (:data:`KERNEL_CUMULANT_MAX`, to rounding)."""
    return bool(np.isfinite(gain) and cumulant <= cumulant_max * (1.0 + 1e-9))


def norm_coupled_floor(rates: np.ndarray, coupling: np.ndarray, additive: np.ndarray, eta: float, mu: float,
                       law: DelayLaw, variances: np.ndarray, *, constants: tuple[np.ndarray, np.ndarray] | None = None,
                       delta: float | None = None, friction: bool | float = True,
                       cumulant_max: float = KERNEL_CUMULANT_MAX) -> NormCoupling | None:  # fmt: skip
    """The floor with the norm coupling under the i.i.d. delay ``law`` (a constant delay included), from
    the first-order ``variances`` of the tangent modes; ``rates``, ``coupling``, ``additive`` are the
    linearisation's, index 0 the radial mode (:class:`.second_moments.Coefficients`). None where the
    radial mode or a corrected tangent mode has no stationary law (beyond τ*, for instance): the
    first-order floor then stands alone. ``constants`` are the tangent modes' ``(q_i, g_i)`` of the
    friction's kernel (:func:`kernel_beyond_isserlis`); a mode where either is infinite or ``q_i`` is above
    ``cumulant_max`` (:func:`kernel_takes`), or all of them when not given, keep the Gaussian kernel.

    For studies of the coupling's parts (benchmarks/floor_parts.py): ``delta`` replaces the norm
    balance's δ (a measured one, say), and ``friction=False`` leaves the radial friction out (ε_i = 0),
    which gives the floor of a norm that does not move; a number multiplies every ε_i (a measured
    friction in the kernel's place); ``cumulant_max=np.inf`` lifts the kernel's checked range."""
    from amsgd.derivations.norm_coupling import norm_coupling_functions, ratio_noise_excess_function
    from amsgd.derivations.ratio_drift import ratio_rate_correction_function
    from amsgd.diffusion.theory.second_moments import curvature_mean

    constants = _taken(constants, cumulant_max)
    split_of, delta_of, balance_term, _ = norm_coupling_functions()
    noise_excess, drift_of = ratio_noise_excess_function(), ratio_rate_correction_function()
    lam1, tangent_rates, pmf = rates[0] / 2.0, rates[1:], law.pmf
    radial_now = ar_coefficients(2.0 * lam1, eta, mu, 0)  # the norm's recursion without the delay
    radial = ar_coefficients(2.0 * lam1, eta, mu, law)[None, :]  # and with it
    if not np.isfinite(step_down_variance(radial)[0]):  # beyond τ*: the norm has no stationary law
        return None
    radial_gamma, radial_feedback = _unit_moments(radial, np.array([2.0 * lam1]), eta, pmf)
    if radial_feedback[0] >= 1.0:
        return None
    radial_kinetic = (eta**2 * float(coupling[0, 1:] @ variances) * 2.0 * (radial_gamma[0, 0] - radial_gamma[0, 1])
                      / (1.0 - radial_feedback[0]))  # fmt: skip
    v = np.asarray(variances, dtype=float)
    floor = curvature_mean(v)
    modes = _split_rows(0.0, tangent_rates, eta, np.full(v.size, mu), law)  # the first-order recursions
    heads, feedback = _unit_moments(modes, tangent_rates, eta, pmf)
    # the friction's lags, and at least the delay law's (the balance averages γ over the law: geometric:20
    # reaches lag 566 where the friction asked for 513)
    lags, guess = [], _MIN_LAGS
    for c, g in zip(modes, heads):
        guess = friction_lags(c, g, radial_now, mu, guess) if mu > 0 else _MIN_LAGS
        lags.append(max(guess, law.order) if mu > 0 else law.order)
    response = impulse_response(radial_now, max(lags))
    for _ in range(ITERATIONS):
        unit = [autocovariances(c, n + 2, g) for c, n, g in zip(modes, lags, heads)]
        gamma = [vi * g / g[0] for vi, g in zip(v, unit)]
        kinetic = radial_kinetic + eta**2 * sum(si * 2.0 * (g[0] - g[1]) / (1.0 - f)
                                                for si, g, f in zip(additive[1:], unit, feedback))  # fmt: skip
        lag_sum = sum(balance_term(lam1, lam1 - a, g[0], pmf @ g[: pmf.size]) for a, g in zip(tangent_rates, gamma))
        norm_excess = float(delta_of(eta, mu, lam1, lag_sum, kinetic)) if delta is None else delta
        split = float(split_of(lam1, norm_excess, floor, (lam1 - tangent_rates) @ v))
        frictions = np.zeros(v.size)
        if mu > 0 and friction:
            beyond = _kernels_where_known(modes, lags, constants, additive[1:], eta, mu, lam1, norm_excess)
            for i in range(v.size):
                frictions[i] = float(friction) * radial_friction(velocity_autocovariance(gamma[i]), response, mu, beyond[i])
        momenta = mu * (1.0 + frictions)
        drift = drift_of(eta, momenta, additive[1:])  # the ratio's drift away from e_1, on the stale ratio
        delayed = tangent_rates - split - drift
        modes = _split_rows(split, delayed, eta, momenta, law)
        if not np.all(np.isfinite(step_down_variance(modes))):  # a root on or outside the unit circle
            return None
        solved = _coupled_variances(modes, delayed, eta, pmf, coupling, additive, noise_excess)
        if solved is None:
            return None
        v, heads, feedback = solved
        floor = curvature_mean(v)
    kernel = None if constants is None else (tuple(map(float, constants[0])), tuple(map(float, constants[1])))
    return NormCoupling(floor, tuple(v.tolist()), norm_excess, split, tuple(frictions.tolist()), tuple(drift.tolist()),
                        kernel, modes, tuple(delayed.tolist()))  # fmt: skip


def _taken(constants: tuple[np.ndarray, np.ndarray] | None,
           cumulant_max: float) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """``constants`` with each ``q_i`` the kernel does not take (:func:`kernel_takes`) set to ∞: those
    modes keep Isserlis's kernel, and the result reports their ``q_i`` as null."""
    if constants is None:
        return None
    cumulants, gains = (np.asarray(c, dtype=float) for c in constants)
    taken = [kernel_takes(q, g, cumulant_max) for q, g in zip(cumulants, gains)]
    return np.where(taken, cumulants, np.inf), gains


def _kernels_where_known(modes: np.ndarray, lags: list[int], constants: tuple[np.ndarray, np.ndarray] | None,
                         noises: np.ndarray, eta: float, mu: float, lam1: float,
                         delta: float) -> list[np.ndarray | None]:  # fmt: skip
    """Per tangent mode, :func:`kernels_beyond_isserlis`'s terms at its ``lags + 2`` lags, None where its
    constants are not given or either is infinite (its kernel is Isserlis's: :func:`_taken`)."""
    beyond: list[np.ndarray | None] = [None] * len(lags)
    if constants is None:
        return beyond
    known = [i for i in range(len(lags)) if np.isfinite(constants[0][i]) and np.isfinite(constants[1][i])]
    terms = kernels_beyond_isserlis([modes[i] for i in known], [lags[i] + 2 for i in known],
                                    [(constants[0][i], constants[1][i]) for i in known], [noises[i] for i in known],
                                    eta, mu, lam1, delta)  # fmt: skip
    for i, term in zip(known, terms):
        beyond[i] = term
    return beyond


def _coupled_variances(modes: np.ndarray, delayed: np.ndarray, eta: float, pmf: np.ndarray, coupling: np.ndarray,
                       additive: np.ndarray, noise_excess: Callable[..., np.ndarray],
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
    """The tangent modes' stationary variances under their corrected recursions ``modes`` (rows of
    :func:`_split_rows`, delayed rates ``delayed``), with the multiplicative noise and the noise's second
    order: ``v_i (1 − G_i e_i) = G_i (s_i + Σ_j C_ij v_j)``; with them the modes' unit heads and delay
    feedbacks (:func:`_unit_moments`). None where a mode's second moments have no stationary law."""
    from amsgd.diffusion.theory.second_moments import perron_below_one

    heads, feedback = _unit_moments(modes, delayed, eta, pmf)
    if not np.all(feedback < 1.0):  # the delay's spread alone makes a mode's second moments grow
        return None
    gains = eta**2 * heads[:, 0] / (1.0 - feedback)
    # the noise excess s_i (2 γ_i(τ) − 4 v_i) is linear in v_i, so it is solved with v rather than
    # iterated (with heavy tails the iteration oscillates), e_i the excess per unit variance at the mode's
    # own autocorrelation at the delay (e_i ≤ −2 s_i)
    per_variance = noise_excess(additive[1:], 1.0, (heads[:, : pmf.size] @ pmf) / heads[:, 0])
    scale = 1.0 - gains * per_variance
    matrix = gains[:, None] * coupling[1:, 1:] / scale[:, None]
    if not perron_below_one(matrix):
        return None
    return np.linalg.solve(np.eye(delayed.size) - matrix, gains * additive[1:] / scale), heads, feedback


def _split_rows(split: float, delayed: np.ndarray, eta: float, momenta: np.ndarray, law: DelayLaw) -> np.ndarray:
    """The mean recursions ``x_{k+1} = (1 + μ_i − η b) x_k − μ_i x_{k−1} − η d_i E x_{k−τ}`` of every mode
    (``d_i`` the ``delayed`` rates), one row each, ``L + 1`` coefficients."""
    rows = np.zeros((delayed.size, law.order + 1))
    rows[:, 0], rows[:, 1] = 1.0 + momenta - eta * split, -momenta
    rows[:, : law.pmf.size] -= eta * delayed[:, None] * law.pmf[None, :]
    return rows


def _unit_moments(rows: np.ndarray, delayed: np.ndarray, eta: float, pmf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the unit-noise autocovariance ``γ(0 .. L)`` of the mean recursion, and the feedback
    ``(η d)² κ(γ)`` through which a random delay's spread multiplies the noise (:func:`.lyapunov.stationary_variance`;
    0 for a constant delay)."""
    heads = autocovariance_rows(rows)
    feedback = np.array([(eta * d) ** 2 * delay_spread(g, pmf, 1.0) for d, g in zip(delayed, heads)])
    return heads, feedback
