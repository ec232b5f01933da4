"""Output files: checked before the work starts, written atomically.

Every command that writes checks its output paths first (:func:`check_output_file`,
:func:`check_output_dir`), so a long run never fails at its end for a missing folder; and every
write goes through a temporary file in the same folder and a rename, so a reader sees either the
old file or the complete new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from amsgd.core.errors import ProblemError


def check_input_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` as an existing, readable file (``option`` names it in the message; an empty name is
    refused as one, not read as the current folder)."""
    if not str(path).strip():
        raise ProblemError(f"{option} needs a file name, got {str(path)!r}")
    source = Path(path)
    if not source.is_file():
        raise ProblemError(f"{option} {str(source)!r} does not exist or is not a file")
    if not os.access(source, os.R_OK):
        raise ProblemError(f"{option} {str(source)!r} is not readable")
    return source


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a file that can be written: its folder exists and is writable, it is not a folder,
    nor a device or a pipe (the write replaces the file by a rename, which would replace those too).
    A symbolic link is followed: the file it points to is the one written, and the link stays."""
    if not isinstance(path, (str, os.PathLike)):
        raise ProblemError(f"{option} must be a file name (a str or a path), got {type(path).__name__}")
    if not str(path).strip():
        raise ProblemError(f"{option} needs a file name")
    if str(path).endswith(("/", os.sep)):
        raise ProblemError(f"{option} {str(path)!r} ends in a slash, which names a folder; give a file name")
    target = _replaceable(path, f"{option} {str(path)!r}")
    folder = target.parent if Path(path).is_symlink() else Path(path).parent  # as given, unless a link
    if not folder.is_dir():
        raise _no_folder(option, "folder", folder)
    if not os.access(folder, os.W_OK):
        raise ProblemError(f"{option}: the folder {str(folder)!r} is not writable")
    _probe(folder, option)
    return Path(path)


def check_distinct_files(outputs: dict[str, str | os.PathLike | None],
                         inputs: dict[str, str | os.PathLike | None]) -> None:  # fmt: skip
    """Refuse an output (option → path; None where not given) that names the same file as another
    output, which one write would replace with the other, or as an input, which the write would
    destroy: paths compared with their links and ``..`` resolved, as the atomic write resolves them
    (a hard link is another name: the write replaces that name only)."""
    given = [(option, Path(path)) for option, path in {**outputs, **inputs}.items() if path is not None]
    for k, (option, path) in enumerate(given):
        for other, earlier in given[:k]:
            if other not in outputs or os.path.realpath(path) != os.path.realpath(earlier):
                continue
            if option in outputs:
                raise ProblemError(f"{other} and {option} name the same file {str(path)!r}; give each output its own")
            raise ProblemError(f"{other} {str(earlier)!r} is the file {option} reads; writing it would destroy that "
                               f"input: choose another {other}")  # fmt: skip


def _no_folder(option: str, role: str, folder: Path) -> ProblemError:
    """The error for a path whose folder is missing, or is there but is a file (``/dev/null/x``)."""
    state = "is not a folder" if folder.exists() else "does not exist; create it first"
    return ProblemError(f"{option}: the {role} {str(folder)!r} {state}")


def check_figure_file(path: str | os.PathLike, option: str = "--plot") -> Path:
    """:func:`check_output_file`, and a suffix naming a format matplotlib writes (matplotlib is
    imported only once the folder has passed)."""
    target = check_output_file(path, option)
    if target.suffix.lower().lstrip(".") not in figure_formats():
        raise ProblemError(f"{option} {str(target)!r}: the file name must end in a figure format matplotlib "
                           "writes, such as .png, .pdf or .svg")  # fmt: skip
    return target


def figure_formats() -> set[str]:
    """The file formats matplotlib writes without outside programs: its list less PGF, which needs LaTeX."""
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"}


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a folder that exists or can be created (its parent exists and is writable)."""
    if not str(path).strip():
        raise ProblemError(f"{option} needs a folder name (an empty one would write into the current folder)")
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ProblemError(f"{option} {str(target)!r} exists and is not a folder")
    parent = target.parent
    if not target.exists() and not parent.is_dir():
        raise _no_folder(option, "parent folder", parent)
    if not os.access(target if target.exists() else parent, os.W_OK):
        raise ProblemError(f"{option}: {str(target if target.exists() else parent)!r} is not writable")
    _probe(target if target.exists() else parent, option)
    return target


#: File name endings of NetCDF files.
NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf")


def check_netcdf_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """:func:`check_output_file`, and a name that says the file is NetCDF (:data:`NETCDF_SUFFIXES`)."""
    target = check_output_file(path, option)
    if target.suffix.lower() not in NETCDF_SUFFIXES:  # ".nc" alone is a name without a suffix
        raise ProblemError(f"{option} {str(target)!r}: the file is written as NetCDF; give a name ending in .nc"
                           + (" (with a name before it)" if target.name.lower() in NETCDF_SUFFIXES else ""))
    return target


