"""The shape of a model archive's ``metadata.json``, checked before anything trusts it.

A loaded model is built from what ``metadata.json`` says: which components run, with
which config, reading files from which ``components/<node>`` directory. The file comes
from wherever the archive came from, so every value that steers loading is checked for
type and, for node names, against the directories the archive really contains. A node
name is then only ever joined to the extraction directory after it has been matched
against that list, so it cannot point anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainkit.engine.archive import METADATA_NAME
from trainkit.errors import TrainkitError

TRAINING_TYPES = (1, 2, 3, 4)


class MetadataError(TrainkitError):
    """``metadata.json`` has the wrong shape or refers to files the archive lacks."""


@dataclass(frozen=True)
class SchemaItem:
    """One pipeline component or policy a loaded model runs."""

    section: str  # "pipeline" or "policies"
    index: int
    name: str
    component: str
    config: dict[str, Any]
    node: str | None

    @property
    def where(self) -> str:
        """How messages name the item: `pipeline item 2 (DIETClassifier4)`."""
        return f"{self.section} item {self.index + 1} ({self.name})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_metadata(
    metadata: dict[str, Any], archive: str | Path, nodes: set[str]
) -> list[SchemaItem]:
    """The pipeline and policy items of ``metadata``, or a `MetadataError` naming the flaw.

    ``nodes`` are the names of the directories under ``components/`` in the archive.
    """
    where = f"{archive}: member {METADATA_NAME!r}"

    def fail(message: str) -> MetadataError:
        return MetadataError(f"{where}: {message}")

    training_type = metadata.get("training_type")
    if not _is_int(training_type) or training_type not in TRAINING_TYPES:
        raise fail(f"'training_type' must be one of {TRAINING_TYPES}, got {training_type!r}")
    domain = metadata.get("domain")
    if domain is not None and not isinstance(domain, dict):
        raise fail(f"'domain' must be a mapping, got {type(domain).__name__}")
    schema = metadata.get("predict_schema")
    if not isinstance(schema, dict):
        raise fail("'predict_schema' must be a mapping with 'pipeline' and 'policies' lists")
    items: list[SchemaItem] = []
    for section in ("pipeline", "policies"):
        entries = schema.get(section)
        if not isinstance(entries, list):
            raise fail(f"'predict_schema.{section}' must be a list, got {type(entries).__name__}")
        for index, entry in enumerate(entries):
            items.append(_check_item(entry, section, index, nodes, fail))
    return items


def _check_item(entry: Any, section: str, index: int, nodes: set[str], fail: Any) -> SchemaItem:
    label = f"{section} item {index + 1}"
    if not isinstance(entry, dict):
        raise fail(f"{label} must be a mapping, got {type(entry).__name__}")
    name, component = entry.get("name"), entry.get("component")
    config, node = entry.get("config"), entry.get("node")
    if not isinstance(name, str):
        raise fail(f"{label}: 'name' must be a string, got {name!r}")
    if not isinstance(component, str) or not component:
        raise fail(f"{label}: 'component' must be a string, got {component!r}")
    if not isinstance(config, dict):
        raise fail(f"{label}: 'config' must be a mapping, got {type(config).__name__}")
    if node is not None and not isinstance(node, str):
        raise fail(f"{label}: 'node' must be a string or null, got {node!r}")
    if node is not None and node not in nodes:
        raise fail(f"{label} ({name}): node {node!r} is not a directory of the archive's components/")
    return SchemaItem(section, index, name, component, config, node)
