"""From events to states: what dialogue policies actually look at.

A state is the conversation at the moment an action is about to be chosen, in Rasa's
shape: `user` (intent or text, plus the entities that intent lets influence the
dialogue), `prev_action`, `slots` (featurized values, so a text slot only says "set") and
`active_loop`. Empty parts are left out. States are plain JSON values with a canonical
form (`state_key`), so memorized histories and rules can be stored as JSON and compared
as strings.

The numeric encoding for the neural policy (`StateEncoder`) lives here too, so every
policy agrees on which parts of the dialogue matter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainkit.core.tracker import (
    ACTION_RESTART,
    ACTION_SESSION_START,
    SHOULD_NOT_BE_SET,
    DialogueStateTracker,
)
from trainkit.data.domain import Domain, Slot
from trainkit.data.events import RULE_SNIPPET_ACTION, ActionExecuted, Event, SlotSet, UserUttered
from trainkit.ml.sparse import CSR

State = dict[str, dict[str, Any]]

USER = "user"
PREVIOUS_ACTION = "prev_action"
SLOTS = "slots"
ACTIVE_LOOP = "active_loop"
ENTITY_LABEL_SEPARATOR = "#"
CATEGORICAL_OTHER = "__other__"


# --- slots ----------------------------------------------------------------------------------


def slot_is_featurized(slot: Slot) -> bool:
    """Slots with `influence_conversation: false` (and `any` slots) never reach a state."""
    return slot.influence_conversation and slot.type != "any"


def categorical_values(slot: Slot) -> list[str]:
    """Lower-cased values plus the catch-all Rasa adds for values not in the list."""
    values = [str(v).lower() for v in slot.values]
    if CATEGORICAL_OTHER not in values:
        values.append(CATEGORICAL_OTHER)
    return values


def slot_dimension(slot: Slot) -> int:
    """How many numbers the slot contributes to a state."""
    if not slot_is_featurized(slot):
        return 0
    return {"text": 1, "list": 1, "bool": 2, "float": 2}.get(
        slot.type, len(categorical_values(slot))
    )


def _bool_from_any(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "y", "on"):
            return True
        if text in ("false", "0", "no", "n", "off"):
            return False
    raise ValueError(f"not a boolean: {value!r}")


def slot_features(slot: Slot, value: Any) -> list[float]:
    """The featurized slot value; all zeros means "not set" (and the slot is left out)."""
    dim = slot_dimension(slot)
    if dim == 0:
        return []
    if slot.type == "text":
        return [0.0 if value is None else 1.0]
    if slot.type == "list":
        try:
            return [1.0 if value is not None and len(value) > 0 else 0.0]
        except TypeError:
            return [1.0]
    if slot.type == "bool":
        if value is None:
            return [0.0, 0.0]
        try:
            return [1.0, float(_bool_from_any(value))]
        except ValueError:
            return [0.0, 0.0]
    if slot.type == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return [0.0, 0.0]
        low, high = slot.min_value, slot.max_value
        span = abs(high - low) or 1.0
        return [1.0, (max(low, min(high, number)) - low) / span]
    values = categorical_values(slot)
    out = [0.0] * len(values)
    if value is not None:
        text = str(value).lower()
        out[values.index(text) if text in values else values.index(CATEGORICAL_OTHER)] = 1.0
    return out


# --- entities -------------------------------------------------------------------------------


def featurized_entity_labels(domain: Domain, intent: str | None) -> set[str]:
    """Entity labels (`entity`, `entity#role`, `entity#group`) an intent lets through.

    An intent's `use_entities` / `ignore_entities` pick the entities; entities declared
    with `influence_conversation: false` never count.
    """
    names = domain.used_entities(intent) if intent is not None else list(domain.entities)
    allowed = {e for e in names if domain.entity_influence_conversation.get(e, True)}
    labels = set(allowed)
    for entity in allowed:
        labels.update(f"{entity}{ENTITY_LABEL_SEPARATOR}{r}" for r in domain.entity_roles.get(entity, []))
        labels.update(f"{entity}{ENTITY_LABEL_SEPARATOR}{g}" for g in domain.entity_groups.get(entity, []))
    return labels


def message_entity_labels(message: UserUttered) -> set[str]:
    """Every label a user message carries: bare entity types plus role/group variants."""
    labels: set[str] = set()
    for entity in message.entities:
        labels.add(entity.entity)
        if entity.role is not None:
            labels.add(f"{entity.entity}{ENTITY_LABEL_SEPARATOR}{entity.role}")
        if entity.group is not None:
            labels.add(f"{entity.entity}{ENTITY_LABEL_SEPARATOR}{entity.group}")
    return labels


# --- states ---------------------------------------------------------------------------------


class DomainView:
    """What state building needs from a domain, computed once per domain.

    Building states is the hot loop of training (every action of every tracker), so
    per-intent entity filters and the featurized slots are looked up, not recomputed.
    """

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.slots = [slot for slot in domain.slots if slot_is_featurized(slot)]
        self._entity_labels: dict[str | None, set[str]] = {}

    def entity_labels(self, intent: str | None) -> set[str]:
        """Entity labels the intent lets influence the dialogue."""
        if intent not in self._entity_labels:
            self._entity_labels[intent] = featurized_entity_labels(self.domain, intent)
        return self._entity_labels[intent]


def _user_part(message: UserUttered | None, view: DomainView) -> dict[str, Any] | None:
    if message is None or (message.intent is None and message.text is None):
        return None
    user: dict[str, Any] = {}
    if message.intent is not None:
        user["intent"] = message.intent
    else:
        user["text"] = message.text
    entities = message_entity_labels(message) & view.entity_labels(message.intent)
    if entities:
        user["entities"] = sorted(entities)
    return user


def _slots_part(tracker: DialogueStateTracker, omit_unset_slots: bool, view: DomainView) -> dict[str, Any]:
    slots: dict[str, Any] = {}
    for slot in view.slots:
        if omit_unset_slots and slot.name not in tracker.set_slots:
            continue
        value = tracker.slots.get(slot.name)
        if value == SHOULD_NOT_BE_SET:
            slots[slot.name] = SHOULD_NOT_BE_SET
            continue
        features = slot_features(slot, value)
        if any(features):
            slots[slot.name] = features
    return slots


def _assemble(
    user: dict[str, Any] | None,
    action: ActionExecuted | None,
    slots: dict[str, Any],
    active_loop: str | None,
) -> State:
    state: State = {}
    if user:
        state[USER] = user
    if action is not None:
        if action.action_name is not None:
            state[PREVIOUS_ACTION] = {"action_name": action.action_name}
        elif action.action_text is not None:
            state[PREVIOUS_ACTION] = {"action_text": action.action_text}
    if slots:
        state[SLOTS] = slots
    if active_loop is not None:
        state[ACTIVE_LOOP] = {"name": active_loop}
    return state


def current_state(
    tracker: DialogueStateTracker, omit_unset_slots: bool = False, view: DomainView | None = None
) -> State:
    """The tracker's state now.

    `omit_unset_slots` keeps only slots some event set, which is how rules are written:
    a rule names the slots it cares about and says nothing about the others.
    """
    view = view or DomainView(tracker.domain)
    return _assemble(
        _user_part(tracker.latest_message, view),
        tracker.latest_action,
        _slots_part(tracker, omit_unset_slots, view),
        tracker.active_loop,
    )


def states_for_events(
    events: Iterable[Event],
    domain: Domain,
    omit_unset_slots: bool = False,
    view: DomainView | None = None,
) -> tuple[list[State], list[int]]:
    """States before every action of the current session plus the final state.

    Returns the states and, for each state but the last, the position of the action that
    followed it in `events`. A session start or restart drops the history before it.
    """
    view = view or DomainView(domain)
    tracker = DialogueStateTracker(domain)
    states: list[State] = []
    positions: list[int] = []
    slots: dict[str, Any] | None = None
    user_for: tuple[UserUttered | None, dict[str, Any] | None] = (None, None)

    def snapshot() -> State:
        nonlocal slots, user_for
        if slots is None:
            slots = _slots_part(tracker, omit_unset_slots, view)
        if user_for[0] is not tracker.latest_message:
            user_for = (tracker.latest_message, _user_part(tracker.latest_message, view))
        return _assemble(user_for[1], tracker.latest_action, slots, tracker.active_loop)

    for position, event in enumerate(events):
        if isinstance(event, ActionExecuted):
            if event.action_name in (ACTION_SESSION_START, ACTION_RESTART):
                tracker.update(event)
                states, positions, slots = [], [], None
                continue
            states.append(snapshot())
            positions.append(position)
        elif isinstance(event, SlotSet):
            slots = None
        tracker.update(event)
    states.append(snapshot())
    return states, positions


def user_turn_positions(events: Sequence[Event]) -> list[int | None]:
    """For each state `states_for_events` builds, where in `events` its user turn is.

    None where the state holds no user turn (before the first one of the session).
    End-to-end training needs it to featurize one turn's states from its text.
    """
    turns: list[int | None] = []
    latest: int | None = None
    for position, event in enumerate(events):
        if isinstance(event, ActionExecuted):
            if event.action_name in (ACTION_SESSION_START, ACTION_RESTART):
                turns, latest = [], None
                continue
            turns.append(latest)
        elif isinstance(event, UserUttered):
            latest = position
    turns.append(latest)
    return turns


def states_from_text(
    states: Sequence[State], turns: Sequence[int | None], events: Sequence[Event]
) -> list[State] | None:
    """The states with the latest user turn featurized from its text instead of its intent.

    Rasa featurizes a message that has both an intent and a text either way and lets
    TED pick; the states of that turn then carry the text alone (entities belong to the
    intent's reading). None when the latest turn does not have both.
    """
    latest = turns[-1] if turns else None
    message = events[latest] if latest is not None else None
    if not isinstance(message, UserUttered) or message.intent is None or not message.text:
        return None
    return [
        {**state, USER: {"text": message.text}} if turn == latest and USER in state else state
        for state, turn in zip(states, turns, strict=True)
    ]


def action_label(event: ActionExecuted) -> str:
    """What a policy predicts for this action: its name or end-to-end text."""
    return event.action_name if event.action_name is not None else str(event.action_text)


@dataclass
class LabelledHistory:
    """One training example: the states up to a decision and the action taken there.

    `key` is `state_key(states)`, built from per-state pieces computed once per tracker.
    """

    states: list[State]
    action: str
    key: str


def training_examples(
    events: Sequence[Event],
    domain: Domain,
    max_history: int | None,
    unpredictable: Iterable[int] = (),
    omit_unset_slots: bool = False,
    view: DomainView | None = None,
    text_variants: bool = False,
) -> list[LabelledHistory]:
    """Every (history, action) pair a tracker teaches.

    Actions marked unpredictable (a story that opens with a bot action has nothing to
    predict it from) and rule snippet markers (`...`) are not labels. With
    `text_variants`, a decision after a user turn that has both an intent and a text is
    taught twice: once from the intent, once from the text (`states_from_text`), so
    either reading of a live message leads to the story's action.
    """
    skip = set(unpredictable)
    states, positions = states_for_events(events, domain, omit_unset_slots, view)
    pieces = [_state_json(state) for state in states]
    turns = user_turn_positions(events) if text_variants else []
    out = []
    for index, position in enumerate(positions):
        event = events[position]
        assert isinstance(event, ActionExecuted)
        if position in skip or event.action_name == RULE_SNIPPET_ACTION:
            continue
        start = 0 if not max_history else max(0, index + 1 - max_history)
        label = action_label(event)
        out.append(LabelledHistory(states[start : index + 1], label, "[" + ",".join(pieces[start : index + 1]) + "]"))
        if text_variants:
            from_text = states_from_text(states[start : index + 1], turns[start : index + 1], events)
            if from_text is not None:
                out.append(LabelledHistory(from_text, label, state_key(from_text)))
    return out


def slice_history(states: list[State], max_history: int | None) -> list[State]:
    """The last `max_history` states (all of them when it is None)."""
    if not max_history:
        return list(states)
    return list(states[-max_history:])


def _state_json(state: State) -> str:
    return json.dumps(state, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def state_key(states: Sequence[State]) -> str:
    """Canonical JSON of a state history, the key of lookups and duplicate checks."""
    return "[" + ",".join(_state_json(state) for state in states) + "]"


# --- numeric encoding -----------------------------------------------------------------------


@dataclass
class StateEncoder:
    """Turns a state into a fixed-length vector (multi-hot parts plus slot values).

    The vocabulary comes from the domain, never from the data, so the same domain always
    gives the same layout. A leading "present" unit tells a real (possibly empty) state
    apart from the padding in front of short histories.
    """

    index: dict[str, int] = field(default_factory=dict)
    slot_offsets: dict[str, int] = field(default_factory=dict)
    slot_sizes: dict[str, int] = field(default_factory=dict)
    size: int = 0

    @classmethod
    def from_domain(cls, domain: Domain, action_texts: bool = True) -> StateEncoder:
        """Layout: present, intents, entity labels, previous actions, slots, loops.

        Without `action_texts` the end-to-end bot texts get no unit of their own: a
        policy that featurizes texts encodes what the bot said, not which text it was.
        """
        names = ["present"]
        names += [f"intent:{i}" for i in domain.all_intents]
        entity_labels: set[str] = set()
        for intent in domain.all_intents:
            entity_labels |= featurized_entity_labels(domain, intent)
        names += [f"entity:{e}" for e in sorted(entity_labels)]
        texts = set() if action_texts else set(domain.action_texts) - set(domain.user_actions)
        names += [f"prev_action:{a}" for a in domain.action_names_or_texts if a not in texts]
        names += [f"active_loop:{f}" for f in domain.form_names]
        index = {name: i for i, name in enumerate(dict.fromkeys(names))}
        size = len(index)
        offsets: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for slot in domain.slots:
            dim = slot_dimension(slot)
            if dim:
                offsets[slot.name] = size
                sizes[slot.name] = dim
                size += dim
        return cls(index, offsets, sizes, size)

    def encode(self, states: Sequence[State], length: int) -> np.ndarray:
        """(length, size) matrix of the last `length` states, zero rows in front as padding."""
        out = np.zeros((length, self.size), dtype=np.float32)
        recent = list(states)[-length:] if length else []
        start = length - len(recent)
        for row, state in enumerate(recent, start=start):
            self._fill(out[row], state)
        return out

    def history_matrix(
        self,
        histories: Sequence[Sequence[State]],
        length: int,
        width: int | None = None,
        extra: Callable[[State], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> CSR:
        """`encode` of every history, each flattened into one row of a sparse matrix.

        A row has `length` blocks of `width` columns (default `size`): a state's encoding,
        then the columns `extra(state)` returns (positions in [size, width), e.g. its
        featurized texts). A state has a handful of non-zero units against a window of
        `length * width` columns, and with `max_history` unset the window is the longest
        training history, so a dense (n, length * width) layout would grow with the
        square of the story length; this one grows with the states the histories hold.
        Histories share their state objects (every prefix of a story is an example), so
        each distinct state is encoded once.
        """
        width = self.size if width is None else width
        entries: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        columns: list[np.ndarray] = []
        values: list[np.ndarray] = []
        counts = np.zeros(len(histories), np.int64)
        row = np.zeros(self.size, dtype=np.float32)
        for i, states in enumerate(histories):
            recent = list(states)[-length:] if length else []
            start = length - len(recent)
            for position, state in enumerate(recent, start=start):
                found = entries.get(id(state))
                if found is None:
                    row[:] = 0.0
                    self._fill(row, state)
                    hot = np.flatnonzero(row)
                    cols, vals = hot, row[hot].astype(np.float64)
                    if extra is not None:
                        more_cols, more_vals = extra(state)
                        cols = np.concatenate([cols, np.asarray(more_cols, np.int64)])
                        vals = np.concatenate([vals, np.asarray(more_vals, np.float64)])
                    found = entries[id(state)] = (cols, vals)
                columns.append(found[0] + position * width)
                values.append(found[1])
                counts[i] += found[0].size
        indptr = np.zeros(len(histories) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        if not columns:
            return CSR.empty(len(histories), length * width)
        return CSR(np.concatenate(values), np.concatenate(columns), indptr, (len(histories), length * width))

    def _fill(self, vector: np.ndarray, state: State) -> None:
        """Write one state's units into its (zeroed) row."""
        vector[0] = 1.0
        user = state.get(USER, {})
        self._hot(vector, f"intent:{user.get('intent')}")
        for entity in user.get("entities", []):
            self._hot(vector, f"entity:{entity}")
        action = state.get(PREVIOUS_ACTION, {})
        self._hot(vector, f"prev_action:{action.get('action_name', action.get('action_text'))}")
        self._hot(vector, f"active_loop:{state.get(ACTIVE_LOOP, {}).get('name')}")
        for name, features in state.get(SLOTS, {}).items():
            if name in self.slot_offsets and isinstance(features, list):
                offset = self.slot_offsets[name]
                vector[offset : offset + self.slot_sizes[name]] = features[: self.slot_sizes[name]]

    def _hot(self, vector: np.ndarray, name: str) -> None:
        position = self.index.get(name)
        if position is not None:
            vector[position] = 1.0

    def as_dict(self) -> dict[str, Any]:
        """JSON form, persisted with the model that was trained on this layout."""
        return {
            "index": self.index,
            "slot_offsets": self.slot_offsets,
            "slot_sizes": self.slot_sizes,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StateEncoder:
        """Inverse of `as_dict`."""
        return cls(
            {str(k): int(v) for k, v in data["index"].items()},
            {str(k): int(v) for k, v in data["slot_offsets"].items()},
            {str(k): int(v) for k, v in data["slot_sizes"].items()},
            int(data["size"]),
        )
