"""The compiled loops behind :mod:`.first_passage`: independent paths of the delayed momentum
recursion ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ_k} + η s z_k`` (for the escape the noise
``η (g_k ξ_k + A_k x_{k−τ_k})`` drawn from the data's own coefficients), one mode from rest at 0
followed until ``x_k² ≥ level_k`` (:func:`first_passages`, the escape: a level and a noise gain per
iteration) or for a fixed horizon (:func:`escape_curve`, the escape's mean curve), or several modes from rest at a
start point followed until ``Σ x_i² <= level`` (:func:`converge_passages`, the convergence); and the
reduced model of :mod:`.travel_law` from the saddle through a run's escape, arrival and convergence
(:func:`travel_passages`). Paths are independent, so each runs to its own passage in a short ring
buffer."""

from __future__ import annotations

import numpy as np
from numba import njit

from amsgd.simulate.ziggurat import sfc64_next, standard_normal

_SH11 = np.uint64(11)
_TO_UNIT = 1.0 / 2.0**53
#: Beyond this ``x²`` an escaping path's share ``x²/(1 + x² + S)`` is 1 to rounding.
_SATURATED = 1e32


#: How :func:`first_passages` draws a step's ``(ξ, A)``: from the data law (Gaussian, Rademacher-type,
#: Student-t eigen-coordinates ``Y_1, Y_j`` drawn afresh) or from the rows of a pool.
GAUSSIAN_DATA, RADEMACHER_DATA, STUDENT_T_DATA, POOL = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def _escape_draw(kind: int, params: np.ndarray, pool: np.ndarray) -> tuple[float, float]:
    """One step's ``(ξ, A) = (Y_1 Y_j, Y_1² − Y_j² − (λ_1 − λ_j))`` for the data kinds (``params`` =
    ``(λ_1, λ_j, ν)``), or a row of ``pool`` drawn uniformly."""
    if kind == POOL:
        row = np.random.randint(0, pool.shape[0])
        return pool[row, 0], pool[row, 1]
    if kind == RADEMACHER_DATA:
        sign = 1.0 if np.random.random() < 0.5 else -1.0
        return sign * np.sqrt(params[0] * params[1]), 0.0
    first = np.sqrt(params[0]) * np.random.standard_normal()
    own = np.sqrt(params[1]) * np.random.standard_normal()
    if kind == STUDENT_T_DATA:
        scale = np.sqrt((params[2] - 2.0) / np.random.chisquare(params[2]))
        first *= scale
        own *= scale
    return first * own, first * first - own * own - (params[0] - params[1])


@njit(cache=True, nogil=True)
def _inverse_cdf(cdf: np.ndarray, u: float) -> int:
    """The delay whose cumulative probability first exceeds the uniform ``u`` (the last one where none
    does: rounding), by bisection of the nondecreasing ``cdf``: a step costs log₂ of the longest delay."""
    return min(np.searchsorted(cdf, u, side="right"), cdf.size - 1)


@njit(cache=True, nogil=True)
def _escape_step(history: np.ndarray, k: int, previous: float, rate: float, kind: int, params: np.ndarray,
                 pool: np.ndarray, eta: float, mu: float, constant: int, cdf: np.ndarray,
                 gains: np.ndarray) -> tuple[float, float]:  # fmt: skip
    """One step of :func:`first_passages`' recursion on one path: writes ``x_{k+1}`` into the ring buffer
    ``history`` (``x_{k−1}`` is ``previous``) and returns ``(x_{k+1}, x_k)``."""
    slots = history.size
    newest = k % slots
    current = history[newest]
    lag = constant if constant >= 0 else _inverse_cdf(cdf, np.random.random())
    lag = min(lag, k)
    stale = history[(newest - lag) % slots]
    additive, multiplicative = _escape_draw(kind, params, pool)
    additive *= gains[min(k, gains.size - 1)]
    step = current + mu * (current - previous) + eta * ((multiplicative - rate) * stale + additive)
    history[(k + 1) % slots] = step
    return step, current


@njit(cache=True, nogil=True)
def first_passages(paths: int, rate: float, kind: int, params: np.ndarray, pool: np.ndarray, eta: float, mu: float,
                   constant: int, cdf: np.ndarray, levels: np.ndarray, gains: np.ndarray, max_iterations: int,
                   seed: int) -> np.ndarray:  # fmt: skip
    """The first k with ``x_k² ≥ levels[k]`` for each path (NaN beyond ``max_iterations``) of
    ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η rate x_{k−τ_k} + η g_k ξ_k + η A_k x_{k−τ_k}``, from rest at 0,
    the pair ``(ξ_k, A_k)`` drawn every step by :func:`_escape_draw`, ``g_k = gains[k]`` (``levels`` and
    ``gains`` hold their last entry beyond their end). The delay is ``constant`` when it is
    >= 0, otherwise drawn afresh every step from ``cdf`` (cumulative probabilities of 0, 1, ..., last
    entry 1) by inversion."""
    np.random.seed(seed)
    out = np.full(paths, np.nan)
    history = np.zeros(cdf.size + 1)  # x_{k−τmax} .. x_k and the slot written
    for p in range(paths):
        history[:] = 0.0
        previous = 0.0
        for k in range(max_iterations):
            step, previous = _escape_step(history, k, previous, rate, kind, params, pool, eta, mu, constant, cdf,
                                          gains)  # fmt: skip
            if step * step >= levels[min(k + 1, levels.size - 1)]:
                out[p] = k + 1
                break
    return out


