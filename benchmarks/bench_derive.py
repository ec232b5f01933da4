"""Cold-start time of ``amsgd derive`` for the default problem (target: under 5 seconds).

Each run is a fresh interpreter, so imports and every symbolic step are included. Prints the
median of a few runs and the ratio to the interpreter's own start-up, measured in the same run.

    python benchmarks/bench_derive.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = [wall([sys.executable, "-c", "pass"]) for _ in range(args.runs)]
    rows = {}
    for fmt in ("json", "markdown", "latex"):
        rows[fmt] = [wall([sys.executable, "-m", "amsgd", "derive", "--format", fmt]) for _ in range(args.runs)]
    interpreter = statistics.median(base)
    print(f"python start-up: {interpreter:.3f} s")
    for fmt, times in rows.items():
        median = statistics.median(times)
        verdict = "ok" if median < 5.0 else "OVER TARGET"
        print(f"amsgd derive --format {fmt:8s}: {median:.2f} s (x{median / interpreter:.0f} start-up) [{verdict}: < 5 s]")


if __name__ == "__main__":
    main()
