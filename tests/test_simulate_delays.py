"""The delay models produce the delays they claim, inside the simulator."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from scipy import stats

from amsgd import Problem, ProblemError, parse_delay
from amsgd.core.delays import (
    EVENT_QUEUE_UPDATES,
    MAX_DELAY,
    TAIL_MASS,
    EventDrivenDelay,
    GeometricDelay,
    PoissonDelay,
    server_staleness,
)
from amsgd.core.estimates import t_interval
from amsgd.simulate import simulate


def chi_square_pvalue(counts: np.ndarray, pmf: np.ndarray) -> float:
    """Pearson's test of counts against pmf, pooling the sparse tail into one cell (expected >= 5)."""
    n = counts.sum()
    counts = np.pad(counts, (0, max(0, pmf.size - counts.size)))
    assert counts[pmf.size :].sum() == 0, "a delay outside the model's support"
    expected = n * pmf
    order = np.flatnonzero(expected >= 5)
    cut = order[-1]
    obs = np.append(counts[:cut], counts[cut:].sum())
    exp = np.append(expected[:cut], expected[cut:].sum())
    keep = exp > 0
    return float(stats.chisquare(obs[keep], exp[keep]).pvalue)


def small_problem(delay: str) -> Problem:
    return Problem.from_spectrum((2.0, 1.0), eta=1e-3, mu=0.5, delay=parse_delay(delay))


@pytest.mark.parametrize("spec", ["uniform:2-9", "geometric:3", "poisson:4", "geometric:0.5"])
def test_iid_delays_follow_their_pmf(spec):
    res = simulate(small_problem(spec), 2000, 40, rng=13)
    pmf = res.problem.delay.pmf()
    assert res.delay_counts.sum() == 2000 * 40
    assert chi_square_pvalue(res.delay_counts, pmf) > 1e-3
    # The replicates' delays are independent: a 99% t-interval of their means (half-width 0.4–1.9% of the
    # mean here) holds the model's mean, and the reported mean is theirs.
    ci = t_interval(res.delay_mean_per_replicate, confidence=0.99)
    assert ci.ci_low <= res.problem.delay.mean <= ci.ci_high, ci
    assert res.to_dict()["delay"]["measured_mean"] == pytest.approx(ci.mean, rel=1e-12)


def test_histogram_file_delay(tmp_path):
    path = tmp_path / "delays.txt"
    probabilities = np.array([0.1, 0.0, 0.5, 0.15, 0.25])
    np.savetxt(path, probabilities)
    res = simulate(small_problem(f"histogram:{path}"), 2000, 40, rng=5)
    assert res.delay_counts[1] == 0
    assert chi_square_pvalue(res.delay_counts, probabilities) > 1e-3
    bad = tmp_path / "bad.txt"
    np.savetxt(bad, [0.5, 0.4])
    with pytest.raises(ProblemError, match="sum to one"):
        parse_delay(f"histogram:{bad}")


@pytest.mark.parametrize(("name", "content"), [
    ("commented.txt", b"# delays 0, 1 and 2\n0.25 0.5 0.25\n"),  # a comma in a comment: still spaces
    ("bom.txt", b"\xef\xbb\xbf0.25,0.5,0.25\n"),  # a byte-order mark (Windows editors)
    ("capitals.NPY", None),
])  # fmt: skip
def test_histogram_files_as_editors_write_them(tmp_path, name, content):
    """A comma in a comment line, a UTF-8 byte-order mark and an extension in capitals were refused
    as "not a list of probabilities"."""
    path = tmp_path / name
    if content is None:
        with path.open("wb") as handle:
            np.save(handle, np.array([0.25, 0.5, 0.25]))
    else:
        path.write_bytes(content)
    assert parse_delay(f"histogram:{path}").pmf().tolist() == [0.25, 0.5, 0.25]


