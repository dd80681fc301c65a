"""Turning a domain response into the message the bot sends.

Rasa's rules: variations whose `condition` holds (every listed slot has the listed value)
are preferred over unconditional ones; variations for another `channel` are skipped;
among what is left one is chosen at random (a seedable generator, so tests and replays
are repeatable); `{slot}` in texts and button titles or payloads becomes the slot's
value, `{{` and `}}` are literal braces, and a placeholder that names no slot or extra
value stays as written (Rasa then leaves the whole text unfilled).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

# `{{` and `}}` are escaped braces (Python's format syntax, which Rasa's templates use).
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^\n{}]+?)\}")
# Keys of a variation that are about choosing it, not part of the message.
_SELECTION_KEYS = frozenset({"condition", "channel", "id"})


def fill_template(text: str, values: Mapping[str, Any]) -> str:
    """`{name}` replaced by `str(values[name])` for every name `values` has; `{{`/`}}` are
    literal braces (so a payload can carry JSON)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        return str(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER.sub(replace, text)


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return fill_template(value, values)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def _condition_holds(condition: Any, slots: Mapping[str, Any]) -> bool:
    for item in condition or []:
        if not isinstance(item, Mapping) or item.get("type", "slot") != "slot":
            return False
        if slots.get(item.get("name")) != item.get("value"):
            return False
    return True


def choose_variation(
    variations: list[dict[str, Any]], slots: Mapping[str, Any], rng: random.Random, channel: str | None = None
) -> dict[str, Any] | None:
    """The variation to send, or None when none fits."""
    usable = [v for v in variations if isinstance(v, dict) and v.get("channel") in (None, channel)]
    conditional = [v for v in usable if v.get("condition") and _condition_holds(v["condition"], slots)]
    candidates = conditional or [v for v in usable if not v.get("condition")]
    if not candidates:
        return None
    return candidates[rng.randrange(len(candidates))] if len(candidates) > 1 else candidates[0]


def render_variation(variation: Mapping[str, Any], slots: Mapping[str, Any],
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The message of one variation, with placeholders filled."""
    values = {**slots, **(extra or {})}
    return {key: _fill(value, values) for key, value in variation.items() if key not in _SELECTION_KEYS}


def render_response(
    responses: Mapping[str, list[dict[str, Any]]],
    name: str,
    slots: Mapping[str, Any],
    rng: random.Random,
    channel: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The message response `name` sends now, or None when the domain has no usable variation."""
    variation = choose_variation(list(responses.get(name) or []), slots, rng, channel)
    if variation is None:
        return None
    message = render_variation(variation, slots, extra)
    message["response"] = name
    return message
