"""A sweep repairs what interruptions and faulty disks leave behind: every fault injected here ends,
after ``--resume``, with exactly the Dataset of an uninterrupted run.

Damaged, incomplete and foreign points, damaged manifests and finished files, a full disk (one
clear line, then ``--resume``) and SIGKILL at random moments of a real ``amsgd sweep`` process.
Everything but the SIGKILL tests runs on one in-process Dask client, which starts in a fraction of
a second.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import amsgd.sweep.cluster
import amsgd.sweep.run
import amsgd.sweep.store
from amsgd import ProblemError
from amsgd.cli import build_parser, main
from amsgd.cli.sweep import sweep_from_args
from amsgd.core.files import atomic_path
from amsgd.sweep.dataset import digest_path, read_dataset, write_dataset
from amsgd.sweep.run import run_sweep
from amsgd.sweep.store import PartStore
from amsgd.sweep.sweep import RECORD_FIELDS, Sweep, compute_point

from helpers.datasets import Interrupted, assert_same

#: A tiny sweep (6 points, a fraction of a second of work), given as command-line options.
TINY = ["--spectrum", "3,2,1", "--eta", "2e-3", "--mu", "0.5,0.9", "--tau", "0,3,40", "--steps", "300",
        "--replicates", "8", "--seed", "5", "--record-every", "50"]  # fmt: skip
#: A sweep whose points take long enough (12 points, about 0.1 s each) to be killed in the middle.
KILLABLE = ["--spectrum", "3,2,1", "--eta", "2e-3", "--mu", "0.5,0.7,0.9", "--tau", "0,3,8,40",
            "--steps", "100000", "--replicates", "100", "--seed", "7"]  # fmt: skip
STORED = 3  # points stored by an interrupted run
#: A line of the progress report (``amsgd sweep: STAGE · 12 s``), printed once the run has taken 10 s.
PROGRESS_LINE = re.compile(r"(?:: |· )\d+ s(?: ·|$)")


def sweep_of(options: list[str]) -> Sweep:
    """The sweep that ``amsgd sweep OPTIONS`` runs."""
    return sweep_from_args(build_parser().parse_args(["sweep", *options, "--out", "unused.nc"]))


@pytest.fixture(scope="module")
def client():
    """One in-process Dask worker thread."""
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as active:
        yield active


@pytest.fixture(scope="module")
def sweep() -> Sweep:
    return sweep_of(TINY)


@pytest.fixture(scope="module")
def reference(client, sweep, tmp_path_factory) -> xr.Dataset:
    """The uninterrupted tiny sweep, read back from its file."""
    out = tmp_path_factory.mktemp("reference") / "ref.nc"
    outcome = run_sweep(sweep, out, client=client, progress=False)
    assert outcome.computed == 6 and not PartStore(out).exists
    return read_dataset(out)


def interrupted(sweep: Sweep, out: Path, client) -> PartStore:
    """Run ``sweep`` and stop it once ``STORED`` points are stored."""
    store = PartStore(out)

    def stop(index: int, record: dict) -> None:
        if len(store.done()) >= STORED:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_sweep(sweep, out, client=client, progress=False, on_point=stop)
    assert len(store.done()) == STORED and not out.exists()
    return store


def resumed(sweep: Sweep, out: Path, client, capsys, **options):
    """Resume ``sweep`` at ``out``: the outcome, the points it computed, and its lines on stderr."""
    capsys.readouterr()
    computed: list[int] = []
    outcome = run_sweep(
        sweep, out, client=client, resume=True, progress=False,
        on_point=lambda index, record: computed.append(index), **options,
    )  # fmt: skip
    return outcome, computed, capsys.readouterr().err.splitlines()


def test_record_fields_are_what_a_point_computes(sweep):
    record = compute_point(sweep.task(next(iter(sweep.grid.points()))))
    assert set(record) == set(RECORD_FIELDS) and len(RECORD_FIELDS) == len(set(RECORD_FIELDS))


# Each damage takes the store, the damaged point's number and another stored point's number.
def _truncated(store: PartStore, index: int, other: int) -> None:
    path = store.part_path(index)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(store: PartStore, index: int, other: int) -> None:
    store.part_path(index).write_bytes(b"\x00\x9f\xff not a point \x00" * 7)


def _empty(store: PartStore, index: int, other: int) -> None:
    store.part_path(index).write_bytes(b"")


def _blank(store: PartStore, index: int, other: int) -> None:
    store.part_path(index).write_bytes(b"  \n")


def _edited(store: PartStore, index: int, other: int) -> None:
    """A valid JSON file whose record changed after the checksum was taken."""
    document = json.loads(store.part_path(index).read_text())
    document["record"]["final_error"][0] += 1e-9
    store.part_path(index).write_text(json.dumps(document))


def _bare_record(store: PartStore, index: int, other: int) -> None:
    """The record alone, without checksum or manifest hash."""
    record = json.loads(store.part_path(index).read_text())["record"]
    store.part_path(index).write_text(json.dumps(record))


def _missing_field(store: PartStore, index: int, other: int) -> None:
    """A sound file (its checksum matches) whose record lacks a field."""
    record = store.load(index)
    del record["tau_max"]
    store.write(index, record)


def _other_point(store: PartStore, index: int, other: int) -> None:
    store.write(index, store.load(other))


def _other_sweep(store: PartStore, index: int, other: int) -> None:
    """A sound point computed under another manifest (another seed)."""
    record = store.load(index)
    PartStore(store.out, manifest={**store.manifest(), "seed": 6}).write(index, record)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_truncated, "not JSON"),
        (_garbage, "not JSON"),
        (_empty, "empty"),
        (_blank, "empty"),
        (_edited, "checksum mismatch"),
        (_bare_record, "no checksum"),
        (_missing_field, "incomplete: no tau_max"),
        (_other_point, "holds point"),
        (_other_sweep, "computed for a different sweep"),
    ],
)
def test_a_damaged_part_is_named_and_recomputed(damage, reason, sweep, client, reference, tmp_path, capsys):
    out = tmp_path / "s.nc"
    store = interrupted(sweep, out, client)
    index, other = sorted(store.done())[:2]
    damage(store, index, other)
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert len(err) == 1 and err[0].startswith(f"amsgd sweep: point {index}: {store.part_path(index)} is damaged (")
    assert reason in err[0] and err[0].endswith("); recomputing it")
    assert index in computed and other not in computed  # the damaged point only, the sound ones reused
    assert (outcome.computed, outcome.reused) == (6 - STORED + 1, STORED - 1)
    assert_same(read_dataset(out), reference)
    assert not store.exists


def test_a_part_numbered_beyond_the_sweep_is_removed_with_a_note_of_its_own(sweep, client, reference, tmp_path, capsys):
    """A sound-looking file numbered past the sweep's points was said to be "recomputing" a point that
    does not exist."""
    out = tmp_path / "s.nc"
    store = interrupted(sweep, out, client)
    stray = store.part_path(99)
    shutil.copy(store.part_path(min(store.done())), stray)
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert err == [f"amsgd sweep: {stray} is no point of this sweep of 6; removing it"]
    assert (outcome.computed, outcome.reused) == (6 - STORED, STORED) and 99 not in computed
    assert_same(read_dataset(out), reference)


def test_a_refused_resume_removes_no_part_numbered_beyond_the_sweep(sweep, client, reference, tmp_path, capsys):
    """A damaged manifest beside points of a larger sweep only: the resume is refused touching nothing
    (the files numbered beyond this sweep were removed first, then the refusal came)."""
    out = tmp_path / "s.nc"
    store = interrupted(sweep, out, client)
    before = sorted(store.done())
    for index in before:
        shutil.move(store.part_path(index), store.part_path(index + 10))
    store.manifest_path.write_text("")
    with pytest.raises(ProblemError, match="none of the points stored there belongs to this sweep"):
        run_sweep(sweep, out, client=client, resume=True, progress=False)
    assert sorted(store.done()) == [index + 10 for index in before]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda path: path.write_bytes(b"\x00garbage\xff"), "not JSON"),
        (lambda path: path.write_bytes(b""), "empty"),
        (lambda path: path.unlink(), "missing"),
        (lambda path: path.write_text("[1, 2, 3]"), "not a manifest"),
        (lambda path: path.write_text("{}"), "not a manifest"),
        (lambda path: path.write_text(path.read_text()[:40]), "not JSON"),
    ],
    ids=["garbage", "empty", "missing", "list", "empty-object", "truncated"],
)
def test_a_damaged_manifest_is_rebuilt_and_the_points_kept(damage, reason, sweep, client, reference, tmp_path, capsys):
    out = tmp_path / "s.nc"
    store = interrupted(sweep, out, client)
    stored = store.done()
    damage(store.manifest_path)
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert len(err) == 1 and err[0].startswith(f"amsgd sweep: {store.manifest_path} is damaged (")
    assert reason in err[0] and "rebuilding it" in err[0]
    assert not stored & set(computed) and (outcome.computed, outcome.reused) == (6 - STORED, STORED)
    assert_same(read_dataset(out), reference)


def test_a_damaged_manifest_with_only_points_of_another_sweep_is_refused(sweep, client, reference, tmp_path, capsys):
    out = tmp_path / "s.nc"
    store = interrupted(sweep, out, client)
    store.manifest_path.write_bytes(b"garbage")
    before = {p.name: p.read_bytes() for p in store.directory.iterdir()}
    other = sweep_of([*TINY, "--seed", "6"])
    with pytest.raises(ProblemError, match="none of the points stored there belongs to this sweep"):
        run_sweep(other, out, client=client, resume=True, progress=False)
    assert {p.name: p.read_bytes() for p in store.directory.iterdir()} == before  # nothing touched
    # a readable manifest that differs is refused as before, naming what differs
    store.write_manifest(other.manifest())
    with pytest.raises(ProblemError, match="differs in seed"):
        run_sweep(sweep, out, client=client, resume=True, progress=False)
    # the sweep the points belong to rebuilds the manifest and reuses them
    store.manifest_path.write_bytes(b"")
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert len(err) == 1 and "rebuilding" in err[0] and outcome.reused == STORED
    assert_same(read_dataset(out), reference)


@pytest.mark.parametrize(
    "junk",
    [lambda ref: b"junk " * 200, lambda ref: b"", lambda ref: ref[: len(ref) // 2]],
    ids=["junk", "empty", "truncated"],
)
def test_a_damaged_finished_file_is_computed_again(junk, sweep, client, reference, tmp_path, capsys):
    finished = tmp_path / "done.nc"
    run_sweep(sweep, finished, client=client, progress=False)
    out = tmp_path / "s.nc"
    out.write_bytes(junk(finished.read_bytes()))
    kept = out.read_bytes()
    with pytest.raises(ProblemError, match="--resume"):  # never overwritten without --resume
        run_sweep(sweep, out, client=client, progress=False)
    assert out.read_bytes() == kept
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert err == [f"amsgd sweep: {out} is damaged (it cannot be read as NetCDF); computing the sweep again"]
    assert sorted(computed) == list(range(6)) and outcome.computed == 6
    assert_same(read_dataset(out), reference)


def test_a_finished_file_changed_after_it_was_written_is_refused_before_it_is_opened(
    sweep, client, reference, tmp_path, capsys, monkeypatch
):
    """One flipped byte of a finished file can make the HDF5 library loop while opening it (a resume
    then hung at full CPU) or change a value unseen. Its SHA-256, written beside it, is checked first:
    a changed file is refused, never opened nor overwritten; without the digest it is read as before."""
    out = tmp_path / "s.nc"
    run_sweep(sweep, out, client=client, progress=False)
    digest = digest_path(out)
    assert digest.read_text().split() == [hashlib.sha256(out.read_bytes()).hexdigest(), "s.nc"]
    sound = out.read_bytes()
    flipped = bytearray(sound)
    flipped[len(sound) // 2] ^= 0x40
    out.write_bytes(bytes(flipped))
    with monkeypatch.context() as patch:
        patch.setattr(xr, "open_dataset", lambda *args, **kwargs: pytest.fail("a changed file was opened"))
        for attempt in (lambda: resumed(sweep, out, client, capsys), lambda: read_dataset(out)):
            with pytest.raises(ProblemError, match=f"has changed since amsgd sweep wrote it .* remove {digest.name}"):
                attempt()
    assert out.read_bytes() == bytes(flipped)
    out.write_bytes(sound)
    digest.unlink()  # a file copied without its digest: read unchecked
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert (computed, err) == ([], []) and not digest.exists()
    assert_same(outcome.dataset, reference)


def test_the_temporary_files_of_the_file_and_its_digest_are_removed_on_resuming(sweep, client, reference, tmp_path,
                                                                                 capsys):  # fmt: skip
    """A run killed while writing the digest left ``..s.nc.sha256.XXXXXXXX.tmp``, which the resume did not remove."""
    out = tmp_path / "s.nc"
    interrupted(sweep, out, client)
    left = [tmp_path / ".s.nc.0123abcd.tmp", tmp_path / "..s.nc.sha256.0123abcd.tmp"]
    for path in left:
        path.write_bytes(b"half")
    outcome, _, _ = resumed(sweep, out, client, capsys)
    assert not any(path.exists() for path in left) and digest_path(out).exists()
    assert_same(outcome.dataset, reference)


def test_a_write_cut_short_leaves_no_digest_of_the_file_it_replaced(sweep, client, tmp_path, monkeypatch):
    out = tmp_path / "s.nc"
    run_sweep(sweep, out, client=client, progress=False)
    ds = read_dataset(out)
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", disk_full)
    with pytest.raises(OSError):
        write_dataset(ds, out)
    assert not digest_path(out).exists()
    xr.testing.assert_identical(read_dataset(out), ds)


def _disk_full_at(path: Path) -> None:
    """Write half of a file and fail as a full disk does."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"\x89HDF half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))


