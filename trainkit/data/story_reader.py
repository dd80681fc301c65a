"""Reading stories and rules from Rasa 3.x YAML into a StoryGraph.

The reader follows Rasa 3.6's interpretation of the format, but where Rasa only logs a
warning and silently drops a step (unknown keys, malformed slots, nameless blocks) this
reader stops with a DataError naming the file and line: a dropped step changes what the
dialogue policies learn, and the user should hear about it before a long training run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainkit.data.annotations import AnnotationError, parse_annotated_text
from trainkit.data.events import (
    ActionExecuted,
    ActiveLoop,
    Event,
    SlotSet,
    SlotSetOr,
    StoryEntity,
    UserUtteranceOr,
    UserUttered,
)
from trainkit.data.stories import (
    KEY_RULES,
    KEY_STORIES,
    RULE,
    STORY,
    StoryGraph,
    StoryStep,
)
from trainkit.data.yaml_io import (
    check_version,
    expect_list,
    expect_mapping,
    line_of,
    load_yaml,
    to_plain,
    type_name,
)
from trainkit.errors import DataError, Problem, raise_problems

_STORY_BLOCK_KEYS = frozenset({"story", "steps", "metadata"})
_RULE_BLOCK_KEYS = frozenset(
    {"rule", "steps", "metadata", "condition", "conversation_start", "wait_for_user_input"}
)

# Keys that decide what a step is; a step has exactly one of them (intent and user
# together count as one user turn).
_USER_KEYS = frozenset({"intent", "user"})
_KIND_KEYS = frozenset({"intent", "user", "or", "action", "bot", "slot_was_set", "active_loop", "checkpoint"})
_STEP_KEYS = _KIND_KEYS | {"entities", "metadata"}
_CONDITION_KEYS = frozenset({"slot_was_set", "active_loop"})


def is_test_stories_file(path: str | Path) -> bool:
    """Rasa's convention: files whose name starts with `test_` hold test stories."""
    return Path(path).name.startswith("test_")


def has_story_data(document: Any) -> bool:
    """Whether a parsed YAML document has a `stories:` or `rules:` section."""
    return isinstance(document, dict) and (KEY_STORIES in document or KEY_RULES in document)


def read_story_file(path: str | Path, is_test: bool = False) -> StoryGraph:
    """Read the stories and rules of one YAML file (other sections are ignored)."""
    return read_story_document(load_yaml(path), path, is_test=is_test)


def read_story_files(paths: Iterable[str | Path], is_test: bool = False) -> StoryGraph:
    """Read several files into one graph, in the order given."""
    graph = StoryGraph()
    for path in paths:
        graph = graph.merge(read_story_file(path, is_test=is_test))
    return graph


def read_story_document(document: Any, path: str | Path, is_test: bool = False) -> StoryGraph:
    """Read the `stories:` and `rules:` sections of an already parsed YAML document."""
    path = str(path)
    if document is None:
        return StoryGraph()
    expect_mapping(document, path, "a training data file")
    check_version(document, path)
    steps: list[StoryStep] = []
    problems: list[Problem] = []
    for section, kind in ((KEY_STORIES, STORY), (KEY_RULES, RULE)):
        if section not in document or document[section] is None:
            continue
        blocks = expect_list(document[section], path, f"'{section}'", line_of(document, section))
        for index, block in enumerate(blocks):
            line = line_of(blocks, index=index) or line_of(document, section)
            try:
                steps.extend(_BlockReader(path, kind, is_test).read(block, line))
            except DataError as exc:  # keep reading: every broken block is reported
                problems.append(exc.problem)
    raise_problems(problems)
    return StoryGraph(steps)


