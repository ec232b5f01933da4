"""The stationarity check of the averaging window: the paired interval of its two halves, the rule,
and where it shows (the simulate summary, the warning of ``amsgd simulate``, sweeps and their figures)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from amsgd import Problem
from amsgd.cli import main
from amsgd.core.delays import parse_delay
from amsgd.core.estimates import paired_difference, t_interval
from amsgd.core.stationarity import (
    DRIFT_CONFIDENCE,
    DRIFT_TOLERANCE,
    UNDECIDED,
    Stationarity,
    window_split,
    window_stationarity,
)
from amsgd.simulate import engine, simulate
from amsgd.simulate import plan as plan_module
from amsgd.simulate.model_result import QUANTITIES, ModelSimulationResult

# ---------------------------------------------------------------------------- the interval and the rule


def test_paired_interval_is_the_t_interval_of_the_differences():
    rng = np.random.default_rng(11)
    common = rng.normal(size=40)  # each pair shares a replicate's level: pairing removes it
    a, b = common + rng.normal(0.3, 0.2, 40), common + rng.normal(0.0, 0.2, 40)
    a[3], b[7] = np.nan, np.inf  # a pair with a missing value is left out
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    est = paired_difference(a, b, 0.99)
    half = stats.t.ppf(0.995, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    assert est.n == d.size == 38
    assert est.mean == pytest.approx(d.mean(), rel=1e-12)
    assert (est.ci_low, est.ci_high) == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-12)
    low, high = stats.ttest_rel(a[keep], b[keep]).confidence_interval(0.99)
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), rel=1e-10)
    # the unpaired interval is far wider here: the pairing is what makes the check sensitive
    welch = stats.ttest_ind(a[keep], b[keep], equal_var=False).confidence_interval(0.99)
    assert welch.high - welch.low > 3 * (high - low)
    with pytest.raises(ValueError):
        paired_difference(a, b[:-1])


def test_intervals_are_cut_to_the_range_of_the_quantity():
    """Two replicates give a Student-t interval far wider than [0, 1]; an error's interval is cut to it,
    a squared norm's at 0, and the window's halves and their difference to [0, 1] and [-1, 1]. Cutting
    keeps coverage: a t-interval that covers the true mean (in the range) still covers it."""
    wide = t_interval(np.array([0.1, 0.9]))
    assert wide.ci_low < -2 and wide.ci_high > 3
    cut = t_interval(np.array([0.1, 0.9]), support=(0.0, 1.0))
    assert (cut.mean, cut.ci_low, cut.ci_high, cut.std_error) == (wide.mean, 0.0, 1.0, wide.std_error)
    rng = np.random.default_rng(4)
    draws = rng.beta(0.3, 3.0, size=(4000, 3))  # small skewed samples, true mean 0.3/3.3
    truth = 0.3 / 3.3
    covered = [(e.ci_low <= truth <= e.ci_high) for e in (t_interval(x) for x in draws)]
    covered_cut = [(e.ci_low <= truth <= e.ci_high) for e in (t_interval(x, support=(0.0, 1.0)) for x in draws)]
    assert covered == covered_cut
    st = _check([0.1, 0.9], [0.9, 0.1], bound=1.0)
    assert (st.first.ci_low, st.first.ci_high, st.difference.ci_low, st.difference.ci_high) == (0.0, 1.0, -1.0, 1.0)
    assert _check([0.1, 0.9], [0.9, 0.1]).first.ci_low < 0  # no bound (a model's loss): not cut
    result = simulate(Problem.from_spectrum(eta=0.01), 2000, 2, rng=1, progress=False)
    for est in (result.final_error, result.stationary_error):
        assert 0.0 <= est.ci_low <= est.mean <= est.ci_high <= 1.0
    assert result.final_norm_sq.ci_low >= 0.0


def _check(first, second, estimate=None, **context) -> Stationarity:
    first, second = np.asarray(first, float), np.asarray(second, float)
    estimate = np.mean((first + second) / 2) if estimate is None else estimate
    return window_stationarity(first, second, start=100, end=300, estimate=estimate, **context)


def test_rule_needs_a_significant_and_a_sizeable_difference():
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 0.01, (2, 100))
    drift = _check(0.12 + noise[0], 0.10 + noise[1])  # 18% of the estimate, many standard errors
    assert drift.significant and drift.stationary is False
    assert drift.relative_difference == pytest.approx(abs(drift.difference.mean) / drift.estimate, rel=1e-12)
    assert drift.difference.ci_low <= 0.02 <= drift.difference.ci_high
    assert "iterations 100..300" in drift.message and "not stationary" in drift.message
    # significant but negligible (1% of the estimate) with many replicates
    many = rng.normal(0.0, 0.01, (2, 20_000))
    small = _check(0.1005 + many[0], 0.0995 + many[1])
    assert small.significant and small.relative_difference < DRIFT_TOLERANCE and small.stationary is True
    # sizeable but within the noise: too few replicates to tell, undecided and said so
    noisy = rng.normal(0.0, 0.2, (2, 10))
    unclear = _check(0.12 + noisy[0], 0.10 + noisy[1])
    assert unclear.significant is False and unclear.relative_difference > UNDECIDED
    assert unclear.undecided and unclear.stationary is None
    assert "cannot be told stationary or not with 10 replicates" in unclear.message
    assert unclear.to_dict()["stationary"] is None
    # within the noise and small against the estimate: stationary
    quiet = _check(0.101 + noisy[0] / 20, 0.10 + noisy[1] / 20)
    assert not quiet.significant and quiet.relative_difference < UNDECIDED and quiet.stationary is True
    assert quiet.message is None
    # undefined with a single replicate, or with an empty half
    assert _check([0.2], [0.1]).stationary is None and _check([0.2], [0.1]).message is None
    assert _check([np.nan] * 5, [0.1] * 5).stationary is None
    assert window_split(100, 300) == 200 and window_split(100, 301) == 201 and window_split(7, 7) == 7
    assert drift.to_dict()["first_half"]["iterations"] == [100, 199]
    assert drift.to_dict()["second_half"]["iterations"] == [200, 300]
    one = window_stationarity(np.array([np.nan] * 3), np.array([0.1, 0.2, 0.3]), start=7, end=7, estimate=0.2)
    assert one.to_dict()["first_half"]["iterations"] is None  # a window of one iteration: empty first half
    assert one.to_dict()["second_half"]["iterations"] == [7, 7] and one.stationary is None


def test_near_the_bound_the_drift_is_measured_against_the_distance_to_it():
    """At a saddle sin² stays near 1: a change of 1% of the estimate is most of 1 − estimate."""
    rng = np.random.default_rng(6)
    noise = rng.normal(0.0, 0.002, (2, 100))
    first, second = 0.985 + noise[0], 0.975 + noise[1]
    assert _check(first, second).stationary is True
    bounded = _check(first, second, bound=1.0)
    assert bounded.stationary is False and bounded.near_bound
    assert bounded.relative_difference == pytest.approx(abs(bounded.difference.mean) / (1 - bounded.estimate))
    assert "1 - the estimate" in bounded.message


def test_message_compares_the_window_with_the_predicted_escape():
    rng = np.random.default_rng(7)
    flat = rng.normal(0.05, 0.001, (2, 50))
    early = _check(flat[0], flat[1], predicted_escape=250.0, predicted_arrival=700.0, advice="do this")
    assert early.stationary is True and early.before_escape is True  # reported, not deciding
    assert "starts before the predicted escape (~250 iterations)" in early.message
    assert "is not shown to drift: its first half" in early.message  # the verdict, not only the numbers
    assert early.message.endswith("; do this")
    late = _check(0.1 + flat[0], flat[1], predicted_escape=50.0, predicted_arrival=150.0)
    assert late.before_escape is False and "after the predicted mean escape (~50 iterations)" in late.message
    assert "is not stationary: its first half" in late.message
    assert _check(flat[0], flat[1]).to_dict()["predicted_escape"] is None
    assert "message" not in _check(flat[0], flat[1]).to_dict()


# ---------------------------------------------------------------------------- the simulator's halves


@pytest.mark.parametrize("delay, lanes", [("constant:2", True), ("geometric:1", True), ("uniform:0-2", False),
                                          ("ps:3", False)])  # fmt: skip
@pytest.mark.parametrize("window_start", [0, 29, 70])
def test_halves_are_the_time_averages_of_the_recorded_errors(monkeypatch, delay, lanes, window_start):
    """Recording every step, over chunks of 8 steps, with divergence for some replicates."""
    monkeypatch.setattr(plan_module, "LANE_MAX_DIM", 3 if lanes else 2)
    monkeypatch.setattr(plan_module, "KERNEL_CHUNK_STEPS", 8)
    monkeypatch.setattr(engine, "SAMPLE_PIECE", 9 * 64 if lanes else 9)
    problem = Problem.from_spectrum((3.0, 2.0, 1.0), eta=0.06, mu=0.6, delay=parse_delay(delay))
    res = simulate(problem, 70, 40, rng=3, record_every=1, window_start=window_start)
    split = window_split(window_start, 70)
    assert res.window_split == split
    alive = ~res.diverged
    assert alive.any()
    if split > window_start:
        np.testing.assert_allclose(res.window_halves[alive, 0], res.error[alive, window_start:split].mean(axis=1),
                                   rtol=1e-12)  # fmt: skip
    else:
        assert np.isnan(res.window_halves[:, 0]).all() and res.stationarity.stationary is None
    np.testing.assert_allclose(res.window_halves[alive, 1], res.error[alive, split:].mean(axis=1), rtol=1e-11)
    assert np.isnan(res.window_halves[~alive]).all()


# seeded runs of the default problem (η = 5e-4, μ = 0.9, no delay): the floor is about 0.044 and
# runs from e_2 settle near it after about 760 iterations on average (escape, travel, convergence)
DEFAULT = Problem.from_spectrum((4.0, 3.0, 2.0, 1.0))


def test_flags_a_window_that_starts_before_the_runs_settle():
    biased = simulate(DEFAULT, 1500, 100, rng=2024)  # window 750..1500
    settled = simulate(DEFAULT, 1500, 100, rng=2024, start="e1")
    check = biased.stationarity
    assert check.stationary is False and check.difference.ci_low > 0  # the first half is the higher
    # the estimate is biased: its interval lies above the one started at the optimum
    assert biased.stationary_error.ci_low > settled.stationary_error.ci_high
    summary = biased.to_dict()["stationarity"]
    assert summary["stationary"] is False and "iterations 750..1500" in summary["message"]
    assert summary["difference"]["confidence"] == DRIFT_CONFIDENCE
    assert "--steps 6000" in summary["message"]  # four times the steps when no prediction is given


def test_does_not_flag_a_long_window_started_at_the_optimum():
    res = simulate(DEFAULT, 20_000, 100, rng=2024, start="e1")
    check = res.stationarity
    assert check.stationary is True and check.difference.n == 100
    entry = res.to_dict()["stationarity"]
    assert entry["stationary"] is True and "message" not in entry
    assert entry["first_half"]["mean"] == pytest.approx(res.window_halves[:, 0].mean())


def test_predicted_phases_set_the_suggested_steps():
    res = simulate(DEFAULT, 1500, 100, rng=2024).with_predicted_phases(275.0, 763.0)
    message = res.stationarity.message
    # 2.5 × 763 iterations past the start, with the window at half the run
    assert "--steps 3900" in message and "but before the mean error's predicted arrival near the floor (~763)" in message
    assert res.to_dict()["stationarity"]["predicted_escape"] == 275.0


def test_model_results_use_the_same_rule():
    """A model's window halves are over its recorded training loss (no JAX: the records are made here)."""
    rng = np.random.default_rng(8)
    iterations = np.arange(0, 201, 2)
    decaying = 0.5 + 2.0 * np.exp(-iterations / 60.0)
    values = np.empty((30, 4, iterations.size))
    for q in range(len(QUANTITIES)):
        values[:, q] = decaying + rng.normal(0.0, 0.05, (30, iterations.size))
    records = {"iterations": iterations, "values": values, "diverged_at": np.full(30, -1), "final": np.zeros((30, 3))}
    stub = SimpleNamespace(to_dict=lambda: {"model": "stub"})
    result = ModelSimulationResult.build(stub, 200, records, np.zeros((30, 200), dtype=int), 50, {}, 1.0)
    check = result.stationarity
    assert isinstance(check, Stationarity) and (check.start, check.split, check.end) == (50, 125, 200)
    train = values[:, 0]
    np.testing.assert_allclose(result.window_halves[:, 0], train[:, (iterations >= 50) & (iterations < 125)].mean(1))
    np.testing.assert_allclose(result.window_halves[:, 1], train[:, iterations >= 125].mean(1))
    assert check.stationary is False and "--steps 800" in check.message and "--window" not in check.message
    assert result.to_dict()["stationarity"]["stationary"] is False
    records["values"] = values - decaying + 0.5  # the same noise about a constant
    flat = ModelSimulationResult.build(stub, 200, records, np.zeros((30, 200), dtype=int), 50, {}, 1.0)
    assert flat.stationarity.stationary is True


