"""Stories and rules (Rasa 3.x): the story steps and the story graph they form.

Design choices that later stages rely on:

* `or` steps are kept as one `UserUtteranceOr` / `SlotSetOr` event instead of being
  expanded into copies of the story; tracker generation does the branching.
* A checkpoint in the middle of a block splits the block into consecutive steps, the
  first ending and the next starting at that checkpoint (what Rasa does). `part` numbers
  the pieces so block counts stay available.
* Rule-only structure (condition, conversation start, waiting for user input) is kept
  as fields; `StoryStep.tracker_events()` expands it into Rasa's event sequence.

Files are read by `trainkit.data.story_reader`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainkit.data.events import (
    RULE_SNIPPET_ACTION,
    ActionExecuted,
    ActiveLoop,
    Event,
    SlotSet,
    SlotSetOr,
    UserUtteranceOr,
    UserUttered,
    event_from_dict,
    freeze,
    thaw,
)

KEY_STORIES = "stories"
KEY_RULES = "rules"
STORY = "story"
RULE = "rule"

# Name of the implicit checkpoint every block without a start checkpoint hangs from.
STORY_START = "STORY_START"

@dataclass
class StoryStep:
    """One story or rule block (or one piece of a block split at a middle checkpoint)."""

    block_name: str
    kind: str = STORY
    start_checkpoints: list[str] = field(default_factory=list)
    end_checkpoints: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    condition: list[Event] = field(default_factory=list)
    conversation_start: bool = False
    wait_for_user_input: bool = True
    # Slot values a start checkpoint requires (`- checkpoint: x` with `slot_was_set`),
    # frozen like SlotSet values.
    checkpoint_conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    part: int = 0
    is_test: bool = False
    path: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)
    # The line each event (and each condition event) was written on, for messages that
    # point at the step to fix; not part of the step's identity or JSON form.
    event_lines: list[int | None] = field(default_factory=list, compare=False, repr=False)
    condition_lines: list[int | None] = field(default_factory=list, compare=False, repr=False)

    def located_events(self) -> list[tuple[Event, int | None]]:
        """Condition and step events, each with the line it was written on."""
        condition = [(e, _at(self.condition_lines, i, self.line)) for i, e in enumerate(self.condition)]
        steps = [(e, _at(self.event_lines, i, self.line)) for i, e in enumerate(self.events)]
        return condition + steps

    @property
    def is_rule(self) -> bool:
        """Rules train the rule policy only; stories train the ML policies."""
        return self.kind == RULE

    def tracker_events(self) -> list[Event]:
        """The event sequence Rasa builds for this step.

        For rules, the condition comes first, then a snippet action meaning "the rule may
        start mid-conversation" (unless it only applies at conversation start), the
        steps, and a trailing snippet action when the rule does not wait for user input.
        """
        if not self.is_rule:
            return list(self.events)
        out: list[Event] = list(self.condition)
        if not self.conversation_start:
            out.append(ActionExecuted(RULE_SNIPPET_ACTION))
        out.extend(self.events)
        if not self.wait_for_user_input:
            out.append(ActionExecuted(RULE_SNIPPET_ACTION))
        return out

    def as_dict(self) -> dict[str, Any]:
        """Canonical JSON form; source location is left out so formatting cannot change it."""
        return {
            "block_name": self.block_name,
            "kind": self.kind,
            "start_checkpoints": list(self.start_checkpoints),
            "end_checkpoints": list(self.end_checkpoints),
            "events": [e.as_dict() for e in self.events],
            "condition": [e.as_dict() for e in self.condition],
            "conversation_start": self.conversation_start,
            "wait_for_user_input": self.wait_for_user_input,
            "checkpoint_conditions": {
                name: {slot: thaw(value) for slot, value in sorted(slots.items())}
                for name, slots in sorted(self.checkpoint_conditions.items())
            },
            "part": self.part,
            "is_test": self.is_test,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoryStep:
        """Rebuild from `as_dict` output."""
        return cls(
            block_name=data["block_name"],
            kind=data.get("kind", STORY),
            start_checkpoints=list(data.get("start_checkpoints") or []),
            end_checkpoints=list(data.get("end_checkpoints") or []),
            events=[event_from_dict(e) for e in data.get("events") or []],
            condition=[event_from_dict(e) for e in data.get("condition") or []],
            conversation_start=bool(data.get("conversation_start", False)),
            wait_for_user_input=bool(data.get("wait_for_user_input", True)),
            checkpoint_conditions={
                name: {slot: freeze(value) for slot, value in slots.items()}
                for name, slots in (data.get("checkpoint_conditions") or {}).items()
            },
            part=int(data.get("part", 0)),
            is_test=bool(data.get("is_test", False)),
        )


def _at(lines: list[int | None], index: int, default: int | None) -> int | None:
    return lines[index] if index < len(lines) and lines[index] is not None else default


def _flatten(events: Iterable[Event]) -> Iterator[Event]:
    """Events with `or` alternatives spelled out, for the "what is used" queries."""
    for event in events:
        if isinstance(event, (UserUtteranceOr, SlotSetOr)):
            yield from event.alternatives
        else:
            yield event


@dataclass
class StoryGraph:
    """All story and rule steps of a project, in file order."""

    story_steps: list[StoryStep] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when there is no dialogue data (then no dialogue policy can be trained)."""
        return not self.story_steps

    @property
    def stories(self) -> list[StoryStep]:
        """Story steps (a block split at middle checkpoints appears once per piece)."""
        return [s for s in self.story_steps if not s.is_rule]

    @property
    def rules(self) -> list[StoryStep]:
        """Rule steps."""
        return [s for s in self.story_steps if s.is_rule]

    def story_block_count(self) -> int:
        """Number of `story:` blocks as written, which is what Rasa's summaries count."""
        return sum(1 for s in self.stories if s.part == 0)

    def rule_block_count(self) -> int:
        """Number of `rule:` blocks as written."""
        return sum(1 for s in self.rules if s.part == 0)

    def merge(self, other: StoryGraph | None) -> StoryGraph:
        """A new graph holding this graph's steps followed by `other`'s."""
        if other is None:
            return StoryGraph(list(self.story_steps))
        return StoryGraph(list(self.story_steps) + list(other.story_steps))

    def as_dict(self) -> dict[str, Any]:
        """Canonical JSON form: equal for files that differ only in formatting."""
        return {"story_steps": [s.as_dict() for s in self.story_steps]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoryGraph:
        """Rebuild from `as_dict` output."""
        return cls([StoryStep.from_dict(s) for s in data.get("story_steps") or []])

    def fingerprint(self) -> str:
        """Content hash of the canonical form, for caching what is trained from it."""
        text = json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _events(self, include_conditions: bool = True) -> Iterator[Event]:
        for step in self.story_steps:
            yield from _flatten(step.events)
            if include_conditions:
                yield from _flatten(step.condition)

    def slot_names_set(self) -> set[str]:
        """Slots any story or rule (including rule conditions and checkpoints) refers to."""
        names = {e.key for e in self._events() if isinstance(e, SlotSet)}
        for step in self.story_steps:
            for slots in step.checkpoint_conditions.values():
                names.update(slots)
        return names

    def intents_used(self) -> set[str]:
        """Base intent names of all user turns."""
        return {e.intent for e in self._events() if isinstance(e, UserUttered) and e.intent}

    def actions_used(self) -> set[str]:
        """Action names (not end-to-end bot texts) the bot executes."""
        return {
            e.action_name
            for e in self._events()
            if isinstance(e, ActionExecuted) and e.action_name and e.action_name != RULE_SNIPPET_ACTION
        }

    def action_texts_used(self) -> set[str]:
        """End-to-end bot texts (`bot:` steps)."""
        return {e.action_text for e in self._events() if isinstance(e, ActionExecuted) and e.action_text}

    def forms_used(self) -> set[str]:
        """Names of loops activated anywhere; `active_loop: null` is not a form."""
        return {e.name for e in self._events() if isinstance(e, ActiveLoop) and e.name}

    def entities_used(self) -> set[str]:
        """Entity types user turns carry."""
        return {
            ent.entity for e in self._events() if isinstance(e, UserUttered) for ent in e.entities
        }

    def user_texts_used(self) -> set[str]:
        """Plain (annotation-free) end-to-end user texts."""
        return {e.text for e in self._events() if isinstance(e, UserUttered) and e.text is not None}

    def has_e2e_steps(self) -> bool:
        """True when any turn is given as text, which needs end-to-end featurization."""
        for e in self._events():
            if isinstance(e, UserUttered) and e.text is not None:
                return True
            if isinstance(e, ActionExecuted) and e.action_text is not None:
                return True
        return False
