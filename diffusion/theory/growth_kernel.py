"""The compiled loop behind :mod:`.random_growth`: the homogeneous random recursion of a model near
its minimum,

    h_{k+1} = (1 + μ) h_k − μ h_{k−1} − η A_k h_{k−τ_k},    A_k = R + (1/B) Σ_{b<B} H_{n_b},

``H_n = Σ_r s_{nr} u_{nr} u_{nr}ᵀ`` example n's Hessian (factored), ``R`` the part every minibatch
shares (the ridge), ``n_b`` uniform over the examples and ``τ_k`` drawn from the delay law's ``cdf`` as
the simulator draws it, followed in a ring of the last ``L + 2`` states (L the longest delay) that is
rescaled to unit norm of the newest state after every step; the logarithms of the scale factors are
summed per block."""

from __future__ import annotations

import numpy as np
from numba import njit

from amsgd.simulate.kernels import inverse_cdf


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
    examples, m, rank = factors.shape
    longest = cdf.size - 1
    # h_{k−L} .. h_k and the slot h_{k+1} is written into, which is h_{k−L−1}'s: with L = 0 that is
    # h_{k−1}'s own slot, read element by element before it is overwritten
    slots = longest + 2
    out = np.zeros((paths, blocks))
    ring = np.empty((slots, m))
    force = np.empty(m)
    projected = np.empty(rank)
    for path in range(paths):
        start = np.random.standard_normal(m)
        start /= np.sqrt(np.sum(start * start))
        for t in range(slots):
            ring[t, :] = start
        for k in range(burn + blocks * block_steps):
            tau = inverse_cdf(cdf, np.random.random()) if longest > 0 else 0
            cur, prev, stale = ring[k % slots], ring[(k - 1) % slots], ring[(k - tau) % slots]
            for i in range(m):
                acc = 0.0
                for j in range(m):
                    acc += ridge[i, j] * stale[j]
                force[i] = acc
            for _ in range(batch):
                n = np.random.randint(examples)
                for r in range(rank):
                    acc = 0.0
                    for j in range(m):
                        acc += factors[n, j, r] * stale[j]
                    projected[r] = signs[n, r] * acc / batch
                for i in range(m):
                    acc = 0.0
                    for r in range(rank):
                        acc += factors[n, i, r] * projected[r]
                    force[i] += acc
            new = ring[(k + 1) % slots]
            square = 0.0
            for i in range(m):
                new[i] = (1.0 + mu) * cur[i] - mu * prev[i] - eta * force[i]
                square += new[i] * new[i]
            norm = np.sqrt(square)
            if norm == 0.0:
                out[path, :] = -np.inf
                break
            ring /= norm
            if k >= burn:
                out[path, (k - burn) // block_steps] += np.log(norm)
    return out
