"""``amsgd figures``: the standard PNGs for a small problem, ``--sweep`` wiring, and bad input."""

from __future__ import annotations

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
    sweep = tmp_path / "sweep.nc"
    sweep.write_bytes(b"")  # read by the (replaced) reader before any simulation
    out = tmp_path / "figs"
    assert main(["figures", *SMALL, "--out", str(out), "--sweep", str(sweep)]) == 0
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
        (["--sweep", "missing.nc"], "sweep"),
        (["--distribution", "student-t:3"], "fourth moments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    assert main(["figures", *argv, "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_a_sweep_file_that_is_not_netcdf_fails_before_any_simulation(tmp_path, capsys):
    sweep = tmp_path / "junk.nc"
    sweep.write_text("not a sweep")
    assert main(["figures", *SMALL, "--out", str(tmp_path / "figs"), "--sweep", str(sweep)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a NetCDF file written by amsgd sweep" in err
    assert not list((tmp_path / "figs").glob("*.png"))
