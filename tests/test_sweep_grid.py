"""Sweep grids: the LIST/RANGE syntax, validation, point numbering, the part store, predictions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amsgd import Problem, ProblemError, predict
from amsgd.simulate import simulate
from amsgd.sweep.dataset import assemble
from amsgd.sweep.grid import SweepGrid, parse_axis
from amsgd.sweep.store import PartStore
from amsgd.sweep.sweep import Sweep, compute_point


@pytest.mark.parametrize(
    "text, integer, expected",
    [
        ("0:160:40", True, (0, 40, 80, 120, 160)),
        ("0:150:40", True, (0, 40, 80, 120)),
        ("3:6", True, (3, 4, 5, 6)),
        ("0,10,20", True, (0, 10, 20)),
        ("0:20:10,80,160", True, (0, 10, 20, 80, 160)),
        ("0.9,0.5,0.7", False, (0.5, 0.7, 0.9)),
        ("0.5:0.95:0.05", False, (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)),
        ("1e-3", False, (1e-3,)),
        ("-0.3:0.3:0.1", False, (-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3)),  # 0, not a residue of 5.6e-17
        ("-0.45:0.45:0.15", False, (-0.45, -0.3, -0.15, 0.0, 0.15, 0.3, 0.45)),
        ("1e-4:5e-4:1e-4", False, (1e-4, 2e-4, 3e-4, 4e-4, 5e-4)),
    ],
)
def test_axis_syntax(text, integer, expected):
    assert parse_axis(text, "--x", integer=integer) == expected


@pytest.mark.parametrize(
    "text, integer, needle",
    [
        ("", True, "comma-separated"),
        ("1,,2", True, "comma-separated"),
        ("0:10:0", True, "step > 0"),
        ("10:0:1", True, "STOP < START"),
        ("0.5:0.9", False, "START:STOP:STEP"),
        ("1.5", True, "integers"),
        ("a", False, "not a number"),
        ("1,1", True, "twice"),
        ("nan", False, "finite"),
    ],
)
def test_axis_errors_name_the_option(text, integer, needle):
    with pytest.raises(ProblemError, match=needle) as info:
        parse_axis(text, "--tau", integer=integer)
    assert "--tau" in str(info.value)


@given(
    start=st.integers(0, 50),
    count=st.integers(1, 20),
    step=st.integers(1, 9),
    extra=st.integers(0, 8),
)
def test_integer_range_includes_stop_on_the_grid(start, count, step, extra):
    stop = start + (count - 1) * step
    values = parse_axis(f"{start}:{stop + min(extra, step - 1)}:{step}", "--tau", integer=True)
    assert values == tuple(range(start, stop + 1, step))


def test_grid_numbering_is_c_order_and_validated():
    grid = SweepGrid(("gaussian", "student-t:8"), (1e-3,), (0.5, 0.9), "workers", (1, 2, 4))
    assert grid.dims == ("distribution", "eta", "mu", "workers")
    assert grid.shape == (2, 1, 2, 3) and grid.size == 12
    points = list(grid.points())
    assert [p.index for p in points] == list(range(12))
    assert (points[4].distribution, points[4].mu, points[4].delay) == ("gaussian", 0.9, 2)
    assert points[4].delay_spec("workers") == "workers:2"
    assert points[6].distribution == "student-t:8"
    for bad, needle in [
        (dict(mus=(1.0,)), "mu"),
        (dict(etas=(0.0,)), "eta"),
        (dict(delays=(0,)), "workers"),
        (dict(distributions=("gaussian", "normal")), "distinct"),
        (dict(delay_axis="delay"), "delay axis"),
        (dict(mus=(0.9, 0.9)), r"mu values must be distinct, got \[0.9, 0.9\]"),  # a duplicated coordinate before
        (dict(delays=(4, 2, 4)), "workers values must be distinct"),
    ]:
        kwargs = dict(distributions=("gaussian",), etas=(1e-3,), mus=(0.5,), delay_axis="workers", delays=(1,))
        with pytest.raises(ProblemError, match=needle):
            SweepGrid(**{**kwargs, **bad})


def test_part_store_round_trips_exactly(tmp_path):
    store = PartStore(tmp_path / "s.nc")
    assert store.directory == tmp_path / "s.nc.parts" and not store.exists
    store.create({"seed": 1})
    record = {"index": 3, "x": [0.1 + 0.2, math.nan, math.inf, 1e-300]}
    store.write(3, record)
    back = store.read(3)
    assert back["x"][0] == record["x"][0] and math.isnan(back["x"][1]) and back["x"][2:] == record["x"][2:]
    assert store.done() == {3} and store.manifest() == {"seed": 1}
    assert not list(store.directory.glob(".*.tmp"))  # nothing half-written is left behind
    with pytest.raises(FileExistsError):
        store.create({"seed": 2})


@pytest.fixture(scope="module")
def small_sweep() -> Sweep:
    grid = SweepGrid(("gaussian",), (2e-3,), (0.5, 0.9), "tau", (0, 5, 40))
    return Sweep(Problem.from_spectrum((3, 2, 1)), grid, steps=1200, replicates=24, seed=11, record_every=100)


def test_point_seed_and_predictions(small_sweep):
    point = list(small_sweep.grid.points())[4]  # mu = 0.9, tau = 5
    record = compute_point(small_sweep.task(point))
    json.dumps(record)  # JSON-ready
    # the point is exactly simulate() with the n-th child of SeedSequence(seed)
    problem = Problem.from_spectrum((3, 2, 1), eta=2e-3, mu=0.9, delay=small_sweep.point_problem(point).delay)
    direct = simulate(problem, 1200, 24, rng=np.random.SeedSequence(11).spawn(5)[4], record_every=100)
    assert record["final_error"] == [direct.final_error.mean, direct.final_error.ci_low, direct.final_error.ci_high]
    assert record["stationary_error"][0] == direct.stationary_error.mean
    # predictions agree with amsgd.predict at this point
    out = predict(problem).to_dict()
    assert record["linearized_floor"] == pytest.approx(out["stationary_error"]["linearized"]["value"], rel=1e-12)
    assert record["finite_eta_floor"] == pytest.approx(out["stationary_error"]["finite_eta"]["value"], rel=1e-12)
    assert record["diffusion_floor"] == pytest.approx(out["stationary_error"]["diffusion"], rel=1e-12)
    assert record["tau_max"] == out["stability"]["tau_max"]
    assert record["mean_square_stable"] == int(out["stability"]["mean_square"]["stable"]) == 1
    assert record["linearized_floor"] > record["diffusion_floor"]  # finite τ raises the floor


def test_a_point_whose_second_moments_grow_says_so_beside_its_linearised_floor():
    """η 0.3, μ 0.9 on the default spectrum: the mean dynamics is stable and the additive linear floor is
    finite (about 29, a sin² above one), but with the multiplicative noise the second moments grow."""
    from amsgd.sweep.points import pca_predictions

    problem = Problem.from_spectrum(eta=0.3, mu=0.9)
    p = predict(problem)
    record = pca_predictions(p.modes, problem)
    assert np.isfinite(record["linearized_floor"]) and record["linearized_floor"] > 1
    assert record["mean_square_stable"] == 0 and not p.mean_square.stable
    assert np.isinf(record["finite_eta_floor"])  # the finite-η floor has the multiplicative noise: no floor


def test_assemble_layout(small_sweep):
    records = {p.index: compute_point(small_sweep.task(p)) for p in small_sweep.grid.points()}
    ds = assemble(small_sweep, records)
    assert dict(ds.sizes) == {"eta": 1, "mu": 2, "tau": 3, "iteration": 13}
    assert str(ds["distribution"].values) == "gaussian"  # a single distribution is a scalar coordinate
    assert ds["tau"].attrs["units"] == "iterations"
    point = ds.sel(eta=2e-3, mu=0.9, tau=40)
    assert int(point["point"]) == 5
    assert float(ds["stationary_error"].sel(eta=2e-3, mu=0.5, tau=5)) == records[1]["stationary_error"][0]
    assert float(point["diverged_fraction"]) == records[5]["diverged_fraction"]
    # τ = 40 is beyond τ* at mu = 0.9: the linear floor is infinite there, finite at tau = 0
    assert int(point["tau_max"]) < 40 and np.isinf(float(point["linearized_floor"]))
    assert int(point["mean_square_stable"]) == 0 and int(ds["mean_square_stable"].sel(eta=2e-3, mu=0.9, tau=0)) == 1
    assert np.isfinite(float(ds["linearized_floor"].sel(eta=2e-3, mu=0.9, tau=0)))
    lo, mid, hi = (ds[f"stationary_error{s}"].values for s in ("_ci_low", "", "_ci_high"))
    ok = np.isfinite(mid)
    assert ok.sum() >= 4 and np.all((lo[ok] <= mid[ok]) & (mid[ok] <= hi[ok]))


def test_sweep_refuses_bad_options():
    grid = SweepGrid(("gaussian",), (1e-3,), (0.5,), "tau", (0,))
    with pytest.raises(ProblemError, match="seed"):
        Sweep(Problem.from_spectrum(), grid, steps=10, replicates=2, seed=-1)
    with pytest.raises(ProblemError, match="replicates"):
        Sweep(Problem.from_spectrum(), grid, steps=10, replicates=0, seed=1)


def test_python_callers_get_a_problem_error_and_sorted_axes():
    """A NumPy array is an axis like a list; text, a single number, NaN, a grid that is no SweepGrid and
    an out that is no path are one ProblemError (they raised ValueError, TypeError, AttributeError);
    unsorted axes are sorted, as the command line's are."""
    from amsgd.sweep import run_sweep

    grid = SweepGrid(("gaussian",), np.array([2e-3, 1e-3]), (0.9, 0.5), "tau", (5, 0))
    assert grid.etas == (1e-3, 2e-3) and grid.mus == (0.5, 0.9) and grid.delays == (0, 5)
    for axes, needle in [(((1e-3,), ("0.9",), (0,)), "mu values must be numbers"),
                         (((1e-3,), 0.9, (0,)), "mu values must be a list of numbers"),
                         (((1e-3,), (0.9,), (math.nan,)), "tau values must be finite"),
                         (((True,), (0.9,), (0,)), "eta values must be numbers")]:  # fmt: skip
        with pytest.raises(ProblemError, match=needle):
            SweepGrid(("gaussian",), axes[0], axes[1], "tau", axes[2])
    with pytest.raises(ProblemError, match="distributions must be a list of names"):
        SweepGrid("gaussian", (1e-3,), (0.5,), "tau", (0,))
    with pytest.raises(ProblemError, match="grid must be a SweepGrid"):
        Sweep(Problem.from_spectrum(), None, steps=10, replicates=2, seed=1)
    sweep = Sweep(Problem.from_spectrum(), grid, steps=20, replicates=2, seed=1)
    with pytest.raises(ProblemError, match="--out must be a file name"):
        run_sweep(sweep, None)
    with pytest.raises(ProblemError, match="run_sweep runs a Sweep"):
        run_sweep(None, "x.nc")


