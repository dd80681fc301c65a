"""doit integration: `from trainkit.tasks import *` in a dodo.py is a complete build.

`task_train` yields one subtask per graph node plus `train:package`. Every task's
`uptodate` asks trainkit's planner, the same one `trainkit train` and `trainkit status`
ask, so `doit list --status` is the dry run. Actions are module-level functions with
plain arguments, so the tasks work under fork and spawn, and with `doit -n N`. The
xxhash file checker serves the tasks a project adds to its own dodo.py.

    doit train                      build the model (only what changed)
    doit -n 4 train                 build independent nodes in parallel
    doit list --status --all        dry run: R = will run, U = up to date
    doit train --out dist --fixed-model-name bot --force
    doit train --finetune models --epoch-fraction 0.2
    doit train test                 test the model (only when the model or a test file changed)
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

from doit import task_params
from doit.dependency import FileChangedChecker

from trainkit.engine import lock, progress
from trainkit.engine.fingerprint import digest_file
from trainkit.engine.graph import DERIVE, PROVIDE
from trainkit.engine.runner import (
    BuildSpec,
    build_node,
    node_is_current,
    package_cached,
    package_is_current,
)
from trainkit.errors import TrainkitError

STATE_DIR = Path(".trainkit")
STATE_DIR.mkdir(exist_ok=True)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A warning as one clean line, as `trainkit` prints it (not Python's source excerpt)."""
    print(f"Warning: {message}", file=sys.stderr)


warnings.showwarning = _show_warning


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
    {"name": "finetune", "long": "finetune", "default": "",
     "help": "model to finetune: an archive, or a directory for its newest archive"},
    {"name": "epoch_fraction", "long": "epoch-fraction", "type": float, "default": 1.0,
     "help": "with --finetune: the fraction of each component's epochs to train"},
]


def node_uptodate(spec: dict[str, Any], name: str, force: bool) -> bool:
    """doit `uptodate` of a node: the planner's answer (data nodes are refreshed)."""
    if force:
        return False
    return _guarded(node_is_current, BuildSpec(**spec), name)


def package_uptodate(spec: dict[str, Any], force: bool) -> bool:
    """doit `uptodate` of the package task: is the model archive current and intact?"""
    if force:
        return False
    return _guarded(package_is_current, BuildSpec(**spec))


def run_node(spec: dict[str, Any], name: str, force: bool) -> None:
    """doit action: bring one node up to date, showing its progress."""
    with progress.reporting(progress.for_stream()):
        _guarded(build_node, BuildSpec(**spec), name, force=force)


def package_action(spec: dict[str, Any], force: bool) -> None:
    """doit action: write the model archive from the cached node outputs, if it is stale."""
    report = _guarded(package_cached, BuildSpec(**spec), force=force)
    print(f"Model: {report.model}" + ("" if report.written else " (up to date)"))


def _guarded(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an engine call, turning trainkit errors into one clean line and exit code 1."""
    try:
        return function(*args, **kwargs)
    except TrainkitError as exc:
        raise SystemExit(f"Error: {exc}") from None


def _acquire_project_lock() -> None:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "run")
    if command in _READ_ONLY_COMMANDS:
        return
    try:
        lock.acquire(STATE_DIR)  # held until the doit process exits
    except TrainkitError as exc:
        raise SystemExit(f"Error: {exc}") from None


@task_params(PARAMS)
def task_train(config: str, domain: str, data: str, out: str, fixed_model_name: str, force: bool,
               finetune: str = "", epoch_fraction: float = 1.0) -> Any:
    """Train the assistant's model: one subtask per graph node, then packaging."""
    from trainkit.training import prepare

    try:
        plan = prepare(
            domain if Path(domain).exists() else None,
            config if Path(config).exists() else None,
            [p for p in data.split(",") if p],
            out,
            fixed_model_name or None,
            model_to_finetune=finetune or None,
            finetuning_epoch_fraction=epoch_fraction,
        )
    except TrainkitError as exc:
        raise SystemExit(f"Error: {exc}") from None
    _acquire_project_lock()
    spec = plan.spec.__dict__
    # The group task itself does nothing; it is as current as its subtasks, which doit
    # checks one by one, so `doit list --status` must not show it as always stale.
    yield {"name": None, "uptodate": [True], "doc": "Train the assistant's model: one subtask per graph node, "
           "then packaging."}
    for node in plan.recipe.nodes:
        task: dict[str, Any] = {
            "name": node.name,
            "actions": [(run_node, [spec, node.name, force])],
            # No file_dep: the planner alone decides staleness (it hashes the files the
            # data nodes read), so doit and `trainkit status` can never disagree.
            "uptodate": [(node_uptodate, [spec, node.name, force])],
            "task_dep": [f"train:{up}" for up in node.upstream()],
            "doc": f"{node.component}.{node.fn}",
        }
        if node.fn in (PROVIDE, DERIVE):
            task["verbosity"] = 0
        yield task
    yield {
        "name": "package",
        "actions": [(package_action, [spec, force])],
        "task_dep": [f"train:{node.name}" for node in plan.recipe.nodes if node.target],
        "uptodate": [(package_uptodate, [spec, force])],
        "doc": "write the model archive",
    }


TEST_PARAMS = [
    {"name": "model", "long": "model", "default": "models", "help": "model archive, or a directory (newest)"},
    {"name": "stories", "long": "stories", "default": "tests", "help": "test story paths, comma separated"},
    {"name": "nlu", "long": "nlu", "default": "data", "help": "NLU test paths, comma separated"},
    {"name": "results", "long": "results", "default": "results", "help": "where reports and plots go"},
    {"name": "e2e", "long": "e2e", "type": bool, "default": False, "help": "also parse the stories' user texts"},
]


def _test_inputs(options: dict[str, Any]) -> dict[str, Any]:
    from trainkit.evaluation.run_record import run_inputs

    paths = [p for key in ("stories", "nlu") for p in options[key].split(",") if p]
    return run_inputs(options["model"], paths, options)


def test_uptodate(options: dict[str, Any]) -> bool:
    """doit `uptodate` of the test task: same model fingerprint, test files and options."""
    from trainkit.evaluation.run_record import is_current

    return _guarded(is_current, _test_inputs(options))


def test_action(options: dict[str, Any]) -> None:
    """doit action: `trainkit test` on the model; the run is recorded once it finished."""
    from trainkit.evaluation.console import run_lines
    from trainkit.evaluation.project_test import run_tests
    from trainkit.evaluation.run_record import record_run

    inputs = _test_inputs(options)
    run = _guarded(run_tests, options["model"], [p for p in options["stories"].split(",") if p],
                   [p for p in options["nlu"].split(",") if p], options["results"], options["e2e"])
    print("\n".join(run_lines(run, options["results"])))
    record_run(inputs, run.written.files)


@task_params(TEST_PARAMS)
def task_test(model: str, stories: str, nlu: str, results: str, e2e: bool) -> Any:
    """Test the model: dialogue on the test stories, NLU on the NLU data (`trainkit test`)."""
    options = {"model": model, "stories": stories, "nlu": nlu, "results": results, "e2e": e2e}
    return {
        "actions": [(test_action, [options])],
        "task_dep": ["train"],
        "uptodate": [(test_uptodate, [options])],
        "verbosity": 2,
    }


__all__ = ["DOIT_CONFIG", "task_test", "task_train"]
