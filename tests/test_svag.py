"""SVAG runs (simulate/svag.py), their derivation (derivations/svag.py) and the SVAG validation.

The weights keep the drift and the noise per unit time (exact, SymPy); L = 1 is the algorithm (the
same streams as ``simulate``: equal to rounding, and the floors agree statistically across seeds);
at a large η the floor moves with L toward the limit; a seed gives the same numbers; bad input is
one line.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp
from scipy import linalg, stats

from amsgd import Problem, parse_delay
from amsgd.core.errors import ProblemError
from amsgd.derivations import svag as derived
from amsgd.simulate import simulate
from amsgd.simulate.svag import simulate_svag, svag_weights
from amsgd.validation.svag import (
    EQUIVALENCE_MARGIN,
    SvagSetup,
    first_passage,
    run_svag,
    welch_difference,
    write_svag_report,
)


def test_weights_keep_the_drift_and_the_noise_per_unit_time_exactly():
    w1, w2 = derived.svag_weights()
    L = derived.L
    assert sp.simplify(w1 + w2 - 1) == 0
    assert sp.simplify(sp.expand(w1**2 + w2**2) - L) == 0
    for amp in range(1, 17):  # exact arithmetic at each L, and the kernel's floats against it
        e1, e2 = derived.svag_weights(sp.Integer(amp))
        assert sp.nsimplify(e1 + e2) == 1 and sp.expand(e1**2 + e2**2) == amp
        f1, f2 = svag_weights(amp)
        assert abs(f1 - float(e1)) < 1e-15 and abs(f2 - float(e2)) < 1e-15
    assert svag_weights(1) == (1.0, 0.0)
    m = derived.svag_moments()
    mean, var = sp.symbols("m v", real=True)
    assert sp.simplify(m.mean - mean) == 0 and sp.simplify(m.variance - L * var) == 0
    assert sp.simplify(m.drift_per_time - mean) == 0
    assert sp.simplify(m.noise_per_time - derived.eta * var) == 0
    assert sp.simplify(m.delay_time - derived.eta * derived.tau) == 0


@pytest.mark.parametrize("amp", [2, 4])
def test_the_combined_samples_friction_constants_are_the_derived_factors(amp):
    """Four million combined Gaussian samples ``w_1 Y Yᵀ + w_2 Y' Y'ᵀ`` at e_1 of diag(3, 1): the noise
    ``b = w_1 Y_1 Y_2 + w_2 Y'_1 Y'_2`` has ``E b⁴ = (6 κ_c + 3) (L s)²`` and the gain
    ``G = 2 (w_1 Y_1² + w_2 Y'_1²)`` has ``cov(G, b²) = 2 κ_g E G L s``, (κ_c, κ_g) the derived factors
    (Gaussian data: q = 6, g = 2), within 99% intervals."""
    factors = [float(f.subs(derived.L, amp)) for f in derived.svag_kernel_factors()]
    w1, w2 = svag_weights(amp)
    rng = np.random.default_rng(11)
    y, y2 = (rng.standard_normal((2, 4_000_000)) * np.sqrt([[3.0], [1.0]]) for _ in range(2))
    b = w1 * y[0] * y[1] + w2 * y2[0] * y2[1]
    gain = 2.0 * (w1 * y[0] ** 2 + w2 * y2[0] ** 2)
    s = amp * 3.0
    z = stats.norm.ppf(0.995)
    for samples, expected in ((b**4, (6.0 * factors[0] + 3.0) * s**2), ((gain - 6.0) * b**2, 2.0 * factors[1] * 6.0 * s)):
        assert abs(samples.mean() - expected) <= z * samples.std() / np.sqrt(samples.size), (amp, expected)


def _ar2_variance(amp: int, eta: float, mu: float, a: float, sigma: float) -> float:
    """The SVAG mode's stationary variance from the discrete Lyapunov equation of its companion form."""
    w1, w2 = svag_weights(amp)
    step = eta / amp
    A = np.array([[1 + mu - step * a, -mu], [1.0, 0.0]])
    Q = np.zeros((2, 2))
    Q[0, 0] = step**2 * sigma**2 * (w1**2 + w2**2)
    return float(linalg.solve_discrete_lyapunov(A, Q)[0, 0])


def test_one_mode_floor_falls_to_the_sde_value_like_one_over_L():
    formula = derived.svag_mode_variance()
    limit = derived.sde_mode_variance()
    eta, mu, a, sigma = 0.05, 0.6, 3.0, 1.7
    values = {derived.eta: eta, derived.mu: mu, derived.a: a, derived.sigma: sigma}
    ou = eta * sigma**2 / (2 * a * (1 - mu))
    assert float(limit.subs(values)) == pytest.approx(ou, rel=1e-14)
    for amp in (1, 2, 4, 8, 64):
        exact = _ar2_variance(amp, eta, mu, a, sigma)
        assert float(formula.subs({**values, derived.L: amp})) == pytest.approx(exact, rel=1e-12)
        assert exact / ou - 1 == pytest.approx(1 / (1 - eta * a / (2 * amp * (1 + mu))) - 1, rel=1e-10)


def test_L1_is_the_algorithm_itself():
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=0.01, mu=0.5, delay=parse_delay("constant:2"))
    plain = simulate(problem, 600, 70, rng=4, start="e2", record_every=1)
    svag = simulate_svag(problem, 600, 70, 1, rng=4, start="e2", record_every=1)
    assert svag.weights == (1.0, 0.0)
    np.testing.assert_allclose(svag.error, plain.error, rtol=0, atol=1e-10)  # the same streams, to rounding
    np.testing.assert_allclose(svag.window_error, plain.window_error, rtol=0, atol=1e-10)
    # and statistically, on independent seeds: the floors' difference interval holds 0
    a = simulate(problem, 3000, 400, rng=10, start="e1")
    b = simulate_svag(problem, 3000, 400, 1, rng=11, start="e1")
    d = welch_difference(a.stationary_error, b.stationary_error).difference
    assert d.ci_low < 0 < d.ci_high and abs(d.mean) < 0.03 * a.stationary_error.mean


