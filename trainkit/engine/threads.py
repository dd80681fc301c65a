"""How many BLAS threads a node trains with, and how many nodes run at once.

Numeric results depend on the BLAS thread count (a multi-threaded dot product sums in a
different order), so the count is a fixed setting, not whatever the machine or the job
count suggests: every node trains with `TRAINKIT_BLAS_THREADS` threads (default 1),
sequential or parallel, on a laptop or a cluster worker. That makes a parallel build
byte-identical to a sequential one and a model reproducible across machines. Parallel
builds then never oversubscribe: at most `cores // threads` nodes run at once, so
processes x threads stays within the core count.

Inside a node, work that splits into parts whose numbers do not depend on how they are
scheduled (DIET's intent and entity halves of a training step) runs on `node_lanes()`
lanes, the node's share of the cores: threads, and for DIET's intent part a forked child
process. That only changes the speed, never the model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from trainkit.errors import TrainkitError

BLAS_THREADS_ENV = "TRAINKIT_BLAS_THREADS"


def blas_threads() -> int:
    """The BLAS thread count every node trains with."""
    text = os.environ.get(BLAS_THREADS_ENV, "").strip()
    if not text:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise TrainkitError(f"{BLAS_THREADS_ENV}={text!r} must be a whole number of threads, at least 1")
    return int(text)


def set_blas_threads(threads: int) -> None:
    """Set the BLAS thread count for this process and every worker it starts (Rasa's
    `--num-threads`): worker processes inherit the environment, and a cluster's nodes
    are sent the count with their task."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise TrainkitError(f"the number of BLAS threads must be a whole number, at least 1 (got {threads!r})")
    os.environ[BLAS_THREADS_ENV] = str(threads)


def available_cores() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


_nodes_at_once = 1


def node_lanes() -> int:
    """Threads a node may run its independent parts on: this process's cores, divided by
    the BLAS thread count and by the nodes running at once (see `nodes_at_once`)."""
    return max(1, available_cores() // (blas_threads() * _nodes_at_once))


@contextmanager
def nodes_at_once(count: int) -> Iterator[None]:
    """Run the block as one of `count` nodes sharing this machine's cores."""
    global _nodes_at_once
    previous, _nodes_at_once = _nodes_at_once, max(1, int(count))
    try:
        yield
    finally:
        _nodes_at_once = previous


def parallel_workers(n_jobs: int, pending: int, threads: int | None = None) -> int:
    """Worker processes for `pending` independent nodes: what was asked (-1: all cores),
    capped so that workers x BLAS threads stays within the cores."""
    threads = threads or blas_threads()
    limit = max(1, available_cores() // threads)
    wanted = limit if n_jobs < 0 else n_jobs
    return max(1, min(wanted, limit, pending))


@contextmanager
def limited_blas(threads: int | None = None) -> Iterator[None]:
    """Run the block with the BLAS (and OpenMP) pools of this process at `threads`."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads or blas_threads()):
        yield
