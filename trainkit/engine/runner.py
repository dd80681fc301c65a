"""Running nodes: the one function that executes a node, and schedulers around it.

`execute_node` is the only place a component runs during training. The sequential and
joblib schedulers here and the doit tasks in `trainkit.tasks` all call it, so a node
behaves the same whichever tool drives the build.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from trainkit.data.importer import Project, ProjectPaths, load_project_paths
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.cache import Cache
from trainkit.engine.component import get_component
from trainkit.engine.fingerprint import fingerprint
from trainkit.engine.graph import DERIVE, PROCESS, PROVIDE, TRAIN, Node, graph_from_dict, node_of
from trainkit.engine.plan import (
    NodeStatus,
    RunRecords,
    explain_miss,
    fingerprint_of,
    make_record,
    node_inputs,
    plan,
    project_file_digests,
)
from trainkit.errors import TrainkitError

logger = logging.getLogger(__name__)

# Data nodes are cheap and deterministic: dry runs execute them to see through edits that
# do not change their output.
DATA_FUNCTIONS = (PROVIDE, DERIVE)


@dataclass
class BuildSpec:
    """Everything a worker process needs to run a node: plain, picklable data."""

    nodes: list[dict[str, Any]]
    paths: dict[str, Any]
    cache_root: str
    cache_max_size: int | None
    state_dir: str
    project_dir: str

    @property
    def project_paths(self) -> ProjectPaths:
        """The project's file locations."""
        return ProjectPaths.create(self.paths["config"], self.paths["domain"], self.paths["data"])

    def cache(self) -> Cache:
        """The cache this build reads and writes."""
        return Cache(Path(self.cache_root), self.cache_max_size)

    def records(self) -> RunRecords:
        """Per-node records of the last run, for staleness reasons."""
        return RunRecords(Path(self.state_dir) / "nodes")

    def graph(self) -> nx.DiGraph:
        """The training graph."""
        return graph_from_dict(self.nodes)

    def file_digests(self) -> dict[str, str]:
        """Content digests of the files data providers read, keyed by project-relative path."""
        return project_file_digests(self.project_paths.input_files(), Path(self.project_dir))


def paths_as_dict(paths: ProjectPaths) -> dict[str, Any]:
    """ProjectPaths as absolute path strings (worker processes may run elsewhere)."""
    return {
        "config": None if paths.config is None else str(paths.config.absolute()),
        "domain": None if paths.domain is None else str(paths.domain.absolute()),
        "data": [str(p.absolute()) for p in paths.data],
    }


_PROJECT_MEMO: dict[str, Project] = {}


def _project(spec: BuildSpec, file_digests: dict[str, str]) -> Project:
    """Parse the project once per process and content state."""
    key = fingerprint(sorted(file_digests.items()))
    if key not in _PROJECT_MEMO:
        _PROJECT_MEMO.clear()
        _PROJECT_MEMO[key] = load_project_paths(spec.project_paths)
    return _PROJECT_MEMO[key]


def _load_inputs(node: Node, inputs: dict[str, Any], cache: Cache) -> dict[str, Any]:
    loaded: dict[str, Any] = {}
    for param, digest in inputs.items():
        if param == "files":
            continue
        digests = [digest] if isinstance(digest, str) else digest
        artifacts = []
        for item in digests:
            path = cache.path_of(item, verify=True)
            if path is None:
                raise TrainkitError(
                    f"node '{node.name}': input '{param}' is missing from the cache; run the build again"
                )
            artifacts.append(Artifact(path))
        loaded[param] = artifacts[0] if isinstance(digest, str) else artifacts
    return loaded


