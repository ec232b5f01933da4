"""Compiled inner loops of the simulator: one block of replicates over one chunk of steps.

Both kernels advance, in eigen-coordinates ``h = Qᵀ v`` and with ``y = Qᵀ x``,

    h_{k+1} = h_k + μ (h_k − h_{k−1}) + η s (y_k − s h_{k−τ_k}),    s = y_kᵀ h_{k−τ_k},

which is ``η g(v_{k−τ_k}, X_k)`` with ``g(v, X) = (I − v vᵀ) X Xᵀ v = (Xᵀv) (X − (Xᵀv) v)``.
After each update they check ``||h_{k+1}||² <= divergence_norm²`` (false also for NaN and inf); a
replicate that fails is frozen from then on, its divergence iteration noted, and it records nothing
more. They accumulate the optimisation error ``1 − h_1²/||h||²`` over the averaging window and, at
the recording iterations, store the error, ``||h||²`` and the coordinates.

The loop runs replicate by replicate and, inside, step by step, so one replicate's recent history
stays in cache; the samples are taken ``(replicate, step, coordinate)`` to match, either from a
chunk ``y[B, K, d]`` drawn beforehand or, for Gaussian data, drawn by the kernel itself from the
block's stream (:func:`_refill`). The sums over
coordinates may be reassociated by the compiler (``fastmath`` reassoc/contract, which vectorises
them; NaN and inf keep their meaning), so results agree with a sequential evaluation to rounding
and are the same whatever the chunking of replicates.

The bookkeeping after each update (divergence, window sum, recording) is written out in both
kernels on purpose: moving it into a shared inlined helper was measured to double the cost per
replicate-step at d = 4 (benchmarks/bench_simulate.py), where the loop costs about as much as the
random draws themselves.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from amsgd.simulate.queue import heap_sift_down
from amsgd.ziggurat import fill_scaled_normals


@njit(cache=True, nogil=True, inline="always")
def _refill(stream, scale, own, j, n_steps):
    """Draw the samples of steps ``j ..`` of a chunk of ``n_steps`` into ``own[0]``; ``(j, last + 1)``.

    The kernels draw Gaussian data themselves, replicate by replicate and, within a replicate, in
    pieces of ``own.shape[1]`` steps as ``scale · z`` from ``stream`` (an SFC64 state). That is the
    order of the rows of :func:`engine.block_draws`, so the numbers are the same, and the samples
    stay in cache instead of passing through a chunk-sized buffer.
    """
    m = min(own.shape[1], n_steps - j)
    fill_scaled_normals(stream, scale, own[0, :m])
    return j, j + m


@njit(cache=True, nogil=True)
def discard_samples(stream, scale, own, steps):
    """Draw and drop ``steps`` steps' samples: a replicate that has diverged keeps its place."""
    while stream.shape[0] > 0 and steps > 0:
        steps -= _refill(stream, scale, own, 0, steps)[1]


