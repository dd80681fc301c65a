"""Running nodes: the one function that executes a node, and the thin schedulers around it.

`run_component` is the only place a component runs during training, and `execute_node`
the only place a node's output enters the cache. The schedulers here (the joblib build,
the Dask build, the dry run, doit's per-task helpers) differ only in which stale nodes
they hand to an executor: each asks the planner (`trainkit.engine.plan`) what is stale
and why, and never decides that itself.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from trainkit.data.importer import Project, ProjectPaths, load_project_paths
from trainkit.engine import progress
from trainkit.engine.archive import remove_leftovers
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.cache import Cache
from trainkit.engine.component import get_component
from trainkit.engine.fingerprint import fingerprint
from trainkit.engine.forgotten import ForgottenNodes
from trainkit.engine.graph import (
    DERIVE,
    EPOCH_FRACTION,
    PROCESS,
    PROVIDE,
    TRAIN,
    Node,
    graph_from_dict,
    node_of,
)
from trainkit.engine.package import PackageSettings, write_model
from trainkit.engine.plan import (
    PACKAGE,
    Executor,
    NodeStatus,
    PackageStatus,
    PlanContext,
    RunRecords,
    make_record,
    node_identity,
    package_status,
    plan,
    project_file_digests,
    settle_reread_data,
)
from trainkit.engine.threads import blas_threads, limited_blas, nodes_at_once, parallel_workers
from trainkit.engine.written_models import WrittenModels
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
    package: dict[str, Any] = field(default_factory=dict)

    def package_settings(self) -> PackageSettings:
        """What the archive holds besides the node outputs."""
        return PackageSettings(**self.package)

    def context(self, file_digests: dict[str, str], force: bool = False,
                verify: bool | Collection[str] = False, remember: bool = False) -> PlanContext:
        """What the planner consults for this build."""
        return PlanContext(self.cache(), file_digests, self.records(), force, verify, remember,
                           self.forgotten().names())

    @property
    def project_paths(self) -> ProjectPaths:
        """The project's file locations."""
        return ProjectPaths.create(self.paths["config"], self.paths["domain"], self.paths["data"])

    def cache(self) -> Cache:
        """The cache this build reads and writes."""
        return Cache(Path(self.cache_root), self.cache_max_size, evict_on_put=False)

    def forgotten(self) -> ForgottenNodes:
        """The nodes doit forgot, which the next build retrains."""
        return ForgottenNodes(Path(self.state_dir))

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
        if param in ("files", EPOCH_FRACTION):
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


def run_component(node: Node, loaded: dict[str, Any], out: ArtifactWriter, project: Project | None = None,
                  code: str | None = None, threads: int | None = None) -> None:
    """The one place a component runs during training, on this machine or a worker.

    `code` is the code digest the planner fingerprinted: a process whose sources differ
    (edited during the build, or a cluster worker with another trainkit) refuses rather
    than produce output of one version of the code under the fingerprint of another.
    `threads` is the client's BLAS thread count, for a worker whose environment is not
    the client's (default: this process's setting).
    """
    cls = get_component(node.component)
    if code is not None and node_identity(node)["code"] != code:
        raise TrainkitError(f"node '{node.name}': the code of {cls.name} here differs from the code that was "
                            "planned (changed while the build ran, or another trainkit version); run it again")
    config = node.config
    if node.finetune:
        if not cls.finetunable:
            raise TrainkitError(f"node '{node.name}': {cls.name} cannot be finetuned")
        config = cls.finetuning_config(config, float(node.finetune[EPOCH_FRACTION]))
    component = cls(config)
    with warnings.catch_warnings(), limited_blas(threads):
        if node.fn in DATA_FUNCTIONS:
            warnings.simplefilter("ignore")  # the importer already reported them
        if node.fn == PROVIDE:
            if project is None:
                raise TrainkitError(f"node '{node.name}' reads the project files and must run where they are")
            component.provide(project, out)  # type: ignore[attr-defined]
        elif node.fn == TRAIN:
            component.train(loaded, out)
        elif node.fn == PROCESS:
            component.process_training_data(loaded, out)
        elif node.fn == DERIVE:
            component.derive(loaded, out)  # type: ignore[attr-defined]
        else:
            raise TrainkitError(f"node '{node.name}': unknown function '{node.fn}'")


