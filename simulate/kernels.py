"""Compiled inner loops of the simulator: one block of replicates over one chunk of steps.

The kernels advance, in eigen-coordinates ``h = Qᵀ v`` and with ``y = Qᵀ x``,

    h_{k+1} = h_k + μ (h_k − h_{k−1}) + η s (y_k − s h_{k−τ_k}),    s = y_kᵀ h_{k−τ_k},

which is ``η g(v_{k−τ_k}, X_k)`` with ``g(v, X) = (I − v vᵀ) X Xᵀ v = (Xᵀv) (X − (Xᵀv) v)``.
After each update they check ``||h_{k+1}||² <= divergence_norm²`` (false also for NaN and inf); a
replicate that fails is frozen from then on, its divergence iteration noted, and it records nothing
more. They accumulate the optimisation error ``1 − h_1²/||h||²`` over the averaging window and, at
the recording iterations, store the error, ``||h||²`` and the coordinates.

:func:`advance_lanes` (constant and i.i.d. delays) runs :data:`LANES` replicates side by side, the
replicate index innermost in memory (``ring[group, slot, i, lane]``), so every arithmetic loop runs
over lanes and compiles to SIMD instructions; each lane does exactly the arithmetic of one
replicate, so a replicate's numbers do not depend on its neighbours. This pays at small d, where
one replicate's step is a short chain of dependent operations. At large d
:func:`advance_replicates` runs replicate by replicate instead: one replicate's history then stays
in cache over a chunk, and the loops over coordinates are long enough to vectorise. The
event-driven server (:func:`advance_server`) keeps one event queue per replicate and also runs
replicate by replicate. Gaussian samples are drawn by the kernels themselves, from each
replicate's own SFC64 stream in step order, a few steps at a time into a buffer that stays in
cache; other data come from the chunk ``y[B, K, d]`` drawn beforehand.

Sums over coordinates (four terms at a time in the lane kernel) may be reassociated by the
compiler (``fastmath`` reassoc/contract; NaN and inf keep their meaning), so results agree with a
sequential evaluation to rounding, and are the same whatever the chunking of replicates or steps.
Each kernel writes out its bookkeeping (divergence, window sum, recording) inline: moving the
per-step code into a shared helper was measured to double the cost per replicate-step at d = 4.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from amsgd.simulate.plan import LANES
from amsgd.simulate.queue import heap_sift_down
from amsgd.simulate.ziggurat import fill_scaled_normals, fill_scaled_normals_dot, standard_normal

__all__ = ["LANES", "advance_lanes", "advance_replicates", "advance_server", "draw_lanes", "draw_replicates"]


class Step(NamedTuple):
    """The chunk's first iteration ``k0`` and the update's scalars."""

    k0: int
    eta: float
    mu: float
    max_norm_sq: float  # divergence_norm²


class Samples(NamedTuple):
    """Where the chunk's samples come from: ``y[B, K, d]`` drawn beforehand, or (Gaussian data)
    ``streams[B, 4]`` (SFC64 states, advanced in place) scaled by ``scale[d]`` and drawn a piece at a
    time into the scratch ``buf`` (``[1, piece, d]`` per replicate, ``[piece, d, LANES]`` in lanes)."""

    y: np.ndarray
    streams: np.ndarray
    scale: np.ndarray
    buf: np.ndarray


class Delays(NamedTuple):
    """The chunk's delays: ``min{i: cdf[i] > u}`` for the uniforms ``u[B, K]`` of an i.i.d. law, or
    ``tau_const`` when ``uniforms`` is empty (shape ``(B, 0)``)."""

    uniforms: np.ndarray
    cdf: np.ndarray
    tau_const: int


class Records(NamedTuple):
    """What is recorded at the iterations ``record_at``: per replicate the error and ``||h||²``
    (and every coordinate when ``coords`` is not empty), per block the sums of ``h`` and ``h²`` and
    the count of live replicates."""

    record_at: np.ndarray
    error: np.ndarray
    norm_sq: np.ndarray
    coords: np.ndarray
    coord_sum: np.ndarray
    coord_sq: np.ndarray
    alive_count: np.ndarray


class Tally(NamedTuple):
    """Per replicate: alive, divergence iteration, the window sum of the error from ``window_start``
    and the delays applied (their histogram over the block in ``delay_counts``, the largest in
    ``delay_max[0]``); ``window_first`` takes the window sum as it stands before iteration
    ``window_split`` (the sum over the window's first half)."""

    alive: np.ndarray
    diverged_at: np.ndarray
    window_start: int
    window_sum: np.ndarray
    delay_counts: np.ndarray
    delay_sum: np.ndarray
    delay_max: np.ndarray
    window_split: int
    window_first: np.ndarray


class LaneScratch(NamedTuple):
    """Work arrays of :func:`advance_lanes`: the gathered stale iterates ``stale[1, d, LANES]`` and,
    per lane, ``s = yᵀ h_stale``, ``||h||²``, the chunk's window sum and 1.0 for a live lane."""

    stale: np.ndarray
    s: np.ndarray
    nsq: np.ndarray
    window: np.ndarray
    live: np.ndarray


class Server(NamedTuple):
    """The event-driven server's state per replicate: ``pair[b, k mod 2]`` holds ``h_k`` and
    ``h_{k−1}``; ``copies[b, w]`` the iterate worker w read, at version ``read_version[b, w]``; the
    event queue is the min-heap ``heap_times[b]`` / ``heap_workers[b]``."""

    pair: np.ndarray
    copies: np.ndarray
    heap_times: np.ndarray
    heap_workers: np.ndarray
    read_version: np.ndarray


@njit(cache=True, nogil=True, inline="always")
def fill_lanes(samples, alive, g0, j0, m):
    """Samples of steps ``j0 .. j0 + m`` of lanes ``g0 ..`` into ``samples.buf[j, i, lane]``.

    A live lane draws ``scale · z`` from its stream ``streams[g0 + lane]`` or, with no streams,
    copies its rows of ``y``. Lanes that are not live (diverged, or padding past the block's end)
    get zeros.
    """
    streams, scale, y, buf = samples.streams, samples.scale, samples.y, samples.buf
    dim, lanes = buf.shape[1], buf.shape[2]
    n = alive.shape[0]
    for lane in range(lanes):
        b = g0 + lane
        if b >= n or not alive[b]:
            for j in range(m):
                for i in range(dim):
                    buf[j, i, lane] = 0.0
        elif streams.shape[0] > 0:
            a, bb, c, cnt = streams[b, 0], streams[b, 1], streams[b, 2], streams[b, 3]
            for j in range(m):
                for i in range(dim):
                    z, a, bb, c, cnt = standard_normal(a, bb, c, cnt)
                    buf[j, i, lane] = scale[i] * z
            streams[b, 0], streams[b, 1], streams[b, 2], streams[b, 3] = a, bb, c, cnt
        else:
            for j in range(m):
                for i in range(dim):
                    buf[j, i, lane] = y[b, j0 + j, i]


@njit(cache=True, nogil=True)
def draw_lanes(samples, alive, n_steps):
    """The sample draws of :func:`advance_lanes` over ``n_steps`` steps, and nothing else."""
    buf = samples.buf
    for g0 in range(0, alive.shape[0], buf.shape[2]):
        for j0 in range(0, n_steps, buf.shape[0]):
            fill_lanes(samples, alive, g0, j0, min(buf.shape[0], n_steps - j0))


@njit(cache=True, nogil=True)
def draw_replicates(samples, n_steps):
    """The sample draws of :func:`advance_replicates` and :func:`advance_server` over ``n_steps`` steps."""
    for b in range(samples.streams.shape[0]):
        for j in range(0, n_steps, samples.buf.shape[1]):
            _draw_piece(samples, b, j, n_steps)


@njit(cache=True, nogil=True, inline="always")
def _draw_piece(samples, b, j, n_steps):
    """Draw replicate b's samples of steps ``j ..`` (a piece of at most ``buf.shape[1]``) into
    ``buf[0]``; returns the step after the piece."""
    own = samples.buf
    drawn = min(j + own.shape[1], n_steps)
    fill_scaled_normals(samples.streams[b], samples.scale, own[0, : drawn - j])
    return drawn


@njit(cache=True, nogil=True, inline="always")
def inverse_cdf(cdf, u):
    """The delay ``min{i: cdf[i] > u}`` (the last index when none is), by bisection."""
    lo = 0
    hi = cdf.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True, inline="always")
