"""Training trackers: whole conversations assembled from story pieces and rules.

Stories are glued together through their checkpoints (a block without a start
checkpoint hangs from the implicit conversation start), `or` steps branch into separate
trackers, and rules become short trackers of their own that only the rule policy learns
from. Like Rasa's generator, the events the YAML leaves implicit are made explicit here:
`action_listen` before every user turn and at the end of a conversation, and the slots a
user turn's entities fill.

Augmentation glues randomly chosen story endings in front of stories, so the ML policies
learn that what happened earlier usually does not matter. Sampling uses one seeded
generator and walks the data in a fixed order, so a seed always gives the same trackers.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainkit.core.featurization import DomainView, state_key, states_for_events
from trainkit.core.tracker import SHOULD_NOT_BE_SET, DialogueStateTracker
from trainkit.data.domain import Domain
from trainkit.data.events import (
    ACTION_LISTEN,
    RULE_SNIPPET_ACTION,
    ActionExecuted,
    ActiveLoop,
    Event,
    SlotSet,
    SlotSetOr,
    StoryEntity,
    UserUtteranceOr,
    UserUttered,
    event_from_dict,
)
from trainkit.data.stories import STORY_START, StoryGraph, StoryStep
from trainkit.engine.artifact import ArtifactWriter
from trainkit.engine.component import PROVIDER, Component, Inputs, register
from trainkit.engine.options import SEED, Int, Option

# Rounds of gluing story endings in front of stories (a story can be prefixed by up to
# this many others).
AUGMENTATION_ROUNDS = 3


@dataclass
class TrainingTracker:
    """One training conversation.

    `unpredictable` holds positions of actions nothing could have predicted (bot actions a
    story opens with); policies do not learn them as targets.
    """

    name: str
    events: list[Event]
    is_rule: bool = False
    is_augmented: bool = False
    unpredictable: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form stored in `trackers.json`."""
        return {
            "name": self.name,
            "is_rule": self.is_rule,
            "is_augmented": self.is_augmented,
            "unpredictable": list(self.unpredictable),
            "events": [e.as_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingTracker:
        """Inverse of `as_dict`."""
        return cls(
            name=data["name"],
            events=[event_from_dict(e) for e in data["events"]],
            is_rule=bool(data.get("is_rule", False)),
            is_augmented=bool(data.get("is_augmented", False)),
            unpredictable=[int(i) for i in data.get("unpredictable", [])],
        )


@dataclass(frozen=True)
class _Partial:
    """A tracker under construction, shared between branches (hence immutable)."""

    names: tuple[str, ...]
    events: tuple[Event, ...]
    unpredictable: frozenset[int] = frozenset()
    visited: frozenset[int] = frozenset()
    is_augmented: bool = False

    def finish(self, is_rule: bool = False) -> TrainingTracker:
        return TrainingTracker(
            " > ".join(self.names), list(self.events), is_rule, self.is_augmented, sorted(self.unpredictable)
        )


@dataclass
class GeneratorConfig:
    """Rasa's tracker-generation settings (`TRACKER_DEFAULTS` of the recipe)."""

    augmentation_factor: int = 50
    remove_duplicates: bool = True
    use_story_concatenation: bool = True
    tracker_limit: int | None = None
    random_seed: int | None = 42

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GeneratorConfig:
        """Read the node config, ignoring keys this generator does not use."""
        limit = config.get("tracker_limit")
        return cls(
            augmentation_factor=int(config.get("augmentation_factor", 50) or 0),
            remove_duplicates=bool(config.get("remove_duplicates", True)),
            use_story_concatenation=bool(config.get("use_story_concatenation", True)),
            tracker_limit=None if limit is None else int(limit),
            random_seed=config.get("random_seed", 42),
        )


def slots_for_entities(domain: Domain, entities: Sequence[StoryEntity]) -> list[SlotSet]:
    """Slots a user turn fills through `from_entity` mappings (Rasa's implicit slot events).

    Mappings conditioned on an active loop belong to forms and are not applied here; a
    list slot collects every matching value, other slots take the last one.
    """
    if not domain.store_entities_as_slots or not entities:
        return []
    events = []
    for slot in domain.slots:
        matches = []
        for mapping in slot.mappings:
            if not isinstance(mapping, dict) or mapping.get("type") != "from_entity":
                continue
            conditions = mapping.get("conditions") or []
            if conditions and isinstance(conditions[0], dict) and conditions[0].get("active_loop") is not None:
                continue
            for entity in entities:
                if (
                    entity.entity == mapping.get("entity")
                    and entity.role == mapping.get("role")
                    and entity.group == mapping.get("group")
                    and entity.value is not None
                ):
                    matches.append(entity.value)
        if matches:
            events.append(SlotSet(slot.name, list(matches) if slot.type == "list" else matches[-1]))
    return events


def _expand_or(events: Sequence[Event]) -> list[list[Event]]:
    """Every branch of a step: one event list per combination of `or` alternatives."""
    choices: list[Sequence[Event]] = [
        e.alternatives if isinstance(e, (UserUtteranceOr, SlotSetOr)) else (e,) for e in events
    ]
    return [list(branch) for branch in itertools.product(*choices)]


def _is_listen(event: Event) -> bool:
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_LISTEN


def _extend(
    partial: _Partial,
    events: Sequence[Event],
    domain: Domain,
    name: str,
    step_index: int,
    from_start: bool,
    final_listen: bool,
    part: int = 0,
) -> _Partial:
    """Append a step's events, making implicit listens and entity slots explicit."""
    out = list(partial.events)
    unpredictable = set(partial.unpredictable)
    seen_user = False
    for event in events:
        if isinstance(event, UserUttered):
            if not out or not _is_listen(out[-1]):
                out.append(ActionExecuted(ACTION_LISTEN))
            out.append(event)
            out.extend(slots_for_entities(domain, event.entities))
            seen_user = True
            continue
        if isinstance(event, ActionExecuted) and from_start and not seen_user:
            unpredictable.add(len(out))
        out.append(event)
    if final_listen and (not out or not _is_listen(out[-1])):
        out.append(ActionExecuted(ACTION_LISTEN))
    # The pieces of a block split at a checkpoint keep the block's single name.
    continued = part > 0 and bool(partial.names) and partial.names[-1] == name
    names = partial.names if continued else partial.names + (name,)
    return _Partial(
        names, tuple(out), frozenset(unpredictable), partial.visited | {step_index}, partial.is_augmented
    )


def _checkpoint_allows(partial: _Partial, conditions: dict[str, Any], domain: Domain) -> bool:
    if not conditions:
        return True
    tracker = DialogueStateTracker(domain, partial.events)
    return all(tracker.get_slot(slot) == value for slot, value in conditions.items())


def _ordered_steps(steps: list[StoryStep]) -> list[int]:
    """Step indices so that a step comes after every step ending at its start checkpoints.

    Cycles through checkpoints cannot be ordered; their steps follow in file order, and a
    tracker passes through each step at most once, so generation always terminates.
    """
    starts = [s.start_checkpoints or [STORY_START] for s in steps]
    incoming = {i: 0 for i in range(len(steps))}
    edges: dict[int, list[int]] = {i: [] for i in range(len(steps))}
    for i, step in enumerate(steps):
        for j in range(len(steps)):
            if any(cp in starts[j] for cp in step.end_checkpoints) and i != j:
                edges[i].append(j)
                incoming[j] += 1
    order: list[int] = []
    ready = [i for i in range(len(steps)) if incoming[i] == 0]
    while ready:
        current = ready.pop(0)
        order.append(current)
        for nxt in edges[current]:
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                ready.append(nxt)
                ready.sort()
    order.extend(i for i in range(len(steps)) if i not in order)
    return order


class TrackerGenerator:
    """Builds story and rule trackers from a story graph."""

    def __init__(self, graph: StoryGraph, domain: Domain, config: GeneratorConfig | None = None) -> None:
        self.domain = domain
        self.config = config or GeneratorConfig()
        self.rng = random.Random(self.config.random_seed)
        steps = [s for s in graph.story_steps if not s.is_test]
        self.story_steps = [s for s in steps if not s.is_rule]
        self.rule_steps = [s for s in steps if s.is_rule]
        self._order = _ordered_steps(self.story_steps)
        self._branches = [_expand_or(s.events) for s in self.story_steps]

    def generate(self) -> list[TrainingTracker]:
        """Story trackers (original, then augmented) followed by rule trackers."""
        return self.story_trackers() + self.rule_trackers()

    def story_trackers(self) -> list[TrainingTracker]:
        """Trackers of complete stories; augmented ones are flagged."""
        if not self.story_steps:
            return []
        finished = self._run([_Partial((), ())], self.config.tracker_limit)
        result = [p.finish() for p in self._unique(finished)]
        if self.config.use_story_concatenation and self.config.augmentation_factor > 0:
            endings = self._unique_events(finished)
            limit = self.config.tracker_limit or self.config.augmentation_factor * 10
            for _ in range(AUGMENTATION_ROUNDS):
                sample_size = min(len(endings), self.config.augmentation_factor)
                if sample_size == 0:
                    break
                starts = [
                    _Partial(p.names, p.events, p.unpredictable, frozenset(), True)
                    for p in self.rng.sample(endings, sample_size)
                ]
                glued = self._run(starts, limit)
                result.extend(p.finish() for p in self._unique(glued))
                endings = self._unique_events(endings + glued)
        if self.config.remove_duplicates:
            result = _deduplicate(result, self.domain)
        return result

    def rule_trackers(self) -> list[TrainingTracker]:
        """One tracker per rule and `or` branch; rules are never glued or augmented."""
        trackers = []
        for step in self.rule_steps:
            events = step.tracker_events()
            conditions = len(step.condition)
            events = [_condition_event(e) if i < conditions else _rule_step_event(e) for i, e in enumerate(events)]
            ends_open = bool(events) and isinstance(events[-1], ActionExecuted) and (
                events[-1].action_name == RULE_SNIPPET_ACTION
            )
            for branch in _expand_or(events):
                partial = _extend(_Partial((), ()), branch, self.domain, step.block_name, 0, False, not ends_open)
                trackers.append(partial.finish(is_rule=True))
        if self.config.remove_duplicates:
            trackers = _deduplicate(trackers, self.domain)
        return trackers

    def _run(self, starts: list[_Partial], limit: int | None) -> list[_Partial]:
        """Push trackers from the conversation start through every step, in order."""
        arrived: dict[str, list[_Partial]] = {STORY_START: list(starts)}
        finished: list[_Partial] = []
        for index in self._order:
            step = self.story_steps[index]
            incoming: list[_Partial] = []
            for checkpoint in step.start_checkpoints or [STORY_START]:
                conditions = step.checkpoint_conditions.get(checkpoint, {})
                incoming.extend(
                    p
                    for p in arrived.get(checkpoint, [])
                    if index not in p.visited and _checkpoint_allows(p, conditions, self.domain)
                )
            incoming = self._unique_events(incoming)
            if limit is not None and len(incoming) > limit:
                incoming = self.rng.sample(incoming, limit)
            from_start = not step.start_checkpoints
            outgoing = [
                _extend(
                    p, branch, self.domain, step.block_name, index, from_start, not step.end_checkpoints, step.part
                )
                for p in incoming
                for branch in self._branches[index]
            ]
            if step.end_checkpoints:
                for checkpoint in step.end_checkpoints:
                    arrived.setdefault(checkpoint, []).extend(outgoing)
            else:
                finished.extend(outgoing)
        return finished

    def _unique(self, partials: list[_Partial]) -> list[_Partial]:
        return self._unique_events(partials) if self.config.remove_duplicates else partials

    @staticmethod
    def _unique_events(partials: Iterable[_Partial]) -> list[_Partial]:
        seen: dict[tuple[Event, ...], _Partial] = {}
        for partial in partials:
            seen.setdefault(partial.events, partial)
        return list(seen.values())


def _condition_event(event: Event) -> Event:
    """A rule condition's `null` means "must not be set", which Rasa marks explicitly."""
    if isinstance(event, ActiveLoop) and event.name is None:
        return ActiveLoop(SHOULD_NOT_BE_SET)
    return _rule_step_event(event)


def _rule_step_event(event: Event) -> Event:
    """In a rule's steps too, `slot_was_set: null` means "must not be set" (`active_loop:
    null` there is the form ending, so it stays as written)."""
    if isinstance(event, SlotSet) and event.value is None and not event.bare:
        return SlotSet(event.key, SHOULD_NOT_BE_SET)
    if isinstance(event, SlotSetOr):
        return SlotSetOr(tuple(_rule_step_event(a) for a in event.alternatives))  # type: ignore[misc]
    return event


def _deduplicate(trackers: list[TrainingTracker], domain: Domain) -> list[TrainingTracker]:
    """Drop trackers whose states (and so everything a policy sees) repeat an earlier one."""
    seen: set[str] = set()
    out = []
    view = DomainView(domain)
    for tracker in trackers:
        states, _ = states_for_events(tracker.events, domain, tracker.is_rule, view)
        key = state_key(states) + repr(sorted(tracker.unpredictable)) + str(tracker.is_rule)
        if key not in seen:
            seen.add(key)
            out.append(tracker)
    return out


def generate_trackers(
    graph: StoryGraph, domain: Domain, config: dict[str, Any] | GeneratorConfig | None = None
) -> list[TrainingTracker]:
    """All training trackers of a project, deterministic for a given seed."""
    if isinstance(config, dict):
        config = GeneratorConfig.from_config(config)
    return TrackerGenerator(graph, domain, config).generate()


def trackers_to_json(trackers: Sequence[TrainingTracker]) -> dict[str, Any]:
    """The `trackers.json` document."""
    return {
        "trackers": [t.as_dict() for t in trackers],
        "counts": {
            "stories": sum(1 for t in trackers if not t.is_rule and not t.is_augmented),
            "augmented": sum(1 for t in trackers if t.is_augmented),
            "rules": sum(1 for t in trackers if t.is_rule),
        },
    }


def trackers_from_json(data: dict[str, Any]) -> list[TrainingTracker]:
    """Inverse of `trackers_to_json`."""
    return [TrainingTracker.from_dict(t) for t in data.get("trackers", [])]


@register
class TrackerProvider(Component):
    """The `training_tracker_provider` node: story graph + core domain -> trackers.json."""

    name = "TrackerProvider"
    version = "2"
    roles = frozenset({PROVIDER})
    defaults = {
        "augmentation_factor": Option(50, Int(0, 100_000)),
        "remove_duplicates": True,
        "use_story_concatenation": True,
        "tracker_limit": Option(None, Int(1, 10**9, null=True)),
        "random_seed": Option(42, SEED),
    }

    def derive(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Generate the trackers every policy trains on."""
        graph_artifact = inputs["story_graph"]
        domain_artifact = inputs["domain"]
        assert not isinstance(graph_artifact, list) and not isinstance(domain_artifact, list)
        graph = StoryGraph.from_dict(graph_artifact.json("story_graph.json"))
        domain = Domain.from_dict(domain_artifact.json("domain.json"))
        trackers = generate_trackers(graph, domain, self.config)
        out.json("trackers.json", trackers_to_json(trackers))
