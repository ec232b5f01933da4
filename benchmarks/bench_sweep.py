"""Speed-up of a 200-point ``amsgd sweep`` on two local Dask workers over one, measured in one run.

The grid is the published experiment's shape, μ ∈ {0.5, 0.55, ..., 0.95} × τ ∈ {0, 10, ..., 190}
(10 × 20 = 200 points) at η = 5e-4, Σ = diag(4, 3, 2, 1), Gaussian data, each point R replicates
× N steps (default 256 × 40 000, about 0.1 s per point on one core, four fifths of it simulation,
so that the per-task overhead of Dask, a few milliseconds, and the file's assembly and writing at
the end, about 0.3 s, are small beside it). A two-point sweep runs first, so that no timed run
pays the imports of the file's writing; for each worker count the local cluster is started and its
workers load the compiled kernels before the clock starts; the time is that of ``run_sweep``
(submission, computation, persisting every point, assembling and writing the file).
The Datasets are checked to be identical. Target: speed-up >= 1.7 on a 2-core machine, with two
worker threads (the local cluster's default) and with two worker processes; a 10-point sweep from
a cold start shows what a small sweep pays for starting each kind of cluster.

Usage: ``python benchmarks/bench_sweep.py [--steps N] [--replicates R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from ratios import emit  # benchmarks/ is on the path when a script runs

from amsgd import Problem
from amsgd.sweep.cluster import dask_client
from amsgd.sweep.dataset import read_dataset
from amsgd.sweep.grid import SweepGrid, parse_axis
from amsgd.sweep.run import run_sweep
from amsgd.sweep.sweep import Sweep


def load_kernels() -> None:
    from amsgd.simulate.engine import warm_up

    warm_up()


def timed_sweep(sweep: Sweep, workers: int, out: Path, processes: bool = False) -> dict:
    began = time.perf_counter()
    with dask_client(n_workers=workers, processes=processes) as client:
        client.run(load_kernels)
        startup = time.perf_counter() - began
        began = time.perf_counter()
        outcome = run_sweep(sweep, out, client=client, progress=False)
        elapsed = time.perf_counter() - began
    return {"workers": workers, "processes": processes, "cluster_startup_seconds": startup,
            "sweep_seconds": elapsed, "points": outcome.computed}  # fmt: skip


def warm_up(sweep: Sweep, out: Path) -> None:
    """Two points of ``sweep`` on one thread, untimed: the imports of the file's assembly and writing."""
    grid = sweep.grid
    small = SweepGrid(grid.distributions, grid.etas, grid.mus[:1], grid.delay_axis, grid.delays[:2])
    with dask_client(n_workers=1, processes=False) as client:
        run_sweep(Sweep(sweep.problem, small, steps=100, replicates=8, seed=1), out, client=client, progress=False)


def small_sweep_totals(out: Path) -> dict:
    """A 10-point sweep (2 000 steps × 64 replicates per point) from a cold start to its file, on two
    worker threads and on two worker processes: what a small sweep pays for its cluster."""
    grid = SweepGrid(("gaussian",), (5e-4,), (0.7, 0.9), "tau", (0, 2, 4, 6, 8))
    sweep = Sweep(Problem.from_spectrum(), grid, steps=2_000, replicates=64, seed=1)
    sweep.optimum_modes("gaussian")
    totals = {}
    for processes in (False, True):
        began = time.perf_counter()
        with dask_client(n_workers=2, processes=processes) as client:
            run_sweep(sweep, out / f"small-{processes}.nc", client=client, progress=False)
        totals["processes" if processes else "threads"] = time.perf_counter() - began
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--replicates", type=int, default=256)
    args = parser.parse_args()

    grid = SweepGrid(
        ("gaussian",), (5e-4,), parse_axis("0.5:0.95:0.05", "--mu"), "tau", parse_axis("0:190:10", "--tau", integer=True)
    )
    sweep = Sweep(Problem.from_spectrum(), grid, steps=args.steps, replicates=args.replicates, seed=2018)
    sweep.optimum_modes("gaussian")  # the one SymPy derivation, outside both timings
    with tempfile.TemporaryDirectory() as tmp:
        warm_up(sweep, Path(tmp) / "warm.nc")
        runs = [timed_sweep(sweep, n, Path(tmp) / f"w{n}.nc") for n in (1, 2)]
        runs.append(timed_sweep(sweep, 2, Path(tmp) / "p2.nc", processes=True))
        identical = all(read_dataset(Path(tmp) / "w1.nc").identical(read_dataset(Path(tmp) / name))
                        for name in ("w2.nc", "p2.nc"))  # fmt: skip
        small = small_sweep_totals(Path(tmp))
    one, two, processes = (r["sweep_seconds"] for r in runs)
    report = {
        "points": grid.size,
        "steps": args.steps,
        "replicates": args.replicates,
        "cores": len(os.sched_getaffinity(0)),
        "runs": runs,
        "speedup_2_over_1": one / two,
        "threads_over_processes_2_workers": two / processes,
        "small_sweep_total_seconds": small,
        "datasets_identical": identical,
    }
    print(json.dumps(report, indent=2))
    print(f"1 worker {one:.1f} s, 2 worker threads {two:.1f} s, 2 worker processes {processes:.1f} s: "
          f"speed-ups {one / two:.2f}x and {one / processes:.2f}x (target >= 1.7)")
    print(f"a 10-point sweep from a cold start: threads {small['threads']:.1f} s, processes {small['processes']:.1f} s")
    emit("sweep: 1 worker / 2 worker processes", one / processes, target=">= 1.7", met=one / processes >= 1.7,
         note=f"{grid.size} points, {args.steps} steps x {args.replicates} replicates")
    emit("sweep: 1 worker / 2 worker threads", one / two, target=">= 1.7", met=one / two >= 1.7,
         note="the default kind of local worker up to 1e8 replicate-steps")
    emit("sweep: 2 threads / 2 processes (time)", two / processes, note=f"threads {two:.1f} s, processes {processes:.1f} s")
    emit("sweep: small sweep, processes / threads (cold start)", small["processes"] / small["threads"],
         target="> 1 (threads for small work)", met=small["processes"] > small["threads"],
         note=f"threads {small['threads']:.1f} s, processes {small['processes']:.1f} s")
    emit("sweep: results identical across workers and threads", float(identical), unit="bool", target="1", met=identical)


if __name__ == "__main__":
    main()