@contextlib.contextmanager
def made_folder(folder: Path) -> Iterator[Path]:
    """``folder``, created if missing, for the work inside the ``with`` block; a folder this made is
    removed again when the work fails before writing anything into it (a refused problem leaves no
    empty folder behind)."""
    made = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        yield folder
    except BaseException:
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise


def _probe(folder: Path, option: str) -> None:
    """Create and remove a small file in ``folder``: some folders pass every permission check and
    still refuse files (``/proc``, a read-only mount, a full disk)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".amsgd-probe-"):
            pass
    except OSError as exc:
        raise ProblemError(f"{option}: cannot create files in {str(folder)!r} ({plain_reason(exc)}); "
                           "choose another folder") from None  # fmt: skip


def write_error(path: str | os.PathLike, exc: OSError) -> ProblemError:
    """The one-line error for a write to ``path`` that failed with ``exc``."""
    return ProblemError(f"cannot write {str(path)!r}: {plain_reason(exc)}; check the folder and the free space")


def plain_reason(exc: OSError) -> str:
    """The reason of an OS error in words, without the library's internal details."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    text = str(exc)
    for code in (errno.ENOSPC, errno.EACCES, errno.ENOENT, errno.EROFS):  # h5py puts the errno in its message
        if f"errno = {code}," in text:
            return os.strerror(code).lower()
    return "the system refused the write"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, flushed to disk, and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8; an OS error is one line naming the path."""
    try:
        atomic_write_bytes(path, text.encode("utf-8"))
    except OSError as exc:
        raise write_error(path, exc) from None


def _replaceable(path: str | os.PathLike, name: str) -> Path:
    """The file a write to ``path`` replaces (a symbolic link followed, so the link stays), refusing a
    folder, a device, a pipe or a socket there (``name`` says which output in the message)."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise ProblemError(f"{name} is a folder, not a regular file; give a file name")
    if target.exists() and not target.is_file():
        raise ProblemError(f"{name} is not a regular file (a device, a pipe or a socket); give a file name")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name; on success it is
    flushed to disk and renamed to ``path``, on failure removed. A symbolic link is followed, so the
    file it points to is replaced and the link stays. A folder, a device, a pipe or a socket at
    ``path`` is refused (:class:`ProblemError`), never replaced: callers of the Python API reach this
    without the command line's :func:`check_output_file`."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ProblemError(f"an output needs a file name (a str or a path), got {path!r}")
    path = _replaceable(path, repr(str(path)))
    tmp = _new_temporary(path)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _new_temporary(path: Path) -> Path:
    """A new empty file ``.NAME.XXXXXXXX.tmp`` beside ``path`` (:func:`temporaries`), created here under
    a name no other write holds: two runs writing the same output each write whole, and the last rename
    wins. Created with the permissions of any new file (the umask), not ``mkstemp``'s 0600."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def temporaries(path: str | os.PathLike) -> list[Path]:
    """The temporary files of :func:`atomic_path` beside ``path``: those a run killed in the middle of a
    write left behind (or a write under way)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


def write_netcdf(dataset, path: str | os.PathLike) -> None:
    """Write an ``xarray.Dataset`` to ``path`` (NetCDF 4 through h5netcdf, atomically); an OS error is
    one line naming the path."""
    try:
        with atomic_path(path) as tmp:
            netcdf_file(dataset, tmp)
    except OSError as exc:
        raise write_error(path, exc) from None


def netcdf_file(dataset, path: Path) -> None:
    """``dataset.to_netcdf(path)`` through h5netcdf, in place (the caller makes the write atomic); a
    failed write raises its OS error. Where the close fails too (a full disk, a file size limit), h5py
    raises a RuntimeError over that error and h5netcdf leaves the file open: closing it again when it
    was garbage-collected read HDF5 objects the first close had released, and crashed the interpreter
    after the error line. Such files are marked closed (their descriptors go with the process)."""
    try:
        dataset.to_netcdf(path, engine="h5netcdf")
    except Exception as exc:
        _forget_failed_files(exc)
        failed = exc if isinstance(exc, OSError) else exc.__context__
        if isinstance(failed, OSError) and failed is not exc:  # h5py's RuntimeError of the close, over the write's
            raise failed from None
        raise


def _forget_failed_files(exc: BaseException | None) -> None:
    """Mark closed every h5netcdf file in the frames of ``exc`` and of the errors it was raised over."""
    import h5netcdf

    while exc is not None:  # the close's error, and the write's error it was raised over
        frame = exc.__traceback__
        while frame is not None:
            for value in frame.tb_frame.f_locals.values():
                if isinstance(value, h5netcdf.File):
                    value._closed = True
            frame = frame.tb_next
        exc = exc.__context__
