"""The parts of the divergence rate's conditional Monte Carlo (:mod:`amsgd.diffusion.theory.kick_fate`):
the conditioned samples against rejection sampling from plain draws, the bins' probabilities against
plain frequencies, the pool for other laws, the shortcut where events are negligible, and the count of
blow-ups with no event."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from amsgd import Problem, parse_delay, parse_distribution
from amsgd.diffusion.theory import PredictOptions, predict
from amsgd.diffusion.theory.kick_fate import _DataLaw, sample_sizes

#: Two-sided 99% normal quantile.
Z = stats.norm.ppf(0.995)


def _law(dist: str, seed: int = 1) -> _DataLaw:
    problem = Problem.from_spectrum((3.0, 2.0, 1.0), distribution=parse_distribution(dist), eta=0.01, mu=0.5)
    return _DataLaw(problem, np.random.default_rng(seed))


@pytest.mark.parametrize(("dist", "low", "high"), [("student-t:6", 40.0, 80.0), ("student-t:5", 200.0, 1000.0),
                                                   ("gaussian", 20.0, 40.0)])  # fmt: skip
def test_conditioned_samples_follow_the_law_given_the_bin(dist, low, high):
    """The conditioned draws lie in the bin, and their size E and share of the first coordinate Y_1²/E
    have the laws of plain draws that happen to fall in the bin (two-sample Kolmogorov–Smirnov)."""
    law = _law(dist)
    conditioned = law.conditioned(4000, low, high)
    e = sample_sizes(conditioned)
    assert np.all((e >= low) & (e < high * (1 + 1e-12)))
    plain = law.draw(4_000_000)
    kept = plain[(sample_sizes(plain) >= low) & (sample_sizes(plain) < high)][:4000]
    assert kept.shape[0] > 500
    for statistic in (sample_sizes, lambda y: y[:, 0] ** 2 / sample_sizes(y)):
        assert stats.ks_2samp(statistic(conditioned), statistic(kept)).pvalue > 1e-3


@pytest.mark.parametrize(("dist", "low", "high"), [("student-t:6", 40.0, 80.0), ("gaussian", 20.0, 40.0),
                                                   ("rademacher", 5.0, 7.0)])  # fmt: skip
def test_bin_probability_against_plain_frequency(dist, low, high):
    law = _law(dist, seed=2)
    plain = sample_sizes(law.draw(2_000_000))
    count = int(np.count_nonzero((plain >= low) & (plain < high)))
    (predicted, _), (error, _) = law.probabilities(np.array([low, high]))
    frequency = count / plain.size
    assert abs(predicted - frequency) <= Z * np.hypot(error, np.sqrt(frequency * (1 - frequency) / plain.size))


def test_laws_without_a_conditional_sampler_use_rows_of_the_pool():
    """Rademacher data on diag(3, 2, 1) have the one size E = 6: its bin gets pool rows, others zeros."""
    law = _law("rademacher")
    rows = law.conditioned(16, 5.0, 7.0)
    assert np.allclose(sample_sizes(rows), 6.0) and np.allclose(np.abs(rows), np.sqrt([3.0, 2.0, 1.0]))
    assert law.probabilities(np.array([5.0, 7.0]))[0].tolist() == [1.0, 0.0]
    assert not law.conditioned(4, 7.0, 9.0).any() and law.probabilities(np.array([7.0, 9.0]))[0][0] == 0.0


def test_negligible_events_are_not_followed():
    """The default problem (Gaussian data, η 5e-4): the event threshold is so far out that runs of
    10⁶ steps meet an event with probability below 1e-9; the rate reported is that bound, and the
    interval runs from 0 to it (it was the bound alone, an interval of width 0)."""
    risk = predict(Problem.from_spectrum(), PredictOptions(steps=1_000_000)).divergence
    assert risk.fate == "stable" and risk.standard_error == 0.0
    assert 0.0 <= risk.per_iteration * 1_000_000 < 1e-9 and risk.fraction < 1e-9 and risk.paths == 0
    assert risk.interval == (0.0, risk.fraction) and risk.fraction > 0.0


def test_bounded_data_of_one_size_have_no_events():
    """Rademacher data have the one size E = Σλ, the event threshold's quantile: no sample exceeds it,
    so no event starts an excursion and the rate is 0 without a path run (η 0.1, μ 0: stable in the mean
    and in mean square)."""
    problem = Problem.from_spectrum(eta=0.1, mu=0.0, distribution=parse_distribution("rademacher"))
    risk = predict(problem).divergence
    assert risk.fate == "stable" and risk.event_threshold == pytest.approx(10.0)
    assert risk.per_iteration == 0.0 and risk.paths == 0


def test_a_sampler_of_the_same_law_gives_the_same_rate():
    """A user sampler of Student-t 10 data goes through the pool (its moment draws) where the named law
    has exact conditioned samples: on diag(3, 2, 1), η 0.012, μ 0.5, τ 3 the two 99% intervals meet
    (1.96% and 1.64% measured when written)."""
    from amsgd import SampledDistribution, parse_delay

    lam = np.array([3.0, 2.0, 1.0])

    def student_t_10(rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.standard_normal((n, 3)) * np.sqrt(lam) * np.sqrt(8.0 / rng.chisquare(10, (n, 1)))

    risks = [predict(Problem.from_spectrum(tuple(lam), distribution=dist, eta=0.012, mu=0.5,
                                           delay=parse_delay("constant:3")), PredictOptions(steps=8000)).divergence
             for dist in (SampledDistribution(student_t_10, "t10"), parse_distribution("student-t:10"))]  # fmt: skip
    assert all(r.paths > 0 and r.fraction > 0.005 for r in risks)
    (a, b) = ((r.per_iteration - Z * r.standard_error, r.per_iteration + Z * r.standard_error) for r in risks)
    assert a[0] <= b[1] and b[0] <= a[1], [r.fraction for r in risks]


def test_a_background_that_blows_up_throughout_keeps_every_path(monkeypatch):
    """With the blow-up norm below 1 every background path blows up at every step (and is restarted):
    no norm is left for the settling radius's quantile, so the radius is its floor, and no path being
    settled, every one is kept as a start."""
    from amsgd.diffusion.theory import kick_fate

    problem = Problem.from_spectrum((3.0, 2.0, 1.0), distribution=parse_distribution("student-t:6"), eta=0.01, mu=0.5)
    monkeypatch.setattr(kick_fate, "FATE_NORM", 0.5)
    law = predict(problem).delay_law
    background = kick_fate._background(problem, law, _law("student-t:6"), 60, kick_fate.calm_span(problem, law),
                                       np.random.default_rng(3))  # fmt: skip
    assert background.blowups == 1.0 and background.radius == kick_fate.SETTLE_RADIUS
    assert background.ring.shape[1] == kick_fate.BACKGROUND_PATHS


def test_the_background_ring_stays_within_the_memory_cap(monkeypatch):
    """The background's ring of past states holds at most MEMORY_CAP floats (fewer paths where the delay's
    ring is long), and never fewer than MIN_PATHS paths."""
    from amsgd.diffusion.theory import kick_fate

    problem = Problem.from_spectrum((3.0, 2.0, 1.0), eta=0.01, mu=0.5, delay=parse_delay("constant:10"))
    law = predict(problem).delay_law
    data = _law("gaussian")
    span = kick_fate.calm_span(problem, law)
    monkeypatch.setattr(kick_fate, "MEMORY_CAP", 3 * 11 * 100)
    capped = kick_fate._background(problem, law, data, 60, span, np.random.default_rng(3))
    assert capped.ring.shape == (11, 100, 3) and capped.blowups == 0.0
    monkeypatch.setattr(kick_fate, "MEMORY_CAP", 1)
    floor = kick_fate._background(problem, law, data, 60, span, np.random.default_rng(3))
    assert floor.ring.shape == (11, kick_fate.MIN_PATHS, 3)


def test_the_direct_count_counts_every_blow_up_of_the_full_law(monkeypatch):
    """With the blow-up norm at 0 every settled path blows up at every step with the full law (whose
    large samples can shrink a norm below 1): the direct rate is 1 per path-step, with the Poisson
    error of the count plus half."""
    from amsgd.diffusion.theory import kick_fate

    problem = Problem.from_spectrum((3.0, 2.0, 1.0), distribution=parse_distribution("student-t:6"), eta=0.01, mu=0.5)
    law = predict(problem).delay_law
    data = _law("student-t:6")
    background = kick_fate._background(problem, law, data, 60, kick_fate.calm_span(problem, law), data.rng)
    monkeypatch.setattr(kick_fate, "FATE_NORM", 0.0)
    fate = kick_fate._direct_count(problem, law, background, 1.0, seed=4)
    count = kick_fate.quiet_steps(problem.dim, background.ring.shape[1]) * background.ring.shape[1]
    assert fate.method == "direct" and fate.direct_blowups == count and fate.paths == 0
    assert fate.per_iteration == pytest.approx(1.0, rel=1e-12)
    assert fate.standard_error == pytest.approx(np.sqrt(count + 0.5) / count)



def test_a_few_settled_states_are_drawn_again_up_to_the_fewest_paths(monkeypatch):
    """A background with three settled states (one that mostly blows up, as at η 0.1 on the default
    problem) runs SETTLED_MIN_PATHS paths drawn from them, not three paths for 2.5 million Python steps;
    every path-step is counted (blow-up norm 0)."""
    from amsgd.diffusion.theory import kick_fate

    problem = Problem.from_spectrum((3.0, 2.0, 1.0), distribution=parse_distribution("student-t:6"), eta=0.01, mu=0.5)
    law = predict(problem).delay_law
    data = _law("student-t:6")
    full = kick_fate._background(problem, law, data, 60, kick_fate.calm_span(problem, law), data.rng)
    few = kick_fate._Background(full.ring[:, :3], full.now, full.radius, full.calm, full.blowups)
    monkeypatch.setattr(kick_fate, "FATE_NORM", 0.0)
    rows = []
    rate, _, count = kick_fate._settled_blowups(problem, law, few, lambda n: rows.append(n) or data.draw(n), data.rng)
    paths = kick_fate.SETTLED_MIN_PATHS
    assert set(rows) == {paths} and len(rows) == kick_fate.quiet_steps(problem.dim, paths)
    assert count == len(rows) * paths and rate == pytest.approx(1.0, rel=1e-12)


def test_states_moving_too_fast_to_stay_calm_are_not_excursion_starts():
    """Student-t 6 data at η 1e-3, μ 0.9, τ 8: the settled background states are the excursions' starts,
    and three states set in motion along e_2 (one step of 0.2 to 0.4, the swings of a run still in an
    excursion while its norm is below the radius) leave the radius within a calm span with no event:
    they are dropped, and the others kept as they were (at most two of them dropped too: this seed's
    background holds two states that leave the radius so)."""
    from amsgd.diffusion.theory import kick_fate

    problem = Problem.from_spectrum(distribution=parse_distribution("student-t:6"), eta=1e-3, mu=0.9,
                                    delay=parse_delay("constant:8"))  # fmt: skip
    law = predict(problem).delay_law
    data = _DataLaw(problem, np.random.default_rng(3))
    background = kick_fate._background(problem, law, data, 400, kick_fate.calm_span(problem, law), data.rng)
    ring = background.ring.copy()
    moving = np.arange(3)
    ring[(background.now - 1) % ring.shape[0], moving, 1] -= np.array([0.2, 0.3, 0.4])  # h_{k−1} behind h_k along e_2
    assert np.all(np.linalg.norm(ring[background.now, moving], axis=1) < background.radius)
    swinging = kick_fate._Background(ring, background.now, background.radius, background.calm, background.blowups)
    starts = kick_fate._calm_ahead(problem, law, swinging, data.quantile(kick_fate.EVENT_QUANTILE), seed=5)
    kept = _columns(starts.ring)
    assert not set(kept) & set(_columns(ring[:, moving]))
    assert set(kept) <= set(_columns(ring[:, 3:])) and len(kept) >= ring.shape[1] - 3 - 2, (len(kept), ring.shape[1])
    assert starts.now == background.now and starts.radius == background.radius


def _columns(ring: np.ndarray) -> list[bytes]:
    """Each path's states in a ring ``(slots, paths, d)``, as bytes."""
    return [ring[:, j].tobytes() for j in range(ring.shape[1])]


