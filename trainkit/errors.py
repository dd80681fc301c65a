"""Errors a user can act on.

Every problem with the user's files carries the file and line it was found at, so the
CLI can print one line per problem instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class TrainkitError(Exception):
    """Base class: anything the CLI reports as a clean message with exit code 1."""


@dataclass(frozen=True)
class Problem:
    """One finding about the user's input: where it is and what is wrong."""

    message: str
    path: str | None = None
    line: int | None = None
    level: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.message}"


class DataError(TrainkitError):
    """A problem in one of the user's files (config, domain, NLU, stories)."""

    def __init__(
        self, message: str, path: str | Path | None = None, line: int | None = None
    ) -> None:
        self.problem = Problem(message, None if path is None else str(path), line)
        super().__init__(str(self.problem))


class DataErrors(TrainkitError):
    """Several problems found in one pass; all are reported, not only the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(DataError):
    """config.yml asks for something trainkit cannot build."""


class GraphError(TrainkitError):
    """The compiled training graph is invalid (cycle, missing input, unknown component)."""


def problems_of(error: DataError | DataErrors) -> list[Problem]:
    """The problems a reading error carries (one for DataError, all for DataErrors)."""
    return list(error.problems) if isinstance(error, DataErrors) else [error.problem]


def raise_problems(problems: list[Problem]) -> None:
    """Raise what reading found: nothing, one DataError, or DataErrors for several.

    Readers keep going after a broken block so that one run reports every problem.
    """
    if len(problems) == 1:
        problem = problems[0]
        raise DataError(problem.message, problem.path, problem.line)
    if problems:
        raise DataErrors(problems)
