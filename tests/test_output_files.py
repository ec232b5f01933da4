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


def test_a_figure_is_written_whole_or_not_at_all(tmp_path):
    """A save that fails half-way (Ctrl-C, a full disk) leaves the figure that was there, and no
    temporary file; a figure format that needs an outside program (PGF: LaTeX) is refused up front."""
    import matplotlib.pyplot as plt

    from amsgd.core.errors import ProblemError
    from amsgd.core.files import check_figure_file
    from amsgd.figures.style import save

    path = tmp_path / "a.png"
    save(plt.figure(), path)
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG") and os.listdir(tmp_path) == ["a.png"]
    fig = plt.figure()

    def broken(target, **options):
        Path(target).write_bytes(b"\x89PNG half a figure")
        raise KeyboardInterrupt

    fig.savefig = broken
    with pytest.raises(KeyboardInterrupt):
        save(fig, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["a.png"]
    with pytest.raises(ProblemError, match="figure format"):
        check_figure_file(tmp_path / "a.pgf")
    assert check_figure_file(tmp_path / "a.svg") == tmp_path / "a.svg"


def test_a_file_name_ending_in_a_slash_is_refused(tmp_path, capsys):
    """``--out results/`` names a folder: it was written as a file named ``results``."""
    assert main(["derive", "--out", f"{tmp_path}/results/"]) == 2
    assert "ends in a slash" in capsys.readouterr().err and not (tmp_path / "results").exists()


def test_a_count_beyond_64_bits_is_one_line(capsys):
    assert main(["simulate", "--steps", "1e19", "--replicates", "2", "--seed", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["amsgd simulate: error: steps must be at most 2^63 - 1 (a 64-bit integer), got 10000000000000000000"]


def test_an_output_that_is_another_output_or_an_input_is_refused_before_the_work(tmp_path):
    """``advise --out p.png --plot p.png`` kept the figure and lost the table, and ``--out`` on the
    ``--data`` file replaced the data: one file reached through a symbolic link or ``..`` counts; a hard
    link is another name, which the atomic write replaces alone."""
    from amsgd.core.errors import ProblemError
    from amsgd.core.files import check_distinct_files

    data = tmp_path / "data.csv"
    data.write_text("1,2,0\n")
    (tmp_path / "sub").mkdir()
    os.symlink(data, tmp_path / "link.csv")
    os.link(data, tmp_path / "hard.csv")
    for alias in (data, tmp_path / "sub" / ".." / "data.csv", tmp_path / "link.csv"):
        with pytest.raises(ProblemError, match="is the file --data reads; writing it would destroy that input"):
            check_distinct_files({"--out": alias}, {"--data": data})
    with pytest.raises(ProblemError, match="--out and --plot name the same file"):
        check_distinct_files({"--out": tmp_path / "a.png", "--plot": tmp_path / "sub" / ".." / "a.png"}, {})
    check_distinct_files({"--out": tmp_path / "a.json", "--plot": tmp_path / "a.png"}, {"--data": data, "--covariance": None})
    check_distinct_files({"--out": tmp_path / "hard.csv"}, {"--data": data})
    assert data.read_text() == "1,2,0\n"


def _with_file_size_limit(limit: int, arguments: list[str]) -> list[str]:
    """``python -m amsgd ARGUMENTS`` with writes past ``limit`` bytes failing with EFBIG (the signal
    ignored), as on a nearly full disk: a small Python sets the limit and executes the command (a
    pre-exec hook would fork this process, whose JAX threads make a fork unsafe)."""
    setup = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
             f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY)); "
             "os.execv(sys.executable, [sys.executable, '-m', 'amsgd', *sys.argv[1:]])")  # fmt: skip
    return [sys.executable, "-c", setup, *arguments]


@pytest.mark.parametrize("command", [
    ["simulate", "--steps", "2000", "--replicates", "100", "--seed", "1", "--out", "runs.nc"],
    ["advise", "--plot", "advice.png"],
])  # fmt: skip
def test_a_write_that_runs_out_of_room_is_one_line_and_leaves_nothing(tmp_path, command):
    """A NetCDF write that fails at its close crashed the interpreter after the error line (h5netcdf closed
    the half-closed file again when it was collected: exit 139); a figure that could not be written was a
    traceback, or blamed standard output."""
    warm = tmp_path / "warm"  # the kernels and derivations stored first: their caches' files pass the limit
    warm.mkdir()
    subprocess.run([sys.executable, "-m", "amsgd", *command, "-q"], cwd=warm, timeout=300, check=True)
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run(_with_file_size_limit(60_000, [*command, "-q"]), cwd=out, capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [f"amsgd {command[0]}: error: cannot write {command[-1]!r}: file too large; "
                                               "check the folder and the free space"]  # fmt: skip
    assert os.listdir(out) == []


def test_two_writes_of_one_file_at_once_each_write_whole(tmp_path):
    """Every write went through the one temporary name ``.NAME.tmp``: two runs writing the same output
    wrote into one file, and the first to finish removed the other's (both failed, nothing written)."""
    from amsgd.core.files import atomic_path, temporaries

    path = tmp_path / "out.txt"
    with atomic_path(path) as first, atomic_path(path) as second:
        assert first != second and sorted(temporaries(path)) == sorted([first, second])
        first.write_text("first")
        second.write_text("second")
    assert path.read_text() == "first" and os.listdir(tmp_path) == ["out.txt"]  # the last rename wins
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # a new file's permissions, not 0600
