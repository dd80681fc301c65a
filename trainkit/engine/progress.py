"""Progress of a build: which node runs, its epochs and loss, how long each node took.

Components say where they are with `report_epoch` (a no-op unless a build is reporting),
so they need no reporter argument and stay usable on their own. The runner tells the
reporter when a node starts and finishes. In a terminal the running node is one line
redrawn in place (a bar, the epoch, the loss); elsewhere (a log file, CI, doit's captured
output) events are plain lines, epochs at every tenth of the way.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol


class Reporter(Protocol):
    """What a build tells about its nodes."""

    def started(self, node: str) -> None: ...

    def epoch(self, node: str, epoch: int, total: int, loss: float | None) -> None: ...

    def finished(self, node: str, seconds: float) -> None: ...


class PlainProgress:
    """Plain lines, for logs and for output that is not a terminal: a node's epochs at
    every tenth of the way, and one line when it is done."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def started(self, node: str) -> None:
        """Nothing yet: most nodes take a moment, and one line each is enough for them."""

    def epoch(self, node: str, epoch: int, total: int, loss: float | None) -> None:
        step = max(total // 10, 1)
        if epoch % step == 0 or epoch == total:
            self._write(f"{node}: epoch {epoch}/{total}" + ("" if loss is None else f", loss {loss:.4f}"))

    def finished(self, node: str, seconds: float) -> None:
        self._write(f"{node}: done in {seconds:.1f}s")


class TerminalProgress:
    """The running node as one line redrawn in place, with a bar; finished nodes stay."""

    WIDTH = 24

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._started: dict[str, float] = {}
        self._last_draw = 0.0

    def _out(self) -> IO[str]:
        return self.stream or sys.stderr

    def _draw(self, text: str, final: bool = False) -> None:
        out = self._out()
        out.write("\r\x1b[2K" + text + ("\n" if final else ""))
        out.flush()

    def started(self, node: str) -> None:
        self._started[node] = time.perf_counter()
        self._draw(f"  {node}  ...")

    def epoch(self, node: str, epoch: int, total: int, loss: float | None) -> None:
        now = time.perf_counter()
        if epoch != total and now - self._last_draw < 0.1:
            return  # redrawing more often than the eye can follow only costs time
        self._last_draw = now
        done = int(self.WIDTH * epoch / max(total, 1))
        bar = "#" * done + "-" * (self.WIDTH - done)
        elapsed = now - self._started.get(node, now)
        loss_text = "" if loss is None else f"  loss {loss:.4f}"
        self._draw(f"  {node}  [{bar}] {epoch}/{total}{loss_text}  {elapsed:.1f}s")

    def finished(self, node: str, seconds: float) -> None:
        self._started.pop(node, None)
        self._draw(f"  {node}  done in {seconds:.1f}s", final=True)


def for_stream(stream: IO[str] | None = None) -> Reporter:
    """A terminal reporter when `stream` (default stderr) is a terminal, plain otherwise."""
    target = stream or sys.stderr
    is_terminal = getattr(target, "isatty", lambda: False)()
    return TerminalProgress(stream) if is_terminal else PlainProgress(stream)


_lock = threading.Lock()
_reporter: Reporter | None = None
_node = threading.local()


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Report the builds run inside the block to `reporter` (None: report nothing)."""
    global _reporter
    with _lock:
        previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        with _lock:
            _reporter = previous


@contextmanager
def node(name: str) -> Iterator[None]:
    """Mark `name` as the node running in this thread, telling the reporter."""
    reporter = _reporter
    _node.name = name
    started = time.perf_counter()
    if reporter is not None:
        reporter.started(name)
    try:
        yield
        if reporter is not None:
            reporter.finished(name, time.perf_counter() - started)
    finally:
        _node.name = None


@contextmanager
def announced(names: list[str]) -> Iterator[None]:
    """Nodes that run elsewhere (worker processes, a cluster) as a group: said to start
    together and to finish when their results are back; nothing is reported from inside."""
    global _reporter
    reporter = _reporter
    started = time.perf_counter()
    if reporter is not None:
        for name in names:
            reporter.started(name)
    with reporting(None):
        yield
    if reporter is not None:
        for name in names:
            reporter.finished(name, time.perf_counter() - started)


def report_epoch(epoch: int, total: int, loss: float | None = None) -> None:
    """Where a training loop is (1-based epoch); a no-op outside a reporting build."""
    reporter = _reporter
    name = getattr(_node, "name", None)
    if reporter is not None and name is not None:
        reporter.epoch(name, epoch, total, loss)
