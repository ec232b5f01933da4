"""Work shared among threads (:mod:`amsgd.core.threads`): the same results on one thread and on
several, the order of the results kept, errors raised, and ``AMSGD_THREADS`` read and checked.

* :func:`thread_map` against a plain loop, on the calling thread with one thread and on others with more,
  the calls it drops after an error, and those it stops (a simulation on threads ended by Ctrl-C);
* the step-down of many long autoregressions, and the autocovariances of a few, split among threads,
  against the compiled loops alone;
* the momentum × workers table and the phases' sampled laws, bit for bit, with ``AMSGD_THREADS=1``
  and ``AMSGD_THREADS=2``.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from amsgd import Problem, ProblemError, parse_delay, predict
from amsgd.core.threads import THREADS_ENV, available_cores, stoppable, thread_count, thread_map
from amsgd.diffusion.theory import lyapunov
from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.linear_recursion import ar_coefficient_rows
from amsgd.diffusion.theory.step_down import step_down_rows
from amsgd.diffusion.theory.tradeoff import tradeoff


def test_thread_map_keeps_the_order_and_uses_the_threads_it_is_given():
    caller = threading.get_ident()
    ran_on = set()

    def square(x: int) -> int:
        ran_on.add(threading.get_ident())
        return x * x

    assert thread_map(square, range(40), threads=1) == [x * x for x in range(40)]
    assert ran_on == {caller}
    ran_on.clear()
    assert thread_map(square, iter(range(40)), threads=3) == [x * x for x in range(40)]
    assert caller not in ran_on
    assert thread_map(square, [], threads=3) == []


def test_thread_map_raises_the_error_of_a_call():
    def fail_on_seven(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    with pytest.raises(ValueError, match="seven"):
        thread_map(fail_on_seven, range(20), threads=2)


def test_an_error_drops_the_calls_not_yet_started():
    """The first call fails at once; of the 200 calls of 5 ms queued behind it, only those under way run."""
    started = []

    def slow_unless_first(x: int) -> int:
        started.append(x)
        if x == 0:
            raise RuntimeError("first")
        time.sleep(0.005)
        return x

    with pytest.raises(RuntimeError, match="first"):
        thread_map(slow_unless_first, range(200), threads=2)
    assert len(started) < 20


def test_an_error_stops_the_calls_under_way_that_check_the_event():
    """Call 1 fails while call 0 runs for up to 30 s checking ``stop`` and call 2, which never checks,
    sleeps 0.5 s: the error is raised within a second, the call stopped by it is not what is raised,
    and the call that never checked still finished. A stop event already set is refused."""
    stop = threading.Event()
    finished = []

    def work(x: int) -> int:
        if x == 1:
            time.sleep(0.1)
            raise ValueError("one")
        if x == 2:
            time.sleep(0.5)
            finished.append(x)
            return x
        deadline = time.monotonic() + 30
        report = stoppable(lambda done: None, stop)
        while time.monotonic() < deadline:
            report(1)
            time.sleep(0.01)
        return x

    began = time.monotonic()
    with pytest.raises(ValueError, match="one"):
        thread_map(work, range(3), threads=3, stop=stop)
    assert stop.is_set() and time.monotonic() - began < 2 and finished == [2]
    with pytest.raises(ValueError, match="not set yet"):
        thread_map(work, range(3), threads=3, stop=stop)


#: Runs a long simulation on two threads and sends SIGINT to its own process once the blocks run
#: (SIGINT at its default first: a child inherits an ignored SIGINT from a shell's background job).
_INTERRUPTED_RUN = """
import os, signal, sys, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import amsgd.simulate.engine as engine, amsgd.simulate.svag as svag
from amsgd import Problem
sent = []
def signal_once(original):
    def wrapped(*args):
        if not sent:
            sent.append(time.perf_counter())
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        return original(*args)
    return wrapped
engine.run_block, svag._run_block = signal_once(engine.run_block), signal_once(svag._run_block)
problem = Problem.from_spectrum()
try:
    if sys.argv[1] == "svag":
        svag.simulate_svag(problem, 400_000, 2000, 4, rng=1, threads=2, progress=False)
    else:
        engine.simulate(problem, 1_000_000, 3000, rng=1, threads=2, coordinates="none", progress=False)
    print("finished")
except KeyboardInterrupt:
    print(f"interrupted {time.perf_counter() - sent[0] - 0.5:.2f}")
"""


@pytest.mark.parametrize("run", ["simulate", "svag"])
def test_a_simulation_on_threads_ends_soon_after_ctrl_c(run):
    """With two threads or more, Ctrl-C and SIGTERM waited for the whole run (99 s after SIGINT for
    10⁶ steps × 3000 replicates; one thread: 1 s) and then threw it away: each thread took one long
    task, and nothing told it to stop. Now the blocks stop at their next chunk of steps."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _INTERRUPTED_RUN, run], capture_output=True, text=True, timeout=300)
    word, *after = done.stdout.split()
    assert word == "interrupted" and float(after[0]) < 5, done.stdout + done.stderr


def test_thread_count_reads_the_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert thread_count() == available_cores() >= 1
    monkeypatch.setenv(THREADS_ENV, " 3 ")
    assert thread_count() == 3
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ProblemError, match=THREADS_ENV):
            thread_count()


def test_the_shared_step_down_is_the_compiled_loop_alone(monkeypatch):
    """400 autoregressions of 301 taps (above the sharing threshold), stable and not, on 2 threads."""
    monkeypatch.setenv(THREADS_ENV, "2")
    rates = np.linspace(0.01, 3.0, 400)
    rows = ar_coefficient_rows(rates, 2e-3, 0.5, 300)
    assert rows.size * rows.shape[1] >= lyapunov._STEP_DOWN_SHARED
    shared = lyapunov.step_down_variance(rows)
    alone = step_down_rows(rows.copy())
    assert np.isinf(alone).any() and np.isfinite(alone).any()  # rows on both sides of their τ*
    np.testing.assert_array_equal(shared, alone)


def test_the_shared_autocovariances_are_those_row_by_row(monkeypatch):
    """Eight stable autoregressions of 2000 taps (above the sharing threshold) on 2 threads."""
    monkeypatch.setenv(THREADS_ENV, "2")
    rows = ar_coefficient_rows(np.linspace(0.1, 1.0, 8), 1e-4, 0.5, 1999)
    assert rows.size * rows.shape[1] >= lyapunov._STEP_DOWN_SHARED
    alone = np.array([lyapunov.autocovariance(row, 1.0) for row in rows])
    assert np.all(np.isfinite(alone))
    np.testing.assert_array_equal(lyapunov.autocovariance_rows(rows), alone)


@pytest.mark.parametrize("name", ["tradeoff", "phases"])
def test_results_do_not_depend_on_the_threads(monkeypatch, name):
    """The tradeoff table (its cells and searches on threads) and the phases (the escape law and the
    runs from the saddle sampled at once) are the same, bit for bit, on one thread and on two."""
    problem = Problem.from_spectrum((4.0, 3.0, 2.0, 1.0), eta=2e-3, mu=0.8, delay=parse_delay("constant:3"))
    results = []
    for count in ("1", "2"):
        monkeypatch.setenv(THREADS_ENV, count)
        if name == "tradeoff":
            table = tradeoff(coefficients_for(problem), problem.eta, (0.0, 0.5, 0.9), np.array([1, 4, 16]))
            results.append((table.floor, table.stable, table.error_radius, table.max_workers))
        else:
            phases = predict(problem).phases
            phases.sample()
            results.append((phases.escape_law.samples, phases.saddle_runs.travel.samples))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
