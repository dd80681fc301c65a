"""`failed_test_stories.yml` and `stories_with_warnings.yml`, as Rasa writes them.

Each failed story is written back as a test story (so it can be fixed and replayed) with
a `# predicted: ...` comment on every step the model got wrong. The stories that passed
although the model predicted `action_unlikely_intent` on the way go to the second file,
that prediction written as a step of its own, `# predicted: action_unlikely_intent`.
Scalars that are not plain names are written as JSON strings, which YAML reads unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from trainkit.core.replay import ActionResult, StoryResult, UserResult
from trainkit.data.events import (
    ACTION_LISTEN,
    ACTION_UNLIKELY_INTENT,
    ActionExecuted,
    ActiveLoop,
    SlotSet,
    StoryEntity,
    UserUttered,
    thaw,
)
from trainkit.data.nlu_writer import annotated_text
from trainkit.data.training_data import Entity, Message

FORMAT_VERSION = "3.1"
NOTHING_FAILED = "# None of the test stories failed - all good!\n"
NO_WARNINGS = f'# No warnings for test stories\nversion: "{FORMAT_VERSION}"\nstories: []\n'
# Text YAML reads back as the same string when written without quotes.
_PLAIN = re.compile(r"[A-Za-z_][\w.,'()/ -]*[\w.)]|[A-Za-z_]")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}


def _scalar(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(thaw(value), ensure_ascii=False)


def _with_markup(text: str, entities: Sequence[StoryEntity | dict[str, Any]]) -> str:
    spans = []
    for entity in entities:
        item = entity if isinstance(entity, dict) else entity.as_dict()
        if item.get("start") is None or item.get("end") is None:
            continue
        spans.append(Entity(int(item["start"]), int(item["end"]), str(item.get("value")), str(item["entity"]),
                            item.get("role"), item.get("group")))
    return annotated_text(Message(text=text, entities=tuple(spans)))


def _user_lines(event: UserUttered, result: UserResult | None) -> list[str]:
    intent = event.full_retrieval_intent or event.intent
    lines: list[str] = []
    if event.text:
        lines.append("  - user: |")
        lines += [f"      {line}" for line in _with_markup(event.text, event.entities).splitlines()]
        if intent:
            lines.append(f"    intent: {_scalar(intent)}")
    else:
        lines.append(f"  - intent: {_scalar(intent)}")
        if event.entities:
            lines.append("    entities:")
            lines += [f"    - {_scalar(e.entity)}: {_scalar(e.value)}" for e in event.entities]
    if result is not None and not result.correct:
        predicted_text = _with_markup(event.text or "", result.predicted_entities).replace("\n", " ")
        # On the step's first line: after `|` a comment is YAML, inside the block it is text.
        lines[0] += f"  # predicted: {result.predicted_intent}: {predicted_text}"
    return lines


def _action_line(event: ActionExecuted, result: ActionResult | None) -> str:
    line = (f"  - action: {_scalar(event.action_name)}" if event.action_name
            else f"  - bot: {_scalar(event.action_text)}")
    if result is not None and not result.correct:
        line += f"  # predicted: {result.predicted}"
        if result.after_unlikely_intent:
            line += f" after {ACTION_UNLIKELY_INTENT}"
    return line


def _slot_line(event: SlotSet) -> str:
    value = "" if event.bare else f": {_scalar(event.value)}"
    return f"    - {_scalar(event.key)}{value}"


def story_lines(story: StoryResult) -> list[str]:
    """One replayed story as a YAML story block.

    Consecutive slot events become one `slot_was_set` step, each slot and value once (the
    replay holds both a story's slot steps and the slots its entities fill).
    """
    lines = [f"- story: {_scalar(story.name)}", "  steps:"]
    slot_run: list[str] = []
    for step in story.steps:
        event, result = step.event, step.result
        if isinstance(event, SlotSet):
            line = _slot_line(event)
            if not slot_run:
                lines.append("  - slot_was_set:")
            if line not in slot_run:
                slot_run.append(line)
                lines.append(line)
            continue
        slot_run = []
        if isinstance(event, UserUttered):
            lines += _user_lines(event, result if isinstance(result, UserResult) else None)
        elif step.warning:
            lines.append(f"  - action: {ACTION_UNLIKELY_INTENT}  # predicted: {ACTION_UNLIKELY_INTENT}")
        elif isinstance(event, ActionExecuted):
            action = result if isinstance(result, ActionResult) else None
            # Listening is implicit in a story file; only a wrong listen is written out.
            if event.action_name != ACTION_LISTEN or (action is not None and not action.correct):
                lines.append(_action_line(event, action))
        elif isinstance(event, ActiveLoop):
            lines.append(f"  - active_loop: {_scalar(event.name) if event.name else 'null'}")
    return lines


def _stories_yaml(stories: Sequence[StoryResult]) -> str:
    lines = [f'version: "{FORMAT_VERSION}"', "stories:"]
    for story in stories:
        lines += story_lines(story)
    return "\n".join(lines) + "\n"


def failed_stories_yaml(stories: Sequence[StoryResult]) -> str:
    """The test-stories file of every story with a wrong prediction."""
    failed = [story for story in stories if not story.correct]
    return _stories_yaml(failed) if failed else NOTHING_FAILED


def stories_with_warnings_yaml(stories: Sequence[StoryResult]) -> str:
    """The test-stories file of the stories that passed with an action_unlikely_intent
    predicted on the way (an empty story list when there is none)."""
    warned = [story for story in stories if story.correct and story.has_warnings]
    return _stories_yaml(warned) if warned else NO_WARNINGS
