"""Domain loading, merging, derived views and consistency checks."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from trainkit.data.domain import DEFAULT_ACTIONS, DEFAULT_INTENTS, Domain, Slot
from trainkit.data.domain_checks import check_forms, check_responses, check_slot_mappings
from trainkit.data.domain_reader import load_domain, parse_domain
from trainkit.data.yaml_io import parse_yaml
from trainkit.errors import DataError, DataErrors


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, name: str = "domain.yml") -> Domain:
    return load_domain(write(tmp_path, name, text))


def load_error(tmp_path: Path, text: str) -> tuple[Path, DataError]:
    path = write(tmp_path, "domain.yml", text)
    with pytest.raises(DataError) as caught:
        load_domain(path)
    return path, caught.value


def assert_error_at(path: Path, error: DataError, line: int, *words: str) -> None:
    assert error.problem.path == str(path)
    assert error.problem.line == line, str(error)
    assert str(error).startswith(f"{path}:{line}: ")
    for word in words:
        assert word in str(error)


FULL = """
version: "3.1"
intents:
  - greet
  - request_restaurant:
      use_entities: []
  - inform:
      use_entities: [cuisine, city]
  - chitchat:
      ignore_entities:
        - city
  - everything:
      use_entities: true
entities:
  - cuisine
  - city:
      roles: [departure, destination]
      groups: [first]
  - number:
      influence_conversation: false
slots:
  cuisine:
    type: text
    mappings:
    - type: from_entity
      entity: cuisine
      intent: [inform]
      role: departure
  happy:
    type: bool
    initial_value: false
    mappings:
    - type: from_intent
      intent: affirm
      value: true
      conditions:
      - active_loop: restaurant_form
        requested_slot: happy
  size:
    type: categorical
    values: [Small, medium, Large]
    mappings:
    - type: from_trigger_intent
      intent: request_restaurant
      value: small
  people:
    type: float
    min_value: 1
    max_value: 20
    mappings:
    - type: from_text
      not_intent: chitchat
  history:
    type: list
    influence_conversation: false
    mappings:
    - type: custom
      action: action_fill_history
  anything:
    type: any
  plain:
    type: text
    mappings: []
responses:
  utter_greet:
  - text: "Hello {name}!"
    buttons:
    - title: great
      payload: /mood_great
  - text: "Hi there"
    channel: slack
    metadata:
      rich: true
  - image: https://example.com/cat.png
  - custom:
      blocks: []
  - text: "Hello again"
    condition:
    - type: slot
      name: happy
      value: true
  utter_ask_happy:
  - text: Are you happy?
  utter_chitchat/ask_name:
  - text: I am a bot.
  utter_chitchat/ask_weather:
  - text: Sunny.
  utter_faq/opening_hours:
  - text: Nine to five.
actions:
  - action_fill_history
  - action_search:
      send_domain: true
  - utter_greet
forms:
  restaurant_form:
    ignored_intents: chitchat
    required_slots:
      - cuisine
      - happy
e2e_actions:
  - "I am a bot text"
session_config:
  session_expiration_time: 30
config:
  store_entities_as_slots: false
