"""A trained model loaded from its archive: parse messages, predict next actions.

Loading reads everything into memory (JSON and `.npz` with `allow_pickle=False`) from a
safely extracted copy of the archive, then drops the copy, so a loaded model holds no
open files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainkit.core.ensemble import PolicyEnsemble
from trainkit.core.rasa_events import events_from_json
from trainkit.data.domain import Domain
from trainkit.data.events import Event
from trainkit.engine.archive import (
    COMPONENTS_DIR,
    METADATA_NAME,
    ArchiveLimits,
    latest_model,
    read_metadata,
)
from trainkit.engine.artifact import Artifact, ArtifactError
from trainkit.engine.component import ComponentNotAllowed, model_component
from trainkit.engine.metadata import MetadataError, SchemaItem, check_metadata
from trainkit.engine.package import ModelVersionError, extract_model
from trainkit.errors import GraphError, TrainkitError

__all__ = ["Model", "ModelVersionError", "load_model"]

_INTENT_SHORTCUT = re.compile(r"^/(?P<intent>[^{@\s]+)(?P<entities>\{.*\})?\s*$", re.S)


# What a caller needs a model for (`load_model(..., needs=...)`), and the training
# types whose models have it (1 NLU, 2 CORE, 3 BOTH, 4 END_TO_END).
NEEDS_NLU = "nlu"
NEEDS_CORE = "core"
NEEDS_BOTH = "both"
_TYPES_FOR = {NEEDS_NLU: {1, 3, 4}, NEEDS_CORE: {2, 3, 4}, NEEDS_BOTH: {3, 4}}
_NEEDS_WHAT = {NEEDS_NLU: "an NLU pipeline", NEEDS_CORE: "dialogue policies",
               NEEDS_BOTH: "an NLU pipeline and dialogue policies"}


class Model:
    """A loaded model: the NLU pipeline, the policies and the domain."""

    def __init__(self, metadata: dict[str, Any], pipeline: list[Any], policies: list[Any],
                 path: Path | None = None) -> None:
        self.metadata = metadata
        self.path = path
        self.pipeline = pipeline
        self.policies = policies
        self.domain = Domain.from_dict(metadata.get("domain") or {})
        self.ensemble = PolicyEnsemble(self.domain, policies) if policies else None

    @property
    def training_type(self) -> int:
        """1 NLU, 2 CORE, 3 BOTH, 4 END_TO_END."""
        return int(self.metadata["training_type"])

    @property
    def action_fingerprints(self) -> dict[str, Any]:
        """What each action sets in the training data (slots, loops), from the RulePolicy.

        Empty when the model has no RulePolicy.
        """
        for policy in self.policies:
            fingerprints = getattr(policy, "action_fingerprints", None)
            if fingerprints is not None:
                return dict(fingerprints)
        return {}

    @property
    def has_nlu(self) -> bool:
        """Whether the model can parse messages."""
        return bool(self.pipeline)

    @property
    def name(self) -> str:
        """The archive's file name, for messages."""
        return self.path.name if self.path is not None else "the model"

    def parse_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        """Rasa's parse result for each text (intent, ranking, entities, response selector).

        A model without a pipeline parses only `/intent` messages; other texts are an error
        rather than results with no intent, which would quietly steer a conversation
        into the fallback.
        """
        from trainkit.nlu.batch import MessageBatch

        shortcuts = {i: _shortcut(text) for i, text in enumerate(texts)}
        regular = [i for i, parsed in shortcuts.items() if parsed is None]
        if regular and not self.has_nlu:
            raise TrainkitError(f"{self.name} has no NLU pipeline (it is a Core-only model), so it cannot parse "
                                f"{texts[regular[0]]!r}; train NLU too, load a model trained with NLU, or send "
                                "/intent messages")
        results: list[dict[str, Any] | None] = [shortcuts[i] for i in range(len(texts))]
        if regular:
            batch = MessageBatch(texts=[texts[i] for i in regular])
            for component in self.pipeline:
                component.process(batch)
            for i, parsed in zip(regular, batch.parse_results(), strict=True):
                results[i] = parsed
        return [r for r in results if r is not None]

    def parse(self, text: str) -> dict[str, Any]:
        """Parse one message."""
        return self.parse_batch([text])[0]

    def predict_next_action(self, events: list[Event | dict[str, Any]]) -> dict[str, Any]:
        """The action the assistant takes after `events`.

        Events are trainkit's event objects, their dicts, or Rasa's event JSON (a tracker's
        `events` as Rasa's HTTP API returns them); malformed ones are an `EventFormatError`
        naming the event.
        """
        if self.ensemble is None:
            raise TrainkitError(f"{self.name} has no dialogue policies (it is an NLU-only model)")
        parsed = events_from_json(events, self.domain)
        prediction = self.ensemble.predict_next_action(parsed)
        # As Rasa logs it: a bot text is its own name and runs as `ActionExecuted(action_text=...)`.
        text = prediction.action if prediction.action in self.domain.action_texts else None
        return {"action": prediction.action, "action_text": text, "confidence": prediction.confidence,
                "policy": prediction.policy_name,
                "is_end_to_end_prediction": prediction.prediction.is_end_to_end_prediction}


