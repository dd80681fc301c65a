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
    doit train --data data/nlu.yml --data data/stories.yml --num-threads 2   (or --data a,b)
    doit train --finetune models --epoch-fraction 0.2
    doit train test                 test the model (only when the model or a test file changed)
    doit info train:<node>          the node's status and, when stale, the planner's reason
    doit forget train[:<node>]      the next build retrains those nodes, cached or not
    doit clean train                remove the models the builds wrote (TRAINKIT_CLEAN_CACHE=1: the cache too)
    doit help train                 the task's options (doit train --help prints them too)

doit's own state (`doit forget`, `doit clean --forget`) is not what decides here, the
planner is; so forgetting a trainkit task records it for the planner
(`trainkit.engine.forgotten`) and that node retrains once, in `doit train` and
`trainkit train` alike.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doit import Globals, task_params
from doit.dependency import FileChangedChecker

from trainkit.engine import lock, progress
from trainkit.engine.cache import Cache
from trainkit.engine.fingerprint import digest_file
from trainkit.engine.forgotten import ForgottenNodes
from trainkit.engine.graph import DERIVE, PROVIDE
from trainkit.engine.plan import PACKAGE, NodeStatus
from trainkit.engine.runner import (
    BuildSpec,
    build_node,
    node_current_status,
    package_cached,
    package_current_status,
)
from trainkit.engine.threads import BLAS_THREADS_ENV, set_blas_threads
from trainkit.engine.written_models import WrittenModels
from trainkit.errors import TrainkitError

TRAIN = "train"
CLEAN_CACHE_ENV = "TRAINKIT_CLEAN_CACHE"

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

# `doit help train` prints these; the defaults are in the help because doit's own line
# shows only where a value may be configured ([tool.doit.tasks.train] in pyproject.toml).
PARAMS = [
    {"name": "config", "long": "config", "default": "config.yml", "help": "config file [default: config.yml]"},
    {"name": "domain", "long": "domain", "default": "domain.yml",
     "help": "domain file or directory [default: domain.yml]"},
    {"name": "data", "long": "data", "type": list, "default": [], "metavar": "PATH",
     "help": "data files or directories: repeat the option (--data data/nlu.yml --data data/stories.yml) or "
             "separate them with commas (data/nlu.yml,data/stories.yml) [default: data]"},
    {"name": "out", "long": "out", "default": "models", "help": "where to write the model [default: models]"},
    {"name": "fixed_model_name", "long": "fixed-model-name", "default": "",
     "help": "model file name instead of a timestamped one"},
    {"name": "force", "long": "force", "type": bool, "default": False,
     "help": "retrain every node, ignoring the cache (one node: doit forget train:<node>)"},
    {"name": "num_threads", "long": "num-threads", "type": int, "default": 0,
     "help": f"BLAS threads each node trains with, here and in doit -n workers [default: {BLAS_THREADS_ENV} "
             "or 1]; with doit -n N, N processes each train with that many threads"},
    {"name": "finetune", "long": "finetune", "default": "",
     "help": "continue training this model: an archive, or a directory for its newest archive"},
    {"name": "epoch_fraction", "long": "epoch-fraction", "type": float, "default": 1.0,
     "help": "with --finetune: train this fraction of the epochs each component's config gives [default: 1.0]"},
    {"name": "show_help", "long": "help", "type": bool, "default": False, "help": "print these options and exit"},
]

CONFIG_FILES = ("pyproject.toml", "doit.cfg")


def _split_paths(values: list[str] | str) -> list[str]:
    """Paths of a `type: list` option: each occurrence may itself be comma separated."""
    items = [values] if isinstance(values, str) else values
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _configured_paths(task: str, name: str) -> list[str]:
    """The option's value in the project's doit configuration, as doit reads it.

    doit appends the occurrences of a `type: list` option to its default, and a default
    set in pyproject.toml (`[tool.doit.tasks.train]`) or doit.cfg is that default; the
    paths given on the command line must replace it, as Rasa's do, so it is looked up
    here to be taken off again.
    """
    from doit.doit_cmd import DoitConfig

    config = DoitConfig()
    config.loads([name for name in CONFIG_FILES if os.path.exists(name)])
    value = config.as_dict().get(f"task:{task}", {}).get(name)
    return _split_paths(value) if value else []


def option_paths(task: str, name: str, values: list[str] | str, default: str) -> list[str]:
    """The paths a multi-path option was given, or its default when it was given none."""
    paths = _split_paths(values)
    configured = _configured_paths(task, name)
    if configured and len(paths) > len(configured) and paths[: len(configured)] == configured:
        paths = paths[len(configured):]
    return paths or [default]


