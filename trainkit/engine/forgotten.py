"""Nodes doit was told to forget: each retrains once, whatever the cache holds.

doit's `forget` clears doit's own database, but whether a node is up to date is the
planner's answer from trainkit's cache, so clearing doit's memory alone would change
nothing. `trainkit.tasks` therefore records every trainkit task doit forgets as a marker
here (`.trainkit/forgotten/<node>`), and the planner treats a marked node as `--force`
treats every node, until a build has run it again. Every view agrees on it:
`doit list --status`, `trainkit status` and the next `doit train` or `trainkit train`.

One file per node: doit's parallel workers finish nodes concurrently, and creating or
removing a file is atomic where rewriting a shared list would not be.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from trainkit.engine.atomic import write_json_atomic

FORGOTTEN_DIR = "forgotten"
REASON = "forgotten (doit forget): retrains on the next build"


class ForgottenNodes:
    """The forgotten-node markers of one project's state directory."""

    def __init__(self, state_dir: str | Path) -> None:
        self.directory = Path(state_dir) / FORGOTTEN_DIR

    def names(self) -> frozenset[str]:
        """Every node (or "package") marked as forgotten."""
        try:
            return frozenset(path.name for path in self.directory.iterdir()
                             if path.is_file() and not path.name.startswith("."))
        except OSError:
            return frozenset()

    def forget(self, names: Iterable[str]) -> None:
        """Mark nodes: the next build retrains them."""
        for name in names:
            if name and "/" not in name and not name.startswith("."):
                write_json_atomic(self.directory / name, {"forgotten": True})

    def remember(self, names: Iterable[str]) -> None:
        """Unmark nodes a build has just run again."""
        for name in names:
            (self.directory / name).unlink(missing_ok=True)
