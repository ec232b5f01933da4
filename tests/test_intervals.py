"""The intervals of ratios and proportions (validation/statistics.py, core/estimates.py) against SciPy
and a Monte Carlo of their coverage, at the edges: a numerator of mean 0, impossible counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from amsgd.core.errors import ProblemError
from amsgd.core.estimates import proportion_interval, t_interval
from amsgd.validation.statistics import ratio_interval


@pytest.mark.parametrize("numerator_mean", [0.0, 0.3, -2.0])
def test_a_ratio_interval_covers_the_ratio_of_the_means(numerator_mean):
    """2000 pairs of samples (40 and 60 draws) of known means 0 or not: the delta-method interval covers
    the true ratio in 95% of them within the binomial interval of 2000 trials; a numerator of mean 0
    raised ZeroDivisionError (the relative error of the numerator was formed), and the normal quantile
    covered 94.1% (Student's at 39 degrees of freedom)."""
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(2000):
        a = t_interval(numerator_mean + rng.standard_normal(40))
        b = t_interval(5.0 + rng.standard_normal(60))
        ratio = ratio_interval(a, b)
        covered += ratio.ci_low <= numerator_mean / 5.0 <= ratio.ci_high
    assert proportion_interval(covered, 2000).ci_low <= 0.95 <= proportion_interval(covered, 2000).ci_high
    zero = ratio_interval(t_interval(np.array([-1.0, 1.0, -1.0, 1.0])), t_interval(np.array([2.0, 2.2, 1.8, 2.0])))
    assert zero.mean == 0.0 and zero.std_error == pytest.approx(np.sqrt(4 / 3) / 2 / 2.0, rel=1e-12)


def test_a_proportion_interval_is_clopper_pearsons_and_refuses_impossible_counts():
    for count, n in ((0, 10), (3, 10), (10, 10), (17, 1024)):
        exact = stats.binomtest(count, n).proportion_ci(confidence_level=0.95, method="exact")
        got = proportion_interval(count, n)
        assert (got.ci_low, got.ci_high) == pytest.approx((exact.low, exact.high), abs=1e-12)
    for count, n in ((0, 0), (3, 2), (-1, 5), (1.5, 4)):
        with pytest.raises(ProblemError, match="a proportion needs whole numbers 0 <= count <= n and n >= 1"):
            proportion_interval(count, n)


def test_no_validation_stream_key_extends_another():
    """A run's blocks extend its key (simulate/seeding.py): the momentum experiment's floor runs, keyed
    (6, M, 0), drew in their block 1 the stream of the rate run keyed (6, M, 0, 1). A key that extends
    another is refused; the same key twice (paired replicates) is not. The validations' own tests
    run every experiment through this check."""
    from amsgd import Problem
    from amsgd.validation.context import Context

    ctx = Context(Problem.from_spectrum((3, 2, 1)))
    first = ctx.seed(6, 0, 0)
    assert ctx.seed(6, 0, 0).spawn_key == first.spawn_key and ctx.seed(6, 0, 1).spawn_key == (6, 0, 1)
    for key in ((6, 0, 0, 1), (6, 0)):
        with pytest.raises(RuntimeError, match="one key extends the other"):
            ctx.seed(*key)
