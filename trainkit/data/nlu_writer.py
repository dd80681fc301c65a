"""Writing NLU training data back to a Rasa NLU file, for data trainkit itself derives
(the training part of a cross-validation fold).

The file is JSON, which is YAML too, so no YAML emitter's quoting rules can change an
example. Entities go back inline in the one annotation grammar the reader knows, so
reading the file again gives the same examples, synonyms, regexes and lookup tables.
"""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path
from typing import Any

from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.engine.atomic import write_json_atomic

FORMAT_VERSION = "3.1"


def _annotation(entity: Entity, span: str) -> dict[str, Any]:
    body: dict[str, Any] = {"entity": entity.entity}
    if entity.value != span:
        body["value"] = entity.value
    if entity.role:
        body["role"] = entity.role
    if entity.group:
        body["group"] = entity.group
    return body


def annotated_text(message: Message) -> str:
    """The example as written in a Rasa file: `[span](type)`, or the JSON form when the
    entity has a synonym value, a role or a group."""
    text = message.text or ""
    pieces: list[str] = []
    position = 0
    ordered = sorted(message.entities, key=lambda e: (e.start, e.end))
    for (start, end), group in groupby(ordered, key=lambda e: (e.start, e.end)):
        entities = list(group)
        span = text[start:end]
        bodies = [_annotation(e, span) for e in entities]
        if len(bodies) > 1:
            markup = f"[{span}]{json.dumps(bodies, ensure_ascii=False)}"
        elif set(bodies[0]) == {"entity"}:
            markup = f"[{span}]({entities[0].entity})"
        else:
            markup = f"[{span}]{json.dumps(bodies[0], ensure_ascii=False)}"
        pieces += [text[position:start], markup]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _block(lines: list[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


def nlu_document(data: TrainingData) -> dict[str, Any]:
    """The `nlu:` (and `responses:`) document of `data`'s NLU examples."""
    by_intent: dict[str, list[dict[str, Any]]] = {}
    for message in data.nlu_examples:
        example: dict[str, Any] = {"text": annotated_text(message)}
        example_metadata = (message.metadata_dict or {}).get("example")
        if example_metadata is not None:
            example["metadata"] = example_metadata
        by_intent.setdefault(message.intent_response_key or message.intent or "", []).append(example)
    items: list[dict[str, Any]] = [{"intent": name, "examples": examples} for name, examples in by_intent.items()]
    synonyms: dict[str, list[str]] = {}
    for text, value in data.entity_synonyms.items():
        synonyms.setdefault(value, []).append(text)
    items += [{"synonym": value, "examples": _block(texts)} for value, texts in synonyms.items()]
    items += [{"regex": r["name"], "examples": _block([r["pattern"]])} for r in data.regex_features]
    items += [{"lookup": t["name"], "examples": _block([str(e) for e in t["elements"]])} for t in data.lookup_tables]
    document: dict[str, Any] = {"version": FORMAT_VERSION, "nlu": items}
    if data.responses:
        document["responses"] = data.responses
    return document


def write_nlu_file(data: TrainingData, path: str | Path) -> Path:
    """Write `data` as an NLU training file (atomically) and return its path."""
    write_json_atomic(Path(path), nlu_document(data))
    return Path(path)
