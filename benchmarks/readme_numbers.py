"""The timings and rates quoted in README.md, measured on this machine and written into it.

Runs each documented command as a fresh process (``--quiet``) and the two test runs, records the
wall time (and the simulator's rate from its JSON), writes ``benchmarks/readme_numbers.json`` and rewrites the block
of README.md between ``<!-- numbers:begin -->`` and ``<!-- numbers:end -->``. The test suite checks
that the block is the rendering of the JSON, so no number in it is typed by hand. Usage:
``python benchmarks/readme_numbers.py [--skip-long] [--only NAMES]`` (``--skip-long`` keeps the
previous values of the runs over a minute, ``--only`` re-measures the named runs and keeps the others).
Every command runs after one untimed ``amsgd derive`` has filled the store of derivations
(``amsgd.derivations.stored``), as after the first run on a machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "readme_numbers.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- numbers:begin -->", "<!-- numbers:end -->"
SELF_CHECK = "tests/test_docs.py::test_readme_numbers_are_the_ones_the_script_measured"

#: name -> (what it is, the command after ``amsgd`` or ``pytest:`` and pytest's options, whether it
#: takes over a minute)
RUNS = {
    "validate-default": ("the main job: `amsgd validate --preset default`", "validate --preset default --out {tmp}/v", False),
    "validate-paper-pca": ("`amsgd validate --preset paper-pca`", "validate --preset paper-pca --out {tmp}/p", True),
    "validate-paper-dnn": ("`amsgd validate --preset paper-dnn`", "validate --preset paper-dnn --out {tmp}/d", True),
    "derive": ("`amsgd derive` (JSON, default problem, after the first run stored its derivations)", "derive --out {tmp}/d.json", False),
    "simulate": (
        "`amsgd simulate --tau 10 --steps 20000 --replicates 1000`",
        "simulate --tau 10 --steps 20000 --replicates 1000 --seed 7",
        False,
    ),
    "advise": ("`amsgd advise --model logistic --data digits --eta 0.2`", "advise --model logistic --data digits --eta 0.2", False),
    "help": ("`amsgd --help`", "--help", False),
    "tests-quick": ("the quick tests: `python -m pytest`", "pytest:", True),
    "tests-full": ("the full suite: `python -m pytest -m \"slow or not slow\" -n auto`", "pytest:-m|slow or not slow|-n|auto", True),
}


def measure(command: str) -> dict:
    """Wall time of ``amsgd COMMAND --quiet`` (or of pytest) in a fresh process, and the simulator's rate."""
    with tempfile.TemporaryDirectory() as tmp:
        if command.startswith("pytest:"):
            options = [part for part in command[len("pytest:"):].split("|") if part]
            # the check of this very block is left out: the block is what this run rewrites
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--deselect", SELF_CHECK, *options]
        else:
            argv = [sys.executable, "-m", "amsgd", *command.format(tmp=tmp).split()]
            argv += [] if command == "--help" else ["--quiet"]
        began = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - began
    if done.returncode not in (0, 1) or (command.startswith("pytest:") and done.returncode):
        said = (done.stdout + done.stderr).strip()  # pytest reports its failures on stdout
        raise SystemExit(f"{' '.join(argv[2:])} failed ({done.returncode}): {said[-2000:]}")
    out = {"seconds": round(seconds, 1)}
    if command.startswith("simulate"):
        out["replicate_steps_per_second"] = json.loads(done.stdout)["replicate_steps_per_second"]
    return out


def render(record: dict) -> str:
    """The README block: one row per run, the machine and the date."""
    rows = [f"Measured by `python benchmarks/readme_numbers.py` on {record['machine']} ({record['date']}):", ""]
    rows += ["| command | wall time |", "|---|---|"]
    for name, (what, _, _) in RUNS.items():
        got = record["runs"][name]
        cell = _duration(got["seconds"])
        if "replicate_steps_per_second" in got:
            cell += f" ({got['replicate_steps_per_second'] / 1e6:.0f} M replicate-steps/s)"
        rows.append(f"| {what} | {cell} |")
    return "\n".join(rows) + "\n"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def readme_block(text: str) -> str:
    """The text between the markers of README.md."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-long", action="store_true", help="keep the recorded values of the long runs")
    parser.add_argument("--only", metavar="NAMES", help=f"measure only these runs, keep the others ({', '.join(RUNS)})")
    args = parser.parse_args()
    previous = json.loads(RECORD.read_text())["runs"] if RECORD.exists() else {}
    chosen = set(RUNS) if args.only is None else {name.strip() for name in args.only.split(",")}
    if chosen - set(RUNS):
        raise SystemExit(f"unknown runs {sorted(chosen - set(RUNS))}; choose from {', '.join(RUNS)}")
    runs = {}
    subprocess.run([sys.executable, "-m", "amsgd", "derive", "--quiet"], capture_output=True, check=True, cwd=ROOT)
    for name, (_, command, long) in RUNS.items():
        if name in previous and (name not in chosen or (args.skip_long and long)):
            runs[name] = previous[name]
            continue
        runs[name] = measure(command)
        print(f"{name}: {runs[name]}", file=sys.stderr)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    record = {
        "machine": f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
    }
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    text = README.read_text()
    head, rest = text.split(BEGIN, 1)
    README.write_text(head + BEGIN + "\n" + render(record) + END + rest.split(END, 1)[1])


if __name__ == "__main__":
    main()
