"""Progress, warnings, exit statuses and interrupts of the command line."""

from __future__ import annotations

import io
import itertools
import json
import re
import time

import numpy as np
import pytest

from amsgd.cli import main
from amsgd.cli.status import INTERRUPTED, NO_ESTIMATE, TERMINATED
from amsgd.core import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_labelled_line_comes_every_interval(monkeypatch):
    ticks = itertools.count()
    monkeypatch.setattr(progress, "_clock", lambda: float(next(ticks)))  # a second per reading: no two lines alike
    stream = io.StringIO()
    with progress.reporting("amsgd demo", stream=stream, interval=0.05):
        progress.plan(2, "parts")
        with progress.stage("first"):
            pass
        with progress.stage("second"), progress.counter(100, "steps", "simulate") as count:
            count.update(50)
            time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3
    assert all(line.startswith("amsgd demo: ") for line in lines)
    # during the sleep: one part done, the second half way (a line may also come once the second part
    # ended, before the reporter stops, so the last line is not always this one)
    assert any(re.search(r"1/2 parts · second · simulate 50% · \d+ s", line) for line in lines), lines


def test_on_a_terminal_one_bar_shows_what_how_far_and_time_left():
    stream = Terminal()
    with progress.reporting("amsgd demo", stream=stream):
        with progress.counter(10, "steps", "simulate") as count:
            count.update(5)
            time.sleep(2 * progress.REDRAW + 0.2)
    text = stream.getvalue()
    assert "amsgd demo" in text and "simulate 50%" in text and "s left" in text


def test_on_a_terminal_a_warning_stands_on_its_own_line_and_the_bar_keeps_its_fill():
    """A warning was written after the bar's text, on its line; and the bar emptied once a counted part
    ended (a stage after it, such as writing the file, has no fraction of its own)."""
    stream = Terminal()
    with progress.reporting("amsgd demo", stream=stream):
        report = progress._ACTIVE
        with progress.counter(10, "steps", "simulate") as count:
            count.update(5)
            report.show()
        with progress.stage("writing"):
            report.show()
            assert report.bar.n == 500
            progress.write_line("amsgd demo: warning: something")
    before, _, after = stream.getvalue().partition("amsgd demo: warning: something\n")
    assert before.endswith("\r") and "amsgd demo" in after  # the bar cleared, then drawn again below


def test_on_a_terminal_what_the_command_prints_starts_on_a_line_of_its_own(monkeypatch):
    """A command's result on stdout, on the terminal the bar is drawn on, started after the bar's text
    (the bar is cleared only when the command ends); the bar is now cleared before it and drawn again
    once its line is complete, and text left without a newline is not blanked when the bar closes."""
    import sys

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with progress.reporting("amsgd demo", stream=terminal):
        progress._ACTIVE.show()
        print('{"floor": 1}')
        print("a line", file=sys.stdout, end="")
        progress._ACTIVE.show()  # the redraw waits for the line's end
        print(" ends here")
        print("unfinished", end="")
    assert sys.stdout is terminal  # put back
    text = terminal.getvalue()
    before, _, after = text.partition('{"floor": 1}\n')
    assert before.endswith("\r") and "amsgd demo" in before  # drawn, then cleared before the result
    assert "a line ends here\n" in after and "unfinished\n" in after  # neither split nor blanked
    assert "amsgd demo" in after.partition("a line ends here\n")[2]  # drawn again below it


