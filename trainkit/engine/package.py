"""The packaging step: turn cached artifacts into a model archive, only when needed.

Packaging has a fingerprint of its own, over everything the archive holds except the
time it was written: the model format, trainkit's version and packaging code, training
type, assistant id, language, the train and predict schemas (prediction-time settings
such as a fallback threshold live there) and the digests of the packaged components
(the domain is one of them). The step is up to date when the archive `load_model` would
open carries that fingerprint and is intact, so a build with nothing changed writes
nothing, and a fixed-name archive whose settings or bytes drifted is rewritten.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainkit.engine.archive import (
    METADATA_NAME,
    ArchiveLimits,
    extract_archive,
    latest_model,
    model_file_name,
    parse_metadata,
    scan_archive,
    write_archive,
)
from trainkit.engine.cache import Cache
from trainkit.engine.code_identity import code_identity
from trainkit.engine.fingerprint import fingerprint
from trainkit.errors import TrainkitError

FORMAT_VERSION = 1
DOMAIN_NODE = "domain_provider"
# The package step's name among the node statuses (and as a doit task, `train:package`).
PACKAGE = "package"

@dataclass
class PackageSettings:
    """What the archive holds besides the node outputs (plain data, so doit can carry it)."""

    training_type: int
    model_type: str
    predict_schema: dict[str, Any]
    assistant_id: str | None
    language: str
    output: str
    fixed_model_name: str | None
    trainkit_version: str
    # What the model can predict (intents, entities, actions...): finetuning checks it.
    labels: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain form, for doit task arguments and worker processes."""
        return asdict(self)


class ModelVersionError(TrainkitError):
    """The archive was written by an incompatible trainkit version."""


def extract_model(path: Path, target: Path, limits: ArchiveLimits | None = None) -> dict[str, Any]:
    """Unpack a model archive into `target` (bounded, as any untrusted archive) and return
    its metadata, refusing an archive of another model format."""
    root = extract_archive(path, target, limits)
    metadata_path = root / METADATA_NAME
    if not metadata_path.is_file():
        raise TrainkitError(f"'{path}' is not a trainkit model (no {METADATA_NAME})")
    metadata = parse_metadata(metadata_path.read_bytes(), path)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelVersionError(
            f"'{path}' was written by trainkit {metadata.get('trainkit_version', '?')} in model format "
            f"{metadata.get('format_version')!r}; this trainkit reads format {FORMAT_VERSION}. Retrain the model."
        )
    return metadata


def target_names(nodes: list[dict[str, Any]]) -> list[str]:
    """Nodes whose outputs go into the archive."""
    return sorted(node["name"] for node in nodes if node.get("target"))


def identity_metadata(settings: PackageSettings, nodes: list[dict[str, Any]], digests: dict[str, str]) -> dict[str, Any]:
    """metadata.json without the parts the fingerprint leaves out."""
    return {
        "format_version": FORMAT_VERSION,
        "trainkit_version": settings.trainkit_version,
        "packaging_code": code_identity(__name__).digest,
        "training_type": settings.training_type,
        "model_type": settings.model_type,
        "assistant_id": settings.assistant_id,
        "language": settings.language,
        "train_schema": {"nodes": nodes},
        "predict_schema": settings.predict_schema,
        "components": {name: digests[name] for name in target_names(nodes)},
        "labels": settings.labels,
    }


def package_fingerprint(settings: PackageSettings, nodes: list[dict[str, Any]], digests: dict[str, str]) -> str:
    """The package step's fingerprint (see the module docstring)."""
    return fingerprint(identity_metadata(settings, nodes, digests))


def current_model(output: Path, fixed_model_name: str | None) -> Path | None:
    """The archive `load_model(output)` would open: the fixed-name file, or the newest."""
    if fixed_model_name:
        path = Path(output) / model_file_name(fixed_model_name)
        return path if path.exists() else None
    return latest_model(Path(output))


def explain_model(path: Path, settings: PackageSettings, nodes: list[dict[str, Any]], digests: dict[str, str],
                  expected: str) -> str | None:
    """Why the archive at `path` is not the model this build would write (None: it is)."""
    try:
        contents = scan_archive(path)
    except TrainkitError as exc:
        return f"model '{path}' is unreadable ({exc})"
    metadata = contents.metadata
    wanted = identity_metadata(settings, nodes, digests)
    if metadata.get("package_fingerprint") != expected:
        differing = sorted(k for k in wanted if metadata.get(k) != wanted[k])
        if "components" in differing:
            old = metadata.get("components") if isinstance(metadata.get("components"), dict) else {}
            changed = sorted(n for n in wanted["components"] if old.get(n) != wanted["components"][n])
            differing.remove("components")
            differing.extend(f"component {name}" for name in changed)
        what = ", ".join(differing) or "package fingerprint"
        return f"model '{path}' is out of date ({what} changed)"
    if contents.components != wanted["components"]:
        damaged = sorted(n for n in set(contents.components) | set(wanted["components"])
                         if contents.components.get(n) != wanted["components"].get(n))
        return f"model '{path}' is damaged (components differ from their record: {', '.join(damaged)})"
    return None


def write_model(cache: Cache, settings: PackageSettings, nodes: list[dict[str, Any]], digests: dict[str, str]) -> Path:
    """Write a new archive from the cached target outputs and return its path."""
    components: dict[str, Path] = {}
    for name in target_names(nodes):
        path = cache.path_of(digests[name], verify=True)
        if path is None:
            raise TrainkitError(f"cannot package: the output of '{name}' is not in the cache")
        components[name] = path
    domain: dict[str, Any] = {}
    if DOMAIN_NODE in components:
        domain = json.loads((components[DOMAIN_NODE] / "domain.json").read_text("utf-8"))
    prefix = {"nlu": "nlu-", "core": "core-"}.get(settings.model_type, "")
    path = Path(settings.output) / model_file_name(settings.fixed_model_name, prefix=prefix)
    metadata = identity_metadata(settings, nodes, digests)
    metadata["package_fingerprint"] = package_fingerprint(settings, nodes, digests)
    metadata["trained_at"] = datetime.now(UTC).replace(tzinfo=None).isoformat()
    metadata["domain"] = domain
    return write_archive(path, metadata, components)
