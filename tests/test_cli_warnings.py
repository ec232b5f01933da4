"""How the command line prints the toolkit's warnings (amsgd/cli/__init__.py)."""

from __future__ import annotations

import sys
import time


class _SlowStream:
    """A stream whose every write yields to the other threads first (where a line written in two parts
    lets another thread's line in between)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        time.sleep(0)
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_warnings_from_many_threads_come_out_as_whole_lines(monkeypatch):
    """The points of a sweep warn from worker threads: each warning is one whole line on stderr, and a
    text repeated by several threads is printed once."""
    import threading
    import warnings

    from amsgd.cli import _warnings_as_lines
    from amsgd.core.errors import RunWarning

    start = threading.Barrier(8)

    def warn(n: int) -> None:
        start.wait()
        for k in range(200):
            warnings.warn(f"thread {n} says {k}" if k % 2 else "the same words from every thread", RunWarning)

    stream = _SlowStream()
    monkeypatch.setattr(sys, "stderr", stream)
    with _warnings_as_lines("sweep"):
        threads = [threading.Thread(target=warn, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = "".join(stream.parts).split("\n")
    assert lines[-1] == "" and all(line.startswith("amsgd sweep: warning: ") for line in lines[:-1])
    texts = [line.removeprefix("amsgd sweep: warning: ") for line in lines[:-1]]
    expected = {f"thread {n} says {k}" for n in range(8) for k in range(1, 200, 2)} | {"the same words from every thread"}
    assert sorted(texts) == sorted(expected)