def test_a_part_of_many_simulations_fills_once_item_by_item():
    """Each simulation of a delay curve opened its own counter, so the part's share of the command went
    from 0 to 100% once per simulation (``validate --preset paper-pca``'s percentage jumped back and forth
    and its time left read 361 s with 27 s to go). In :func:`progress.shares` loops, nested, each item is
    an equal share and never goes back when its next simulation starts at 0%."""
    seen = []
    with progress.reporting("amsgd demo", stream=io.StringIO(), interval=1e6):
        report = progress._ACTIVE
        progress.plan(2, "experiments")
        with progress.stage("sweep"):
            for _mu in progress.shares([0.7, 0.9]):
                for _tau in progress.shares(np.arange(4)):
                    for _run in range(2):  # two simulations per item
                        with progress.counter(10, "steps", "simulate") as count:
                            for _ in range(10):
                                count.update(1)
                                seen.append(report.fraction())
            assert report.shares == [] and report.fraction() == pytest.approx(0.5)  # kept once the loops end
        assert report.fraction() == 0.5  # the stage counted
    assert all(later >= earlier for earlier, later in itertools.pairwise(seen))
    # halfway through the first simulation of the second delay of the first momentum: 1/2 · (1 + 0.5)/4 of the sweep
    assert seen[2 * 10 + 4] == pytest.approx(0.5 * 0.5 * (1 + 0.5) / 4)
    assert seen[-1] == pytest.approx(0.5)  # the sweep, one of two experiments, whole
    with progress.reporting("amsgd demo", stream=io.StringIO(), interval=1e6):  # an empty loop, and a break
        assert list(progress.shares([])) == []
        for _ in progress.shares([1, 2, 3]):
            break
        assert progress._ACTIVE.shares == []


def test_the_time_left_counts_the_rate_since_the_work_began_not_the_setup_or_reused_work(monkeypatch):
    """A resumed sweep: 100 s of setup, then a counter that starts at 75 of 100 points and does 5 in
    10 s: 20 points left at 0.5 points a second is 40 s (the whole elapsed time over the fraction
    done said 110 · 0.2/0.8 = 28 s, and at 79% on a resume 3 s where 25 were left)."""
    now = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    with progress.reporting("amsgd demo", stream=io.StringIO(), interval=1e6):
        report = progress._ACTIVE
        now[0] = 100.0
        with progress.counter(100, "points", "sweep", initial=75) as count:
            assert "left" not in report.describe()  # no progress yet: no estimate
            now[0] = 110.0
            count.update(5)
            assert report.describe().endswith("sweep 80% · 110 s · ~40 s left")


def test_quiet_prints_nothing_and_a_short_command_prints_nothing(capsys):
    quiet, short = io.StringIO(), io.StringIO()
    with progress.reporting("amsgd demo", stream=quiet, quiet=True, interval=0.01):
        with progress.counter(10, "steps", "simulate") as count:
            count.update(10)
            time.sleep(0.1)
    with progress.reporting("amsgd demo", stream=short, interval=10):
        with progress.stage("part"):
            pass
    assert quiet.getvalue() == "" and short.getvalue() == ""


def test_outside_a_command_a_counter_has_its_own_bar_only_when_asked(capsys):
    with progress.counter(4, "paths", "euler", show=False) as count:
        count.update(4)
    assert capsys.readouterr().err == ""
    with progress.counter(4, "paths", "euler", show=True) as count:
        count.update(4)
    assert "euler" in capsys.readouterr().err


