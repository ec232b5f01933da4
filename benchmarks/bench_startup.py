"""Start-up time of the command line, as a ratio measured in this run.

``amsgd --help`` (and each subcommand's ``--help``) against ``python -c "import numpy"``, both as
fresh processes, best of ``--repeats`` runs each, interleaved so that machine load hits both alike.
Target: ``amsgd --help`` at most 3 times the NumPy import. Usage:
``python benchmarks/bench_startup.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from ratios import emit  # benchmarks/ is on the path when a script runs

COMMANDS = ("derive", "simulate", "integrate", "sweep", "validate", "figures", "advise")


def wall(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of each command (default: %(default)s)")
    args = parser.parse_args()
    numpy = [sys.executable, "-c", "import numpy"]
    targets = {"amsgd --help": [sys.executable, "-m", "amsgd", "--help"]}
    targets.update({f"amsgd {c} --help": [sys.executable, "-m", "amsgd", c, "--help"] for c in COMMANDS})
    best = {name: float("inf") for name in ("import numpy", *targets)}
    for _ in range(args.repeats):
        best["import numpy"] = min(best["import numpy"], wall(numpy))
        for name, argv in targets.items():
            best[name] = min(best[name], wall(argv))
    base = best["import numpy"]
    print(f"best of {args.repeats} fresh processes; python -c 'import numpy': {1e3 * base:.0f} ms")
    for name in targets:
        print(f"{name:<28} {1e3 * best[name]:6.0f} ms  ratio {best[name] / base:.2f}")
    ratio = best["amsgd --help"] / base
    print(f"amsgd --help / import numpy = {ratio:.2f} (target <= 3): {'met' if ratio <= 3 else 'NOT met'}")
    emit("start-up: amsgd --help / import numpy", ratio, target="<= 3", met=ratio <= 3)


if __name__ == "__main__":
    main()