def _shortcut(text: str) -> dict[str, Any] | None:
    """`/intent{"entity": "value"}` messages bypass the pipeline, as in Rasa."""
    match = _INTENT_SHORTCUT.match(text.strip())
    if match is None:
        return None
    entities = []
    if match.group("entities"):
        try:
            values = json.loads(match.group("entities"))
        except ValueError:
            values = {}
        if isinstance(values, dict):
            for entity, value in values.items():
                for item in value if isinstance(value, list) else [value]:
                    entities.append({"entity": entity, "value": item, "start": 0, "end": 0,
                                     "confidence_entity": 1.0, "extractor": "RegexMessageHandler"})
    intent = {"name": match.group("intent"), "confidence": 1.0}
    return {"text": text, "intent": intent, "intent_ranking": [intent], "entities": entities}


def _component_dirs(components: Path) -> set[str]:
    """Names of the node directories an extracted archive really contains."""
    if not components.is_dir():
        return set()
    return {entry.name for entry in os.scandir(components) if entry.is_dir(follow_symlinks=False)}


def _load_component(
    item: SchemaItem, components: Path, archive: Path, allow_custom: Iterable[str]
) -> tuple[Any, Artifact | None]:
    """Rebuild one component; anything unusable in its files is an error naming the file."""
    try:
        cls = model_component(item.component, allow_custom)
    except GraphError as exc:
        raise TrainkitError(f"{archive}: {item.where}: {exc}") from None
    except ComponentNotAllowed as exc:
        raise ComponentNotAllowed(f"{archive}: {item.where}: {exc}") from None
    if item.node is None and cls.trainable:
        raise TrainkitError(f"{archive}: {item.where}: the model has no files for this trained component")
    artifact = None
    if item.node is not None:
        artifact = Artifact(components / item.node, label=f"{COMPONENTS_DIR}/{item.node}")
    try:
        return cls.load(item.config, artifact), artifact
    except ArtifactError as exc:
        raise ArtifactError(f"{archive}: {exc}") from None
    except TrainkitError as exc:
        raise TrainkitError(f"{archive}: {item.where}: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        # The files parsed but do not hold what this component writes.
        member = artifact.member(artifact.read[-1]) if artifact and artifact.read else item.where
        raise ArtifactError(f"{archive}: {member} has unexpected content ({type(exc).__name__}: {exc})") from None


_PROBE_TEXT = "hello 123 probe"


def _probe(model: Model, items: list[SchemaItem], loaded: list[tuple[Any, Artifact | None]], archive: Path) -> None:
    """Run every loaded component once, so stored arrays that do not fit the stored
    network (wrong shapes, wrong widths) fail here, naming their files, not in `parse`."""
    from trainkit.nlu.batch import MessageBatch

    batch = MessageBatch(texts=[_PROBE_TEXT])
    for item, (component, artifact) in zip(items, loaded, strict=True):
        try:
            if item.section == "pipeline":
                component.process(batch)
            else:
                component.predict_action_probabilities([], model.domain)
        except Exception as exc:  # untrusted arrays can break numpy in any way
            files = " or ".join(artifact.member(n) for n in artifact.read) if artifact else ""
            raise ArtifactError(
                f"{archive}: {item.where}: {files or 'its stored config'} has unexpected content "
                f"({type(exc).__name__}: {exc})"
            ) from None


def _newest_with(directory: Path, needs: str, limits: ArchiveLimits) -> Path:
    """The newest archive in `directory` whose training type has what `needs` names."""
    candidates = sorted((p for p in directory.glob("*.tar.gz") if p.is_file()),
                        key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    if not candidates:
        raise TrainkitError(f"no model archive (*.tar.gz) found in '{directory}'")
    for candidate in candidates:
        try:
            training_type = read_metadata(candidate, limits).get("training_type")
        except TrainkitError:
            continue  # an unreadable archive is not chosen; loading it would explain why
        if training_type in _TYPES_FOR[needs]:
            return candidate
    raise TrainkitError(f"none of the {len(candidates)} model archive(s) in '{directory}' has "
                        f"{_NEEDS_WHAT[needs]}; the newest is {candidates[0].name}")


def load_model(
    path: str | Path,
    allow_custom: Iterable[str] = (),
    limits: ArchiveLimits | None = None,
    needs: str | None = None,
) -> Model:
    """Load a model archive, or the newest archive in a directory.

    `needs` ("nlu", "core" or "both") says what the caller will use the model for: in a
    directory the newest archive that has it is chosen (an NLU-only model trained after
    a full one does not hide it), and a file without it is an error.

    Archives are untrusted: extraction is bounded by `limits` (default: from the
    environment, see `ArchiveLimits`), and only trainkit's own components load unless
    `allow_custom` names the packages whose components the caller trusts.
    """
    if needs is not None and needs not in _TYPES_FOR:
        raise ValueError(f"needs must be one of {sorted(_TYPES_FOR)}, got {needs!r}")
    path = Path(path)
    limits = limits if limits is not None else ArchiveLimits.from_environment()
    if path.is_dir():
        if needs is not None:
            path = _newest_with(path, needs, limits)
        else:
            newest = latest_model(path)
            if newest is None:
                raise TrainkitError(f"no model archive (*.tar.gz) found in '{path}'")
            path = newest
    if not path.is_file():
        raise TrainkitError(f"model file '{path}' does not exist")
    with tempfile.TemporaryDirectory(prefix="trainkit-model-") as tmp:
        root = Path(tmp)
        metadata = extract_model(path, root, limits)
        components = root / COMPONENTS_DIR
        items = check_metadata(metadata, path, _component_dirs(components))
        loaded = [_load_component(item, components, path, allow_custom) for item in items]
    pipeline = [c for item, (c, _) in zip(items, loaded, strict=True) if item.section == "pipeline"]
    policies = [c for item, (c, _) in zip(items, loaded, strict=True) if item.section == "policies"]
    try:
        model = Model(metadata, pipeline, policies, path)
    except (TrainkitError, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MetadataError(f"{path}: member {METADATA_NAME!r}: 'domain' cannot be used: {exc}") from None
    _probe(model, items, loaded, path)
    if needs is not None and model.training_type not in _TYPES_FOR[needs]:
        raise TrainkitError(f"{path.name} has no {_NEEDS_WHAT[needs].removeprefix('an ')} "
                            f"(training type {model.training_type}); train it with both NLU and dialogue data")
    return model