def test_welch_difference_agrees_with_scipy():
    from amsgd.core.estimates import t_interval

    rng = np.random.default_rng(3)
    for shift in (0.0, 0.05, 0.2):
        x, y = rng.normal(1.0, 0.3, 200), rng.normal(1.0 + shift, 0.5, 150)
        d = welch_difference(t_interval(x), t_interval(y)).difference
        p = stats.ttest_ind(y, x, equal_var=False).pvalue
        assert (d.ci_low < 0 < d.ci_high) == (p > 0.05)
        assert d.mean == pytest.approx(y.mean() - x.mean(), rel=1e-12)


@pytest.mark.slow
def test_floor_moves_toward_the_limit_as_L_grows_at_a_large_eta():
    # μ = 0, η = 0.03 (diffusion floor 0.26): the discretisation raises the floor at L = 1
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=0.03, mu=0.0)
    floor = {amp: simulate_svag(problem, 2000, 6000, amp, rng=21).stationary_error for amp in (1, 8)}
    limit = 0.26  # η Σ λ_1 λ_i/(2 (λ_1 − λ_i)), checked against predict below
    from amsgd import predict

    assert predict(problem).diffusion_floor == pytest.approx(limit, rel=1e-12)
    d = welch_difference(floor[1], floor[8]).difference
    assert d.ci_high < 0  # the floor falls from L = 1 to L = 8 ...
    assert floor[8].ci_low > limit  # ... toward the limit, staying above it (state-dependent noise, curvature)
    assert abs(floor[8].mean - limit) < abs(floor[1].mean - limit)