def test_simulate_reports_progress_off_a_terminal_and_quiet_silences_it(monkeypatch, capsys):
    monkeypatch.setattr(progress, "INTERVAL", 0.01)
    arguments = ["simulate", "--steps", "20000", "--replicates", "200", "--seed", "1"]
    assert main(arguments) == 0
    err = capsys.readouterr().err
    assert re.search(r"amsgd simulate: simulate \d+%", err), err
    assert main(arguments + ["--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("model", [["--eta", "2"], ["--model", "least-squares", "--eta", "5000"], ["--eta", "2", "--tau", "3"]])
def test_every_replicate_diverged_is_status_3_in_words(capsys, model):
    """The advice names the delay only where there is one (it said "shorten the delay" at τ = 0)."""
    status = main(["simulate", *model, "--steps", "200", "--replicates", "8", "--seed", "1", "-q"])
    captured = capsys.readouterr()
    assert status == NO_ESTIMATE
    assert json.loads(captured.out)["diverged_fraction"] == 1.0
    assert "every one of the 8 replicates diverged" in captured.err
    assert ("shorten the delay" in captured.err) == ("--tau" in model)


def test_a_delay_longer_than_the_run_is_warned_in_one_line(capsys):
    assert main(["simulate", "--tau", "100000", "--steps", "200", "--replicates", "4", "--seed", "3", "-q"]) == 0
    lines = capsys.readouterr().err.splitlines()
    delay = [line for line in lines if "the mean delay" in line]
    assert len(delay) == 1 and delay[0].startswith("amsgd simulate: warning: the mean delay (100000")
    assert all(line.startswith("amsgd simulate: warning: the averaging window") for line in lines if line not in delay)


def test_a_sweep_warns_of_its_long_delays_once(tmp_path, capsys):
    """Two momenta at each of two long delays: the points' warnings, raised on worker threads one by
    one, were printed once per point, then once per delay (hundreds of lines for a long grid); the
    grid's longest delay is said once."""
    argv = ["sweep", "--tau", "0,60,80", "--mu", "0.5,0.9", "--steps", "100", "--replicates", "4", "--seed", "1",
            "--local-workers", "2", "--out", str(tmp_path / "s.nc"), "-q"]  # fmt: skip
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert lines == ["amsgd sweep: warning: the grid's longest delay (80 iterations) is at least half the run (100 "
                     "steps): most gradients are taken at the start point; raise --steps or shorten the delay"]


def test_ctrl_c_during_simulate_says_what_is_missing(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import amsgd.simulate

    monkeypatch.setattr(amsgd.simulate, "simulate", interrupted)
    out = tmp_path / "runs.nc"
    assert main(["simulate", "--steps", "100", "--replicates", "2", "--out", str(out), "-q"]) == INTERRUPTED
    err = capsys.readouterr().err
    assert "files whole or not at all" in err and "rerun the same command" in err


@pytest.mark.parametrize("command", ["sweep", "validate"])
def test_sigterm_ends_a_command_as_ctrl_c_does_with_its_own_status(tmp_path, monkeypatch, capsys, command):
    """A batch scheduler's SIGTERM killed a sweep with no word (and a Dask cluster's semaphores leaked):
    it now ends as Ctrl-C does, with 143; a validation folder is marked incomplete."""
    import os
    import signal

    import amsgd.sweep.run
    import amsgd.validation

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(amsgd.sweep.run, "run_sweep", terminated)
    monkeypatch.setattr(amsgd.validation, "run_validation", terminated)
    out = tmp_path / ("s.nc" if command == "sweep" else "report")
    extra = ["--tau", "0", "--steps", "10", "--seed", "1"] if command == "sweep" else ["--only", "ode"]
    before = signal.getsignal(signal.SIGTERM)
    assert main([command, *extra, "--out", str(out), "-q"]) == TERMINATED
    err = capsys.readouterr().err
    assert err.strip().endswith(f"amsgd {command}: terminated (SIGTERM)")
    if command == "validate":
        assert (out / "report.md").read_text().startswith("# Validation incomplete")
    else:
        assert "no point was stored yet" in err
    assert signal.getsignal(signal.SIGTERM) == before  # restored when the command ends


@pytest.mark.parametrize(("when", "signal_name"), [("joining-threads", "SIGINT"), ("teardown", "SIGTERM")])
def test_a_signal_after_the_command_ended_leaves_with_its_status(tmp_path, signal_name, when):
    """Ctrl-C in the half second a sweep's process spends shutting down after its summary gave status 130
    with no word, or status 0 and a traceback from the threading module: the ``amsgd`` program now ends
    with the command's status, its output whole, at once where the shutdown waits for a thread (a second
    Ctrl-C still ends it) and after its teardown where the signal comes in the last exit handlers."""
    import subprocess
    import sys

    kill = f"os.kill(os.getpid(), signal.{signal_name})"
    if when == "teardown":  # registered before amsgd.cli is imported: it runs after the program's own
        setup = f"atexit.register(lambda: ({kill}, time.sleep(1.0)))\n"
    else:  # a thread the shutdown joins: it signals once the command has ended, then holds the join
        setup = ("def hold():\n"
                 "    while not getattr(sys.modules.get('amsgd.cli'), '_ENDED', False):\n"
                 "        time.sleep(0.01)\n"
                 f"    {kill}\n"
                 "    time.sleep(60)\n"
                 "threading.Thread(target=hold).start()\n")  # fmt: skip
    script = ("import atexit, os, signal, sys, threading, time\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n" + setup +  # as from a terminal
              "sys.argv = ['amsgd', 'derive', '--sections', 'stability', '-q']\n"
              "from amsgd.cli import console\n"
              "console()\n")  # fmt: skip
    began = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert json.loads(run.stdout)["stability"] and time.perf_counter() - began < 40


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, "terminated"])
def test_a_signal_while_the_ended_command_closes_its_progress_leaves_its_status(monkeypatch, capsys, interrupt):
    """Ctrl-C or SIGTERM just after a command printed its output, while its progress and warnings were
    closed, gave 130 or 143 and said that what was missing was not computed, though the output was whole:
    the command's status now stands, and nothing is said."""
    import contextlib

    from amsgd import cli

    raised = cli._Terminated if interrupt == "terminated" else interrupt

    @contextlib.contextmanager
    def reporting(*args, **kwargs):
        yield
        raise raised  # where the signal's handler raises it

    monkeypatch.setattr(progress, "reporting", reporting)
    assert main(["derive", "--sections", "stability", "-q"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["stability"]["tau_max"] and err == ""

    @contextlib.contextmanager
    def interrupted_at_the_start(*args, **kwargs):
        raise raised
        yield

    monkeypatch.setattr(progress, "reporting", interrupted_at_the_start)  # the next command has not ended
    assert main(["derive", "--sections", "stability", "-q"]) in (INTERRUPTED, TERMINATED)
    assert capsys.readouterr().out == ""


def test_ctrl_c_leaves_no_traceback_of_what_it_left_half_built(monkeypatch, capsys):
    """A NetCDF file opened as Ctrl-C arrived failed to close when the interrupted frames were freed, and
    Python printed "Exception ignored in: <function File.close ...>" with a traceback under "interrupted":
    the frames are now freed without those tracebacks, and the command says only that it was interrupted."""
    import sys

    import amsgd.cli.derive

    class HalfBuilt:
        def __del__(self):
            raise AttributeError("'File' object has no attribute '_closed'")

    def interrupted(args):
        half_built = HalfBuilt()  # noqa: F841 (held by the interrupted frame)
        raise KeyboardInterrupt

    monkeypatch.setattr(amsgd.cli.derive, "run", interrupted)
    printed = []  # what Python would print as "Exception ignored in: ..."
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    assert main(["derive", "-q"]) == INTERRUPTED
    assert capsys.readouterr().err.strip().endswith("amsgd derive: interrupted") and not printed, printed


def test_ctrl_c_before_validate_writes_says_the_folder_is_unchanged(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import amsgd.cli.validate

    monkeypatch.setattr(amsgd.cli.validate, "chosen_experiments", interrupted)  # still checking the input
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    assert main(["validate", "--out", str(out), "--only", "ode", "-q"]) == INTERRUPTED
    assert (out / "report.md").read_text() == "an earlier report"
    assert f"interrupted before anything was written to {out}: nothing there changed" in capsys.readouterr().err


def test_ctrl_c_after_validate_wrote_its_report_says_it_is_complete(tmp_path, monkeypatch, capsys):
    """Interrupted while the verdict was printed, after the report was written: stderr said that nothing in
    the folder had changed."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import amsgd.validation.report

    monkeypatch.setattr(amsgd.validation.report, "figures_not_drawn", interrupted)  # the verdict's first step
    out = tmp_path / "report"
    assert main(["validate", "--out", str(out), "--only", "ode", "-q"]) == INTERRUPTED
    err = capsys.readouterr().err
    assert f"interrupted after the report was written: {out / 'report.md'} is complete" in err
    assert "nothing there changed" not in err and "incomplete" not in err
    report = (out / "report.md").read_text()
    assert report.startswith("# ") and not report.startswith("# Validation incomplete") and (out / "report.json").is_file()


@pytest.mark.parametrize("preset", [None, "paper-dnn"])
def test_ctrl_c_during_validate_marks_the_folder_incomplete(tmp_path, monkeypatch, capsys, preset):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import amsgd.validation
    import amsgd.validation.paper_dnn

    monkeypatch.setattr(amsgd.validation, "run_validation", interrupted)
    monkeypatch.setattr(amsgd.validation.paper_dnn, "run_paper_dnn", interrupted)
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.json").write_text("[]")  # an earlier run's report must not pass for this one
    arguments = ["validate", "--out", str(out), "-q"] + (["--preset", preset] if preset else ["--only", "ode"])
    assert main(arguments) == INTERRUPTED
    report = (out / "report.md").read_text()
    assert report.startswith("# Validation incomplete") and "amsgd validate" in report
    assert not (out / "report.json").exists()
    err = capsys.readouterr().err
    assert "marks the folder incomplete" in err and "nothing there changed" not in err
    fresh = tmp_path / "fresh"  # a folder made by this run keeps its marker too
    assert main([*arguments[:2], str(fresh), *arguments[3:]]) == INTERRUPTED
    assert (fresh / "report.md").read_text().startswith("# Validation incomplete")
    if preset is None:
        assert "rerun: amsgd validate" in err
    else:  # interrupted before any cell finished (what it says where some did: test_paper_dnn_runs)
        assert "no cell had finished; rerun: amsgd validate --preset paper-dnn" in err


def test_help_lists_every_command_on_one_line(capsys):
    from amsgd.cli import COMMANDS

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for name, module in COMMANDS.items():
        assert [line.split() for line in lines if line.split()[:1] == [name]] == [[name, *module.SUMMARY.split()]]
    assert all(len(line) <= 80 for line in lines)


def test_a_line_is_not_repeated_when_a_part_starts_on_an_intervals_tick(monkeypatch):
    """The periodic line and the line of a part that starts in the same second read the same: said once."""
    monkeypatch.setattr(progress, "_clock", lambda: 12.0)
    stream = io.StringIO()
    with progress.reporting("amsgd demo", stream=stream, interval=1e9), progress.stage("part"):
        progress._ACTIVE.show()  # the interval's line
        progress._ACTIVE.show()  # a part starting in the same second reads the same
    assert stream.getvalue().count("amsgd demo: part") == 1, stream.getvalue()


def test_a_part_that_starts_just_before_an_intervals_tick_is_said_once(monkeypatch):
    """A part starting a second before the periodic line (the cluster's shut-down after the last
    point) printed its stage twice, "· 32 s" then "· 33 s"; the tick after it now waits, and a tick
    half an interval later prints again."""
    now = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    stream = io.StringIO()
    with progress.reporting("amsgd demo", stream=stream, interval=1e9):
        report = progress._ACTIVE
        report.interval = 10.0  # the loop's own wait stays 1e9: the ticks below are the test's
        now[0] = 32.0
        with progress.stage("shutting down"):
            now[0] = 33.0
            report.tick()
            said = stream.getvalue().splitlines()
            now[0] = 38.0
            report.tick()
    assert said == ["amsgd demo: shutting down · 32 s"], said
    assert stream.getvalue().splitlines()[1:] == ["amsgd demo: shutting down · 38 s"], stream.getvalue()


def test_every_progress_line_of_a_sweep_says_what_runs(tmp_path, monkeypatch):
    """Deriving the points' theory, checking stored points and writing the file are named stages: a
    line of the sweep is never a bare ``amsgd sweep: 10 s``."""
    from amsgd import Problem
    from amsgd.sweep.grid import SweepGrid
    from amsgd.sweep.run import run_sweep
    from amsgd.sweep.sweep import Sweep

    sweep = Sweep(Problem.from_spectrum((2, 1)), SweepGrid(("gaussian",), (2e-3,), (0.5,), "tau", (0, 2)),
                  steps=200, replicates=4, seed=1, record_every=100)  # fmt: skip
    tasks = Sweep.tasks
    monkeypatch.setattr(Sweep, "tasks", lambda self, pending: (time.sleep(0.3), tasks(self, pending))[1])
    stream = io.StringIO()
    with progress.reporting("amsgd sweep", stream=stream, interval=0.05):
        run_sweep(sweep, tmp_path / "s.nc", n_workers=1, local_processes=False)
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("amsgd sweep: preparing the points · ") for line in lines), lines
    # up to the last stage, the file's writing; a tick after it, while the local cluster's threads wind
    # down on a loaded machine, is the command's end, not a part of the sweep
    writing = [n for n, line in enumerate(lines) if line.startswith("amsgd sweep: writing s.nc")]
    written = writing[-1] if writing else len(lines)
    bare = [n for n, line in enumerate(lines[:written]) if re.fullmatch(r"amsgd sweep: \d+ s", line)]
    assert not bare, [lines[max(n - 1, 0):n + 2] for n in bare]