def test_a_full_disk_at_the_final_write_keeps_the_points_and_the_file_is_written_from_them(
    sweep, client, reference, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "s.nc"
    with monkeypatch.context() as patch:
        patch.setattr(amsgd.sweep.run, "write_dataset", lambda ds, path: _disk_full_at(path))
        with pytest.raises(ProblemError, match="no space left on device") as failure:
            run_sweep(sweep, out, client=client, progress=False)
    assert str(tmp_path) in str(failure.value) and "--resume" in str(failure.value)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))  # no partial file
    store = PartStore(out)
    assert store.done() == set(range(6))
    # and junk in place of the file: written again from the points, none computed
    out.write_bytes(b"junk")
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert err == [f"amsgd sweep: {out} is damaged (it cannot be read as NetCDF); writing it again from the points stored"]
    assert computed == [] and (outcome.computed, outcome.reused) == (0, 6)
    assert_same(read_dataset(out), reference)
    assert not store.exists


def test_a_finished_file_is_kept_and_leftover_parts_removed(sweep, client, reference, tmp_path, capsys):
    out = tmp_path / "s.nc"
    run_sweep(sweep, out, client=client, progress=False)
    stamp = out.stat().st_mtime_ns
    store = PartStore(out)
    store.create(sweep.manifest())  # what a run killed while removing its parts leaves
    outcome, computed, err = resumed(sweep, out, client, capsys)
    assert (outcome.computed, err, computed) == (0, [], []) and not store.exists
    assert out.stat().st_mtime_ns == stamp
    assert_same(outcome.dataset, reference)


