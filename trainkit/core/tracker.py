"""The running state of one conversation, rebuilt from its events.

Policies never read raw events: they read states (see `featurization`), and a state is a
snapshot of this tracker. Keeping the event semantics in one class means training
trackers and live conversations are interpreted identically.

Session handling follows Rasa: `action_session_start` opens a new session, so everything
before it stops being part of the dialogue history (slots are carried over when the
domain says so), and `action_restart` forgets everything including slots.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainkit.data.domain import Domain
from trainkit.data.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    Event,
    LoopInterrupted,
    SlotSet,
    UserUttered,
)

ACTION_SESSION_START = "action_session_start"
ACTION_RESTART = "action_restart"

# A slot or loop that a rule condition requires to be unset (`slot: null`,
# `active_loop: null` in a condition). Rasa uses this literal value too.
SHOULD_NOT_BE_SET = "should_not_be_set"

# What a story means by listing a slot without a value (`- slot_was_set: [name]`).
_FILLED_TEXT = "filled"


def bare_slot_value(domain: Domain, slot_name: str) -> Any:
    """The value a slot listed without a value gets: "set", in the slot type's terms."""
    slot = domain.slot(slot_name)
    if slot is None:
        return None
    if slot.type in ("text", "any"):
        return _FILLED_TEXT
    if slot.type == "list":
        return [_FILLED_TEXT]
    return None


class DialogueStateTracker:
    """Events of one conversation plus the state they lead to."""

    def __init__(self, domain: Domain, events: Iterable[Event] = ()) -> None:
        self.domain = domain
        self.events: list[Event] = []
        # Events since the last session start or restart: the history policies see.
        self.applied_events: list[Event] = []
        self.slots: dict[str, Any] = {slot.name: slot.initial_value for slot in domain.slots}
        self.set_slots: set[str] = set()
        self.active_loop: str | None = None
        # Whether the active loop refused the latest input / was interrupted by a rule;
        # both end when the loop's own action runs again or another loop starts.
        self.active_loop_rejected = False
        self.active_loop_interrupted = False
        self.latest_message: UserUttered | None = None
        self.latest_action: ActionExecuted | None = None
        for event in events:
            self.update(event)

    def update(self, event: Event) -> None:
        """Apply one event."""
        self.events.append(event)
        if isinstance(event, ActionExecuted) and event.action_name == ACTION_RESTART:
            self._reset(keep_slots=False)
            return
        if isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START:
            carry = bool(self.domain.session_config.get("carry_over_slots_to_new_session", True))
            self._reset(keep_slots=carry)
            return
        self.applied_events.append(event)
        if isinstance(event, UserUttered):
            self.latest_message = event
        elif isinstance(event, ActionExecuted):
            self.latest_action = event
            if self.active_loop is not None and event.action_name == self.active_loop:
                self.active_loop_rejected = False
        elif isinstance(event, SlotSet):
            value = bare_slot_value(self.domain, event.key) if event.bare else event.value
            self.slots[event.key] = value
            self.set_slots.add(event.key)
        elif isinstance(event, ActiveLoop):
            self.active_loop = event.name
            self.active_loop_rejected = False
            self.active_loop_interrupted = False
        elif isinstance(event, ActionExecutionRejected):
            if self.active_loop is not None and event.action_name == self.active_loop:
                self.active_loop_rejected = True
        elif isinstance(event, LoopInterrupted):
            if self.active_loop is not None:
                self.active_loop_interrupted = event.is_interrupted
        else:
            raise TypeError(f"cannot apply {type(event).__name__} to a tracker; expand 'or' steps first")

    def _reset(self, keep_slots: bool) -> None:
        self.applied_events = []
        self.latest_message = None
        self.latest_action = None
        self.active_loop = None
        self.active_loop_rejected = False
        self.active_loop_interrupted = False
        if not keep_slots:
            self.slots = {slot.name: slot.initial_value for slot in self.domain.slots}
            self.set_slots = set()
        else:
            # Rasa re-emits carried-over slots after the session start, so they count as set.
            self.applied_events.extend(
                SlotSet(name, value)
                for name, value in self.slots.items()
                if name in self.set_slots
            )

    @property
    def active_loop_name(self) -> str | None:
        """The running loop, None when there is none (or a rule requires none)."""
        if self.active_loop is None or self.active_loop == SHOULD_NOT_BE_SET:
            return None
        return self.active_loop

    def get_slot(self, name: str) -> Any:
        """Current value of a slot (None if unknown or unset)."""
        return self.slots.get(name)

    def past_states(self, omit_unset_slots: bool = False) -> list[dict[str, Any]]:
        """States before each action of the current session, plus the current state."""
        from trainkit.core.featurization import states_for_events

        states, _ = states_for_events(self.applied_events, self.domain, omit_unset_slots)
        return states

    def current_state(self, omit_unset_slots: bool = False) -> dict[str, Any]:
        """The state a policy would decide the next action from."""
        from trainkit.core.featurization import current_state

        return current_state(self, omit_unset_slots)
