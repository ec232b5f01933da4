"""The documentation site builds with ``mkdocs build --strict`` and its API reference has content;
CITATION.cff is valid YAML and cites this version."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = [
    "amsgd",
    "core",
    "derivations",
    "theory",
    "diffusion",
    "simulate",
    "validation",
    "sweep",
    "advise",
    "figures",
]


def project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def page_text(site: Path, page: str) -> str:
    """The words of an API page's article, without the markup."""
    document = (site / "api" / page / "index.html").read_text(encoding="utf-8")
    article = document[document.index("<article") : document.index("</article>")]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", article)))


def test_site_builds_strictly_with_the_api_reference(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "index.html").is_file()
    for page in API_PAGES:
        assert (site / "api" / page / "index.html").is_file(), page

    top = page_text(site, "amsgd")
    assert "The predictions for problem" in top  # amsgd.predict
    assert "Async-MSGD on streaming PCA" in top  # amsgd.Problem
    simulate = page_text(site, "simulate")
    assert "Simulate replicates independent runs of steps Async-MSGD updates" in simulate
    assert "SimulationResult" in simulate
    # A subpackage that lives outside amsgd/ ([tool.setuptools.package-dir]) is documented too.
    assert "The symbolic derivation of the diffusion limits" in page_text(site, "derivations")
    assert "integrate_ode" in page_text(site, "diffusion")
    # Sphinx roles become code or links, never raw markup; grouped parameters keep their own defaults.
    assert ":func:" not in top and ":class:" not in simulate
    assert re.search(r"window_start int \| None .*? None ", simulate)


def test_citation_is_yaml_and_names_this_version():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert citation["title"] == "amsgd"
    assert str(citation["version"]) == project_version()
    assert citation["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    paper = citation["references"][0]
    assert paper["title"].startswith(
        "Towards Understanding Acceleration Tradeoff between Momentum and Asynchrony"
    )
    assert [author["family-names"] for author in paper["authors"]] == ["Liu", "Li", "Shi", "Zhou", "Zhao"]
    assert paper["year"] == 2018
