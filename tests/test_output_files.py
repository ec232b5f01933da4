"""Where the commands write: a link is followed, a device or a pipe is refused, an empty name is
refused, and standard output on a full device is one error line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from amsgd.cli import main


def test_a_symbolic_link_is_followed_and_kept(tmp_path):
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert main(["derive", "-q", "--out", str(link)]) == 0
    assert link.is_symlink() and target.read_text().startswith("{")


def test_a_pipe_is_refused_not_replaced(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["derive", "-q", "--out", str(fifo)]) == 2
    assert "is not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("command", [["derive"], ["advise"], ["integrate", "--paths", "4"], ["simulate"]])
def test_an_empty_output_name_is_refused(command, capsys):
    assert main([*command, "-q", "--out", ""]) == 2
    assert "--out needs a file name" in capsys.readouterr().err


@pytest.mark.skipif(not (Path("/dev/full").exists() and stat.S_ISCHR(Path("/dev/full").stat().st_mode)),
                    reason="needs /dev/full")  # fmt: skip
def test_standard_output_on_a_full_device_is_one_error_line():
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "amsgd", "derive", "-q"], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["amsgd derive: error: cannot write standard output: no space left on device"]


def test_the_python_writers_refuse_a_pipe_or_a_folder_without_replacing_it(tmp_path):
    """``SimulationResult.write_netcdf`` (and every writer through ``atomic_path``) is reached from Python
    without the command line's checks: a pipe (or, for root, a device such as /dev/null) used to be
    replaced by a regular file."""
    from amsgd import Problem, ProblemError
    from amsgd.simulate import simulate

    result = simulate(Problem.from_spectrum((3.0, 2.0, 1.0), eta=0.01, mu=0.5), 20, 2, rng=1, progress=False)
    fifo = tmp_path / "fifo.nc"
    os.mkfifo(fifo)
    for target, name in ((fifo, "not a regular file"), (tmp_path, "not a regular file"), (3, "needs a file name")):
        with pytest.raises(ProblemError, match=name):
            result.write_netcdf(target)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    result.write_netcdf(tmp_path / "runs.nc")
    assert (tmp_path / "runs.nc").is_file()
