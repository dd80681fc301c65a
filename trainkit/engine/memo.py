"""The plan memo: the planner's last all-up-to-date answer, so a no-op build parses nothing.

The planner's answer is a function of the project files' bytes, trainkit's code, the
custom components' code, the libraries they import, the pretrained resources components
read, the options, and what the cache and the model directory hold. A build that leaves everything up to date records the first
five under one key, plus each node's fingerprint and output digest and the model archive
it verified. A later run with the same key asks the cache whether every fingerprint still
maps to the same output, and the file system whether the model `load_model` would open
is still that very file (size, times and inode unchanged): if so, the planner would say
"up to date" again, and the memo says it without reading YAML or importing numpy. Any
doubt falls through to the planner, which is always right; the memo is only faster.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainkit.data.paths import ProjectPaths
from trainkit.engine.archive import remove_leftovers
from trainkit.engine.atomic import write_json_atomic
from trainkit.engine.cache import Cache
from trainkit.engine.code_identity import code_identity, component_code, distribution_version
from trainkit.engine.fingerprint import digest_file, fingerprint
from trainkit.engine.forgotten import ForgottenNodes
from trainkit.engine.package import PACKAGE, current_model
from trainkit.errors import TrainkitError

MEMO_FILE = "plan-memo.json"
_MAX_ENTRIES = 8  # one per combination of options a project is commonly built with


def state_dir(project_dir: Path) -> Path:
    """Where a project's build state lives (doit DB, node records, lock, this memo)."""
    return Path(project_dir) / ".trainkit"


def _trainkit_sources() -> list[Path]:
    import importlib.util

    import trainkit

    root = Path(trainkit.__file__).parent
    files = sorted(root.rglob("*.py"))
    spec = importlib.util.find_spec("trainkit.recipes")
    for location in (spec.submodule_search_locations or []) if spec else []:
        files.extend(sorted(p for p in Path(location).iterdir() if p.suffix in (".py", ".yml")))
    return files


def memo_key(paths: ProjectPaths, options: dict[str, Any], cache: Cache) -> str:
    """Digest of everything the memo assumes unchanged, apart from the cache and models."""
    files = [] if paths.config is None else [paths.config]
    files += paths.input_files()
    return fingerprint({
        "options": options,
        "files": [[str(Path(p).absolute()), digest_file(p)] for p in files],
        "trainkit": [[str(p), digest_file(p)] for p in _trainkit_sources()],
        "cache": [str(cache.root), cache.max_size_bytes],
    })


@dataclass
class MemoHit:
    """A remembered up-to-date answer that still holds."""

    model: Path
    nodes: dict[str, list[str]]
    package: str
    notices: list[list[Any]] = field(default_factory=list)

    def dry_run_results(self) -> dict[str, Any]:
        """What the planner's dry run would report: every node cached, the model current."""
        results = {name: {"status": "up to date", "reason": "cached", "fingerprint": fp}
                   for name, (fp, _digest) in self.nodes.items()}
        results["package"] = {"status": "up to date", "reason": f"current: {self.model}", "fingerprint": self.package}
        return dict(sorted(results.items()))

    def replay_notices(self) -> None:
        """Show again the warnings the project's files caused when it was last planned."""
        for kind, name, level, text in self.notices:
            if kind == "warning":
                warnings.warn(text, UserWarning, stacklevel=3)
            else:
                logging.getLogger(name).log(level, "%s", text)


def _attribute(module: Any, qualname: str) -> Any:
    value = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
    return value


def _model_signature(path: Path) -> list[int]:
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]


def _read(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / MEMO_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("entries"), dict) else {}


def recall(directory: Path, key: str, cache: Cache, output: Path, fixed_model_name: str | None) -> MemoHit | None:
    """The remembered answer for `key`, if everything it assumed still holds."""
    entry = _read(directory).get("entries", {}).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        if ForgottenNodes(directory).names() & {*entry["nodes"], PACKAGE}:
            return None  # doit forgot one of its nodes: the planner must see it retrain
        if any(distribution_version(name) != version for name, version in entry["libraries"].items()):
            return None
        if any(code_identity(module).digest != digest for module, digest in entry["custom_modules"].items()):
            return None
        for module, qualname, version in entry["components"]:
            loaded = sys.modules.get(module)
            if loaded is not None and getattr(_attribute(loaded, qualname), "version", None) != version:
                return None  # this process runs a class that differs from its source
        for module, qualname, config, digest in entry["resources"]:
            # only the module of the class, not every component: this runs on every no-op build
            if _attribute(importlib.import_module(module), qualname).resources_digest(config) != digest:
                return None
        for fp, digest in entry["nodes"].values():
            if cache.lookup(fp, touch=False) != digest:
                return None
        remove_leftovers(output)
        model = current_model(output, fixed_model_name)
        if model is None or str(model.absolute()) != entry["model"] or _model_signature(model) != entry["model_stat"]:
            return None
        return MemoHit(model.absolute(), entry["nodes"], entry["package"], entry.get("notices", []))
    except (KeyError, TypeError, ValueError, OSError, ImportError, AttributeError, TrainkitError):
        return None


def remember(
    directory: Path,
    key: str,
    model: Path,
    package: str,
    nodes: dict[str, tuple[str, str]],
    components: list[type],
    notices: list[list[Any]],
    resources: list[list[Any]] | None = None,
) -> None:
    """Record an all-up-to-date answer (after a build, when everything is current)."""
    libraries: dict[str, str] = {}
    custom: dict[str, str] = {}
    declared = sorted({(cls.__module__, cls.__qualname__, getattr(cls, "version", "")) for cls in components})
    for cls in components:
        libraries.update(dict(component_code(cls).libraries))
        for klass in cls.__mro__:
            module = klass.__module__
            if module != "builtins" and not module.startswith("trainkit."):
                custom[module] = code_identity(module).digest
    entry = {
        "nodes": {name: list(pair) for name, pair in sorted(nodes.items())},
        "package": package,
        "model": str(Path(model).absolute()),
        "model_stat": _model_signature(Path(model)),
        "libraries": libraries,
        "custom_modules": custom,
        "components": [list(item) for item in declared],
        "notices": notices,
        "resources": resources or [],
    }
    data = _read(directory)
    entries = data.get("entries", {})
    entries.pop(key, None)
    entries[key] = entry
    while len(entries) > _MAX_ENTRIES:
        entries.pop(next(iter(entries)))
    write_json_atomic(directory / MEMO_FILE, {"entries": entries})


@contextmanager
def collecting_notices() -> Iterator[list[list[Any]]]:
    """Collect the warnings and warning log lines of planning (they are shown as usual too)."""
    notices: list[list[Any]] = []

    class _Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notices.append(["log", record.name, record.levelno, record.getMessage()])

    handler = _Collector(level=logging.WARNING)
    logger = logging.getLogger("trainkit")
    logger.addHandler(handler)
    captured: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield notices
            finally:
                captured = list(caught)
    finally:
        logger.removeHandler(handler)
        for warning in captured:  # shown even when planning then fails
            notices.append(["warning", "", 0, str(warning.message)])
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
