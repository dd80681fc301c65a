"""Action fingerprints: what each action was seen to do in the training data.

An action's fingerprint lists the featurized slots that were set right after it ran and
the loops it activated (or deactivated), before the next user turn. RulePolicy compares
every rule with the fingerprints of the rules' actions: a rule in which an action does
not do what it does elsewhere is incomplete, because at prediction time the slot the
action really sets would be there and the rule would silently stop matching.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainkit.core.featurization import slot_is_featurized
from trainkit.core.trackers import TrainingTracker
from trainkit.data.domain import Domain
from trainkit.data.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered


@dataclass(frozen=True)
class ActionFingerprint:
    """Featurized slots an action sets and loops it activates (None: deactivates), sorted."""

    slots: tuple[str, ...] = ()
    active_loop: tuple[str | None, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """JSON form stored with the trained model."""
        return {"slots": list(self.slots), "active_loop": list(self.active_loop)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionFingerprint:
        """Inverse of `as_dict`."""
        return cls(tuple(data.get("slots", ())), tuple(data.get("active_loop", ())))


def create_action_fingerprints(
    trackers: Iterable[TrainingTracker], domain: Domain
) -> dict[str, ActionFingerprint]:
    """Fingerprints of every action that set a featurized slot or a loop, by action name.

    Events after a user turn (slots its entities fill) belong to the user, not to the
    action before it, so they are not attributed to `action_listen`.
    """
    featurized = {slot.name for slot in domain.slots if slot_is_featurized(slot)}
    slots: dict[str, set[str]] = {}
    loops: dict[str, set[str | None]] = {}
    for tracker in trackers:
        action: str | None = None
        for event in tracker.events:
            if isinstance(event, ActionExecuted):
                action = event.action_name or event.action_text
            elif isinstance(event, UserUttered):
                action = None
            elif action is not None and isinstance(event, SlotSet) and event.key in featurized:
                slots.setdefault(action, set()).add(event.key)
            elif action is not None and isinstance(event, ActiveLoop):
                loops.setdefault(action, set()).add(event.name)
    return {
        name: ActionFingerprint(
            tuple(sorted(slots.get(name, ()))),
            tuple(sorted(loops.get(name, ()), key=lambda loop: (loop is not None, loop or ""))),
        )
        for name in sorted(set(slots) | set(loops))
    }


def fingerprints_to_json(fingerprints: Mapping[str, ActionFingerprint]) -> dict[str, Any]:
    """The JSON document of a fingerprint table."""
    return {name: fingerprint.as_dict() for name, fingerprint in sorted(fingerprints.items())}


def fingerprints_from_json(data: Mapping[str, Any]) -> dict[str, ActionFingerprint]:
    """Inverse of `fingerprints_to_json`."""
    return {str(name): ActionFingerprint.from_dict(item) for name, item in data.items()}