@njit(cache=True, nogil=True)
def draw_samples(stream, scale, own, replicates, steps):
    """The samples the kernels draw for ``replicates`` replicates over ``steps`` steps, and nothing else."""
    for _ in range(replicates):
        discard_samples(stream, scale, own, steps)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _record(h, r, err, nsq, error, norm_sq, coords, coord_sum, coord_sq, alive_count, b):
    error[b, r] = err
    norm_sq[b, r] = nsq
    alive_count[r] += 1
    keep_all = coords.shape[0] > 0
    for i in range(h.shape[0]):
        c = h[i]
        coord_sum[r, i] += c
        coord_sq[r, i] += c * c
        if keep_all:
            coords[b, r, i] = c


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def advance_history(
    ring, y, stream, scale, own, uniforms, cdf, tau_const, k0, eta, mu, max_norm_sq,
    record_at, error, norm_sq, coords, coord_sum, coord_sq, alive_count,
    alive, diverged_at, window_start, window_sum, delay_counts, delay_sum,
):  # fmt: skip
    """Constant or i.i.d. delays, with a ring buffer ``ring[b, k mod L]`` of the last L iterates.

    ``L = max(3, max_delay + 2)`` holds ``h_{k−max_delay} .. h_k`` and the slot written with
    ``h_{k+1}``, which is never one read in the same step (so the update loop vectorises). Every
    slot starts at ``h_0``, so ``h_{k−τ} = h_0`` when ``τ > k``. The delay counts of a constant
    delay are added once per replicate and chunk.
    With ``uniforms`` of shape ``(B, K)`` the delay is ``min{i: cdf[i] > u}`` (inversion);
    with an empty ``uniforms`` it is ``tau_const``.
    """
    n_block, slots, dim = ring.shape
    n_steps = y.shape[1]
    in_kernel = stream.shape[0] > 0
    src = own if in_kernel else y
    iid = uniforms.shape[1] > 0
    n_rec = record_at.shape[0]
    r_first = np.searchsorted(record_at, k0 + 1)
    for b in range(n_block):
        if not alive[b]:
            discard_samples(stream, scale, own, n_steps)
            continue
        # samples of step j: src[sb, j − start], drawn here up to step `drawn` (see _refill)
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
                u = uniforms[b, j]
                lo = 0
                hi = cdf.shape[0] - 1
                while lo < hi:
                    mid = (lo + hi) // 2
                    if cdf[mid] > u:
                        hi = mid
                    else:
                        lo = mid + 1
                tau = lo
            stl = cur - tau
            if stl < 0:
                stl += slots
            if j == drawn:
                start, drawn = _refill(stream, scale, own, j, n_steps)
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
                discard_samples(stream, scale, own, n_steps - drawn)
                break
            recording = r < n_rec and record_at[r] == k + 1
            if k + 1 >= window_start or recording:
                h1 = ring[b, nxt, 0]
                err = 1.0 - h1 * h1 / nsq
                if k + 1 >= window_start:
                    window += err
                if recording:
                    _record(ring[b, nxt], r, err, nsq, error, norm_sq, coords, coord_sum, coord_sq, alive_count, b)
                    r += 1
            prv = cur
            cur = nxt
            nxt = nxt + 1 if nxt + 1 < slots else 0
        window_sum[b] += window
        if not iid:
            delay_counts[tau_const] += taken
            delay_sum[b] += tau_const * taken


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def advance_server(
    pair, copies, heap_times, heap_workers, read_version, y, stream, scale, own, compute_times,
    k0, eta, mu, max_norm_sq,
    record_at, error, norm_sq, coords, coord_sum, coord_sq, alive_count,
    alive, diverged_at, window_start, window_sum, delay_counts, delay_sum, delay_max,
):  # fmt: skip
    """The event-driven parameter server: one event queue per replicate.

    ``pair[b, k mod 2]`` holds ``h_k`` and ``h_{k−1}``; ``copies[b, w]`` is the iterate worker w
    read, at version ``read_version[b, w]``. Each update pops the first-finishing worker, applies
    its gradient at its copy (staleness ``k − read_version``), then that worker reads ``h_{k+1}``
    and starts a job of length ``compute_times[b, j]``. Staleness beyond the last histogram bin is
    counted in that bin; ``delay_max`` keeps the exact maximum.
    """
    n_block, _, dim = pair.shape
    n_steps = y.shape[1]
    in_kernel = stream.shape[0] > 0
    src = own if in_kernel else y
    n_rec = record_at.shape[0]
    top = delay_counts.shape[0] - 1
    r_first = np.searchsorted(record_at, k0 + 1)
    for b in range(n_block):
        if not alive[b]:
            discard_samples(stream, scale, own, n_steps)
            continue
        # samples of step j: src[sb, j − start], drawn here up to step `drawn` (see _refill)
        sb, start, drawn = (0, 0, 0) if in_kernel else (b, 0, n_steps)
        r = r_first
        for j in range(n_steps):
            k = k0 + j
            w = heap_workers[b, 0]
            if j == drawn:
                start, drawn = _refill(stream, scale, own, j, n_steps)
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
                discard_samples(stream, scale, own, n_steps - drawn)
                break
            h1 = pair[b, nxt, 0]
            err = 1.0 - h1 * h1 / nsq
            if k + 1 >= window_start:
                window_sum[b] += err
            if r < n_rec and record_at[r] == k + 1:
                _record(pair[b, nxt], r, err, nsq, error, norm_sq, coords, coord_sum, coord_sq, alive_count, b)
                r += 1
