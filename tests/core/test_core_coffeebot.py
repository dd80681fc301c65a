"""End to end on the example project: trackers -> every policy -> the ensemble."""

from __future__ import annotations

import warnings

import pytest

from trainkit.core.ensemble import PolicyEnsemble
from trainkit.core.trackers import TrackerProvider, trackers_from_json
from trainkit.data.domain import Domain
from trainkit.data.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    SlotSet,
    StoryEntity,
    UserUttered,
)
from trainkit.data.importer import load_project
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import component_config, get_component
from trainkit.engine.providers import prune_domain_for_core
from trainkit.engine.recipe import TRACKER_DEFAULTS, compile_recipe

LISTEN = ActionExecuted("action_listen")


@pytest.fixture(scope="module")
def trained(coffeebot_dir, tmp_path_factory):
    """Run the core half of the recipe by hand: provider node, then one node per policy."""
    root = tmp_path_factory.mktemp("coffeebot")
    project = load_project(coffeebot_dir / "config.yml", coffeebot_dir / "domain.yml", coffeebot_dir / "data")
    graph_out = ArtifactWriter(root / "story_graph")
    graph_out.json("story_graph.json", project.stories.as_dict())
    domain_out = ArtifactWriter(root / "domain")
    domain_out.json("domain.json", prune_domain_for_core(project.domain.as_dict()))
    trackers_out = ArtifactWriter(root / "trackers")
    TrackerProvider(dict(TRACKER_DEFAULTS)).derive(
        {"story_graph": Artifact(graph_out.path), "domain": Artifact(domain_out.path)}, trackers_out
    )
    inputs = {"trackers": Artifact(trackers_out.path), "domain": Artifact(domain_out.path)}
    items = []
    for item in project.config.policies:
        cls = get_component(item["name"])
        config = component_config(cls, item)
        out = ArtifactWriter(root / f"train_{cls.name}")
        cls(config).train(inputs, out)
        items.append((cls.name, config, Artifact(out.path)))
    domain = Domain.from_dict(Artifact(domain_out.path).json("domain.json"))
    trackers = trackers_from_json(Artifact(trackers_out.path).json("trackers.json"))
    return PolicyEnsemble.from_artifacts(domain, items), trackers, project


def test_recipe_wires_the_tracker_provider_and_policies(coffeebot_dir):
    project = load_project(coffeebot_dir / "config.yml", coffeebot_dir / "domain.yml", coffeebot_dir / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recipe = compile_recipe(project.config, use_nlu=False, use_core=True)
    names = [node.name for node in recipe.nodes]
    assert "training_tracker_provider" in names
    assert [p["component"] for p in recipe.policies] == ["MemoizationPolicy", "RulePolicy", "TEDPolicy"]
    assert [p["priority"] for p in recipe.policies] == [3, 4, 1]


def test_trackers_hold_stories_augmentation_and_rules(trained):
    _, trackers, project = trained
    assert sum(t.is_rule for t in trackers) == project.stories.rule_block_count()
    assert any(t.is_augmented for t in trackers)
    assert any(" > " in t.name and not t.is_augmented for t in trackers)  # checkpoints joined


def test_ted_alone_predicts_the_story_prefixes(trained):
    ensemble, trackers, _ = trained
    ted = next(p for p in ensemble.policies if p.name == "TEDPolicy")
    domain = ensemble.domain
    total = correct = 0
    for tracker in trackers:
        if tracker.is_rule or tracker.is_augmented:
            continue
        for position, event in enumerate(tracker.events):
            if isinstance(event, ActionExecuted) and position not in tracker.unpredictable:
                prediction = ted.predict_action_probabilities(tracker.events[:position], domain)
                total += 1
                correct += domain.action_names_or_texts[prediction.best_index] == event.action_name
    assert total > 100
    assert correct / total >= 0.95


def test_ensemble_reproduces_every_story(trained):
    ensemble, trackers, _ = trained
    for tracker in trackers:
        if tracker.is_rule or tracker.is_augmented:
            continue
        for position, event in enumerate(tracker.events):
            if isinstance(event, ActionExecuted) and position not in tracker.unpredictable:
                assert ensemble.predict_next_action(tracker.events[:position]).action == event.action_name


def test_a_new_conversation_through_the_form(trained):
    ensemble, _, _ = trained
    events = [ActionExecuted("action_session_start"), LISTEN, UserUttered("greet")]
    assert ensemble.predict_next_action(events).action == "utter_greet"
    events += [ActionExecuted("utter_greet")]
    assert ensemble.predict_next_action(events).action == "action_listen"
    events += [LISTEN, UserUttered("order_drink", entities=(StoryEntity("drink", "mocha"),)), SlotSet("drink", "mocha")]
    chosen = ensemble.predict_next_action(events)
    assert (chosen.action, chosen.policy_name) == ("order_form", "RulePolicy")
    events += [ActionExecuted("order_form"), ActiveLoop("order_form"), SlotSet("requested_slot", "size")]
    assert ensemble.predict_next_action(events).action == "action_listen"
    events += [LISTEN, UserUttered("ask_opening_hours")]
    # the form runs first; it cannot fill a slot from this question and rejects it
    assert ensemble.predict_next_action(events).action == "order_form"
    events += [ActionExecutionRejected("order_form")]
    assert ensemble.predict_next_action(events).action == "utter_opening_hours"
    events += [ActionExecuted("utter_opening_hours")]
    assert ensemble.predict_next_action(events).action == "order_form"
    events += [ActionExecuted("order_form"), ActiveLoop(None), SlotSet("requested_slot", None)]
    assert ensemble.predict_next_action(events).action == "action_submit_order"
