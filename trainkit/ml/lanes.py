"""A second thread for a training loop whose steps split into two chains of work.

When a step splits into two parts that touch disjoint parameters and meet in one place
(DIET's intent part hands the sentence vector to its token part), a barrier per step
wastes the shorter part's thread: it finishes and waits while the other part runs its
sequential stretches (the CRF recursions), which no splitting can share. So the calling
thread runs one chain and a `Lane` runs the other, ahead of it by a bounded number of
steps, as a sequence of pieces: a generator whose every `next` runs one piece. Between
two pieces the lane runs whatever the calling thread offers (`share`), which is how the
caller's splittable products get halved: work offered while the lane is inside a piece
waits for that piece only, and the caller takes it back if the lane has not started it
by the time its own half is done. Who computes what never changes a number, so a model
trained on one thread or two is the same bit for bit.

A piece that yields an integer n asks the lane to go on only once the calling thread has
called `release(m)` with m >= n: that is the bound on how far the chain runs ahead. A
failure in the chain is kept and raised by `join`; a failure in the caller stops the
chain at its next piece when the lane closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


class Lane:
    """One worker thread running a chain of pieces and, between them, offered work."""

    def __init__(self, name: str = "lane") -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._chain: Iterator[int | None] | None = None
        self._released = 0
        self._waiting_for: int | None = None
        self._stopped = False
        self._done = threading.Event()
        self._done.set()
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ offers
    def share(self, first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
        """Both results: `second` is offered to the lane and taken back if the lane has not
        started it by the time `first` (run here) is done."""
        later = self._pool.submit(second)
        a = first()
        if later.cancel():
            return a, second()
        return a, later.result()

    # ------------------------------------------------------------------- chain
    def start(self, chain: Iterator[int | None]) -> None:
        """Run `chain` on the lane, one piece per `next` (see the module docstring)."""
        if not self._done.is_set():
            raise RuntimeError("the lane is already running a chain")
        self._chain, self._released, self._waiting_for = chain, 0, None
        self._stopped, self._error = False, None
        self._done.clear()
        self._pool.submit(self._advance)

    def release(self, mark: int) -> None:
        """The calling thread has reached `mark`: a chain waiting for it goes on."""
        with self._lock:
            self._released = max(self._released, mark)
            resume = self._waiting_for is not None and self._waiting_for <= self._released
            if resume:
                self._waiting_for = None
        if resume:
            self._pool.submit(self._advance)

    def join(self) -> None:
        """Wait for the chain to end; raise what made it fail."""
        self._done.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """End the chain at its next piece (a waiting chain ends now)."""
        with self._lock:
            self._stopped = True
            parked = self._waiting_for is not None
            self._waiting_for = None
        if parked:
            self._pool.submit(self._advance)

    def _advance(self) -> None:
        assert self._chain is not None
        if self._stopped:
            self._finish(close=True)
            return
        try:
            wait = next(self._chain)
        except StopIteration:
            self._finish()
            return
        except BaseException as error:  # kept for `join`, on the calling thread
            self._error = error
            self._finish()
            return
        with self._lock:
            if wait is not None and wait > self._released and not self._stopped:
                self._waiting_for = wait
                return
        self._pool.submit(self._advance)

    def _finish(self, close: bool = False) -> None:
        if close and self._chain is not None and hasattr(self._chain, "close"):
            self._chain.close()  # type: ignore[attr-defined]
        self._chain = None
        self._done.set()

    # --------------------------------------------------------- context manager
    def __enter__(self) -> Lane:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is not None:
            self.stop()
        self._done.wait()
        self._pool.shutdown(wait=True)


def share(first: Callable[[], A], second: Callable[[], B], lane: Lane | None) -> tuple[A, B]:
    """`lane.share`, or both on this thread without a lane."""
    if lane is None:
        return first(), second()
    return lane.share(first, second)
