"""Every benchmark in one run, and docs/performance.md written from what they measured.

Runs each benchmark script of this folder as a fresh process, collects the ``RESULT`` lines it prints
(:mod:`ratios`), writes ``benchmarks/performance.json`` (the results, each script's wall time and full
output, the machine) and rewrites the block of docs/performance.md between ``<!-- results:begin -->``
and ``<!-- results:end -->``. The test suite checks that the block is the rendering of the JSON, so no
number in it is typed by hand. Usage: ``python benchmarks/performance.py [--only NAMES]`` (``--only``
re-runs the named benchmarks and keeps the others' recorded results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ratios import PREFIX

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "performance.json"
PAGE = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

#: name -> (script, arguments, what it measures)
BENCHMARKS = {
    "simulate": ("bench_simulate.py", [], "the PCA simulator against its draw floor, NumPy and Python loops; memory"),
    "high-dim": ("bench_high_dim.py", [], "the simulator at d = 1000 and 10 000 against its draw floor and NumPy"),
    "normals": ("bench_normals.py", [], "the simulator's ziggurat against numba's Generator"),
    "euler-jit": ("bench_euler_jit.py", [], "the compiled SME integrator against a plain numba Euler–Maruyama; its cache"),
    "sdde": ("bench_sdde.py", [], "the compiled SDDE integrator against a plain numba Euler–Maruyama"),
    "integrate": ("bench_integrate.py", [], "the batched SME integrators against sdeint looped over paths"),
    "derive": ("bench_derive.py", [], "`amsgd derive` as the dimension grows"),
    "theory": ("bench_theory.py", [], "the finite-η floor and mean-square stability at d = 100, τ = 200"),
    "long-delays": ("bench_long_delays.py", [], "`amsgd derive` under geometric staleness laws up to 20 000 lags"),
    "full-moments": ("bench_full_moments.py", [], "a model's full second moments: the stationary solve against a dense LU"),
    "sweep": ("bench_sweep.py", [], "sweeps on one and two Dask workers, threads against processes"),
    "models": ("bench_models.py", [], "the model simulator against a plain JAX loop; the Hessian"),
    "startup": ("bench_startup.py", [], "`amsgd --help` against `python -c 'import numpy'`"),
}


def run(script: str, arguments: list[str]) -> dict:
    """Run one benchmark in a fresh process: its results, wall time and output."""
    argv = [sys.executable, str(ROOT / "benchmarks" / script), *arguments]
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT / "benchmarks")
    seconds = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"{script} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    results = [json.loads(line[len(PREFIX):]) for line in done.stdout.splitlines() if line.startswith(PREFIX)]
    if not results:
        raise SystemExit(f"{script} printed no {PREFIX.strip()} line")
    output = "\n".join(line for line in done.stdout.splitlines() if not line.startswith(PREFIX))
    return {"seconds": round(seconds, 1), "results": results, "output": output, "machine": machine(),
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip


def machine() -> str:
    """The machine in words: CPU model, cores, memory, Python and the numeric packages."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f", {kib / 2**20:.0f} GiB memory"
    import numba
    import numpy
    import scipy

    return (f"{model}, {cores} cores available{memory}; Python {platform.python_version()}, NumPy {numpy.__version__}, "
            f"SciPy {scipy.__version__}, numba {numba.__version__}")  # fmt: skip


def _value(result: dict) -> str:
    value, unit = result["value"], result["unit"]
    if unit == "bool":
        return "yes" if value else "no"
    text = f"{value:.3f}" if abs(value) < 10 else (f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}")
    return f"{text}×" if unit == "x" else f"{text} {unit}"


def measured_on(record: dict) -> list[str]:
    """Where and when the benchmarks ran: one line, or one per machine and date when ``--only`` re-ran
    some elsewhere (a benchmark's own ``machine`` and ``date``, else the record's)."""
    where: dict[tuple[str, str], list[str]] = {}
    for name in BENCHMARKS:
        entry = record["benchmarks"][name]
        where.setdefault((entry.get("machine", record["machine"]), entry.get("date", record["date"])), []).append(name)
    if len(where) == 1:
        ((place, date),) = where
        return [f"Measured by `python benchmarks/performance.py` on {place} ({date})."]
    lines = ["Measured by `python benchmarks/performance.py`, benchmark by benchmark (`--only` re-ran some):", ""]
    return lines + [f"* {', '.join(names)}: {place} ({date})" for (place, date), names in where.items()]


def render(record: dict) -> str:
    """The block of docs/performance.md: the machines, then one row per result."""
    rows = [*measured_on(record), ""]
    rows += ["| benchmark | result | value | target | met |", "|---|---|---|---|---|"]
    for name, (script, _, _) in BENCHMARKS.items():
        for r in record["benchmarks"][name]["results"]:
            met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
            note = f" ({r['note']})" if r["note"] else ""
            rows.append(f"| `{script}` | {r['name']}{note} | {_value(r)} | {r['target'] or '—'} | {met} |")
    return "\n".join(rows) + "\n"


def page_block(text: str) -> str:
    """The text between the markers of docs/performance.md."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAMES", help=f"run only these, keep the others ({', '.join(BENCHMARKS)})")
    args = parser.parse_args()
    previous = json.loads(RECORD.read_text())["benchmarks"] if RECORD.exists() else {}
    chosen = set(BENCHMARKS) if args.only is None else {name.strip() for name in args.only.split(",")}
    if chosen - set(BENCHMARKS):
        raise SystemExit(f"unknown benchmarks {sorted(chosen - set(BENCHMARKS))}; choose from {', '.join(BENCHMARKS)}")
    benchmarks = {}
    for name, (script, arguments, _) in BENCHMARKS.items():
        if name not in chosen and name in previous:
            benchmarks[name] = previous[name]
            continue
        print(f"{name}: running {script} ...", file=sys.stderr, flush=True)
        benchmarks[name] = run(script, arguments)
        print(f"{name}: {benchmarks[name]['seconds']} s", file=sys.stderr, flush=True)
        record = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "benchmarks": {**previous, **benchmarks}}
        RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")  # kept if a later one fails
    record = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "benchmarks": benchmarks}
    RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    text = PAGE.read_text()
    head, rest = text.split(BEGIN, 1)
    PAGE.write_text(head + BEGIN + "\n" + render(record) + END + rest.split(END, 1)[1])


if __name__ == "__main__":
    main()
