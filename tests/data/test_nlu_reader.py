"""Reading the `nlu:` part of Rasa 3.x YAML files, and the data model it produces."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from trainkit.data.nlu_reader import read_nlu_document, read_nlu_file
from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.data.yaml_io import parse_yaml
from trainkit.errors import DataError


def write(tmp_path: Path, text: str, name: str = "nlu.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, name: str = "nlu.yml") -> TrainingData:
    return read_nlu_file(write(tmp_path, text, name))


def error_of(tmp_path: Path, text: str) -> DataError:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_nlu_file(path)
    assert info.value.problem.path == str(path)
    assert str(path) in str(info.value)
    return info.value


# --- intents and examples -------------------------------------------------------------


def test_block_examples(tmp_path):
    data = load(
        tmp_path,
        """
        version: "3.1"
        nlu:
        - intent: greet
          examples: |
            - hi
            -   hello there

            -  hey
        """,
    )
    assert [m.text for m in data.training_examples] == ["hi", "hello there", "hey"]
    assert all(m.intent == "greet" and m.is_nlu_example for m in data.training_examples)
    assert [m.line for m in data.training_examples] == [5, 6, 8]
    assert data.intents == ["greet"]


def test_list_examples_with_metadata(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - intent: greet
          metadata:
            sentiment: neutral
          examples:
          - text: |
              hi
            metadata:
              language: en
          - text: hallo
        """,
    )
    first, second = data.training_examples
    assert first.text == "hi"
    assert first.metadata_dict == {"intent": {"sentiment": "neutral"}, "example": {"language": "en"}}
    assert second.metadata_dict == {"intent": {"sentiment": "neutral"}}
    assert (first.line, second.line) == (6, 10)


def test_retrieval_intent(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - intent: faq/ask_name
          examples: |
            - what is your name?
        - intent: greet
          examples: |
            - hi
        """,
    )
    faq, greet = data.training_examples
    assert (faq.intent, faq.intent_response_key) == ("faq", "faq/ask_name")
    assert (greet.intent, greet.intent_response_key) == ("greet", None)
    assert data.retrieval_intents == ["faq"]
    assert data.intents == ["faq", "greet"]


def test_duplicates_dropped_but_same_text_under_two_intents_kept(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - intent: a
          examples: |
            - same
            - other
            - same
        - intent: b
          examples: |
            - same
        """,
    )
    assert [(m.text, m.intent) for m in data.training_examples] == [
        ("same", "a"),
        ("other", "a"),
        ("same", "b"),
    ]
    # the first occurrence is kept, with its own line
    assert data.training_examples[0].line == 4


def test_examples_differing_in_entities_or_metadata_are_not_duplicates(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - intent: a
          examples:
          - text: "[x](e) y"
          - text: "x y"
          - text: "x y"
            metadata: 1
          - text: "x y"
        """,
    )
    assert len(data.training_examples) == 3


def test_empty_example_is_not_an_nlu_example(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - intent: a
          examples: |
            - hi
            -
        """,
    )
    assert len(data.training_examples) == 2
    assert [m.text for m in data.nlu_examples] == ["hi"]


def test_file_without_nlu_and_empty_file(tmp_path):
    assert load(tmp_path, "version: '3.1'\nstories: []\n").is_empty()
    assert load(tmp_path, "", name="empty.yml").is_empty()
    assert load(tmp_path, "nlu:\n", name="null.yml").is_empty()


def test_responses_are_read(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - intent: faq/ask_name
          examples: |
            - name?
        responses:
          utter_faq/ask_name:
          - text: I am a bot
        """,
    )
    assert data.responses == {"utter_faq/ask_name": [{"text": "I am a bot"}]}


def test_read_nlu_document_uses_given_path_for_errors():
    doc = parse_yaml("nlu:\n- 3\n", "virtual.yml")
    with pytest.raises(DataError) as info:
        read_nlu_document(doc, "virtual.yml")
    assert str(info.value).startswith("virtual.yml:2:")


# --- entity annotations ----------------------------------------------------------------


def test_annotation_synonyms_are_recorded(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - intent: inform
          examples: |
            - [NYC](city:New York City)
            - [big apple]{"entity": "city", "value": "New York City"}
            - [Berlin](city)
            - [Paris]{"entity": "city", "value": "Paris"}
        """,
    )
    assert data.entity_synonyms == {"NYC": "New York City", "big apple": "New York City"}
    assert data.entity_types == ["city"]


# --- synonyms, regexes, lookups --------------------------------------------------------


