"""The convergence of a run started at the travel's end point at rest (``Phases.converge_law_at_rest``):
the sampled first-passage law of the error below ε. (A run from the saddle arrives moving: its own
phase III, ``Phases.converge_law``, is tested in tests/test_travel_law.py.)

* against the algorithm: Async-MSGD simulated from the travel's end point, each run's first
  iteration with error <= ε, on two problems (no delay; a constant delay of 10): the mean within the
  simulation's 95% interval widened by 3% of the simulated mean, and a two-sample
  Kolmogorov–Smirnov test that does not reject at 1%;
* the same comparison fails with the restoring rates 10% too fast;
* the mean ratio h_2/h_1 of the algorithm relaxes at the ratio's finite-η rate, not at λ_1 − λ_2;
* without noise the law is a point mass at the deterministic passage of the recursion;
* the noise calibration, the start point, bad input and the JSON keys.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import scipy.linalg
from scipy import stats

from amsgd import Problem, ProblemError, parse_delay, predict
from amsgd.diffusion.theory.first_passage import converge_law, converge_start, ratio_rates
from amsgd.diffusion.theory.phases import Phases, saddle_arrival
from amsgd.simulate import simulate

#: Replicates of the simulations and their seed.
REPLICATES = 4000
SIM_SEED = 2024
#: The model tolerance on the mean: 3% of the simulated mean, added to its 95% interval.
MEAN_TOLERANCE = 0.03
#: The Kolmogorov–Smirnov test must not reject at this level.
KS_LEVEL = 0.01

CASES = {"no-delay": "constant:0", "delay-10": "constant:10"}


def _problem(delay: str) -> Problem:
    return Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), eta=5e-4, mu=0.9, delay=parse_delay(delay))


@lru_cache(maxsize=4)
def _simulated(case: str) -> tuple[np.ndarray, Phases]:
    """Each simulated run's first iteration with error <= ε, from the travel's end point (rest), and
    the phases of the problem."""
    problem = _problem(CASES[case])
    phases = predict(problem).phases
    j = phases.worst_saddle
    coefficients = np.zeros(problem.dim)
    coefficients[0], coefficients[j - 1] = np.sqrt(1 - phases.delta_sq), np.sqrt(phases.delta_sq)
    start = problem.basis @ coefficients  # the travel's end point in the original coordinates
    steps = int(np.nanmax(phases.converge_law_at_rest.samples)) + 200
    run = simulate(problem, steps, REPLICATES, rng=SIM_SEED, start=start, record_every=1, coordinates="moments",
                   threads=2)  # fmt: skip
    assert run.error.shape == (REPLICATES, steps + 1)
    below = run.error[~run.diverged] <= phases.epsilon
    times = np.where(below.any(axis=1), run.iterations[np.argmax(below, axis=1)], np.nan).astype(float)
    assert np.isnan(times).mean() < 0.005  # the runs are followed long enough
    return times[np.isfinite(times)], phases


def _mean_agrees(predicted: float, times: np.ndarray) -> bool:
    low, high = stats.t.interval(0.95, times.size - 1, loc=times.mean(), scale=stats.sem(times))
    slack = MEAN_TOLERANCE * times.mean()
    return low - slack <= predicted <= high + slack


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_converge_law_matches_simulated_single_runs(case):
    times, phases = _simulated(case)
    law = phases.converge_law_at_rest
    assert law.calibration == "finite-eta"
    assert np.isnan(law.samples).sum() == 0
    assert _mean_agrees(law.mean.mean, times), (law.mean.mean, times.mean())
    assert stats.ks_2samp(law.samples, times).pvalue > KS_LEVEL


@pytest.mark.slow
def test_rates_ten_percent_too_fast_fail_the_mean_test():
    """The same noise with every restoring rate 10% faster: the mean test rejects it."""
    times, phases = _simulated("no-delay")
    law = phases.converge_law_at_rest
    rates = ratio_rates(phases.tangent_rates, phases.tangent_noise, phases.eta, phases.mu)
    start = converge_start(phases.delta_sq, rates.size, phases.worst_saddle - 2)
    fast = converge_law(1.1 * rates, law.noise_variances, phases.eta, phases.mu, phases.delay, start, phases.epsilon)
    assert _mean_agrees(law.mean.mean, times)
    assert not _mean_agrees(fast.mean.mean, times), (fast.mean.mean, times.mean())


@pytest.mark.slow
@pytest.mark.parametrize(("eta", "mu", "k"), [(5e-3, 0.0, 33), (5e-4, 0.9, 50)])
def test_the_ratio_relaxes_at_its_finite_eta_rate(eta, mu, k):
    """The mean of ``x_2 = h_2/h_1`` over 40 000 runs of the algorithm started at ``x_2 = sqrt(δ²/(1 − δ²))``,
    at rest, after k steps: the heavy-ball mean recursion at :func:`ratio_rates`'s rate lies inside its
    95% interval, at the bare rate ``a_2 = λ_1 − λ_2`` outside (about 5 standard errors below)."""
    problem = Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), eta=eta, mu=mu)
    x0 = np.sqrt(0.1 / 0.9)
    h0 = np.array([1.0, x0, 0.0, 0.0]) / np.hypot(1.0, x0)
    run = simulate(problem, k, 40_000, rng=SIM_SEED, start=problem.basis @ h0, record_every=k, coordinates="all",
                   threads=2, progress=False)  # fmt: skip
    h = run.coordinates[~run.diverged, -1]
    ratio = h[:, 1] / h[:, 0]
    low, high = stats.t.interval(0.95, ratio.size - 1, loc=ratio.mean(), scale=stats.sem(ratio))
    (a, *_), (s, *_) = predict(problem).phases.tangent_rates, predict(problem).phases.tangent_noise
    assert low <= _mean_ratio(ratio_rates(a, s, eta, mu)[0], eta, mu, x0, k) <= high
    assert not low <= _mean_ratio(a, eta, mu, x0, k) <= high


def _mean_ratio(rate: float, eta: float, mu: float, x0: float, k: int) -> float:
    """``x_k`` of ``x_{j+1} = (1 + μ) x_j − μ x_{j−1} − η a x_j`` from ``x_0 = x_{−1} = x0``."""
    prev, x = x0, x0
    for _ in range(k):
        prev, x = x, (1 + mu) * x - mu * prev - eta * rate * x
    return x


def _lyapunov_gain(rate: float, eta: float, mu: float, tau: int) -> float:
    """Stationary Var x per unit Var ξ of ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ} + η ξ_k``,
    from the discrete Lyapunov equation of its companion form (SciPy)."""
    order = max(tau, 1) + 1
    a = np.zeros((order, order))
    a[0, 0], a[0, 1] = 1 + mu, -mu
    a[0, tau] -= eta * rate
    a[1:, :-1] = np.eye(order - 1)
    b = np.zeros((order, 1))
    b[0, 0] = eta
    return float(scipy.linalg.solve_discrete_lyapunov(a, b @ b.T)[0, 0])


@pytest.mark.parametrize("tau", [0, 3])
def test_calibrated_noise_gives_the_finite_eta_variances(tau):
    """Each mode's noise makes its stationary variance the finite-η theory's (checked against an
    independent Lyapunov solution); without those variances the additive noise is kept."""
    rates, additive = np.array([1.0, 2.0, 3.0]), np.array([12.0, 8.0, 4.0])
    variances = np.array([0.03, 0.01, 0.004])
    start = converge_start(0.1, 3, 0)
    law = converge_law(rates, additive, 5e-4, 0.9, tau, start, 0.09, paths=10, stationary_variances=variances)
    assert law.calibration == "finite-eta"
    gains = np.array([_lyapunov_gain(a, 5e-4, 0.9, tau) for a in rates])
    assert law.noise_variances * gains == pytest.approx(variances, rel=1e-8)
    plain = converge_law(rates, additive, 5e-4, 0.9, tau, start, 0.09, paths=10)
    assert plain.calibration == "additive" and np.array_equal(plain.noise_variances, additive)
    infinite = converge_law(rates, additive, 5e-4, 0.9, tau, start, 0.09, paths=10,
                            stationary_variances=np.array([np.inf, 0.01, 0.004]))  # fmt: skip
    assert infinite.calibration == "additive"


def _deterministic_passage(rates, eta, mu, tau, start, epsilon) -> int:
    """The first k with S_k/(1 + S_k) <= ε of the noise-free recursion, from rest at ``start``."""
    past = [np.array(start, dtype=float)] * (tau + 2)  # x_{k−τ−1} .. x_k
    for k in range(1, 200_000):
        stale = past[-1 - min(tau, k - 1)]
        new = (1 + mu) * past[-1] - mu * past[-2] - eta * np.asarray(rates) * stale
        past = past[1:] + [new]
        total = float(new @ new)
        if total / (1 + total) <= epsilon:
            return k
    raise AssertionError("no passage")


@pytest.mark.parametrize("tau", [0, 4])
def test_without_noise_the_law_is_the_deterministic_passage(tau):
    rates, eta, mu, epsilon = np.array([1.0, 2.5, 4.0]), 0.01, 0.6, 0.03
    start = np.array([0.3, -0.15, 0.1])
    law = converge_law(rates, np.zeros(3), eta, mu, tau, start, epsilon, paths=50)
    expected = _deterministic_passage(rates, eta, mu, tau, start, epsilon)
    assert expected > 10
    assert np.all(law.samples == expected)


def test_start_where_travel_ends_and_edge_cases():
    start = converge_start(0.1, 4, 1)
    assert start.tolist() == pytest.approx([0.0, np.sqrt(0.1 / 0.9), 0.0, 0.0])
    s = float(start @ start)
    assert s / (1 + s) == pytest.approx(0.1)
    rates, noise = np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)
    # already below ε at the start (ε above δ², or at least 1, as where the floor is large): no time
    for epsilon in (0.2, 3.0):
        there = converge_law(rates, noise, 1e-3, 0.5, 0, start, epsilon, paths=20)
        assert there.calibration == "none" and np.all(there.samples == 0)
    # an unstable mode never settles: nothing is sampled
    unstable = converge_law(np.array([1.0, -1.0, 3.0, 4.0]), noise, 1e-3, 0.5, 0, start, 0.05, paths=20)
    assert unstable.calibration == "unstable" and np.isnan(unstable.samples).all()
    assert unstable.to_dict()["mean"] is None and unstable.to_dict()["unfinished"] == 20


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"epsilon": -0.1}, "epsilon"),
        ({"epsilon": float("nan")}, "epsilon"),
        ({"noise": np.ones(3)}, "noise variances"),
        ({"start": np.zeros(3)}, "start"),
        ({"paths": 0}, "paths"),
    ],
)
def test_bad_input_is_refused_with_one_line(change, match):
    args = {"noise": np.ones(2), "start": np.array([0.3, 0.0]), "epsilon": 0.05, "paths": 10}
    args.update(change)
    with pytest.raises(ProblemError, match=match):
        converge_law(np.array([1.0, 2.0]), args["noise"], 1e-3, 0.5, 0, args["start"], args["epsilon"],
                     paths=args["paths"])  # fmt: skip
    with pytest.raises(ProblemError, match="delta_sq"):
        converge_start(1.0, 3, 0)


@pytest.mark.parametrize("tau", [0, 30])
def test_an_epsilon_below_the_finite_eta_floor_is_refused(tau):
    """ε was checked against the diffusion floor only (0.04333 on the default problem, which leaves out
    η's and the delay's effects): ε between it and the finite-η floor (0.0444 at τ = 0, 0.0550 at
    τ = 30) was taken, and the sampled mean curve "settled" at it on a dip (2613 iterations at τ = 0).
    Just above the finite-η floor ε is taken."""
    from amsgd.diffusion.theory.predictions import PredictOptions

    problem = Problem.from_spectrum(delay=parse_delay(f"constant:{tau}"))
    p = predict(problem)
    floor = p.finite_eta.value
    assert p.diffusion_floor < floor
    between = (p.diffusion_floor + floor) / 2
    with pytest.raises(ProblemError, match=f"epsilon = {between:g} is at or below the finite-eta stationary error floor"):
        predict(problem, PredictOptions(epsilon=between)).phases
    assert predict(problem, PredictOptions(epsilon=1.01 * floor)).phases.epsilon == 1.01 * floor


def test_where_the_finite_eta_floor_lies_below_the_diffusion_floor_an_epsilon_between_them_is_taken():
    """Rademacher data, η 0.01, μ 0.9: the diffusion floor 0.867, the finite-η floor 0.440, where the mean
    error settles. A given ε between them was refused as "at or below the stationary error floor
    0.866667", and the default ε (0.720) lay there too, so the default contradicted the refusal; at
    η 0.02 the diffusion floor is 1.73, above any ε. Both are now measured against the finite-η floor."""
    from amsgd.core.distributions import parse_distribution
    from amsgd.diffusion.theory.predictions import PredictOptions

    for eta in (0.01, 0.02):
        problem = Problem.from_spectrum(eta=eta, mu=0.9, distribution=parse_distribution("rademacher"))
        p = predict(problem)
        settles = p.finite_eta.value
        assert p.mean_square.stable and settles < p.diffusion_floor and settles < p.phases.epsilon < 1
        between = min((settles + p.diffusion_floor) / 2, (settles + 1) / 2)
        assert predict(problem, PredictOptions(epsilon=between)).phases.epsilon == between
        below = settles * 0.99
        with pytest.raises(ProblemError, match=f"epsilon = {below:g} is at or below the finite-eta stationary error"):
            predict(problem, PredictOptions(epsilon=below)).phases


def test_phase_json_keeps_both_convergence_numbers():
    problem = _problem("constant:0")
    predictions = predict(problem)
    phases = predictions.phases
    # the law is calibrated to the finite-η theory's variances (solved here without its Perron root)
    assert phases.converge_law_at_rest.calibration == "finite-eta"
    assert phases._stationary_variances == pytest.approx(predictions.finite_eta.variances, rel=1e-9)
    out = phases.to_dict()
    assert set(out["converge_law"]) == set(out["escape_law"])
    assert out["converge_noise"] == "finite-eta"
    assert out["converge_iterations"] == pytest.approx(out["converge_law"]["mean"])
    assert out["mean_curve"]["converge_iterations"] == pytest.approx(phases.converge_time / problem.eta)
    assert out["mean_curve"]["converge_time"] == out["converge_time"] == phases.converge_time
    travel = out["travel_iterations"]
    assert out["total_iterations"] == pytest.approx(out["escape_iterations"] + travel + out["converge_iterations"])
    # the mean error over the sampled runs from the saddle: above ε until then, at or below it there
    curve, settled = phases.settled_curve, int(out["settled_iterations"])
    assert curve[settled - 1] <= phases.epsilon < curve[: settled - 1].min()
    # a single run's error dips below ε: the median passage is well before the mean curve's crossing
    assert out["converge_law"]["median"] < 0.75 * out["mean_curve"]["converge_iterations"]


@pytest.mark.slow
def test_the_stationary_window_starts_when_the_mean_has_settled():
    """``saddle_arrival`` (where ``amsgd simulate`` starts a stationary window) is when the mean error
    over runs reaches ε, not a run's first dip below ε."""
    problem = _problem("constant:0")
    phases = predict(problem).phases
    escape, arrival = saddle_arrival(problem, "e2")
    assert escape == phases.escape_iterations
    assert arrival == phases.settled_iterations > phases.total_iterations


