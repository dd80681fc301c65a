"""The planner: for every node, and for the package step, up to date or stale, and why.

This is the only place that decides. The joblib runner, the doit tasks' `uptodate`, the
dry run and `trainkit status` all call `plan` and only differ in what they execute for
the stale nodes it hands them (everything, only the cheap data nodes, one node, nothing).

Fingerprints need upstream *output* digests, which only the cache knows: a node whose
upstream has not produced its output yet cannot be fingerprinted and is stale because of
that upstream. Records of the last run per node say which input changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from trainkit.engine.atomic import write_json_atomic
from trainkit.engine.cache import Cache
from trainkit.engine.code_identity import component_code
from trainkit.engine.component import get_component
from trainkit.engine.fingerprint import digest_file, fingerprint, node_fingerprint
from trainkit.engine.forgotten import REASON as FORGOTTEN
from trainkit.engine.graph import BASE_MODEL, EPOCH_FRACTION, PROVIDE, Node, node_of
from trainkit.engine.package import (
    PACKAGE,
    PackageSettings,
    current_model,
    explain_model,
    package_fingerprint,
    target_names,
)


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
    if node.finetune:
        inputs.update(node.finetune)
    for param, upstream in node.needs.items():
        names = [upstream] if isinstance(upstream, str) else upstream
        if any(name not in digests for name in names):
            return None
        inputs[param] = digests[upstream] if isinstance(upstream, str) else [digests[n] for n in upstream]
    return inputs


def node_identity(node: Node, memo: dict[type, str] | None = None) -> dict[str, str]:
    """What identifies the code a node runs: component function, declared version, source digest.

    `memo` (one planning pass) spares re-digesting a class several nodes share.
    """
    cls = get_component(node.component)
    if memo is None:
        code = component_code(cls).digest
    elif cls in memo:
        code = memo[cls]
    else:
        code = memo[cls] = component_code(cls).digest
    identity = {"component": f"{cls.name}.{node.fn}", "version": cls.version, "code": code}
    resources = cls.resources_digest(node.config)
    if resources is not None:
        identity["resources"] = resources
    return identity


def fingerprint_of(node: Node, inputs: dict[str, Any], identity: dict[str, str] | None = None) -> str:
    """A node's fingerprint: code identity, resources (pretrained weights), merged config
    and input digests."""
    identity = identity or node_identity(node)
    code = identity["code"]
    if "resources" in identity:
        code = fingerprint([code, identity["resources"]])
    return node_fingerprint(identity["component"], identity["version"], node.config, inputs, code)


@dataclass
class NodeStatus:
    """Whether one node (or the package step) is up to date, and the reason when it is not."""

    name: str
    up_to_date: bool
    reason: str
    fingerprint: str | None = None
    digest: str | None = None
    ran: bool = False
    # Marked by `doit forget`: stale until a build runs it, even when re-read by a dry run.
    forgotten: bool = False
    # What a runner needs to execute the node (input digests); not part of the report.
    inputs: dict[str, Any] | None = field(default=None, repr=False)
    code: str | None = field(default=None, repr=False)

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
        write_json_atomic(self._path(name), record)


def make_record(
    node: Node, inputs: dict[str, Any], file_digests: dict[str, str], identity: dict[str, str] | None = None
) -> dict[str, Any]:
    """What to remember about a node run to explain a later miss."""
    record: dict[str, Any] = {
        **(identity or node_identity(node)),
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
    name = current["component"].rsplit(".", 1)[0]
    if record.get("component") != current["component"] or record.get("version") != current["version"]:
        return f"component version changed ({record.get('version')} -> {current['version']})"
    if record.get("code") != current["code"]:
        return f"code of {name} changed"
    if record.get("resources") != current.get("resources"):
        return f"pretrained resources of {name} changed"
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
    if node.finetune and any(old_inputs.get(k) != v for k, v in node.finetune.items()):
        if BASE_MODEL not in old_inputs:
            return "finetuning from a base model"
        if old_inputs[BASE_MODEL] != node.finetune[BASE_MODEL]:
            return "finetuning from another base model"
        return f"epoch fraction changed ({old_inputs.get(EPOCH_FRACTION)} -> {node.finetune[EPOCH_FRACTION]})"
    moved = sorted(k for k, v in current["inputs"].items() if old_inputs.get(k) != v)
    if moved:
        names = []
        for param in moved:
            value = node.needs.get(param)
            names.extend([value] if isinstance(value, str) else (value or [param]))
        return "upstream output changed: " + ", ".join(names)
    return "not in the cache (evicted or damaged)"


@dataclass
class PlanContext:
    """What the planner consults: the cache, the project files' digests, the run records.

    `verify` (True, or a set of node names) rehashes cached outputs before trusting them,
    so a damaged entry becomes a miss; `remember` refreshes the run records of cache hits
    (real builds do, so a later miss can say what changed since). `forgotten` nodes are
    treated as `force` treats every node (see `trainkit.engine.forgotten`).
    """

    cache: Cache
    file_digests: dict[str, str]
    records: RunRecords
    force: bool = False
    verify: bool | Collection[str] = False
    remember: bool = False
    forgotten: frozenset[str] = frozenset()
    identities: dict[type, str] = field(default_factory=dict, repr=False)

    def verifies(self, name: str) -> bool:
        """Whether `name`'s cached output is rehashed before it is trusted."""
        return self.verify is True or (bool(self.verify) and name in self.verify)  # type: ignore[operator]