def _stale_slot(k, cur, tau, slots):
    """The ring slot of ``h_{max(k − τ, 0)}``, with ``h_k`` in slot ``cur = k mod slots``.

    ``h_0`` stays in slot 0 until step ``slots − 1 > max_delay``, so the history before time 0
    (``v_{−i} = v_0``) is never stored: only slot 0 and slot ``slots − 1`` (``h_{−1}``, read as
    the previous iterate at k = 0) start at ``h_0``.
    """
    if tau > k:
        return 0
    return cur - tau if cur >= tau else cur - tau + slots


@njit(cache=True, nogil=True, inline="always")
def _lane_sums(a, ia, b, ib, out):
    """``out[lane] = Σ_i a[ia, i, lane] · b[ib, i, lane]``, four coordinates per pass."""
    dim, lanes = a.shape[1], a.shape[2]
    for lane in range(lanes):
        out[lane] = 0.0
    i = 0
    while i + 4 <= dim:
        for lane in range(lanes):
            out[lane] += (a[ia, i, lane] * b[ib, i, lane] + a[ia, i + 1, lane] * b[ib, i + 1, lane]) + (
                a[ia, i + 2, lane] * b[ib, i + 2, lane] + a[ia, i + 3, lane] * b[ib, i + 3, lane]
            )
        i += 4
    while i < dim:
        for lane in range(lanes):
            out[lane] += a[ia, i, lane] * b[ib, i, lane]
        i += 1


