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


def test_a_node_runs_its_parts_on_its_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.delenv(threads.BLAS_THREADS_ENV, raising=False)
    assert threads.node_lanes() == 4
    with threads.nodes_at_once(2):
        assert threads.node_lanes() == 2
        with threads.nodes_at_once(8):
            assert threads.node_lanes() == 1
        assert threads.node_lanes() == 2
    monkeypatch.setenv(threads.BLAS_THREADS_ENV, "2")
    assert threads.node_lanes() == 2


def test_parallel_workers_are_told_how_many_nodes_share_the_cores(monkeypatch, tmp_path):
    from trainkit.engine import runner

    seen: list[int] = []
    monkeypatch.setattr(threads, "available_cores", lambda: 2)

    def recording(spec, node, *args, sharing=1, **kwargs):
        seen.append(sharing)
        return node.name

    monkeypatch.setattr(runner, "execute_node", recording)

    class Node:
        def __init__(self, name):
            self.name, self.fn = name, "train"

    class Status:
        inputs, fingerprint, code = {}, "f", None

    execute = runner.run_everything(None, {}, n_jobs=2, backend="threading")
    assert execute([(Node("a"), Status()), (Node("b"), Status())]) == {"a": "a", "b": "b"}
    assert seen == [2, 2]
    seen.clear()
    runner.run_everything(None, {}, n_jobs=1)([(Node("a"), Status())])
    assert seen == [1]
