"""The simulator in high dimensions (d = 100 and 1000) against the recursion written with NumPy arrays.

The kernels' loops over coordinates run long and vectorised there (with remainders when d is not a
multiple of the vector width), so these check the per-replicate kernel at the sizes it is built for:
constant and i.i.d. delays, with and without momentum, a random start and divergence.
"""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem, parse_delay
from amsgd.simulate import simulate
from amsgd.simulate.draws import block_draws
from amsgd.simulate.plan import make_plan


def reference(plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every replicate of block 0 at once, keeping the whole history, from the simulator's draws.

    Returns the iterates ``h_0 .. h_steps`` (steps + 1, n, d), the delays (n, steps) and each
    replicate's divergence iteration (−1 if none): the first k with ``||h_k||² > divergence_norm²``
    or not finite. Iterates after a divergence are computed on regardless (and not compared).
    """
    p = plan.problem
    draws = block_draws(plan, 0)
    chunks = list(draws.chunks)
    y = np.concatenate([c[1] for c in chunks], axis=1)
    aux = np.concatenate([c[2] for c in chunks], axis=1)
    n = y.shape[0]
    if plan.delay.cdf.size:
        taus = np.minimum(np.searchsorted(np.cumsum(p.delay.pmf()), aux, side="right"), p.delay.max_delay)
    else:
        taus = np.full((n, plan.steps), plan.delay.tau_const)
    hist = np.empty((plan.steps + 1, n, p.dim))
    hist[0] = draws.start
    rows = np.arange(n)
    with np.errstate(all="ignore"):
        for k in range(plan.steps):
            stale = hist[np.maximum(k - taus[:, k], 0), rows]
            prev = hist[max(k - 1, 0)]
            s = np.einsum("nd,nd->n", y[:, k], stale)[:, None]
            hist[k + 1] = hist[k] + p.mu * (hist[k] - prev) + p.eta * s * (y[:, k] - s * stale)
        norm_sq = np.einsum("knd,knd->kn", hist, hist)
    bad = ~(norm_sq <= plan.max_norm_sq)
    diverged_at = np.where(bad.any(axis=0), bad.argmax(axis=0), -1)
    return hist, taus, diverged_at


def check_against_reference(problem: Problem, steps: int, replicates: int, *, start: str, seed: int):
    res = simulate(problem, steps, replicates, rng=seed, start=start, record_every=5, coordinates="all")
    plan = make_plan(problem, steps, replicates, rng=seed, start=start)
    hist, taus, diverged_at = reference(plan)
    np.testing.assert_array_equal(res.diverged_at, diverged_at)
    for b in range(replicates):
        last = diverged_at[b] if diverged_at[b] >= 0 else steps + 1  # iterations recorded: before `last`
        kept = res.iterations < last
        expected = hist[res.iterations[kept], b]
        np.testing.assert_allclose(res.coordinates[b, kept], expected, rtol=1e-10, atol=1e-12)
        nsq = (expected**2).sum(axis=1)
        np.testing.assert_allclose(res.norm_sq[b, kept], nsq, rtol=1e-10)
        np.testing.assert_allclose(res.error[b, kept], 1 - expected[:, 0] ** 2 / nsq, rtol=1e-9, atol=1e-13)
        assert np.isnan(res.error[b, ~kept]).all() and np.isnan(res.coordinates[b, ~kept]).all()
    taken = np.arange(steps)[None, :] < np.where(diverged_at >= 0, diverged_at, steps)[:, None]
    counts = np.bincount(taus[taken], minlength=res.delay_counts.size)
    np.testing.assert_array_equal(res.delay_counts, counts[: res.delay_counts.size])
    return res


@pytest.mark.parametrize(
    "dim, delay, mu, start",
    [
        (100, "constant:0", 0.0, "e2"),
        (100, "constant:10", 0.9, "random"),
        (100, "uniform:0-5", 0.9, "e2"),
        (1000, "constant:3", 0.9, "random"),
        (1000, "constant:10", 0.0, "e2"),
        (1000, "uniform:0-4", 0.5, "random"),
        (1003, "geometric:2", 0.9, "e2"),
        (2100, "constant:2", 0.5, "random"),  # pieces of one step: the draw sweep sums yᵀ h_{k−τ}
        (2100, "uniform:0-3", 0.9, "e2"),
    ],
)
def test_high_dimensional_runs_match_the_reference(dim, delay, mu, start):
    problem = Problem.from_spectrum(np.linspace(2.0, 1.0, dim), eta=0.5 / dim, mu=mu, delay=parse_delay(delay))
    res = check_against_reference(problem, 40, 3, start=start, seed=dim + len(delay))
    assert not res.diverged.any()
    # the iterate moved: the gradient term is far above the tolerance of the comparison
    assert np.abs(res.coordinates[:, -1] - res.coordinates[:, 0]).max() > 1e-2


def test_divergence_is_detected_at_the_reference_iteration():
    """With a step far too large some replicates diverge, each at the iteration the reference
    finds, and record nothing after it; the others go on."""
    dim = 100
    problem = Problem.from_spectrum(np.linspace(2.0, 1.0, dim), eta=0.6 / dim, mu=0.9, delay=parse_delay("constant:2"))
    res = check_against_reference(problem, 60, 8, start="random", seed=5)
    assert 0 < res.diverged.sum() < 8
    assert len(set(res.diverged_at[res.diverged].tolist())) > 1
