"""What the delay figures draw: the stability boundary where τ* is 0 or absent, the measured knee at the
criterion's own threshold, and the validation's two delay sections in files of their own."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from amsgd import Problem, parse_delay, predict
from amsgd.core.estimates import Estimate

matplotlib.use("Agg")


def _record(monkeypatch, method: str) -> list[tuple[tuple, dict]]:
    """Record the calls of ``matplotlib.axes.Axes.<method>`` (still drawn)."""
    import matplotlib.axes

    calls, original = [], getattr(matplotlib.axes.Axes, method)

    def record(self, *args, **kwargs):
        calls.append((args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, method, record)
    return calls


def test_the_phase_diagram_draws_a_boundary_of_zero_and_marks_momenta_with_none(tmp_path, monkeypatch):
    """At η = 0.3 on the default problem τ* is −1 (nothing stable) at μ = 0 and 0 (only τ = 0) from
    μ ≈ 0.1 on: the log axis dropped both, so the two read alike; τ* = 0 is now drawn on the τ = 0 line and
    the momenta without a stable delay are shaded as such."""
    from amsgd.figures.delays import DIAGRAM_MUS, ZERO_DELAY_AT, phase_diagram_figure

    theory = predict(Problem.from_spectrum(eta=0.3))
    tau_max = theory.delay_boundary(DIAGRAM_MUS).tau_max
    assert (tau_max == -1).any() and (tau_max == 0).any()
    lines, fills = _record(monkeypatch, "plot"), _record(monkeypatch, "fill_between")
    phase_diagram_figure(theory, tmp_path / "p.png")
    boundary = next(np.asarray(args[1]) for args, kw in lines if kw.get("label") == "exact boundary τ*(μ)")
    assert np.array_equal(boundary[tau_max == 0], np.full((tau_max == 0).sum(), ZERO_DELAY_AT))
    assert np.isnan(boundary[tau_max < 0]).all()
    unstable = next(kw["where"] for args, kw in fills if "unstable at every delay" in str(kw.get("label")))
    assert np.array_equal(unstable, tau_max < 0)


def test_the_knee_is_drawn_at_the_error_its_criterion_allowed(tmp_path, monkeypatch):
    """The criterion allows the error to rise with the exact linear floor's own rise: the marker and the
    legend said 1.5 × the τ = 0 error, which the measured error had already passed at an earlier delay."""
    from amsgd.figures.delays import delay_curves_figure
    from amsgd.validation.delays import KNEE_FACTOR, DelayCurve, measured_knee

    taus = np.array([0, 10, 20, 30])
    means = [0.1, 0.16, 0.21, 0.5]  # 1.6× at τ = 10, within the floor's rise of 1.2 there (1.8× allowed)
    error = tuple(Estimate(m, 0.98 * m, 1.02 * m, 0.01 * m, 64) for m in means)
    linear = np.array([0.05, 0.06, 0.065])  # at τ = 0, 10, 20 (τ* = 20)
    curve = DelayCurve(0.9, taus, error, np.zeros(4), 20, 25.0, np.array([0, 10, 20]), linear, 0.04, math.nan, 1000)
    broken = curve.broken()
    assert broken.tolist() == [False, False, True, True] and means[1] > KNEE_FACTOR * means[0]
    curve = replace(curve, knee=measured_knee(taus, broken))
    lines = _record(monkeypatch, "plot")
    delay_curves_figure([curve], "a curve", tmp_path / "d.png")
    knee = next(args for args, kw in lines if kw.get("marker") == "v")
    assert knee[0] == [20.0] and knee[1] == [pytest.approx(KNEE_FACTOR * 1.3 * 0.1)]  # 2.1× > 1.95× allowed
    legend = next(kw["label"] for args, kw in lines if len(args) > 2 and args[2] == "kv")
    assert "linear floor's rise" in legend
    allowed = curve.breakdown_ratios()
    assert allowed[1] == pytest.approx(KNEE_FACTOR * 0.06 / 0.05) and allowed[3] == KNEE_FACTOR  # none past τ*


def test_a_curve_where_nothing_was_measured_draws_without_warnings(tmp_path):
    import warnings

    from amsgd.figures.delays import delay_curves_figure
    from amsgd.validation.delays import DelayCurve

    nan = Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    curve = DelayCurve(0.9, np.array([0, 5]), (nan, nan), np.ones(2), 4, 6.0, np.arange(5), np.full(5, 0.05), 0.04,
                       0.0, 1000)  # fmt: skip
    with warnings.catch_warnings():  # NumPy's about empty statistics (not an older Matplotlib's deprecations)
        warnings.simplefilter("error", RuntimeWarning)
        assert delay_curves_figure([curve], "all diverged", tmp_path / "d.png").exists()


def test_the_validation_stability_and_sweep_sections_draw_their_own_files(tmp_path, monkeypatch):
    """Both sections drew `phase_diagram.png`: with both in one report the sweep's overwrote the stability
    section's. The stability section's title named the problem's delay over an axis of delays."""
    from amsgd.figures import validation

    drawn = []
    monkeypatch.setattr(validation, "phase_diagram_figure", lambda theory, path, curves: drawn.append(path) or path)
    monkeypatch.setattr(validation, "delay_curves_figure",
                        lambda curves, label, path: drawn.append((label, path)) or path)  # fmt: skip
    problem = Problem.from_spectrum(delay=parse_delay("constant:20"))
    report = SimpleNamespace(problem=problem, theory=None)
    stability = validation._stability(report, SimpleNamespace(result=SimpleNamespace(curve=None)), tmp_path)
    sweep = validation._sweep(report, SimpleNamespace(result=SimpleNamespace(curves=[])), tmp_path)
    assert not set(stability) & set(sweep)
    label = drawn[0][0]
    assert "μ = 0.9" in label and "τ" not in label


def test_the_legend_sits_below_the_axes_and_a_band_reaching_below_zero_is_cut_at_the_frame(tmp_path, monkeypatch):
    """The legend filled the upper left of the axes and hid the curves of the longer delays; a band of few
    runs reaching below 0 left gaps on the log axis."""
    import amsgd.figures.delays as delays
    from amsgd.validation.delays import DelayCurve

    taus = np.array([0, 10, 20, 30])
    error = tuple(Estimate(m, m - 0.3, m + 0.1, 0.1, 2) for m in (0.1, 0.12, 0.15, 0.4))  # lower ends below 0
    curve = DelayCurve(0.9, taus, error, np.zeros(4), 20, 25.0, np.array([0, 10, 20]), np.array([0.05, 0.06, 0.065]),
                       0.04, math.nan, 1000)  # fmt: skip
    kept = {}
    monkeypatch.setattr(delays, "save", lambda fig, path: kept.setdefault("fig", fig))
    fills = _record(monkeypatch, "fill_between")
    delays.delay_curves_figure([curve], "a curve", tmp_path / "d.png")
    fig = kept["fig"]
    fig.canvas.draw()
    (ax,), (legend,) = fig.axes, fig.legends
    assert legend.get_window_extent().y1 <= ax.get_window_extent().y0  # wholly below the axes
    bottom = ax.get_ylim()[0]
    (args, _), = fills
    assert bottom == pytest.approx(0.02) and np.all(np.asarray(args[1]) >= bottom)  # half the lowest floor, 0.04
