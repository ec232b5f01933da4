"""Bad input on the command line: one clear line on stderr and exit status 2, for every rule of
tests/helpers/bad_inputs.py; docs/errors.md is the table those rules produce."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.bad_inputs import CASES, PAGE, collect, make_files, render, run_case

#: Words of the libraries underneath that a message must not show a person.
JARGON = ("Traceback", "Errno", "OSError", "ValueError", "HDF5", "h5py", "array(", "dtype", "pickle")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input")
    make_files(folder)
    return folder


@pytest.mark.parametrize(("arguments", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_status_2(workdir, monkeypatch, arguments, fragment):
    monkeypatch.chdir(workdir)
    status, lines = run_case(arguments)
    command = next(word for word in arguments.split() if not word.startswith("-"))  # "-q simulate": simulate
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"amsgd {command}: error: "), lines
    assert fragment in lines[0]
    assert not any(word in lines[0] for word in JARGON), lines[0]


def test_there_are_at_least_fifty_rules():
    assert len(CASES) >= 50 and len({args for args, _ in CASES}) == len(CASES)


def test_errors_page_is_generated_from_the_rules(tmp_path):
    assert PAGE.read_text() == render(collect(tmp_path)), "regenerate with: python tests/helpers/bad_inputs.py"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs a folder that refuses files")
def test_a_folder_that_refuses_files_is_named_before_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, lines = run_case("simulate --steps 100000000 --out /proc/x.nc")
    assert status == 2 and len(lines) == 1
    assert "'/proc'" in lines[0] and not any(word in lines[0] for word in JARGON)
