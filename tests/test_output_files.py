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
