"""The JSON documents of ``predict`` and ``predict_model`` are built section by section: a caller may
ask for some sections only (``to_dict(["stability"])``, ``amsgd derive --sections stability``), and the
work of the others is not done. This module imports nothing heavy, so the command line checks the
names before it derives anything."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from amsgd.core.errors import ProblemError

#: The sections of ``predict(...).to_dict()`` (``amsgd derive``), in their order (``sde_formulas`` only
#: where the derivation is indexed).
PCA_SECTIONS = ("problem", "recursion", "ode", "sde", "stationary_error", "stability", "phases", "delay_conditions",
                "tradeoff", "sdde", "sde_formulas")  # fmt: skip
#: The sections of ``predict_model(...).to_dict()`` (``amsgd derive --model``), in their order.
MODEL_SECTIONS = ("problem", "point", "stability", "stationary_loss", "full_second_moments", "rate_per_iteration",
                  "relaxation_iterations", "tradeoff")  # fmt: skip


def chosen_sections(sections: Sequence[str] | None, known: Sequence[str]) -> tuple[str, ...] | None:
    """The section names asked for (None: all of them), checked: ``sections`` must be a list of names,
    each one of ``known`` (a name may be known and still absent for a problem, as ``sde_formulas``
    without an indexed derivation)."""
    if sections is None:
        return None
    names = None if isinstance(sections, str) or not isinstance(sections, Iterable) else tuple(sections)
    if names is None or not all(isinstance(name, str) for name in names):
        raise ProblemError(f"sections must be a list of section names, got {sections!r}")
    if unknown := sorted(set(names) - set(known)):
        raise ProblemError(f"unknown sections {unknown}: the JSON has {', '.join(known)}")
    return names


def build_sections(builders: dict[str, Callable[[], object]], sections: Sequence[str] | None,
                   known: Sequence[str]) -> dict:  # fmt: skip
    """``{name: build()}`` for the ``builders`` whose names are in ``sections`` (all where None), in the
    builders' order; the names checked by :func:`chosen_sections`."""
    names = chosen_sections(sections, known)
    return {name: build() for name, build in builders.items() if names is None or name in names}
