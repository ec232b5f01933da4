"""The theory at a model's minimum against simulation: loss floors, stability against divergence,
the command line of models (simulate, derive, advise, validate --preset paper-dnn)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from test_models import problem

from amsgd.core.delays import ConstantDelay
from amsgd.core.models import ModelProblem, load_data, split_data
from amsgd.diffusion.theory.model_point import TOP_MODES
from amsgd.diffusion.theory.model_predictions import predict_model
from amsgd.simulate.model_engine import simulate_model

from helpers.cli import run_in_process

#: Model tolerance of the loss floor, relative: the theory keeps the variances of the per-example
#: Hessian's entries in the eigenbasis and drops their cross-covariances (measured within 0.5% on
#: these problems; the statistical part of the tolerance is the CI of the simulation).
FLOOR_TOLERANCE = 0.01


@pytest.mark.parametrize(
    "model, eta, mu, tau, batch",
    [("least-squares", 0.05, 0.9, 0, 8), ("least-squares", 0.1, 0.0, 2, 16), ("logistic", 0.1, 0.5, 1, 8),
     ("logistic", 0.05, 0.9, 2, 32), ("least-squares", 0.1, -0.3, 2, 8), ("logistic", 0.1, -0.3, 1, 8)],
)  # fmt: skip
@pytest.mark.slow
def test_loss_floor_matches_simulation(model, eta, mu, tau, batch):
    p = problem(model, eta=eta, mu=mu, delay=ConstantDelay(tau), batch=batch)
    theory = predict_model(p)
    steps = int(max(20 * theory.relaxation_iterations, 3000))
    run = simulate_model(p, steps, 128, rng=3, start=theory.point.x, record_every=max(1, steps // 500), progress=False)
    est = run.stationary_loss()
    excess, half = est.mean - theory.point.loss, est.ci_high - est.mean
    assert run.diverged_fraction == 0
    assert abs(excess - theory.floor.value) <= half + FLOOR_TOLERANCE * theory.floor.value, (excess, theory.floor)


def _diabetes() -> ModelProblem:
    b = load_diabetes()  # bundled with scikit-learn
    target = (b.target - b.target.mean()) / b.target.std()
    return ModelProblem("least-squares", split_data("diabetes", b.data, target, classification=False),
                        eta=0.01, mu=0.9, batch=32, l2=1e-2)  # fmt: skip


def _synthetic(tmp_path) -> ModelProblem:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 4))
    np.savez(tmp_path / "regression.npz", X=x, y=x @ rng.normal(size=4) + 0.5 * rng.normal(size=300))
    data = load_data(str(tmp_path / "regression.npz"), classification=False)
    return ModelProblem("least-squares", data, eta=0.02, mu=0.9, batch=8, l2=1e-2)


@pytest.mark.parametrize("make", [lambda tmp: _diabetes(), _synthetic])
@pytest.mark.slow
def test_predicted_stability_against_simulated_divergence(make, tmp_path):
    """At the largest mean-square-stable delay no run diverges; at 1.5 τ* (mean-unstable) runs blow up."""
    p = make(tmp_path)
    theory = predict_model(p)
    stable_tau = theory.mean_square.tau_max
    unstable_tau = int(np.ceil(1.5 * theory.critical.min()))
    assert stable_tau is not None and unstable_tau > stable_tau
    calm = simulate_model(p.replace(delay=ConstantDelay(stable_tau)), 3000, 32, rng=5, start=theory.point.x,
                          progress=False)  # fmt: skip
    wild = simulate_model(p.replace(delay=ConstantDelay(unstable_tau)), 3000, 32, rng=5, start=theory.point.x,
                          progress=False)  # fmt: skip
    assert calm.diverged_fraction == 0.0
    assert wild.diverged_fraction >= 0.9


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_in_process(args)


def _blobs_csv(tmp_path) -> str:
    from test_models import blobs

    x, y = blobs()
    path = tmp_path / "blobs.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",")
    return str(path)


@pytest.mark.slow
def test_advise_on_a_users_data(tmp_path):
    data = _blobs_csv(tmp_path)
    out = _cli("advise", "--model", "logistic", "--data", data, "--eta", "0.5", "--workers", "1,4,16",
               "--format", "json", "--plot", str(tmp_path / "advice.png"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    advice = json.loads(out.stdout)
    assert len(advice["hessian_top"]) == TOP_MODES < 15  # the top modes of the 15 parameters (3 classes, 4 features)
    assert advice["steps"] == 10_000 and advice["problem"]["mu"] is None  # the budget ranked for; μ: the grid's
    rows = advice["advice"]
    assert [r["workers"] for r in rows] == [1, 4, 16]
    for r in rows:  # the budget's best momentum is one of the stable ones
        assert r["best_mu_loss"] is None or r["best_mu_loss"] <= r["largest_stable_mu"]
    assert rows[0]["best_mu_loss"] is not None  # one worker at η 0.5 leaves stable momenta to rank
    largest = [r["largest_stable_mu"] or -1 for r in rows]
    assert largest == sorted(largest, reverse=True)  # more workers never allow more momentum
    assert (tmp_path / "advice.png").stat().st_size > 10_000
    table = _cli("advise", "--model", "logistic", "--data", data, "--eta", "0.5", "--workers", "1,4")
    assert table.returncode == 0 and "largest stable mu" in table.stdout


@pytest.mark.slow
def test_simulate_and_derive_a_model(tmp_path):
    data = _blobs_csv(tmp_path)
    sim = _cli("simulate", "--model", "mlp", "--hidden", "4", "--data", data, "--steps", "200", "--replicates", "4",
               "--seed", "1", "--delay", "ps:3", "--window-start", "150", "--out", str(tmp_path / "run.nc"))  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    summary = json.loads(sim.stdout)
    assert summary["alive"] == 4 and 0 < summary["final"]["validation_accuracy"]["mean"] <= 1
    assert summary["delay"]["measured_max"] >= 2
    assert summary["stationary_loss"]["window_start"] == 150  # refused before as "for --model pca only"
    derive = _cli("derive", "--model", "logistic", "--data", data, "--eta", "0.5", "--tradeoff-workers", "1,8")
    assert derive.returncode == 0, derive.stderr
    out = json.loads(derive.stdout)
    assert {"point", "stability", "stationary_loss", "rate_per_iteration", "tradeoff"} <= set(out)
    assert out["stability"]["mean_square"]["tau_max"] <= out["stability"]["tau_max"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--model", "svm"], "invalid choice"),
        (["simulate", "--model", "logistic", "--data", "missing.npz"], "does not exist"),
        (["integrate", "--model", "logistic", "--limit", "sdde"], "are for streaming PCA"),
        (["derive", "--model", "logistic", "--format", "markdown"], "models give json"),
        (["simulate", "--model", "logistic", "--start", "e1"], "apply to --model pca only"),
        (["simulate", "--model", "logistic", "--batch", "0"], "batch must be a positive integer"),
    ],
)
@pytest.mark.slow
def test_bad_model_options_are_one_line_and_exit_2(args, message):
    out = _cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) <= 2 and "Traceback" not in out.stderr


@pytest.mark.slow
def test_paper_dnn_report_on_a_small_budget(tmp_path):
    from amsgd.figures.paper_dnn import paper_dnn_figure
    from amsgd.validation.paper_dnn import DnnSetup, run_paper_dnn
    from amsgd.validation.paper_dnn_report import write_dnn_report

    setup = DnnSetup(steps=150, replicates=4, workers=(1, 8), mus=(0.3, 0.9), delays=("workers",), hidden=8,
                     protocols=("fixed-eta",))  # fmt: skip
    report = run_paper_dnn(setup, runs=tmp_path / "runs.nc", progress=False)
    assert len(report.cells) == 4 and len(report.checks) == 2 and report.runs["computed"] == 4
    # at η = 0.2 the theory calls μ = 0.9 unstable with 8 workers and the run agrees: its loss is the worst
    cells = {(c.workers, c.mu): c for c in report.cells}
    assert not cells[(8, 0.9)].stable and cells[(1, 0.9)].stable
    assert np.nanmean(cells[(8, 0.9)].train_loss) > np.nanmean(cells[(8, 0.3)].train_loss)
    paths = write_dnn_report(report, tmp_path, [paper_dnn_figure(report, tmp_path / "paper-dnn.png")])
    checks = json.loads(paths[0].read_text())
    assert {c["name"] for c in checks} == {"best-mu/fixed-eta/workers/M=1", "best-mu/fixed-eta/workers/M=8"}
    assert "Best momentum per worker count" in paths[2].read_text()


def test_an_unstable_mode_without_noise_has_no_floor_and_no_warning(recwarn):
    """A mode without gradient noise (the weight of a constant feature, curved by the ridge alone) whose
    mean diverges: every part of the floor is infinite (0 · inf was NaN, with a RuntimeWarning)."""
    import dataclasses

    from amsgd.diffusion.theory.model_point import find_minimum, model_point
    from amsgd.diffusion.theory.model_predictions import loss_floor

    p = problem("least-squares")
    point = model_point(p, find_minimum(p))
    noiseless = dataclasses.replace(point, additive=np.where(np.arange(point.additive.size) == 0, 0.0, point.additive))
    floor = loss_floor(noiseless, 4.0 / point.eigenvalues[0], 0.0, 0)  # η λ_max = 4: the stiffest mode diverges
    assert floor.value == floor.additive_linear == np.inf
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_flat_mode_does_not_limit_the_delay():
    """Logistic regression on three features whose label is the sign of the first: shifting every
    class's intercept together leaves the loss unchanged, an eigenvalue of rounding size (either sign)
    among the top modes. The mean boundary is the curved modes' own, agreeing with the second
    moments', not τ* = −1 from the flat mode."""
    from amsgd.diffusion.theory.stability import critical_delay

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    theory = predict_model(ModelProblem("logistic", split_data("sign", x, (x[:, 0] > 0).astype(int)), eta=0.05,
                                        mu=0.9))  # fmt: skip
    point = theory.point
    top, flat = point.eigenvalues[: point.top], point.flat()[: point.top]
    assert flat.any() and np.all(np.abs(top[flat]) < 1e-12)
    assert np.all(np.isinf(theory.critical[flat]))
    boundary = critical_delay(top[~flat], 0.05, 0.9).min()
    stability = theory.to_dict(["stability"])["stability"]
    assert stability["tau_max"] == int(np.ceil(boundary)) - 1 >= 0 and not flat[stability["limiting_mode"]]
    assert stability["tau_max"] == stability["mean_square"]["tau_max"]