def test_a_poisson_law_is_refused_only_where_its_truncated_tail_reaches_beyond_the_longest_delay():
    """``mean + 8 √mean`` refused means from about 992 030 on, whose tables end before 10⁶ (992 100:
    999 115); the refusal is now at the table's own end."""
    assert PoissonDelay(992_100.0).max_delay == stats.poisson.isf(TAIL_MASS, 992_100.0) <= MAX_DELAY
    with pytest.raises(ProblemError, match=f"reaches {int(stats.poisson.isf(TAIL_MASS, 993_500.0))} iterations"):
        PoissonDelay(993_500.0)


@pytest.mark.parametrize("spec, tau", [("constant:7", 7), ("workers:5", 4)])
def test_constant_and_round_robin(spec, tau):
    res = simulate(small_problem(spec), 300, 3, rng=1)
    assert res.delay_counts[tau] == 900 and res.delay_counts.sum() == 900
    assert res.problem.delay.max_delay == tau


def test_a_delays_integers_may_be_written_as_whole_floats():
    """``constant:2e1`` was refused ("must be an integer") where ``--tau 2e1`` and the sweep's axes take it."""
    assert parse_delay("constant:2e1").spec == "constant:20" and parse_delay("workers:1e1").spec == "workers:10"
    assert parse_delay("uniform:2.0-4").spec == parse_delay("uniform:2-4").spec
    with pytest.raises(ProblemError, match=r"must be an integer \(such as 20000 or 2e4\), got '1.5'"):
        parse_delay("constant:1.5")


def test_unbounded_laws_are_truncated_at_the_tail_mass():
    for model in (GeometricDelay(5.0), PoissonDelay(3.0)):
        p = model.pmf()
        assert p.sum() == pytest.approx(1.0, abs=1e-15)
        exact = stats.geom(1 / 6.0, loc=-1) if isinstance(model, GeometricDelay) else stats.poisson(3.0)
        assert exact.sf(model.max_delay) < TAIL_MASS <= exact.sf(model.max_delay - 1)


def replay(durations: np.ndarray, updates: int) -> tuple[np.ndarray, list[int]]:
    """The event queue written out with heapq: worker w runs jobs durations[w, 0], durations[w, 1], ...;
    the earliest finish writes, its staleness is the updates since its read, then it reads again.
    Returns the staleness of each update and the version each worker read last."""
    queue = [(durations[w, 0], w, 0) for w in range(durations.shape[0])]
    heapq.heapify(queue)
    read = [0] * durations.shape[0]
    out = []
    for k in range(updates):
        t, w, j = heapq.heappop(queue)
        out.append(k - read[w])
        read[w] = k + 1
        heapq.heappush(queue, (t + durations[w, j + 1], w, j + 1))
    return np.array(out), read


@pytest.mark.parametrize("kind", ["exp", "lognormal"])
def test_vectorised_staleness_equals_the_event_queue(kind):
    rng = np.random.default_rng(5)
    durations = rng.standard_exponential((6, 400)) if kind == "exp" else rng.lognormal(0.0, 1.5, (6, 400))
    fast = server_staleness(durations)
    assert fast.size > 1500  # every update before the first worker runs out of drawn jobs
    np.testing.assert_array_equal(fast, replay(durations, fast.size)[0])


@pytest.mark.parametrize("workers", [2, 4, 8])
def test_event_queue_with_exponential_times_is_geometric(workers):
    """Each write is by a uniformly random worker, so the k-th update's staleness is geometric with
    parameter 1/M truncated at k: P(τ_k = j) = (1/M)(1 − 1/M)^j for j < k, P(τ_k = k) = (1 − 1/M)^k.

    Independent queues, one staleness each (the k-th update), make the counts i.i.d.
    """
    rng = np.random.default_rng(workers)
    queues, k = 20_000, 12
    sample = np.array([server_staleness(rng.standard_exponential((workers, k + 2)))[k] for _ in range(queues)])
    truncated = (1 / workers) * (1 - 1 / workers) ** np.arange(k + 1)
    truncated[k] = (1 - 1 / workers) ** k
    assert chi_square_pvalue(np.bincount(sample), truncated) > 1e-3
    stationary = EventDrivenDelay(workers).pmf()
    geometric = (1 / workers) * (1 - 1 / workers) ** np.arange(stationary.size)
    np.testing.assert_allclose(stationary, geometric / geometric.sum(), rtol=1e-12)