#: Below this the error ``1 − h_1²/‖h‖²`` is formed again from the tangent sum, where the subtraction
#: has lost more than 1e-10 of it (at η = 1e-12 it read 0: every replicate's floor of about 1e-20).
PRECISE_BELOW = 1e-6


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def sin2(h, nsq):
    """``sin²∠(h, e_1) = 1 − h_1²/‖h‖²`` (``nsq = ‖h‖²``), as ``Σ_{i>1} h_i²/‖h‖²`` below :data:`PRECISE_BELOW`."""
    err = 1.0 - h[0] * h[0] / nsq
    if err >= PRECISE_BELOW:
        return err
    tangent = 0.0
    for i in range(1, h.shape[0]):
        tangent += h[i] * h[i]
    return tangent / nsq


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _record(rec, h, r, err, nsq, b):
    """Record replicate b's ``h`` (error ``err``, ``||h||² = nsq``) as recording ``r`` (its moments where
    ``coord_sum`` has columns)."""
    rec.error[b, r] = err
    rec.norm_sq[b, r] = nsq
    rec.alive_count[r] += 1
    for i in range(rec.coord_sum.shape[1]):
        c = h[i]
        rec.coord_sum[r, i] += c
        rec.coord_sq[r, i] += c * c
    if rec.coords.shape[0] > 0:
        rec.coords[b, r] = h


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _record_lanes(rec, h, nsq, live, g0, r):
    """Record the live lanes of ``h[i, lane]`` (``||h||² = nsq[lane]``) as recording ``r``."""
    dim, lanes = h.shape
    keep_all = rec.coords.shape[0] > 0
    for lane in range(lanes):
        if live[lane] > 0.0:
            b = g0 + lane
            rec.error[b, r] = sin2(h[:, lane], nsq[lane])
            rec.norm_sq[b, r] = nsq[lane]
            rec.alive_count[r] += 1
            if keep_all:
                for i in range(dim):
                    rec.coords[b, r, i] = h[i, lane]
    for i in range(rec.coord_sum.shape[1]):  # no columns: no moments kept
        total = 0.0
        squares = 0.0
        for lane in range(lanes):
            c = live[lane] * h[i, lane]
            total += c
            squares += c * c
        rec.coord_sum[r, i] += total
        rec.coord_sq[r, i] += squares