def test_a_netcdf_file_of_another_kind_is_never_overwritten(sweep, client, tmp_path):
    out = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(out, engine="h5netcdf")
    kept = out.read_bytes()
    with pytest.raises(ProblemError, match="not a sweep"):
        run_sweep(sweep, out, client=client, resume=True, progress=False)
    assert out.read_bytes() == kept and not PartStore(out).exists


@contextlib.contextmanager
def _on(client):
    yield client


def test_a_full_disk_is_one_line_and_resume_finishes(sweep, client, reference, tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.nc"
    argv = ["sweep", *TINY, "--out", str(out)]
    monkeypatch.setattr(amsgd.sweep.cluster, "dask_client", lambda *args, **kwargs: _on(client))
    write = amsgd.sweep.store.atomic_write_bytes
    writes = {"parts": 0}

    def third_part_fails(path, data: bytes) -> None:
        if Path(path).name.startswith("point-"):
            writes["parts"] += 1
            if writes["parts"] == 3:
                _disk_full_at(Path(path))
        write(path, data)

    with monkeypatch.context() as patch:
        patch.setattr(amsgd.sweep.store, "atomic_write_bytes", third_part_fails)
        assert main(argv) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert captured.out == "" and "Traceback" not in captured.err and len(errors) == 1
    store = PartStore(out)
    assert f"{store.directory}" in errors[0] and "no space left on device" in errors[0] and "--resume" in errors[0]
    assert not out.exists() and not list(tmp_path.rglob(".*.tmp"))  # no partial file
    assert len(store.done()) == 2 and all(store.load(i) for i in store.done())

    assert main([*argv, "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["computed"], summary["reused"]) == (4, 2)
    assert_same(read_dataset(out), reference)


# --- SIGKILL of a real `amsgd sweep` process ---------------------------------------------------


@pytest.fixture(scope="module")
def killable_reference(client, tmp_path_factory) -> xr.Dataset:
    """The uninterrupted KILLABLE sweep, run in this process."""
    out = tmp_path_factory.mktemp("killable") / "ref.nc"
    run_sweep(sweep_of(KILLABLE), out, client=client, progress=False)
    return read_dataset(out)


def _command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "amsgd", "sweep", *KILLABLE, "--local-workers", "1", "--out", str(out), *extra]


def _start(out: Path, *extra: str) -> subprocess.Popen:
    """``amsgd sweep`` in a process group of its own (its Dask workers go with it), with SIGINT at its
    default as from a terminal: a child inherits an ignored SIGINT (a shell starts its background jobs
    so, and Python keeps it so), but not a handler, so this process holds Python's while it starts it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            _command(out, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def _kill(proc: subprocess.Popen) -> int:
    """SIGKILL the process and its workers; its exit status (−9 when it was still running)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode


def _resume_to_the_end(out: Path) -> dict:
    """Run ``--resume`` to completion: its summary."""
    run = subprocess.run(_command(out, "--resume"), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert not re.search(r"point \d+: .* is damaged", run.stderr)  # a kill never damages a stored point
    summary = json.loads(run.stdout)
    assert summary["points"] == summary["computed"] + summary["reused"] == 12
    assert not list(out.parent.rglob(".*.tmp"))  # nothing half-written is left
    return summary


@pytest.mark.slow
def test_sigkill_while_points_are_stored_then_resume(killable_reference, tmp_path):
    out = tmp_path / "k.nc"
    store = PartStore(out)
    proc = _start(out)
    deadline = time.monotonic() + 120
    try:
        while not (store.exists and len(store.done()) >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before it was killed"
            time.sleep(0.01)
    finally:
        status = _kill(proc)
    assert status == -signal.SIGKILL and not out.exists()
    summary = _resume_to_the_end(out)
    assert summary["reused"] >= 2
    assert_same(read_dataset(out), killable_reference)


def _interrupt_at_the_first_point(out: Path) -> tuple[subprocess.Popen, str]:
    """Start the sweep with worker processes, send SIGINT to its process group once a point is stored,
    and wait for it to end: the process and its standard error."""
    store = PartStore(out)
    proc = _start(out, "--local-processes")
    deadline = time.monotonic() + 120
    try:
        while not (store.exists and len(store.done()) >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before it was interrupted"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        _kill(proc)
    return proc, err.decode()


@pytest.mark.slow
def test_ctrl_c_with_worker_processes_is_two_lines_and_resumes(killable_reference, tmp_path):
    """SIGINT to the whole process group (what Ctrl-C in a terminal sends) while worker processes
    run: exit 130 and the two lines of the parent (what was kept, how to continue; besides a progress
    line on a loaded machine, where the run took 10 s), no traceback from the workers (they ignore SIGINT and are shut down by the parent); the resume gives the reference.
    The signal goes when the first point is stored, about 2.5 s before the last one: on a loaded
    machine the sweep can end before it lands (exit 0, the file written), which tests nothing, and
    then a fresh sweep is interrupted, three times at most."""
    for attempt in range(3):
        out = tmp_path / f"c{attempt}.nc"
        proc, text = _interrupt_at_the_first_point(out)
        if not (proc.returncode == 0 and out.exists()):
            break
    assert proc.returncode == 130 and "Traceback" not in text, text
    said = [line for line in text.strip().splitlines() if not PROGRESS_LINE.search(line)]
    assert "--resume" in text and len(said) == 2, text
    _resume_to_the_end(out)
    assert_same(read_dataset(out), killable_reference)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(killable_reference, tmp_path):
    """Kill a fresh run early and late in its measured duration; each resumes to the reference (a kill
    between stored points is the test above)."""
    began = time.monotonic()
    run = subprocess.run(_command(tmp_path / "whole.nc"), capture_output=True, text=True, timeout=120)
    duration = time.monotonic() - began
    assert run.returncode == 0, run.stderr
    assert_same(read_dataset(tmp_path / "whole.nc"), killable_reference)
    rng = random.Random(2018)
    delays = [rng.uniform(low, high) * duration for low, high in ((0.05, 0.35), (0.65, 0.9))]
    for n, delay in enumerate(delays):
        out = tmp_path / f"k{n}.nc"
        proc = _start(out)
        time.sleep(delay)
        _kill(proc)
        _resume_to_the_end(out)
        assert_same(read_dataset(out), killable_reference)
        assert not PartStore(out).exists
