"""Parallel builds never oversubscribe the cores, and every node trains with the same
BLAS thread count (so parallel output equals sequential output)."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info

from trainkit.engine import threads
from trainkit.errors import TrainkitError


def test_workers_times_blas_threads_stay_within_the_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert threads.parallel_workers(-1, 20, threads=1) == 8
    assert threads.parallel_workers(16, 20, threads=1) == 8
    assert threads.parallel_workers(16, 20, threads=2) == 4
    assert threads.parallel_workers(3, 2, threads=1) == 2  # never more workers than nodes
    assert threads.parallel_workers(4, 20, threads=16) == 1


def test_the_blas_thread_count_is_a_setting_not_the_machine(monkeypatch):
    monkeypatch.delenv(threads.BLAS_THREADS_ENV, raising=False)
    assert threads.blas_threads() == 1
    monkeypatch.setenv(threads.BLAS_THREADS_ENV, "2")
    assert threads.blas_threads() == 2
    monkeypatch.setenv(threads.BLAS_THREADS_ENV, "many")
    with pytest.raises(TrainkitError, match="TRAINKIT_BLAS_THREADS"):
        threads.blas_threads()


def test_nodes_train_with_the_configured_blas_threads(monkeypatch):
    import numpy  # noqa: F401  (loads the BLAS library whose pool is limited)

    monkeypatch.delenv(threads.BLAS_THREADS_ENV, raising=False)
    with threads.limited_blas():
        pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert pools and all(pool["num_threads"] == 1 for pool in pools)