# ---------------------------------------------------------------------------- the command line


def test_cli_warns_on_stderr_and_reports_the_check(capsys):
    argv = ["simulate", "--steps", "200", "--replicates", "100", "--seed", "7"]
    assert main(argv) == 0  # a warning only
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    entry = summary["stationarity"]
    assert entry["stationary"] is False and entry["before_escape"] is True
    assert entry["predicted_escape"] > 200  # runs from e_2 are still at the saddle
    lines = captured.err.splitlines()
    assert lines == [f"amsgd simulate: warning: {entry['message']}"]
    assert "iterations 100..200" in lines[0] and "starts before the predicted escape" in lines[0]
    assert "--steps" in lines[0] and "--start e1" in lines[0]

    assert main(["simulate", "--steps", "10000", "--replicates", "100", "--seed", "7", "--start", "e1"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out)["stationarity"]["stationary"] is True


def test_cli_says_so_when_runs_are_still_at_the_saddle_and_the_halves_agree(capsys):
    """μ 0 from e_2: 2000 steps end long before the predicted escape (about 4900), the estimate is near 1
    and the halves do not differ significantly with 16 replicates; the check asks the theory anyway and
    says that the window starts before the escape."""
    assert main(["simulate", "--mu", "0", "--steps", "2000", "--replicates", "16", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    entry = json.loads(captured.out)["stationarity"]
    assert entry["stationary"] is not False and entry["before_escape"] is True and entry["predicted_escape"] > 2000
    assert "starts before the predicted escape" in captured.err


def test_cli_does_not_suggest_the_start_it_was_given(capsys):
    """Beyond τ* from e_1 the window drifts; the advice leaves out --start e1, which the run already used."""
    assert main(["simulate", "--tau", "40", "--steps", "20000", "--replicates", "50", "--seed", "1", "--start", "e1"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "--start e1" not in err


# ---------------------------------------------------------------------------- sweeps and their figures


@pytest.mark.slow
def test_sweep_dataset_and_figures_mark_non_stationary_points(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from amsgd.figures.sweep import DRIFT_LABEL, sweep_figures
    from amsgd.sweep.dataset import assemble
    from amsgd.sweep.grid import SweepGrid
    from amsgd.sweep.sweep import RECORD_FIELDS, Sweep, compute_point

    # 600 steps at η = 2e-3: the runs at μ = 0.5 are still travelling in the window, at μ = 0.9 settled
    grid = SweepGrid(("gaussian",), (2e-3,), (0.5, 0.9), "tau", (0, 4))
    sweep = Sweep(DEFAULT, grid, steps=600, replicates=100, seed=3)
    records = {p.index: compute_point(sweep.task(p)) for p in grid.points()}
    assert all(set(r) == set(RECORD_FIELDS) for r in records.values()) and "stationary" in RECORD_FIELDS
    ds = assemble(sweep, records)
    assert ds["stationary"].dtype == np.int8
    assert ds["stationary"].sel(mu=0.5).values.tolist() == [[0, 0]]
    assert ds["stationary"].sel(mu=0.9).values.tolist() == [[1, 1]]
    description = ds["stationary"].attrs["description"]
    assert f"{DRIFT_CONFIDENCE:.0%}" in description and f"{DRIFT_TOLERANCE:.0%} of stationary_error" in description

    legends, hatched = {}, {}
    original = Figure.savefig

    def savefig(fig, path, *args, **kwargs):
        name = str(path).rsplit("/", 1)[-1].removeprefix(".").rsplit(".", 2)[0]  # .NAME.XXXXXXXX.tmp, renamed
        legends[name] = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        hatched[name] = sum(1 for ax in fig.axes for p in ax.patches if p.get_hatch())
        return original(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    paths = sweep_figures(ds, tmp_path)
    assert all(p.exists() for p in paths)
    assert DRIFT_LABEL in legends["sweep_heatmaps.png"]
    assert hatched["sweep_heatmaps.png"] == 2 * 2 * 2  # two cells, two hatches each, on the two measured panels
    assert f"open marker: {DRIFT_LABEL}" in legends["sweep_error_vs_delay.png"]
    # an undecided (or unchecked) window, −1, is marked too: it is not shown stationary
    undecided = ds.copy(deep=True)
    undecided["stationary"].loc[dict(mu=0.9, tau=4)] = -1
    sweep_figures(undecided, tmp_path / "undecided")
    assert hatched["sweep_heatmaps.png"] == 3 * 2 * 2
    undecided["stationary_error"].loc[dict(mu=0.9, tau=4)] = np.nan  # every replicate diverged: grey, not hatched
    sweep_figures(undecided, tmp_path / "diverged")
    assert hatched["sweep_heatmaps.png"] == 2 * 2 * 2
    # a sweep file of the previous format (no such variable) still draws, without the marks
    sweep_figures(ds.drop_vars("stationary"), tmp_path / "old")
    assert DRIFT_LABEL not in legends["sweep_heatmaps.png"] and hatched["sweep_heatmaps.png"] == 0