def test_runs_without_events_count_each_blow_up_once_per_path_step(monkeypatch):
    """The rate of blow-ups with no event is its count over the path-steps, times P(E ≤ e_min): with
    the blow-up norm below 1 every path blows up at every step (and starts again from a settled
    state), so the rate is P(E ≤ e_min) itself, with the Poisson error of that count plus half."""
    from amsgd.diffusion.theory import kick_fate

    problem = Problem.from_spectrum((3.0, 2.0, 1.0), distribution=parse_distribution("student-t:6"), eta=0.01, mu=0.5)
    law = predict(problem).delay_law
    data = _law("student-t:6")
    background = kick_fate._background(problem, law, data, 60, kick_fate.calm_span(problem, law), data.rng)
    monkeypatch.setattr(kick_fate, "FATE_NORM", 0.5)
    rate, error = kick_fate._without_events(problem, law, data, background, data.quantile(0.99), 0.99)
    count = kick_fate.quiet_steps(problem.dim, background.ring.shape[1]) * background.ring.shape[1]
    assert rate == pytest.approx(0.99, rel=1e-12) and error == pytest.approx(0.99 * np.sqrt(count + 0.5) / count)


@pytest.mark.slow
def test_momentum_next_to_one_gets_an_estimate_within_bounded_work():
    """At μ = 0.999999 three momentum memories are three million steps: the calm rule is capped (it asked
    for a (3·10⁶ × paths) array and 46 GiB) and the estimate agrees with runs, every one of which blows
    up within 10 000 iterations."""
    from amsgd.diffusion.theory.kick_fate import CALM_MAX, calm_span
    from amsgd.diffusion.theory.linear_recursion import delay_law
    from amsgd.simulate import simulate

    problem = Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), eta=5e-4, mu=0.999999)
    assert calm_span(problem, delay_law(0)) == CALM_MAX
    risk = predict(problem, PredictOptions(steps=10_000)).divergence
    runs = simulate(problem, 10_000, 32, rng=1, start="e1", progress=False)
    assert runs.diverged_fraction == 1.0
    assert risk.interval[0] > 0.99, risk.to_dict()


