"""TEDPolicy learns end-to-end stories from their texts, featurized by the NLU pipeline's
own tokenizer and featurizers (Rasa's end-to-end TED): user texts, bot texts (`bot:`
steps, which TED also predicts), turns with both an intent and a text learned both ways,
and featurizers that learn from the NLU examples too."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

import trainkit
from trainkit.core.replay import replay_stories
from trainkit.core.ted import TEDPolicy
from trainkit.core.trackers import generate_trackers
from trainkit.data.events import ActionExecuted, UserUttered
from trainkit.data.story_reader import read_story_file
from trainkit.engine.component import component_config, get_component

DOMAIN = """
intents: [greet, search_restaurant, affirm, deny]
responses:
  utter_greet: [{text: hi}]
  utter_suggest_cuisine: [{text: how about italian?}]
  utter_search_restaurants: [{text: searching}]
"""

STORIES = """
stories:
  - story: accepts, indirectly
    steps:
      - intent: search_restaurant
      - action: utter_suggest_cuisine
      - user: "I can always go for sushi"
      - action: utter_search_restaurants
  - story: rejects, indirectly
    steps:
      - intent: search_restaurant
      - action: utter_suggest_cuisine
      - user: "I had that yesterday"
      - action: utter_suggest_cuisine
      - intent: affirm
      - action: utter_search_restaurants
"""

PIPELINE = [
    {"name": "WhitespaceTokenizer"},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
]


def _specs():
    return [{"component": item["name"], "config": component_config(get_component(item["name"]), item)}
            for item in PIPELINE]


def _events(text):
    return [ActionExecuted("action_listen"), UserUttered("search_restaurant"),
            ActionExecuted("utter_suggest_cuisine"), ActionExecuted("action_listen"), UserUttered(text=text)]


def _train(make_graph, make_domain, specs):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(STORIES), domain, {"augmentation_factor": 0})
    config = {**TEDPolicy.defaults, "epochs": 60, "random_seed": 3, "max_history": 5, "text_featurizers": specs}
    return TEDPolicy(config).fit(trackers, domain), domain


def test_different_user_texts_lead_to_the_actions_their_stories_take(make_graph, make_domain):
    policy, domain = _train(make_graph, make_domain, _specs())
    actions = domain.action_names_or_texts
    for text, expected in [("I can always go for sushi", "utter_search_restaurants"),
                           ("I had that yesterday", "utter_suggest_cuisine")]:
        prediction = policy.predict_action_probabilities(_events(text), domain)
        assert actions[prediction.best_index] == expected, text


def test_without_text_featurizers_texts_are_indistinguishable(make_graph, make_domain):
    policy, domain = _train(make_graph, make_domain, [])
    first = policy.predict_action_probabilities(_events("I can always go for sushi"), domain).probabilities
    second = policy.predict_action_probabilities(_events("I had that yesterday"), domain).probabilities
    np.testing.assert_allclose(first, second)


def test_e2ebot_stories_are_learned_from_text(shared_datasets, tmp_path):
    source = shared_datasets / "rasa-examples" / "e2ebot"
    shutil.copytree(source / "data", tmp_path / "data")
    shutil.copy(source / "domain.yml", tmp_path / "domain.yml")
    # Rasa's default pipeline (the project's own needs a language model)
    (tmp_path / "config.yml").write_text("language: en\npolicies:\n  - name: TEDPolicy\n    epochs: 100\n"
                                         "    max_history: 5\n    random_seed: 1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train_core(str(tmp_path / "domain.yml"), str(tmp_path / "config.yml"),
                                     str(tmp_path / "data"), output=str(tmp_path / "models"),
                                     project_dir=str(tmp_path))
    model = trainkit.load_model(result.model)
    for text, expected in [("I can always go for sushi", "utter_search_restaurants"),
                           ("I had that yesterday", "utter_suggest_cuisine")]:
        events = [ActionExecuted("action_listen"), UserUttered("greet"), ActionExecuted("utter_greet"),
                  ActionExecuted("action_listen"), UserUttered("search_restaurant"),
                  ActionExecuted("utter_suggest_cuisine"), ActionExecuted("action_listen"), UserUttered(text=text)]
        assert model.predict_next_action(events)["action"] == expected, text


@pytest.mark.parametrize("text", ["I can always go for sushi"])
def test_text_featurizers_survive_the_model_round_trip(text, tmp_path, make_graph, make_domain, policy_inputs):
    from trainkit.engine.artifact import Artifact, ArtifactWriter

    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(STORIES), domain, {"augmentation_factor": 0})
    policy = TEDPolicy({**TEDPolicy.defaults, "epochs": 5, "random_seed": 3, "text_featurizers": _specs()})
    out = ArtifactWriter(tmp_path / "ted")
    policy.train(policy_inputs(trackers, domain), out)
    loaded = TEDPolicy.load(policy.config, Artifact(out.path))
    events = _events(text)
    assert loaded.predict_action_probabilities(events, domain) == policy.predict_action_probabilities(events, domain)


# --- bot utterances written as text --------------------------------------------------------

BOT_TEXT_DOMAIN = """
intents: [greet, affirm]
responses:
  utter_offer_drinks: [{text: we have tea and coffee}]
  utter_show_menu: [{text: here is the menu}]