def test_a_delay_too_long_for_memory_is_refused_before_any_point_runs(tmp_path, capsys):
    """The longest delay's history is checked when the sweep is built: no point is computed and no
    parts folder is left to block a corrected rerun (the sweep used to compute τ = 0 first)."""
    from amsgd.cli import main

    grid = SweepGrid(("gaussian",), (1e-3,), (0.5,), "tau", (0, 1_000_000))
    with pytest.raises(ProblemError, match="needs 1000002 stored iterates"):
        Sweep(Problem.from_spectrum(), grid, steps=10, replicates=256, seed=1)
    out = tmp_path / "big.nc"
    assert main(["sweep", "--tau", "0,1000000", "--steps", "10", "--replicates", "256", "--seed", "1",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "needs 1000002 stored iterates" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_grids_too_large_to_run_are_refused_before_they_are_expanded():
    """A range of 10^7 values is refused from its count alone (it used to be expanded and listed in a
    108 MB message); a grid of more than MAX_POINTS points is refused; a message about bad values
    names the first five of them."""
    from amsgd.sweep.grid import MAX_AXIS_VALUES, MAX_POINTS

    with pytest.raises(ProblemError, match=f"has 10000001 values; an axis takes at most {MAX_AXIS_VALUES}"):
        parse_axis("0:1:1e-7", "--eta")
    for step in ("1e-320", "1e-309"):  # the count is infinite: refused before it meets an integer
        with pytest.raises(ProblemError, match="has more than 1e15 values"):
            parse_axis(f"0:1:{step}", "--eta")
    for text in ("0:9999,10000", ",".join(map(str, range(MAX_AXIS_VALUES + 5)))):  # the axis, not one range
        with pytest.raises(ProblemError, match=f"lists more than {MAX_AXIS_VALUES} values"):
            parse_axis(text, "--tau", integer=True)
    etas = parse_axis(f"1:{MAX_AXIS_VALUES}", "--eta", integer=True)
    with pytest.raises(ProblemError, match=f"a sweep takes at most {MAX_POINTS}"):
        SweepGrid(("gaussian",), etas, tuple(i / 200 for i in range(101)), "tau", (0,))
    with pytest.raises(ProblemError, match=r"eta values must be > 0, got \[-6.0, -5.0, -4.0, -3.0, -2.0\] and 2 more"):
        SweepGrid(("gaussian",), tuple(float(x) for x in range(-6, 2)), (0.5,), "tau", (0,))


def test_a_diagonal_covariance_enters_the_manifest_as_its_diagonal():
    """O(d) for a diagonal Σ (a d × d list is 10⁸ numbers at d = 10 000), and still telling which axis
    carries which eigenvalue; any other Σ enters as its matrix."""
    grid = SweepGrid(("gaussian",), (1e-3,), (0.5,), "tau", (0,))
    sweep = Sweep(Problem.from_spectrum(np.linspace(2.0, 1.0, 10_000)), grid, steps=10, replicates=2, seed=1)
    manifest = sweep.manifest()
    assert "covariance" not in manifest and len(manifest["covariance_diagonal"]) == 10_000
    assert len(json.dumps(manifest)) < 400_000
    swapped = Sweep(Problem.from_spectrum((1.0, 2.0)), grid, steps=10, replicates=2, seed=1).manifest()
    assert swapped["covariance_diagonal"] == [1.0, 2.0]
    assert swapped != Sweep(Problem.from_spectrum((2.0, 1.0)), grid, steps=10, replicates=2, seed=1).manifest()
    rotation = np.array([[0.6, -0.8], [0.8, 0.6]])
    rotated = Sweep(Problem.from_spectrum((2.0, 1.0), basis=rotation), grid, steps=10, replicates=2, seed=1)
    assert np.allclose(rotated.manifest()["covariance"], rotation @ np.diag([2.0, 1.0]) @ rotation.T)


def test_problem_to_dict_tells_which_axis_carries_which_eigenvalue():
    assert "covariance_diagonal" not in Problem.from_spectrum((3.0, 2.0, 1.0)).to_dict()
    assert Problem.from_spectrum((1.0, 3.0, 2.0)).to_dict()["covariance_diagonal"] == [1.0, 3.0, 2.0]
