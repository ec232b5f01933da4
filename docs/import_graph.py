"""The folder-level import graph of amsgd, and the diagram of it in docs/architecture.md.

    python docs/import_graph.py          # rewrite the diagram in docs/architecture.md

The package installs from several top-level folders (``derivations/`` as ``amsgd.derivations`` and so
on, the package-dir mapping of pyproject.toml), which import-linter's graph builder cannot follow
in an editable install. :func:`mirror` therefore copies the sources into a temporary tree laid out as
the installed package; ``lint-imports`` runs on it (tests/test_architecture.py) and :func:`folder_edges`
reads it with grimp, every import counted, those inside functions included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Installed package → source folder (the package-dir mapping of pyproject.toml).
MAPPED = {"derivations": "derivations", "diffusion": "diffusion", "simulate": "simulate"}
#: Folders in layer order, highest first (docs/architecture.md), as they appear in the diagram.
FOLDERS = (
    "amsgd", "amsgd/cli", "amsgd/figures", "amsgd/validation", "amsgd/sweep", "amsgd/advise", "diffusion",
    "diffusion/theory",
    "simulate", "derivations", "amsgd/core",
)  # fmt: skip
BEGIN, END = "<!-- import-graph:begin -->", "<!-- import-graph:end -->"


def mirror(dest: Path) -> Path:
    """Copy the sources into ``dest/amsgd`` laid out as the installed package; returns ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "amsgd", dest / "amsgd", ignore=ignore)
    for package, folder in MAPPED.items():
        shutil.copytree(ROOT / folder, dest / "amsgd" / package, ignore=ignore)
    return dest


def folder_of(module: str) -> str:
    """The source folder of an installed module name (``amsgd.diffusion.theory.x`` → ``diffusion/theory``)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ("__init__", "__main__"):
        return "amsgd"
    if parts[1] in MAPPED:
        sub = parts[2] if len(parts) > 2 and (ROOT / MAPPED[parts[1]] / parts[2]).is_dir() else None
        return MAPPED[parts[1]] + (f"/{sub}" if sub else "")
    return f"amsgd/{parts[1]}" if (ROOT / "amsgd" / parts[1]).is_dir() else "amsgd"


def folder_edges(tree: Path) -> set[tuple[str, str]]:
    """``(importer, imported)`` folder pairs of every import between two folders of the mirrored tree.

    grimp runs in a fresh process with the mirror first on the path, so it reads the mirror and the
    calling process keeps its own modules.
    """
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, __file__, "--edges"], env=env, capture_output=True, text=True, check=True)
    return {tuple(edge) for edge in json.loads(out.stdout)}


def _print_edges() -> None:
    import grimp

    graph = grimp.build_graph("amsgd", cache_dir=None)
    edges = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = folder_of(module), folder_of(imported)
            if a != b:
                edges.add((a, b))
    print(json.dumps(sorted(edges)))


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Every strongly connected group of more than one folder (empty when the graph is acyclic)."""
    nodes = sorted({n for e in edges for n in e})
    reach = {n: {b for a, b in edges if a == n} for n in nodes}
    changed = True
    while changed:  # transitive closure; a handful of folders
        changed = False
        for n in nodes:
            extra = set().union(*(reach[m] for m in reach[n])) - reach[n]
            if extra:
                reach[n] |= extra
                changed = True
    groups = {frozenset([n, *[m for m in nodes if m in reach[n] and n in reach[m]]]) for n in nodes}
    return sorted(sorted(g) for g in groups if len(g) > 1)


def mermaid(edges: set[tuple[str, str]]) -> str:
    """A Mermaid flowchart of the folder graph, folders in layer order."""
    ids = {f: re.sub(r"\W", "_", f) for f in FOLDERS}
    lines = ["```mermaid", "flowchart TD"]
    lines += [f'    {ids[f]}["{f}/"]' for f in FOLDERS]
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in sorted(edges, key=lambda e: (FOLDERS.index(e[0]), FOLDERS.index(e[1])))]
    lines.append("```")
    return "\n".join(lines)


def diagram() -> str:
    """The Mermaid diagram of the current sources."""
    with tempfile.TemporaryDirectory() as tmp:
        return mermaid(folder_edges(mirror(Path(tmp))))


def main() -> None:
    path = ROOT / "docs" / "architecture.md"
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{diagram()}\n{END}{tail}", encoding="utf-8")
    print(f"updated {path}")


if __name__ == "__main__":
    _print_edges() if sys.argv[1:] == ["--edges"] else main()
