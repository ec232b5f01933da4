"""The JSON documents of ``predict`` and ``predict_model`` are built section by section: a caller may
ask for some sections only (``to_dict(["stability"])``), and the work of the others is not done."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from amsgd.core.errors import ProblemError


def build_sections(builders: dict[str, Callable[[], object]], sections: Sequence[str] | None,
                   known: Sequence[str]) -> dict:  # fmt: skip
    """``{name: build()}`` for the ``builders`` whose names are in ``sections`` (all where None), in the
    builders' order. ``known`` lists every section name the document may have (a name may be known
    and still absent for a problem, as ``sde_formulas`` without an indexed derivation); any other
    name, or ``sections`` that is not a list of names, is refused."""
    if sections is None:
        return {name: build() for name, build in builders.items()}
    names = None if isinstance(sections, str) or not isinstance(sections, Iterable) else tuple(sections)
    if names is None or not all(isinstance(name, str) for name in names):
        raise ProblemError(f"sections must be a list of section names, got {sections!r}")
    if unknown := sorted(set(names) - set(known)):
        raise ProblemError(f"unknown sections {unknown}: the JSON has {', '.join(known)}")
    return {name: build() for name, build in builders.items() if name in names}
