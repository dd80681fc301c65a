"""Training tracker generation: checkpoints, `or`, rules, augmentation, the provider node."""

from __future__ import annotations

from trainkit.core.tracker import SHOULD_NOT_BE_SET
from trainkit.core.trackers import (
    TrackerProvider,
    generate_trackers,
    trackers_from_json,
)
from trainkit.data.events import (
    ACTION_LISTEN,
    RULE_SNIPPET_ACTION,
    ActionExecuted,
    ActiveLoop,
    SlotSet,
    UserUttered,
)
from trainkit.engine.artifact import Artifact, ArtifactWriter

DOMAIN = """
intents: [greet, order, inform, thank, goodbye, affirm, deny]
entities: [drink]
slots:
  drink:
    type: text
    mappings:
      - type: from_entity
        entity: drink
forms:
  order_form:
    required_slots: [drink]
responses:
  utter_greet: [{text: hi}]
  utter_done: [{text: done}]
  utter_welcome: [{text: welcome}]
  utter_bye: [{text: bye}]
  utter_ask: [{text: anything else?}]
"""

NO_AUGMENTATION = {"augmentation_factor": 0}


def names(events):
    out = []
    for e in events:
        if isinstance(e, ActionExecuted):
            out.append(e.action_name)
        elif isinstance(e, UserUttered):
            out.append(f"*{e.intent}")
        elif isinstance(e, SlotSet):
            out.append(f"slot:{e.key}={e.value}")
        elif isinstance(e, ActiveLoop):
            out.append(f"loop:{e.name}")
    return out


def test_user_turns_get_implicit_listen_and_story_ends_with_listen(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: hello
            steps:
              - intent: greet
              - action: utter_greet
        """)
    [tracker] = generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)
    assert names(tracker.events) == [ACTION_LISTEN, "*greet", "utter_greet", ACTION_LISTEN]
    assert not tracker.is_rule and not tracker.is_augmented


def test_entities_fill_mapped_slots_after_the_user_turn(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: order
            steps:
              - intent: order
                entities:
                  - drink: latte
              - action: utter_done
        """)
    [tracker] = generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)
    assert names(tracker.events)[:3] == [ACTION_LISTEN, "*order", "slot:drink=latte"]


def test_checkpoints_join_story_pieces(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: start A
            steps:
              - intent: greet
              - action: utter_greet
              - checkpoint: greeted
          - story: start B
            steps:
              - intent: order
              - action: utter_done
              - checkpoint: greeted
          - story: continue
            steps:
              - checkpoint: greeted
              - intent: thank
              - action: utter_welcome
        """)
    trackers = generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)
    assert sorted(t.name for t in trackers) == ["start A > continue", "start B > continue"]
    joined = {t.name: names(t.events) for t in trackers}
    assert joined["start A > continue"] == [
        ACTION_LISTEN, "*greet", "utter_greet", ACTION_LISTEN, "*thank", "utter_welcome", ACTION_LISTEN,
    ]


def test_checkpoint_in_the_middle_of_a_story_splits_and_rejoins(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: one
            steps:
              - intent: greet
              - action: utter_greet
              - checkpoint: mid
              - intent: goodbye
              - action: utter_bye
        """)
    [tracker] = generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)
    assert names(tracker.events) == [
        ACTION_LISTEN, "*greet", "utter_greet", ACTION_LISTEN, "*goodbye", "utter_bye", ACTION_LISTEN,
    ]


def test_checkpoint_slot_conditions_filter_incoming_trackers(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: with drink
            steps:
              - intent: order
                entities:
                  - drink: tea
              - action: utter_done
              - checkpoint: ordered
          - story: without drink
            steps:
              - intent: greet
              - action: utter_greet
              - checkpoint: ordered
          - story: only with a drink
            steps:
              - checkpoint: ordered
                slot_was_set:
                  - drink: tea
              - intent: thank
              - action: utter_welcome
        """)
    trackers = generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)
    assert [t.name for t in trackers] == ["with drink > only with a drink"]


def test_or_alternatives_expand_into_separate_trackers(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: bye
            steps:
              - intent: greet
              - action: utter_greet
              - or:
                  - intent: goodbye
                  - intent: thank
              - action: utter_bye
        """)
    trackers = generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)
    intents = sorted(names(t.events)[4] for t in trackers)
    assert intents == ["*goodbye", "*thank"]


def test_rules_become_separate_rule_trackers_with_snippet_markers(make_graph, make_domain):
    graph = make_graph("""
        rules:
          - rule: greet
            steps:
              - intent: greet
              - action: utter_greet
          - rule: at start
            conversation_start: true
            steps:
              - intent: greet
              - action: utter_welcome
          - rule: submit
            condition:
              - active_loop: null
              - slot_was_set:
                  - drink: null
            steps:
              - action: order_form
            wait_for_user_input: false
        """)
    trackers = {t.name: t for t in generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)}
    assert all(t.is_rule for t in trackers.values())
    assert names(trackers["greet"].events) == [
        RULE_SNIPPET_ACTION, ACTION_LISTEN, "*greet", "utter_greet", ACTION_LISTEN,
    ]
    assert names(trackers["at start"].events) == [ACTION_LISTEN, "*greet", "utter_welcome", ACTION_LISTEN]
    # A null in a condition means "must not be set"; an open end gets no final listen.
    assert names(trackers["submit"].events) == [
        f"loop:{SHOULD_NOT_BE_SET}", f"slot:drink={SHOULD_NOT_BE_SET}", RULE_SNIPPET_ACTION,
        "order_form", RULE_SNIPPET_ACTION,
    ]


