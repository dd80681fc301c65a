"""Reading stories and rules into a StoryGraph."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from trainkit.data.events import (
    ACTION_LISTEN,
    RULE_SNIPPET_ACTION,
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    FrozenDict,
    LoopInterrupted,
    SlotSet,
    SlotSetOr,
    StoryEntity,
    UserUtteranceOr,
    UserUttered,
    event_from_dict,
)
from trainkit.data.stories import StoryGraph, StoryStep
from trainkit.data.story_reader import (
    is_test_stories_file,
    read_story_document,
    read_story_file,
    read_story_files,
)
from trainkit.data.yaml_io import parse_yaml
from trainkit.errors import DataError


def write(tmp_path: Path, text: str, name: str = "stories.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def read(tmp_path: Path, text: str, name: str = "stories.yml") -> StoryGraph:
    return read_story_file(write(tmp_path, text, name))


def read_error(tmp_path: Path, text: str) -> DataError:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_story_file(path)
    assert info.value.problem.path == str(path)
    return info.value


# --- events ----------------------------------------------------------------------------


def test_constants():
    assert ACTION_LISTEN == "action_listen"
    assert RULE_SNIPPET_ACTION == "..."


@pytest.mark.parametrize(
    "event",
    [
        UserUttered("greet"),
        UserUttered(None, "hi there", (StoryEntity("name", "Ann", start=0, end=3),)),
        UserUttered("faq", None, (), "faq/ask_name"),
        UserUttered("inform", None, (StoryEntity("city", "Rome", role="from", group="1"),)),
        ActionExecuted("utter_greet"),
        ActionExecuted(action_text="Hello!"),
        SlotSet("count", 3),
        SlotSet("items", ["a", {"b": [1, 2]}]),
        SlotSet("seen", None, bare=True),
        ActiveLoop("form"),
        ActiveLoop(None),
        UserUtteranceOr((UserUttered("affirm"), UserUttered("thank"))),
        SlotSetOr((SlotSet("a", True), SlotSet("b", None, bare=True))),
        ActionExecutionRejected("order_form"),
        LoopInterrupted(True),
    ],
)
def test_event_round_trip_and_hashable(event):
    data = event.as_dict()
    assert "event" in data
    restored = event_from_dict(json.loads(json.dumps(data)))
    assert restored == event
    assert hash(restored) == hash(event)


def test_event_from_dict_rejects_unknown_type():
    with pytest.raises(ValueError):
        event_from_dict({"event": "nope"})


def test_mapping_slot_values_are_frozen():
    event = SlotSet("info", {"b": 1, "a": [1, 2]})
    assert isinstance(event.value, FrozenDict)
    assert event.value == {"a": (1, 2), "b": 1}
    assert event.as_dict()["value"] == {"a": [1, 2], "b": 1}
    assert SlotSet("info", {"a": [1, 2], "b": 1}) == event


# --- step types ----------------------------------------------------------------------------


def test_every_story_step_type(tmp_path):
    graph = read(
        tmp_path,
        """
        version: "3.1"
        stories:
        - story: everything
          steps:
          - intent: greet
          - action: utter_greet
          - intent: inform
            entities:
            - city: Rome
            - cuisine
            - entity: date
              value: today
              role: arrival
              group: "2"
          - slot_was_set:
            - city: Rome
            - confirmed
          - action: restaurant_form
          - active_loop: restaurant_form
          - active_loop: null
          - user: 'I want [sushi](cuisine) in [Paris]{"entity": "city", "role": "to"}'
          - bot: Coming right up!
          - user: hello
            intent: greet
          - or:
            - intent: affirm
            - user: yes please
          - action: utter_bye
        """,
    )
    (step,) = graph.story_steps
    assert step.block_name == "everything"
    assert step.kind == "story"
    assert step.start_checkpoints == [] and step.end_checkpoints == []
    assert step.line == 3
    assert step.events == [
        UserUttered("greet"),
        ActionExecuted("utter_greet"),
        UserUttered(
            "inform",
            None,
            (
                StoryEntity("city", "Rome"),
                StoryEntity("cuisine"),
                StoryEntity("date", "today", role="arrival", group="2"),
            ),
        ),
        SlotSet("city", "Rome"),
        SlotSet("confirmed", None, bare=True),
        ActionExecuted("restaurant_form"),
        ActiveLoop("restaurant_form"),
        ActiveLoop(None),
        UserUttered(
            None,
            "I want sushi in Paris",
            (
                StoryEntity("cuisine", "sushi", start=7, end=12),
                StoryEntity("city", "Paris", role="to", start=16, end=21),
            ),
        ),
        ActionExecuted(action_text="Coming right up!"),
        UserUttered("greet", "hello"),
        UserUtteranceOr((UserUttered("affirm"), UserUttered(None, "yes please"))),
        ActionExecuted("utter_bye"),
    ]


def test_slot_was_set_value_types(tmp_path):
    graph = read(
        tmp_path,
        """
        stories:
        - story: slots
          steps:
          - slot_was_set:
            - flag: true
            - count: 2.5
            - nothing: null
            - names: [a, b]
            - info: {x: 1}
            - yes_string: yes
          - action: act
        """,
    )
    events = graph.story_steps[0].events
    assert events[:6] == [
        SlotSet("flag", True),
        SlotSet("count", 2.5),
        SlotSet("nothing", None),
        SlotSet("names", ("a", "b")),
        SlotSet("info", {"x": 1}),
        SlotSet("yes_string", "yes"),
    ]
    # An explicit null differs from a bare slot name.
    assert SlotSet("nothing", None) != SlotSet("nothing", None, bare=True)


def test_retrieval_intent_and_slash_prefix(tmp_path):
    graph = read(
        tmp_path,
        """
        stories:
        - story: faq
          steps:
          - intent: /greet
          - intent: chitchat/ask_name
          - action: utter_chitchat
        """,
    )
    greet, chitchat, _ = graph.story_steps[0].events
    assert greet == UserUttered("greet")
    assert chitchat == UserUttered("chitchat", None, (), "chitchat/ask_name")
    assert graph.intents_used() == {"greet", "chitchat"}


def test_or_of_slots(tmp_path):
    graph = read(
        tmp_path,
        """
        stories:
        - story: either slot
          steps:
          - intent: greet
          - or:
            - slot_was_set:
              - a: 1
            - slot_was_set:
              - b
          - action: act
        """,
    )
    assert graph.story_steps[0].events[1] == SlotSetOr((SlotSet("a", 1), SlotSet("b", None, bare=True)))
    assert graph.slot_names_set() == {"a", "b"}


def test_numeric_entity_group_becomes_text(tmp_path):
    graph = read(
        tmp_path,
        "stories:\n- story: s\n  steps:\n  - intent: a\n    entities:\n    - entity: e\n      group: 1\n",
    )
    assert graph.story_steps[0].events[0].entities == (StoryEntity("e", None, group="1"),)


def test_bad_annotation_json_reports_line(tmp_path):
    error = read_error(
        tmp_path,
        """
        stories:
        - story: s
          steps:
          - user: 'hi [there]{"entity": }'
        """,
    )
    assert error.problem.line == 4
    assert "invalid JSON" in str(error)


# --- checkpoints ---------------------------------------------------------------------------


def test_start_and_end_checkpoints(tmp_path):
    graph = read(
        tmp_path,
        """
        stories:
        - story: first
          steps:
          - intent: greet
          - action: utter_greet
          - checkpoint: greeted
        - story: second
          steps:
          - checkpoint: greeted
          - checkpoint: also
            slot_was_set:
            - vip: true
          - intent: bye
          - action: utter_bye
        """,
    )
    first, second = graph.story_steps
    assert first.start_checkpoints == [] and first.end_checkpoints == ["greeted"]
    assert second.start_checkpoints == ["greeted", "also"]
    assert second.checkpoint_conditions == {"also": {"vip": True}}
    assert second.end_checkpoints == []
    assert "vip" in graph.slot_names_set()


def test_middle_checkpoint_splits_block(tmp_path):
    graph = read(
        tmp_path,
        """
        stories:
        - story: split
          steps:
          - intent: greet
          - action: utter_greet
          - checkpoint: middle
          - checkpoint: middle_too
          - intent: bye
          - action: utter_bye
          - checkpoint: end
        """,
    )
    first, second = graph.story_steps
    assert first.block_name == second.block_name == "split"
    assert (first.part, second.part) == (0, 1)
    assert first.end_checkpoints == ["middle", "middle_too"]
    assert second.start_checkpoints == ["middle", "middle_too"]
    assert second.end_checkpoints == ["end"]
    assert second.events == [UserUttered("bye"), ActionExecuted("utter_bye")]
    assert second.line == 8
    assert graph.story_block_count() == 1
    assert len(graph.stories) == 2


# --- rules ---------------------------------------------------------------------------------


RULES = """
version: "3.1"
rules:
- rule: greet at start
  conversation_start: true
  steps:
  - intent: greet
  - action: utter_greet