def test_server_staleness_identity():
    """Over n updates, Σ τ_k = (M − 1) n − Σ_w (n − r_w), r_w the version worker w read last."""
    rng = np.random.default_rng(0)
    workers = 5
    durations = rng.lognormal(0.0, 1.5, (workers, 200))
    tau = server_staleness(durations)
    n = tau.size
    _, read_last = replay(durations, n)
    assert tau.sum() == (workers - 1) * n - sum(n - r for r in read_last)
    assert tau[0] == 0 and np.all(tau <= np.arange(n))


def test_simulated_exponential_server_staleness_mean():
    """With exponential times E Σ_w (n − r_w) = M (M − 1) (up to (1 − 1/M)^n), so the mean
    staleness over n updates is (M − 1)(1 − M/n): M − 1 in the limit."""
    workers, n = 4, 5000
    res = simulate(small_problem(f"ps:{workers}"), n, 60, rng=17)
    ci = t_interval(res.delay_mean_per_replicate, confidence=0.99)
    assert ci.ci_low <= (workers - 1) * (1 - workers / n) <= ci.ci_high, ci
    summary = res.to_dict()["delay"]
    histogram = np.array(summary["staleness_histogram"])
    assert histogram.sum() == n * 60
    assert summary["measured_max"] == histogram.size - 1
    assert summary["model_mean"] == workers - 1


def test_simulated_lognormal_server_matches_its_stationary_law():
    """The pooled staleness histogram of 60 replicates of 5000 updates within total variation of the
    estimated stationary law, the bound from the sampling errors. Each delay j's pooled frequency misses
    the pmf by the error of 60 independent replicates plus the pmf's own (the histogram of one run of
    EVENT_QUEUE_UPDATES = 1e6 updates, worth 200 replicates): ``σ_j² = v_j (1/60 + 5000/1e6)``, v_j the
    variance of one replicate's frequency of j over 60 independent single-replicate runs. With half-normal
    misses ``E TV = ½ √(2/π) Σ σ_j`` and ``sd TV = ½ √((1 − 2/π) Σ σ_j²)`` (the bins taken as independent:
    40 sets of 60 replayed queues gave TV 0.0041 ± 0.00062 against the pmf, against these 0.0042 and
    0.00061, so the start-up transient adds nothing visible); the bound is E + 4 sd. Measured: TV 0.0043
    against a bound of 0.0066; the same runs with σ 0.9 or 1.1 give 0.055, with 5 workers 0.078."""
    workers, n, replicates = 6, 5000, 60
    problem = small_problem(f"ps:{workers}:lognormal:1")
    res = simulate(problem, n, replicates, rng=17)
    p = res.problem.delay.pmf()
    singles = [simulate(problem, n, 1, rng=1000 + r, progress=False).delay_counts for r in range(replicates)]
    size = max(p.size, res.delay_counts.size, *(c.size for c in singles))

    def padded(a: np.ndarray) -> np.ndarray:
        return np.pad(a, (0, size - a.size))

    measured = padded(res.delay_counts) / res.delay_counts.sum()
    total_variation = 0.5 * np.abs(padded(p) - measured).sum()
    one_replicate = np.var([padded(c) / n for c in singles], axis=0, ddof=1)
    sigma = np.sqrt(one_replicate * (1 / replicates + n / EVENT_QUEUE_UPDATES))
    expected = 0.5 * np.sqrt(2 / np.pi) * sigma.sum()
    spread = 0.5 * np.sqrt((1 - 2 / np.pi) * np.sum(sigma**2))
    assert total_variation < expected + 4 * spread, (total_variation, expected, spread)
    assert np.all(res.delay_mean_per_replicate < workers - 1)  # the identity above


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_workers_of_equal_speed_take_turns(workers):
    """``lognormal:1e-300`` draws every compute time as exactly 1: the writes tie, and at a tie the lower
    worker writes first, so the server is round robin (staleness M − 1 after the first M − 1 updates)
    in the simulator's heap as in the replayed queue of ``delay_sequence``. The heap used to let the
    worker at its root write again (M = 3: a third of the updates with staleness 0)."""
    from amsgd.core.delays import server_staleness

    n = 300
    res = simulate(small_problem(f"ps:{workers}:lognormal:1e-300"), n, 4, rng=9, progress=False)
    expected = np.r_[np.arange(workers - 1), np.full(n - workers + 1, workers - 1)]
    np.testing.assert_array_equal(np.trim_zeros(res.delay_counts, "b"), 4 * np.bincount(expected))
    np.testing.assert_array_equal(server_staleness(np.ones((workers, n)))[:n], expected)


