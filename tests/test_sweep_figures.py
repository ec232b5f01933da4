"""Figures of sweep files: one set per step size and distribution, from a Dataset or a file."""

from __future__ import annotations

import pytest

from amsgd import Problem
from amsgd.figures.sweep import sweep_figures
from amsgd.sweep.dataset import assemble, write_dataset
from amsgd.sweep.grid import SweepGrid
from amsgd.sweep.sweep import Sweep, compute_point

PNG = b"\x89PNG\r\n\x1a\n"


def small_dataset(grid: SweepGrid):
    """A sweep's Dataset computed in this process (the figures do not care how it was run)."""
    sweep = Sweep(Problem.from_spectrum((3, 2, 1)), grid, steps=400, replicates=12, seed=3, record_every=50)
    return assemble(sweep, {p.index: compute_point(sweep.task(p)) for p in grid.points()})


@pytest.mark.parametrize("axis, delays", [("tau", (0, 4, 30)), ("workers", (1, 2, 8))])
def test_figures_from_a_file(axis, delays, tmp_path):
    path = tmp_path / "s.nc"
    write_dataset(small_dataset(SweepGrid(("gaussian",), (4e-3,), (0.3, 0.6, 0.9), axis, delays)), path)
    paths = sweep_figures(path, tmp_path / "figs")
    assert [p.name for p in paths] == ["sweep_heatmaps.png", "sweep_error_vs_delay.png", "sweep_best_mu.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000


@pytest.mark.slow
def test_one_set_per_step_size_and_distribution(tmp_path):
    grid = SweepGrid(("gaussian", "student-t:8"), (2e-3, 4e-3), (0.5, 0.9), "tau", (0, 8))
    paths = sweep_figures(small_dataset(grid), tmp_path)
    assert len(paths) == 12 and len(set(paths)) == 12
    assert tmp_path / "sweep_heatmaps_eta0.004_student-t-8.png" in paths
    assert all(p.exists() for p in paths)


def test_step_sizes_that_print_alike_get_files_of_their_own(tmp_path):
    """5e-4 and 5.000001e-4 both print 0.0005 under %g: the second's figures replaced the first's."""
    grid = SweepGrid(("gaussian",), (5e-4, 5.000001e-4), (0.5, 0.9), "tau", (0, 8))
    paths = sweep_figures(small_dataset(grid), tmp_path)
    assert len(paths) == 6 and len(set(paths)) == 6 and all(p.exists() for p in paths)
    assert tmp_path / "sweep_heatmaps_eta0.0005000001.png" in paths



@pytest.mark.slow
def test_a_sweep_without_figures_is_refused_before_any_run(tmp_path, capsys):
    """A model's sweep and a file whose μ axis was emptied are refused by `amsgd figures --sweep` in one
    line before the standard figures' simulations (they failed after them): no PNG is left."""
    import numpy as np

    from amsgd.cli import main

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    np.savez(tmp_path / "data.npz", X=x, y=(x[:, 0] > 0).astype(int))
    model = tmp_path / "model.nc"
    assert main(["sweep", "--model", "logistic", "--data", str(tmp_path / "data.npz"), "--eta", "0.1", "--mu", "0.5",
                 "--workers", "1", "--steps", "50", "--replicates", "2", "--seed", "1", "--out", str(model), "-q"]) == 0
    capsys.readouterr()
    ds = small_dataset(SweepGrid(("gaussian",), (4e-3,), (0.3, 0.6), "tau", (0, 4)))
    write_dataset(ds.isel(mu=slice(0, 0)), tmp_path / "empty.nc")
    for path, words in ((model, "this is a model's sweep"), (tmp_path / "empty.nc", "no values on its axis mu")):
        out = tmp_path / path.stem
        assert main(["figures", "--out", str(out), "--sweep", str(path), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0]
        assert not out.exists() or not list(out.glob("*.png"))


def test_a_sweep_file_edited_out_of_shape_is_refused_in_one_line(tmp_path):
    """Edits xarray makes easy (a μ selected, a dimension renamed, the problem attribute or an estimate
    changed, one μ repeated) passed the check of the variables and failed in the drawing with a
    traceback, after the standard figures' runs; a measured 0 made the ratio's colour scale infinite."""
    import numpy as np

    from amsgd.core.errors import ProblemError
    from amsgd.figures.sweep import check_drawable

    ds = small_dataset(SweepGrid(("gaussian",), (4e-3,), (0.3, 0.6), "tau", (0, 4)))
    zeroed = ds.copy(deep=True)
    zeroed["stationary_error"][:] = 0.0
    repeated = ds.assign_coords(mu=[0.6, 0.6])
    unparsed = ds.copy()
    unparsed.attrs["problem"] = "{not json"
    for edited, words in ((ds.sel(mu=0.6), "no axis mu"), (ds.rename({"tau": "delay"}), "no axis tau (or workers)"),
                          (ds.isel(eta=0), "no axis eta"), (repeated, "repeats values on its axis mu"),
                          (unparsed, "attribute problem is not the JSON object"),
                          (zeroed, "stationary_error lies outside its interval"),
                          (ds.assign(tau_max=ds["tau_max"].isel(tau=0)), "tau_max has the dimensions (eta, mu)")):
        with pytest.raises(ProblemError, match=words.replace("(", r"\(").replace(")", r"\)")):
            check_drawable(edited)
    for name in ("stationary_error", "stationary_error_ci_low", "stationary_error_ci_high"):
        zeroed[name][:] = 0.0  # consistent: every run at the optimum
    paths = sweep_figures(check_drawable(zeroed), tmp_path)
    assert all(p.read_bytes()[:8] == PNG for p in paths) and np.all(zeroed["stationary_error"].values == 0)


def test_a_single_delay_draws_its_floors_as_marks(tmp_path, monkeypatch):
    """One delay on the grid: each floor is a line of one point, which matplotlib draws as nothing; each is
    marked instead, the two with different marks."""
    import matplotlib.axes

    drawn = []
    plot = matplotlib.axes.Axes.plot

    def record(self, *args, **kwargs):
        drawn.append((args[2] if len(args) > 2 else None, kwargs.get("marker")))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", record)
    ticks = []
    label = matplotlib.axes.Axes.set_xlabel

    def record_ticks(self, text, *args, **kwargs):
        ticks.append((text, self.get_xticks()))
        return label(self, text, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel", record_ticks)
    sweep_figures(small_dataset(SweepGrid(("gaussian",), (4e-3,), (0.6, 0.9), "tau", (20,))), tmp_path / "figs")
    for tau in (0, 3):  # a small delay's padded range holds one whole number: the locator alone gave 2.80 … 3.20
        sweep_figures(small_dataset(SweepGrid(("gaussian",), (4e-3,), (0.9,), "tau", (tau,))), tmp_path / f"t{tau}")
    delay_ticks = [t.tolist() for text, t in ticks if text.startswith("delay")]  # the heat maps' are cell indices
    assert all(tick == round(tick) for t in delay_ticks for tick in t) and [20] in delay_ticks and [3] in delay_ticks
    predicted = {marker for style, marker in drawn if style == "--"}
    diffusion = {marker for style, marker in drawn if style == ":"}
    assert predicted == {"x"} and diffusion == {"_"}  # marked, and told apart


def test_tau_star_beyond_or_without_a_value_is_not_drawn_inside_the_grid():
    """τ* = 115 and 32 on delays 0..30 were both drawn on the right edge, reading as equal; a NaN τ*
    on a one-delay grid was drawn at τ = 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from amsgd.figures.sweep import _draw_limit

    fig, ax = plt.subplots()
    _draw_limit(ax, np.array([115.0, 32.0, 15.0, np.nan]), np.array([0.0, 10.0, 20.0, 30.0]), "k")
    lines = {line.get_label(): line for line in ax.get_lines()}
    inside = lines["linear τ* (largest stable)"]
    assert list(inside.get_xdata()) == [1.5] and list(inside.get_ydata()) == [2]  # 15 lies half way from 10 to 20
    beyond = lines["linear τ* beyond the grid"]
    assert list(beyond.get_ydata()) == [0, 1] and beyond.get_marker() == ">"
    fig, ax = plt.subplots()
    _draw_limit(ax, np.array([np.nan]), np.array([0.0]), "k")
    assert all(len(line.get_xdata()) == 0 for line in ax.get_lines())
    plt.close("all")


def test_the_titles_name_the_sweeps_covariance():
    """The sweep's problem, not the command line's, is in every title (figures --sweep also draws the
    standard figures of the command's own problem beside them)."""
    from amsgd.figures.sweep import _sigma

    assert _sigma(small_dataset(SweepGrid(("gaussian",), (4e-3,), (0.5,), "tau", (0,)))) == "Σ = diag(3,2,1)"


def test_a_long_or_rotated_spectrum_is_named_by_its_dimension_and_ends():
    """Thirteen eigenvalues ran the title off the figure; a rotated Σ is not diag(its eigenvalues)."""
    import numpy as np

    from amsgd import Problem
    from amsgd.figures.style import problem_sigma, sigma_label

    assert sigma_label(range(13, 0, -1)) == "Σ of dimension 13, eigenvalues 13 … 1"
    assert sigma_label((4, 3, 2, 1)) == "Σ = diag(4,3,2,1)"
    rotation = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]
    rotated = Problem(rotation @ np.diag([3.0, 2.0, 1.0]) @ rotation.T)
    assert problem_sigma(rotated) == "Σ of dimension 3, eigenvalues 3,2,1"


def test_points_whose_runs_mostly_diverged_are_left_out(tmp_path, monkeypatch):
    """A point where more than half the runs diverged is the mean of the few left, not the algorithm's
    error: the error-against-delay curves and the measured heat map leave it out (as the validation's
    figure does), and the titles say so."""
    import matplotlib.axes
    import matplotlib.figure
    import numpy as np

    from amsgd.figures.sweep import MOSTLY_DIVERGED

    ds = small_dataset(SweepGrid(("gaussian",), (4e-3,), (0.6, 0.9), "tau", (0, 4, 8)))
    ds["diverged_fraction"].loc[{"mu": 0.9, "tau": 4}] = 0.75  # as if three runs in four had diverged
    ds["diverged_fraction"].loc[{"mu": 0.9, "tau": 8}] = MOSTLY_DIVERGED  # half: still drawn
    drawn, titles = {}, []
    errorbar, suptitle = matplotlib.axes.Axes.errorbar, matplotlib.figure.Figure.suptitle

    def record(self, x, y, *args, **kwargs):
        drawn[kwargs.get("label")] = np.asarray(y, dtype=float)
        return errorbar(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", record)
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle",
                        lambda self, t, **kw: titles.append(t) or suptitle(self, t, **kw))  # fmt: skip
    sweep_figures(ds, tmp_path / "figs")
    kept = drawn["μ = 0.9 measured"]
    assert np.isnan(kept[1]) and np.isfinite(kept[[0, 2]]).all()
    assert np.isfinite(drawn["μ = 0.6 measured"]).all()
    assert any("grey: more than half the runs diverged" in t for t in titles)


def test_the_predicted_floor_is_the_finite_eta_one_or_in_an_older_file_the_linearised_one(tmp_path, monkeypatch):
    """The dashed curves and the predicted heat map are ``finite_eta_floor`` (derive's floor), named so;
    a file without that variable (an earlier format) draws ``linearized_floor`` and says so."""
    import matplotlib.axes
    import numpy as np

    ds = small_dataset(SweepGrid(("rademacher",), (4e-3,), (0.6,), "tau", (0, 4)))
    assert not np.allclose(ds["finite_eta_floor"].values, ds["linearized_floor"].values)
    plot, set_title = matplotlib.axes.Axes.plot, matplotlib.axes.Axes.set_title
    dashed, titles = [], []

    def record(self, *args, **kwargs):
        if len(args) > 2 and args[2] == "--" and len(args[1]):
            dashed.append(np.asarray(args[1], dtype=float))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", record)
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, t, *a, **kw: titles.append(t) or set_title(self, t, *a, **kw))  # fmt: skip
    older = ds.drop_vars("finite_eta_floor")
    for data, variable, name in ((ds, "finite_eta_floor", "finite-η floor"),
                                 (older, "linearized_floor", "exact linearised floor")):  # fmt: skip
        dashed.clear()
        titles.clear()
        sweep_figures(data, tmp_path / variable)
        np.testing.assert_array_equal(dashed[-1], ds[variable].sel(mu=0.6).values.ravel())
        assert f"predicted: {name}" in titles and f"measured / {name}" in titles
