"""Second moments under a geometric delay law from the 3 × 3 Lyapunov system, against the truncated
law's lags, and the boundary of the geometric and event-driven server families."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import Problem, parse_delay
from amsgd.core.delays import EventDrivenDelay, GeometricDelay
from amsgd.diffusion.theory import lyapunov, predict
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.second_moments import geometric_gains, second_moment_operator_radius

# rate, η, μ: μ up to 0.99, η a up to near the mean-stability boundary
CASES = [(3.0, 5e-4, 0.9), (1.0, 0.05, 0.5), (2.0, 0.01, 0.0), (8.0, 1e-3, 0.99), (1.0, 0.9, 0.0)]


@pytest.fixture
def lags_only(monkeypatch):
    """Route every law through its truncated lags (the general Yule–Walker numerics)."""
    monkeypatch.setattr(lyapunov, "geometric_ratio", lambda pmf: None)


def _numbers(rate, eta, mu, law):
    variance = lyapunov.stationary_variance(rate, eta, mu, law, 2.0, if_unstable="inf")
    gains = [lyapunov.scaled_gain(rate, eta, mu, law, lam) for lam in (1.0, 1.05, 1.5)]
    return variance, gains, lyapunov.second_moment_radius(rate, eta, mu, law)


@pytest.mark.parametrize(("rate", "eta", "mu"), CASES)
@pytest.mark.parametrize("mean", [0.5, 3.0, pytest.param(6.0, marks=pytest.mark.slow)])
def test_geometric_route_equals_the_truncated_lags(rate, eta, mu, mean, monkeypatch):
    law = delay_law(GeometricDelay(mean))
    fast = _numbers(rate, eta, mu, law)
    monkeypatch.setattr(lyapunov, "geometric_ratio", lambda pmf: None)
    slow = _numbers(rate, eta, mu, law)
    assert np.isfinite(slow[0]) == np.isfinite(fast[0])
    if np.isfinite(slow[0]):
        assert fast[0] == pytest.approx(slow[0], rel=1e-8)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-8)
    # The untruncated law's radius is at least q (a delay reaches back to the start with probability
    # q^k); where the truncated law's radius lies clearly above q the tail (mass 1e-12, weighted by
    # λ^(−j)) hardly matters and the two agree.
    q = mean / (1.0 + mean)
    assert fast[2] >= max(slow[2], q) * (1 - 1e-9)
    if slow[2] > 1.05 * q:
        assert fast[2] == pytest.approx(slow[2], rel=1e-4)


def test_geometric_gains_of_many_modes_equal_the_per_mode_gains():
    rates = np.array([8.0, 1.0, 2.0, 3.0])
    law = delay_law(GeometricDelay(4.0))
    q = 4.0 / 5.0
    expected = [lyapunov.scaled_gain(r, 5e-4, 0.9, law) for r in rates]
    np.testing.assert_allclose(geometric_gains(rates, 5e-4, 0.9, q), expected, rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize(("eta", "mu"), [(0.03, 0.0), (0.02, 0.3)])
def test_geometric_family_boundary_is_where_the_truncated_radius_crosses_one(eta, mu, lags_only):
    """The largest stable geometric mean, against the second-moment operator's radius computed from the
    truncated law's lags (the geometric shortcut switched off)."""
    problem = Problem.from_spectrum([4, 3, 2, 1], eta=eta, mu=mu, delay=parse_delay("geometric:2"))
    p = predict(problem)
    found = p.family_boundary
    assert found.family == "geometric:MEAN" and not found.beyond_search and found.largest_stable is not None
    x = found.largest_stable
    radius = [second_moment_operator_radius(p.coefficients, eta, mu, GeometricDelay(m).pmf())[0]
              for m in (x, x * 1.002)]  # fmt: skip
    assert radius[0] < 1.0 <= radius[1]


def test_event_driven_server_family_is_the_geometric_one_shifted_by_one_worker():
    problem = Problem.from_spectrum([4, 3, 2, 1], eta=0.02, mu=0.0, delay=parse_delay("ps:4"))
    server = predict(problem).family_boundary
    geometric = predict(problem.replace(delay=parse_delay("geometric:3"))).family_boundary
    assert server.family == "ps:M" and server.parameter == "M"
    assert server.largest_stable == int(np.floor(geometric.largest_stable)) + 1
    assert predict(problem.replace(delay=EventDrivenDelay(server.largest_stable))).mean_square.stable
    assert not predict(problem.replace(delay=EventDrivenDelay(server.largest_stable + 1))).mean_square.stable


def test_log_normal_servers_are_not_searched():
    problem = Problem.from_spectrum([4, 3, 2, 1], eta=0.02, mu=0.0, delay=parse_delay("ps:3:lognormal:0.5"))
    assert predict(problem).family_boundary is None


def test_a_family_boundary_says_which_members_the_rest_of_the_theory_takes():
    """geometric:20 at η = 1e-4: the boundary (the untruncated law) lies beyond the largest mean whose
    truncated table the rest of the theory takes (20 000 lags, a mean of about 723); that member is
    derivable and the next one is refused, for the geometric family and for ps:M (mean M − 1), while a
    law of another shape is refused beyond 2000 lags."""
    from amsgd import ProblemError
    from amsgd.core.delays import UniformDelay

    boundary = predict(Problem.from_spectrum(eta=1e-4, delay=parse_delay("geometric:20"))).family_boundary
    top = boundary.largest_member_with_theory
    assert boundary.largest_stable > top and 723 < top < 724
    assert 19_900 < delay_law(GeometricDelay(top)).max_delay <= 20_000
    with pytest.raises(ProblemError, match="beyond the 20000 lags"):
        delay_law(GeometricDelay(top * (1 + 1e-6)))
    server = predict(Problem.from_spectrum(delay=parse_delay("ps:8"))).family_boundary
    assert server.largest_member_with_theory == 724 and server.to_dict()["largest_member_with_theory"] == 724
    delay_law(EventDrivenDelay(724), as_iid=True)
    with pytest.raises(ProblemError, match="beyond the 20000 lags"):
        delay_law(EventDrivenDelay(725), as_iid=True)
    delay_law(UniformDelay(0, 2000))
    with pytest.raises(ProblemError, match="beyond the 2000 the linear numerics support"):
        delay_law(UniformDelay(0, 2001))
    uniform = predict(Problem.from_spectrum(delay=parse_delay("uniform:0-10"))).family_boundary
    assert uniform.largest_member_with_theory is None
