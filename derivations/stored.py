"""Derivations kept between processes.

Some derivations depend on nothing but the code: the time scale of the momentum recursion, the
phase formulas, the SDDE's linear mode, the dominant root's expansion, the Schur–Cohn conditions of
a small delay, the delay-differential limit, the ratio's finite-η drift; others on the code and a named data law
(:func:`derived_once_per_law`): the indexed modes, error term, mean map and stationary points, the
random coefficients' moment patterns. Every process would derive them again (3 to 5 s of SymPy
before `amsgd derive` prints, on the 2-core machine of docs/performance.md). :func:`derived_once`
keeps the result of such a function in memory and, pickled, in a folder keyed by the code that
derived it, so that a later process loads it in milliseconds instead.

The key is a SHA-256 of the Python and SymPy versions and of the sources of ``amsgd.derivations``
and ``amsgd.core``, the only layers a derivation may import (the import contract of
docs/architecture.md): a change to any of that code derives everything again. The folder is
``$AMSGD_CACHE_DIR``, else ``$XDG_CACHE_HOME/amsgd`` (an absolute one), else ``~/.cache/amsgd``;
``AMSGD_CACHE_DIR=off`` keeps the results in memory only (an empty value counts as unset). A stored
file holds the function's name and arguments beside its result; one that is missing, cannot be
loaded, or holds another record is derived again and rewritten (through a temporary file of its own
and a rename, so that a process never reads another's half-written file); a folder that cannot be
written leaves the results in memory. Only the folders of the most recent keys are kept (:data:`KEEP_KEYS`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import platform
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sympy as sp

import amsgd.core
from amsgd.core.distributions import Distribution, Gaussian, Rademacher, StudentT, parse_distribution
from amsgd.core.errors import ProblemError
from amsgd.core.files import atomic_write_bytes

from .distributions import SIGN_SYMMETRIC, SignSymmetric

T = TypeVar("T")

#: The environment variable that names the folder (``off``: memory only).
CACHE_ENV = "AMSGD_CACHE_DIR"
#: Folders of earlier keys (older code) kept beside the current one; older ones are removed.
KEEP_KEYS = 4
#: How many times each function was derived in this process (not loaded), by qualified name.
DERIVED: Counter[str] = Counter()


def cache_root() -> Path | None:
    """The folder of stored derivations, or None (memory only) when ``AMSGD_CACHE_DIR=off`` or no home
    folder is to be found; an empty or blank ``AMSGD_CACHE_DIR`` counts as unset (as a path it named the
    current folder), and so does a relative ``XDG_CACHE_HOME``."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen:
        return None if chosen.lower() == "off" else Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # a relative one is to be ignored (XDG Base Directory specification)
        return Path(xdg) / "amsgd"
    if "HOME" in os.environ and not os.environ["HOME"].strip():  # a blank HOME named the root folder
        return None
    try:
        return Path.home() / ".cache" / "amsgd"
    except RuntimeError:  # no home folder to be found: memory only
        return None


