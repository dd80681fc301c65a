"""Rule-only data: slots and loops that only rules mention.

The ML policies learn from stories. A slot or loop that appears only in rules never
shows up in their training states, so seeing it at prediction time would put them in a
situation they never learned; Rasa hides those features from them, and so does trainkit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trainkit.core.featurization import ACTIVE_LOOP, SLOTS, DomainView, State, states_for_events
from trainkit.core.tracker import SHOULD_NOT_BE_SET
from trainkit.core.trackers import TrainingTracker
from trainkit.data.domain import Domain


@dataclass(frozen=True)
class RuleOnlyData:
    """Names of the slots and loops that appear in rule states but in no story state."""

    slots: tuple[str, ...] = ()
    loops: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON form persisted with each ML policy."""
        return {"slots": list(self.slots), "loops": list(self.loops)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RuleOnlyData:
        """Inverse of `as_dict` (empty for models that did not store it)."""
        data = data or {}
        return cls(tuple(data.get("slots", ())), tuple(data.get("loops", ())))

    def strip(self, states: list[State]) -> list[State]:
        """The states without rule-only slots and without a rule-only active loop."""
        if not self.slots and not self.loops:
            return states
        out = []
        for state in states:
            cleaned = dict(state)
            slots = state.get(SLOTS)
            if slots and any(name in slots for name in self.slots):
                kept = {name: value for name, value in slots.items() if name not in self.slots}
                if kept:
                    cleaned[SLOTS] = kept
                else:
                    del cleaned[SLOTS]
            if state.get(ACTIVE_LOOP, {}).get("name") in self.loops:
                del cleaned[ACTIVE_LOOP]
            out.append(cleaned)
        return out


def _slots_and_loops(trackers: Iterable[TrainingTracker], domain: Domain, rules: bool) -> tuple[set, set]:
    slots: set[str] = set()
    loops: set[str] = set()
    view = DomainView(domain)
    for tracker in trackers:
        states, _ = states_for_events(tracker.events, domain, omit_unset_slots=rules, view=view)
        for state in states:
            slots.update(state.get(SLOTS, {}))
            loop = state.get(ACTIVE_LOOP, {}).get("name")
            if loop:
                loops.add(loop)
    return slots, loops


def find_rule_only_data(trackers: list[TrainingTracker], domain: Domain) -> RuleOnlyData:
    """Slots and loops of the rule trackers that no (original) story tracker has."""
    rule_slots, rule_loops = _slots_and_loops([t for t in trackers if t.is_rule], domain, True)
    story_slots, story_loops = _slots_and_loops(
        [t for t in trackers if not t.is_rule and not t.is_augmented], domain, False
    )
    return RuleOnlyData(
        tuple(sorted(rule_slots - story_slots - {SHOULD_NOT_BE_SET})),
        tuple(sorted(rule_loops - story_loops - {SHOULD_NOT_BE_SET})),
    )
