"""Crash-safe storage of a sweep in progress: a manifest and one small file per finished point.

A sweep writing ``FILE.nc`` keeps its progress in the directory ``FILE.nc.parts/``:

* ``manifest.json``: everything that determines the results (problem, grid, steps, replicates,
  seed, simulation options). A resumed sweep must present the same manifest.
* ``point-NNNNNNN.json``: the results of grid point NNNNNNN, written when it finishes.

Every file is written to a temporary name in the same directory, flushed to disk and renamed over
its final name, so a file is either absent or complete whatever moment the process is killed.
Floats are stored by ``json`` as their shortest round-trip representation (``NaN`` and
``Infinity`` included), so a point read back is bit-identical to the one computed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from amsgd.core.errors import ProblemError
from amsgd.core.files import atomic_write_bytes

MANIFEST = "manifest.json"
_PART_PREFIX = "point-"


def canonical(document: dict) -> dict:
    """``document`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(document))


class PartStore:
    """The ``FILE.nc.parts/`` directory of a sweep writing ``FILE.nc``."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.directory = self.out.with_name(self.out.name + ".parts")

    @property
    def exists(self) -> bool:
        return self.directory.exists()

    def create(self, manifest: dict) -> None:
        """Start a new store; refuses if one is already there."""
        self.directory.mkdir()
        atomic_write_bytes(self.directory / MANIFEST, json.dumps(manifest, indent=1).encode())

    def manifest(self) -> dict:
        try:
            return json.loads((self.directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProblemError(f"{self.directory} has no readable {MANIFEST}: {exc}") from None

    def _part(self, index: int) -> Path:
        return self.directory / f"{_PART_PREFIX}{index:07d}.json"

    def write(self, index: int, record: dict) -> None:
        """Persist the results of point ``index`` (atomically)."""
        atomic_write_bytes(self._part(index), json.dumps(record).encode())

    def done(self) -> set[int]:
        """The numbers of the points already stored."""
        return {int(p.stem[len(_PART_PREFIX):]) for p in self._parts()}

    def read(self, index: int) -> dict:
        return json.loads(self._part(index).read_text(encoding="utf-8"))

    def _parts(self) -> Iterator[Path]:
        return self.directory.glob(f"{_PART_PREFIX}*.json")

    def remove(self) -> None:
        """Delete the store (after the final file has been written)."""
        shutil.rmtree(self.directory)