def test_same_seed_same_numbers_whatever_the_threads():
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=0.01, mu=0.5, delay=parse_delay("constant:1"))
    a = simulate_svag(problem, 300, 300, 2, rng=7, start="random")
    b = simulate_svag(problem, 300, 300, 2, rng=7, start="random", threads=2)
    c = simulate_svag(problem, 300, 300, 2, rng=8, start="random")
    np.testing.assert_array_equal(a.error, b.error)
    np.testing.assert_array_equal(a.window_error, b.window_error)
    assert not np.array_equal(a.error, c.error)
    summary = a.to_dict()
    assert summary["svag"]["L"] == 2 and summary["svag"]["iterations"] == 600 and summary["svag"]["delay"] == 2
    assert summary["svag"]["step"] == pytest.approx(0.005) and summary["steps"] == 300
    assert a.iterations[-1] == 300 and a.replicates == 300


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"amplification": 0}, "positive integer"),
        ({"amplification": 1.5}, "positive integer"),
        ({"amplification": True}, "positive integer"),
        ({"delay": "uniform:0-4"}, "constant delay"),
        ({"delay": "ps:4"}, "constant delay"),
        ({"distribution": "rademacher"}, "Gaussian data"),
        ({"amplification": 2**16 + 1}, "at most 65536"),  # 2**63 - 1 ran one iteration deaf to SIGTERM for hours
        ({"amplification": 3, "delay": "constant:400000"}, r"L·tau = 1200000 SVAG steps; a delay may reach at most"),
    ],
)
def test_bad_input_is_one_line(kwargs, fragment):
    from amsgd.core.distributions import parse_distribution

    problem = Problem.from_spectrum(
        (4, 3, 2, 1), delay=parse_delay(kwargs.get("delay", "constant:0")),
        distribution=parse_distribution(kwargs.get("distribution", "gaussian")),
    )  # fmt: skip
    with pytest.raises(ProblemError, match=fragment) as info:
        simulate_svag(problem, 10, 2, kwargs.get("amplification", 2), rng=0)
    assert "\n" not in str(info.value)


def test_a_delay_of_half_the_run_warns_as_without_svag():
    from amsgd.core.errors import LongDelayWarning

    with pytest.warns(LongDelayWarning, match=r"the mean delay \(6 iterations\) is at least half the run \(10 steps\)"):
        simulate_svag(Problem.from_spectrum((4, 3, 2, 1), delay=parse_delay("constant:6")), 10, 2, 3, rng=0)


def test_first_passage_counts_the_censored_runs():
    error = np.array([[1.0, 0.95, 0.8, 0.5], [1.0, 1.0, 1.0, 0.99], [1.0, 0.85, 0.7, 0.6]])
    estimate, censored = first_passage(error, np.arange(4), 0.9)
    assert censored == 1 and estimate.mean == pytest.approx(1.5) and estimate.n == 2


@pytest.mark.slow
def test_validation_report_verdict_and_figure(tmp_path):
    from amsgd.figures.svag import svag_figure

    problem = Problem.from_spectrum((4, 3, 2, 1), eta=0.01, mu=0.0)
    report = run_svag(problem, SvagSetup(amplifications=(1, 2), replicates=150, steps=600, seed=3))
    assert [pt.amplification for pt in report.points] == [1, 2]
    assert report.limit_floor == pytest.approx(0.0866666666, rel=1e-8)
    names = {c.context["observable"] for c in report.checks}
    assert names == {"floor", "escape time"}
    for check in report.checks:  # the difference interval holding 0, the relative one inside the margin
        d = report.differences[check.context["observable"]].difference
        low, high = check.context["relative_difference_ci"]
        inside = -EQUIVALENCE_MARGIN <= low and high <= EQUIVALENCE_MARGIN
        assert check.passed == (d.ci_low <= 0 <= d.ci_high and check.extra_pass and inside)
    assert ("limit is valid" in report.verdict()) == report.passed
    (tmp_path / "summary.json").write_text("{}")  # an earlier run's, which described another run beside this report
    paths = write_svag_report(report, tmp_path, [svag_figure(report, tmp_path / "svag.png")], "amsgd validate --svag 1,2")
    assert not (tmp_path / "summary.json").exists()
    data = json.loads(paths[0].read_text())
    assert data["verdict"] == report.verdict() and len(data["checks"]) == 2
    assert (tmp_path / "svag.png").stat().st_size > 10_000 and "![svag](svag.png)" in paths[1].read_text()
    theory = report.points[0].floor_theory
    assert theory is not None and math.isfinite(theory)


def test_runs_that_all_diverge_give_no_verdict_and_still_a_figure(tmp_path):
    """η = 0.05, μ = 0.9 is stable in the mean at τ = 0 but every run diverges: the verdict said the
    limit "is not valid" and the figure raised (a log axis without a finite point)."""
    from amsgd.figures.svag import svag_figure

    problem = Problem.from_spectrum((4, 3, 2, 1), eta=0.05, mu=0.9)
    report = run_svag(problem, SvagSetup(amplifications=(1, 2), replicates=8, steps=300, seed=3, escape=False))
    assert all(pt.diverged == 8 for pt in report.points) and not report.passed
    assert report.verdict().startswith("no verdict at η = 0.05") and "diverged at L = 1, 2" in report.verdict()
    assert svag_figure(report, tmp_path / "svag.png").stat().st_size > 5_000


