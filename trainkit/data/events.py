"""The dialogue events that stories and rules are made of.

Events are frozen and hashable so that story steps can be compared, deduplicated and
used as cache keys; every event also has a JSON form (`as_dict`) so a story graph can be
fingerprinted independently of how its YAML was written.

Values that come from user data (slot values, entity values) may be lists or mappings in
YAML. They are stored "frozen": lists become tuples and mappings become `FrozenDict`, and
`thaw` turns them back into plain JSON values for `as_dict`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ACTION_LISTEN = "action_listen"
# Predicted by UnexpecTEDIntentPolicy when a user turn is unlikely in its context: a
# warning, which the other policies do not see as a turn of the conversation.
ACTION_UNLIKELY_INTENT = "action_unlikely_intent"
# Rasa marks the open ends of a rule ("anything may happen here") with this action name.
RULE_SNIPPET_ACTION = "..."


class FrozenDict(Mapping[str, Any]):
    """A read-only, hashable mapping, so mapping-valued slots can live inside frozen events."""

    __slots__ = ("_items", "_hash")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        frozen = {str(k): freeze(v) for k, v in (items or {}).items()}
        self._items = dict(sorted(frozen.items()))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._items.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._items!r})"


def freeze(value: Any) -> Any:
    """Make a JSON-like value hashable (lists -> tuples, mappings -> FrozenDict).

    Scalars YAML can produce but JSON cannot carry (dates, timestamps) become strings, so
    the frozen value always thaws back into something `json.dumps` accepts.
    """
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def thaw(value: Any) -> Any:
    """Inverse of `freeze`: plain lists and dicts again, for JSON output."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class StoryEntity:
    """One entity a user message carries in a story.

    `value` is None when the story names only the entity type (`- entity_name`).
    `start`/`end` are character offsets into the plain user text and are only known for
    end-to-end messages whose entities were annotated inline.
    """

    entity: str
    value: Any = None
    role: str | None = None
    group: str | None = None
    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", freeze(self.value))

    def as_dict(self) -> dict[str, Any]:
        """JSON form; optional attributes are left out when unset to keep it short."""
        out: dict[str, Any] = {"entity": self.entity, "value": thaw(self.value)}
        for name in ("role", "group", "start", "end"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoryEntity:
        """Rebuild from `as_dict` output."""
        return cls(
            entity=data["entity"],
            value=data.get("value"),
            role=data.get("role"),
            group=data.get("group"),
            start=data.get("start"),
            end=data.get("end"),
        )


@dataclass(frozen=True)
class UserUttered:
    """A user turn: an intent, an end-to-end text, or both.

    `intent` is the base intent (`faq` for the retrieval intent `faq/ask_name`); the full
    retrieval intent is kept in `full_retrieval_intent` for response selection.
    """

    intent: str | None = None
    text: str | None = None
    entities: tuple[StoryEntity, ...] = ()
    full_retrieval_intent: str | None = None

    type_name = "user"

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", tuple(self.entities))

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        out: dict[str, Any] = {
            "event": self.type_name,
            "intent": self.intent,
            "text": self.text,
            "entities": [e.as_dict() for e in self.entities],
        }
        if self.full_retrieval_intent is not None:
            out["full_retrieval_intent"] = self.full_retrieval_intent
        return out


@dataclass(frozen=True)
class ActionExecuted:
    """A bot turn: a named action, or (end-to-end) the literal text the bot said."""

    action_name: str | None = None
    action_text: str | None = None

    type_name = "action"

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        return {
            "event": self.type_name,
            "action_name": self.action_name,
            "action_text": self.action_text,
        }


@dataclass(frozen=True)
class SlotSet:
    """A slot taking a value.

    A story may list a slot by name only (`- slot_name`), saying it was set without saying
    to what. That is stored as `value=None, bare=True`, which differs from an explicit
    `slot_name: null` (`value=None, bare=False`).
    """

    key: str
    value: Any = None
    bare: bool = False

    type_name = "slot"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", freeze(self.value))

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        out: dict[str, Any] = {"event": self.type_name, "key": self.key, "value": thaw(self.value)}
        if self.bare:
            out["bare"] = True
        return out


@dataclass(frozen=True)
class ActiveLoop:
    """A form (loop) becoming active, or all loops ending when `name` is None."""

    name: str | None = None

    type_name = "active_loop"

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        return {"event": self.type_name, "name": self.name}


@dataclass(frozen=True)
class UserUtteranceOr:
    """An `or` step of user messages: any one of the alternatives continues the story.

    Kept as a single event rather than expanded here, so that tracker generation decides
    how to branch and the story graph stays a faithful picture of the file.
    """

    alternatives: tuple[UserUttered, ...] = field(default_factory=tuple)

    type_name = "user_or"

    def __post_init__(self) -> None:
        object.__setattr__(self, "alternatives", tuple(self.alternatives))

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        return {"event": self.type_name, "alternatives": [a.as_dict() for a in self.alternatives]}


@dataclass(frozen=True)
class SlotSetOr:
    """An `or` step of slot values: the story continues if any one of them was set."""

    alternatives: tuple[SlotSet, ...] = field(default_factory=tuple)

    type_name = "slot_or"

    def __post_init__(self) -> None:
        object.__setattr__(self, "alternatives", tuple(self.alternatives))

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        return {"event": self.type_name, "alternatives": [a.as_dict() for a in self.alternatives]}


@dataclass(frozen=True)
class ActionExecutionRejected:
    """An action refused to run (a form whose validation rejected the user's input).

    Stories never contain it: it happens in live conversations, and when test stories are
    replayed a form that the story does not continue is taken to have rejected the input.
    While the active loop is rejected, rules and other policies decide instead of it.
    """

    action_name: str

    type_name = "action_execution_rejected"

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        return {"event": self.type_name, "name": self.action_name}


@dataclass(frozen=True)
class LoopInterrupted:
    """The active loop is told that it was interrupted (and resumes after the interruption).

    RulePolicy attaches it to the prediction that returns control to a form after a
    general rule handled an off-topic message, so the form does not re-validate the input.
    """

    is_interrupted: bool = True

    type_name = "loop_interrupted"

    def as_dict(self) -> dict[str, Any]:
        """JSON form with an `event` type key."""
        return {"event": self.type_name, "is_interrupted": self.is_interrupted}


Event = (
    UserUttered
    | ActionExecuted
    | SlotSet
    | ActiveLoop
    | UserUtteranceOr
    | SlotSetOr
    | ActionExecutionRejected
    | LoopInterrupted
)


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from its `as_dict` form (used when loading cached story graphs)."""
    kind = data.get("event")
    if kind == UserUttered.type_name:
        return UserUttered(
            intent=data.get("intent"),
            text=data.get("text"),
            entities=tuple(StoryEntity.from_dict(e) for e in data.get("entities") or ()),
            full_retrieval_intent=data.get("full_retrieval_intent"),
        )
    if kind == ActionExecuted.type_name:
        return ActionExecuted(data.get("action_name"), data.get("action_text"))
    if kind == SlotSet.type_name:
        return SlotSet(data["key"], data.get("value"), bool(data.get("bare", False)))
    if kind == ActiveLoop.type_name:
        return ActiveLoop(data.get("name"))
    if kind == UserUtteranceOr.type_name:
        alternatives = tuple(event_from_dict(a) for a in data.get("alternatives") or ())
        return UserUtteranceOr(alternatives)  # type: ignore[arg-type]
    if kind == SlotSetOr.type_name:
        alternatives = tuple(event_from_dict(a) for a in data.get("alternatives") or ())
        return SlotSetOr(alternatives)  # type: ignore[arg-type]
    if kind == ActionExecutionRejected.type_name:
        return ActionExecutionRejected(data["name"])
    if kind == LoopInterrupted.type_name:
        return LoopInterrupted(bool(data.get("is_interrupted", True)))
    raise ValueError(f"unknown event type {kind!r}")
