"""When `doit test` is up to date: the model and the test files it last passed over.

A test run's inputs are the model (named by its package fingerprint, which covers
everything the archive holds except its write time), the bytes of every test file and
the run's options. After a run that finished, they are recorded with the files it wrote;
the task is up to date while the inputs are the same and those files are still there.
So `doit train test` re-tests only when training produced a different model or a test
file changed, and a model repackaged with identical content is not re-tested.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trainkit
from trainkit.data.paths import discover_files
from trainkit.engine.archive import latest_model, read_metadata
from trainkit.engine.atomic import write_json_atomic
from trainkit.engine.fingerprint import digest_file
from trainkit.errors import TrainkitError

RECORD_FILE = Path(".trainkit") / "test-record.json"


def _model_fingerprint(model: str | Path) -> str | None:
    path = Path(model)
    archive = latest_model(path) if path.is_dir() else (path if path.is_file() else None)
    if archive is None:
        return None
    try:
        return read_metadata(archive).get("package_fingerprint")
    except TrainkitError:
        return None


def run_inputs(model: str | Path, paths: Sequence[str | Path], options: dict[str, Any]) -> dict[str, Any]:
    """The model's package fingerprint, the test files' digests and the options."""
    files = sorted({str(f) for p in paths if Path(p).exists() for f in discover_files(p)})
    return {
        "trainkit": trainkit.__version__,
        "package_fingerprint": _model_fingerprint(model),
        "files": {name: digest_file(name) for name in files},
        "options": options,
    }




def is_current(inputs: dict[str, Any], record_file: Path = RECORD_FILE) -> bool:
    """Whether the last recorded run had these inputs and its result files still exist."""
    if inputs.get("package_fingerprint") is None:
        return False
    try:
        record = json.loads(Path(record_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("inputs") != inputs:
        return False
    return all(Path(name).is_file() for name in record.get("outputs", []))


def record_run(inputs: dict[str, Any], outputs: Sequence[str | Path], record_file: Path = RECORD_FILE) -> None:
    """Remember a finished run (written atomically; a run that failed records nothing)."""
    write_json_atomic(Path(record_file), {"inputs": inputs, "outputs": [str(p) for p in outputs]})


def forget_run(record_file: Path = RECORD_FILE) -> None:
    """Drop the record (`doit forget test`): the next `doit test` runs the tests again."""
    Path(record_file).unlink(missing_ok=True)