def test_story_opening_with_a_bot_action_marks_it_unpredictable(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: bot first
            steps:
              - action: utter_greet
              - intent: greet
              - action: utter_done
        """)
    [tracker] = generate_trackers(graph, make_domain(DOMAIN), NO_AUGMENTATION)
    assert tracker.unpredictable == [0]


STORIES = """
stories:
  - story: s1
    steps:
      - intent: greet
      - action: utter_greet
  - story: s2
    steps:
      - intent: thank
      - action: utter_welcome
  - story: s3
    steps:
      - intent: goodbye
      - action: utter_bye
  - story: s4
    steps:
      - intent: order
      - action: utter_done
"""


def test_augmentation_glues_story_ends_in_front_of_stories(make_graph, make_domain):
    trackers = generate_trackers(make_graph(STORIES), make_domain(DOMAIN), {"augmentation_factor": 5})
    augmented = [t for t in trackers if t.is_augmented]
    assert len([t for t in trackers if not t.is_augmented]) == 4
    assert augmented
    for tracker in augmented:
        sequence = names(tracker.events)
        # two stories glued: one listen between them, never two in a row
        assert sequence.count("*greet") + sequence.count("*thank") + sequence.count("*goodbye") + sequence.count(
            "*order"
        ) >= 2
        assert all(not (a == b == ACTION_LISTEN) for a, b in zip(sequence, sequence[1:], strict=False))
        assert " > " in tracker.name


def test_augmentation_is_deterministic_for_a_seed_and_varies_with_it(make_graph, make_domain):
    graph, domain = make_graph(STORIES), make_domain(DOMAIN)

    def run(seed):
        trackers = generate_trackers(graph, domain, {"augmentation_factor": 3, "random_seed": seed})
        return [t.as_dict() for t in trackers]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_no_augmentation_without_story_concatenation(make_graph, make_domain):
    trackers = generate_trackers(
        make_graph(STORIES), make_domain(DOMAIN), {"augmentation_factor": 5, "use_story_concatenation": False}
    )
    assert not any(t.is_augmented for t in trackers)


def test_remove_duplicates_drops_trackers_with_identical_states(make_graph, make_domain):
    text = """
        stories:
          - story: a
            steps:
              - intent: greet
              - action: utter_greet
          - story: b
            steps:
              - intent: greet
              - action: utter_greet
        """
    domain = make_domain(DOMAIN)
    assert len(generate_trackers(make_graph(text), domain, NO_AUGMENTATION)) == 1
    kept = generate_trackers(make_graph(text), domain, {"augmentation_factor": 0, "remove_duplicates": False})
    assert len(kept) == 2


def test_tracker_limit_caps_trackers_through_a_checkpoint(make_graph, make_domain):
    graph = make_graph("""
        stories:
          - story: a
            steps:
              - or:
                  - intent: greet
                  - intent: thank
                  - intent: goodbye
              - action: utter_greet
              - checkpoint: c
          - story: b
            steps:
              - checkpoint: c
              - intent: order
              - action: utter_done
        """)
    trackers = generate_trackers(graph, make_domain(DOMAIN), {"augmentation_factor": 0, "tracker_limit": 2})
    assert len(trackers) == 2


def test_tracker_provider_writes_trackers_json(tmp_path, make_graph, make_domain):
    graph_dir = ArtifactWriter(tmp_path / "graph")
    graph_dir.json("story_graph.json", make_graph(STORIES).as_dict())
    domain_dir = ArtifactWriter(tmp_path / "domain")
    domain_dir.json("domain.json", make_domain(DOMAIN).as_dict())
    config = {"augmentation_factor": 2, "remove_duplicates": True, "use_story_concatenation": True,
              "tracker_limit": None, "random_seed": 7}
    out = ArtifactWriter(tmp_path / "out")
    TrackerProvider(config).derive({"story_graph": Artifact(graph_dir.path), "domain": Artifact(domain_dir.path)}, out)
    first = (tmp_path / "out" / "trackers.json").read_bytes()
    again = ArtifactWriter(tmp_path / "again")
    TrackerProvider(config).derive({"story_graph": Artifact(graph_dir.path), "domain": Artifact(domain_dir.path)}, again)
    assert (tmp_path / "again" / "trackers.json").read_bytes() == first
    trackers = trackers_from_json(Artifact(out.path).json("trackers.json"))
    assert [t.as_dict() for t in trackers] == [
        t.as_dict() for t in generate_trackers(make_graph(STORIES), make_domain(DOMAIN), config)
    ]
