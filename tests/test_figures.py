"""``amsgd figures``: the standard PNGs for a small problem, ``--sweep`` wiring, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd.cli import main

SMALL = ["--spectrum", "3,2,1", "--eta", "2e-3", "--mu", "0.8", "--replicates", "64", "--steps", "3000",
         "--mus", "0.5,0.8"]  # fmt: skip
EXPECTED = ("trajectory", "stationary_histograms", "escape", "error_vs_delay", "phase_diagram")


@pytest.mark.slow
def test_standard_figures_for_a_small_problem(tmp_path, capsys, monkeypatch):
    import amsgd.figures.sweep
    import amsgd.sweep.dataset

    calls = []

    def fake_sweep_figures(source, out_dir):
        calls.append((str(source), str(out_dir)))
        return []

    monkeypatch.setattr(amsgd.figures.sweep, "sweep_figures", fake_sweep_figures)
    monkeypatch.setattr(amsgd.sweep.dataset, "read_dataset", lambda path: f"dataset of {path}")
    monkeypatch.setattr(amsgd.figures.sweep, "check_drawable", lambda dataset: dataset)
    from amsgd.figures import standard

    stages, real_stage = [], standard.stage
    monkeypatch.setattr(standard, "stage", lambda label: stages.append(label) or real_stage(label))
    sweep = tmp_path / "sweep.nc"
    sweep.write_bytes(b"")  # read by the (replaced) reader before any simulation
    out = tmp_path / "figs"
    assert main(["figures", *SMALL, "--out", str(out), "--sweep", str(sweep)]) == 0
    assert len(stages) == standard.FIGURE_SETS  # the progress's plan counts each figure set once
    printed = capsys.readouterr().out.split()
    for name in EXPECTED:
        path = out / f"{name}.png"
        assert str(path) in printed
        assert path.stat().st_size > 20_000
    assert calls == [(f"dataset of {sweep}", str(out))]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--mus", "0.5,1.2"], "mus"),
        (["--replicates", "0"], "replicates"),
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--sweep", "missing.nc"], "sweep"),
        (["--distribution", "student-t:3"], "fourth moments"),
        (["--model", "logistic"], "figures supports --model pca only"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    assert main(["figures", *argv, "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_the_help_offers_no_option_of_a_model(capsys):
    """figures draws streaming PCA only: its help listed --model and the model's options, each refused."""
    with pytest.raises(SystemExit):
        main(["figures", "--help"])
    text = capsys.readouterr().out
    assert "--spectrum" in text and "--eta" in text
    assert not any(option in text for option in ("--model", "--data", "--batch", "--l2", "--hidden", "least-squares"))


