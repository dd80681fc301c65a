"""Entity tags: token labels from annotated messages, and entities back from tags.

Shared by DIETClassifier's CRF heads and CRFEntityExtractor: training turns each
message's entity spans into one tag per token (BILOU or plain labels, plus role and group
labels); prediction decodes a tag sequence into Rasa entity dicts, tolerating ill-formed
BILOU sequences the way Rasa does.
"""

from __future__ import annotations

from typing import Any

from trainkit.data.training_data import Message
from trainkit.nlu.batch import Token

NO_ENTITY = "O"
ENTITY_HEADS = ("entity", "role", "group")


def token_labels(tokens: list[Token], message: Message, attribute: str) -> list[str]:
    """The entity / role / group label of each token ("O" outside annotated spans).

    A token belongs to an entity when their character ranges overlap, so an annotation
    that cuts through a token still labels it.
    """
    labels = [NO_ENTITY] * len(tokens)
    for entity in message.entities:
        value = getattr(entity, attribute)
        if not value:
            continue
        for i, token in enumerate(tokens):
            if token.start < entity.end and token.end > entity.start:
                labels[i] = value
    return labels


def entity_spans(tokens: list[Token], message: Message) -> list[str]:
    """BILOU entity tags of the tokens, keeping adjacent entities of one type apart."""
    tags = [NO_ENTITY] * len(tokens)
    for entity in message.entities:
        inside = [i for i, t in enumerate(tokens) if t.start < entity.end and t.end > entity.start]
        if not inside:
            continue
        if len(inside) == 1:
            tags[inside[0]] = f"U-{entity.entity}"
            continue
        tags[inside[0]] = f"B-{entity.entity}"
        for i in inside[1:-1]:
            tags[i] = f"I-{entity.entity}"
        tags[inside[-1]] = f"L-{entity.entity}"
    return tags


def entity_tags(tokens: list[Token], message: Message, bilou: bool) -> list[str]:
    """Training tags for the entity head, with or without the BILOU prefixes."""
    if bilou:
        return entity_spans(tokens, message)
    return token_labels(tokens, message, "entity")


def _split_tag(tag: str) -> tuple[str | None, str]:
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BILU":
        return tag[0], tag[2:]
    return None, tag


def decode_entity_tags(tags: list[str]) -> list[tuple[int, int, str]]:
    """Token ranges [first, last] and labels of the entities a tag sequence describes.

    Tolerates ill-formed BILOU sequences the way Rasa does: an entity starts at a B or U
    tag or where the label changes, and ends at an L or U tag or where the label changes.
    Plain labels (no BILOU) group consecutive tokens with the same label.
    """
    spans: list[tuple[int, int, str]] = []
    current: list[Any] | None = None
    for i, tag in enumerate(tags):
        prefix, label = _split_tag(tag)
        if label == NO_ENTITY:
            if current:
                spans.append(tuple(current))  # type: ignore[arg-type]
            current = None
            continue
        starts_new = current is None or current[2] != label or prefix in ("B", "U")
        if starts_new:
            if current:
                spans.append(tuple(current))  # type: ignore[arg-type]
            current = [i, i, label]
        else:
            assert current is not None
            current[1] = i
        if prefix in ("L", "U"):
            spans.append(tuple(current))  # type: ignore[arg-type]
            current = None
    if current:
        spans.append(tuple(current))  # type: ignore[arg-type]
    return spans


def split_by_comma(
    spans: list[tuple[int, int, str]], tokens: list[Token], text: str, split: bool | dict[str, bool]
) -> list[tuple[int, int, str]]:
    """Cut multi-token entities at commas between tokens (Rasa's `split_entities_by_comma`).

    `split` is a bool for all entity types, or a per-type dict whose missing types fall
    back to True, as in Rasa.
    """
    out = []
    for first, last, label in spans:
        do_split = split.get(label, True) if isinstance(split, dict) else bool(split)
        if not do_split or first == last:
            out.append((first, last, label))
            continue
        begin = first
        for i in range(first, last):
            if "," in text[tokens[i].end : tokens[i + 1].start]:
                out.append((begin, i, label))
                begin = i + 1
        out.append((begin, last, label))
    return out


def build_entities(
    text: str,
    tokens: list[Token],
    heads: dict[str, tuple[list[str], list[float]]],
    extractor: str,
    split: bool | dict[str, bool] = True,
) -> list[dict[str, Any]]:
    """Rasa entity dicts from per-token predictions of the entity (and role/group) heads.

    `heads[name]` is (tag per token, confidence per token). An entity's confidence is the
    lowest confidence among its tokens; its role / group is the most frequent non-"O"
    label of that head over its tokens.
    """
    if "entity" not in heads or not tokens:
        return []
    tags, confidences = heads["entity"]
    entities = []
    for first, last, label in split_by_comma(decode_entity_tags(tags), tokens, text, split):
        start, end = tokens[first].start, tokens[last].end
        entity: dict[str, Any] = {
            "entity": label,
            "start": start,
            "end": end,
            "value": text[start:end],
            "confidence_entity": float(min(confidences[first : last + 1])),
        }
        for head in ("role", "group"):
            if head not in heads:
                continue
            head_tags, head_conf = heads[head]
            votes: dict[str, list[float]] = {}
            for i in range(first, last + 1):
                if head_tags[i] != NO_ENTITY:
                    votes.setdefault(head_tags[i], []).append(head_conf[i])
            if votes:
                best = max(sorted(votes), key=lambda k: len(votes[k]))
                entity[head] = best
                entity[f"confidence_{head}"] = float(min(votes[best]))
        entity["extractor"] = extractor
        entities.append(entity)
    return entities
