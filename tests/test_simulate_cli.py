"""``amsgd simulate``: the JSON summary, the NetCDF output, and one-line errors with exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amsgd.cli import main


def test_summary_and_netcdf(tmp_path, capsys):
    out = tmp_path / "run.nc"
    argv = ["simulate", "--spectrum", "3,2,1", "--eta", "0.01", "--mu", "0.5", "--delay", "ps:3",
            "--steps", "400", "--replicates", "30", "--seed", "4", "--record-every", "50", "--start", "e1",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    summary = json.loads(captured.out)
    for key in ("final_error", "stationary_error"):  # over the 30 replicates, their intervals not degenerate
        est = summary[key]
        assert est["n"] == 30 and est["ci_low"] < est["mean"] < est["ci_high"]
    assert summary["diverged_fraction"] == 0.0
    assert summary["replicate_steps_per_second"] > 0
    assert sum(summary["delay"]["staleness_histogram"]) == 400 * 30
    assert summary["seed"]["entropy"] == 4

    import xarray as xr

    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["error"].shape == (30, 9)
        assert list(ds["iteration"].values) == list(range(0, 401, 50))
        final = ds["error"].isel(iteration=-1).values
        assert np.mean(final) == pytest.approx(summary["final_error"]["mean"])
        assert json.loads(ds.attrs["problem"])["delay"] == "ps:3"

    # the same seed prints the same estimates, with the coordinates kept or not
    assert main(argv[:-2]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["final_error"] == summary["final_error"]
    assert main([*argv[:-2], "--coordinates", "none", "--out", str(tmp_path / "none.nc")]) == 0
    assert json.loads(capsys.readouterr().out)["stationary_error"] == summary["stationary_error"]
    with xr.open_dataset(tmp_path / "none.nc", engine="h5netcdf") as ds:
        assert "coordinate_mean" not in ds and ds["error"].shape == (30, 9)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--replicates", "0"], "replicates"),
        (["--steps", "-5"], "steps"),
        (["--delay", "sometimes:3"], "delay"),
        (["--delay", "uniform:5"], "uniform"),
        (["--eta", "-1"], "eta"),
        (["--start", "e7"], "start"),
        (["--seed", "-3"], "seed"),
        (["--replicates", "many"], "replicates"),
        (["--window", "1.5"], "window"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, needle, capsys):
    code = None
    try:
        code = main(["simulate", "--steps", "10", "--replicates", "2", *extra])
    except SystemExit as exc:  # argparse's own type errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert "Traceback" not in err


def test_histogram_not_summing_to_one(tmp_path, capsys):
    path = tmp_path / "h.txt"
    path.write_text("0.2 0.2 0.2\n")
    assert main(["simulate", "--steps", "10", "--replicates", "2", "--delay", f"histogram:{path}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "sum to one" in err


def test_a_reader_that_stops_early_gets_exit_141_and_no_traceback():
    """stdout closed before the summary is written (``amsgd simulate | head -0``): status 141, as a
    shell reports a broken pipe, and nothing on stderr."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "amsgd", "simulate", "--steps", "10", "--replicates", "2", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


def test_a_run_where_some_replicates_diverge_warns_that_the_estimates_are_over_the_others(capsys):
    """η = 0.05 from e_1: 9 of 20 runs blow up; the summary is of the 11 others, and stderr says so
    (exit status 0: there is an estimate). Where none diverges nothing is said."""
    argv = ["simulate", "--eta", "0.05", "--mu", "0.5", "--start", "e1", "--steps", "500", "--replicates", "20",
            "--seed", "1", "-q"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    alive = 20 - round(20 * json.loads(out)["diverged_fraction"])
    assert 0 < alive < 20 and f"every estimate is over the other {alive}" in err
    assert main([*argv[:2], "0.005", *argv[3:]]) == 0
    assert "diverged" not in capsys.readouterr().err
