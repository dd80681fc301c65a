"""The one inline-annotation grammar, and that NLU examples and story turns both use it."""

from __future__ import annotations

import textwrap

import pytest

from trainkit.data.annotations import AnnotationError, parse_annotated_text
from trainkit.data.events import StoryEntity
from trainkit.data.nlu_reader import read_nlu_document
from trainkit.data.story_reader import read_story_document
from trainkit.data.training_data import Entity
from trainkit.data.yaml_io import parse_yaml


def test_plain_annotation_offsets():
    parsed = parse_annotated_text("fly from [Berlin](city) to [San Francisco](city) now")
    assert parsed.text == "fly from Berlin to San Francisco now"
    assert parsed.entities == (Entity(9, 15, "Berlin", "city"), Entity(19, 32, "San Francisco", "city"))
    for e in parsed.entities:
        assert parsed.text[e.start : e.end] == e.value


def test_synonym_shorthand_keeps_the_value_as_written():
    assert parse_annotated_text("I live in [NYC](city:New York City)").entities == (
        Entity(10, 13, "New York City", "city"),
    )
    # as in Rasa, nothing is trimmed
    assert parse_annotated_text("to [new york](city: NYC)").entities == (Entity(3, 11, " NYC", "city"),)


def test_json_annotation_with_role_group_value():
    parsed = parse_annotated_text(
        'from [LA]{"entity": "city", "role": "departure", "group": "1", "value": "Los Angeles"}'
        ' to [Paris]{"entity": "city", "role": "destination"}'
    )
    assert parsed.text == "from LA to Paris"
    assert parsed.entities == (
        Entity(5, 7, "Los Angeles", "city", role="departure", group="1"),
        Entity(11, 16, "Paris", "city", role="destination"),
    )
    assert parsed.entities[1].as_dict() == {
        "start": 11, "end": 16, "value": "Paris", "entity": "city", "role": "destination",
    }


def test_list_form_puts_several_entities_on_the_same_words():
    parsed = parse_annotated_text('fly to [LA][{"entity": "city", "role": "to"}, {"entity": "place"}] now')
    assert parsed.text == "fly to LA now"
    assert parsed.entities == (Entity(7, 9, "LA", "city", role="to"), Entity(7, 9, "LA", "place"))


def test_brackets_that_are_not_annotations_stay_text():
    parsed = parse_annotated_text("transfer from [country]? and [x] [y](e)")
    assert parsed.text == "transfer from [country]? and [x] y"
    assert parsed.entities == (Entity(33, 34, "y", "e"),)


@pytest.mark.parametrize(
    "example",
    ["a [b", '[b]{"entity": }', '[b]{"value": "x"}', '[b][{"entity": 3}]', "[b](", '[b]{"entity": ""}'],
)
def test_malformed_annotations_are_refused(example):
    with pytest.raises(AnnotationError):
        parse_annotated_text(example)


EXAMPLES = [
    "to [new york](city: NYC)",
    'fly to [LA][{"entity": "city", "role": "to"}, {"entity": "place"}] now',
    '[big apple]{"entity": "city", "value": "New York City", "group": "g"} please',
]


@pytest.mark.parametrize("example", EXAMPLES)
def test_nlu_examples_and_story_user_turns_parse_alike(example):
    quoted = example.replace("'", "''")
    nlu = read_nlu_document(
        parse_yaml(f"nlu:\n- intent: inform\n  examples: |\n    - {example}\n", "nlu.yml"), "nlu.yml"
    )
    stories = read_story_document(
        parse_yaml(
            textwrap.dedent(f"""
            stories:
            - story: s
              steps:
              - user: '{quoted}'
                intent: inform
            """),
            "stories.yml",
        ),
        "stories.yml",
    )
    message = nlu.nlu_examples[0]
    turn = stories.story_steps[0].events[0]
    assert turn.text == message.text
    assert turn.entities == tuple(
        StoryEntity(e.entity, e.value, e.role, e.group, e.start, e.end) for e in message.entities
    )
