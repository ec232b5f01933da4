"""The compiled loops behind :mod:`.random_growth`: the homogeneous random recursion of a model near
its minimum,

    h_{k+1} = (1 + μ) h_k − μ h_{k−1} − η A_k h_{k−τ_k},    A_k = R + (1/B) Σ_{b<B} H_{n_b},

``H_n = Σ_r s_{nr} u_{nr} u_{nr}ᵀ`` example n's Hessian (factored), ``R`` the part every minibatch
shares (the ridge), ``n_b`` uniform over the examples and ``τ_k`` drawn from the delay law's ``cdf`` as
the simulator draws it, followed in a ring of the last ``L + 2`` states (L the longest delay) that is
rescaled to unit norm of the newest state after every step. :func:`log_growth_blocks` sums the
logarithms of the scale factors per block; :func:`tilted_growth_rate` follows a population of paths
weighted by their scale factors to a power s (module docstring of :mod:`.random_growth`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from amsgd.simulate.kernels import inverse_cdf


@njit(cache=True, nogil=True, inline="always")
def _advance(ring, k, cdf, ridge, factors, signs, eta, mu, batch, force, projected):
    """Write ``h_{k+1}`` into ``ring`` (``h_j`` in slot ``j mod L + 2``) with a delay and a minibatch drawn
    here, and return ``‖h_{k+1}‖``; ``force`` (m) and ``projected`` (r) are scratch. The slot written
    is ``h_{k−L−1}``'s: with L = 0 that is ``h_{k−1}``'s own, read element by element before it is
    overwritten. The slots are indexed, not sliced (a slice's view cost about a quarter of a step)."""
    examples, m, rank = factors.shape
    longest = cdf.size - 1
    slots = longest + 2
    tau = inverse_cdf(cdf, np.random.random()) if longest > 0 else 0
    cur, prev, stale, new = k % slots, (k - 1) % slots, (k - tau) % slots, (k + 1) % slots
    for i in range(m):
        acc = 0.0
        for j in range(m):
            acc += ridge[i, j] * ring[stale, j]
        force[i] = acc
    for _ in range(batch):
        n = np.random.randint(examples)
        for r in range(rank):
            acc = 0.0
            for j in range(m):
                acc += factors[n, j, r] * ring[stale, j]
            projected[r] = signs[n, r] * acc / batch
        for i in range(m):
            acc = 0.0
            for r in range(rank):
                acc += factors[n, i, r] * projected[r]
            force[i] += acc
    square = 0.0
    for i in range(m):
        value = (1.0 + mu) * ring[cur, i] - mu * ring[prev, i] - eta * force[i]
        ring[new, i] = value
        square += value * value
    return np.sqrt(square)


@njit(cache=True, nogil=True, inline="always")
def _random_start(ring):
    """Every slot of ``ring`` at one random unit vector."""
    start = np.random.standard_normal(ring.shape[1])
    start /= np.sqrt(np.sum(start * start))
    for t in range(ring.shape[0]):
        ring[t, :] = start


@njit(cache=True, nogil=True)
def log_growth_blocks(ridge: np.ndarray, factors: np.ndarray, signs: np.ndarray, eta: float, mu: float,
                      cdf: np.ndarray, batch: int, paths: int, burn: int, blocks: int, block_steps: int,
                      seed: int) -> np.ndarray:  # fmt: skip
    """``log ‖h‖`` gained over each of ``blocks`` blocks of ``block_steps`` steps, ``(paths, blocks)``,
    after ``burn`` steps from a random unit start held over the whole history (module docstring).
    ``factors`` is ``(N, m, r)`` (columns ``u_{nr}``), ``signs`` ``(N, r)`` the ``s_{nr}`` (0 in the spare
    columns of an example of lower rank). A path whose state becomes exactly zero gets ``−inf`` in
    every block."""
    np.random.seed(seed)
    m, rank = factors.shape[1], factors.shape[2]
    out = np.zeros((paths, blocks))
    ring = np.empty((cdf.size + 1, m))
    force = np.empty(m)
    projected = np.empty(rank)
    for path in range(paths):
        _random_start(ring)
        for k in range(burn + blocks * block_steps):
            norm = _advance(ring, k, cdf, ridge, factors, signs, eta, mu, batch, force, projected)
            if norm == 0.0:
                out[path, :] = -np.inf
                break
            ring /= norm
            if k >= burn:
                out[path, (k - burn) // block_steps] += np.log(norm)
    return out


@njit(cache=True, nogil=True)
def tilted_growth_rate(ridge: np.ndarray, factors: np.ndarray, signs: np.ndarray, eta: float, mu: float,
                       cdf: np.ndarray, batch: int, power: float, paths: int, burn: int, steps: int,
                       seed: int) -> float:  # fmt: skip
    """``Λ(s) = lim (1/n) log E‖h_n‖^s`` at ``s = power`` by population dynamics: ``paths`` copies of the
    recursion (arguments as for :func:`log_growth_blocks`), each carrying the weight ``Π ‖h_{k+1}‖^s /
    ‖h_k‖^s`` since the population was last resampled; when the weights' effective number
    ``(Σ w)² / Σ w²`` falls below half the paths, the population is drawn afresh in proportion to them
    (systematic resampling) and ``log`` of their mean is added to the total. Returns the total over the
    ``steps`` steps after ``burn`` divided by ``steps``; ``−inf`` when every path's state vanishes."""
    np.random.seed(seed)
    m, rank = factors.shape[1], factors.shape[2]
    rings = np.empty((paths, cdf.size + 1, m))
    spare = np.empty_like(rings)
    force = np.empty(m)
    projected = np.empty(rank)
    log_weight = np.zeros(paths)
    weight = np.empty(paths)
    for p in range(paths):
        _random_start(rings[p])
    total = 0.0
    for k in range(burn + steps):
        for p in range(paths):
            norm = _advance(rings[p], k, cdf, ridge, factors, signs, eta, mu, batch, force, projected)
            if norm == 0.0:
                log_weight[p] = -np.inf
                rings[p, :, :] = 1.0  # any state: it carries no weight
            else:
                rings[p] /= norm
                log_weight[p] += power * np.log(norm)
        last = k == burn - 1 or k == burn + steps - 1  # the burn-in's weights are dropped, the last counted
        top = np.max(log_weight)
        if top == -np.inf:
            return -np.inf
        weight[:] = np.exp(log_weight - top)
        if not last and np.sum(weight) ** 2 >= 0.5 * paths * np.sum(weight * weight):
            continue
        mean = np.mean(weight)
        if k >= burn:
            total += top + np.log(mean)
        offset, chosen, cumulative = np.random.random() / paths, 0, weight[0] / (mean * paths)
        for p in range(paths):
            while cumulative < offset + p / paths and chosen < paths - 1:
                chosen += 1
                cumulative += weight[chosen] / (mean * paths)
            spare[p] = rings[chosen]
        rings, spare = spare, rings
        log_weight[:] = 0.0
    return total / steps
