"""Cold-start time of ``amsgd derive``: the default problem (target: under 5 seconds) and its growth with d.

Each run is a fresh interpreter, so imports and every symbolic step are included. For the default
problem, in an empty folder of stored derivations (``AMSGD_CACHE_DIR``, see
``amsgd.derivations.stored``): the first run (it derives everything and stores what depends only on
the code), then the median of a few later runs (they load it; the target is theirs), of a few runs
with the store off (``AMSGD_CACHE_DIR=off``: every process derives everything) and the ratio to the
interpreter's own start-up, all measured in the same run; then, with a store of its own filled by a
first run, one run per dimension d (spectrum
``d, d − 1, ..., 1``, the default η and μ) in JSON and Markdown, the ratio d = 50 / d = 4 (target:
at most 3, the indexed derivation does not grow with d) and d = 1000 (target: under a minute).
Last, d = 1000 with the closely spaced spectrum ``0.995^i`` (every gap 0.5%: slow modes and
mean-dynamics delay limits τ* in the hundreds, where the second-moment theory solves
autoregressions of that order; same target).

    python benchmarks/bench_derive.py [--runs 3] [--dims 4,8,12,20,50,100,1000] [--close-dim 1000] [--timeout 900]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from ratios import emit  # benchmarks/ is on the path when a script runs

DIMS = (4, 8, 12, 20, 50, 100, 1000)


def wall(cmd: list[str], timeout: float | None = None, store: str | None = None) -> float:
    """Seconds the command took (with ``AMSGD_CACHE_DIR=store`` when given); ``inf`` if it ran past
    ``timeout``."""
    env = os.environ if store is None else dict(os.environ, AMSGD_CACHE_DIR=store)
    start = time.perf_counter()
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.perf_counter() - start


def spectrum(d: int) -> str:
    return ",".join(str(v) for v in range(d, 0, -1))


def close_spectrum(d: int) -> str:
    """``1, 0.995, 0.995², ...``: d eigenvalues 0.5% apart."""
    return ",".join(f"{0.995**i:.6g}" for i in range(d))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dims", default=",".join(map(str, DIMS)), help="dimensions of the sweep (default: %(default)s)")
    parser.add_argument("--close-dim", type=int, default=1000, help="d of the closely spaced spectrum (0: skip)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run counts as too slow")
    args = parser.parse_args()
    base = [wall([sys.executable, "-c", "pass"]) for _ in range(args.runs)]
    interpreter = statistics.median(base)
    print(f"python start-up: {interpreter:.3f} s")
    for fmt in ("json", "markdown", "latex"):
        cmd = [sys.executable, "-m", "amsgd", "derive", "--format", fmt]
        with tempfile.TemporaryDirectory() as store:
            first = wall(cmd, store=store)
            later = statistics.median(wall(cmd, store=store) for _ in range(args.runs))
        off = statistics.median(wall(cmd, store="off") for _ in range(args.runs))
        verdict = "ok" if later < 5.0 else "OVER TARGET"
        print(f"amsgd derive --format {fmt:8s}: first run {first:.2f} s, later runs {later:.2f} s "
              f"(x{later / interpreter:.0f} start-up) [{verdict}: < 5 s], store off {off:.2f} s")  # fmt: skip
        emit(f"derive --format {fmt}, default problem (cold start, derivations stored by a first run of {first:.1f} s)",
             later, unit="s", target="< 5 s", met=later < 5.0)  # fmt: skip
        emit(f"derive --format {fmt}, default problem: store off / stored", off / later)

    with tempfile.TemporaryDirectory() as store:
        for fmt in ("json", "markdown"):  # fill it: the timings below are of runs that load the stored derivations
            wall([sys.executable, "-m", "amsgd", "derive", "-q", "--format", fmt], store=store)
        by_dimension(args, store)


def by_dimension(args: argparse.Namespace, store: str) -> None:
    """The runs per dimension and of the closely spaced spectrum, each loading the derivations stored in
    ``store`` (not the user's own store, whose state would decide which run pays for deriving)."""
    dims = [int(d) for d in args.dims.split(",")]
    sweep: dict[tuple[int, str], float] = {}
    print("\nd       json (s)  markdown (s)   spectrum d, d - 1, ..., 1")
    for d in dims:
        for fmt in ("json", "markdown"):
            cmd = [sys.executable, "-m", "amsgd", "derive", "-q", "--spectrum", spectrum(d), "--format", fmt]
            sweep[d, fmt] = wall(cmd, args.timeout, store)
        print(f"{d:<7d} {sweep[d, 'json']:8.2f}  {sweep[d, 'markdown']:12.2f}")
    for fmt in ("json", "markdown"):
        if (4, fmt) in sweep and (50, fmt) in sweep:
            ratio = sweep[50, fmt] / sweep[4, fmt]
            print(f"{fmt:8s} d=50 / d=4: {ratio:.2f} [{'ok' if ratio <= 3 else 'OVER TARGET'}: <= 3]")
            emit(f"derive --format {fmt}: d = 50 / d = 4", ratio, target="<= 3", met=ratio <= 3)
        if (1000, fmt) in sweep:
            seconds = sweep[1000, fmt]
            print(f"{fmt:8s} d=1000: {seconds:.1f} s [{'ok' if seconds < 60 else 'OVER TARGET'}: < 60 s]")
            emit(f"derive --format {fmt}: d = 1000", seconds, unit="s", target="< 60 s", met=seconds < 60)
    if args.close_dim:
        for fmt in ("json", "markdown"):
            d = args.close_dim
            cmd = [sys.executable, "-m", "amsgd", "derive", "-q", "--spectrum", close_spectrum(d), "--format", fmt]
            seconds = wall(cmd, args.timeout, store)
            print(f"{fmt:8s} d={d}, spectrum 0.995^i: {seconds:.1f} s [{'ok' if seconds < 60 else 'OVER TARGET'}: < 60 s]")
            emit(f"derive --format {fmt}: d = {d}, spectrum 0.995^i", seconds, unit="s", target="< 60 s", met=seconds < 60)


if __name__ == "__main__":
    main()