def test_synonym_regex_lookup_blocks(tmp_path):
    data = load(
        tmp_path,
        """
        nlu:
        - synonym: credit
          examples: |
            - credit card account
            - credit account
        - regex: account_number
          examples: |
            - \\d{10,12}
        - regex: zip
          examples: |
            - \\d{5}
        - lookup: banks
          examples: |
            - JPMC
            - Comerica
        - lookup: banks
          examples: |
            - JPMC
            - Bank of America
        """,
    )
    assert data.entity_synonyms == {"credit card account": "credit", "credit account": "credit"}
    assert data.regex_features == [
        {"name": "account_number", "pattern": r"\d{10,12}"},
        {"name": "zip", "pattern": r"\d{5}"},
    ]
    assert data.lookup_tables == [
        {"name": "banks", "elements": ["JPMC", "Comerica", "Bank of America"]}
    ]
    assert not data.nlu_examples
    assert not data.contains_no_pure_nlu_data()
    assert not data.is_empty()


def test_lookup_from_text_file(tmp_path):
    (tmp_path / "lookups").mkdir()
    (tmp_path / "lookups" / "cities.txt").write_text("Berlin\n\n  Paris \nRome\n", encoding="utf-8")
    data = load(
        tmp_path,
        """
        nlu:
        - lookup: city
          examples: lookups/cities.txt
        """,
    )
    assert data.lookup_tables == [{"name": "city", "elements": ["Berlin", "Paris", "Rome"]}]


def test_lookup_file_missing(tmp_path):
    error = error_of(
        tmp_path,
        """
        nlu:
        - lookup: city
          examples: nowhere.txt
        """,
    )
    assert error.problem.line == 3
    assert "nowhere.txt" in error.problem.message


# --- version ---------------------------------------------------------------------------


def test_supported_version_accepted(tmp_path):
    assert len(load(tmp_path, 'version: "3.1"\nnlu:\n- intent: a\n  examples: "- x"\n').nlu_examples) == 1


def test_unsupported_version_rejected(tmp_path):
    error = error_of(tmp_path, 'version: "9.0"\nnlu: []\n')
    assert error.problem.line == 1
    assert "9.0" in error.problem.message


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("nlu:\n- just a string\n", 2, "must be a mapping"),
        ("nlu: {intent: a}\n", 1, "must be a list"),
        ("nlu:\n- intent: a\n  examples: |\n    - x\n- foo: bar\n", 5, "none of the keys"),
        ("nlu:\n- intent: a\n  exmaples: |\n    - x\n", 3, "'exmaples'"),
        ("nlu:\n- synonym: a\n  metadata: 1\n  examples: '- x'\n", 3, "'metadata'"),
        ("nlu:\n- intent: a\n", 2, "no 'examples'"),
        ("nlu:\n- intent: a\n  examples: 3\n", 3, "must be a block"),
        ("nlu:\n- intent: a\n  examples:\n", 3, "got null"),
        ("nlu:\n- synonym: a\n  examples:\n  - x\n", 3, "must be a block"),
        ("nlu:\n- regex: a\n", 2, "no 'examples'"),
        ("nlu:\n- intent: 12\n  examples: '- x'\n", 2, "must be a string"),
        ("nlu:\n- intent: [a, b]\n  examples: '- x'\n", 2, "must be a string"),
        ("nlu:\n- intent: ''\n  examples: '- x'\n", 2, "empty intent name"),
        ("nlu:\n- intent:\n  examples: '- x'\n", 2, "empty intent name"),
        ("nlu:\n- lookup: ''\n  examples: '- x'\n", 2, "empty lookup name"),
        ("nlu:\n- intent: a\n  examples:\n  - text: hi\n  - hello\n", 5, "must be a mapping"),
        ("nlu:\n- intent: a\n  examples:\n  - text: hi\n  - txt: hello\n", 5, "'txt'"),
        ("nlu:\n- intent: a\n  examples:\n  - metadata: 1\n", 4, "no 'text'"),
        ("nlu:\n- regex: r\n  examples: |\n    - ok\n    - (unclosed\n", 5, "invalid regular"),
    ],
)
def test_bad_structure(tmp_path, text, line, words):
    error = error_of(tmp_path, text)
    assert error.problem.line == line, error
    assert words in error.problem.message


def test_example_line_without_dash(tmp_path):
    error = error_of(
        tmp_path,
        """
        nlu:
        - intent: a
          examples: |
            - fine
            not an example
        """,
    )
    assert error.problem.line == 5
    assert "not an example" in error.problem.message


@pytest.mark.parametrize(
    ("example", "words"),
    [
        ("book [a table for two", "unclosed '['"),
        ("from [Berlin](city", "malformed entity annotation"),
        ("from [Berlin](city:)", "malformed entity annotation"),
        ("from [Berlin]{}", "malformed entity annotation"),
        ('from [Berlin]{"entity": city}', "invalid JSON"),
        ('from [Berlin]{"role": "from"}', 'no "entity" key'),
        ('from [Berlin]{"entity": "city", "role": 3}', '"role"'),
    ],
)
def test_malformed_annotation_reports_exact_line(tmp_path, example, words):
    text = "nlu:\n- intent: a\n  examples: |\n    - fine\n\n    - also fine\n    - " + example + "\n"
    error = error_of(tmp_path, text)
    assert error.problem.line == 7
    assert words in error.problem.message


