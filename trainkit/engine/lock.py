"""A per-project lock so two builds of one project never interleave.

The cache itself is safe for concurrent use; the lock protects what is per project: the
doit state database, node records and the model output. The second build waits, telling
the user why, and gives up with a clear message after a timeout.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trainkit.errors import TrainkitError

LOCK_TIMEOUT_ENV = "TRAINKIT_LOCK_TIMEOUT"


class ProjectLocked(TrainkitError):
    """Another build holds the project lock."""


def acquire(state_dir: Path, timeout: float | None = None) -> int:
    """Take the lock (waiting up to `timeout` seconds); returns the open descriptor."""
    if timeout is None:
        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, "600"))
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "build.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ProjectLocked(
                    f"another trainkit build is running in this project (lock: {path}); "
                    f"gave up after {timeout:g}s"
                ) from None
            if not announced:
                print(f"Waiting for another trainkit build in this project to finish ({path})...", file=sys.stderr)
                announced = True
            time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def release(fd: int) -> None:
    """Give the lock back."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def project_lock(state_dir: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the project lock for the duration of a block."""
    fd = acquire(state_dir, timeout)
    try:
        yield
    finally:
        release(fd)