def print_task_help(task: str, doc: str, params: list[dict[str, Any]]) -> None:
    """`doit <task> --help`: the lines `doit help <task>` gives for the task's options."""
    from doit.cmdparse import CmdOption

    print(f"{task}  {doc}\n\nOptions:")
    for param in params:
        for line in CmdOption(param).help_doc():
            print(line)


class PlannerCheck:
    """A task's doit `uptodate`: the planner's answer, and its reason kept in words.

    doit's `info` prints an `uptodate` entry that said no together with its arguments;
    this one takes none and prints as the planner's reason, so `doit info train:<node>`
    says why (`config changed: epochs`) instead of dumping the build spec.
    """

    def __init__(self, status: Callable[[], NodeStatus], force: bool) -> None:
        self.status = status
        self.force = force
        self.reason = "not checked yet"

    def __call__(self) -> bool:
        if self.force:
            self.reason = "forced (--force)"
            return False
        status = _guarded(self.status)
        self.reason = status.reason
        return status.up_to_date

    def __str__(self) -> str:
        return f"trainkit's planner: {self.reason}"

    __repr__ = __str__


def _node_check(spec: dict[str, Any], name: str) -> Callable[[], NodeStatus]:
    return lambda: node_current_status(BuildSpec(**spec), name)


def _package_check(spec: dict[str, Any]) -> Callable[[], NodeStatus]:
    return lambda: package_current_status(BuildSpec(**spec))


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


def clean_models(state_dir: str, dryrun: bool) -> None:
    """doit clean action of `train:package`: remove the archives the builds wrote."""
    cleaned = WrittenModels(state_dir).clean(dryrun)
    for model in cleaned:
        print(f"{model.note}: {model.path}")
    if not cleaned:
        print("no model written by a build is left to remove")


def clean_cache(cache_root: str, dryrun: bool) -> None:
    """doit clean action of `train`: the cache stays unless TRAINKIT_CLEAN_CACHE asks."""
    if os.environ.get(CLEAN_CACHE_ENV, "").strip().lower() not in ("1", "true", "yes"):
        print(f"cache kept at {cache_root} ({CLEAN_CACHE_ENV}=1 doit clean train removes it)")
        return
    cache = Cache(Path(cache_root))
    entries = cache.stats()["entries"]
    if dryrun:
        print(f"would remove the cache at {cache_root} ({entries} entries)")
        return
    _guarded(cache.clear)
    print(f"removed the cache at {cache_root} ({entries} entries)")


def _on_forget(handlers: dict[str, Callable[[], None]]) -> None:
    """Make doit's forgetting of trainkit's tasks reach trainkit's own state.

    doit's `forget` (and `clean --forget`) call the dependency manager's `remove` for
    each task and `remove_all` for `--all`; the manager is doit's documented singleton
    (`doit.Globals.dep_manager`), set before the tasks load. Those two calls are wrapped
    once per process to run the handler of each trainkit task forgotten, whatever doit's
    own database held: a model built outside doit (`trainkit train`) is forgotten too.
    """
    manager = Globals.dep_manager
    if manager is None:
        return
    registered: dict[str, Callable[[], None]] | None = getattr(manager, "trainkit_forget_handlers", None)
    if registered is None:
        registered = {}
        remove, remove_all = manager.remove, manager.remove_all

        def remove_task(task_id: str) -> None:
            remove(task_id)
            if task_id in registered:
                registered[task_id]()

        def remove_every_task() -> None:
            remove_all()
            for handler in list(registered.values()):
                handler()

        manager.remove, manager.remove_all = remove_task, remove_every_task
        manager.trainkit_forget_handlers = registered
    registered.update(handlers)


def _forget_nodes(state_dir: str, names: list[str]) -> None:
    """`doit forget train[:<node>]`: the planner retrains each forgotten node once."""
    forgotten = ForgottenNodes(state_dir)
    _on_forget({f"{TRAIN}:{name}": functools.partial(forgotten.forget, [name]) for name in names})


def _acquire_project_lock() -> None:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "run")
    if command in _READ_ONLY_COMMANDS:
        return
    try:
        lock.acquire(STATE_DIR)  # held until the doit process exits
    except TrainkitError as exc:
        raise SystemExit(f"Error: {exc}") from None


