"""``amsgd derive`` and the command line's error contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from amsgd.cli import main

from .conftest import random_rotation


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_derive_sections_are_those_of_the_whole_json(capsys):
    """``--sections stability,sdde``: those two sections, each the whole document's (with every section
    computed), in the document's order."""
    whole = json.loads(run_cli(["derive", "-q"], capsys)[1])
    code, out, _ = run_cli(["derive", "--sections", "sdde, stability", "-q"], capsys)
    part = json.loads(out)
    assert code == 0 and list(part) == ["stability", "sdde"] and all(part[k] == whole[k] for k in part)


def test_derive_json_has_the_documented_keys(capsys):
    code, out, err = run_cli(["derive"], capsys)
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["problem"]["spectrum"] == [4.0, 3.0, 2.0, 1.0]
    assert set(doc["ode"]) >= {"time_scale", "drift", "drift_latex"}
    assert doc["ode"]["time_scale"] == "1/(1-mu)"
    assert doc["ode"]["time_scale_value"] == pytest.approx(10.0)
    assert [p["j"] for p in doc["sde"]] == [1, 2, 3, 4]
    assert set(doc["sde"][0]["modes"][0]) >= {"i", "drift_rate", "diffusion", "stable"}
    assert set(doc["phases"]) >= {"escape_iterations", "travel_iterations", "converge_iterations", "total_iterations"}
    assert doc["stationary_error"]["diffusion"] == pytest.approx(5e-4 / 0.2 * (12 + 4 + 4 / 3))
    assert set(doc["stationary_error"]["linearized"]) >= {"value", "ratio_to_diffusion", "stable"}
    assert set(doc["stability"]) >= {"tau_max", "limiting_mode", "spectral_radius"}
    assert set(doc["tradeoff"]) >= {"mus", "workers", "floor", "best_mu_rate"}


@pytest.mark.slow
def test_derive_markdown_and_latex_documents(tmp_path, capsys):
    md = tmp_path / "d.md"
    assert run_cli(["derive", "--format", "markdown", "--out", str(md), "--spectrum", "3,2,1"], capsys)[0] == 0
    text = md.read_text()
    for heading in (
        "1. The recursion",
        "2. Time scale",
        "3. Mean map",
        "5. Stationary points",
        "7. The three phases",
        "9. Finite step and finite delay",
    ):
        assert heading in text
    assert "\\frac{1}{(1 - \\mu)}" in text
    code, out, _ = run_cli(["derive", "--format", "latex", "--spectrum", "3,2,1"], capsys)
    assert code == 0 and out.startswith("\\documentclass") and out.rstrip().endswith("\\end{document}")
    assert out.count("\\begin{equation*}") == out.count("\\end{equation*}") > 10


def _text_outside_math(line: str) -> str:
    """A LaTeX line without its inline math and its \\texttt{...} pieces."""
    return re.sub(r"\\texttt\{[^}]*\}", "", "".join(line.split("$")[::2]))


@pytest.mark.parametrize("spectrum", ["1.001,1", "1e6,1"])
def test_notes_in_a_latex_document_are_escaped(spectrum, capsys):
    """Notes written for the JSON (``e_1``, ``a < b``) went into the LaTeX text as they were: a bare
    ``_`` stops compilation. Outside math and code no character LaTeX reads as a command is left; the
    floor's note (no floor here: sin² would be above 1) is in the document. At η 0.01 the nearly flat
    spectrum's phases are followed for a tenth of the default's iterations, with the same notes."""
    code, out, _ = run_cli(["derive", "--format", "latex", "--spectrum", spectrum, "--eta", "0.01"], capsys)
    assert code == 0
    body = re.sub(r"\\begin\{(equation\*|center)\}.*?\\end\{\1\}", "", out.split("\\begin{document}")[1], flags=re.S)
    prose = [line for line in body.splitlines() if line and not line.startswith("\\")]
    assert len(prose) > 20
    for line in prose:
        assert line.count("$") % 2 == 0, line
        for char in "_%&#<>":
            text = _text_outside_math(line)
            assert all(text[i - 1] == "\\" for i, c in enumerate(text) if c == char and i > 0), (char, line)
            assert not text.startswith(char), line
    if spectrum == "1.001,1":
        assert "Note: the iteration is not mean-square stable at e\\_1" in out