def test_a_sweep_file_that_is_not_netcdf_fails_before_any_simulation(tmp_path, capsys):
    sweep = tmp_path / "junk.nc"
    sweep.write_text("not a sweep")
    assert main(["figures", *SMALL, "--out", str(tmp_path / "figs"), "--sweep", str(sweep)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a NetCDF file written by amsgd sweep" in err
    assert not list((tmp_path / "figs").glob("*.png"))


def test_no_stable_delay_is_refused_before_any_figure(tmp_path, capsys):
    """η = 0.5 has no stable delay at any of the momenta: one line, exit 2, and no PNG left behind."""
    assert main(["figures", "--eta", "0.5", "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["amsgd figures: error: no delay is stable at eta = 0.5 for some mu in [0.7, 0.8, 0.9]"]
    assert not (tmp_path / "figs").exists()  # the folder it made is removed again
    assert main(["figures", "--eta", "0.5", "--out", str(tmp_path)]) == 2
    assert tmp_path.is_dir() and not list(tmp_path.glob("*.png"))  # a folder that was there stays


@pytest.mark.slow
def test_a_delay_figure_without_a_kept_point_is_not_drawn(tmp_path, capsys):
    """At η = 0.05 more than half the runs diverge at every delay of every momentum: the error-vs-delay
    figure had no simulated point, NumPy and matplotlib warnings and an empty axis; it is skipped with
    a warning line like the others, and only the theory's phase diagram is drawn."""
    argv = ["figures", "--eta", "0.05", "--replicates", "8", "--steps", "400", "-q", "--out", str(tmp_path)]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("amsgd figures: warning: ") for line in err)
    assert "error vs delay: more than half the replicates diverged at every delay" in err[-1]
    assert [p.name for p in tmp_path.glob("*.png")] == ["phase_diagram.png"]


def test_figures_whose_every_replicate_diverged_are_not_drawn(tmp_path, capsys):
    """τ = 40 is far beyond τ* = 1 at η = 0.01: every run of the trajectory and escape figures
    diverges. Those two are skipped with a warning line each (no NumPy warnings about empty
    statistics); the delay-free histograms and the delay figures are drawn."""
    argv = ["figures", "--eta", "0.01", "--tau", "40", "--replicates", "16", "--steps", "1000", "-q", "--out", str(tmp_path)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines[0].startswith("amsgd figures: warning: the delay constant:40 is not stable at eta = 0.01, mu = 0.9 "
                               "(the largest stable constant delay is tau* = 1)")  # said before any run: it drew silently
    assert lines[1:] == [
        f"amsgd figures: warning: {name}: every replicate diverged at this step size, momentum and delay; not drawn"
        for name in ("trajectory", "escape")
    ]
    drawn = {"stationary_histograms", "error_vs_delay", "phase_diagram"}
    assert {p.stem for p in tmp_path.glob("*.png")} == drawn
    assert out.split() == [str(tmp_path / f"{name}.png") for name in EXPECTED if name in drawn]


def test_a_sweep_file_without_the_drawn_variables_is_one_line(tmp_path):
    """A streaming-PCA sweep Dataset lacking what the figures draw (a hand-edited file) is refused in
    one line before any figure (it ended in a KeyError after seven figures)."""
    import numpy as np
    import xarray as xr

    from amsgd.core.errors import ProblemError
    from amsgd.figures.sweep import check_drawable

    ds = xr.Dataset({"stationary_error": (("mu", "tau"), np.ones((2, 3)))}, coords={"mu": [0.5, 0.9], "tau": [0, 1, 2]})
    with pytest.raises(ProblemError, match="lacks the variables stationary_error_ci_low"):
        check_drawable(ds)


def test_ctrl_c_names_the_figures_already_drawn(tmp_path, capsys, monkeypatch):
    """Interrupted after one figure: status 130, and stderr names what was kept and how to go on."""
    import amsgd.figures.standard as standard

    def draw_one_then_stop(problem, out, **_):
        (out / "phase_diagram.png").write_bytes(b"png")
        raise KeyboardInterrupt

    monkeypatch.setattr(standard, "standard_figures", draw_one_then_stop)
    assert main(["figures", *SMALL, "--out", str(tmp_path / "figs")]) == 130
    err = capsys.readouterr().err
    assert "the figures drawn so far are kept" in err and "phase_diagram.png" in err and "rerun the same command" in err
    # into a folder an earlier run filled: only this run's figure is named as drawn (all five were)
    (tmp_path / "figs" / "escape.png").write_bytes(b"earlier")
    assert main(["figures", *SMALL, "--out", str(tmp_path / "figs")]) == 130
    err = capsys.readouterr().err
    assert "kept in " in err and "(phase_diagram.png); escape.png there are an earlier run's" in err


def test_figures_left_by_an_earlier_run_are_named(tmp_path, capsys, monkeypatch):
    """A folder reused for another problem kept the earlier figures this run did not draw (its trajectory
    diverged, or it had no --sweep) beside the new ones, without a word: stderr now names them."""
    import amsgd.figures.standard as standard

    def draw_one(problem, out, **_):
        (out / "phase_diagram.png").write_bytes(b"png")
        return [out / "phase_diagram.png"]

    monkeypatch.setattr(standard, "standard_figures", draw_one)
    out = tmp_path / "figs"
    out.mkdir()
    (out / "trajectory.png").write_bytes(b"an earlier problem's")
    assert main(["figures", *SMALL, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{out} also holds trajectory.png, not drawn by this run" in err and "phase_diagram" not in err


def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in (["figures", *SMALL], ["validate", "--only", "rate"]):
        assert main([*command, "--out", ""]) == 2
        assert "--out needs a folder name" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_rate_figure_draws_an_oscillating_mean_where_it_is_negative(tmp_path, monkeypatch):
    """A mean that oscillates (a complex dominant root) is negative on half its records: a log axis would
    drop them, so they are drawn as |mean| with their own label, and the fitted line is called an envelope."""
    import matplotlib.axes

    from amsgd import Problem
    from amsgd.figures.dynamics import rate_figure
    from amsgd.validation.dynamics import LocalRate
    from amsgd.validation.statistics import RateFit

    k = np.arange(0.0, 400.0, 2.0)
    mean = np.exp(-0.01 * k) * np.cos(0.05 * k)
    fit = RateFit(0.01, 0.009, 0.011, (20.0, 300.0), k, mean, 1.0)
    drawn = {}
    semilogy = matplotlib.axes.Axes.semilogy

    def record(self, x, y, *args, **kwargs):
        drawn[kwargs.get("label")] = np.asarray(y)
        return semilogy(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "semilogy", record)
    rate = LocalRate(Problem.from_spectrum(), 3, fit, 0.011, 0.012, None)
    rate_figure([rate], tmp_path / "rate.png")
    negative = drawn["simulation: |mean| where negative"]
    assert negative.size == (mean < 0).sum() and (negative > 0).all()
    assert any(label.startswith("fitted envelope 0.01 ") for label in drawn if label)


@pytest.mark.parametrize("runs", [np.array([17.0, 17.2, 33.0]), np.zeros(0)])
def test_the_escape_histograms_of_a_few_late_or_no_runs_draw_without_warnings(tmp_path, runs):
    """Three runs escaping after every one of 4000 OU paths fell outside the shared bins (numpy's
    "invalid value encountered in divide" on the empty histogram); no run at all had no mean to draw."""
    import warnings

    from amsgd.figures.dynamics import escape_figure
    from amsgd.validation.dynamics import PhaseRun

    k = np.arange(0, 40)
    flat = np.zeros(k.size)
    run = PhaseRun(k, flat, flat, flat, 0.1, 0.9, 0.0, runs, np.zeros(0),
                   np.random.default_rng(0).uniform(0.5, 1.5, 4000), ())  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert escape_figure(run, "a label", tmp_path / "escape.png").stat().st_size > 5_000


def test_the_escape_band_of_few_runs_stays_in_the_unit_interval(tmp_path, monkeypatch):
    """The share h₁²/‖h‖² lies in [0, 1], but the 95% t band of two runs reached −1 and 2.4, and the
    axis followed it: the band is drawn clipped to [0, 1]."""
    import amsgd.figures.dynamics as dynamics
    from amsgd.validation.dynamics import PhaseRun

    k = np.arange(0, 40)
    mean = np.full(k.size, 0.5)
    run = PhaseRun(k, mean, mean - 1.5, mean + 1.9, 0.1, 0.9, 0.0, np.array([17.0, 21.0]), np.zeros(0),
                   np.random.default_rng(0).uniform(0.5, 1.5, 4000), ())  # fmt: skip
    drawn = []
    monkeypatch.setattr(dynamics, "save", lambda fig, path: drawn.append(fig) or path)
    dynamics.escape_figure(run, "a label", tmp_path / "escape.png")
    low, high = drawn[0].axes[0].get_ylim()
    assert -0.1 < low < 0 and 1 < high < 1.1, (low, high)


def test_the_escape_histograms_show_the_first_passage_law_the_check_uses(tmp_path, monkeypatch):
    """The check `escape-iterations-per-run` compares the runs' mean escape with the first-passage law's
    mean, which the figure did not draw (only the OU limit's): the law's mean is a line with its value."""
    import amsgd.figures.dynamics as dynamics
    from amsgd.validation.dynamics import PhaseRun

    k = np.arange(0, 40)
    mean = np.full(k.size, 0.5)
    run = PhaseRun(k, mean, mean, mean, 0.1, 0.9, 0.0, np.array([17.0, 21.0, 25.0]), np.zeros(0),
                   np.random.default_rng(0).uniform(0.5, 1.5, 4000), (), None, 19.4)  # fmt: skip
    drawn = []
    monkeypatch.setattr(dynamics, "save", lambda fig, path: drawn.append(fig) or path)
    dynamics.escape_figure(run, "a label", tmp_path / "escape.png")
    lines = {line.get_label(): line.get_xdata()[0] for line in drawn[0].axes[1].get_lines()}
    assert lines["first-passage law's mean 19 (finite η; the check's)"] == 19.4
