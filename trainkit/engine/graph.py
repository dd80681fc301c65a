"""The training graph: plain node records in a networkx DiGraph.

Nodes are data (what to run, with which config, fed by which upstream nodes); planning
and scheduling are functions over the graph, so doit, joblib and the dry run all read
the same structure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx

from trainkit.errors import GraphError

# Node functions.
PROVIDE = "provide"  # reads the project files
TRAIN = "train"  # learns from upstream artifacts
PROCESS = "process"  # adds tokens/features to the training data
DERIVE = "derive"  # a deterministic transformation of upstream artifacts

# The inputs a finetuned node has on top of its upstream nodes' outputs.
BASE_MODEL = "base_model"
EPOCH_FRACTION = "epoch_fraction"


@dataclass
class Node:
    """One unit of work: a component function, its merged config and its inputs."""

    name: str
    component: str
    fn: str
    config: dict[str, Any] = field(default_factory=dict)
    # parameter -> upstream node name, or a list of names for fan-in parameters
    needs: dict[str, str | list[str]] = field(default_factory=dict)
    part: str = "nlu"  # "nlu", "core" or "data": which half of the model it belongs to
    target: bool = False  # its artifact goes into the model archive
    # Finetuning: {"base_model": digest of the base model's output of this node (in the
    # cache), "epoch_fraction": f}; both are inputs of the node's fingerprint.
    finetune: dict[str, Any] | None = None

    def upstream(self) -> list[str]:
        """Names of every node this one reads, in parameter order."""
        names: list[str] = []
        for value in self.needs.values():
            names.extend([value] if isinstance(value, str) else value)
        return names

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (stored in metadata.json, passed to worker processes)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        """Inverse of `as_dict`."""
        return cls(**data)


def build_graph(nodes: list[Node]) -> nx.DiGraph:
    """The DiGraph of `nodes`, rejecting missing inputs and cycles before anything runs."""
    graph = nx.DiGraph()
    by_name: dict[str, Node] = {}
    for node in nodes:
        if node.name in by_name:
            raise GraphError(f"node '{node.name}' is defined twice")
        by_name[node.name] = node
        graph.add_node(node.name, node=node)
    for node in nodes:
        for parent in node.upstream():
            if parent not in by_name:
                raise GraphError(f"node '{node.name}' needs '{parent}', which is not in the graph")
            graph.add_edge(parent, node.name)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return graph
    path = " -> ".join(edge[0] for edge in cycle) + f" -> {cycle[0][0]}"
    raise GraphError(f"the graph has a cycle: {path}")


def node_of(graph: nx.DiGraph, name: str) -> Node:
    """The Node record stored under `name`."""
    return graph.nodes[name]["node"]


def graph_from_dict(data: list[dict[str, Any]]) -> nx.DiGraph:
    """The graph of serialised nodes (`Node.as_dict()` items), as worker processes get it."""
    return build_graph([Node.from_dict(item) for item in data])
