"""config.yml: the recipe, language, pipeline and policies of an assistant.

A missing or null `pipeline`/`policies` means "use the default", which is filled in
memory only: trainkit never rewrites the user's config.yml (a build input that the build
edits would invalidate itself).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from trainkit.data.yaml_io import line_of, load_yaml, parse_yaml, to_plain, type_name
from trainkit.errors import ConfigError

KNOWN_KEYS = {"version", "recipe", "language", "pipeline", "policies", "assistant_id", "importers", "spaces"}
SUPPORTED_RECIPES = ("default.v1",)
PLACEHOLDER_ASSISTANT_ID = "placeholder_default"


@dataclass
class TrainingConfig:
    """The parsed config.yml, with the defaults it leaves out resolved in memory."""

    path: str | None = None
    recipe: str = "default.v1"
    language: str = "en"
    assistant_id: str | None = None
    pipeline: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)  # sections taken from the default config
    item_lines: dict[tuple[str, int], int] = field(default_factory=dict)

    def line_of_item(self, section: str, index: int) -> int | None:
        """Line of the `index`-th item of `pipeline`/`policies` in config.yml (for errors)."""
        return self.item_lines.get((section, index))

    def as_dict(self) -> dict[str, Any]:
        """The effective configuration (what trains), as plain JSON-able data."""
        return {
            "recipe": self.recipe,
            "language": self.language,
            "assistant_id": self.assistant_id,
            "pipeline": copy.deepcopy(self.pipeline),
            "policies": copy.deepcopy(self.policies),
        }


def default_config() -> dict[str, Any]:
    """The packaged default configuration (Rasa's default pipeline and policies)."""
    text = resources.files("trainkit.recipes").joinpath("default_config.yml").read_text("utf-8")
    return to_plain(parse_yaml(text, "default_config.yml"))


def _check_items(items: Any, section: str, path: str, line: int | None) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise ConfigError(f"'{section}' must be a list of components, got {type_name(items)}", path, line)
    result = []
    for index, item in enumerate(items):
        item_line = line_of(items, index=index)
        if not isinstance(item, dict):
            raise ConfigError(
                f"'{section}' item {index + 1} must be a mapping with a 'name', got {type_name(item)}",
                path,
                item_line,
            )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"'{section}' item {index + 1} has no component 'name'", path, item_line)
        result.append(to_plain(item))
    return result


def load_config(path: str | Path | None) -> TrainingConfig:
    """Read config.yml; `None` means no config file at all (everything defaulted)."""
    defaults = default_config()
    if path is None:
        return TrainingConfig(
            pipeline=defaults["pipeline"], policies=defaults["policies"], defaulted=["pipeline", "policies"]
        )
    path = str(path)
    document = load_yaml(path)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"config must be a mapping, got {type_name(document)}", path, 1)
    for key in document:
        if key not in KNOWN_KEYS:
            warnings.warn(f"{path}:{line_of(document, key)}: unknown config key '{key}' is ignored", stacklevel=2)
    recipe = document.get("recipe") or "default.v1"
    if recipe not in SUPPORTED_RECIPES:
        raise ConfigError(
            f"unknown recipe '{recipe}'; supported: {', '.join(SUPPORTED_RECIPES)}", path, line_of(document, "recipe")
        )
    language = document.get("language") or defaults["language"]
    if not isinstance(language, str):
        raise ConfigError("'language' must be a string", path, line_of(document, "language"))
    assistant_id = document.get("assistant_id")
    config = TrainingConfig(path=path, recipe=recipe, language=str(language),
                            assistant_id=None if assistant_id is None else str(assistant_id))
    for section in ("pipeline", "policies"):
        items = document.get(section)
        if items is None:
            setattr(config, section, copy.deepcopy(defaults[section]))
            config.defaulted.append(section)
            continue
        setattr(config, section, _check_items(items, section, path, line_of(document, section)))
        for index in range(len(items)):
            config.item_lines[(section, index)] = line_of(items, index=index) or 0
    return config
