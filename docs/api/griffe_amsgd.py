"""Griffe extension used by the API reference (``mkdocs.yml``).

Two things the sources of amsgd need before Griffe can document them:

* ``[tool.setuptools.package-dir]`` in ``pyproject.toml`` maps ``amsgd.derivations``,
  ``amsgd.diffusion`` and ``amsgd.simulate`` to folders of their own at the root of the repository.
  Python finds them through the installed package, but Griffe reads the sources and looks for
  submodules of ``amsgd`` only inside ``amsgd/``. This extension reads the same table and loads each
  mapped folder (with its submodules) as the subpackage it is.
* The docstrings cite objects with Sphinx roles (``:func:`amsgd.predict```, ``:class:`~a.b.C```,
  ``:mod:`.sibling```). They become cross-references: a link where the object is rendered in the
  reference, plain code where it is not (neither is a warning).
* Parameters documented together (``steps, replicates``) get an entry each, so that each shows its
  own type and default.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parents[2]

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`(~?)([\w.]+)(?:\(\))?`")


def package_dirs(pyproject: Path) -> dict[str, Path]:
    """The ``[tool.setuptools.package-dir]`` table: package name -> folder (absolute)."""
    import tomllib

    mapping = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {name: (pyproject.parent / folder).resolve() for name, folder in mapping.items() if name}


SECTION_RULE = re.compile(r"^-{3,}$")
GROUP = re.compile(r"^[A-Za-z_]\w*(?:, [A-Za-z_]\w*)+$")


def split_grouped_parameters(text: str) -> str:
    """One entry per name in the NumPy-style parameter sections.

    ``steps, replicates`` followed by one description documents both; the parser would give both the
    type and default of the first, so each name gets its own entry (the same description) and its
    own type and default from the signature.
    """
    lines = text.split("\n")
    out: list[str] = []
    in_parameters = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and SECTION_RULE.match(lines[i + 1].strip()) and line.strip():
            in_parameters = line.strip() in ("Parameters", "Other Parameters")
        if in_parameters and GROUP.match(line):
            j = i + 1
            while j < len(lines) and (
                lines[j].startswith((" ", "\t"))
                or (not lines[j].strip() and j + 1 < len(lines) and lines[j + 1].startswith((" ", "\t")))
            ):
                j += 1
            for name in line.split(", "):
                out.append(name)
                out.extend(lines[i + 1 : j])
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class AmsgdSources(griffe.Extension):
    """Load the folders that ``package-dir`` maps to subpackages, then polish the docstrings."""

    def __init__(self, pyproject: str | None = None) -> None:
        super().__init__()
        self.pyproject = Path(pyproject) if pyproject else ROOT / "pyproject.toml"

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        mapping = package_dirs(self.pyproject)
        for name in sorted(mapping, key=lambda n: n.count(".")):
            parent_name, _, last = name.rpartition(".")
            if not parent_name or name.split(".", 1)[0] != pkg.name:
                continue
            parent = loader.modules_collection.get_member(parent_name)
            found = parent.members.get(last)
            if found is not None and not found.is_alias and found.is_module:
                continue  # already found next to its parent
            self._load_folder(loader, last, mapping[name], parent)
        loader.expand_exports(pkg)
        loader.expand_wildcards(pkg, external=False)
        self._polish(pkg, loader)

    def _load_folder(
        self, loader: griffe.GriffeLoader, name: str, folder: Path, parent: griffe.Module
    ) -> None:
        module = self._visit(loader, name, folder / "__init__.py", parent)
        parent.set_member(name, module)
        for path in sorted(folder.iterdir()):
            if not path.stem.isidentifier():
                continue
            if path.is_dir() and (path / "__init__.py").is_file():
                self._load_folder(loader, path.name, path, module)
            elif path.suffix == ".py" and path.stem != "__init__":
                module.set_member(path.stem, self._visit(loader, path.stem, path, module))

    @staticmethod
    def _visit(loader: griffe.GriffeLoader, name: str, path: Path, parent: griffe.Module) -> griffe.Module:
        code = path.read_text(encoding="utf-8-sig")
        if loader.store_source:
            loader.lines_collection[path] = code.splitlines(keepends=False)
        return griffe.visit(
            name,
            filepath=path,
            code=code,
            extensions=loader.extensions,
            parent=parent,
            docstring_parser=loader.docstring_parser,
            docstring_options=loader.docstring_options,
            lines_collection=loader.lines_collection,
            modules_collection=loader.modules_collection,
        )

    def _polish(self, obj: griffe.Object, loader: griffe.GriffeLoader) -> None:
        docstring = obj.docstring
        if docstring is not None:
            if ":" in docstring.value:
                docstring.value = ROLE.sub(lambda m: self._reference(m, obj, loader), docstring.value)
            if ", " in docstring.value:
                docstring.value = split_grouped_parameters(docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._polish(member, loader)

    @staticmethod
    def _reference(match: re.Match, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
        short, target = match.group(1), match.group(2)
        module = obj.module
        if target.startswith("."):
            bases = [module.path, module.parent.path if module.parent else module.path]
            candidates = [base + target for base in bases]
        elif "." not in target:
            scopes = [obj.path, obj.parent.path if obj.parent else "", module.path]
            candidates = [f"{scope}.{target}" for scope in scopes if scope] + [target]
        else:
            candidates = [target]
        identifier = candidates[0]
        for candidate in candidates:
            try:
                loader.modules_collection.get_member(candidate)
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            identifier = candidate
            break
        shown = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        return f'<autoref identifier="{html.escape(identifier)}" optional><code>{html.escape(shown)}</code></autoref>'