@task_params(PARAMS)
def task_train(config: str, domain: str, data: list[str], out: str, fixed_model_name: str, force: bool,
               num_threads: int = 0, finetune: str = "", epoch_fraction: float = 1.0, show_help: bool = False) -> Any:
    """Train the assistant's model: one subtask per graph node, then packaging.

    `doit info train:<node>` says why a node is stale, `doit forget train` makes the next
    build retrain, `doit clean train` removes the models the builds wrote.
    """
    from trainkit.training import prepare

    if show_help:
        print_task_help(TRAIN, "Train the assistant's model: one subtask per graph node, then packaging.", PARAMS)
        raise SystemExit(0)
    try:
        if num_threads:
            set_blas_threads(num_threads)
        plan = prepare(
            domain if Path(domain).exists() else None,
            config if Path(config).exists() else None,
            option_paths(TRAIN, "data", data, "data"),
            out,
            fixed_model_name or None,
            model_to_finetune=finetune or None,
            finetuning_epoch_fraction=epoch_fraction,
        )
    except TrainkitError as exc:
        if "--help" in sys.argv[1:]:  # another task's help (doit test --help) needs no training plan
            return
        raise SystemExit(f"Error: {exc}") from None
    _acquire_project_lock()
    spec = plan.spec.__dict__
    _forget_nodes(plan.spec.state_dir, [node.name for node in plan.recipe.nodes] + [PACKAGE])
    # The group task itself does nothing; it is as current as its subtasks, which doit
    # checks one by one, so `doit list --status` must not show it as always stale.
    yield {"name": None, "uptodate": [True], "doc": "Train the assistant's model: one subtask per graph node, "
           "then packaging.", "clean": [(clean_cache, [plan.spec.cache_root])]}
    for node in plan.recipe.nodes:
        task: dict[str, Any] = {
            "name": node.name,
            "actions": [(run_node, [spec, node.name, force])],
            # No file_dep: the planner alone decides staleness (it hashes the files the
            # data nodes read), so doit and `trainkit status` can never disagree.
            "uptodate": [PlannerCheck(_node_check(spec, node.name), force)],
            "task_dep": [f"{TRAIN}:{up}" for up in node.upstream()],
            "doc": f"{node.component}.{node.fn}",
        }
        if node.fn in (PROVIDE, DERIVE):
            task["verbosity"] = 0
        yield task
    yield {
        "name": PACKAGE,
        "actions": [(package_action, [spec, force])],
        "task_dep": [f"{TRAIN}:{node.name}" for node in plan.recipe.nodes if node.target],
        "uptodate": [PlannerCheck(_package_check(spec), force)],
        "clean": [(clean_models, [plan.spec.state_dir])],
        "doc": "write the model archive (doit clean train removes the archives the builds wrote)",
    }


TEST = "test"
TEST_PARAMS = [
    {"name": "model", "long": "model", "default": "models", "help": "model archive, or a directory (newest)"},
    {"name": "stories", "long": "stories", "type": list, "default": [], "metavar": "PATH",
     "help": "test story files or directories: repeat the option or separate them with commas [default: tests]"},
    {"name": "nlu", "long": "nlu", "type": list, "default": [], "metavar": "PATH",
     "help": "NLU test files or directories: repeat the option or separate them with commas [default: data]"},
    {"name": "results", "long": "results", "default": "results", "help": "where reports and plots go"},
    {"name": "e2e", "long": "e2e", "type": bool, "default": False, "help": "also parse the stories' user texts"},
    {"name": "show_help", "long": "help", "type": bool, "default": False, "help": "print these options and exit"},
]


def _test_inputs(options: dict[str, Any]) -> dict[str, Any]:
    from trainkit.evaluation.run_record import run_inputs

    paths = [p for key in ("stories", "nlu") for p in options[key]]
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
    run = _guarded(run_tests, options["model"], options["stories"], options["nlu"], options["results"],
                   options["e2e"])
    print("\n".join(run_lines(run, options["results"])))
    record_run(inputs, run.written.files)


@task_params(TEST_PARAMS)
def task_test(model: str, stories: list[str], nlu: list[str], results: str, e2e: bool, show_help: bool = False) -> Any:
    """Test the model: dialogue on the test stories, NLU on the NLU data (`trainkit test`)."""
    from trainkit.evaluation.run_record import forget_run

    if show_help:
        print_task_help(TEST, "Test the model: dialogue on the test stories, NLU on the NLU data.", TEST_PARAMS)
        raise SystemExit(0)
    options = {"model": model, "stories": option_paths(TEST, "stories", stories, "tests"),
               "nlu": option_paths(TEST, "nlu", nlu, "data"), "results": results, "e2e": e2e}
    _on_forget({"test": forget_run})  # `doit forget test`: the next `doit test` runs
    return {
        "actions": [(test_action, [options])],
        "task_dep": ["train"],
        "uptodate": [(test_uptodate, [options])],
        "verbosity": 2,
    }


__all__ = ["DOIT_CONFIG", "task_test", "task_train"]
