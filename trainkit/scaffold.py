"""`trainkit init`: a new project that trains at once with `doit train` or `make train`."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from trainkit.errors import TrainkitError

EXAMPLE = "coffeebot"

DODO = '''"""Build tasks of this assistant: `doit train`, `doit -n 4 train`, `doit list --status --all`."""

from trainkit.tasks import *  # noqa: F401,F403
'''

MAKEFILE = """# Train with `make train`; `make status` shows what would retrain; `make test` checks the data.
.PHONY: train status test

train:
\tdoit train

status:
\tdoit list --status --all

test:
\ttrainkit validate
"""

GITIGNORE = ".trainkit/\nmodels/\n"


def _copy(source: Traversable, target: Path) -> None:
    for item in source.iterdir():
        if item.name in ("README.md", "__pycache__"):
            continue
        destination = target / item.name
        if item.is_dir():
            destination.mkdir(exist_ok=True)
            _copy(item, destination)
        else:
            destination.write_bytes(item.read_bytes())


def init_project(directory: str | Path) -> Path:
    """Create an example assistant with a dodo.py and a Makefile in `directory`."""
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        raise TrainkitError(f"'{target}' is not empty; choose a new or empty directory")
    target.mkdir(parents=True, exist_ok=True)
    _copy(resources.files("trainkit.examples").joinpath(EXAMPLE), target)
    (target / "dodo.py").write_text(DODO)
    (target / "Makefile").write_text(MAKEFILE)
    (target / ".gitignore").write_text(GITIGNORE)
    return target