def test_lognormal_server_pmf_is_a_probability_with_mean_m_minus_one():
    model = parse_delay("ps:5:lognormal:0.8")
    p = model.pmf()
    assert p.sum() == pytest.approx(1.0) and np.all(p >= 0)
    assert np.arange(p.size) @ p == pytest.approx(4.0, abs=0.01)
    # heavier compute-time tails spread the staleness more
    wider = parse_delay("ps:5:lognormal:2").pmf()
    variance = lambda q: np.arange(q.size) ** 2 @ q - (np.arange(q.size) @ q) ** 2  # noqa: E731
    assert variance(wider) > variance(p)


@pytest.mark.parametrize(("spec", "expected"), [("constant:7", 7), ("uniform:2-5", 5), ("workers:4", 3)])
def test_measured_max_delay_is_the_largest_staleness_applied(spec, expected):
    """After the first ``expected`` steps (when fewer past iterates exist) every delay is applied in
    full, so over many steps the largest one reaches the model's maximum and never exceeds it. The
    result's ``delay_max`` field says the same (it was 0 for every delay but the server's)."""
    res = simulate(small_problem(spec), 400, 8, rng=3)
    assert res.delay_max == expected and res.to_dict()["delay"]["measured_max"] == expected
    server = simulate(small_problem("ps:4"), 400, 8, rng=3)  # its last bin also holds the larger delays
    assert server.delay_max >= np.flatnonzero(server.delay_counts)[-1] > 0


@pytest.mark.parametrize("spec", ["geometric:3e7", "poisson:1e15", "ps:100000000", "workers:1000000000000",
                                  "uniform:0-100000000000", "constant:1000001"])  # fmt: skip
def test_a_delay_reaching_beyond_the_limit_is_refused_before_its_table(spec):
    """Beyond MAX_DELAY a run cannot hold the history and the table of probabilities alone may not fit
    in memory (geometric:3e7 reaches 8.3e8): refused when the model is made, in one line."""
    from amsgd.core.delays import MAX_DELAY

    with pytest.raises(ProblemError, match=f"a delay may reach at most {MAX_DELAY}"):
        parse_delay(spec)


@pytest.mark.parametrize("mean", [0.5, 3.0, 40.0, 1000.0, 30_000.0])
def test_the_reach_checked_is_the_table_built(mean):
    """The geometric reach computed without the table is the table's max_delay, and the laws at the
    limit's edge are accepted (constant:1000000; a geometric of mean 30 000 reaches 828 944)."""
    from amsgd.core.delays import MAX_DELAY, GeometricDelay, geometric_reach

    assert geometric_reach(mean) == GeometricDelay(mean).max_delay
    assert parse_delay(f"constant:{MAX_DELAY}").max_delay == MAX_DELAY


def test_a_lognormal_server_whose_staleness_does_not_settle_says_so():
    """With a log-scale spread of 4 and 16 workers one job can last much of a run: the law estimated
    from 10⁶ updates has mean 11.8, not M − 1 = 15, and a warning says so; a spread of 1 settles."""
    import warnings

    from amsgd.core.delays import _lognormal_server_pmf
    from amsgd.core.errors import RunWarning

    _lognormal_server_pmf.cache_clear()
    with pytest.warns(RunWarning, match="has mean 11.8, not M - 1 = 15"):
        parse_delay("ps:16:lognormal:4").pmf()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)
        p = parse_delay("ps:4:lognormal:1").pmf()
    assert abs(np.arange(p.size) @ p - 3) < 0.02 * 3
