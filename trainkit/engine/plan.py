"""Planning: what each node's fingerprint is, whether the cache has it, and why not.

Fingerprints need upstream *output* digests, which only the cache knows; a node whose
upstream has not produced its output yet cannot be fingerprinted and is stale because of
that upstream. Records of the last run per node say which input changed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from trainkit.engine.cache import Cache
from trainkit.engine.component import get_component
from trainkit.engine.fingerprint import digest_file, fingerprint, node_fingerprint
from trainkit.engine.graph import PROVIDE, Node, node_of


def project_file_digests(files: list[Path], root: Path | None = None) -> dict[str, str]:
    """Content digest of every project file, keyed by its path relative to `root`.

    Relative keys keep fingerprints independent of where the project is checked out, so
    two clones (or CI) share cache entries.
    """
    digests = {}
    for path in files:
        key = Path(path)
        if root is not None:
            try:
                key = key.resolve().relative_to(Path(root).resolve())
            except ValueError:
                key = key.resolve()
        digests[key.as_posix()] = digest_file(path)
    return digests


def node_inputs(node: Node, digests: dict[str, str], file_digests: dict[str, str]) -> dict[str, Any] | None:
    """The input digests a node's fingerprint covers, or None if an upstream is unknown."""
    inputs: dict[str, Any] = {}
    if node.fn == PROVIDE:
        inputs["files"] = fingerprint(sorted(file_digests.items()))
    for param, upstream in node.needs.items():
        names = [upstream] if isinstance(upstream, str) else upstream
        if any(name not in digests for name in names):
            return None
        inputs[param] = digests[upstream] if isinstance(upstream, str) else [digests[n] for n in upstream]
    return inputs


def fingerprint_of(node: Node, inputs: dict[str, Any]) -> str:
    """A node's fingerprint: component identity, merged config and input digests."""
    cls = get_component(node.component)
    return node_fingerprint(f"{cls.name}.{node.fn}", cls.version, node.config, inputs)


@dataclass
class NodeStatus:
    """Whether one node is up to date, and the reason when it is not."""

    name: str
    up_to_date: bool
    reason: str
    fingerprint: str | None = None
    digest: str | None = None
    ran: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (what dry runs report)."""
        return {
            "status": "up to date" if self.up_to_date else "stale",
            "reason": self.reason,
            "fingerprint": self.fingerprint,
        }


class RunRecords:
    """The last fingerprint inputs of each node in a project, to explain staleness."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def read(self, name: str) -> dict[str, Any] | None:
        """The record of the node's last successful run, if any."""
        try:
            return json.loads(self._path(name).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def write(self, name: str, record: dict[str, Any]) -> None:
        """Store a record atomically (each node has its own file: no write contention)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, sort_keys=True)
        os.replace(tmp, self._path(name))


def make_record(node: Node, inputs: dict[str, Any], file_digests: dict[str, str]) -> dict[str, Any]:
    """What to remember about a node run to explain a later miss."""
    cls = get_component(node.component)
    record: dict[str, Any] = {
        "component": cls.name,
        "version": cls.version,
        "config": node.config,
        "inputs": {k: v for k, v in inputs.items() if k != "files"},
    }
    if node.fn == PROVIDE:
        record["files"] = file_digests
    return record


def explain_miss(node: Node, record: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """Human-readable reason why a node's fingerprint is not in the cache."""
    if record is None:
        return "never trained"
    if record.get("component") != current["component"] or record.get("version") != current["version"]:
        return f"component version changed ({record.get('version')} -> {current['version']})"
    old_config, new_config = record.get("config", {}), current["config"]
    changed = sorted(k for k in set(old_config) | set(new_config) if old_config.get(k) != new_config.get(k))
    if changed:
        return "config changed: " + ", ".join(changed)
    if node.fn == PROVIDE:
        old_files, new_files = record.get("files", {}), current.get("files", {})
        touched = sorted(p for p in set(old_files) | set(new_files) if old_files.get(p) != new_files.get(p))
        if touched:
            return "file changed: " + ", ".join(touched)
    old_inputs = record.get("inputs", {})
    moved = sorted(k for k, v in current["inputs"].items() if old_inputs.get(k) != v)
    if moved:
        ups = node.needs
        names = []
        for param in moved:
            value = ups.get(param)
            names.extend([value] if isinstance(value, str) else (value or [param]))
        return "upstream output changed: " + ", ".join(names)
    return "not in the cache (evicted or damaged)"


Runner = Callable[[Node, dict[str, Any], str], str]


def plan(
    graph: nx.DiGraph,
    cache: Cache,
    file_digests: dict[str, str],
    records: RunRecords,
    run: Runner | None = None,
    force: bool = False,
    verify: bool | set[str] = False,
) -> dict[str, NodeStatus]:
    """Status of every node in topological order.

    With `run`, a node that misses is executed on the spot (`run(node, inputs, fp)` returns
    its output digest), so its dependants can be fingerprinted: a real build passes a
    runner for every node, a dry run passes one that runs only the cheap data providers.
    `verify` (all nodes, or a set of names) rehashes cached outputs before trusting them,
    so a damaged entry becomes a miss.
    """
    digests: dict[str, str] = {}
    statuses: dict[str, NodeStatus] = {}
    for name in nx.lexicographical_topological_sort(graph):
        node = node_of(graph, name)
        inputs = node_inputs(node, digests, file_digests)
        if inputs is None:
            stale = [u for u in node.upstream() if not statuses[u].up_to_date and u not in digests]
            statuses[name] = NodeStatus(name, False, "upstream stale: " + ", ".join(stale))
            continue
        fp = fingerprint_of(node, inputs)
        digest = None if force else cache.lookup(fp, touch=False)
        if digest is not None and (verify is True or (verify and name in verify)):
            if cache.path_of(digest, verify=True) is None:
                digest = None
        if digest is not None:
            digests[name] = digest
            statuses[name] = NodeStatus(name, True, "cached", fp, digest)
            continue
        current = make_record(node, inputs, file_digests)
        reason = "forced" if force else explain_miss(node, records.read(name), current)
        status = NodeStatus(name, False, reason, fp)
        if run is not None:
            result = run(node, inputs, fp)
            if result:
                status.digest = result
                status.ran = True
                digests[name] = result
        statuses[name] = status
    return statuses
