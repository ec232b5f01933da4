"""The parts of the divergence rate's conditional Monte Carlo (:mod:`amsgd.diffusion.theory.kick_fate`):
the conditioned samples against rejection sampling from plain draws, the bins' probabilities against
plain frequencies, the pool for other laws, and the shortcut where events are negligible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from amsgd import Problem, parse_distribution
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
    predicted = law.probabilities(np.array([low, high]))[0]
    lo, hi = stats.binomtest(count, plain.size).proportion_ci(confidence_level=0.99)
    assert lo <= predicted * (1 + 0.02) and predicted * (1 - 0.02) <= hi  # 2%: the 50 000 draws behind P_b


def test_laws_without_a_conditional_sampler_use_rows_of_the_pool():
    """Rademacher data on diag(3, 2, 1) have the one size E = 6: its bin gets pool rows, others zeros."""
    law = _law("rademacher")
    rows = law.conditioned(16, 5.0, 7.0)
    assert np.allclose(sample_sizes(rows), 6.0) and np.allclose(np.abs(rows), np.sqrt([3.0, 2.0, 1.0]))
    assert law.probabilities(np.array([5.0, 7.0])).tolist() == [1.0, 0.0]
    assert not law.conditioned(4, 7.0, 9.0).any() and law.probabilities(np.array([7.0, 9.0]))[0] == 0.0


def test_negligible_events_are_not_followed():
    """The default problem (Gaussian data, η 5e-4): the event threshold is so far out that runs of
    10⁶ steps meet an event with probability below 1e-9; the rate reported is that bound."""
    risk = predict(Problem.from_spectrum(), PredictOptions(steps=1_000_000)).divergence
    assert risk.fate == "stable" and risk.standard_error == 0.0
    assert 0.0 <= risk.per_iteration * 1_000_000 < 1e-9 and risk.fraction < 1e-9


def test_bounded_data_of_one_size_have_no_events():
    """Rademacher data have the one size E = Σλ, the event threshold's quantile: no sample exceeds it,
    so no event starts an excursion and the rate is 0 without a path run (η 0.1, μ 0: stable in the mean
    and in mean square)."""
    problem = Problem.from_spectrum(eta=0.1, mu=0.0, distribution=parse_distribution("rademacher"))
    risk = predict(problem).divergence
    assert risk.fate == "stable" and risk.event_threshold == pytest.approx(10.0)
    assert risk.per_iteration == 0.0 and risk.paths == 0