@pytest.mark.parametrize(("slots", "dim", "picked"), [(2, 4, False), (31, 4, True), (5, 40, False), (2, 1, True)])
def test_the_compiled_step_is_the_recursion_written_with_arrays(slots, dim, picked):
    """``delayed_step`` against ``v_k + μ (v_k − v_{k−1}) + η s (Y − s v_{k−τ})`` with fresh arrays, where
    the slot written is the stale one (τ = L) and, with two slots, ``v_{k−1}``'s: to rounding; on a
    ring of paths picked from a larger one (``ring[:, rows]``, as the excursions' starts are: not
    C-contiguous) as on a fresh one."""
    from amsgd.diffusion.theory.fate_kernel import delayed_step

    rng = np.random.default_rng(slots * 100 + dim)
    paths, eta, mu, now = 600, 0.01, 0.9, 3 % slots
    ring = rng.standard_normal((slots, paths, dim))
    if picked:
        ring = rng.standard_normal((slots, 2 * paths, dim))[:, rng.permutation(2 * paths)[:paths]]
        assert not ring.flags.c_contiguous
    lags = rng.integers(0, slots, size=paths)
    lags[:50] = slots - 1  # the oldest iterate: its slot is the one written
    y = 3.0 * rng.standard_normal((paths, dim))
    stale = ring[(now - lags) % slots, np.arange(paths)]
    current, previous = ring[now], ring[(now - 1) % slots]
    s = np.sum(y * stale, axis=1, keepdims=True)
    expected = current + mu * (current - previous) + eta * s * (y - s * stale)
    norms = delayed_step(ring, now, lags, y, eta, mu)
    np.testing.assert_allclose(ring[(now + 1) % slots], expected, rtol=1e-13, atol=1e-12)  # terms of order 1 to 10
    np.testing.assert_allclose(norms, np.linalg.norm(expected, axis=1), rtol=1e-13)


def test_draws_of_another_shape_than_the_paths_are_refused():
    """The compiled step reads ``y`` without bounds checks: a draw array of the wrong shape is refused
    before it runs."""
    from amsgd.diffusion.theory.kick_fate import _Recursion
    from amsgd.diffusion.theory.linear_recursion import delay_law

    problem = Problem.from_spectrum((3.0, 2.0, 1.0), eta=0.01, mu=0.5, delay=parse_delay("constant:2"))
    recursion = _Recursion.at_rest(5, problem, delay_law(problem.delay, as_iid=True), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"draws of shape \(2, 3\) for paths of shape \(5, 3\)"):
        recursion.step(np.ones((2, 3)))
    assert np.all(recursion.step(np.ones((5, 3))) > 0)
