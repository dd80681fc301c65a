"""A chain of work in a forked child process that hands its results to the caller.

Two threads of one interpreter share its lock: while one runs Python (batching, small
numpy operations), the other waits for the lock between its products, so a training
loop split into two parts on two threads runs at about 1.2 to 1.5 times one thread, not
twice. A child process has an interpreter of its own. Forked, it starts from the
caller's memory (data, network, random streams) with nothing to send, runs the part of
the loop that only feeds the caller (DIET's intent part makes the batches and the
sentence vectors the token part reads) and hands each item over:

- an item becomes a JSON structure and its arrays (`trainkit.ml.handover`, no pickles):
  the structure goes through a pipe, the arrays are copied into a slot of a shared
  memory ring mapped before the fork, and the caller rebuilds the item on views of that
  slot, so the caller copies nothing;
- the ring has a fixed number of slots: a child that is that many items ahead waits
  for the caller to `release` one, which bounds how far it runs ahead;
- an item too large for a slot sends its arrays through the pipe after the structure.

The child ignores SIGINT (the caller is the one that stops it, in `close`) and ends
itself when its parent is gone. Where a process cannot fork (other systems than Linux, where
fork is missing or unsafe; a daemonic process, such as a multiprocessing pool worker,
which may not have children; no memory for the ring) `ForkedChain.start` returns None and
the caller runs the part on a thread instead.
"""

from __future__ import annotations

import json
import mmap
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import numpy as np

from trainkit.errors import TrainkitError
from trainkit.ml.handover import HandoverError, Types, decode, encode

# how long a waiting child sleeps between checks that its parent is still there
_PARENT_CHECK_SECONDS = 1.0
_ALIGN = 64


class ChildFailed(TrainkitError):
    """The child process ended without handing over what the caller waits for (killed
    for want of memory, say)."""


class Channel:
    """The child's end: `put` hands an item to the caller."""

    def __init__(self, ring: mmap.mmap, slots: int, slot_bytes: int, free: Any, conn: Any, parent: int,
                 types: Types) -> None:
        self._ring, self._slots, self._slot_bytes = ring, slots, slot_bytes
        self._free, self._conn, self._parent, self._types = free, conn, parent, types
        self._next = 0

    def put(self, item: Any) -> None:
        arrays: list[np.ndarray] = []
        try:
            structure = encode(item, arrays, self._types)
        except HandoverError as error:
            arrays, structure = [], encode(error, [], self._types)
        layout, offset = [], 0
        for array in arrays:
            layout.append([offset, array.dtype.str, list(array.shape)])
            offset += -(-array.nbytes // _ALIGN) * _ALIGN
        if not arrays or offset > self._slot_bytes:
            # nothing to place, or too much for a slot: the arrays follow the message
            self._conn.send_bytes(json.dumps({"item": structure, "slot": None, "arrays": layout}).encode())
            for array in arrays:
                self._conn.send_bytes(array.data)
            return
        self._wait_for_a_slot()
        slot = self._next
        self._next = (self._next + 1) % self._slots
        base = slot * self._slot_bytes
        for (start, _, _), array in zip(layout, arrays, strict=True):
            self._ring[base + start : base + start + array.nbytes] = array.data.cast("B")
        self._conn.send_bytes(json.dumps({"item": structure, "slot": slot, "arrays": layout}).encode())

    def _wait_for_a_slot(self) -> None:
        while not self._free.acquire(timeout=_PARENT_CHECK_SECONDS):
            if os.getppid() != self._parent:
                os._exit(1)  # the caller is gone: nobody will take the item


class ForkedChain:
    """The caller's end of a chain running in a forked child (see the module docstring)."""

    def __init__(self, process: Any, conn: Any, ring: mmap.mmap, slot_bytes: int, free: Any, types: Types) -> None:
        self._process, self._conn, self._ring = process, conn, ring
        self._slot_bytes, self._free, self._types = slot_bytes, free, types
        self._held: list[int] = []

    @classmethod
    def start(cls, target: Callable[[Channel], None], slots: int = 2,
              slot_bytes: int = 256 << 20, nice: int = 0, types: Iterable[type] = ()) -> ForkedChain | None:
        """Fork a child running `target(channel)`; None where this process cannot fork.

        `types` are the dataclasses and exception classes items may hold besides arrays,
        scalars, tuples, lists and dicts (`trainkit.ml.handover`).

        The ring's pages are only backed once written, so a generous slot costs only
        what the largest item uses. `nice` lowers the child's priority, so that work
        of the caller's own threads, when they have some, goes first.
        """
        if not sys.platform.startswith("linux"):
            return None  # elsewhere fork is missing or unsafe (macOS system libraries)
        context = multiprocessing.get_context("fork")
        if multiprocessing.current_process().daemon:
            return None
        try:
            ring = mmap.mmap(-1, slots * slot_bytes)
        except OSError:  # no address space for the ring (a strict overcommit limit, say)
            return None
        free = context.Semaphore(slots)
        receiver, sender = context.Pipe(duplex=False)
        parent = os.getpid()
        handover_types = Types(types)

        def run() -> None:
            # the caller stops the child; its exit skips the inherited exit handlers and
            # buffers (a failure reaches the caller through the items, or as an early end)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if nice:
                os.nice(nice)
            receiver.close()
            code = 0
            try:
                target(Channel(ring, slots, slot_bytes, free, sender, parent, handover_types))
            except BaseException:
                code = 1
            os._exit(code)

        process = context.Process(target=run, name="trainkit-forked", daemon=True)
        for stream in (sys.stdout, sys.stderr):  # what they hold is the caller's to write
            if stream is not None:
                stream.flush()
        try:
            process.start()
        except (OSError, AssertionError):
            ring.close()
            return None
        sender.close()
        return cls(process, receiver, ring, slot_bytes, free, handover_types)

    def get(self) -> Any:
        """The child's next item; its arrays live in a ring slot until `release`."""
        try:
            message = json.loads(self._conn.recv_bytes())
            slot = message["slot"]
            if slot is None:
                arrays = [np.frombuffer(bytearray(self._conn.recv_bytes()), np.dtype(dtype)).reshape(shape)
                          for _, dtype, shape in message["arrays"]]
        except EOFError:
            self._process.join(timeout=5)
            raise ChildFailed(f"a training's child process ended early (exit code {self._process.exitcode}): "
                              "it was stopped from outside, or ran out of memory") from None
        if slot is not None:
            base = slot * self._slot_bytes
            arrays = [np.frombuffer(self._ring, np.dtype(dtype), int(np.prod(shape)), base + start).reshape(shape)
                      for start, dtype, shape in message["arrays"]]
            self._held.append(slot)
        return decode(message["item"], arrays, self._types)

    def release(self) -> None:
        """The oldest item taken with `get` is no longer used: its slot is free again."""
        if self._held:
            self._held.pop(0)
            self._free.release()

    def close(self, stop: bool = False) -> None:
        """Wait for the child to end (it does once it has handed everything over), or
        `stop` it now."""
        if stop and self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=None if stop else 10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> ForkedChain:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close(stop=kind is not None)