def node_status(node: Node, digests: dict[str, str], ctx: PlanContext) -> NodeStatus:
    """The status of one node, given the output digests of the nodes before it."""
    inputs = node_inputs(node, digests, ctx.file_digests)
    if inputs is None:
        waiting = [u for u in node.upstream() if u not in digests]
        return NodeStatus(node.name, False, "upstream stale: " + ", ".join(dict.fromkeys(waiting)))
    identity = node_identity(node, ctx.identities)
    fp = fingerprint_of(node, inputs, identity)
    forgotten = node.name in ctx.forgotten
    digest = None if ctx.force or forgotten else ctx.cache.lookup(fp, touch=False)
    if digest is not None and ctx.verifies(node.name) and ctx.cache.path_of(digest, verify=True) is None:
        digest = None
    current = make_record(node, inputs, ctx.file_digests, identity)
    if digest is not None:
        if ctx.remember and ctx.records.read(node.name) != current:
            ctx.records.write(node.name, current)
        return NodeStatus(node.name, True, "cached", fp, digest, inputs=inputs, code=identity["code"])
    if ctx.force:
        reason = "forced"
    elif forgotten:
        reason = FORGOTTEN
    else:
        reason = explain_miss(node, ctx.records.read(node.name), current)
    return NodeStatus(node.name, False, reason, fp, forgotten=forgotten, inputs=inputs, code=identity["code"])


# Runs some of the stale, fingerprintable nodes it is given; returns {name: output digest}
# for those it ran. A real build runs them all, a dry run only the data nodes.
Executor = Callable[[list[tuple[Node, NodeStatus]]], dict[str, str]]


def plan(graph: nx.DiGraph, ctx: PlanContext, execute: Executor | None = None) -> dict[str, NodeStatus]:
    """Status of every node, generation by generation in topological order.

    Nodes of one generation do not depend on each other, so an executor may run the stale
    ones of a generation in parallel. A node the executor ran is still reported stale
    (with `ran` and its new `digest`), so callers can tell "restored" from "rebuilt".
    """
    digests: dict[str, str] = {}
    statuses: dict[str, NodeStatus] = {}
    for generation in nx.topological_generations(graph):
        ready: list[tuple[Node, NodeStatus]] = []
        for name in sorted(generation):
            node = node_of(graph, name)
            status = node_status(node, digests, ctx)
            statuses[name] = status
            if status.digest is not None:
                digests[name] = status.digest
            elif status.fingerprint is not None:
                ready.append((node, status))
        if execute is None or not ready:
            continue
        for name, digest in execute(ready).items():
            statuses[name].digest = digest
            statuses[name].ran = True
            digests[name] = digest
    return statuses


def settle_reread_data(statuses: dict[str, NodeStatus]) -> None:
    """A dry run counts a data node it just re-ran as up to date ("data re-read").

    Data nodes are cheap and deterministic; re-reading them is how a dry run sees that an
    edit (a comment, reordered keys) changes nothing downstream. What they produced is
    now in the cache, so they are as current as a cache hit. A forgotten one stays stale:
    only a build clears its mark.
    """
    for status in statuses.values():
        if status.ran and not status.forgotten:
            status.up_to_date = True
            status.reason = f"data re-read ({status.reason})"


@dataclass
class PackageStatus(NodeStatus):
    """The package step's status; `model` is the archive that is (or will be) current."""

    model: Path | None = None
    digests: dict[str, str] = field(default_factory=dict, repr=False)


def package_status(
    settings: PackageSettings, nodes: list[dict[str, Any]], statuses: dict[str, NodeStatus], force: bool = False,
    forgotten: bool = False,
) -> PackageStatus:
    """Whether the model archive is current: it carries the package fingerprint and is intact
    (and doit was not told to forget the package step)."""
    targets = target_names(nodes)
    waiting = [name for name in targets if statuses[name].digest is None]
    if waiting:
        return PackageStatus(PACKAGE, False, "waits for: " + ", ".join(waiting))
    digests = {name: statuses[name].digest or "" for name in targets}
    fp = package_fingerprint(settings, nodes, digests)
    status = PackageStatus(PACKAGE, False, "forced", fp, forgotten=forgotten, digests=digests)
    if force:
        return status
    if forgotten:
        status.reason = FORGOTTEN
        return status
    path = current_model(Path(settings.output), settings.fixed_model_name)
    if path is None:
        status.reason = f"no model in '{settings.output}'"
        if settings.fixed_model_name:
            status.reason = f"no model named '{settings.fixed_model_name}' in '{settings.output}'"
        return status
    reason = explain_model(path, settings, nodes, digests, fp)
    if reason is not None:
        status.reason = reason
        return status
    status.up_to_date, status.reason, status.model = True, f"current: {path}", path
    return status
