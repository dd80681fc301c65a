"""Finetuning: training a model further from an existing model's weights.

A finetuned node is an ordinary node with one more input: the output of the same node in
the model to finetune (put into the cache from the archive, so it is content-addressed
like any other input) and the epoch fraction. Both enter the node's fingerprint, so
running the same finetune again is a cache hit, and a finetuned output can never be
taken for the output of a from-scratch build (whose fingerprint lacks them).

Compatibility is checked before anything trains, since a warm start from weights of
another shape or label set would either crash halfway or silently learn something else:
- the archive's model format;
- the graph: the same nodes with the same components, wiring and config, apart from the
  keys that only say how long to train (`epochs` and the like);
- the label sets: intents, entity types and retrieval responses for NLU; actions,
  intents, entities, slots and forms of the domain for dialogue (responses' texts may
  change: they are packaged, not learned).

What a plan verified of a base archive is remembered (`verified_bases`), so planning the
same finetune again reads the archive's bytes to digest them but does not extract it; the
outputs are taken from the cache, where the first plan put them, and an archive whose
bytes changed is verified again from scratch.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainkit.engine.archive import (
    COMPONENTS_DIR,
    latest_model,
)
from trainkit.engine.cache import Cache
from trainkit.engine.component import get_component
from trainkit.engine.fingerprint import digest_dir, fingerprint
from trainkit.engine.graph import BASE_MODEL, EPOCH_FRACTION, TRAIN, Node
from trainkit.engine.package import ModelVersionError, extract_model
from trainkit.engine.verified_bases import ArchiveIdentity, VerifiedBase, VerifiedBases
from trainkit.errors import TrainkitError

# Config keys that say how long to train, not what: they may differ from the base model.
EPOCH_KEYS = frozenset({"epochs", "max_iter", "max_iterations", "evaluate_every_number_of_epochs"})


class FinetuneError(TrainkitError):
    """The model to finetune cannot be the start of this training."""


@dataclass
class BaseModel:
    """A model archive to finetune from; `close()` removes the extraction, if any.

    A base verified by an earlier plan comes with its metadata and checked outputs and no
    extraction (`root` None); it is extracted only if an output must be read again.
    """

    path: Path
    metadata: dict[str, Any]
    root: Path | None = None
    identity: ArchiveIdentity | None = None
    # node -> digest of its output, found equal to the one the metadata records
    checked: dict[str, str] = field(default_factory=dict)

    def component_dir(self, node: str) -> Path:
        """Where the archive's output of `node` was extracted (extracting it now if needed)."""
        if self.root is None:
            root, metadata = _extract(self.path)
            self.root = root
            if metadata != self.metadata:
                raise FinetuneError(f"cannot finetune '{self.path}': the archive changed while it was being read")
        return self.root / COMPONENTS_DIR / node

    def close(self) -> None:
        """Remove the extracted files."""
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def verified(self) -> VerifiedBase | None:
        """What to remember of this base once the plan has used it."""
        return None if self.identity is None else VerifiedBase(self.identity, self.metadata, dict(self.checked))


def resolve_model_path(path: str | Path, output: str | Path) -> Path:
    """The archive to finetune: a file, the newest archive in a directory, or (for an
    empty path) the newest archive in the output directory."""
    candidate = Path(path) if str(path) else Path(output)
    if candidate.is_dir():
        newest = latest_model(candidate)
        if newest is None:
            raise FinetuneError(f"cannot finetune: no model archive (*.tar.gz) in '{candidate}'")
        return newest
    if not candidate.is_file():
        raise FinetuneError(f"cannot finetune: model file '{candidate}' does not exist")
    return candidate


def _extract(path: Path) -> tuple[Path, dict[str, Any]]:
    """Extract the archive (bounded, as any untrusted archive) and read its metadata."""
    root = Path(tempfile.mkdtemp(prefix="trainkit-finetune-"))
    try:
        metadata = extract_model(path, root)
    except ModelVersionError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise FinetuneError(f"cannot finetune: {exc}".replace("Retrain the model.", "Train from scratch instead.")) \
            from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root, metadata


def open_base_model(path: Path, memo: VerifiedBases | None = None) -> BaseModel:
    """The base archive: as an earlier plan verified it when its bytes are the same,
    else extracted now and read."""
    identity = ArchiveIdentity.of(path) if memo is not None else None
    known = memo.lookup(identity) if memo is not None and identity is not None else None
    if known is not None:
        return BaseModel(path, known.metadata, None, identity, dict(known.outputs))
    root, metadata = _extract(path)
    return BaseModel(path, metadata, root, identity)


def _comparable(node: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in (node.get("config") or {}).items() if k not in EPOCH_KEYS}
    return {"component": node.get("component"), "fn": node.get("fn"), "config": config,
            "needs": node.get("needs"), "target": node.get("target")}