@pytest.mark.parametrize(
    "spectrum",
    [(4.0, 3.2, 3.0, 2.0), (4.0, 3.4, 3.0, 2.0), (4.0, 3.0, 2.9, 2.8, 2.7, 2.6, 2.5, 2.4, 2.3, 2.2)],
)
def test_the_default_epsilon_lies_between_the_finite_eta_floor_and_one(spectrum):
    """The default ε was twice the diffusion floor F whatever the floors: 1.41 at F = 0.706 (the third
    case), though the error never exceeds 1 and a given ε ≥ 1 is refused, and 0.773 at F = 0.387 (the
    second), below the finite-η floor F' = 0.867 that the error settles at. Now 2F where that lies
    between F' and the midpoint (1 + F')/2 of F' and 1 (the first case: F 0.32, F' 0.40), else that
    midpoint; η 2e-3, μ 0, no delay, every case mean-square stable."""
    p = predict(Problem.from_spectrum(spectrum, eta=2e-3))
    assert p.mean_square.stable
    epsilon, floor, settles = p.phases.epsilon, p.diffusion_floor, p.finite_eta.value
    midpoint = (1 + settles) / 2
    assert settles < epsilon < 1
    twice = settles < 2 * floor < midpoint
    assert twice == (spectrum == (4.0, 3.2, 3.0, 2.0))
    assert epsilon == (2 * floor if twice else pytest.approx(midpoint, rel=1e-12))