def test_an_unstable_cell_has_no_relaxation_time():
    """Least squares at η = 10: the slowest mode's mean grows (rate < 0), so no relaxation time (null),
    where 1/rate used to report a negative one; at η = 0.05 it is 1/rate."""
    unstable = predict_model(problem("least-squares", eta=10.0, mu=0.0))
    assert unstable.rate < 0 and unstable.to_dict(["relaxation_iterations"])["relaxation_iterations"] is None
    stable = predict_model(problem("least-squares", eta=0.05, mu=0.0))
    assert stable.relaxation_iterations > 0 and np.isfinite(stable.relaxation_iterations)


@pytest.mark.slow
def test_a_breakdown_is_not_measured_against_runs_that_are_unstable_themselves(tmp_path):
    """Logistic regression at η = 5: no constant delay is mean-square stable, and the given cell is not
    either (feedback radius about 2); the breakdown at ⌈1.5 τ_c⌉ was measured as a loss ratio to the
    given cell's runs, called "bounded". With no bounded runs the diverged fraction alone decides."""
    data = _blobs_csv(tmp_path)
    out = _cli("validate", "--model", "logistic", "--data", data, "--eta", "5", "--replicates", "6", "--steps", "200",
               "--out", str(tmp_path / "v"), "-q")  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    checks = report["checks"] if isinstance(report, dict) else report
    breakdown = [c for c in checks if c["name"].startswith("breakdown-at-")]
    assert len(breakdown) == 1
    assert breakdown[0]["unit"] == "diverged fraction" and breakdown[0]["reference_excess_loss"] is None


