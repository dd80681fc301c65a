"""doit integration: `from trainkit.tasks import *` in a dodo.py is a complete build.

`task_train` yields one subtask per graph node plus `train:package`. Each node's
`uptodate` asks the cache whether the node's fingerprint is stored, data nodes declare
the project files as `file_dep`, and actions are module-level functions with plain
arguments, so the tasks work under fork and spawn, and with `doit -n N`.

    doit train                      build the model (only what changed)
    doit -n 4 train                 build independent nodes in parallel
    doit list --status --all        dry run: R = will run, U = up to date
    doit train --out dist --fixed-model-name bot --force
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from doit import task_params
from doit.dependency import FileChangedChecker

from trainkit.engine import lock
from trainkit.engine.fingerprint import digest_file
from trainkit.engine.graph import DERIVE, PROVIDE
from trainkit.engine.runner import BuildSpec, dry_run_node, run_node_by_name
from trainkit.errors import TrainkitError

STATE_DIR = Path(".trainkit")
STATE_DIR.mkdir(exist_ok=True)


class XXHashChecker(FileChangedChecker):
    """doit file checker using xxh3_128 content digests (mtime shortcut as doit's md5)."""

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        if state is None or len(state) != 3:
            return True
        mtime, size, digest = state
        if file_stat.st_mtime == mtime:
            return False
        if file_stat.st_size != size:
            return True
        return digest_file(file_path) != digest

    def get_state(self, dep: str, current_state: Any) -> Any:
        stat = os.stat(dep)
        if current_state is not None and len(current_state) == 3 and current_state[0] == stat.st_mtime:
            return None
        return (stat.st_mtime, stat.st_size, digest_file(dep))


DOIT_CONFIG = {
    "backend": "sqlite3",
    "dep_file": str(STATE_DIR / "doit.sqlite"),
    "check_file_uptodate": XXHashChecker,
    "default_tasks": ["train"],
    "verbosity": 2,
}

_READ_ONLY_COMMANDS = {"list", "info", "help", "dumpdb", "strace", "tabcompletion", "ignore", "forget", "reset-dep"}

PARAMS = [
    {"name": "config", "long": "config", "default": "config.yml", "help": "config file"},
    {"name": "domain", "long": "domain", "default": "domain.yml", "help": "domain file or directory"},
    {"name": "data", "long": "data", "default": "data", "help": "data paths, comma separated"},
    {"name": "out", "long": "out", "default": "models", "help": "model output directory"},
    {"name": "fixed_model_name", "long": "fixed-model-name", "default": "", "help": "fixed model file name"},
    {"name": "force", "long": "force", "type": bool, "default": False, "help": "retrain every node"},
]


def node_uptodate(spec: dict[str, Any], name: str, force: bool) -> bool:
    """doit `uptodate`: is the node's fingerprint in the cache? (data nodes are refreshed)."""
    if force:
        return False
    return dry_run_node(BuildSpec(**spec), name)


def run_node(spec: dict[str, Any], name: str, force: bool) -> None:
    """doit action: bring one node up to date."""
    run_node_by_name(BuildSpec(**spec), name, force=force)


def package_action(spec: dict[str, Any], settings: dict[str, Any]) -> None:
    """doit action: write the model archive from the cached node outputs."""
    from trainkit.training import package_from_cache

    path = package_from_cache(BuildSpec(**spec), settings)
    print(f"Model: {path}")


def _acquire_project_lock() -> None:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "run")
    if command in _READ_ONLY_COMMANDS:
        return
    lock.acquire(STATE_DIR)  # held until the doit process exits


@task_params(PARAMS)
def task_train(config: str, domain: str, data: str, out: str, fixed_model_name: str, force: bool) -> Any:
    """Train the assistant's model: one subtask per graph node, then packaging."""
    from trainkit.training import package_settings, prepare

    try:
        plan = prepare(
            domain if Path(domain).exists() else None,
            config if Path(config).exists() else None,
            [p for p in data.split(",") if p],
            out,
            fixed_model_name or None,
        )
    except TrainkitError as exc:
        raise SystemExit(f"Error: {exc}") from None
    _acquire_project_lock()
    spec = plan.spec.__dict__
    files = [str(p) for p in plan.project.paths.input_files()]
    for node in plan.recipe.nodes:
        task: dict[str, Any] = {
            "name": node.name,
            "actions": [(run_node, [spec, node.name, force])],
            "uptodate": [(node_uptodate, [spec, node.name, force])],
            "task_dep": [f"train:{up}" for up in node.upstream()],
            "doc": f"{node.component}.{node.fn}",
        }
        if node.fn == PROVIDE:
            task["file_dep"] = files
        if node.fn in (PROVIDE, DERIVE):
            task["verbosity"] = 0
        yield task
    yield {
        "name": "package",
        "actions": [(package_action, [spec, package_settings(plan)])],
        "task_dep": [f"train:{node.name}" for node in plan.recipe.nodes if node.target],
        "uptodate": [False],
        "doc": "write the model archive",
    }


__all__ = ["DOIT_CONFIG", "task_train"]