e2e_actions:
  - "Would you like something to drink?"
  - "Shall I show you the food menu?"
"""

BOT_TEXT_STORIES = """
stories:
  - story: offers a drink
    steps:
      - intent: greet
      - bot: "Would you like something to drink?"
      - intent: affirm
      - action: utter_offer_drinks
  - story: offers the menu
    steps:
      - intent: greet
      - bot: "Shall I show you the food menu?"
      - intent: affirm
      - action: utter_show_menu
"""


def _after_bot_text(text):
    return [ActionExecuted("action_listen"), UserUttered("greet"), ActionExecuted(action_text=text),
            ActionExecuted("action_listen"), UserUttered("affirm")]


def test_bot_texts_are_featurized_by_their_words_not_as_opaque_names(make_graph, make_domain):
    domain = make_domain(BOT_TEXT_DOMAIN)
    trackers = generate_trackers(make_graph(BOT_TEXT_STORIES), domain, {"augmentation_factor": 0})
    config = {**TEDPolicy.defaults, "epochs": 80, "random_seed": 5, "max_history": 3, "text_featurizers": _specs()}
    policy = TEDPolicy(config).fit(trackers, domain)
    actions = domain.action_names_or_texts
    # Neither wording was in the stories: only what the bot's words have in common with
    # the stories' bot texts can tell the two apart.
    for text, expected in [("Would you like a drink?", "utter_offer_drinks"),
                           ("Shall I show you the menu?", "utter_show_menu")]:
        prediction = policy.predict_action_probabilities(_after_bot_text(text), domain)
        assert actions[prediction.best_index] == expected, text


def _write_project(root, domain, stories, nlu="", config="language: en\npolicies:\n  - name: TEDPolicy\n"
                   "    epochs: 80\n    max_history: 4\n    random_seed: 2\n"):
    (root / "data").mkdir()
    (root / "domain.yml").write_text('version: "3.1"\n' + domain)
    (root / "data" / "stories.yml").write_text('version: "3.1"\n' + stories)
    if nlu:
        (root / "data" / "nlu.yml").write_text('version: "3.1"\n' + nlu)
    (root / "config.yml").write_text(config)


def _train_core(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train_core(str(root / "domain.yml"), str(root / "config.yml"), str(root / "data"),
                                     output=str(root / "models"), project_dir=str(root))
    return trainkit.load_model(result.model)


GREETING_DOMAIN = """
intents: [greet, affirm, deny]
responses:
  utter_goodbye: [{text: bye}]
  utter_take_order: [{text: what would you like?}]
"""

GREETING_STORIES = """
stories:
  - story: greets back in words, then takes the order
    steps:
      - intent: greet
      - bot: "Hi! Are you here to order?"
      - intent: affirm
      - action: utter_take_order
  - story: the guest is not ordering
    steps:
      - intent: greet
      - bot: "Hi! Are you here to order?"
      - intent: deny
      - action: utter_goodbye
