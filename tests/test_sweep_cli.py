"""``amsgd sweep``: against a scheduler and workers started with the dask command line; bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from amsgd import Problem, parse_delay
from amsgd.cli import main
from amsgd.simulate import simulate
from amsgd.sweep.dataset import read_dataset


def _dask_command(name: str) -> list[str]:
    """``dask NAME`` when the dask CLI is installed, else the older ``dask-NAME`` script; the scripts
    beside this interpreter first (a virtual environment that is not activated is not on PATH)."""
    here = os.path.dirname(sys.executable)
    for script, args in (("dask", [name]), (f"dask-{name}", [])):
        found = shutil.which(script, path=here) or shutil.which(script)
        if found:
            return [found, *args]
    pytest.skip("no dask command-line tools")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group this test started (a worker's nanny and its worker go together)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_sweep_against_dask_cli_cluster(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    logs = open(tmp_path / "dask.log", "wb")
    procs: list[subprocess.Popen] = []
    start = dict(stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        procs.append(subprocess.Popen(
            [*_dask_command("scheduler"), "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)], **start
        ))  # fmt: skip
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline and procs[0].poll() is None, "the scheduler did not start"
            time.sleep(0.2)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [*_dask_command("worker"), "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                 "--no-dashboard"], **start,
            ))  # fmt: skip
        from distributed import Client

        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)

        out = tmp_path / "grid.nc"
        argv = [sys.executable, "-m", "amsgd", "sweep", "--spectrum", "3,2,1", "--eta", "2e-3",
                "--mu", "0.5,0.8", "--workers", "1,4,16", "--steps", "800", "--replicates", "20",
                "--seed", "9", "--out", str(out), "--scheduler", address]  # fmt: skip
        run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        # off a terminal: at most a progress line every 10 s (a slow cluster may take that), nothing else
        assert all(line.startswith("amsgd sweep: ") and "warning" not in line for line in run.stderr.splitlines())
        summary = json.loads(run.stdout)
        assert summary["points"] == summary["computed"] == 6
        assert summary["dims"] == {"eta": 1, "mu": 2, "workers": 3}
        assert all(p.poll() is None for p in procs)  # the cluster outlives the sweep
    finally:
        for proc in reversed(procs):
            _stop(proc)
        logs.close()

    ds = read_dataset(out)
    assert ds["workers"].values.tolist() == [1, 4, 16]
    assert ds["workers"].attrs["units"] == "workers"
    # point 4 (mu = 0.8, M = 4) is simulate() with the 4th child of SeedSequence(9)
    problem = Problem.from_spectrum((3, 2, 1), eta=2e-3, mu=0.8, delay=parse_delay("workers:4"))
    direct = simulate(problem, 800, 20, rng=np.random.SeedSequence(9, spawn_key=(4,)))
    point = ds.sel(eta=2e-3, mu=0.8, workers=4)
    assert int(point["point"]) == 4
    assert float(point["final_error"]) == direct.final_error.mean
    assert float(point["stationary_error_ci_high"]) == direct.stationary_error.ci_high
    assert np.all(np.isfinite(ds["linearized_floor"].values))


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--tau", "0:10:0"], "step"),
        (["--tau", "1,1"], "twice"),
        (["--mu", "0.5:0.9", "--tau", "0"], "START:STOP:STEP"),
        (["--mu", "0.5,1.0", "--tau", "0"], "mu"),
        (["--workers", "0,2"], "workers"),
        (["--tau", "0", "--workers", "2"], "not allowed"),
        (["--tau", "0", "--delay", "ps:4"], "--delay"),
        (["--tau", "0", "--distribution", "gaussian,cauchy"], "distribution"),
        (["--tau", "0", "--replicates", "0"], "replicates"),
        (["--tau", "0", "--spectrum", "1,x"], "spectrum"),
        (["--tau", "0", "--seed", "-1"], "seed"),
        ([], "--tau"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, needle, tmp_path, capsys):
    argv = ["sweep", "--out", str(tmp_path / "x.nc"), "--seed", "1", "--steps", "10", *extra]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing was started or written


def test_a_second_sweep_writing_the_same_file_is_refused(tmp_path, capsys):
    """Two sweeps on one --out both passed the check for an existing file; the second wrote into the
    first's parts, removed them at its end, and the first failed with "damaged after it was written".
    The lock the first holds (here held by the test) refuses the second with one line, before anything
    is written; a run that finishes leaves no lock file (the file and its digest only)."""
    import fcntl

    out = tmp_path / "s.nc"
    argv = ["sweep", "--tau", "0", "--mu", "0.9", "--steps", "50", "--replicates", "2", "--seed", "1", "--out", str(out),
            "-q"]  # fmt: skip
    with open(tmp_path / ".s.nc.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"another amsgd sweep is writing {out}" in err
        assert [p.name for p in tmp_path.iterdir()] == [".s.nc.lock"]
    assert main(argv) == 0 and sorted(p.name for p in tmp_path.iterdir()) == [".s.nc.sha256", "s.nc"]
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "link.nc"
    link.symlink_to(tmp_path / "t.nc")  # another name for t.nc: the lock is the file's, beside it
    with open(tmp_path / ".t.nc.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main([*argv[:-2], str(link), "-q"]) == 2 and "another amsgd sweep is writing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--local-workers", "0", "--local-threads"], "--local-workers"),
        (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "0"], "connect timeout"),
        (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "0.5"], "no Dask scheduler answered"),
    ],
)
def test_execution_options_are_refused_before_the_theory_is_derived(extra, needle, tmp_path, capsys, monkeypatch):
    """A bad worker count or timeout, or a scheduler that does not answer, is refused before any work
    (a model's theory takes seconds): deriving it here fails the test."""
    from amsgd.sweep.sweep import Sweep

    def derive_nothing(self, indices):
        raise AssertionError("the theory was derived before the connection was checked")

    monkeypatch.setattr(Sweep, "tasks", derive_nothing)
    argv = ["sweep", "--out", str(tmp_path / "x.nc"), "--seed", "1", "--steps", "10", "--tau", "0", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_existing_output_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "done.nc"
    out.write_bytes(b"keep me")
    assert main(["sweep", "--tau", "0", "--seed", "1", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


def test_points_where_every_replicate_diverged_are_counted_and_said(tmp_path, capsys):
    """η = 10 blows every run up: the summary counts that point in all_diverged and one warning line says
    so (the sweep used to end in silence with NaN estimates); nothing else reaches stderr."""
    out = tmp_path / "s.nc"
    argv = ["sweep", "--tau", "0", "--eta", "10,1e-3", "--steps", "50", "--replicates", "2", "--seed", "1",
            "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == 0
    printed, err = capsys.readouterr()
    assert json.loads(printed)["all_diverged"] == 1
    assert err.strip().splitlines() == [
        "amsgd sweep: warning: every replicate diverged at 1 of the 2 points: their estimates are NaN "
        "(all_diverged in the summary; diverged_fraction 1 in the file)"
    ]


def test_a_sweep_where_every_replicate_diverged_everywhere_has_no_estimate(tmp_path, capsys):
    """Every point blown up: the file is written, the summary printed, and the exit status is 3 (no
    estimate), as for simulate; it was 0."""
    out = tmp_path / "s.nc"
    argv = ["sweep", "--tau", "0", "--eta", "10,20", "--steps", "50", "--replicates", "2", "--seed", "1",
            "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == 3
    printed, err = capsys.readouterr()
    assert json.loads(printed)["all_diverged"] == 2 and out.exists()
    assert err.strip().splitlines() == [
        f"amsgd sweep: every replicate diverged at every one of the 2 points: no estimate (the file {out} holds "
        "the predictions and diverged_fraction 1); lower --eta or --mu, or shorten the delays"
    ]


@pytest.mark.parametrize("options, why", [
    (["--distribution", "student-t:4"], "the theory for student-t:4: distribution student-t:4 has infinite fourth"),
    (["--spectrum", "1,0.999999"], "the theory refused them (amsgd derive at one of them says why)"),
])  # fmt: skip
def test_points_without_a_prediction_are_said_with_the_reason(tmp_path, capsys, options, why):
    """Every prediction NaN used to leave stderr empty and the summary looking normal; resuming the
    finished file, which derives nothing for its points, gave "the theory refused them" for all reasons."""
    argv = ["sweep", "--tau", "0", "--mu", "0.9", "--steps", "50", "--replicates", "2", "--seed", "1", *options,
            "--out", str(tmp_path / "s.nc"), "-q"]  # fmt: skip
    for again in ([], ["--resume"]):
        assert main(argv + again) == 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("amsgd sweep: warning: 1 of the 1 points has no prediction")
        assert why in err[0], again


@pytest.mark.slow
def test_a_model_without_a_minimum_says_why_on_stderr_and_in_the_file(tmp_path, capsys):
    out = tmp_path / "m.nc"
    argv = ["sweep", "--model", "mlp", "--activation", "relu", "--hidden", "4", "--tau", "0", "--mu", "0.5",
            "--steps", "20", "--replicates", "2", "--seed", "1", "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    reason = json.loads(read_dataset(out).attrs["theory"])["reason"]
    assert reason.startswith("no minimum found for model mlp")
    assert err == [f"amsgd sweep: warning: 1 of the 1 points has no prediction: their predicted variables are NaN "
                   f"(tau_max -1); the theory: {reason}"]  # fmt: skip


@pytest.mark.parametrize("stored, says", [
    ((), "no point was stored yet; rerun the same command with --resume to start again"),
    (("manifest.json",), "no point was stored yet; rerun the same command with --resume to start again"),
    (("manifest.json", "point-0000000.json"), "the finished points are kept in"),
])  # fmt: skip
def test_ctrl_c_says_whether_any_point_was_kept(tmp_path, monkeypatch, capsys, stored, says):
    """The folder with the manifest alone was said to keep "the finished points"."""
    import amsgd.sweep.run

    out = tmp_path / "s.nc"

    def interrupted(*args, **kwargs):
        if stored:
            (tmp_path / "s.nc.parts").mkdir()
        for name in stored:
            (tmp_path / "s.nc.parts" / name).write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(amsgd.sweep.run, "run_sweep", interrupted)
    assert main(["sweep", "--tau", "0", "--steps", "10", "--seed", "1", "--out", str(out), "-q"]) == 130
    assert says in capsys.readouterr().err
