"""Progress of long work: one labelled report per command, wherever stderr goes.

A command opens :func:`reporting` once. Whatever it runs reports through two calls:

* :func:`stage` names a part of the command (an experiment, a figure, a derivation) and, when the
  command declared a total with :func:`plan`, counts one unit of it when the part ends;
* :func:`counter` counts units toward a known total inside a part (replicate-steps, paths,
  grid points), thread-safe;
* :func:`shares` loops over the items of a part that runs many counted pieces of work (a delay
  curve's simulations), each item an equal share of the part.

What a person sees depends on stderr:

* a terminal: one bar, redrawn twice a second, with what runs, how far it is and the time left,
  e.g. ``amsgd validate ━━━━━━      3/7 experiments · dynamics · simulate 45% · 63 s · ~80 s left``;
* not a terminal (a log file, CI): one such line every :data:`INTERVAL` seconds, and when a part
  starts after the first of them (a command that ends within the interval prints nothing; the
  periodic line is skipped when a part's line came less than half an interval before it);
* ``quiet``: nothing (warnings and errors are printed by their callers as before).

The time left is ``(t − t_0) · (1 − f)/(f − f_0)`` with f the fraction done at time t and
``(t_0, f_0)`` the time and fraction when a fraction first became known (so setup and work reused
from an earlier run do not count as a rate); f is the declared total's units done plus the running
part's own fraction, or the running counter's fraction alone without a total.

Outside :func:`reporting` (the Python API) :func:`counter` draws its own tqdm bar when ``show`` is
true, or when ``show`` is None and stderr is a terminal, and does nothing otherwise.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO, TypeVar

T = TypeVar("T")

#: Seconds between two progress lines when stderr is not a terminal.
INTERVAL = 10.0
#: Seconds between two redraws of the bar on a terminal.
REDRAW = 0.5
#: The clock of the elapsed times shown.
_clock = time.monotonic


@dataclass
class _Part:
    label: str
    total: float | None
    unit: str
    done: float = 0.0

    def describe(self) -> str:
        if self.total:
            return f"{self.label} {100 * min(self.done / self.total, 1.0):.0f}%"
        return f"{self.label} {self.done:g} {self.unit}"


class _Report:
    """The state of one command's progress and the thread that shows it."""

    def __init__(self, command: str, mode: str, stream: TextIO, interval: float) -> None:
        self.command, self.mode, self.stream, self.interval = command, mode, stream, interval
        self.total: int | None = None
        self.unit = ""
        self.done = 0
        self.stage: str | None = None
        self.part: _Part | None = None
        self.shares: list[_Shares] = []  # :func:`shares` loops, outermost first
        self.reached = 0.0  # the largest fraction shown: a counted part's end does not take it back
        self.began = _clock()
        #: (time, fraction) when the fraction done first became known: the time left is estimated
        #: from the rate since then, not since the command began (a resumed sweep starts at its
        #: reused share, after a setup that the rest of the work does not repeat).
        self.anchor: tuple[float, float] | None = None
        self.last_line: str | None = None
        self.printed_at = -float("inf")  # when the last line was printed
        #: Text ended without a newline on the terminal (:class:`_SharedTerminal`): the bar waits for its end.
        self.held = False
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=1000, file=stream, desc=command, bar_format="{desc} {bar:20} {postfix}", leave=False)
        self.thread = threading.Thread(target=self._loop, name="amsgd-progress", daemon=True)
        self.thread.start()

    def fraction(self) -> float | None:
        part = self.part.done / self.part.total if self.part is not None and self.part.total else None
        for loop in reversed(self.shares):  # the innermost loop's item holds the running part
            part = loop.fraction(part)
        if self.total:
            self.reached = max(self.reached, min((self.done + (part or 0.0)) / self.total, 1.0))
            return self.reached
        return part

    def set_anchor(self) -> None:
        """Fix :attr:`anchor` at the first call where the fraction done is known."""
        if self.anchor is None and (f := self.fraction()) is not None:
            self.anchor = (_clock(), f)

    def describe(self) -> str:
        """``3/7 experiments · dynamics · simulate 45% · 63 s · ~80 s left``."""
        with self.lock:
            fields = []
            if self.total:
                fields.append(f"{self.done}/{self.total} {self.unit}")
            if self.stage:
                fields.append(self.stage)
            if self.part is not None:
                fields.append(self.part.describe())
            now = _clock()
            fields.append(f"{now - self.began:.0f} s")
            self.set_anchor()
            f = self.fraction()
            if f is not None and 0.01 <= f < 1 and f > self.anchor[1]:
                since, f0 = self.anchor
                fields.append(f"~{(now - since) * (1 - f) / (f - f0):.0f} s left")
            return " · ".join(fields)

    def show(self) -> None:
        """Redraw the bar, or print the line unless it reads as the last one printed (a part that starts
        in the same second as an interval's line is said once)."""
        if self.mode == "bar":
            with self.lock:
                if (f := self.fraction()) is not None:  # unknown (a stage after a counted part): kept, not emptied
                    self.bar.n = int(1000 * f)
                self.bar.set_postfix_str(self.describe(), refresh=not self.held)
        elif self.mode == "lines":
            with self.lock:
                line = f"{self.command}: {self.describe()}"
                if line != self.last_line:
                    print(line, file=self.stream, flush=True)
                    self.last_line, self.printed_at = line, _clock()

    def tick(self) -> None:
        """The periodic report: redraw the bar, or print the line unless a part's start printed one
        within the last half interval (its stage said then would read twice, a second apart)."""
        if self.mode == "lines" and _clock() - self.printed_at < self.interval / 2:
            return
        self.show()

    def _loop(self) -> None:
        wait = REDRAW if self.mode == "bar" else self.interval
        while not self.stopped.wait(wait):
            self.tick()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        if self.bar is not None:
            if self.held:  # the bar's clearing would blank the line the command's text left unfinished
                self.stream.write("\n")
            self.bar.close()


