"""`--num-threads` reaches every place a node trains: this process, its loky workers
(through the environment) and a cluster's workers (sent with the task)."""

from __future__ import annotations

import json

from threadpoolctl import threadpool_info

from trainkit.engine.component import INTENT_CLASSIFIER, Component, register
from trainkit.engine.graph import Node
from trainkit.engine.plan import node_identity
from trainkit.engine.remote import execute_packed
from trainkit.engine.threads import BLAS_THREADS_ENV


@register
class BlasThreadsProbe(Component):
    """Writes the BLAS thread count it trained with."""

    name = "BlasThreadsProbe"
    roles = frozenset({INTENT_CLASSIFIER})
    trainable = True

    def train(self, inputs, out):
        pools = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        out.json("threads.json", sorted(set(pools)))


def probe_node() -> dict:
    return {"name": "train_BlasThreadsProbe0", "component": "BlasThreadsProbe", "fn": "train", "config": {},
            "needs": {}, "part": "nlu", "target": True, "finetune": None}


def test_a_cluster_worker_trains_with_the_clients_thread_count(monkeypatch):
    import numpy  # noqa: F401  (loads the BLAS library whose pool is limited)

    monkeypatch.setenv(BLAS_THREADS_ENV, "1")  # the worker's own environment says 1
    code = node_identity(Node.from_dict(probe_node()))["code"]
    packed = execute_packed(probe_node(), {}, code, threads=2)
    assert json.loads(packed["threads.json"]) == [2]
    packed = execute_packed(probe_node(), {}, code)
    assert json.loads(packed["threads.json"]) == [1]