@pytest.mark.slow
def test_derive_reads_a_covariance_file(tmp_path, capsys):
    q = random_rotation(3, 1)
    path = tmp_path / "sigma.npy"
    np.save(path, q @ np.diag([3.0, 2.0, 1.0]) @ q.T)
    code, out, _ = run_cli(["derive", "--covariance", str(path)], capsys)
    assert code == 0
    assert json.loads(out)["problem"]["spectrum"] == pytest.approx([3.0, 2.0, 1.0])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--eta", "0"], "eta must be a finite number > 0"),
        (["--mu", "1"], "mu must satisfy"),
        (["--tau", "-2"], "tau must be a non-negative integer"),
        (["--spectrum", "4,4,1"], "eigengap"),
        (["--spectrum", "4,x,1"], "spectrum must be comma-separated"),
        (["--spectrum", "4"], "at least two"),
        (["--spectrum", "4,-1"], "spectrum entries"),
        (["--distribution", "cauchy"], "unknown distribution"),
        (["--distribution", "student-t:4"], "infinite fourth moments"),
        (["--delay", "uniform:9-1"], "A <= B"),
        (["--covariance", "/nonexistent.npy"], "does not exist"),
        (["--epsilon", "1e-4"], "floor"),
        (["--tau", "1.5"], "invalid int value"),
        (["--format", "pdf"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(args, fragment, capsys):
    try:
        code = main(["derive", *args])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and fragment in err
    assert "Traceback" not in err


def test_covariance_must_be_symmetric_positive_definite_from_a_file(tmp_path, capsys):
    path = tmp_path / "bad.npy"
    np.save(path, np.array([[1.0, 2.0], [2.0, 1.0]]))
    code, _, err = run_cli(["derive", "--covariance", str(path)], capsys)
    assert code == 2 and "positive definite" in err


def test_console_script_runs_in_a_fresh_process():
    proc = subprocess.run(
        [sys.executable, "-m", "amsgd", "derive", "--mu", "2"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["amsgd derive: error: mu must satisfy 0 <= mu < 1, got 2"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "null", "phrases"),
    [
        # a tangent mode unstable in the mean: every part of the finite-η floor is null
        (["--mu", "0.999", "--tau", "5"], lambda d: set(d["stationary_error"]["finite_eta"]["parts"].values()) == {None},
         ["a tangent mode is unstable in the mean", "no finite floor"]),
        # η so small that no path of the first-passage laws escapes, and no impulse blows a run up
        (["--eta", "1e-7"], lambda d: d["phases"]["escape_law"]["median"] is None
         and d["stability"]["divergence_risk"]["critical_impulse"] is None,
         ["beyond the iterations the law follows", "No gradient impulse", "the runs were not sampled, or not followed that far"]),
        # unstable at every delay: no floor, so no convergence phase (ε and phase III null)
        (["--eta", "0.5"], lambda d: d["phases"]["converges"] is False and d["phases"]["epsilon"] is None
         and d["phases"]["converge_iterations"] is None and d["phases"]["mean_curve"]["converge_time"] is None,
         ["there is no phase III"]),
    ],
)
def test_derive_documents_where_the_json_has_nulls(tmp_path, capsys, options, null, phrases):
    """Where the JSON reports null numbers, the Markdown and LaTeX documents still render and say why."""
    args = ["derive", "--spectrum", "3,2,1", *options]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and null(json.loads(out))
    md, tex = tmp_path / "d.md", tmp_path / "d.tex"
    assert run_cli([*args, "--format", "markdown", "--out", str(md)], capsys)[0] == 0
    assert run_cli([*args, "--format", "latex", "--out", str(tex)], capsys)[0] == 0
    for text in (md.read_text(), tex.read_text()):
        assert all(phrase in text for phrase in phrases)


def test_whole_numbers_may_be_written_as_floats():
    """``--steps 2e4`` was refused ("invalid int value") where the sweep's axes took ``--tau 1e3``."""
    import argparse

    from amsgd.cli.options import whole

    assert whole("20000") == whole("2e4") == whole("20000.0") == 20000 and isinstance(whole("2e4"), int)
    for bad in ("1.5", "abc", "1e400", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid int value"):
            whole(bad)


def test_a_small_step_is_refused_by_the_tradeoff_momenta_only_where_the_tradeoff_is_asked_for(capsys):
    """At η 1e-9 the default tradeoff momentum 0.95 leaves a step below what the numbers resolve: derive
    refused even ``--sections problem``, whose output reads no tradeoff momenta; the tradeoff section is
    still refused, naming the option that sets them."""
    assert main(["derive", "--eta", "1e-9", "--sections", "problem", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["problem"]["eta"] == 1e-9
    assert main(["derive", "--eta", "1e-9", "--sections", "tradeoff", "-q"]) == 2
    assert "tradeoff momenta (--tradeoff-mu): at mu = 0.95" in capsys.readouterr().err