def test_refused_before_any_run():
    with pytest.raises(ProblemError, match="no delay is stable"):
        run_svag(Problem.from_spectrum((4, 3, 2, 1), eta=1.0), SvagSetup(amplifications=(1, 2), steps=3000))
    with pytest.raises(ProblemError, match=r"shorter than two relaxation times .*400 iterations"):
        run_svag(Problem.from_spectrum((4, 3, 2, 1)), SvagSetup(amplifications=(1, 2), steps=399))


def test_simulate_command_reports_the_svag_entry(capsys):
    from amsgd.cli import main

    status = main("simulate --svag 4 --tau 2 --eta 0.01 --mu 0.5 --steps 200 --replicates 20 --seed 1 --start e1 -q".split())
    summary = json.loads(capsys.readouterr().out)
    assert status == 0
    w1, w2 = svag_weights(4)
    assert summary["svag"] == {**summary["svag"], "L": 4, "weights": [w1, w2], "step": 0.0025, "iterations": 800, "delay": 8}
    assert summary["steps"] == 200 and summary["problem"]["eta"] == 0.01


def test_chunks_follow_the_amplification_and_leave_the_numbers_alone(monkeypatch):
    """At a large L a chunk of 1024 original iterations was 1024 L SVAG steps: the progress of
    ``simulate --svag 1000000`` stayed at 0% for the whole run. Chunks now hold at most
    CHUNK_SVAG_STEPS steps; the streams carry over, so the numbers do not depend on them."""
    import amsgd.simulate.svag as svag_module

    problem = Problem.from_spectrum((4, 3, 2, 1))
    reference = simulate_svag(problem, 300, 4, 4, rng=1, progress=False)
    monkeypatch.setattr(svag_module, "CHUNK_SVAG_STEPS", 8)  # two original iterations per chunk at L = 4
    calls = []
    monkeypatch.setattr(svag_module, "counter", _counting(calls))
    chunked = simulate_svag(problem, 300, 4, 4, rng=1, progress=False)
    assert np.array_equal(reference.error, chunked.error) and len(calls) == 150


def _counting(calls: list):
    """A stand-in for :func:`amsgd.core.progress.counter` that records every update."""
    import contextlib
    from types import SimpleNamespace

    @contextlib.contextmanager
    def counter(*args, **kwargs):
        yield SimpleNamespace(update=calls.append)

    return counter


def test_agreement_within_a_wide_interval_is_no_verdict_and_fails():
    """Two replicates per L: the floor's difference interval holds 0 only because it spans hundreds of
    percent; the verdict says there is none (it said the limit was valid), and the check, undecided,
    fails: the command exited 0 with "2/2 checks pass" on such a verdict, and the fewer the replicates,
    the surer it passed."""
    problem = Problem.from_spectrum((4, 3, 2, 1))
    report = run_svag(problem, SvagSetup(amplifications=(1, 2), replicates=2, steps=400, seed=3, escape=False))
    (check,) = report.checks
    low, high = check.context["relative_difference_ci"]
    d = report.differences["floor"].difference
    assert d.ci_low <= 0 <= d.ci_high and (low < -EQUIVALENCE_MARGIN or high > EQUIVALENCE_MARGIN)
    assert not report.passed and not check.passed and "raise --svag-replicates" in check.undecided
    assert report.verdict().startswith("no verdict at η = 0.0005") and "raise --svag-replicates" in report.verdict()
    assert check.to_dict()["undecided"] == check.undecided


def test_valid_means_the_intervals_lie_inside_the_equivalence_margin():
    """An interval that holds 0 but reaches beyond ±10% decides nothing, however narrow its other side
    (100 replicates per L: the escape time's relative difference [−25%, +10%] was called valid); one
    inside ±10% on both sides does."""
    from amsgd.core.estimates import Estimate
    from amsgd.validation.svag import Difference, undecided_reason

    def reason(low, high):
        return undecided_reason(Difference(Estimate(0.0, -1.0, 1.0, 0.5, 9), Estimate(0.0, low, high, 0.1, 9)))

    assert "between -24.8% and +10.4%" in reason(-0.248, 0.104) and "beyond the ±10%" in reason(-0.248, 0.104)
    assert reason(-0.05, 0.099) == "" and reason(-0.1, 0.1) == "" and reason(-0.05, float("nan")) != ""