"""


@pytest.fixture
def full(tmp_path: Path) -> Domain:
    return load(tmp_path, FULL)


# ----------------------------------------------------------------------- sections


def test_intents_keep_written_order_and_properties(full: Domain) -> None:
    assert full.intents == ["greet", "request_restaurant", "inform", "chitchat", "everything"]
    assert full.intent_properties == {
        "request_restaurant": {"use_entities": []},
        "inform": {"use_entities": ["cuisine", "city"]},
        "chitchat": {"ignore_entities": ["city"]},
        "everything": {"use_entities": True},
    }


def test_used_entities_follow_use_and_ignore(full: Domain) -> None:
    assert full.used_entities("greet") == ["cuisine", "city", "number"]
    assert full.used_entities("request_restaurant") == []
    assert full.used_entities("inform") == ["cuisine", "city"]
    assert full.used_entities("chitchat") == ["cuisine", "number"]


def test_all_intents_add_rasa_defaults_without_touching_intents(full: Domain) -> None:
    assert full.all_intents == [*full.intents, *DEFAULT_INTENTS]
    assert "restart" not in full.intents


def test_default_intent_written_by_user_is_not_repeated(tmp_path: Path) -> None:
    domain = load(tmp_path, "intents: [greet, nlu_fallback, restart]\n")
    assert domain.intents == ["greet", "nlu_fallback", "restart"]
    assert domain.all_intents == [
        "greet",
        "nlu_fallback",
        "restart",
        "back",
        "out_of_scope",
        "session_start",
    ]


def test_entities_with_roles_groups_and_influence(full: Domain) -> None:
    assert full.entities == ["cuisine", "city", "number"]
    assert full.entity_roles == {"city": ["departure", "destination"]}
    assert full.entity_groups == {"city": ["first"]}
    assert full.entity_influence_conversation == {"number": False}


def test_every_slot_type(full: Domain) -> None:
    slots = {slot.name: slot for slot in full.slots}
    assert full.slot_names == ["cuisine", "happy", "size", "people", "history", "anything", "plain"]
    assert slots["cuisine"].type == "text" and slots["cuisine"].influence_conversation
    assert slots["happy"].type == "bool" and slots["happy"].initial_value is False
    assert slots["size"].values == ["Small", "medium", "Large"]
    assert (slots["people"].min_value, slots["people"].max_value) == (1.0, 20.0)
    assert slots["history"].type == "list" and not slots["history"].influence_conversation
    assert slots["anything"].type == "any" and not slots["anything"].influence_conversation
    assert slots["anything"].mappings == []
    assert slots["plain"].mappings == []
    assert full.slot("people") is slots["people"]
    assert full.slot("missing") is None


def test_float_slot_defaults(tmp_path: Path) -> None:
    domain = load(tmp_path, "slots:\n  f:\n    type: float\n    mappings: [{type: custom}]\n")
    assert (domain.slots[0].min_value, domain.slots[0].max_value) == (0.0, 1.0)


def test_every_mapping_type_is_kept(full: Domain) -> None:
    types = [mapping["type"] for slot in full.slots for mapping in slot.mappings]
    assert set(types) == {
        "from_entity",
        "from_intent",
        "from_trigger_intent",
        "from_text",
        "custom",
    }
    happy = full.slot("happy")
    assert happy.mappings[0]["conditions"] == [
        {"active_loop": "restaurant_form", "requested_slot": "happy"}
    ]
    assert check_slot_mappings(full) == []


def test_responses_with_variations(full: Domain) -> None:
    greet = full.responses["utter_greet"]
    assert len(greet) == 5
    assert greet[0]["buttons"] == [{"title": "great", "payload": "/mood_great"}]
    assert greet[1]["channel"] == "slack" and greet[1]["metadata"] == {"rich": True}
    assert greet[2] == {"image": "https://example.com/cat.png"}
    assert greet[3] == {"custom": {"blocks": []}}
    assert greet[4]["condition"] == [{"type": "slot", "name": "happy", "value": True}]
    assert check_responses(full) == []


def test_retrieval_intents_come_from_response_names(full: Domain) -> None:
    assert full.retrieval_intents == ["chitchat", "faq"]


def test_actions_as_strings_and_mappings(full: Domain) -> None:
    assert full.actions == ["action_fill_history", "action_search", "utter_greet"]
    assert full.action_properties == {"action_search": {"send_domain": True}}


def test_forms_e2e_session_and_config(full: Domain) -> None:
    assert full.forms == {
        "restaurant_form": {"required_slots": ["cuisine", "happy"], "ignored_intents": ["chitchat"]}
    }
    assert full.form_names == ["restaurant_form"]
    assert full.action_texts == ["I am a bot text"]
    assert full.session_config == {
        "session_expiration_time": 30,
        "carry_over_slots_to_new_session": True,
    }
    assert full.store_entities_as_slots is False
    assert check_forms(full) == []


def test_session_config_defaults(tmp_path: Path) -> None:
    domain = load(tmp_path, "intents: [greet]\n")
    assert domain.session_config == {
        "session_expiration_time": 60,
        "carry_over_slots_to_new_session": True,
    }
    assert domain.store_entities_as_slots is True


def test_rasa_2_form_syntax_takes_slot_names(tmp_path: Path) -> None:
    domain = load(
        tmp_path,
        """
        forms:
          old_form:
            required_slots:
              cuisine:
              - type: from_entity
                entity: cuisine
              num_people:
              - type: from_entity
                entity: number
          older_form:
            cuisine:
            - type: from_entity
              entity: cuisine
          empty_form: {}
          bare_form:
        """,
    )
    assert domain.forms == {
        "old_form": {"required_slots": ["cuisine", "num_people"]},
        "older_form": {"required_slots": ["cuisine"]},
        "empty_form": {"required_slots": []},
        "bare_form": {"required_slots": []},
    }


def test_action_names_follow_rasa_order(full: Domain) -> None:
    names = full.action_names_or_texts
    assert names[: len(DEFAULT_ACTIONS)] == list(DEFAULT_ACTIONS)
    assert names[len(DEFAULT_ACTIONS) :] == [
        "action_fill_history",
        "action_search",
        "utter_greet",
        # responses not already listed as actions, sorted
        "utter_ask_happy",
        "utter_chitchat/ask_name",
        "utter_chitchat/ask_weather",
        "utter_faq/opening_hours",
        # the actions Rasa adds for the retrieval intents
        "utter_chitchat",
        "utter_faq",
        "restaurant_form",
        "I am a bot text",
    ]
    assert len(names) == len(set(names))


def test_user_overriding_default_action_is_not_duplicated(tmp_path: Path) -> None:
    domain = load(
        tmp_path, "actions: [action_session_start, my_action, my_form]\nforms:\n  my_form: {}\n"
    )
    names = domain.action_names_or_texts
    assert names.count("action_session_start") == 1
    assert names.index("action_session_start") == 2
    assert names[len(DEFAULT_ACTIONS) :] == ["my_action", "my_form"]


def test_empty_domain(tmp_path: Path) -> None:
    assert load(tmp_path, "").is_empty()
    assert load(tmp_path, 'version: "3.1"\n', "v.yml").is_empty()
    assert Domain().is_empty()
    assert not load(tmp_path, "intents: [greet]\n", "i.yml").is_empty()
    assert not load(tmp_path, "session_config:\n  session_expiration_time: 0\n", "s.yml").is_empty()


# ---------------------------------------------------------------- serialisation


def test_as_dict_round_trip_through_json(full: Domain) -> None:
    data = json.loads(json.dumps(full.as_dict()))
    again = Domain.from_dict(data)
    assert again == full
    assert again.as_dict() == full.as_dict()
    assert again.action_names_or_texts == full.action_names_or_texts


def test_as_dict_is_stable_and_sorted_where_order_does_not_matter(full: Domain) -> None:
    data = full.as_dict()
    assert list(data["responses"]) == sorted(full.responses)
    assert list(data["intent_properties"]) == sorted(full.intent_properties)
    assert data["intents"] == full.intents
    assert [form["name"] for form in data["forms"]] == ["restaurant_form"]
    assert json.dumps(data) == json.dumps(full.as_dict())


def test_empty_round_trip_stays_empty() -> None:
    assert Domain.from_dict(Domain().as_dict()).is_empty()


def test_slot_round_trip() -> None:
    slot = Slot("size", "categorical", [{"type": "custom"}], True, "S", ["S", "M"])
    assert Slot.from_dict(slot.as_dict()) == slot


# ----------------------------------------------------------------------- merging

FIRST = """
intents: [greet, inform]
entities: [city]
slots:
  shared:
    type: text
    mappings: [{type: custom}]
