"""TEDPolicy learns end-to-end stories from their user texts, featurized by the NLU
pipeline's own tokenizer and featurizers (Rasa's end-to-end TED)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

import trainkit
from trainkit.core.ted import TEDPolicy
from trainkit.core.trackers import generate_trackers
from trainkit.data.events import ActionExecuted, UserUttered
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