- rule: submit form
  condition:
  - active_loop: restaurant_form
  - slot_was_set:
    - requested_slot: null
  steps:
  - action: restaurant_form
  - active_loop: null
  - action: utter_submit
  wait_for_user_input: false
- rule: either
  steps:
  - or:
    - intent: affirm
    - intent: thank
  - action: utter_ok
"""


def test_rule_fields(tmp_path):
    graph = read(tmp_path, RULES, "rules.yml")
    start, submit, either = graph.rules
    assert graph.stories == []
    assert (graph.story_block_count(), graph.rule_block_count()) == (0, 3)
    assert start.kind == "rule" and start.is_rule
    assert start.conversation_start is True and start.wait_for_user_input is True
    assert start.condition == []
    assert submit.conversation_start is False and submit.wait_for_user_input is False
    assert submit.condition == [ActiveLoop("restaurant_form"), SlotSet("requested_slot", None)]
    assert either.events[0] == UserUtteranceOr((UserUttered("affirm"), UserUttered("thank")))


def test_rule_tracker_events(tmp_path):
    start, submit, _ = read(tmp_path, RULES, "rules.yml").rules
    snippet = ActionExecuted(RULE_SNIPPET_ACTION)
    assert start.tracker_events() == [UserUttered("greet"), ActionExecuted("utter_greet")]
    assert submit.tracker_events() == [
        ActiveLoop("restaurant_form"),
        SlotSet("requested_slot", None),
        snippet,
        ActionExecuted("restaurant_form"),
        ActiveLoop(None),
        ActionExecuted("utter_submit"),
        snippet,
    ]


def test_stories_and_rules_in_one_file_with_other_sections(tmp_path):
    graph = read(
        tmp_path,
        """
        version: "3.1"
        nlu:
        - intent: greet
          examples: |
            - hi
        stories:
        - story: s
          steps:
          - intent: greet
          - action: utter_greet
        rules:
        - rule: r
          steps:
          - intent: bye
          - action: utter_bye
        """,
    )
    assert [s.kind for s in graph.story_steps] == ["story", "rule"]


def test_empty_sections_and_documents(tmp_path):
    assert read(tmp_path, "stories:\nrules:\n").is_empty()
    assert read_story_document(None, "x.yml").is_empty()
    assert read(tmp_path, "nlu: []\n").is_empty()


# --- graph queries -------------------------------------------------------------------------


def test_derived_queries(tmp_path):
    write(
        tmp_path,
        """
        stories:
        - story: s
          steps:
          - intent: request
            entities:
            - cuisine: thai
          - action: restaurant_form
          - active_loop: restaurant_form
          - slot_was_set:
            - cuisine: thai
          - active_loop: null
          - or:
            - intent: affirm
            - user: "[Bob](name) says yes"
          - bot: Great
        """,
    )
    write(
        tmp_path,
        """
        rules:
        - rule: r
          condition:
          - slot_was_set:
            - vip: true
          steps:
          - intent: greet
          - action: utter_greet
          wait_for_user_input: false
        """,
        "rules.yml",
    )
    graph = read_story_files([tmp_path / "stories.yml", tmp_path / "rules.yml"])
    assert graph.slot_names_set() == {"cuisine", "vip"}
    assert graph.intents_used() == {"request", "affirm", "greet"}
    assert graph.actions_used() == {"restaurant_form", "utter_greet"}
    assert graph.action_texts_used() == {"Great"}
    assert graph.forms_used() == {"restaurant_form"}
    assert graph.entities_used() == {"cuisine", "name"}
    assert graph.user_texts_used() == {"Bob says yes"}
    assert graph.has_e2e_steps()


def test_has_e2e_steps_false_without_text(tmp_path):
    graph = read(tmp_path, "stories:\n- story: s\n  steps:\n  - intent: a\n  - action: b\n")
    assert not graph.has_e2e_steps()
    assert not graph.is_empty()


def test_merge(tmp_path):
    a = read(tmp_path, "stories:\n- story: a\n  steps:\n  - intent: a\n")
    b = read(tmp_path, "rules:\n- rule: b\n  steps:\n  - intent: b\n")
    merged = a.merge(b)
    assert [s.block_name for s in merged.story_steps] == ["a", "b"]
    assert len(a.story_steps) == 1
    assert a.merge(None) == a


def test_test_stories_are_marked(tmp_path):
    path = write(tmp_path, "stories:\n- story: t\n  steps:\n  - user: hi\n    intent: greet\n", "test_stories.yml")
    assert is_test_stories_file(path)
    assert not is_test_stories_file(tmp_path / "stories.yml")
    graph = read_story_file(path, is_test=True)
    assert graph.story_steps[0].is_test
    assert not read_story_file(path).story_steps[0].is_test


# --- canonical form ------------------------------------------------------------------------


def test_round_trip_through_json(tmp_path):
    graph = read(tmp_path, RULES, "rules.yml").merge(
        read(
            tmp_path,
            """
            stories:
            - story: s
              steps:
              - checkpoint: c
                slot_was_set:
                - x: [1, 2]
              - user: "[hi](greeting)"
              - or:
                - slot_was_set:
                  - a
                - slot_was_set:
                  - b: {k: v}
              - checkpoint: m
              - bot: ok
            """,
        )
    )
    data = json.loads(json.dumps(graph.as_dict()))
    restored = StoryGraph.from_dict(data)
    assert restored == graph
    assert restored.as_dict() == graph.as_dict()
    assert restored.fingerprint() == graph.fingerprint()


def test_canonical_form_ignores_formatting(tmp_path):
    plain = read(
        tmp_path,
        """
        stories:
        - story: s
          steps:
          - intent: inform
            entities:
            - entity: city
              value: Rome
          - slot_was_set:
            - info: {a: 1, b: 2}
          - action: act
        """,
    )
    noisy = read(
        tmp_path,
        """
        # a comment
        stories:

            -   steps:   # steps first
                    -   entities:
                            -   value: Rome   # value before entity
                                entity: city
                        intent:   inform


                    -   slot_was_set: [ {info: {b: 2, a: 1}} ]
                    -   action:   "act"
                story: 's'
        """,
        "other.yml",
    )
    assert plain.as_dict() == noisy.as_dict()
    assert plain.fingerprint() == noisy.fingerprint()
    assert plain == noisy  # path/line are not compared


def test_story_step_from_dict_defaults():
    step = StoryStep.from_dict({"block_name": "x", "events": [{"event": "action", "action_name": "a"}]})
    assert step.kind == "story" and step.wait_for_user_input is True
    assert step.events == [ActionExecuted("a")]


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("stories:\n- steps:\n  - intent: a\n", 2, "no 'story:' name"),
        ("stories:\n- rule: r\n  steps:\n  - intent: a\n", 2, "'rule:' block found under 'stories:'"),
        ("rules:\n- story: s\n  steps:\n  - intent: a\n", 2, "'story:' block found under 'rules:'"),
        ("stories:\n- story:\n  steps:\n  - intent: a\n", 2, "name must be a non-empty string"),
        ("stories:\n- story: s\n", 2, "has no 'steps' list"),
        ("stories:\n- story: s\n  steps: intent\n", 3, "must be a list"),
        ("stories:\n- story: s\n  steps: []\n", 3, "empty 'steps' list"),
        ("stories:\n- story: s\n  steps:\n  - intent: a\n  - action\n", 5, "must be a mapping"),
        ("stories:\n- story: s\n  steps:\n  - intent: a\n  - acton: x\n", 5, "unknown step key 'acton'"),
        ("stories:\n- story: s\n  stepz: []\n  steps:\n  - intent: a\n", 3, "unknown key 'stepz'"),
        ("stories:\n- story: s\n  condition: []\n  steps:\n  - intent: a\n", 3, "only rules may have it"),
        ("stories:\n- story: s\n  steps:\n  - intent: [a, b]\n", 4, "'intent' must be a non-empty"),
        ("stories:\n- story: s\n  steps:\n  - intent: 3\n", 4, "'intent' must be a non-empty"),
        ("stories:\n- story: s\n  steps:\n  - intent: a\n    action: b\n", 4, "only one of"),
        ("stories:\n- story: s\n  steps:\n  - slot_was_set: x\n", 4, "'slot_was_set' must be"),
        ("stories:\n- story: s\n  steps:\n  - slot_was_set:\n", 4, "'slot_was_set' must be"),
        ("stories:\n- story: s\n  steps:\n  - slot_was_set:\n    - [a]\n", 5, "each 'slot_was_set' item"),
        ("stories:\n- story: s\n  steps:\n  - action:\n", 4, "'action' must be"),
        ("stories:\n- story: s\n  steps:\n  - active_loop: [a]\n", 4, "'active_loop' must be"),
        ("stories:\n- story: s\n  steps:\n  - bot: 1\n", 4, "'bot' must be"),
        ("stories:\n- story: s\n  steps:\n  - user: ''\n", 4, "'user' must be"),
        ("stories:\n- story: s\n  steps:\n  - intent: a\n    entities: x\n", 5, "'entities' must be a list"),
        ("stories:\n- story: s\n  steps:\n  - intent: a\n    entities:\n    - [x]\n", 6, "each entity"),
        ("stories:\n- story: s\n  steps:\n  - action: a\n    entities: []\n", 5, "'entities' belongs"),
        ("stories:\n- story: s\n  steps:\n  - intent: a\n    entities:\n    - entity: e\n      role: [r]\n", 6, "'role' must be"),
        ("stories:\n- story: s\n  steps:\n  - intent: a\n    entities:\n    - entity: e\n      rol: r\n", 7, "unknown entity key 'rol'"),
        ("stories:\n- story: s\n  steps:\n  - or: []\n", 4, "'or' must be"),
        ("stories:\n- story: s\n  steps:\n  - or:\n    - action: a\n", 5, "not allowed in an 'or'"),
        (
            "stories:\n- story: s\n  steps:\n  - or:\n    - intent: a\n    - slot_was_set:\n      - b\n",
            4,
            "cannot mix",
        ),
        ("stories:\n- story: s\n  steps:\n  - checkpoint: a\n", 2, "only checkpoints"),
        (
            "stories:\n- story: s\n  steps:\n  - intent: a\n  - checkpoint: c\n    slot_was_set:\n    - x: 1\n",
            5,
            "only checkpoints at the start",
        ),
        ("rules:\n- rule: r\n  steps:\n  - intent: a\n  - checkpoint: c\n", 5, "rules cannot contain 'checkpoint'"),
        ("rules:\n- rule: r\n  condition:\n  - action: a\n  steps:\n  - intent: a\n", 4, "not allowed in the condition"),
        ("rules:\n- rule: r\n  condition: x\n  steps:\n  - intent: a\n", 3, "'condition' of rule"),
        ("rules:\n- rule: r\n  conversation_start: maybe\n  steps:\n  - intent: a\n", 3, "true or false"),
        ("rules:\n- rule: r\n  wait_for_user_input: 0\n  steps:\n  - intent: a\n", 3, "true or false"),
        ("stories: {a: 1}\n", 1, "'stories' must be a list"),
        ("stories:\n- just a string\n", 2, "must be a mapping"),
        ('version: "9.0"\nstories: []\n', 1, "unsupported training data format version"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, text, line, fragment):
    error = read_error(tmp_path, text)
    assert error.problem.line == line, str(error)
    assert fragment in str(error)
    assert str(error).startswith(f"{tmp_path / 'stories.yml'}:{line}: ")


def test_document_that_is_not_a_mapping(tmp_path):
    with pytest.raises(DataError) as info:
        read_story_document(parse_yaml("- a\n- b\n", "x.yml"), "x.yml")
    assert info.value.problem.path == "x.yml"
    assert info.value.problem.line == 1


def test_yaml_syntax_error_is_data_error(tmp_path):
    error = read_error(tmp_path, "stories:\n- story: s\n  steps: [\n")
    assert "YAML syntax error" in str(error)
