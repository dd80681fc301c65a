"""Inline entity annotations, the one grammar of NLU examples and story `user:` turns.

Rasa's forms: `[text](type)`, `[text](type:value)`, `[text]{"entity": ...}` (with
`value`, `role`, `group`) and a list of such objects, `[text][{...}, {...}]`, for several
entities on the same words. Values are taken as written, as Rasa takes them (no space is
trimmed: `(city: NYC)` has the value " NYC"). Offsets refer to the cleaned text, which is
what tokenizers later see.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from trainkit.data.training_data import Entity
from trainkit.data.yaml_io import type_name

# The text may not contain `]`, the type may not contain `:` or `)`, a JSON body may
# not contain `}`; the list form holds one or more JSON bodies.
ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+)\]"
    r"(?:\((?P<type>[^:)]+)(?::(?P<value>[^)]+))?\)"
    r"|\{(?P<json>[^}]+)\}"
    r"|\[(?P<list>\s*\{[^\]]*\}\s*)\])"
)
_LIST_ITEM = re.compile(r"\{(?P<json>[^}]+)\}")
ENTITY_JSON_KEYS = ("entity", "value", "role", "group")


class AnnotationError(ValueError):
    """A malformed inline entity annotation; the caller adds file and line."""


@dataclass(frozen=True)
class ParsedExample:
    """An example's cleaned text and the entities annotated in it."""

    text: str
    entities: tuple[Entity, ...]


def parse_annotated_text(example: str) -> ParsedExample:
    """Remove inline entity markup from an example and locate each entity in the result.

    Text in square brackets that is not followed by `(`, `{` or `[{` is ordinary text, as
    in Rasa; a `[` that is never closed, or one whose annotation part is broken, is
    refused.
    """
    if "[" not in example:
        return ParsedExample(example, ())
    pieces: list[str] = []
    entities: list[Entity] = []
    length = 0  # length of the cleaned text built so far
    pos = 0
    while True:
        open_at = example.find("[", pos)
        if open_at < 0:
            break
        match = ANNOTATION.match(example, open_at)
        if match is None:
            close_at = example.find("]", open_at + 1)
            if close_at < 0:
                raise AnnotationError(f"unclosed '[' at character {open_at + 1} of example {example!r}")
            if close_at + 1 < len(example) and example[close_at + 1] in "({" or example.startswith(
                "[{", close_at + 1
            ):
                raise AnnotationError(
                    f"malformed entity annotation {example[open_at:]!r} in example "
                    f"{example!r}; expected [text](entity), [text](entity:value), "
                    '[text]{"entity": ...} or [text][{"entity": ...}, ...]'
                )
            pieces.append(example[pos : open_at + 1])
            length += open_at + 1 - pos
            pos = open_at + 1
            continue
        pieces.append(example[pos:open_at])
        length += open_at - pos
        span = match.group("text")
        entities.extend(_entities_from_match(match, span, length, example))
        pieces.append(span)
        length += len(span)
        pos = match.end()
    pieces.append(example[pos:])
    return ParsedExample("".join(pieces), tuple(entities))


def _entities_from_match(match: re.Match[str], span: str, start: int, example: str) -> list[Entity]:
    if match.group("type") is not None:
        value = match.group("value") or span
        return [Entity(start, start + len(span), value, match.group("type"))]
    if match.group("json") is not None:
        return [_entity_from_json(match.group("json"), span, start, example)]
    bodies = [item.group("json") for item in _LIST_ITEM.finditer(match.group("list"))]
    return [_entity_from_json(body, span, start, example) for body in bodies]


def _entity_from_json(body: str, span: str, start: int, example: str) -> Entity:
    try:
        data = json.loads("{" + body + "}")
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"invalid JSON in entity annotation {{{body}}} in example {example!r}: {exc.msg}"
        ) from None
    if "entity" not in data:
        raise AnnotationError(f'entity annotation {{{body}}} in example {example!r} has no "entity" key')
    for key in ENTITY_JSON_KEYS:
        if key in data and not isinstance(data[key], str):
            raise AnnotationError(
                f'"{key}" in entity annotation {{{body}}} must be a string, got {type_name(data[key])}'
            )
    if not data["entity"]:
        raise AnnotationError(f"empty entity name in annotation {{{body}}} in example {example!r}")
    return Entity(start, start + len(span), data.get("value", span), data["entity"], data.get("role"), data.get("group"))