@functools.lru_cache(maxsize=1)
def code_key() -> str:
    """SHA-256 of the Python and SymPy versions and the sources a derivation can depend on."""
    digest = hashlib.sha256(f"python {platform.python_version()} sympy {sp.__version__}".encode())
    for package in (Path(__file__).parent, Path(amsgd.core.__file__).parent):
        for source in sorted(package.rglob("*.py")):
            digest.update(source.relative_to(package.parent).as_posix().encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def _argument_text(arg: object) -> str:
    if isinstance(arg, sp.Basic):
        return sp.srepr(arg)
    if isinstance(arg, (int, str)):
        return repr(arg)
    raise TypeError(f"a stored derivation takes integers, strings and SymPy objects, not {type(arg).__name__}")


#: The name of a key's folder: ``derivations-`` and the first 24 hex digits of :func:`code_key`.
KEY_FOLDER = re.compile(r"derivations-[0-9a-f]{24}")


def _name(function: Callable) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def _file(function: Callable, arguments: str) -> Path | None:
    root = cache_root()
    if root is None:
        return None
    digest = hashlib.sha256(arguments.encode()).hexdigest()[:16]
    return root / f"derivations-{code_key()[:24]}" / f"{_name(function)}-{digest}.pickle"


def _load(path: Path, function: Callable, arguments: str) -> object | None:
    """The result stored in ``path`` for ``function(arguments)``; None where the file is missing, cannot
    be loaded, or holds anything but that record (another function's or arguments' file copied there,
    any other pickle): then it is derived again and the file rewritten."""
    # Unpickling rebuilds each SymPy node from its arguments; unevaluated, as the derivation left it
    # (evaluated, a factored 2 (λ₁² + λ₂²) would come back distributed, and print differently).
    try:
        with sp.evaluate(False):
            record = pickle.loads(path.read_bytes())
    except Exception:  # missing, partial, or unreadable: derive again
        return None
    if not (isinstance(record, tuple) and len(record) == 3 and record[:2] == (_name(function), arguments)):
        return None
    return record[2]


def _store(path: Path, function: Callable, arguments: str, result: object) -> None:
    """Store the record ``(function's name, arguments, result)`` in ``path``, whole (a temporary file of
    its own and a rename: two processes storing it at once each write whole)."""
    try:
        fresh = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        record = pickle.dumps((_name(function), arguments, result), protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write_bytes(path, record)
        if fresh:
            _remove_old_keys(path.parent)
    except (OSError, ProblemError, pickle.PicklingError, TypeError, AttributeError):
        return  # an unwritable folder or an unpicklable result: kept in memory only


def _remove_old_keys(current: Path) -> None:
    """Remove the folders of all but the :data:`KEEP_KEYS` most recently written other keys (folders
    named as :data:`KEY_FOLDER`, never another folder in the cache's folder)."""
    others = [p for p in current.parent.glob("derivations-*")
              if p.is_dir() and p != current and KEY_FOLDER.fullmatch(p.name)]  # fmt: skip
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEEP_KEYS:]:
        shutil.rmtree(old, ignore_errors=True)


def derived_once(function: Callable[..., T]) -> Callable[..., T]:
    """Derive ``function(*args)`` once per code version: kept in memory, and stored on disk for
    later processes (module docstring). Its arguments must be integers, strings or SymPy objects;
    its result must not be None."""
    memo: dict[str, T] = {}

    @functools.wraps(function)
    def wrapper(*args):
        text = ",".join(map(_argument_text, args))
        if text in memo:
            return memo[text]
        path = _file(function, text)
        result = _load(path, function, text) if path is not None else None
        if result is None:
            result = function(*args)
            DERIVED[function.__qualname__] += 1
            if path is not None:
                _store(path, function, text, result)
        memo[text] = result
        return result

    wrapper.clear_memory = memo.clear  # for tests: the next call loads or derives again
    return wrapper


def law_text(distribution: Distribution) -> str | None:
    """The data law as text that :func:`~amsgd.core.distributions.parse_distribution` reads back
    exactly (ν in full precision): for the named laws, whose derivations depend on nothing but the
    code and this text (and :class:`~.distributions.SignSymmetric`, the stand-in of every sampled law);
    None for any other."""
    if type(distribution) in (Gaussian, Rademacher, StudentT, SignSymmetric):
        return distribution.spec  # ν in full precision where ":g" would round it (checks.spec_number)
    return None


def derived_once_per_law(function: Callable[[Distribution], T]) -> Callable[[Distribution], T]:
    """:func:`derived_once` for a derivation of one data law: a named law is stored under
    :func:`law_text`; any other is derived once per process (kept for the last eight laws)."""

    def by_text(text: str) -> T:
        return function(SignSymmetric() if text == SIGN_SYMMETRIC else parse_distribution(text))

    by_text.__module__, by_text.__qualname__ = function.__module__, function.__qualname__
    stored = derived_once(by_text)
    unnamed = functools.lru_cache(maxsize=8)(function)

    @functools.wraps(function)
    def wrapper(distribution: Distribution) -> T:
        text = law_text(distribution)
        return unnamed(distribution) if text is None else stored(text)

    wrapper.clear_memory = stored.clear_memory  # for tests, as derived_once's
    return wrapper