# Long by design: the per-step bookkeeping stays inline (module docstring), a helper doubled the cost.
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def advance_lanes(ring, samples, delays, step, rec, tally, scratch):
    """Constant or i.i.d. delays, with a ring buffer ``ring[g, k mod L, :, lane]`` of the last L iterates.

    Replicate ``b = g · LANES + lane`` of the block lives in lane ``lane`` of group ``g``.
    ``L = max(3, max_delay + 2)`` holds ``h_{k−max_delay} .. h_k`` and the slot written with
    ``h_{k+1}``; slots 0 and L − 1 start at ``h_0`` (see :func:`_stale_slot`). With i.i.d. delays
    the stale iterates are gathered into ``scratch.stale[0]``. A lane that diverges is reset to
    ``e_1`` with zero samples, a fixed point, so it costs nothing more and never trips the
    divergence test again.
    """
    buf = samples.buf
    uniforms, cdf, tau_const = delays
    k0, eta, mu, max_norm_sq = step
    record_at = rec.record_at
    alive, diverged_at, window_start, window_sum, delay_counts, delay_sum = tally[:6]
    window_split, window_first = tally.window_split, tally.window_first
    stale, s, nsq, window, live = scratch
    n_groups, slots, dim, lanes = ring.shape
    n = alive.shape[0]
    n_steps = samples.y.shape[1]
    piece = buf.shape[0]
    iid = uniforms.shape[1] > 0
    n_rec = record_at.shape[0]
    r_first = np.searchsorted(record_at, k0 + 1)
    for g in range(n_groups):
        g0 = g * lanes
        width = min(lanes, n - g0)
        if not alive[g0 : g0 + width].any():
            continue
        ring_g = ring[g]
        for lane in range(lanes):
            window[lane] = 0.0
            live[lane] = 1.0 if lane < width and alive[g0 + lane] else 0.0
        r = r_first
        # slots of h_k, h_{k−1}, h_{k+1}, advanced without integer division
        cur = k0 % slots
        prv = (k0 + slots - 1) % slots
        nxt = (k0 + 1) % slots
        for j0 in range(0, n_steps, piece):
            m = min(piece, n_steps - j0)
            fill_lanes(samples, alive, g0, j0, m)
            for j in range(m):
                k = k0 + j0 + j
                stl = _stale_slot(k, cur, tau_const, slots)
                if iid:
                    for lane in range(width):
                        b = g0 + lane
                        tau = inverse_cdf(cdf, uniforms[b, j0 + j])
                        slot = _stale_slot(k, cur, tau, slots)
                        for i in range(dim):
                            stale[0, i, lane] = ring_g[slot, i, lane]
                        if alive[b]:
                            delay_counts[tau] += 1
                            delay_sum[b] += tau
                    for lane in range(width, lanes):
                        for i in range(dim):
                            stale[0, i, lane] = ring_g[cur, i, lane]
                    old, so = stale, 0
                else:
                    old, so = ring_g, stl
                _lane_sums(buf, j, old, so, s)
                for i in range(dim):
                    for lane in range(lanes):
                        hc = ring_g[cur, i, lane]
                        ring_g[nxt, i, lane] = hc + mu * (hc - ring_g[prv, i, lane]) + eta * s[lane] * (
                            buf[j, i, lane] - s[lane] * old[so, i, lane]
                        )
                _lane_sums(ring_g, nxt, ring_g, nxt, nsq)
                bad = False
                for lane in range(lanes):
                    bad |= not nsq[lane] <= max_norm_sq
                if bad:
                    for lane in range(width):
                        if not nsq[lane] <= max_norm_sq:
                            alive[g0 + lane] = False
                            live[lane] = 0.0
                            diverged_at[g0 + lane] = k + 1
                            for slot in range(slots):
                                for i in range(dim):
                                    ring_g[slot, i, lane] = 1.0 if i == 0 else 0.0
                            for jj in range(j + 1, m):
                                for i in range(dim):
                                    buf[jj, i, lane] = 0.0
                            nsq[lane] = 1.0
                if k + 1 >= window_start:
                    if k + 1 == window_split:
                        for lane in range(width):
                            window_first[g0 + lane] = window_sum[g0 + lane] + window[lane]
                    for lane in range(lanes):
                        window[lane] += sin2(ring_g[nxt, :, lane], nsq[lane])
                if r < n_rec and record_at[r] == k + 1:
                    _record_lanes(rec, ring_g[nxt], nsq, live, g0, r)
                    r += 1
                prv = cur
                cur = nxt
                nxt = nxt + 1 if nxt + 1 < slots else 0
        for lane in range(width):
            b = g0 + lane
            window_sum[b] += window[lane]
            if not iid:
                # steps this replicate took in the chunk: all, or up to its divergence
                taken = n_steps if alive[b] else max(0, diverged_at[b] - k0)
                delay_counts[tau_const] += taken
                delay_sum[b] += tau_const * taken