def execute_node(
    spec: BuildSpec, node: Node, inputs: dict[str, Any], node_fingerprint: str, file_digests: dict[str, str]
) -> str:
    """Run one node and store its artifact; returns the artifact's content digest.

    The component writes into a private temporary directory; the cache copies it in and
    renames it into place atomically, so an interrupted run leaves nothing a later run
    would trust.
    """
    cache = spec.cache()
    cls = get_component(node.component)
    component = cls(node.config)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=f"trainkit-{node.name}-"))
    try:
        out = ArtifactWriter(scratch / "artifact")
        with warnings.catch_warnings():
            if node.fn in DATA_FUNCTIONS:
                warnings.simplefilter("ignore")  # the importer already reported them
            if node.fn == PROVIDE:
                component.provide(_project(spec, file_digests), out)  # type: ignore[attr-defined]
            else:
                loaded = _load_inputs(node, inputs, cache)
                if node.fn == TRAIN:
                    component.train(loaded, out)
                elif node.fn == PROCESS:
                    component.process_training_data(loaded, out)
                elif node.fn == DERIVE:
                    component.derive(loaded, out)  # type: ignore[attr-defined]
                else:
                    raise TrainkitError(f"node '{node.name}': unknown function '{node.fn}'")
        digest = cache.put(node_fingerprint, out.path, node.name, cls.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    spec.records().write(node.name, make_record(node, inputs, file_digests))
    logger.info("ran %s in %.2fs", node.name, time.perf_counter() - started)
    return digest


def run_node_by_name(spec: BuildSpec, name: str, force: bool = False) -> str | None:
    """Bring one node up to date (used by doit tasks); upstream nodes must be done."""
    graph = spec.graph()
    file_digests = spec.file_digests()
    wanted = nx.ancestors(graph, name) | {name}
    sub = graph.subgraph(wanted)
    result: dict[str, str] = {}

    def runner(node: Node, inputs: dict[str, Any], fp: str) -> str:
        if node.name != name:
            return ""  # an upstream that is not done: leave it to its own task
        result[name] = execute_node(spec, node, inputs, fp, file_digests)
        return result[name]

    statuses = plan(sub, spec.cache(), file_digests, spec.records(), runner, verify={name})
    status = statuses[name]
    if status.up_to_date and force:
        node = node_of(graph, name)
        digests = {n: s.digest for n, s in statuses.items() if s.digest}
        inputs = node_inputs(node, digests, file_digests) or {}
        return execute_node(spec, node, inputs, status.fingerprint or "", file_digests)
    if not status.up_to_date and name not in result:
        raise TrainkitError(f"node '{name}' cannot run: {status.reason}")
    return status.digest


@dataclass
class BuildReport:
    """What a build did, node by node."""

    statuses: dict[str, NodeStatus]
    seconds: float = 0.0
    trained: list[str] = field(default_factory=list)


def dry_run(spec: BuildSpec, only: str | None = None) -> BuildReport:
    """Status of every node (or of `only` and its ancestors); data nodes run, nothing trains."""
    cache = spec.cache()
    file_digests = spec.file_digests()
    graph = spec.graph()
    if only is not None:
        graph = graph.subgraph(nx.ancestors(graph, only) | {only})

    def data_only(node: Node, inputs: dict[str, Any], fp: str) -> str:
        if node.fn not in DATA_FUNCTIONS:
            return ""
        return execute_node(spec, node, inputs, fp, file_digests)

    statuses = plan(graph, cache, file_digests, spec.records(), data_only, verify={only} if only else False)
    for status in statuses.values():
        if status.ran:
            status.up_to_date = True
            status.reason = f"data re-read ({status.reason})"
    return BuildReport(statuses)


def dry_run_node(spec: BuildSpec, name: str) -> bool:
    """Whether one node is up to date (what doit's `uptodate` asks)."""
    return dry_run(spec, only=name).statuses[name].up_to_date


def build(spec: BuildSpec, force: bool = False, n_jobs: int = 1, backend: str = "loky") -> BuildReport:
    """Bring every node up to date: a topological scheduler with joblib for parallelism."""
    started = time.perf_counter()
    graph = spec.graph()
    cache = spec.cache()
    file_digests = spec.file_digests()
    records = spec.records()
    statuses: dict[str, NodeStatus] = {}
    digests: dict[str, str] = {}
    trained: list[str] = []

    for generation in nx.topological_generations(graph):
        pending: list[tuple[Node, dict[str, Any], str]] = []
        for name in sorted(generation):
            node = node_of(graph, name)
            inputs = node_inputs(node, digests, file_digests)
            assert inputs is not None, name
            fp = fingerprint_of(node, inputs)
            digest = None if force else cache.lookup(fp)
            if digest is not None and cache.path_of(digest, verify=True) is None:
                digest = None  # damaged: rebuild it
            if digest is not None:
                digests[name] = digest
                statuses[name] = NodeStatus(name, True, "cached", fp, digest)
                current = make_record(node, inputs, file_digests)
                if records.read(name) != current:
                    records.write(name, current)  # so a later miss can say what changed
            else:
                reason = "forced" if force else explain_miss(
                    node, records.read(name), make_record(node, inputs, file_digests)
                )
                statuses[name] = NodeStatus(name, False, reason, fp)
                pending.append((node, inputs, fp))
        if not pending:
            continue
        if n_jobs != 1 and len(pending) > 1:
            from joblib import Parallel, delayed, parallel_config

            # Workers get the BLAS thread count this process has: numeric results depend
            # on it, and parallel builds must be byte-identical to sequential ones.
            threads = {"inner_max_num_threads": blas_threads()} if backend == "loky" else {}
            with parallel_config(backend=backend, **threads):
                results = Parallel(n_jobs=min(n_jobs, len(pending)) if n_jobs > 0 else n_jobs)(
                    delayed(execute_node)(spec, node, inputs, fp, file_digests) for node, inputs, fp in pending
                )
        else:
            results = [execute_node(spec, node, inputs, fp, file_digests) for node, inputs, fp in pending]
        for (node, _, _), digest in zip(pending, results, strict=True):
            digests[node.name] = digest
            statuses[node.name].digest = digest
            statuses[node.name].ran = True
            if node.fn not in DATA_FUNCTIONS:
                trained.append(node.name)
    return BuildReport(statuses, time.perf_counter() - started, trained)


def blas_threads() -> int:
    """The BLAS thread count of this process (what OpenBLAS/OpenMP would pick)."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def default_state_dir(project_dir: Path) -> Path:
    """Where a project's build state lives (doit DB, node records, lock)."""
    return Path(project_dir) / ".trainkit"


def temporary_cache_root() -> str:
    """A throwaway cache for builds with caching disabled (artifacts must live somewhere)."""
    return tempfile.mkdtemp(prefix="trainkit-cache-")


__all__ = [
    "BuildReport",
    "BuildSpec",
    "build",
    "default_state_dir",
    "dry_run",
    "dry_run_node",
    "execute_node",
    "paths_as_dict",
    "run_node_by_name",
    "temporary_cache_root",
]
