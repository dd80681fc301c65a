"""Property-based: whatever a project file or config holds, the outcome is a result or
a trainkit error, never another exception.

The runs are bounded (a fixed number of examples, no deadline flakiness) so the suite
stays fast; a failure prints the smallest document that escaped.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainkit.data.config import load_config
from trainkit.data.domain_reader import load_domain
from trainkit.data.nlu_reader import read_nlu_file
from trainkit.data.story_reader import read_story_file
from trainkit.engine.component import check_options, component_config, registered_components
from trainkit.engine.recipe import compile_recipe
from trainkit.errors import TrainkitError

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.integers(min_value=10**300),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
def _items(keys: list[str], required: dict[str, Any] | None = None) -> st.SearchStrategy:
    """Mappings with some of `keys` (values of any shape), plus fixed `required` ones."""
    fixed = {key: st.just(value) for key, value in (required or {}).items()}
    optional = {key: values for key in keys}
    return st.fixed_dictionaries(fixed, optional=optional)


examples_text = st.lists(
    st.sampled_from(["hi", "[latte](drink)", '[x]{"entity": "e", "role": 3}', "[a](", "- b", "[]()"]),
    max_size=4,
).map(lambda lines: "".join(f"- {line}\n" for line in lines))
nlu_item = st.one_of(
    _items(["examples", "metadata"], {"intent": "greet"}),
    st.fixed_dictionaries({"intent": values, "examples": st.one_of(examples_text, values)}),
    _items(["examples"], {"synonym": "latte"}),
    _items(["examples"], {"regex": "zip"}),
    _items(["examples"], {"lookup": "city"}),
    st.dictionaries(st.sampled_from(["intent", "synonym", "regex", "lookup", "examples", "metadata"]), values),
)
step = st.one_of(
    _items(["entities", "metadata", "user"], {"intent": "greet"}),
    _items([], {"action": "utter_greet"}),
    st.fixed_dictionaries({"slot_was_set": values}),
    st.fixed_dictionaries({"active_loop": values}),
    st.fixed_dictionaries({"or": values}),
    st.fixed_dictionaries({"checkpoint": values}),
    st.dictionaries(st.sampled_from(["intent", "action", "user", "entities", "slot_was_set", "or"]), values),
)
story = st.one_of(
    st.fixed_dictionaries({"story": st.text(max_size=8), "steps": st.lists(step, max_size=5)}),
    st.fixed_dictionaries({"rule": st.text(max_size=8), "steps": st.lists(step, max_size=5)},
                          optional={"condition": st.lists(step, max_size=2), "conversation_start": values}),
    st.dictionaries(st.sampled_from(["story", "rule", "steps", "condition"]), values),
)
DOMAIN_KEYS = ["intents", "entities", "slots", "responses", "actions", "forms", "session_config", "version"]
documents = st.one_of(
    st.fixed_dictionaries({"version": st.just("3.1"), "nlu": st.lists(nlu_item, max_size=5)}),
    st.fixed_dictionaries({"version": st.just("3.1"), "stories": st.lists(story, max_size=3)},
                          optional={"rules": st.lists(story, max_size=3)}),
    st.dictionaries(st.sampled_from(DOMAIN_KEYS), values, max_size=5),
    st.fixed_dictionaries({"version": st.just("3.1"), "intents": st.lists(values, max_size=3),
                           "responses": st.dictionaries(st.text(max_size=10), values, max_size=3),
                           "slots": st.dictionaries(st.text(max_size=10), values, max_size=3)}),
    st.dictionaries(st.sampled_from(["pipeline", "policies", "language", "recipe", "assistant_id"]), values),
)
fragments = st.lists(
    st.sampled_from([
        "- ", ": ", "&a ", "*a", "[", "]", "{", "}", "|\n", ">\n", "  ", "\n", "'", '"', "#", "!!str ",
        "<<: *a", "---\n", "intent: greet", "examples: |\n    - hi\n", "version: '3.1'", "\t", "\\x00",
        "9" * 4400, "1e999", "0x", ".nan",
    ]),
    max_size=30,
).map("".join)


def _survives(read: Any, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(path)
    except TrainkitError:
        pass


READERS = [read_nlu_file, load_domain, read_story_file, load_config]


@SETTINGS
@given(document=documents, reader=st.sampled_from(READERS))
def test_structured_documents_never_escape_the_readers(tmp_path, document, reader):
    _survives(reader, tmp_path / "file.yml", json.dumps(document, allow_nan=True))


@SETTINGS
@given(text=st.one_of(fragments, st.text(max_size=200)), reader=st.sampled_from(READERS))
def test_arbitrary_text_never_escapes_the_readers(tmp_path, text, reader):
    _survives(reader, tmp_path / "file.yml", text)


COMPONENTS = sorted(
    (name, cls) for name, cls in registered_components().items() if cls.options
)


@st.composite
def component_settings(draw: Any) -> tuple[type, dict[str, Any]]:
    name, cls = draw(st.sampled_from(COMPONENTS))
    keys = draw(st.lists(st.sampled_from(sorted(cls.options)), max_size=3, unique=True))
    options = {key: draw(values) for key in keys}
    return cls, options


@SETTINGS
@given(setting=component_settings())
def test_option_values_are_accepted_or_refused_cleanly(setting):
    cls, options = setting
    config = component_config(cls, options)
    try:
        check_options(cls, config)
    except TrainkitError:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(config)
    except TrainkitError:
        pass


@SETTINGS
@given(setting=component_settings())
def test_config_files_with_any_option_values_compile_or_fail_cleanly(tmp_path, setting):
    cls, options = setting
    from trainkit.engine.component import POLICY, PROVIDER

    if PROVIDER in cls.roles:
        return
    item = {"name": cls.name, **options}
    if POLICY in cls.roles:
        document = {"pipeline": [], "policies": [item]}
    else:
        document = {"pipeline": [{"name": "WhitespaceTokenizer"}, {"name": "CountVectorsFeaturizer"},
                                 {"name": "KeywordIntentClassifier"}, item], "policies": []}
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(document, allow_nan=True))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile_recipe(load_config(path), use_nlu=True, use_core=True)
    except TrainkitError:
        pass
