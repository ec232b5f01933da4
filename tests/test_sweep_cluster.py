"""Sweeps on real local Dask clusters: worker count independence, resume, a worker killed mid-task."""

from __future__ import annotations

import functools
import os
import re
import signal
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from amsgd import Problem, ProblemError
from amsgd.sweep.cluster import dask_client
from amsgd.sweep.dataset import read_dataset
from amsgd.sweep.grid import SweepGrid
from amsgd.sweep.run import run_sweep
from amsgd.sweep.store import PartStore
from amsgd.sweep.sweep import Sweep, compute_point


def make_sweep(mus=(0.5, 0.9)) -> Sweep:
    grid = SweepGrid(("gaussian",), (2e-3,), mus, "tau", (0, 3, 8, 40))
    return Sweep(Problem.from_spectrum((3, 2, 1)), grid, steps=1500, replicates=40, seed=5, record_every=150)


@pytest.fixture(scope="module")
def two_workers():
    """Two worker processes (one of them is killed below); the threaded default is compared with them."""
    with dask_client(n_workers=2, processes=True) as client:
        yield client


@pytest.fixture(scope="module")
def reference(two_workers, tmp_path_factory) -> xr.Dataset:
    """The uninterrupted sweep on two workers, read back from its file."""
    out = tmp_path_factory.mktemp("ref") / "ref.nc"
    outcome = run_sweep(make_sweep(), out, client=two_workers, progress=False)
    assert outcome.computed == 8 and outcome.reused == 0
    assert not PartStore(out).exists  # parts are removed once the file is written
    return read_dataset(out)


@pytest.mark.slow
def test_one_and_two_workers_give_identical_datasets(reference, tmp_path):
    with dask_client(n_workers=1) as client:
        assert len(client.scheduler_info()["workers"]) == 1
        run_sweep(make_sweep(), tmp_path / "one.nc", client=client, progress=False)
    xr.testing.assert_identical(read_dataset(tmp_path / "one.nc"), reference)
    # the sweep measured something: finite errors at stable points, divergence beyond τ*
    stable = reference.sel(eta=2e-3, mu=0.5, tau=0)
    assert 0 < float(stable["stationary_error"]) < 0.5 and float(stable["diverged_fraction"]) == 0
    assert float(reference["diverged_fraction"].sel(mu=0.9, tau=40).squeeze()) == 1.0
    assert np.isinf(reference["linearized_floor"].sel(mu=0.9, tau=40)).all()  # inf survives the file
    assert reference["tau_max"].dtype == np.int64


@pytest.mark.parametrize(("taus", "workers", "started"), [((0, 3), 1000, 2), ((0,), None, 1)])
def test_a_local_cluster_starts_no_more_workers_than_points(tmp_path, monkeypatch, taus, workers, started):
    """--local-workers 1000 on a sweep of two points started 1000 worker threads (over 30 s); the
    default, one per core, starts one for a single point."""
    import amsgd.sweep.cluster

    asked = []

    def recording(scheduler=None, n_workers=None, **options):
        asked.append(n_workers)
        return dask_client(scheduler, n_workers, **options)

    monkeypatch.setattr(amsgd.sweep.cluster, "dask_client", recording)
    grid = SweepGrid(("gaussian",), (2e-3,), (0.5,), "tau", taus)
    sweep = Sweep(Problem.from_spectrum((3, 2, 1)), grid, steps=200, replicates=4, seed=5, record_every=100)
    assert run_sweep(sweep, tmp_path / "s.nc", n_workers=workers, progress=False).computed == len(taus)
    assert asked == [started]


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_resume_after_interruption_matches_and_computes_no_point_twice(two_workers, reference, tmp_path):
    out = tmp_path / "resumed.nc"
    store = PartStore(out)

    def stop_after_three(index: int, record: dict) -> None:
        if len(store.done()) >= 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_sweep(make_sweep(), out, client=two_workers, progress=False, on_point=stop_after_three)
    assert not out.exists()
    first = store.done()
    assert len(first) == 3
    stamps = {i: os.stat(store.directory / f"point-{i:07d}.json").st_mtime_ns for i in first}

    # without --resume the stored sweep is protected; with a different grid it is not resumed
    with pytest.raises(ProblemError, match="--resume"):
        run_sweep(make_sweep(), out, client=two_workers, progress=False)
    with pytest.raises(ProblemError, match="differs in grid"):
        run_sweep(make_sweep(mus=(0.5, 0.8)), out, client=two_workers, resume=True, progress=False)
    for i in first:  # the refused runs touched nothing
        assert os.stat(store.directory / f"point-{i:07d}.json").st_mtime_ns == stamps[i]

    computed: list[int] = []
    outcome = run_sweep(
        make_sweep(), out, client=two_workers, resume=True, progress=False,
        on_point=lambda index, record: computed.append(index),
    )  # fmt: skip
    assert sorted(computed) == sorted(set(range(8)) - first)  # each missing point once, no stored one again
    assert (outcome.computed, outcome.reused) == (5, 3)
    xr.testing.assert_identical(read_dataset(out), reference)
    # resuming a finished sweep computes nothing and keeps the file
    again = run_sweep(make_sweep(), out, client=two_workers, resume=True, progress=False)
    assert again.computed == 0
    xr.testing.assert_identical(again.dataset, reference)


def kill_worker_once(task, marker: str):
    """Compute a point, except that the first attempt at point 2 kills its own worker process."""
    if task.index == 2 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return compute_point(task)