responses:
  utter_greet:
  - text: first
actions: [action_a]
forms:
  a_form:
    required_slots: [shared]
"""

SECOND = """
intents:
  - inform:
      use_entities: []
  - bye
entities:
  - city:
      roles: [from]
  - date
slots:
  shared:
    type: bool
    mappings: [{type: custom}]
  other:
    type: any
responses:
  utter_greet:
  - text: second
  utter_bye:
  - text: bye
actions: [action_b, action_a]
e2e_actions: [hello]
session_config:
  session_expiration_time: 5
"""


def test_directory_is_merged_in_sorted_order_first_wins(tmp_path: Path) -> None:
    write(tmp_path, "b/second.yaml", SECOND)
    write(tmp_path, "a_first.yml", FIRST)
    write(tmp_path, "config.yml", "language: en\npipeline: []\n")
    write(
        tmp_path,
        "data/nlu.yml",
        "nlu:\n- intent: greet\n  examples: |\n    - hi\nresponses:\n  utter_faq/x:\n  - text: x\n",
    )
    write(tmp_path, "notes.txt", "not yaml: [")
    domain = load_domain(tmp_path)
    assert domain.intents == ["greet", "inform", "bye"]
    assert domain.intent_properties == {"inform": {"use_entities": []}}
    assert domain.entities == ["city", "date"]
    assert domain.entity_roles == {"city": ["from"]}
    assert domain.slot_names == ["shared", "other"]
    assert domain.slot("shared").type == "text"
    assert domain.responses["utter_greet"] == [{"text": "first"}]
    assert list(domain.responses) == ["utter_greet", "utter_bye"]
    assert domain.actions == ["action_a", "action_b"]
    assert domain.action_texts == ["hello"]
    assert domain.forms == {"a_form": {"required_slots": ["shared"]}}
    assert domain.session_config["session_expiration_time"] == 5
    path, line = domain.location("slots", "shared")
    assert path == str(tmp_path / "a_first.yml") and line == 4
    assert domain.location("slots", "other")[0] == str(tmp_path / "b" / "second.yaml")


def test_merge_method_matches_directory_merge(tmp_path: Path) -> None:
    first = load(tmp_path, FIRST, "1.yml")
    second = load(tmp_path, SECOND, "2.yml")
    merged = first.merge(second)
    assert merged == load_domain(tmp_path)
    assert first.merge(Domain()) == first
    assert Domain().merge(first) == first
    # the originals are untouched
    assert first.slot_names == ["shared"]


def test_written_session_config_wins_over_later_files(tmp_path: Path) -> None:
    first = parse_domain(parse_yaml("session_config:\n  session_expiration_time: 1\n", "a"), "a")
    second = parse_domain(parse_yaml("session_config:\n  session_expiration_time: 2\n", "b"), "b")
    assert first.merge(second).session_config["session_expiration_time"] == 1


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_domain(tmp_path / "nope.yml")


# ------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("intents: [greet]\nstories: []\n", 2, ["'stories'", "unknown top-level key"]),
        ('version: "9.9"\nintents: [greet]\n', 1, ["version"]),
        ("intents:\n  greet: {}\n", 1, ["intents must be a list"]),
        ("intents:\n- greet: {}\n", 2, ["'greet'", "no properties"]),
        ("entities:\n- city: {}\n", 2, ["'city'", "no properties"]),
        ("intents:\n- greet\n- greet\n", 3, ["'greet'", "more than once"]),
        ("intents:\n- greet:\n    use_entity: []\n", 3, ["'use_entity'", "'greet'"]),
        ("intents:\n- greet:\n", 2, ["'greet'", "no properties"]),
        ("intents:\n- greet:\n  use_entities: []\n", 2, ["exactly one key", "indentation"]),
        ("intents:\n- 12\n", 2, ["must be a non-empty string"]),
        ("entities:\n- city:\n    role: [a]\n", 3, ["'role'", "'city'"]),
        ("entities:\n- city:\n    roles: from\n", 3, ["roles", "must be a list"]),
        ("entities:\n- city:\n    roles: [null]\n", 3, ["roles", "non-empty string"]),
        ("slots:\n  s:\n    type: number\n", 3, ["unknown type 'number'", "'s'"]),
        ("slots:\n  s:\n    type: unfeaturized\n", 3, ["unfeaturized", "type any"]),
        ("slots:\n  s:\n    mappings: []\n", 2, ["no type"]),
        ("slots:\n  s:\n", 2, ["needs at least a type"]),
        ("slots:\n  s:\n    type: text\n    auto_fill: false\n", 4, ["auto_fill"]),
        (
            "slots:\n  s:\n    type: text\n    influence_conversaton: false\n",
            4,
            ["influence_conversaton"],
        ),
        ("slots:\n  s:\n    type: any\n    influence_conversation: true\n", 4, ["type any"]),
        ("slots:\n  s:\n    type: text\n    influence_conversation: maybe\n", 4, ["true or false"]),
        ("slots:\n  s:\n    type: categorical\n", 2, ["needs a list of values"]),
        (
            "slots:\n  s:\n    type: categorical\n    values: a\n",
            4,
            ["values of slot 's' must be a list"],
        ),
        ("slots:\n  s:\n    type: text\n    values: [a]\n", 4, ["only allowed for categorical"]),
        ("slots:\n  s:\n    type: float\n    max_value: high\n", 4, ["must be a number"]),
        ("slots:\n  s:\n    type: float\n    min_value: 5\n    max_value: 1\n", 5, ["below"]),
        ("slots:\n  s:\n    type: text\n    min_value: 1\n", 4, ["only allowed for float"]),
        (
            "slots:\n  s:\n    type: text\n    mappings:\n      type: custom\n",
            4,
            ["mappings of slot 's' must be a list"],
        ),
        ("slots:\n  s:\n    type: text\n    mappings:\n    - custom\n", 5, ["each mapping"]),
        ("slots: [a, b]\n", 1, ["slots must be a mapping"]),
        ("responses:\n  utter_x:\n    text: hi\n", 2, ["'utter_x'", "must be a list"]),
        ("responses:\n  utter_x:\n", 2, ["'utter_x'", "null"]),
        ("responses:\n  utter_x:\n  - hi there\n", 3, ["each variation", "'utter_x'"]),
        ("actions:\n  action_a: {}\n", 1, ["actions must be a list"]),
        ("actions:\n- action_a:\n    send_domian: true\n", 3, ["'send_domian'"]),
        ("actions:\n- action_a:\n    send_domain: yes\n", 3, ["true or false"]),
        ("forms:\n- my_form\n", 1, ["Rasa 1"]),
        ("forms:\n  f:\n    required_slots: 3\n", 3, ["required_slots"]),
        ("e2e_actions: text\n", 1, ["e2e_actions must be a list"]),
        ("intents:\n- greet:\n    use_entities: city\n", 3, ["use_entities", "must be a list"]),
        ("session_config:\n  session_expiry: 3\n", 2, ["'session_expiry'"]),
        ("session_config:\n  session_expiration_time: -1\n", 2, ["negative"]),
        ("session_config:\n  carry_over_slots_to_new_session: 1\n", 2, ["true or false"]),
        ("config:\n  store_entities_as_slot: true\n", 2, ["'store_entities_as_slot'"]),
        ("- greet\n", 1, ["domain file must be a mapping"]),
        ("intents: [greet\n", 2, ["YAML syntax error"]),
    ],
)
def test_bad_input_names_file_and_line(
    tmp_path: Path, text: str, line: int, words: list[str]
) -> None:
    path, error = load_error(tmp_path, text)
    assert_error_at(path, error, line, *words)


def test_bad_file_inside_directory_is_named(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "intents: [greet]\n")
    bad = write(tmp_path, "sub/b.yml", "intents: [bye]\nslots:\n  s:\n    type: nope\n")
    with pytest.raises(DataError) as caught:
        load_domain(tmp_path)
    assert_error_at(bad, caught.value, 4, "'nope'")


# ------------------------------------------------------------ consistency checks


def test_check_forms_reports_unknown_required_slot(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "domain.yml",
        """
        slots:
          known:
            type: text
        forms:
          f:
            required_slots: [known, missing]
        """,
    )
    problems = check_forms(load_domain(path))
    assert len(problems) == 1
    assert problems[0].path == str(path) and problems[0].line == 5
    assert "'missing'" in problems[0].message and problems[0].level == "warning"


def test_check_slot_mappings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "domain.yml",
        """
        entities: [city]
        slots:
          s:
            type: text
            mappings:
            - type: from_entity
              entity: city
              conditions:
              - active_loop: ghost_form
            - type: from_entity
            - type: from_intent
              intent: affirm
            - type: from_trigger_intent
              intent: go
            - type: from_magic
            - entity: city
            - type: from_entity
              entity: town
            - type: from_text
              conditions:
              - active_loop: real_form
                requested_slot: nowhere
            - type: from_text
              conditions:
              - active_loop: real_form
                requested_slot: s
            - type: custom
              extra: 1
            - type: from_text
              conditions:
              - active_loop: null
        forms:
          real_form:
            required_slots: []
        """,
    )
    problems = check_slot_mappings(load_domain(path))
    found = [(p.line, p.level, p.message) for p in problems]
    assert all(p.path == str(path) for p in problems)

    def at(line: int) -> list[tuple[str, str]]:
        return [(level, message) for ln, level, message in found if ln == line]

    assert "unknown form 'ghost_form'" in at(6)[0][1]
    assert "has no 'entity'" in at(10)[0][1]
    assert "has no 'value'" in at(11)[0][1]
    assert "has no 'value'" in at(13)[0][1]
    assert "unknown type 'from_magic'" in at(15)[0][1]
    assert "has no type" in at(16)[0][1]
    assert "entity 'town'" in at(17)[0][1]
    assert "unknown slot 'nowhere'" in at(19)[0][1]
    assert at(23) == [
        (
            "warning",
            "mapping 9 of slot 's' is conditioned on form 'real_form' requesting 's', "
            "which is not one of that form's required_slots",
        )
    ]
    assert at(27)[0][0] == "warning" and "'extra'" in at(27)[0][1]
    assert at(29) == []
    assert len(found) == 10


def test_check_responses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "domain.yml",
        """
        slots:
          happy:
            type: bool
        responses:
          utter_ok:
          - text: fine
          - buttons:
            - title: a
              payload: /a
          - attachment: file.pdf
          - elements: []
            quick_replies: [{title: x}]
          utter_bad:
          - channel: slack
          - text: ""
          - text: hi
            buttons: nope
          - text: hi
            condition:
            - type: slot
              name: sad
              value: true
          - text: hi
            condition: happy
          utter_none: []
        """,
    )
    problems = check_responses(load_domain(path))
    found = [(p.line, p.message) for p in problems]
    assert all(p.path == str(path) and p.level == "error" for p in problems)
    assert [line for line, _ in found] == [14, 15, 16, 18, 23, 25]
    assert "no content" in found[0][1] and "no content" in found[1][1]
    assert "buttons" in found[2][1]
    assert "unknown slot 'sad'" in found[3][1]
    assert "must be a list" in found[4][1]
    assert "no variations" in found[5][1]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("rasa.shared.core.slots.TextSlot", "text"),
        ("rasa.shared.core.slots.BooleanSlot", "bool"),
        ("rasa.shared.core.slots.FloatSlot", "float"),
        ("rasa.shared.core.slots.ListSlot", "list"),
        ("rasa.shared.core.slots.AnySlot", "any"),
        ("rasa.shared.core.slots.CategoricalSlot", "categorical"),
    ],
)
def test_dotted_builtin_slot_classes_are_the_builtin_types(tmp_path, recwarn, written, expected):
    values = "    values: [a, b]\n" if expected == "categorical" else ""
    influence = "    influence_conversation: false\n" if expected == "any" else ""
    domain = load(tmp_path, f"slots:\n  s:\n    type: {written}\n{values}{influence}    mappings: []\n")
    assert domain.slot("s").type == expected
    assert not recwarn.list


def test_dotted_custom_slot_class_is_accepted_as_any_with_one_warning(tmp_path):
    text = (
        "slots:\n  budget:\n    type: addons.slots.MoneySlot\n    influence_conversation: true\n"
        "    mappings: [{type: custom}]\n"
    )
    with pytest.warns(UserWarning) as caught:
        domain = load(tmp_path, text)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "domain.yml:3" in message and "'addons.slots.MoneySlot'" in message and "'any'" in message
    slot = domain.slot("budget")
    assert slot.type == "any" and not slot.influence_conversation


def test_every_broken_slot_and_response_is_reported_in_one_run(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "domain.yml",
        """
        intents: [greet]
        slots:
          a:
            type: number
          b:
            type: text
          c:
            mappings: []
        responses:
          utter_ok: [{text: ok}]
          utter_bad: null
        storys: []
        """,
    )
    with pytest.raises(DataErrors) as caught:
        load_domain(path)
    assert sorted(p.line for p in caught.value.problems) == [4, 7, 11, 12]
