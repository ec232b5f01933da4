"""Names a package exports without importing their modules until first use (PEP 562), so that
``import amsgd`` and ``amsgd --help`` stay light while ``from amsgd.sweep import Sweep`` works."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, sources: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from the module ``sources[name]``
    when it is first asked for."""

    def __getattr__(name: str) -> object:
        if name in sources:
            return getattr(import_module(sources[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