@njit(cache=True, nogil=True)
def escape_curve(paths: int, rate: float, kind: int, params: np.ndarray, pool: np.ndarray, eta: float, mu: float,
                 constant: int, cdf: np.ndarray, shares: np.ndarray, gains: np.ndarray, horizon: int,
                 seed: int) -> np.ndarray:  # fmt: skip
    """Over ``paths`` paths of :func:`first_passages`' recursion, each followed for ``horizon`` iterations
    without stopping, the sums of ``x_k²/(1 + x_k² + S_k)`` and of its square at ``k = 0 .. horizon``
    (rows 0 and 1), ``S_k = shares[k]`` (held at its last entry beyond its end): the escaping share
    ``h_1²/‖h‖²`` of each run, which saturates below 1 where the linear ratio grows on. A path whose
    ``x²`` passes :data:`_SATURATED` counts 1 from then on (and is followed no further)."""
    np.random.seed(seed)
    sums = np.zeros((2, horizon + 1))
    history = np.zeros(cdf.size + 1)
    for p in range(paths):
        history[:] = 0.0
        previous = 0.0
        for k in range(horizon):
            step, previous = _escape_step(history, k, previous, rate, kind, params, pool, eta, mu, constant, cdf,
                                          gains)  # fmt: skip
            squared = step * step
            if squared > _SATURATED:
                sums[:, k + 1 :] += 1.0
                break
            share = squared / (1.0 + squared + shares[min(k + 1, shares.size - 1)])
            sums[0, k + 1] += share
            sums[1, k + 1] += share * share
    return sums


@njit(cache=True, nogil=True)
def _stale_lag(constant: int, cdf: np.ndarray, k: int, a, b, c, n):
    """A step's delay, at most k: ``constant`` when it is >= 0, otherwise drawn from ``cdf`` by inversion
    of a uniform of the SFC64 state ``(a, b, c, n)``, returned advanced."""
    lag = constant
    if lag < 0:
        word, a, b, c, n = sfc64_next(a, b, c, n)
        lag = _inverse_cdf(cdf, (word >> _SH11) * _TO_UNIT)
    return min(lag, k), a, b, c, n


@njit(cache=True, nogil=True)
def converge_passages(paths: int, rates: np.ndarray, scales: np.ndarray, eta: float, mu: float, constant: int,
                      cdf: np.ndarray, start: np.ndarray, level: float, max_iterations: int,
                      state: np.ndarray) -> np.ndarray:  # fmt: skip
    """The first k >= 0 with ``Σ_i x_{k,i}² <= level`` for each path (NaN beyond ``max_iterations``) of
    the modes ``x_{k+1,i} = (1 + μ) x_{k,i} − μ x_{k−1,i} − η a_i x_{k−τ_k,i} + scales_i z_{k,i}``,
    at rest at ``start`` before time 0 (``x_{−j} = x_0``). One delay per step, shared by every mode
    (the algorithm reads one stale iterate): ``constant`` when it is >= 0, otherwise drawn from
    ``cdf`` by inversion of a uniform. ``scales_i = η s_i``. The normals come from the ziggurat of
    :mod:`amsgd.simulate.ziggurat` on the SFC64 ``state`` (advanced in place): a path-step costs one
    normal per mode, which dominates. O(paths × steps × modes)."""
    modes = rates.size
    slots = cdf.size + 1
    out = np.full(paths, np.nan)
    history = np.empty((slots, modes))
    previous = np.empty(modes)
    initial = 0.0
    for i in range(modes):
        initial += start[i] * start[i]
    if initial <= level:
        out[:] = 0.0
        return out
    a, b, c, n = state[0], state[1], state[2], state[3]
    for p in range(paths):
        for s in range(slots):
            history[s, :] = start
        previous[:] = start
        for k in range(max_iterations):
            newest = k % slots
            lag, a, b, c, n = _stale_lag(constant, cdf, k, a, b, c, n)
            stale = (newest - lag) % slots
            written = (k + 1) % slots
            total = 0.0
            for i in range(modes):
                z, a, b, c, n = standard_normal(a, b, c, n)
                current = history[newest, i]
                step = current + mu * (current - previous[i]) - eta * rates[i] * history[stale, i] + scales[i] * z
                previous[i] = current
                history[written, i] = step
                total += step * step
            if total <= level:
                out[p] = k + 1
                break
    state[0], state[1], state[2], state[3] = a, b, c, n
    return out