def graph_differences(base_nodes: list[dict[str, Any]], nodes: list[Node]) -> list[str]:
    """What differs between the base model's graph and this training's, in words."""
    base = {n.get("name"): n for n in base_nodes if isinstance(n, dict)}
    new = {n.name: n.as_dict() for n in nodes}
    problems = [f"'{name}' is new" for name in sorted(set(new) - set(base))]
    problems += [f"'{name}' is gone" for name in sorted(set(base) - set(new))]
    for name in sorted(set(base) & set(new)):
        old, now = _comparable(base[name]), _comparable(new[name])
        if old["component"] != now["component"] or old["fn"] != now["fn"]:
            problems.append(f"'{name}' runs {now['component']} instead of {old['component']}")
            continue
        keys = sorted(k for k in set(old["config"]) | set(now["config"])
                      if old["config"].get(k) != now["config"].get(k))
        if keys:
            problems.append(f"'{name}' has other options: {', '.join(keys)}")
        elif old["needs"] != now["needs"] or old["target"] != now["target"]:
            problems.append(f"'{name}' is wired differently")
    return problems


def label_differences(base: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """New or missing labels per kind (intents, entities, actions...), in words."""
    problems = []
    for part in sorted(set(base) | set(current)):
        old, now = base.get(part) or {}, current.get(part) or {}
        for kind in sorted(set(old) | set(now)):
            before, after = old.get(kind), now.get(kind)
            if before == after:
                continue
            if isinstance(before, dict) or isinstance(after, dict):
                before, after = before or {}, after or {}
                changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                problems.append(f"{part} {kind} differ: {', '.join(changed)}")
                continue
            added = sorted(set(after or []) - set(before or []))
            removed = sorted(set(before or []) - set(after or []))
            words = []
            if added:
                words.append("new " + ", ".join(f"'{x}'" for x in added))
            if removed:
                words.append("no more " + ", ".join(f"'{x}'" for x in removed))
            problems.append(f"{part} {kind}: {'; '.join(words) or 'order differs'}")
    return problems


def check_compatible(base: BaseModel, nodes: list[Node], labels: dict[str, Any]) -> None:
    """Refuse, naming every difference, a base model this training cannot start from."""
    metadata = base.metadata
    schema = metadata.get("train_schema")
    base_nodes = schema.get("nodes") if isinstance(schema, dict) else None
    if not isinstance(base_nodes, list):
        raise FinetuneError(f"cannot finetune '{base.path}': its metadata has no training graph")
    problems = graph_differences(base_nodes, nodes)
    if problems:
        raise FinetuneError(
            f"cannot finetune '{base.path}': the pipeline or policies differ from the model's "
            f"(only epoch counts may change): {'; '.join(problems)}"
        )
    base_labels = metadata.get("labels")
    if not isinstance(base_labels, dict):
        raise FinetuneError(f"cannot finetune '{base.path}': its metadata records no label sets")
    problems = label_differences(base_labels, labels)
    if problems:
        raise FinetuneError(
            f"cannot finetune '{base.path}': the training data's labels differ from the model's "
            f"({'; '.join(problems)}); a finetuned model keeps the labels it was trained with, "
            "so train from scratch to add or remove them"
        )


def finetuning_epochs(epochs: int, fraction: float) -> int:
    """Rasa's rule: `ceil(epochs * fraction)`, at least one when the base trained at all."""
    return max(1, math.ceil(epochs * fraction)) if epochs > 0 else 0


def check_fraction(fraction: float) -> float:
    """The epoch fraction must be a number in (0, 1]... or above, to train longer."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction) \
            or fraction <= 0:
        raise FinetuneError(f"the finetuning epoch fraction must be a positive number, got {fraction!r}")
    return float(fraction)


def attach_base(base: BaseModel, nodes: list[Node], cache: Cache, fraction: float) -> list[str]:
    """Give every finetunable training node its base output as an input; returns their names.

    The base outputs are stored in the cache as they are in the archive, after checking
    each against the digest the archive's metadata records for it. An output an earlier
    plan checked (`base.checked`) and the cache still holds is neither extracted nor
    digested again.
    """
    recorded = base.metadata.get("components")
    recorded = recorded if isinstance(recorded, dict) else {}
    finetuned = []
    for node in nodes:
        if node.fn != TRAIN or not get_component(node.component).finetunable:
            continue
        if node.name not in recorded:
            raise FinetuneError(f"cannot finetune '{base.path}': it holds no output of '{node.name}'")
        digest = base.checked.get(node.name)
        if digest != recorded[node.name]:
            digest = _checked_output(base, node.name, recorded[node.name])
        # A key no node computes: the entry exists to hold the object, looked up by digest.
        key = fingerprint({BASE_MODEL: digest})
        stored = cache.lookup(key, touch=False)
        if stored != digest:  # planning the same finetune again copies nothing
            directory = base.component_dir(node.name)
            if node.name in base.checked and digest_dir(directory) != digest:
                digest = _checked_output(base, node.name, recorded[node.name])
            stored = cache.put(key, directory, node=node.name, component=node.component)
        node.finetune = {BASE_MODEL: stored, EPOCH_FRACTION: fraction}
        finetuned.append(node.name)
    return finetuned


def _checked_output(base: BaseModel, name: str, recorded: str) -> str:
    """Digest the archive's output of `name` and compare it with the recorded digest."""
    directory = base.component_dir(name)
    if not directory.is_dir():
        raise FinetuneError(f"cannot finetune '{base.path}': it holds no output of '{name}'")
    digest = digest_dir(directory)
    if digest != recorded:
        raise FinetuneError(f"cannot finetune '{base.path}': its output of '{name}' is damaged "
                            "(it differs from the digest its metadata records)")
    base.checked[name] = digest
    return digest
