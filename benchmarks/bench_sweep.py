"""Speed-up of a 200-point ``amsgd sweep`` on two local Dask workers over one, measured in one run.

The grid is the published experiment's shape, μ ∈ {0.5, 0.55, ..., 0.95} × τ ∈ {0, 10, ..., 190}
(10 × 20 = 200 points) at η = 5e-4, Σ = diag(4, 3, 2, 1), Gaussian data, each point R replicates
× N steps (default 256 × 10 000, about 0.2 s of simulation and prediction per point, so that the
per-task overhead of Dask, a few milliseconds, is small). For each worker count the local cluster
is started and its workers load the compiled kernels before the clock starts; the time is that of
``run_sweep`` (submission, computation, persisting every point, assembling and writing the file).
The two Datasets are checked to be identical. Target: speed-up >= 1.7 on a 2-core machine.

Usage: ``python benchmarks/bench_sweep.py [--steps N] [--replicates R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from amsgd import Problem
from amsgd.sweep.cluster import dask_client
from amsgd.sweep.dataset import read_dataset
from amsgd.sweep.grid import SweepGrid, parse_axis
from amsgd.sweep.run import run_sweep
from amsgd.sweep.sweep import Sweep


def load_kernels() -> None:
    from amsgd.simulate.engine import warm_up

    warm_up()


def timed_sweep(sweep: Sweep, workers: int, out: Path) -> dict:
    began = time.perf_counter()
    with dask_client(n_workers=workers) as client:
        client.run(load_kernels)
        startup = time.perf_counter() - began
        began = time.perf_counter()
        outcome = run_sweep(sweep, out, client=client, progress=False)
        elapsed = time.perf_counter() - began
    return {"workers": workers, "cluster_startup_seconds": startup, "sweep_seconds": elapsed, "points": outcome.computed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--replicates", type=int, default=256)
    args = parser.parse_args()

    grid = SweepGrid(
        ("gaussian",), (5e-4,), parse_axis("0.5:0.95:0.05", "--mu"), "tau", parse_axis("0:190:10", "--tau", integer=True)
    )
    sweep = Sweep(Problem.from_spectrum(), grid, steps=args.steps, replicates=args.replicates, seed=2018)
    sweep.optimum_modes("gaussian")  # the one SymPy derivation, outside both timings
    with tempfile.TemporaryDirectory() as tmp:
        runs = [timed_sweep(sweep, n, Path(tmp) / f"w{n}.nc") for n in (1, 2)]
        identical = read_dataset(Path(tmp) / "w1.nc").identical(read_dataset(Path(tmp) / "w2.nc"))
    one, two = (r["sweep_seconds"] for r in runs)
    report = {
        "points": grid.size,
        "steps": args.steps,
        "replicates": args.replicates,
        "cores": len(os.sched_getaffinity(0)),
        "runs": runs,
        "speedup_2_over_1": one / two,
        "datasets_identical": identical,
    }
    print(json.dumps(report, indent=2))
    print(f"1 worker {one:.1f} s, 2 workers {two:.1f} s: speed-up {one / two:.2f}x (target >= 1.7)")


if __name__ == "__main__":
    main()