# Long by design: the per-step bookkeeping stays inline (module docstring), a helper doubled the cost.
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def advance_replicates(ring, samples, delays, step, rec, tally):
    """Constant or i.i.d. delays, replicate by replicate, with a ring buffer ``ring[b, k mod L]``.

    For large d (see ``plan.LANE_MAX_DIM``): one replicate's history then stays in cache for a
    whole chunk, and the loops over coordinates are long enough to vectorise. Gaussian samples are
    drawn from ``streams[b]`` a piece of ``buf.shape[1]`` steps at a time into ``buf[0]``; where a
    piece is one step (d above half of ``SAMPLE_PIECE``), the draw sweep also sums ``s = yᵀ h_{k−τ}``.

    ``L = max(3, max_delay + 2)`` holds ``h_{k−max_delay} .. h_k`` and the slot written with
    ``h_{k+1}``, which is never one read in the same step (so the update loop vectorises); slots
    0 and L − 1 start at ``h_0`` (see :func:`_stale_slot`). The delay counts of a constant delay
    are added once per replicate and chunk.
    """
    y, streams, _, own = samples
    uniforms, cdf, tau_const = delays
    k0, eta, mu, max_norm_sq = step
    record_at = rec.record_at
    alive, diverged_at, window_start, window_sum, delay_counts, delay_sum = tally[:6]
    window_split, window_first = tally.window_split, tally.window_first
    n_block, slots, dim = ring.shape
    n_steps = y.shape[1]
    in_kernel = streams.shape[0] > 0
    src = own if in_kernel else y
    one_step_pieces = in_kernel and own.shape[1] == 1
    iid = uniforms.shape[1] > 0
    n_rec = record_at.shape[0]
    r_first = np.searchsorted(record_at, k0 + 1)
    for b in range(n_block):
        if not alive[b]:
            continue
        # samples of step j: src[sb, j − start], drawn here up to step `drawn`
        sb, start, drawn = (0, 0, 0) if in_kernel else (b, 0, n_steps)
        r = r_first
        taken = 0
        window = 0.0
        # slots of h_k, h_{k−1}, h_{k+1}, advanced without integer division
        cur = k0 % slots
        prv = (k0 + slots - 1) % slots
        nxt = (k0 + 1) % slots
        for j in range(n_steps):
            k = k0 + j
            tau = tau_const
            if iid:
                tau = inverse_cdf(cdf, uniforms[b, j])
            stl = _stale_slot(k, cur, tau, slots)
            if one_step_pieces:  # this step's sample and its product with the stale iterate, in one sweep
                row = 0
                s = fill_scaled_normals_dot(streams[b], samples.scale, own[0, 0], ring[b, stl])
            else:
                if j == drawn:
                    start, drawn = j, _draw_piece(samples, b, j, n_steps)
                row = j - start
                s = 0.0
                for i in range(dim):
                    s += src[sb, row, i] * ring[b, stl, i]
            es = eta * s
            nsq = 0.0
            for i in range(dim):
                hc = ring[b, cur, i]
                new = hc + mu * (hc - ring[b, prv, i]) + es * (src[sb, row, i] - s * ring[b, stl, i])
                ring[b, nxt, i] = new
                nsq += new * new
            taken += 1
            if iid:
                delay_counts[tau] += 1
                delay_sum[b] += tau
            if not nsq <= max_norm_sq:
                alive[b] = False
                diverged_at[b] = k + 1
                break
            recording = r < n_rec and record_at[r] == k + 1
            if k + 1 >= window_start or recording:
                err = sin2(ring[b, nxt], nsq)
                if k + 1 >= window_start:
                    if k + 1 == window_split:
                        window_first[b] = window_sum[b] + window
                    window += err
                if recording:
                    _record(rec, ring[b, nxt], r, err, nsq, b)
                    r += 1
            prv = cur
            cur = nxt
            nxt = nxt + 1 if nxt + 1 < slots else 0
        window_sum[b] += window
        if not iid:
            delay_counts[tau_const] += taken
            delay_sum[b] += tau_const * taken