def execute_node(
    spec: BuildSpec,
    node: Node,
    inputs: dict[str, Any],
    node_fingerprint: str,
    file_digests: dict[str, str],
    code: str | None = None,
    sharing: int = 1,
) -> str:
    """Run one node and store its artifact; returns the artifact's content digest.

    `sharing` is how many nodes run at once on this machine (their threads share the
    cores, see `engine/threads.py`).

    The component writes into a private temporary directory; the cache copies it in and
    renames it into place atomically, so an interrupted run leaves nothing a later run
    would trust.
    """
    cache = spec.cache()
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=f"trainkit-{node.name}-"))
    try:
        out = ArtifactWriter(scratch / "artifact")
        with nodes_at_once(sharing):
            if node.fn == PROVIDE:
                run_component(node, {}, out, _project(spec, file_digests), code)
            elif node.fn in DATA_FUNCTIONS:
                run_component(node, _load_inputs(node, inputs, cache), out, code=code)
            else:
                with progress.node(node.name):
                    run_component(node, _load_inputs(node, inputs, cache), out, code=code)
        digest = store_output(spec, node, inputs, node_fingerprint, file_digests, out.path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.debug("ran %s in %.2fs", node.name, time.perf_counter() - started)
    return digest


def store_output(spec: BuildSpec, node: Node, inputs: dict[str, Any], node_fingerprint: str,
                 file_digests: dict[str, str], directory: Path) -> str:
    """Put a node's output into the cache and remember what it was built from."""
    digest = spec.cache().put(node_fingerprint, directory, node.name, get_component(node.component).name)
    spec.records().write(node.name, make_record(node, inputs, file_digests))
    return digest


# -- executors: what a scheduler runs of the stale nodes the planner hands it ----------


def run_everything(spec: BuildSpec, file_digests: dict[str, str], n_jobs: int = 1, backend: str = "loky") -> Executor:
    """Run every stale node; a generation's nodes in parallel with joblib when n_jobs != 1."""

    def execute(ready: list[tuple[Node, NodeStatus]]) -> dict[str, str]:
        jobs = [(node, status.inputs or {}, status.fingerprint or "", file_digests, status.code)
                for node, status in ready]
        workers = parallel_workers(n_jobs, len(jobs))
        if workers > 1:
            from joblib import Parallel, delayed, parallel_config

            # Every node trains with the same BLAS thread count (see engine/threads.py);
            # loky also sets it in the workers' environment before numpy loads.
            threads = {"inner_max_num_threads": blas_threads()} if backend == "loky" else {}
            with parallel_config(backend=backend, **threads), progress.announced(
                    [node.name for node, _ in ready if node.fn not in DATA_FUNCTIONS]):
                results = Parallel(n_jobs=workers)(delayed(execute_node)(spec, *job, sharing=workers) for job in jobs)
        else:
            results = [execute_node(spec, *job) for job in jobs]
        return {node.name: digest for (node, _), digest in zip(ready, results, strict=True)}

    return execute


def run_on_cluster(spec: BuildSpec, file_digests: dict[str, str], client: Any) -> Executor:
    """Send stale non-data nodes to a Dask cluster through joblib's Dask backend; their
    inputs travel with them and their outputs come back to this process's cache."""
    from trainkit.engine.remote import execute_packed, pack, unpack

    cache = spec.cache()

    def packed_inputs(node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
        loaded = _load_inputs(node, inputs, cache)
        result: dict[str, Any] = {}
        for param, value in loaded.items():
            digests = inputs[param]
            if isinstance(value, list):
                result[param] = [(d, pack(a.path)) for d, a in zip(digests, value, strict=True)]
            else:
                result[param] = (digests, pack(value.path))
        return result

    def execute(ready: list[tuple[Node, NodeStatus]]) -> dict[str, str]:
        from joblib import Parallel, delayed, parallel_config

        local = [(n, s) for n, s in ready if n.fn in DATA_FUNCTIONS]
        digests = {node.name: execute_node(spec, node, status.inputs or {}, status.fingerprint or "", file_digests,
                                           status.code) for node, status in local}
        remote = [(n, s) for n, s in ready if n.fn not in DATA_FUNCTIONS]
        if not remote:
            return digests
        with parallel_config(backend="dask", client=client), progress.announced([n.name for n, _ in remote]):
            outputs = Parallel(n_jobs=-1)(
                delayed(execute_packed)(node.as_dict(), packed_inputs(node, status.inputs or {}), status.code or "",
                                        blas_threads())
                for node, status in remote
            )
        for (node, status), packed in zip(remote, outputs, strict=True):
            scratch = Path(tempfile.mkdtemp(prefix=f"trainkit-{node.name}-"))
            try:
                directory = unpack(packed, scratch / "artifact")
                digests[node.name] = store_output(spec, node, status.inputs or {}, status.fingerprint or "",
                                                  file_digests, directory)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            logger.debug("ran %s on the cluster", node.name)
        return digests

    return execute


def run_data_only(spec: BuildSpec, file_digests: dict[str, str]) -> Executor:
    """Run only the cheap, deterministic data nodes (what dry runs do to see through edits)."""

    def execute(ready: list[tuple[Node, NodeStatus]]) -> dict[str, str]:
        return {
            node.name: execute_node(spec, node, status.inputs or {}, status.fingerprint or "", file_digests, status.code)
            for node, status in ready
            if node.fn in DATA_FUNCTIONS
        }

    return execute


def run_one(spec: BuildSpec, file_digests: dict[str, str], name: str) -> Executor:
    """Run only the node `name` (its upstream nodes are other doit tasks)."""

    def execute(ready: list[tuple[Node, NodeStatus]]) -> dict[str, str]:
        return {
            node.name: execute_node(spec, node, status.inputs or {}, status.fingerprint or "", file_digests, status.code)
            for node, status in ready
            if node.name == name
        }

    return execute


# -- schedulers -----------------------------------------------------------------------


@dataclass
class BuildReport:
    """What a build (or a dry run) found and did, node by node and for the package."""

    statuses: dict[str, NodeStatus]
    package: PackageStatus | None = None
    seconds: float = 0.0
    trained: list[str] = field(default_factory=list)
    model: Path | None = None
    written: bool = False

    def all_statuses(self) -> dict[str, NodeStatus]:
        """Node statuses plus the package step's, as the dry run reports them."""
        return {**self.statuses, **({PACKAGE: self.package} if self.package is not None else {})}


def _graph(spec: BuildSpec, only: str | None = None) -> nx.DiGraph:
    graph = spec.graph()
    if only is not None:
        graph = graph.subgraph(nx.ancestors(graph, only) | {only})
    return graph


def _package(spec: BuildSpec, report: BuildReport, force: bool) -> None:
    """Bring the model archive up to date; the planner says whether anything is written."""
    settings = spec.package_settings()
    forgotten = spec.forgotten()
    status = package_status(settings, spec.nodes, report.statuses, force, PACKAGE in forgotten.names())
    report.package = status
    remove_leftovers(Path(settings.output))
    if status.up_to_date:
        report.model = status.model
        return
    if not status.fingerprint:
        raise TrainkitError(f"cannot package: {status.reason}")
    report.model = write_model(spec.cache(), settings, spec.nodes, status.digests)
    report.written = True
    WrittenModels(Path(spec.state_dir)).add(report.model)
    forgotten.remember([PACKAGE])


def build(spec: BuildSpec, force: bool = False, n_jobs: int = 1, backend: str = "loky",
          scheduler: str | None = None) -> BuildReport:
    """Bring every node and the model archive up to date.

    With a Dask `scheduler` address, independent nodes train on the cluster's workers.
    """
    started = time.perf_counter()
    file_digests = spec.file_digests()
    ctx = spec.context(file_digests, force=force, verify=True, remember=True)
    graph = spec.graph()
    if scheduler:
        from trainkit.engine.remote import dask_client

        with dask_client(scheduler) as client:
            statuses = plan(graph, ctx, run_on_cluster(spec, file_digests, client))
    else:
        statuses = plan(graph, ctx, run_everything(spec, file_digests, n_jobs, backend))
    spec.forgotten().remember(name for name, s in statuses.items() if s.ran and s.forgotten)
    trained = [name for name, s in statuses.items() if s.ran and node_of(graph, name).fn not in DATA_FUNCTIONS]
    report = BuildReport(statuses, trained=trained)
    _package(spec, report, force)
    _trim(spec, report)
    report.seconds = time.perf_counter() - started
    return report


def dry_run(spec: BuildSpec, force: bool = False) -> BuildReport:
    """Status of every node and of the package; data nodes run, nothing trains or is written."""
    file_digests = spec.file_digests()
    ctx = spec.context(file_digests, force=force)
    statuses = plan(spec.graph(), ctx, run_data_only(spec, file_digests))
    settle_reread_data(statuses)
    package = package_status(spec.package_settings(), spec.nodes, statuses, force, PACKAGE in ctx.forgotten)
    return BuildReport(statuses, package, model=package.model)


def node_current_status(spec: BuildSpec, name: str) -> NodeStatus:
    """One node's status, up to date or stale and why (what doit's `uptodate` asks)."""
    file_digests = spec.file_digests()
    ctx = spec.context(file_digests, verify={name})
    statuses = plan(_graph(spec, name), ctx, run_data_only(spec, file_digests))
    settle_reread_data(statuses)
    return statuses[name]


def node_is_current(spec: BuildSpec, name: str) -> bool:
    """Whether one node is up to date."""
    return node_current_status(spec, name).up_to_date


def package_current_status(spec: BuildSpec) -> PackageStatus:
    """The package step's status (the package task's `uptodate`)."""
    package = dry_run(spec).package
    assert package is not None  # a dry run always plans the package step
    return package


def package_is_current(spec: BuildSpec) -> bool:
    """Whether the model archive is up to date (the package task's `uptodate`)."""
    package = dry_run(spec).package
    return package is not None and package.up_to_date


def build_node(spec: BuildSpec, name: str, force: bool = False) -> str:
    """Bring one node up to date (a doit task's action); its upstream nodes must be done."""
    file_digests = spec.file_digests()
    ctx = spec.context(file_digests, verify={name}, remember=True)
    statuses = plan(_graph(spec, name), ctx, run_one(spec, file_digests, name))
    status = statuses[name]
    if status.ran and status.digest:
        if status.forgotten:
            spec.forgotten().remember([name])
        return status.digest
    if status.up_to_date and status.digest:
        if not force:
            return status.digest
        node = node_of(spec.graph(), name)
        return execute_node(spec, node, status.inputs or {}, status.fingerprint or "", file_digests, status.code)
    raise TrainkitError(f"node '{name}' cannot run: {status.reason}")


def package_cached(spec: BuildSpec, force: bool = False) -> BuildReport:
    """Write the model archive if it is not current (doit's last task): every node is cached."""
    report = dry_run(spec)
    _package(spec, report, force)
    _trim(spec, report)
    return report


def _trim(spec: BuildSpec, report: BuildReport) -> None:
    """The cache's size bound applies between builds (see `Cache.trim`)."""
    spec.cache().trim([s.digest for s in report.statuses.values() if s.digest])


def temporary_cache_root() -> str:
    """A throwaway cache for builds with caching disabled (artifacts must live somewhere)."""
    return tempfile.mkdtemp(prefix="trainkit-cache-")


__all__ = [
    "BuildReport",
    "BuildSpec",
    "build",
    "build_node",
    "run_component",
    "dry_run",
    "execute_node",
    "node_current_status",
    "node_is_current",
    "package_current_status",
    "package_cached",
    "package_is_current",
    "paths_as_dict",
    "temporary_cache_root",
]