def test_malformed_annotation_in_list_example(tmp_path):
    error = error_of(
        tmp_path,
        """
        nlu:
        - intent: a
          examples:
          - text: fine
          - text: "[broken(e)"
        """,
    )
    assert error.problem.line == 5


def test_malformed_annotation_after_comments_and_blank_lines(tmp_path):
    error = error_of(
        tmp_path,
        """
        # a comment
        version: "3.1"

        nlu:
        - intent: a   # trailing comment
          examples: |

            - one
            - two [x](
        """,
    )
    assert error.problem.line == 9


def test_yaml_syntax_error_is_data_error(tmp_path):
    error = error_of(tmp_path, "nlu:\n- intent: a\n  examples: [unclosed\n")
    assert "YAML syntax error" in error.problem.message


# --- data model ------------------------------------------------------------------------


def test_message_equality_ignores_location():
    a = Message.build("hi", "greet", path="a.yml", line=1)
    b = Message.build("hi", "greet", path="b.yml", line=9)
    assert a == b and hash(a) == hash(b)
    assert a != Message.build("hi", "bye")


def test_message_e2e_flags():
    assert Message(text="hi").is_e2e
    assert Message(action_text="Hello!").is_e2e
    assert not Message(action_name="utter_greet").is_e2e
    assert not Message.build("hi", "greet").is_e2e
    assert not Message(text="hi", intent="greet", action_name="x").is_nlu_example
    data = TrainingData([Message.build("hi", "greet"), Message(text="hello")])
    assert data.has_e2e_examples()
    assert [m.text for m in data.nlu_examples] == ["hi"]
    assert not TrainingData([Message.build("hi", "greet")]).has_e2e_examples()


def test_message_round_trip():
    message = Message.build(
        "fly to LA", "faq/fly", [Entity(7, 9, "Los Angeles", "city", role="to")], {"a": 1}, [2]
    )
    as_dict = message.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert "action_name" not in as_dict
    assert Message.from_dict(as_dict) == message


def test_training_data_as_dict_ignores_layout(tmp_path):
    one = load(
        tmp_path,
        """
        version: "3.1"
        nlu:
        - intent: greet
          examples: |
            - hi [Ann](name)
          metadata: {b: 1, a: 2}
        - synonym: x
          examples: "- y"
        """,
        name="one.yml",
    )
    two = load(
        tmp_path,
        """
        # same content, different layout
        nlu:

        - examples: |
            -    hi [Ann](name)
          metadata:
            a: 2
            b: 1
          intent: greet     # comment
        - examples: |
            - y
          synonym: x
        version: '3.1'
        """,
        name="two.yml",
    )
    assert one.as_dict() == two.as_dict()
    assert json.dumps(one.as_dict(), sort_keys=True) == json.dumps(two.as_dict(), sort_keys=True)
    assert TrainingData.from_dict(one.as_dict()) == one


def test_merge(tmp_path):
    first = load(
        tmp_path,
        """
        nlu:
        - intent: a
          examples: |
            - one
            - two
        - synonym: s
          examples: "- x"
        - lookup: names
          examples: |
            - Ann
        - regex: zip
          examples: "- \\\\d{5}"
        """,
        name="first.yml",
    )
    second = load(
        tmp_path,
        """
        nlu:
        - intent: a
          examples: |
            - two
            - three
        - synonym: t
          examples: "- x"
        - lookup: names
          examples: |
            - Ann
            - Bob
        - regex: area
          examples: "- \\\\d{3}"
        """,
        name="second.yml",
    )
    merged = first.merge(second)
    assert [m.text for m in merged.training_examples] == ["one", "two", "three"]
    assert merged.entity_synonyms == {"x": "t"}
    assert merged.lookup_tables == [{"name": "names", "elements": ["Ann", "Bob"]}]
    assert [r["name"] for r in merged.regex_features] == ["area", "zip"]
    assert merged.training_examples[1].path.endswith("first.yml")


def test_empty_and_pure_nlu_checks():
    assert TrainingData().is_empty()
    assert TrainingData().contains_no_pure_nlu_data()
    e2e_only = TrainingData([Message(text="hi"), Message(action_name="utter_x")])
    assert not e2e_only.is_empty()
    assert e2e_only.contains_no_pure_nlu_data()
    assert not TrainingData(entity_synonyms={"a": "b"}).contains_no_pure_nlu_data()


def test_entity_types_only_from_nlu_examples():
    data = TrainingData(
        [
            Message.build("hi Ann", "greet", [Entity(3, 6, "Ann", "name")]),
            Message(text="at Rome", entities=(Entity(3, 7, "Rome", "city"),)),
        ]
    )
    assert data.entity_types == ["name"]


def test_only_spaces_and_newlines_are_stripped(tmp_path):
    data = load(tmp_path, 'nlu:\n- intent: a\n  examples: "-   hi  \\n-\\tyo\\t"\n')
    assert [m.text for m in data.training_examples] == ["hi", "\tyo\t"]
