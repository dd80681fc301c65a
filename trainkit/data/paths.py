"""Where an assistant's files are: the paths users give, and the files found under them.

Kept apart from the readers (and free of heavy imports) because a no-op build only needs
to know which files exist and what their bytes are, not what they say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trainkit.errors import DataError

YAML_SUFFIXES = (".yml", ".yaml")


def discover_files(path: str | Path) -> list[Path]:
    """YAML files under `path` (or `path` itself), sorted; a missing path is an error."""
    path = Path(path)
    if not path.exists():
        raise DataError("path does not exist", path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)


@dataclass
class ProjectPaths:
    """Where an assistant's files are; `None` for a part the user does not have."""

    config: Path | None = None
    domain: Path | None = None
    data: list[Path] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        config: str | Path | None,
        domain: str | Path | None,
        data: str | Path | list[str | Path] | None,
    ) -> ProjectPaths:
        """Normalise user-given paths (a single data path or a list)."""
        if data is None:
            data_list: list[Path] = []
        elif isinstance(data, (str, Path)):
            data_list = [Path(data)]
        else:
            data_list = [Path(p) for p in data]
        return cls(
            config=None if config is None else Path(config),
            domain=None if domain is None else Path(domain),
            data=data_list,
        )

    def domain_files(self) -> list[Path]:
        """The domain file, or every YAML file of a domain directory."""
        return [] if self.domain is None else discover_files(self.domain)

    def data_files(self) -> list[Path]:
        """Every YAML file under the data paths, deduplicated, in a stable order."""
        seen: dict[Path, None] = {}
        for path in self.data:
            for file in discover_files(path):
                seen.setdefault(file, None)
        return list(seen)

    def all_files(self) -> list[Path]:
        """Every input file, config included."""
        files = [] if self.config is None else [self.config]
        return files + self.input_files()

    def input_files(self) -> list[Path]:
        """The files data providers read: domain and data (the config reaches nodes as
        their merged configs, so it is not a provider input)."""
        return self.domain_files() + self.data_files()


__all__ = ["YAML_SUFFIXES", "ProjectPaths", "discover_files"]