@njit(cache=True, nogil=True)
def travel_passages(paths: int, plane_rate: float, plane_noise: float, plane_coupling: float, rates: np.ndarray,
                    noise: np.ndarray, eta: float, mu: float, constant: int, cdf: np.ndarray, levels: np.ndarray,
                    max_iterations: int, lost: float, state: np.ndarray, curve: np.ndarray,
                    give_up: int = -1, arrival: int = 1) -> tuple[np.ndarray, int]:  # fmt: skip
    """Per path (columns), the first k with error ``<= levels[0]``, then the first k from there with
    error ``<= levels[1]``, and so on (one row per level; NaN beyond ``max_iterations``), and how many
    paths were followed: all of them, unless ``give_up >= 0`` and more than ``give_up`` paths passed the
    first level but not the level ``arrival``, where the paths after that one are left NaN. With a
    ``curve`` of length K > 0 (at most ``max_iterations``), every path is also followed for K
    iterations, past its last level if need be, and ``curve[k]`` gains its error after step k (1 from
    where a path is given up: its error has gone to 1), so that ``curve / paths`` is the mean error
    curve. The model of
    :mod:`.travel_law`: the plane's angle θ from the saddle (``h_1 = sin θ``) and the orthogonal
    coordinates y_i, from rest at the saddle (all 0),

        ``θ_{k+1} = θ_k + μ (θ_k − θ_{k−1}) + η ((a/2) sin 2θ_s + sqrt(S cos² 2θ_s + (V/4) sin² 2θ_s) z)``,
        ``y_{k+1,i} = y_{k,i} + μ (y_{k,i} − y_{k−1,i}) + η (−(q r_{1,i} + c r_{j,i}) y_{s,i} + sqrt(q n_{1,i} + c n_{j,i}) z_i)``,

    ``s = k − τ_k`` the stale step, ``q = sin² θ_s``, ``c = 1 − q``, ``S = plane_noise``, ``V = plane_coupling``;
    the columns 0 and 1 of ``rates`` and ``noise`` are the values at the saddle and at the optimum. The error is
    ``(cos² θ + U)/(1 + U)``, ``U = Σ_i y_i²``; a path whose U exceeds ``lost`` is given up (NaN). One
    delay per step (``constant`` when >= 0, else drawn from ``cdf``); normals from the ziggurat on the
    SFC64 ``state`` (advanced in place)."""
    modes = rates.shape[0]
    slots = cdf.size + 1
    out = np.full((levels.size, paths), np.nan)
    angle = np.empty(slots)
    ys = np.empty((slots, modes))
    previous = np.empty(modes)
    a, b, c, n = state[0], state[1], state[2], state[3]
    followed, unarrived = paths, 0
    for p in range(paths):
        angle[:] = 0.0
        ys[:, :] = 0.0
        previous[:] = 0.0
        before = 0.0
        passed = 0  # levels passed so far
        for k in range(max_iterations):
            newest = k % slots
            lag, a, b, c, n = _stale_lag(constant, cdf, k, a, b, c, n)
            stale = (newest - lag) % slots
            written = (k + 1) % slots
            old = angle[stale]
            share = np.sin(old) ** 2  # h_1²'s share of the plane at the stale step
            z, a, b, c, n = standard_normal(a, b, c, n)
            current = angle[newest]
            drift = 0.5 * plane_rate * np.sin(2.0 * old)
            spread = np.sqrt(np.cos(2.0 * old) ** 2 * plane_noise + 0.25 * np.sin(2.0 * old) ** 2 * plane_coupling)
            theta = current + mu * (current - before) + eta * (drift + spread * z)
            before = current
            angle[written] = theta
            total = 0.0
            for i in range(modes):
                z, a, b, c, n = standard_normal(a, b, c, n)
                rate = (1.0 - share) * rates[i, 0] + share * rates[i, 1]
                spread = np.sqrt(max((1.0 - share) * noise[i, 0] + share * noise[i, 1], 0.0))
                y = ys[newest, i]
                step = y + mu * (y - previous[i]) + eta * (-rate * ys[stale, i] + spread * z)
                previous[i] = y
                ys[written, i] = step
                total += step * step
            if not total < lost:  # the orthogonal coordinates blew up (or NaN): the run never arrives
                for later in range(k, curve.size):
                    curve[later] += 1.0
                break
            error = (np.cos(theta) ** 2 + total) / (1.0 + total)
            if k < curve.size:
                curve[k] += error
            while passed < levels.size and error <= levels[passed]:
                out[passed, p] = k + 1
                passed += 1
            if passed == levels.size and k + 1 >= curve.size:
                break
        unarrived += 1 <= passed <= arrival < levels.size
        if 0 <= give_up < unarrived:
            followed = p + 1
            break
    state[0], state[1], state[2], state[3] = a, b, c, n
    return out, followed
