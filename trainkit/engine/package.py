"""The packaging step: turn cached artifacts into a model archive.

It runs after every build (a model is always produced), but with a fixed model name an
existing archive built from the same artifacts is kept as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainkit.engine.archive import model_file_name, read_metadata, write_archive
from trainkit.engine.artifact import Artifact
from trainkit.engine.cache import Cache
from trainkit.errors import TrainkitError

FORMAT_VERSION = 1


def package_model(
    *,
    cache: Cache,
    nodes: list[dict[str, Any]],
    predict_schema: dict[str, Any],
    fingerprints: dict[str, dict[str, str]],
    training_type: int,
    model_type: str,
    assistant_id: str | None,
    language: str,
    output: Path,
    fixed_model_name: str | None,
    trainkit_version: str,
) -> tuple[Path, bool]:
    """Write the archive; returns its path and whether a new file was written."""
    targets = {n["name"] for n in nodes if n.get("target")}
    components: dict[str, Path] = {}
    for name in sorted(targets):
        digest = fingerprints.get(name, {}).get("digest")
        path = cache.path_of(digest, verify=True) if digest else None
        if path is None:
            raise TrainkitError(f"cannot package: the output of '{name}' is not in the cache")
        components[name] = path
    domain_dir = components.get("domain_provider")
    domain = Artifact(domain_dir).json("domain.json") if domain_dir else {}
    prefix = {"nlu": "nlu-", "core": "core-"}.get(model_type, "")
    path = Path(output) / model_file_name(fixed_model_name, prefix=prefix)
    if fixed_model_name and path.is_file():
        try:
            previous = read_metadata(path)
        except (TrainkitError, OSError, ValueError):
            previous = {}
        if previous.get("fingerprints") == fingerprints and previous.get("format_version") == FORMAT_VERSION:
            return path, False
    metadata = {
        "format_version": FORMAT_VERSION,
        "trainkit_version": trainkit_version,
        "training_type": training_type,
        "model_type": model_type,
        "trained_at": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        "assistant_id": assistant_id,
        "language": language,
        "train_schema": {"nodes": nodes},
        "predict_schema": predict_schema,
        "fingerprints": fingerprints,
        "domain": domain,
    }
    write_archive(path, metadata, components)
    return path, True