@dataclass(eq=False)
class _Shares:
    """A :func:`shares` loop: ``done`` of ``total`` items ended; the running item's fraction is the
    largest its parts have shown (its second simulation starting at 0% does not take it back)."""

    total: int
    done: int = 0
    item: float = 0.0

    def fraction(self, part: float | None) -> float:
        self.item = max(self.item, min(part or 0.0, 1.0))
        return (self.done + self.item) / self.total

    def next_item(self) -> None:
        self.done, self.item = self.done + 1, 0.0


_ACTIVE: _Report | None = None


def write_line(text: str) -> None:
    """Write ``text`` and a newline in one write to the progress's stream (stderr without one); where a
    bar is drawn it is cleared first and drawn again after, so that the line stands on a line of its own
    (it was written after the bar)."""
    report = _ACTIVE
    if report is None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        return
    _write_beside_the_bar(report, report.stream, text + "\n")


def _write_beside_the_bar(report: _Report, stream: TextIO, text: str) -> int:
    """Write ``text`` to ``stream`` under the report's lock, with its bar (if any) cleared before and drawn
    again once the terminal's line is complete (not after text that ends without a newline)."""
    with report.lock:
        if report.bar is not None and not report.held:
            report.bar.clear()
        written = stream.write(text)
        stream.flush()
        if text:
            report.held = not text.endswith("\n")
        if report.bar is not None and not report.held:
            report.bar.refresh()
        return written