@pytest.mark.slow
def test_a_killed_worker_loses_no_point(two_workers, reference, tmp_path):
    import cloudpickle

    marker = tmp_path / "killed"
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # the workers cannot import this test module
    try:
        compute = functools.partial(kill_worker_once, marker=str(marker))
        run_sweep(make_sweep(), tmp_path / "k.nc", client=two_workers, progress=False, compute=compute)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert marker.exists()  # a worker really died holding point 2
    xr.testing.assert_identical(read_dataset(tmp_path / "k.nc"), reference)
    two_workers.wait_for_workers(2, timeout=60)  # and its nanny restarted it


def test_a_local_cluster_uses_threads_for_small_work_and_processes_for_large():
    from amsgd.sweep.run import THREADS_MAX_WORK, _use_processes

    assert not _use_processes(None, THREADS_MAX_WORK)
    assert _use_processes(None, THREADS_MAX_WORK + 1)
    assert _use_processes(True, 1) and not _use_processes(False, 10 * THREADS_MAX_WORK)


def test_local_worker_threads_carry_no_memory_limit_of_their_own():
    """Dask gave each worker thread the machine's memory over their number and paused a worker while this
    process, which they share, was above it: with about 80 threads (24 GiB) every worker paused and
    ``sweep --local-workers 100`` hung. Threads now have no per-worker limit, and run tasks."""
    with dask_client(n_workers=3) as client:
        limits = client.run(lambda dask_worker: dask_worker.memory_manager.memory_limit)
        assert len(limits) == 3 and all(limit is None for limit in limits.values()), limits
        assert client.submit(sum, [1, 2]).result() == 3


def kill_worker_at_point_2(task):
    """Compute a point, except point 2, whose every attempt kills its worker process."""
    if task.index == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return compute_point(task)


@pytest.mark.slow
def test_a_point_whose_workers_keep_dying_is_one_line_and_the_rest_are_kept(two_workers, tmp_path):
    """Dask gives up on a task after its workers died three times (KilledWorker): that reached the user
    as a traceback without the points kept or a word on memory."""
    import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        with pytest.raises(ProblemError, match=r"^point \d+ \(or one beside it on the same worker\): the Dask workers "
                                               r"running it kept dying \(out of memory\?.*"
                                               r"kept in .*k\.nc\.parts/; rerun the same command with --resume"):  # fmt: skip
            run_sweep(make_sweep(), tmp_path / "k.nc", client=two_workers, progress=False,
                      compute=kill_worker_at_point_2, retries=0)  # fmt: skip
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    stored = {int(p.stem.split("-")[1]) for p in PartStore(tmp_path / "k.nc").directory.glob("point-*.json")}
    assert 2 not in stored
    two_workers.wait_for_workers(2, timeout=60)


def test_a_listener_that_is_not_a_scheduler_is_refused_within_the_timeout():
    """A port that accepts and then says nothing (a dashboard's, a stray server): Dask bounds the connect
    but not the handshake after it, and the sweep waited forever."""
    import socket
    import threading
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    raised: list = []

    def connect() -> None:  # on a thread of its own: a hang fails the test instead of stopping the suite
        try:
            with dask_client(f"tcp://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5):
                pass
        except ProblemError as exc:
            raised.append(exc)

    attempt = threading.Thread(target=connect, daemon=True)
    began = time.monotonic()
    try:
        attempt.start()
        attempt.join(10.0)
        assert not attempt.is_alive() and time.monotonic() - began < 5.0  # the deadline: 0.5 + 1 s
        assert accepted and re.match(r"no Dask scheduler answered at tcp://127.0.0.1:\d+ within 0.5 s", str(raised[0]))
    finally:
        listener.close()


@pytest.mark.slow
def test_a_lost_scheduler_is_one_line_and_the_points_are_kept(tmp_path):
    """The scheduler killed after the first point: the run stopped with Dask's CommClosedError traceback."""
    import json
    import subprocess
    import time

    file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(file)], stderr=subprocess.DEVNULL)  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not (file.exists() and file.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-dashboard"], stderr=subprocess.DEVNULL)  # fmt: skip
        from distributed import Client

        with Client(address, timeout="30s") as watcher:  # a sweep without workers would wait for one forever
            watcher.wait_for_workers(1, timeout=60)
        with pytest.raises(ProblemError, match=r"^lost the connection to the Dask scheduler .*; the finished points "
                                               r"are kept in .*l\.nc\.parts/; rerun the same command with --resume"):  # fmt: skip
            run_sweep(make_sweep(), tmp_path / "l.nc", scheduler=address, connect_timeout=30, progress=False,
                      on_point=lambda index, record: scheduler.kill())  # fmt: skip
        assert any(PartStore(tmp_path / "l.nc").directory.glob("point-*.json"))
    finally:
        scheduler.kill()
        if worker is not None:
            worker.kill()


def test_a_scheduler_without_workers_is_said_to_have_none():
    """The points wait for a worker: without a word the sweep printed "sweep 0%" for as long as it waited."""
    from distributed import LocalCluster

    from amsgd.core.errors import RunWarning

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:
        with pytest.warns(RunWarning, match=r"has no workers yet: the points wait until one connects"):
            with dask_client(cluster.scheduler_address):
                pass
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as working, warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)
        with dask_client(working.scheduler_address) as client:
            assert client.scheduler_info()["workers"]