class _BlockReader:
    """Turns one story or rule block into one or more StorySteps."""

    def __init__(self, path: str, kind: str, is_test: bool) -> None:
        self.path = path
        self.kind = kind
        self.is_test = is_test

    def error(self, message: str, line: int | None) -> DataError:
        return DataError(message, self.path, line)

    def read(self, block: Any, line: int | None) -> list[StoryStep]:
        section = KEY_STORIES if self.kind == STORY else KEY_RULES
        if not isinstance(block, dict):
            raise self.error(
                f"each item under '{section}:' must be a mapping with '{self.kind}:' and "
                f"'steps:', got {type_name(block)}",
                line,
            )
        name = self._block_name(block, line)
        allowed = _STORY_BLOCK_KEYS if self.kind == STORY else _RULE_BLOCK_KEYS
        for key in block:
            if key not in allowed:
                hint = ""
                if self.kind == STORY and key in _RULE_BLOCK_KEYS:
                    hint = " (only rules may have it)"
                raise self.error(
                    f"unknown key '{key}' in {self.kind} '{name}'{hint}; "
                    f"allowed: {', '.join(sorted(allowed))}",
                    line_of(block, key) or line,
                )
        raw_steps = block.get("steps")
        steps_line = line_of(block, "steps") or line
        if raw_steps is None:
            raise self.error(f"{self.kind} '{name}' has no 'steps' list", steps_line)
        if not isinstance(raw_steps, list):
            raise self.error(
                f"'steps' of {self.kind} '{name}' must be a list, got {type_name(raw_steps)}",
                steps_line,
            )
        if not raw_steps:
            raise self.error(f"{self.kind} '{name}' has an empty 'steps' list", steps_line)

        first = StoryStep(block_name=name, kind=self.kind, is_test=self.is_test, path=self.path, line=line)
        if self.kind == RULE:
            self._read_rule_options(block, name, first, line)
        return self._read_steps(raw_steps, name, first)

    def _block_name(self, block: dict, line: int | None) -> str:
        other = RULE if self.kind == STORY else STORY
        if self.kind not in block:
            section = KEY_STORIES if self.kind == STORY else KEY_RULES
            if other in block:
                raise self.error(
                    f"'{other}:' block found under '{section}:'; move it under "
                    f"'{other}s:' or rename the key to '{self.kind}:'",
                    line,
                )
            raise self.error(f"block under '{section}:' has no '{self.kind}:' name", line)
        name = block[self.kind]
        if name is None or isinstance(name, (dict, list)) or str(name).strip() == "":
            raise self.error(
                f"'{self.kind}:' name must be a non-empty string, got {type_name(name)}",
                line_of(block, self.kind) or line,
            )
        return str(to_plain(name))

    def _read_rule_options(self, block: dict, name: str, step: StoryStep, line: int | None) -> None:
        for key in ("conversation_start", "wait_for_user_input"):
            if key in block:
                value = block[key]
                if not isinstance(value, bool):
                    raise self.error(
                        f"'{key}' of rule '{name}' must be true or false, got {type_name(value)}",
                        line_of(block, key) or line,
                    )
                setattr(step, key, value)
        if block.get("condition") is None:
            return
        condition_line = line_of(block, "condition") or line
        conditions = block["condition"]
        if not isinstance(conditions, list):
            raise self.error(
                f"'condition' of rule '{name}' must be a list, got {type_name(conditions)}",
                condition_line,
            )
        for index, raw in enumerate(conditions):
            item_line = line_of(conditions, index=index) or condition_line
            if not isinstance(raw, dict):
                raise self.error(
                    f"condition step of rule '{name}' must be a mapping, got {type_name(raw)}",
                    item_line,
                )
            for key in raw:
                if key not in _CONDITION_KEYS:
                    raise self.error(
                        f"'{key}' is not allowed in the condition of rule '{name}'; "
                        "only 'slot_was_set' and 'active_loop' are",
                        line_of(raw, key) or item_line,
                    )
            if len(raw) != 1:
                raise self.error(
                    "a condition step must hold exactly one of 'slot_was_set' or 'active_loop'",
                    item_line,
                )
            events = self._step_events(raw, item_line)
            step.condition.extend(events)
            step.condition_lines.extend([item_line] * len(events))

    def _read_steps(self, raw_steps: list, name: str, first: StoryStep) -> list[StoryStep]:
        pieces: list[StoryStep] = []
        current = first
        for index, raw in enumerate(raw_steps):
            line = line_of(raw_steps, index=index) or first.line
            if not isinstance(raw, dict):
                raise self.error(
                    f"step {index + 1} of {self.kind} '{name}' must be a mapping, got {type_name(raw)}",
                    line,
                )
            kind_key = self._kind_key(raw, name, line)
            if kind_key == "checkpoint":
                checkpoint, conditions = self._checkpoint(raw, line)
                if not current.events:
                    current.start_checkpoints.append(checkpoint)
                    if conditions:
                        current.checkpoint_conditions[checkpoint] = conditions
                    continue
                if conditions:
                    raise self.error(
                        f"checkpoint '{checkpoint}' has 'slot_was_set' conditions, which only "
                        "checkpoints at the start of a story may have",
                        line,
                    )
                if checkpoint not in current.end_checkpoints:
                    current.end_checkpoints.append(checkpoint)
                continue
            if current.end_checkpoints:
                # A step after an end checkpoint starts a new piece from that checkpoint.
                pieces.append(current)
                current = StoryStep(
                    block_name=name,
                    kind=self.kind,
                    start_checkpoints=list(current.end_checkpoints),
                    part=current.part + 1,
                    is_test=self.is_test,
                    path=self.path,
                    line=line,
                )
            events = self._step_events(raw, line)
            current.events.extend(events)
            current.event_lines.extend([line] * len(events))
        if not current.events:
            raise self.error(
                f"{self.kind} '{name}' has only checkpoints and no steps", first.line
            )
        pieces.append(current)
        return pieces

    def _kind_key(self, step: dict, name: str, line: int | None) -> str:
        for key in step:
            if key not in _STEP_KEYS:
                raise self.error(
                    f"unknown step key '{key}' in {self.kind} '{name}'; expected one of "
                    f"{', '.join(sorted(_KIND_KEYS))}",
                    line_of(step, key) or line,
                )
        kinds = [k for k in step if k in _KIND_KEYS]
        if "checkpoint" in kinds:
            kinds = [k for k in kinds if k != "slot_was_set"]
        if len(kinds) > 1 and set(kinds) <= _USER_KEYS:
            kinds = ["intent"]
        if not kinds:
            raise self.error(
                f"step in {self.kind} '{name}' has no step key; expected one of "
                f"{', '.join(sorted(_KIND_KEYS))}",
                line,
            )
        if len(kinds) > 1:
            raise self.error(
                f"a step can hold only one of {', '.join(sorted(_KIND_KEYS))}; "
                f"found {', '.join(repr(k) for k in kinds)}",
                line,
            )
        kind = kinds[0]
        if "entities" in step and kind not in _USER_KEYS:
            raise self.error("'entities' belongs to an 'intent' or 'user' step", line_of(step, "entities") or line)
        if self.kind == RULE and kind == "checkpoint":
            # Rules match single situations; linking them with checkpoints is meaningless.
            raise self.error(
                f"rules cannot contain 'checkpoint' steps (rule '{name}'); use a story instead",
                line_of(step, kind) or line,
            )
        return "intent" if kind == "user" else kind

    def _checkpoint(self, step: dict, line: int | None) -> tuple[str, dict[str, Any]]:
        name = step["checkpoint"]
        if not isinstance(name, str) or not name.strip():
            raise self.error(
                f"'checkpoint' must be a non-empty name, got {type_name(name)}",
                line_of(step, "checkpoint") or line,
            )
        conditions: dict[str, Any] = {}
        if "slot_was_set" in step:
            for slot in self._slots(step, line):
                conditions[slot.key] = slot.value
        return name.strip(), conditions

    # --- events ----------------------------------------------------------------------------

    def _step_events(self, step: dict, line: int | None) -> list[Event]:
        if "intent" in step or "user" in step:
            return [self._user(step, line)]
        if "or" in step:
            return [self._or(step, line)]
        if "slot_was_set" in step:
            return list(self._slots(step, line))
        if "action" in step:
            action = step["action"]
            if not isinstance(action, str) or not action.strip():
                raise self.error(
                    f"'action' must be a non-empty action name, got {type_name(action)}",
                    line_of(step, "action") or line,
                )
            return [ActionExecuted(action_name=action.strip())]
        if "bot" in step:
            text = step["bot"]
            if not isinstance(text, str) or not text.strip():
                raise self.error(
                    f"'bot' must be the text the bot says, got {type_name(text)}",
                    line_of(step, "bot") or line,
                )
            return [ActionExecuted(action_text=str(text).strip())]
        if "active_loop" in step:
            loop = step["active_loop"]
            if loop is not None and (not isinstance(loop, str) or not loop.strip()):
                raise self.error(
                    f"'active_loop' must be a form name or null, got {type_name(loop)}",
                    line_of(step, "active_loop") or line,
                )
            return [ActiveLoop(loop.strip() if loop is not None else None)]
        raise self.error("step has no event", line)  # unreachable after _kind_key

    def _user(self, step: dict, line: int | None) -> UserUttered:
        intent: str | None = None
        full_retrieval_intent: str | None = None
        if "intent" in step:
            raw_intent = step["intent"]
            if not isinstance(raw_intent, str) or not raw_intent.strip():
                raise self.error(
                    f"'intent' must be a non-empty intent name, got {type_name(raw_intent)}",
                    line_of(step, "intent") or line,
                )
            # Rasa accepts the `/intent` shortcut syntax here and drops the slash.
            intent = raw_intent.strip().removeprefix("/")
            if "/" in intent:
                full_retrieval_intent = intent
                intent = intent.split("/", 1)[0]
        if "user" in step:
            message = step["user"]
            if not isinstance(message, str) or not message.strip():
                raise self.error(
                    f"'user' must be the text the user says, got {type_name(message)}",
                    line_of(step, "user") or line,
                )
            # Entities of an end-to-end message come from its annotations only, as in Rasa.
            try:
                parsed = parse_annotated_text(str(message).strip())
            except AnnotationError as exc:
                raise self.error(str(exc), line_of(step, "user") or line) from None
            entities = tuple(
                StoryEntity(e.entity, e.value, e.role, e.group, e.start, e.end) for e in parsed.entities
            )
            return UserUttered(intent, parsed.text, entities, full_retrieval_intent)
        entities = self._entities(step, line)
        return UserUttered(intent, None, entities, full_retrieval_intent)

    def _entities(self, step: dict, line: int | None) -> tuple[StoryEntity, ...]:
        if step.get("entities") is None:
            return ()
        entities_line = line_of(step, "entities") or line
        raw = step["entities"]
        if not isinstance(raw, list):
            raise self.error(f"'entities' must be a list, got {type_name(raw)}", entities_line)
        out: list[StoryEntity] = []
        for index, item in enumerate(raw):
            item_line = line_of(raw, index=index) or entities_line
            if isinstance(item, str) and item.strip():
                out.append(StoryEntity(item.strip()))
            elif isinstance(item, dict) and "entity" in item:
                out.append(self._entity_mapping(item, item_line))
            elif isinstance(item, dict) and item:
                for key, value in item.items():
                    out.append(StoryEntity(str(key), to_plain(value)))
            else:
                raise self.error(
                    "each entity must be 'name', 'name: value' or a mapping with 'entity', "
                    f"'value', 'role', 'group'; got {type_name(item)}",
                    item_line,
                )
        return tuple(out)

    def _entity_mapping(self, item: dict, line: int | None) -> StoryEntity:
        allowed = {"entity", "value", "role", "group"}
        for key in item:
            if key not in allowed:
                raise self.error(
                    f"unknown entity key '{key}'; allowed: entity, value, role, group",
                    line_of(item, key) or line,
                )
        name = item["entity"]
        if not isinstance(name, str) or not name.strip():
            raise self.error(f"'entity' must be a non-empty name, got {type_name(name)}", line)
        labels: dict[str, str | None] = {}
        for key in ("role", "group"):
            label = item.get(key)
            if isinstance(label, (dict, list)):
                raise self.error(f"entity '{key}' must be a string, got {type_name(label)}", line)
            # `group: 1` is common; roles and groups are labels, so numbers become text.
            labels[key] = None if label is None else str(to_plain(label))
        return StoryEntity(
            entity=name.strip(),
            value=to_plain(item.get("value")),
            role=labels["role"],
            group=labels["group"],
        )

    def _slots(self, step: dict, line: int | None) -> list[SlotSet]:
        raw = step["slot_was_set"]
        slots_line = line_of(step, "slot_was_set") or line
        if not isinstance(raw, list) or not raw:
            raise self.error(
                "'slot_was_set' must be a non-empty list of 'slot: value' mappings or slot "
                f"names, got {type_name(raw) if raw != [] else 'an empty list'}",
                slots_line,
            )
        out: list[SlotSet] = []
        for index, item in enumerate(raw):
            item_line = line_of(raw, index=index) or slots_line
            if isinstance(item, str) and item.strip():
                out.append(SlotSet(item.strip(), None, bare=True))
            elif isinstance(item, dict) and item:
                for key, value in item.items():
                    if not isinstance(key, str) or not key.strip():
                        raise self.error(f"slot name must be a string, got {key!r}", item_line)
                    out.append(SlotSet(key.strip(), to_plain(value)))
            else:
                raise self.error(
                    "each 'slot_was_set' item must be 'slot: value' or a slot name, got "
                    f"{type_name(item)}",
                    item_line,
                )
        return out

    def _or(self, step: dict, line: int | None) -> Event:
        raw = step["or"]
        or_line = line_of(step, "or") or line
        if not isinstance(raw, list) or not raw:
            raise self.error(
                f"'or' must be a non-empty list of alternatives, got {type_name(raw)}", or_line
            )
        users: list[UserUttered] = []
        slots: list[SlotSet] = []
        for index, item in enumerate(raw):
            item_line = line_of(raw, index=index) or or_line
            if not isinstance(item, dict):
                raise self.error(
                    f"each 'or' alternative must be a mapping, got {type_name(item)}", item_line
                )
            keys = set(item) - {"metadata"}
            unknown = keys - (_USER_KEYS | {"entities", "slot_was_set"})
            if unknown:
                key = sorted(unknown)[0]
                raise self.error(
                    f"'{key}' is not allowed in an 'or' alternative; use 'intent', 'user' "
                    "or 'slot_was_set'",
                    line_of(item, key) or item_line,
                )
            if keys & _USER_KEYS and "slot_was_set" not in keys:
                users.append(self._user(item, item_line))
            elif keys == {"slot_was_set"}:
                slots.extend(self._slots(item, item_line))
            else:
                raise self.error(
                    "an 'or' alternative must be either an 'intent'/'user' or a 'slot_was_set'",
                    item_line,
                )
        if users and slots:
            raise self.error(
                "an 'or' step cannot mix user messages and 'slot_was_set' alternatives", or_line
            )
        if users:
            return UserUtteranceOr(tuple(users))
        return SlotSetOr(tuple(slots))