@pytest.mark.parametrize(("tau", "noted"), [(2, False), (6, True)])
def test_a_bounded_gradient_floor_near_the_delay_boundary_says_it_overstates(tau, noted):
    """Logistic regression at η 0.5, μ 0 (τ_c 7.4): at τ = 2 the floor lies within 3% of the runs'
    loss and says nothing; at τ = 6 (0.81 τ_c) the stiffest mode's gain has grown where the bounded
    softmax gradient caps the runs' excursions, the floor is more than 20% above their interval, and
    ``stationary_loss.note`` says so."""
    p = problem("logistic", eta=0.5, mu=0.0, delay=ConstantDelay(tau))
    theory = predict_model(p)
    note = theory.to_dict(["stationary_loss"])["stationary_loss"].get("note")
    run = simulate_model(p, 6000, 32, rng=2, record_every=10, progress=False).stationary_loss()
    low, high = run.ci_low - theory.point.loss, run.ci_high - theory.point.loss
    from amsgd.validation.model_prediction import predict as validation_prediction

    said = validation_prediction(p)[1].notes  # what validate --model's report says beside its floor check
    if noted:
        assert note is not None and "0.81 of the mean boundary" in note and note in said
        assert theory.stationary_excess > 1.2 * high
    else:
        assert note is None and not any("mean boundary" in n for n in said)
        assert 0.97 * low <= theory.stationary_excess <= 1.03 * high


def test_advise_names_the_rows_whose_floor_a_bounded_gradient_overstates():
    """The advice table of the same model names the worker counts whose best momentum's floor lies
    beyond half of its τ_c (4 workers at μ 0 and η 0.5: τ = 3 is 0.40 τ_c, 8 workers: 0.94), in its
    JSON and its table's last line; least squares, whose gradient is not bounded, gets no note."""
    from amsgd.advise import advise

    advice = advise(problem("logistic", eta=0.5), workers=(4, 8), mus=(0.0,))
    assert advice.floor_note.startswith("the floors at 8 (0.94 tau_c) workers: from half of tau_c on")
    assert advice.to_dict()["floor_note"] == advice.floor_note and advice.table().endswith(f"# {advice.floor_note}\n")
    assert advise(problem("least-squares", eta=0.05), workers=(4, 8), mus=(0.0,)).floor_note is None


def test_derive_gives_the_mean_square_worker_count_that_advise_reports():
    """``stability.max_workers`` is the mean dynamics' (τ* + 1); the mean-square count, stricter, is
    ``stability.mean_square.max_workers``, the ``max_workers`` of ``advise``'s grid (least squares at
    η 0.3, μ 0: 5 and 4; the cell of 5 workers is mean-square unstable)."""
    from amsgd.advise import advise

    p = problem("least-squares", eta=0.3, mu=0.0)
    stability = predict_model(p).to_dict(["stability"])["stability"]
    grid = advise(p, workers=(1,), mus=(0.0,)).grid
    assert stability["mean_square"]["max_workers"] == grid.max_workers[0] == stability["mean_square"]["tau_max"] + 1
    assert stability["max_workers"] == grid.max_workers_mean[0] > grid.max_workers[0]
