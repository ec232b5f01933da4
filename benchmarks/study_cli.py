"""The command line shared by the simulation studies that print a table and store their rows."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path


def run_study(description: str, replicates: int, out: Path, study: Callable[[int], list[dict]],
              table: Callable[[list[dict]], str]) -> None:  # fmt: skip
    """Parse ``--replicates`` (default ``replicates``) and ``--out`` (default ``out``), run ``study`` with
    the replicates, print ``table`` of its rows and write them to the out path with the seconds taken
    (``{"seconds": ..., "cases": rows}``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--replicates", type=int, default=replicates)
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args()
    began = time.perf_counter()
    rows = study(args.replicates)
    print(table(rows))
    args.out.write_text(json.dumps({"seconds": time.perf_counter() - began, "cases": rows}, indent=1) + "\n")
