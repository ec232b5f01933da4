"""Crash-safe storage of a sweep in progress: a manifest and one small file per finished point.

A sweep writing ``FILE.nc`` keeps its progress in the directory ``FILE.nc.parts/``:

* ``manifest.json``: everything that determines the results (problem, grid, steps, replicates,
  seed, simulation options). A resumed sweep must present the same manifest.
* ``point-NNNNNNN.json``: the results of grid point NNNNNNN, written when it finishes, as one JSON
  object ``{"sha256": DIGEST, "manifest": HASH, "record": RECORD}``:

  - ``RECORD`` is the point's results (the keys of :data:`amsgd.sweep.sweep.RECORD_FIELDS`);
  - ``HASH`` is :func:`manifest_hash` of the manifest the point was computed under, so a point of
    another sweep is recognised even when ``manifest.json`` itself is lost;
  - ``DIGEST`` is the SHA-256 (hex) of :func:`body_bytes` of ``{"manifest": HASH, "record": RECORD}``:
    its JSON with sorted keys and no spaces. ``json`` writes floats in their shortest round-trip
    form, so the body read back serialises to the same bytes, and any change to the file (a
    truncation, a flipped byte, an edit) shows as a checksum mismatch.

Every file is written to a temporary name in the same directory, flushed to disk and renamed over
its final name, so a file is either absent or complete whatever moment the process is killed.
Floats are stored by ``json`` as their shortest round-trip representation (``NaN`` and
``Infinity`` included), so a point read back is bit-identical to the one computed.

:meth:`PartStore.load` checks a part before handing out its record and raises :class:`DamagedFile`
(or :class:`ForeignPart`, for a point of another sweep) with the reason in plain words; what to do
about it (recompute the point, rebuild the manifest) is decided by :mod:`amsgd.sweep.run`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from amsgd.core.errors import ProblemError
from amsgd.core.files import atomic_write_bytes, plain_reason, temporaries

MANIFEST = "manifest.json"
_PART_PREFIX = "point-"
_PART_NAME = re.compile(r"point-(\d+)\.json")


def canonical(document: dict) -> dict:
    """``document`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(document))


def body_bytes(document: object) -> bytes:
    """The bytes a checksum is taken of: JSON with sorted keys and no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def manifest_hash(manifest: dict) -> str:
    """The SHA-256 (hex) of ``manifest``, recorded in every part computed under it."""
    return hashlib.sha256(body_bytes(canonical(manifest))).hexdigest()


class DamagedFile(Exception):
    """A stored file that cannot be used: ``path`` and the ``reason`` in plain words."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged ({reason})")
        self.path = path
        self.reason = reason


class ForeignPart(DamagedFile):
    """A sound part computed for another sweep (its manifest hash differs)."""


@contextlib.contextmanager
def reporting_write_errors(path: Path, resume_hint: str = "run again with --resume to continue") -> Iterator[None]:
    """Turn a failed write of ``path`` (disk full, folder removed or read-only) into one plain line."""
    try:
        yield
    except OSError as exc:
        raise ProblemError(
            f"cannot write {path}: {plain_reason(exc)}; free space on the disk holding {path.parent} "
            f"(or make the folder writable), then {resume_hint}"
        ) from None


class PartStore:
    """The ``FILE.nc.parts/`` directory of a sweep writing ``FILE.nc``.

    ``manifest`` is the manifest of the sweep using the store (default: the one given to
    :meth:`create`, else the stored one); parts computed under another one are :class:`ForeignPart`.
    ``fields`` are the keys a record must have (none checked by default).
    """

    def __init__(self, out: str | os.PathLike, manifest: dict | None = None, fields: Sequence[str] = ()) -> None:
        self.out = Path(out)
        self.directory = self.out.with_name(self.out.name + ".parts")
        self.fields = tuple(fields)
        self._wanted = None if manifest is None else canonical(manifest)

    @property
    def exists(self) -> bool:
        return self.directory.exists()

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def create(self, manifest: dict) -> None:
        """Start a new store; refuses if one is already there (:class:`FileExistsError`)."""
        if self.directory.exists():
            raise FileExistsError(f"{self.directory} exists")
        with reporting_write_errors(self.directory):
            self.directory.mkdir()
        self.write_manifest(manifest)

    def write_manifest(self, manifest: dict) -> None:
        """Write (or rewrite) ``manifest.json``; later parts are written under ``manifest``."""
        self._wanted = canonical(manifest)
        with reporting_write_errors(self.manifest_path):
            atomic_write_bytes(self.manifest_path, json.dumps(self._wanted, indent=1).encode())

    def manifest(self) -> dict:
        """The stored manifest; a missing or damaged one is a :class:`ProblemError`."""
        try:
            return self.load_manifest()
        except DamagedFile as exc:
            raise ProblemError(f"{self.directory} has no readable {MANIFEST}: {exc.reason}") from None

    def load_manifest(self) -> dict:
        """The stored manifest, or :class:`DamagedFile` saying why it cannot be used."""
        document = _load_json(self.manifest_path)
        if not isinstance(document, dict) or not document:
            raise DamagedFile(self.manifest_path, "not a manifest: no JSON object of settings")
        return document

    def part_path(self, index: int) -> Path:
        """The file of point ``index``."""
        return self.directory / f"{_PART_PREFIX}{index:07d}.json"

    def _manifest_hash(self) -> str:
        if self._wanted is None:
            self._wanted = canonical(self.manifest())
        return manifest_hash(self._wanted)

    def write(self, index: int, record: dict) -> None:
        """Persist the results of point ``index`` (atomically), with its checksum and manifest hash."""
        body = {"manifest": self._manifest_hash(), "record": record}
        document = {"sha256": hashlib.sha256(body_bytes(body)).hexdigest(), **body}
        with reporting_write_errors(self.part_path(index)):
            atomic_write_bytes(self.part_path(index), json.dumps(document).encode())

    def done(self) -> set[int]:
        """The numbers of the points with a file (sound or not: see :meth:`load`)."""
        found = set()
        for path in self.directory.glob(f"{_PART_PREFIX}*.json"):
            match = _PART_NAME.fullmatch(path.name)
            if match:
                found.add(int(match.group(1)))
        return found

    def read(self, index: int) -> dict:
        """The record of point ``index``, checked (see :meth:`load`)."""
        return self.load(index)

    def load(self, index: int) -> dict:
        """The record of point ``index``, or :class:`DamagedFile` (:class:`ForeignPart`) saying why not.

        Checked: the file is JSON with a checksum that matches, its manifest hash is this sweep's,
        its record has every one of ``fields`` and is the record of point ``index``.
        """
        path = self.part_path(index)
        document = _load_json(path)
        if not isinstance(document, dict) or not {"sha256", "manifest", "record"} <= set(document):
            raise DamagedFile(path, "not a stored point: no checksum, manifest hash and record")
        body = {"manifest": document["manifest"], "record": document["record"]}
        if hashlib.sha256(body_bytes(body)).hexdigest() != document["sha256"]:
            raise DamagedFile(path, "checksum mismatch")
        if document["manifest"] != self._manifest_hash():
            raise ForeignPart(path, "computed for a different sweep")
        record = document["record"]
        if not isinstance(record, dict):
            raise DamagedFile(path, "its record is not a JSON object")
        missing = [name for name in self.fields if name not in record]
        if missing:
            raise DamagedFile(path, f"incomplete: no {', '.join(missing)}")
        if "index" in record and record["index"] != index:
            raise DamagedFile(path, f"it holds point {record['index']!r}, not point {index}")
        return record

    def discard(self, index: int) -> None:
        """Delete the file of point ``index`` (so that it is computed again)."""
        with reporting_write_errors(self.part_path(index)):
            self.part_path(index).unlink(missing_ok=True)

    def remove_temporaries(self) -> None:
        """Delete the temporary files a run killed in the middle of a write left behind: those of
        :func:`~amsgd.core.files.atomic_path` (:func:`~amsgd.core.files.temporaries`) in the store and
        beside ``FILE.nc`` (a link's target), its own and its digest's (:func:`~amsgd.sweep.dataset.digest_path`)."""
        # imported here: amsgd.sweep.dataset imports amsgd.sweep.sweep, which imports this module
        from amsgd.sweep.dataset import digest_path

        target = Path(os.path.realpath(self.out))
        found = temporaries(target) + temporaries(digest_path(target))
        if self.directory.is_dir():
            found += self.directory.glob(".*.tmp")
        for path in found:
            with reporting_write_errors(path):
                path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the store (after the final file has been written)."""
        shutil.rmtree(self.directory)


def _load_json(path: Path) -> object:
    """The JSON document in ``path``, or :class:`DamagedFile` (missing, empty, not JSON)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DamagedFile(path, "missing") from None
    except OSError as exc:
        raise ProblemError(f"cannot read {path}: {exc.strerror or exc}; check the folder's permissions") from None
    if not data.strip():
        raise DamagedFile(path, "empty")
    try:
        return json.loads(data)
    except ValueError:
        raise DamagedFile(path, "not JSON: truncated or overwritten") from None
