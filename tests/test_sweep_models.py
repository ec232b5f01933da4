"""Sweeps of models other than streaming PCA: the grid without a distribution axis, the manifest that
identifies the model and its data, the refusals, and a logistic sweep that is bit-identical on one
thread, two threads, two processes and after a resume, whose points are ``simulate_model`` with the
point's seed and whose predictions are those of ``predict_model`` at the point."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from amsgd import ProblemError
from amsgd.cli import build_parser, main
from amsgd.cli.sweep import sweep_from_args
from amsgd.core.delays import RoundRobinDelay
from amsgd.core.models import ModelProblem, split_data
from amsgd.sweep.dataset import read_dataset
from amsgd.sweep.grid import SweepGrid
from amsgd.sweep.points import ModelPoints, compute_point
from amsgd.sweep.run import run_sweep
from amsgd.sweep.store import PartStore
from amsgd.sweep.sweep import RECORD_FIELDS, Sweep

from helpers.datasets import Interrupted, assert_same


def blobs(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping Gaussian classes in four features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return rng.normal(size=(n, 4)) + rng.normal(size=(3, 4))[y], y


def logistic(x=None, y=None, **options) -> ModelProblem:
    if x is None:
        x, y = blobs()
    return ModelProblem("logistic", split_data("blobs", x, y), **{"batch": 8, "l2": 1e-2, **options})


GRID = SweepGrid((), (0.2,), (0.5, 0.9), "workers", (1, 3))


def model_sweep(problem: ModelProblem | None = None, **options) -> Sweep:
    """4 points of 300 steps × 6 replicates: μ = 0.9 with 3 workers is beyond the mean-square boundary."""
    return Sweep(problem or logistic(), GRID, **{"steps": 300, "replicates": 6, "seed": 4, "record_every": 30, **options})


# ------------------------------------------------------------------------------ quick: no JAX run


def test_a_model_grid_has_no_distribution_axis():
    assert GRID.dims == ("eta", "mu", "workers") and GRID.shape == (1, 2, 2) and GRID.size == 4
    points = list(GRID.points())
    assert [p.index for p in points] == [0, 1, 2, 3]  # C order, as with one distribution
    assert (points[3].distribution, points[3].mu, points[3].delay) == (None, 0.9, 3)
    assert GRID.to_dict() == {"eta": [0.2], "mu": [0.5, 0.9], "workers": [1, 3]}
    from amsgd import Problem

    with pytest.raises(ProblemError, match="at least one data distribution"):
        Sweep(Problem.from_spectrum((3, 2, 1)), GRID, steps=10, replicates=2, seed=1)
    with pytest.raises(ProblemError, match="no distribution axis"):
        Sweep(logistic(), SweepGrid(("gaussian",), (0.2,), (0.5,), "tau", (0,)), steps=10, replicates=2, seed=1)
    # negative momentum is for models (-1 < mu < 1); streaming PCA keeps 0 <= mu < 1
    negative = SweepGrid((), (0.2,), (-0.3, 0.5), "tau", (0,))
    assert Sweep(logistic(), negative, steps=10, replicates=2, seed=1).point_problem(next(negative.points())).mu == -0.3
    with pytest.raises(ProblemError, match="0 <= mu < 1 for streaming PCA"):
        Sweep(Problem.from_spectrum((3, 2, 1)), SweepGrid(("gaussian",), (0.2,), (-0.3,), "tau", (0,)), steps=10,
              replicates=2, seed=1)  # fmt: skip
    with pytest.raises(ProblemError, match="-1 < mu < 1 for a model"):
        SweepGrid((), (0.2,), (-1.0,), "tau", (0,))


def test_the_full_second_moments_reach_is_the_theory_s():
    from amsgd.diffusion.theory.full_moments import FULL_MOMENTS_MAX, FULL_MOMENTS_MAX_DELAY
    from amsgd.sweep.points import FULL_MOMENTS_REACH

    assert FULL_MOMENTS_REACH == (FULL_MOMENTS_MAX, FULL_MOMENTS_MAX_DELAY)


def test_the_point_problem_and_the_record_fields():
    sweep = model_sweep()
    point = list(GRID.points())[3]
    problem = sweep.point_problem(point)
    assert (problem.eta, problem.mu, problem.delay) == (0.2, 0.9, RoundRobinDelay(3))
    assert problem.data is sweep.problem.data and problem.batch == 8  # the model's options are kept
    assert sweep.start == "init" and sweep.window_start == 150 and sweep.iterations.tolist() == list(range(0, 301, 30))
    fields = set(sweep.fields)
    assert {"final_train_loss", "stationary_loss", "final_validation_loss", "final_validation_accuracy",
            "train_loss_mean", "loss_floor", "predicted_loss", "mean_stable", "mean_square_stable", "tau_max",
            "tau_max_mean_square"} <= fields  # fmt: skip
    assert not fields & {"final_error", "error_mean", "linearized_floor"} and "final_error" in RECORD_FIELDS
    x, _ = blobs()
    regression = ModelProblem("least-squares", split_data("r", x, x @ np.ones(4), classification=False))
    assert "final_validation_accuracy" not in ModelPoints(regression).fields  # no accuracy without classes


def test_the_manifest_identifies_the_model_and_its_data(tmp_path):
    sweep = model_sweep()
    manifest = sweep.manifest()
    assert manifest["model"] == {"name": "logistic", "batch": 8, "l2": 0.01}
    assert len(manifest["data"]["train_sha256"]) == 64 and manifest["data"]["train"] == [160, 4]
    assert "covariance" not in manifest and "distribution" not in manifest["grid"]
    x, y = blobs()
    same = model_sweep(logistic(x.copy(), y.copy()))
    assert same.manifest() == manifest  # the content counts, not the object or the file's name
    x[7, 2] += 1e-9
    changed = model_sweep(logistic(x, y))
    assert changed.manifest()["data"]["train_sha256"] != manifest["data"]["train_sha256"]
    assert model_sweep(logistic(batch=16)).manifest()["model"]["batch"] == 16
    # a stored sweep resumed with other data, or another batch, is refused before any work
    out = tmp_path / "m.nc"
    PartStore(out).create(manifest)
    for other, what in ((changed, "data"), (model_sweep(logistic(batch=16)), "model")):
        with pytest.raises(ProblemError, match=f"differs in {what};"):
            run_sweep(other, out, resume=True, progress=False)
    assert [p.name for p in PartStore(out).directory.iterdir()] == ["manifest.json"]


def test_a_model_window_starts_where_it_is_asked_to():
    """simulate_model's window is where it starts, as for streaming PCA: ``window`` F starts it at
    floor(F·steps) (0.2 of 100 steps at 20, where 1 − 0.8 gave 19), ``window_start`` exactly."""
    from amsgd.simulate.model_engine import simulate_model

    p = logistic(batch=4)
    assert simulate_model(p, 100, 1, rng=0, window=0.2, record_every=10, progress=False).window_start == 20
    assert simulate_model(p, 100, 1, rng=0, window_start=37, progress=False).window_start == 37
    with pytest.raises(ProblemError, match="0..steps-1"):
        model_sweep(window_start=300)
    with pytest.raises(ProblemError, match="not both"):
        simulate_model(p, 100, 1, rng=0, window=0.3, window_start=37, progress=False)
    resolved = model_sweep(window=0.3)  # the fraction is resolved into window_start, and can be rebuilt
    assert resolved.window is None and replace(resolved, replicates=2).window_start == resolved.window_start


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--distribution", "rademacher"], "--distribution applies to --model pca only"),
        (["--start", "e1"], "--start applies to --model pca only"),
        (["--distribution", "gaussian"], "--distribution applies to --model pca only"),  # given, though the default
        (["--start", "e2"], "--start applies to --model pca only"),
        (["--data", "missing.npz"], "does not exist"),
    ],
)
def test_model_refusals_are_one_line_and_exit_2(extra, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--model", "logistic", "--tau", "0", "--seed", "1", "--out", "x.nc", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ slow: the runs


def _client(n_workers: int, processes: bool = False):
    from amsgd.sweep.cluster import dask_client

    return dask_client(n_workers=n_workers, processes=processes)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Sweep:
    """The logistic sweep as the command line builds it (from an .npz), its theory derived once."""
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "blobs.npz", **dict(zip(("X", "y"), blobs(), strict=True)))
    options = ["sweep", "--model", "logistic", "--data", str(folder / "blobs.npz"), "--batch", "8", "--l2", "1e-2",
               "--eta", "0.2", "--mu", "0.5,0.9", "--workers", "1,3", "--steps", "300", "--replicates", "6",
               "--seed", "4", "--record-every", "30", "--out", "unused.nc"]  # fmt: skip
    built = sweep_from_args(build_parser().parse_args(options))
    assert built.manifest() == model_sweep().manifest()  # the same sweep as the one built in Python
    return built


@pytest.fixture(scope="module")
def reference(sweep, tmp_path_factory) -> xr.Dataset:
    """The sweep on one worker thread, read back from its file."""
    out = tmp_path_factory.mktemp("ref") / "ref.nc"
    with _client(1) as client:
        run_sweep(sweep, out, client=client, progress=False)
    return read_dataset(out)


@pytest.mark.slow
def test_two_threads_and_a_resume_give_the_dataset_of_one_thread(sweep, reference, tmp_path):
    with _client(2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        run_sweep(sweep, tmp_path / "two.nc", client=client, progress=False)
        assert_same(read_dataset(tmp_path / "two.nc"), reference)

        out = tmp_path / "resumed.nc"
        store = PartStore(out)

        def stop(index: int, record: dict) -> None:
            if len(store.done()) >= 3:
                raise Interrupted

        with pytest.raises(Interrupted):
            run_sweep(sweep, out, client=client, progress=False, on_point=stop)
        stored = sorted(store.done())
        assert len(stored) >= 3
        store.discard(stored[0])  # a stored point deleted: computed again
        computed: list[int] = []
        outcome = run_sweep(sweep, out, client=client, resume=True, progress=False,
                            on_point=lambda index, record: computed.append(index))  # fmt: skip
    assert stored[0] in computed and not set(stored[1:]) & set(computed)
    assert outcome.reused == len(stored) - 1
    assert_same(read_dataset(out), reference)


@pytest.mark.slow
def test_worker_processes_give_the_same_dataset(sweep, reference, tmp_path):
    task = sweep.task(next(GRID.points()))
    assert len(pickle.dumps(task)) < 100_000  # the theory ships 15 × 15 eigenvectors, for the full second moments
    with _client(2, processes=True) as client:
        run_sweep(sweep, tmp_path / "p.nc", client=client, progress=False)
    assert_same(read_dataset(tmp_path / "p.nc"), reference)


@pytest.mark.slow
def test_a_point_is_simulate_model_with_its_seed_and_predict_model_at_it(sweep, reference):
    from amsgd.diffusion.theory.model_predictions import predict_model
    from amsgd.simulate.model_engine import simulate_model, start_points

    ds = reference
    assert ds.attrs["start"] == "init" and "distribution" not in ds.coords
    assert json.loads(ds.attrs["theory"])["point"]["parameters"] == 15
    for n, point in enumerate(GRID.points()):
        problem = sweep.point_problem(point)
        at = ds.sel(eta=point.eta, mu=point.mu, workers=point.delay)
        assert int(at["point"]) == n
        direct = simulate_model(problem, 300, 6, rng=np.random.SeedSequence(4, spawn_key=(n,)), record_every=30,
                                progress=False)  # fmt: skip
        assert float(at["final_train_loss"]) == direct.final("train_loss").mean
        assert float(at["stationary_loss_ci_high"]) == direct.stationary_loss().ci_high
        assert float(at["final_validation_accuracy"]) == direct.final("validation_accuracy").mean
        np.testing.assert_array_equal(at["train_loss_mean"].values, direct.mean_curve("train_loss"))
        theory = predict_model(problem)  # everything derived again, at the point
        assert int(at["full_second_moments"]) == 1 == (theory.full_moments is not None)  # 15 parameters
        assert int(at["mean_square_stable"]) == theory.mean_square_stable
        assert int(at["tau_max_mean_square"]) == theory.mean_square_delay[0]
        assert int(at["tau_max"]) == int(np.ceil(theory.critical.min())) - 1
        assert int(at["mean_stable"]) == (point.delay - 1 < theory.critical.min())
        assert float(at["loss_floor"]) == pytest.approx(theory.stationary_excess, rel=1e-9)
        assert float(at["predicted_loss"]) == pytest.approx(theory.point.loss + theory.stationary_excess, rel=1e-9)
        offsets = theory.point.mean_square_offsets(start_points(problem, 8, rng=0))
        after = theory.excess_after(300, point.eta, point.mu, point.delay - 1, offsets, floor=theory.stationary_excess)
        assert float(at["predicted_final_loss"]) == pytest.approx(theory.point.loss + after, rel=1e-9)
    # the theory against the runs: where it predicts mean-square stability the predicted stationary and
    # final losses lie in the runs' 95% intervals; where it does not, the runs' loss is far above that of
    # one worker
    stable = ds["mean_square_stable"].values == 1
    assert stable.sum() == 3 and not stable[0, 1, 1]  # μ = 0.9 with 3 workers is beyond the boundary
    for measured, predicted in (("stationary_loss", "predicted_loss"), ("final_train_loss", "predicted_final_loss")):
        low, high = ds[f"{measured}_ci_low"].values[stable], ds[f"{measured}_ci_high"].values[stable]
        assert np.all((low <= ds[predicted].values[stable]) & (ds[predicted].values[stable] <= high)), measured
    beyond, one_worker = (ds["stationary_loss"].sel(eta=0.2, mu=0.9, workers=m).item() for m in (3, 1))
    assert beyond > 1.5 * one_worker and np.isinf(ds["predicted_loss"].sel(eta=0.2, mu=0.9, workers=3).item())


@pytest.mark.slow
def test_least_squares_point_has_no_accuracy():
    x, _ = blobs()
    rng = np.random.default_rng(1)
    problem = ModelProblem("least-squares", split_data("r", x, x @ np.ones(4) + rng.normal(size=x.shape[0]),
                                                        classification=False), eta=0.05, batch=8)  # fmt: skip
    sweep = Sweep(problem, SweepGrid((), (0.05,), (0.5,), "tau", (2,)), steps=200, replicates=4, seed=2)
    record = compute_point(sweep.task(next(sweep.grid.points())))
    assert set(record) == set(sweep.fields) and "final_validation_accuracy" not in record
    json.dumps(record)  # JSON-ready
    assert record["mean_square_stable"] == 1 and record["loss_floor"] > 0


@pytest.mark.slow
def test_a_small_model_point_is_decided_by_the_full_second_moments_as_predict_does():
    """Least squares on digits (65 parameters) at η 5e-3, μ 0.9: the diagonal theory calls τ = 0 and 2
    mean-square stable (floors 0.085 and 0.153), the full second moments do not, and every run diverges;
    at μ 0.5 both are stable. The point's numbers are predict_model's, by the theory that decides."""
    from amsgd.core.models import load_data
    from amsgd.diffusion.theory.model_predictions import ModelPredictions, predict_model

    problem = ModelProblem("least-squares", load_data("digits", classification=False), eta=0.005)
    sweep = Sweep(problem, SweepGrid((), (0.005,), (0.5, 0.9), "tau", (0, 2)), steps=3000, replicates=8, seed=3)
    minimum = predict_model(problem).point  # predict_model's point: the same at every η, μ and delay
    for point in sweep.grid.points():
        task = sweep.task(point)
        record, theory = compute_point(task), ModelPredictions(task.problem, minimum)
        assert record["full_second_moments"] == 1 and theory.second_moments_theory == "full second moments"
        assert record["mean_square_stable"] == theory.mean_square_stable == (point.mu == 0.5)
        assert record["loss_floor"] == pytest.approx(theory.stationary_excess, rel=1e-9)
        assert record["tau_max_mean_square"] == (-1 if theory.mean_square_delay[0] is None else theory.mean_square_delay[0])
        if point.mu == 0.9:
            assert theory.mean_square.stable and np.isfinite(theory.floor.value)  # the diagonal theory's verdict
            assert record["diverged_fraction"] == 1.0 and math.isinf(record["predicted_loss"])
        else:
            assert record["diverged_fraction"] == 0.0 and record["tau_max_mean_square"] >= 2


@pytest.mark.slow
def test_a_step_too_small_to_resolve_costs_its_own_point_only():
    """The model's minimum, Hessian and noise do not depend on η: a grid whose smallest η is too small for
    double precision (the sweep's base problem) has predictions at every other η."""
    x, _ = blobs()
    rng = np.random.default_rng(1)
    problem = ModelProblem("least-squares", split_data("r", x, x @ np.ones(4) + rng.normal(size=x.shape[0]),
                                                        classification=False), eta=1e-11, batch=8)  # fmt: skip
    sweep = Sweep(problem, SweepGrid((), (1e-11, 0.05), (0.5,), "tau", (0,)), steps=200, replicates=4, seed=2)
    tiny, usable = (compute_point(sweep.task(point)) for point in sweep.grid.points())
    assert math.isnan(tiny["loss_floor"]) and tiny["tau_max"] == -1
    assert usable["loss_floor"] > 0 and usable["tau_max"] > 0


def test_a_point_whose_top_modes_are_all_flat_has_no_delay_limit_not_none(sweep, monkeypatch):
    """``tau_max`` tells "no limit" (every top mode flat, τ_c infinite) from "none" (−1)."""
    from amsgd.diffusion.theory.model_predictions import ModelPredictions
    from amsgd.sweep.points import NO_DELAY_LIMIT, model_predictions

    task = sweep.task(next(GRID.points()))
    problem = sweep.point_problem(next(GRID.points()))
    limited = model_predictions(task.theory, problem, task.steps)
    assert limited["tau_max"] >= 0
    monkeypatch.setattr(ModelPredictions, "critical", property(lambda self: np.full(self.point.top, np.inf)))
    unlimited = model_predictions(task.theory, problem, task.steps)
    assert unlimited["tau_max"] == NO_DELAY_LIMIT != -1
    assert unlimited["mean_stable"] == 1
