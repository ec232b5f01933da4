"""One machine-readable line per measured quantity, for ``benchmarks/performance.py`` to collect.

Every benchmark prints its own table for a reader; beside it, each headline number (a ratio measured
in the same run, or a time against its target) is emitted once as ``RESULT {json}`` with its name,
value, unit, target and whether the target is met.
"""

from __future__ import annotations

import json

PREFIX = "RESULT "


def emit(name: str, value: float, unit: str = "x", target: str | None = None, met: bool | None = None,
         note: str = "") -> None:  # fmt: skip
    """Print one result line; ``target`` in words (``"<= 1.3"``), ``met`` whether the value meets it."""
    record = {"name": name, "value": float(value), "unit": unit, "target": target, "met": met, "note": note}
    print(PREFIX + json.dumps(record, ensure_ascii=False), flush=True)