# Long by design: the per-step bookkeeping stays inline (module docstring), a helper doubled the cost.
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def advance_server(server, samples, compute_times, step, rec, tally):
    """The event-driven parameter server: one event queue per replicate.

    Each update pops the first-finishing worker (at a tie the lower worker, so that workers of equal
    speed take turns), applies its gradient at its copy (staleness ``k − read_version``), then that
    worker reads ``h_{k+1}`` and starts a job of length
    ``compute_times[b, j]``. Staleness beyond the last histogram bin is counted in that bin;
    ``tally.delay_max`` keeps the exact maximum. Gaussian samples are drawn from ``streams[b]`` a
    piece of ``buf.shape[1]`` steps at a time into ``buf[0]``.
    """
    pair, copies, heap_times, heap_workers, read_version = server
    y, streams, _, own = samples
    k0, eta, mu, max_norm_sq = step
    record_at = rec.record_at
    alive, diverged_at, window_start, window_sum, delay_counts, delay_sum, delay_max = tally[:7]
    window_split, window_first = tally.window_split, tally.window_first
    n_block, _, dim = pair.shape
    n_steps = y.shape[1]
    in_kernel = streams.shape[0] > 0
    src = own if in_kernel else y
    n_rec = record_at.shape[0]
    top = delay_counts.shape[0] - 1
    r_first = np.searchsorted(record_at, k0 + 1)
    for b in range(n_block):
        if not alive[b]:
            continue
        # samples of step j: src[sb, j − start], drawn here up to step `drawn`
        sb, start, drawn = (0, 0, 0) if in_kernel else (b, 0, n_steps)
        r = r_first
        for j in range(n_steps):
            k = k0 + j
            w = heap_workers[b, 0]
            if j == drawn:
                start, drawn = j, _draw_piece(samples, b, j, n_steps)
            row = j - start
            tau = k - read_version[b, w]
            cur = k & 1
            nxt = cur ^ 1
            s = 0.0
            for i in range(dim):
                s += src[sb, row, i] * copies[b, w, i]
            es = eta * s
            nsq = 0.0
            for i in range(dim):
                hc = pair[b, cur, i]
                new = hc + mu * (hc - pair[b, nxt, i]) + es * (src[sb, row, i] - s * copies[b, w, i])
                pair[b, nxt, i] = new
                copies[b, w, i] = new
                nsq += new * new
            read_version[b, w] = k + 1
            heap_times[b, 0] += compute_times[b, j]
            heap_sift_down(heap_times[b], heap_workers[b], 0)
            delay_counts[min(tau, top)] += 1
            delay_sum[b] += tau
            if tau > delay_max[0]:
                delay_max[0] = tau
            if not nsq <= max_norm_sq:
                alive[b] = False
                diverged_at[b] = k + 1
                break
            err = sin2(pair[b, nxt], nsq)
            if k + 1 >= window_start:
                if k + 1 == window_split:
                    window_first[b] = window_sum[b]
                window_sum[b] += err
            if r < n_rec and record_at[r] == k + 1:
                _record(rec, pair[b, nxt], r, err, nsq, b)
                r += 1