class _SharedTerminal:
    """``sys.stdout`` or ``sys.stderr`` while a bar is drawn on the terminal they write to: what the
    command prints (its result, a note) starts on a line of its own, not after the bar's text, and
    the bar is drawn again below it (:func:`_write_beside_the_bar`). Everything else is the stream's."""

    def __init__(self, report: _Report, stream: TextIO) -> None:
        self._report, self._stream = report, stream

    def write(self, text: str) -> int:
        return _write_beside_the_bar(self._report, self._stream, text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _sharing_the_terminal(report: _Report) -> Iterator[None]:
    """Replace ``sys.stdout`` and ``sys.stderr`` by :class:`_SharedTerminal` where they write to the
    terminal the bar is drawn on (stdout redirected to a file, or a report on another stream, is left as
    it is), and put them back."""
    shared = {}
    if report.bar is not None:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is report.stream or (name == "stdout" and report.stream is sys.stderr and stream.isatty()):
                shared[name] = _SharedTerminal(report, stream)
    originals = {name: getattr(sys, name) for name in shared}
    for name, proxy in shared.items():
        setattr(sys, name, proxy)
    try:
        yield
    finally:
        for name, proxy in shared.items():
            if getattr(sys, name) is proxy:
                setattr(sys, name, originals[name])


@contextlib.contextmanager
def reporting(
    command: str, *, quiet: bool = False, stream: TextIO | None = None, interval: float | None = None
) -> Iterator[None]:
    """Report the progress of ``command`` (e.g. ``"amsgd validate"``) on ``stream`` (default stderr)
    until the block ends: a bar on a terminal, a line every ``interval`` seconds elsewhere (default
    :data:`INTERVAL`), nothing when ``quiet``."""
    global _ACTIVE
    stream = sys.stderr if stream is None else stream
    interval = INTERVAL if interval is None else interval
    mode = "off" if quiet else ("bar" if stream.isatty() else "lines")
    previous, _ACTIVE = _ACTIVE, _Report(command, mode, stream, interval)
    try:
        with _sharing_the_terminal(_ACTIVE):
            yield
    finally:
        _ACTIVE.close()
        _ACTIVE = previous


def plan(total: int, unit: str) -> None:
    """Declare that the command consists of ``total`` parts (``unit``, e.g. "experiments"); each
    :func:`stage` counts one when it ends."""
    if _ACTIVE is not None:
        with _ACTIVE.lock:
            _ACTIVE.total, _ACTIVE.unit, _ACTIVE.done, _ACTIVE.reached = int(total), unit, 0, 0.0
            _ACTIVE.set_anchor()


@contextlib.contextmanager
def stage(label: str) -> Iterator[None]:
    """A named part of the command (shown, and counted toward :func:`plan`'s total when it ends)."""
    report = _ACTIVE
    if report is None:
        yield
        return
    with report.lock:
        outer, report.stage = report.stage, label
    if report.mode == "lines" and _clock() - report.began >= report.interval:
        report.show()  # a long command says when a part starts; a short one stays silent
    try:
        yield
    finally:
        with report.lock:
            report.stage = outer
            if report.total and outer is None:
                report.done += 1


def shares(items: Sequence[T]) -> Iterator[T]:
    """Iterate over ``items``, each an equal share of the running part of the command: the loops of a
    stage that runs many simulations (each with its own :func:`counter`, 0 to 100%) fill it once, item by
    item, instead of each simulation filling it anew. Loops nest (a share of a share)."""
    report = _ACTIVE
    if report is None or len(items) == 0:
        yield from items
        return
    loop = _Shares(len(items))
    with report.lock:
        report.shares.append(loop)
    try:
        for index, item in enumerate(items):
            if index:
                with report.lock:
                    loop.next_item()
            yield item
    finally:
        with report.lock:
            report.shares = [other for other in report.shares if other is not loop]


class Counter:
    """Units done toward a total inside one part: ``update(n)`` from any thread."""

    def __init__(self, report: _Report | None, part: _Part, bar) -> None:
        self._report, self._part, self._bar = report, part, bar
        self._lock = threading.Lock()

    def update(self, n: float = 1) -> None:
        if self._report is not None:
            with self._report.lock:
                self._part.done += n
        elif self._bar is not None:
            with self._lock:
                self._bar.update(n)


@contextlib.contextmanager
def counter(
    total: float | None, unit: str, label: str, *, initial: float = 0, show: bool | None = None
) -> Iterator[Counter]:
    """Count ``unit`` toward ``total`` in the running command's report, or, outside a command, on a
    tqdm bar of its own when ``show`` (None: when stderr is a terminal). ``show=False`` is silent
    everywhere (work nested inside a part that is counted already)."""
    part = _Part(label, total, unit, initial)
    report = _ACTIVE if show is not False else None
    if report is not None:
        with report.lock:
            outer, report.part = report.part, part
            report.set_anchor()
        try:
            yield Counter(report, part, None)
        finally:
            with report.lock:
                report.part = outer
        return
    bar = None
    if sys.stderr.isatty() if show is None else show:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=initial, unit=unit, desc=label, file=sys.stderr, unit_scale=True)
    try:
        yield Counter(None, part, bar)
    finally:
        if bar is not None:
            bar.close()
