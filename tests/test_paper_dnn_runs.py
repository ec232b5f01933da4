"""The paper-dnn cells on the sweep machinery (:mod:`amsgd.validation.paper_dnn_runs`): the same
numbers as a plain loop over the cells, paired seeds, the same Dataset after an interruption, and a
stored file of another setup refused."""

from __future__ import annotations

import numpy as np
import pytest

from amsgd import ProblemError
from amsgd.core.models import ModelProblem, load_data
from amsgd.sweep.run import run_sweep
from amsgd.validation.paper_dnn_runs import DnnRuns, DnnSetup, delay_law

from helpers.datasets import Interrupted, assert_same

SETUP = DnnSetup(steps=60, replicates=3, hidden=8, workers=(1, 4), mus=(0.0, 0.5), protocols=("fixed-eta", "fixed-effective"))


@pytest.fixture(scope="module")
def runs() -> DnnRuns:
    base = ModelProblem("mlp", load_data("digits"), eta=SETUP.eta, batch=SETUP.batch, l2=SETUP.l2, hidden=SETUP.hidden)
    return DnnRuns(SETUP, base)


@pytest.fixture(scope="module")
def client():
    from amsgd.sweep.cluster import dask_client

    with dask_client(n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def reference(runs, client, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "runs.nc"
    return run_sweep(runs, out, client=client, progress=False).dataset


def test_cells_are_numbered_in_c_order_with_paired_seeds(runs):
    cells = SETUP.cells()
    assert len(cells) == runs.size == 2 * 2 * 2 * 2
    assert cells[0] == ("fixed-eta", "workers", 1, 0.0) and cells[-1] == ("fixed-effective", "ps", 4, 0.5)
    tasks = runs.tasks(range(runs.size))
    for task, (protocol, delay, m, mu) in zip(tasks, cells, strict=True):
        assert task.seed == SETUP.seed + m  # every μ, protocol and delay kind of M workers: one stream
        assert task.problem.mu == mu and task.problem.eta == pytest.approx(SETUP.eta_for(protocol, mu))
        assert task.problem.delay == delay_law(delay, m)
    assert SETUP.eta_for("fixed-effective", 0.5) == pytest.approx(0.5 * SETUP.effective_eta)


@pytest.mark.slow
def test_two_threads_give_the_numbers_of_a_plain_loop_over_the_cells(runs, reference):
    from amsgd.simulate.model_engine import simulate_model

    for protocol, delay, m, mu in SETUP.cells():
        problem = runs.base.replace(eta=SETUP.eta_for(protocol, mu), mu=mu, delay=delay_law(delay, m))
        run = simulate_model(problem, SETUP.steps, SETUP.replicates, rng=SETUP.seed + m, progress=False)
        at = reference.sel(protocol=protocol, delay=delay, workers=m, mu=mu)
        for name in ("train_loss", "validation_loss", "validation_accuracy"):
            assert at[name].values.tobytes() == run.values[name][:, -1].tobytes(), (protocol, delay, m, mu, name)
        assert float(at["diverged_fraction"]) == run.diverged_fraction
    assert reference["eta"].sel(protocol="fixed-effective", mu=0.5) == pytest.approx(0.5 * SETUP.effective_eta)


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_dataset(runs, reference, client, tmp_path):
    out = tmp_path / "runs.nc"
    stored = []

    def stop(index: int, record: dict) -> None:
        stored.append(index)
        if len(stored) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_sweep(runs, out, client=client, progress=False, on_point=stop)
    assert not out.exists() and len(list((tmp_path / "runs.nc.parts").glob("*.json"))) >= 3
    outcome = run_sweep(runs, out, resume=True, client=client, progress=False)
    assert outcome.reused >= 3 and outcome.computed == runs.size - outcome.reused
    assert_same(outcome.dataset, reference)
    again = run_sweep(runs, out, resume=True, client=client, progress=False)  # finished: nothing computed
    assert again.computed == 0
    assert_same(again.dataset, reference)


@pytest.mark.slow
def test_a_stored_file_of_another_setup_is_refused(runs, reference, client, tmp_path):
    from dataclasses import replace

    out = tmp_path / "runs.nc"
    from amsgd.sweep.dataset import write_dataset

    write_dataset(reference, out)
    other = DnnRuns(replace(SETUP, seed=SETUP.seed + 1), runs.base)
    with pytest.raises(ProblemError, match="differs in setup"):
        run_sweep(other, out, resume=True, client=client, progress=False)


@pytest.mark.slow
def test_the_validation_reuses_a_finished_runs_file_and_says_so(runs, reference, tmp_path):
    from amsgd.sweep.dataset import write_dataset
    from amsgd.validation.paper_dnn import run_paper_dnn
    from amsgd.validation.paper_dnn_report import write_dnn_report

    write_dataset(reference, tmp_path / "runs.nc")
    report = run_paper_dnn(SETUP, runs=tmp_path / "runs.nc", progress=False)
    assert report.runs["computed"] == 0 and report.runs["reused"] == runs.size
    for cell in report.cells:  # every cell carries its own runs, predicted before them
        at = reference.sel(protocol=cell.protocol, delay=cell.delay, workers=cell.workers, mu=cell.mu)
        assert cell.train_loss.tobytes() == at["train_loss"].values.tobytes()
        assert cell.val_accuracy.tobytes() == at["validation_accuracy"].values.tobytes()
    text = write_dnn_report(report, tmp_path, [])[2].read_text()
    assert f"{runs.size} of the {runs.size} cells' runs were reused from runs.nc" in text


def test_a_file_that_is_not_the_runs_is_refused(runs, tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not netcdf")
    with pytest.raises(ProblemError, match="is not a NetCDF file written by amsgd validate --preset paper-dnn"):
        runs.read(junk)
    import xarray as xr

    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(ProblemError, match="not the runs of amsgd validate --preset paper-dnn"):
        runs.read(other)


def test_a_trend_inside_the_ties_is_not_called_a_fall():
    """fixed-effective with the event-driven server measured best μ 0, 0, 0, −0.3 with μ = 0 not
    significantly worse than the best at M = 8: no trend (the report said the best momentum falls); the
    poster's fixed-η best momenta are quoted beside the fixed-η protocol only."""
    from types import SimpleNamespace

    from amsgd.validation.paper_dnn_report import findings

    def row(m, best, near):
        return {"workers": m, "train_loss": {"best_mu": best, "not_worse": near}}

    rows = {"fixed-eta": [row(1, 0.7, [0.7]), row(2, 0.7, [0.7]), row(4, 0.7, [0.7]), row(8, 0.5, [0.5])],
            "fixed-effective": [row(1, 0.0, [0.0]), row(2, 0.0, [0.0]), row(4, 0.0, [0.0]), row(8, -0.3, [-0.3, 0.0])]}
    report = SimpleNamespace(setup=SimpleNamespace(protocols=("fixed-eta", "fixed-effective"), delays=("ps",)),
                             group=lambda protocol, delay: [], best=lambda protocol, delay: rows[protocol])  # fmt: skip
    eta, effective = findings(report)
    assert "(poster: 0.9, 0.7, 0.7, 0.5) — the best momentum falls" in eta
    assert "poster" not in effective and "the best momentum shows no trend the runs can tell" in effective
    # best μ 0, −0.3, 0, −0.3 with −0.3 among the best at M = 1 and M = 8: no trend either (it read "does
    # not fall"); with the sets apart and the estimates rising, it does not fall
    rows["fixed-effective"] = [row(1, 0.0, [-0.3, 0.0, 0.3]), row(2, -0.3, [-0.3]), row(4, 0.0, [0.0]),
                               row(8, -0.3, [-0.3])]  # fmt: skip
    rows["fixed-eta"] = [row(1, 0.0, [0.0]), row(2, 0.3, [0.3]), row(4, 0.3, [0.3]), row(8, 0.5, [0.5])]
    eta, effective = findings(report)
    assert "shows no trend the runs can tell" in effective and "the best momentum does not fall" in eta


def test_the_measured_best_are_the_momenta_the_paired_runs_cannot_tell_apart():
    """A μ whose loss is 0.6% above the best on every replicate is worse, however
    small the gap; one whose paired differences scatter about zero is not; a diverged replicate makes a μ
    worse. (A 1% rule accepted the first, where the runs reject it.)"""
    from amsgd.validation.paper_dnn import _best_with_interval

    rng = np.random.default_rng(4)
    base = 0.07 + 0.01 * rng.standard_normal(32)  # the replicates' shared part: the same minibatches
    best = base
    consistent = base * 1.006 + 0.0001 * rng.standard_normal(32)
    noise = rng.standard_normal(32)
    scattered = base + 0.002 * (noise - noise.mean()) + 0.0002  # a mean excess of 0.3%, well inside its noise
    diverged = base.copy()
    diverged[3] = np.inf
    out = _best_with_interval(np.array([0.0, 0.5, 0.7, 0.9]), np.stack([best, consistent, scattered, diverged]), seed=1)
    assert out["best_mu"] == 0.0 and out["not_worse"] == [0.0, 0.7]


def test_a_diverged_run_is_the_worst_accuracy_not_the_best():
    """Accuracy is ranked with its sign turned: a diverged replicate (NaN) must be the worst outcome
    after the turn (it was +inf before it, hence −inf after: the best)."""
    from amsgd.validation.paper_dnn import Cell, best_table

    def cell(mu: float, accuracy: np.ndarray) -> Cell:
        loss = np.full(accuracy.size, 0.1)
        return Cell("fixed-eta", "workers", 1, mu, 0.1, True, True, 0.01, 0.01, loss, loss, accuracy, 0.0)

    steady = np.full(8, 0.97) + 0.001 * np.arange(8)
    wild = np.full(8, 0.5)
    wild[0] = np.nan
    row = best_table([cell(0.5, steady), cell(0.9, wild)])[0]["validation_accuracy"]
    assert row["best_mu"] == 0.5 and row["share"]["0.5"] == 1.0


def test_the_set_of_best_momenta_leaves_a_true_best_out_at_most_at_its_level():
    """Six equal momenta, paired runs: a given one is left out of the set of best momenta in at most
    LEVEL of trials (a confidence set for the best). The bootstrap test against the lowest mean alone
    left it out in about 10% (the sample's winner is low by selection, the 1% percentile of 32 runs
    too narrow)."""
    from scipy import stats

    from amsgd.validation.paper_dnn import LEVEL, _best_with_interval

    rng = np.random.default_rng(5)
    mus, trials, out = np.array([-0.3, 0.0, 0.3, 0.5, 0.7, 0.9]), 400, 0
    for t in range(trials):
        values = 0.07 + 0.01 * rng.standard_normal(32) + 0.003 * rng.standard_normal((6, 32))
        out += -0.3 not in _best_with_interval(mus, values, seed=t)["not_worse"]
    assert stats.binomtest(out, trials, LEVEL, alternative="greater").pvalue > 0.01, out / trials


def test_one_worker_is_checked_once_per_protocol():
    """With one worker the round-robin and the event-driven server are the same run: it was checked twice."""
    from types import SimpleNamespace

    from amsgd.validation.paper_dnn import best_mu_checks

    rows = [{"workers": m, "predicted_best_mu": 0.5, "train_loss": {"best_mu": 0.5, "not_worse": [0.5],
                                                                   "ci_low": 0.5, "ci_high": 0.5}} for m in (1, 8)]  # fmt: skip
    report = SimpleNamespace(setup=SimpleNamespace(protocols=("fixed-eta", "fixed-effective"), delays=("workers", "ps")),
                             best=lambda protocol, delay: rows)  # fmt: skip
    names = [c.name for c in best_mu_checks(report)]
    assert len(names) == 6 and "best-mu/fixed-eta/ps/M=1" not in names and "best-mu/fixed-eta/workers/M=1" in names


@pytest.mark.parametrize("stored", ["nothing", "a cell", "the runs"])
def test_an_interrupted_validation_says_what_it_kept(tmp_path, monkeypatch, capsys, stored):
    """Interrupted before any cell had finished (during the prediction), the command said "the finished
    cells are kept in DIR/runs.nc.parts/" of a folder that held no such thing; it now says what there is."""
    import amsgd.validation.paper_dnn
    from amsgd.cli import main
    from amsgd.cli.status import INTERRUPTED

    out = tmp_path / "d"

    def interrupted(setup, runs, **options):
        if stored == "a cell":
            parts = runs.with_name(runs.name + ".parts")
            parts.mkdir()
            (parts / "point-0000000.json").write_text("{}")
        elif stored == "the runs":
            runs.write_bytes(b"stored")
        raise KeyboardInterrupt

    monkeypatch.setattr(amsgd.validation.paper_dnn, "run_paper_dnn", interrupted)
    assert main(["validate", "--preset", "paper-dnn", "--out", str(out), "-q"]) == INTERRUPTED
    said = capsys.readouterr().err
    expected = {"nothing": "no cell had finished; rerun: amsgd validate --preset paper-dnn",
                "a cell": f"the finished cells are kept in {out}/runs.nc.parts/; rerun to continue from them: amsgd",
                "the runs": f"the runs are stored in {out}/runs.nc; rerun to write the report from them: amsgd"}  # fmt: skip
    assert expected[stored] in said, said


def test_an_interrupted_validation_on_a_scheduler_says_to_rerun_on_it(tmp_path, monkeypatch, capsys):
    """The rerun line left out --scheduler, so following it ran on a local cluster; the report's own
    command (which regenerates its numbers, wherever) still leaves the cluster out."""
    import amsgd.validation.paper_dnn
    from amsgd.cli import main
    from amsgd.cli.status import INTERRUPTED

    def interrupted(setup, runs, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(amsgd.validation.paper_dnn, "run_paper_dnn", interrupted)
    out = tmp_path / "d"
    args = ["validate", "--preset", "paper-dnn", "--out", str(out), "--scheduler", "tcp://10.0.0.1:8786",
            "--connect-timeout", "5", "-q"]  # fmt: skip
    assert main(args) == INTERRUPTED
    said = capsys.readouterr().err
    assert f"rerun: amsgd validate --preset paper-dnn --out {out} --scheduler tcp://10.0.0.1:8786 --connect-timeout 5" in said


def test_the_scheduler_is_connected_to_first_unless_the_runs_are_there(tmp_path, monkeypatch):
    """With --scheduler the cluster is reached before the minutes of prediction (a wrong address was
    refused only after them); a finished runs file needs no cluster, and its rerun does not reach one."""
    import contextlib

    import amsgd.diffusion.theory.model_predictions
    import amsgd.validation.paper_dnn as paper_dnn

    class Predicted(Exception):
        pass

    def predict_model(*args, **kwargs):
        raise Predicted

    @contextlib.contextmanager
    def unreachable(*args, **kwargs):
        raise ProblemError("no Dask scheduler answered")
        yield

    monkeypatch.setattr(amsgd.diffusion.theory.model_predictions, "predict_model", predict_model)
    monkeypatch.setattr(paper_dnn, "dask_client", unreachable)
    runs = tmp_path / "runs.nc"
    with pytest.raises(ProblemError, match="no Dask scheduler answered"):
        paper_dnn.run_paper_dnn(runs=runs, scheduler="tcp://127.0.0.1:1")
    runs.write_bytes(b"a finished runs file")
    with pytest.raises(Predicted):
        paper_dnn.run_paper_dnn(runs=runs, scheduler="tcp://127.0.0.1:1")