"""


def test_a_loaded_model_predicts_a_bot_text_and_reports_it_as_rasa_does(tmp_path):
    _write_project(tmp_path, GREETING_DOMAIN, GREETING_STORIES)
    model = _train_core(tmp_path)
    # The stories' bot text is an action of the model's domain, as Rasa's importer makes it.
    assert "Hi! Are you here to order?" in model.domain.action_names_or_texts
    prediction = model.predict_next_action([ActionExecuted("action_listen"), UserUttered("greet")])
    # Rasa names an end-to-end action by its text and logs it as ActionExecuted(action_text=...).
    assert (prediction["action"], prediction["action_text"]) == ("Hi! Are you here to order?",) * 2
    said = ActionExecuted(action_text=prediction["action_text"])
    after = [ActionExecuted("action_listen"), UserUttered("greet"), said, ActionExecuted("action_listen")]
    assert model.predict_next_action([*after, UserUttered("affirm")])["action"] == "utter_take_order"
    assert model.predict_next_action([*after, UserUttered("deny")])["action"] == "utter_goodbye"
    assert model.predict_next_action([*after, UserUttered("deny"), ActionExecuted("utter_goodbye")])[
        "action_text"] is None


# --- user turns with both an intent and a text ----------------------------------------------

BOTH_STORIES = """
stories:
  - story: accepts, in words
    steps:
      - intent: search_restaurant
      - action: utter_suggest_cuisine
      - user: "I can always go for sushi"
        intent: affirm
      - action: utter_search_restaurants
  - story: rejects, in words
    steps:
      - intent: search_restaurant
      - action: utter_suggest_cuisine
      - user: "I had that yesterday"
        intent: deny
      - action: utter_suggest_cuisine
"""


def _after_suggestion(message):
    return [ActionExecuted("action_listen"), UserUttered("search_restaurant"),
            ActionExecuted("utter_suggest_cuisine"), ActionExecuted("action_listen"), message]


def test_a_turn_with_intent_and_text_is_learned_from_both(make_graph, make_domain):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(BOTH_STORIES), domain, {"augmentation_factor": 0})
    config = {**TEDPolicy.defaults, "epochs": 80, "random_seed": 3, "max_history": 5, "text_featurizers": _specs()}
    policy = TEDPolicy(config).fit(trackers, domain)
    actions = domain.action_names_or_texts
    for message, expected in [
        (UserUttered("affirm"), "utter_search_restaurants"),
        (UserUttered("deny"), "utter_suggest_cuisine"),
        (UserUttered(text="I can always go for sushi"), "utter_search_restaurants"),
        (UserUttered(text="I had that yesterday"), "utter_suggest_cuisine"),
        (UserUttered("affirm", text="I can always go for sushi"), "utter_search_restaurants"),
    ]:
        prediction = policy.predict_action_probabilities(_after_suggestion(message), domain)
        assert actions[prediction.best_index] == expected, message
    # After the turn, the next decision (listen) is learned from both readings as well.
    for message in (UserUttered("affirm"), UserUttered(text="I can always go for sushi")):
        events = [*_after_suggestion(message), ActionExecuted("utter_search_restaurants")]
        assert actions[policy.predict_action_probabilities(events, domain).best_index] == "action_listen"


def test_a_confident_reading_of_the_text_wins_as_an_end_to_end_prediction(make_graph, make_domain):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(BOTH_STORIES), domain, {"augmentation_factor": 0})
    config = {**TEDPolicy.defaults, "epochs": 80, "random_seed": 3, "max_history": 5, "text_featurizers": _specs()}
    actions = domain.action_names_or_texts
    # The parse's intent and its text disagree: Rasa takes the text's reading when TED is
    # confident in it, and says the prediction is end-to-end.
    events = _after_suggestion(UserUttered("deny", text="I can always go for sushi"))
    prediction = TEDPolicy(config).fit(trackers, domain).predict_action_probabilities(events, domain)
    assert (actions[prediction.best_index], prediction.is_end_to_end_prediction) == ("utter_search_restaurants", True)
    strict = TEDPolicy({**config, "e2e_confidence_threshold": 1.0}).fit(trackers, domain)
    prediction = strict.predict_action_probabilities(events, domain)
    assert (actions[prediction.best_index], prediction.is_end_to_end_prediction) == ("utter_suggest_cuisine", False)


# --- the text featurizers learn from the NLU data too ---------------------------------------

WORD_PIPELINE_CONFIG = """language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
policies:
  - name: TEDPolicy
    epochs: 5
    random_seed: 1
