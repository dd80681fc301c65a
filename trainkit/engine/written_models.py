"""The model archives a project's builds wrote: what `doit clean train` removes.

`models/` may hold archives the user put there (a model from elsewhere, a finetuning
base), so cleaning removes only files a build of this project wrote, and only while they
are still the file it wrote (same size and modification time); anything else is named
and left alone. The log lives in the project's state directory and is rewritten
atomically under the project lock that every build holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainkit.engine.atomic import write_json_atomic

LOG_NAME = "written-models.json"


@dataclass
class CleanedModel:
    """One logged archive and what cleaning did with it."""

    path: Path
    removed: bool
    note: str


def _signature(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


class WrittenModels:
    """The log of archives written by the builds of one project."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / LOG_NAME

    def entries(self) -> dict[str, list[int]]:
        """Absolute archive path -> [size, mtime_ns] when it was written."""
        try:
            data: Any = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, list) and len(v) == 2}

    def add(self, archive: Path) -> None:
        """Log an archive a build has just written (rewriting a fixed name replaces its entry)."""
        entries = self.entries()
        entries[str(Path(archive).absolute())] = _signature(Path(archive))
        write_json_atomic(self.path, entries)

    def clean(self, dryrun: bool = False) -> list[CleanedModel]:
        """Remove the logged archives that are still as written, and empty the log;
        `dryrun` only says what would go."""
        report: list[CleanedModel] = []
        for name, signature in sorted(self.entries().items()):
            path = Path(name)
            if not path.is_file():
                continue
            if _signature(path) != signature:  # no longer the build's: it leaves the log
                report.append(CleanedModel(path, False, "changed since the build wrote it: left alone"))
                continue
            if not dryrun:
                os.remove(path)
            report.append(CleanedModel(path, True, "would remove" if dryrun else "removed"))
        if not dryrun:
            write_json_atomic(self.path, {})
        return report