"""

NLU = """
nlu:
- intent: affirm
  examples: |
    - pizza sounds great
    - yes please
- intent: deny
  examples: |
    - no thanks, not noodles
- intent: search_restaurant
  examples: |
    - find me a place to eat
"""


def _ted(model):
    return next(p for p in model.ensemble.policies if isinstance(p, TEDPolicy))


def test_text_featurizers_learn_the_nlu_examples_words(tmp_path):
    _write_project(tmp_path, DOMAIN.lstrip("\n"), STORIES.lstrip("\n"), NLU, WORD_PIPELINE_CONFIG)
    ted = _ted(_train_core(tmp_path))
    assert ted.text is not None
    # Words only the NLU examples use are in the vocabulary, so they tell texts apart.
    pizza, noodles, unknown = ted.text.transform(["pizza", "noodles", "zebra"])
    assert pizza.any() and noodles.any() and not unknown.any()
    assert not np.array_equal(pizza, noodles)


def test_fit_learns_the_vocabulary_of_the_extra_texts(make_graph, make_domain):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(STORIES), domain, {"augmentation_factor": 0})
    word_specs = _specs()[:2]
    config = {**TEDPolicy.defaults, "epochs": 1, "random_seed": 3, "text_featurizers": word_specs}
    alone = TEDPolicy(config).fit(trackers, domain)
    with_nlu = TEDPolicy(config).fit(trackers, domain, texts=["pizza sounds great"])
    assert not alone.text.transform(["pizza"]).any()
    assert with_nlu.text.transform(["pizza"]).any()


def test_nlu_edits_of_a_project_without_story_texts_retrain_no_policy(tmp_path):
    plain = STORIES.replace('- user: "I can always go for sushi"', "- intent: affirm").replace(
        '- user: "I had that yesterday"', "- intent: deny")
    _write_project(tmp_path, DOMAIN.lstrip("\n"), plain.lstrip("\n"), NLU, WORD_PIPELINE_CONFIG)
    _train_core(tmp_path)
    (tmp_path / "data" / "nlu.yml").write_text('version: "3.1"\n' + NLU + "    - somewhere cheap\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train_core(str(tmp_path / "domain.yml"), str(tmp_path / "config.yml"),
                                     str(tmp_path / "data"), output=str(tmp_path / "models"),
                                     project_dir=str(tmp_path), dry_run=True)
    stale = {name for name, r in result.dry_run_results.items() if r["status"] != "up to date"}
    assert "train_TEDPolicy0" not in stale


@pytest.mark.parametrize("policies", ["", "policies:\n  - name: TEDPolicy\n    epochs: 100\n    random_seed: 1\n"])
def test_e2ebot_test_stories_replay_without_a_wrong_action(shared_datasets, tmp_path, policies):
    source = shared_datasets / "rasa-examples" / "e2ebot"
    shutil.copytree(source / "data", tmp_path / "data")
    shutil.copy(source / "domain.yml", tmp_path / "domain.yml")
    # Rasa's default pipeline (the project's own needs a language model); its test
    # stories give every user turn as text and intent.
    (tmp_path / "config.yml").write_text("language: en\n" + policies)
    report = replay_stories(_train_core(tmp_path).ensemble, read_story_file(source / "tests" / "test_stories.yml"))
    assert report.failures() == []
    assert (report.correct_stories, report.correct_actions) == (4, 24)
