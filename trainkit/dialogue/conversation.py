"""One conversation with a trained assistant: what `trainkit shell` and `trainkit run` share.

A user message is parsed, its slots are filled through the slot mappings, and then the
policies choose actions one after another until they choose `action_listen` (at most
`max_actions` in a row, so a model that never listens cannot spin forever). Responses
are rendered, forms run on their happy path, default actions do what Rasa's do, and
custom actions run on the action server when one is configured; without one the
conversation says which custom action would have run and goes on.

The conversation keeps Rasa's event log (the JSON Rasa's tracker API shows and the
action server reads); the policies see the same events read back into trainkit's event
types, so a live conversation and `Model.predict_next_action` on its log agree.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from trainkit.core.rasa_events import RasaEventReader, event_to_rasa, rasa_event, user_event
from trainkit.core.tracker import ACTION_RESTART, ACTION_SESSION_START, DialogueStateTracker
from trainkit.data.domain import DEFAULT_ACTIONS, REQUESTED_SLOT
from trainkit.data.events import ACTION_LISTEN
from trainkit.dialogue.action_server import (
    ActionRejected,
    ActionServerClient,
    ActionServerError,
    rasa_domain,
)
from trainkit.dialogue.forms import filled_this_turn, run_form
from trainkit.dialogue.responses import render_response, render_variation
from trainkit.dialogue.slot_filling import extract_slots
from trainkit.errors import TrainkitError

DEFAULT_MAX_ACTIONS = 10
ACTION_DEFAULT_FALLBACK = "action_default_fallback"
ACTION_DEACTIVATE_LOOP = "action_deactivate_loop"
ACTION_BACK = "action_back"
ACTION_EXTRACT_SLOTS = "action_extract_slots"
ACTION_VALIDATE_SLOT_MAPPINGS = "action_validate_slot_mappings"
# Default actions that change nothing here (their Rasa behaviour needs no events).
_QUIET_DEFAULTS = frozenset({"action_unlikely_intent", "action_revert_fallback_events"})
# Default fallbacks trainkit answers like `action_default_fallback`: the two-stage
# dialogue (ask for affirmation, then for rephrasing) is not implemented.
_FALLBACKS = {
    ACTION_DEFAULT_FALLBACK: "utter_default",
    "action_two_stage_fallback": "utter_default",
    "action_default_ask_affirmation": "utter_default",
    "action_default_ask_rephrase": "utter_ask_rephrase",
}
# Keys of an action server response item that are not template values.
_RESPONSE_ITEM_KEYS = frozenset({"text", "buttons", "image", "custom", "attachment", "elements",
                                 "quick_replies", "response", "template"})
_MESSAGE_KEYS = ("text", "buttons", "image", "custom", "attachment", "elements", "quick_replies")


class _Step(Enum):
    """How a turn goes on after an action: predict the next one, wait for the user, or
    predict again without the action that refused to run."""

    GO_ON = "go on"
    WAIT = "wait"
    REJECTED = "rejected"


@dataclass
class Reply:
    """What the bot did in answer to one message."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    # Things a person running the assistant should know that the user should not see.
    notices: list[str] = field(default_factory=list)
    # Messages (dicts) and notices (strings) in the order they happened, for the shell.
    transcript: list[dict[str, Any] | str] = field(default_factory=list)

    def message(self, content: dict[str, Any]) -> None:
        """Record a message the user is sent."""
        self.messages.append(content)
        self.transcript.append(content)

    def notice(self, text: str) -> None:
        """Record a note for the person running the assistant."""
        self.notices.append(text)
        self.transcript.append(text)


class Conversation:
    """The state and the turn-taking of one conversation (one `sender_id`)."""

    def __init__(
        self,
        model: Any,
        sender_id: str = "default",
        rng: random.Random | None = None,
        action_server: ActionServerClient | None = None,
        max_actions: int = DEFAULT_MAX_ACTIONS,
        input_channel: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if model.ensemble is None:
            raise TrainkitError(f"{model.name} has no dialogue policies (it is an NLU-only model); "
                                "a conversation needs a model trained with stories or rules")
        self.model = model
        self.domain = model.domain
        self.sender_id = sender_id
        self.rng = rng if rng is not None else random.Random()
        self.action_server = action_server
        self.max_actions = max_actions
        self.input_channel = input_channel
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self._reader = RasaEventReader(self.domain)
        self._last_user_time: float | None = None
        # An action the action server asked to run next (a `followup` event).
        self._followup: str | None = None

    # ------------------------------------------------------------------- state

    def tracker(self) -> DialogueStateTracker:
        """The dialogue state after every event so far."""
        return DialogueStateTracker(self.domain, self._reader.events)

    def tracker_state(self) -> dict[str, Any]:
        """The tracker as Rasa's HTTP API and action server show it."""
        tracker = self.tracker()
        latest_user = next((e for e in reversed(self.events) if e["event"] == "user"), None)
        latest_action = tracker.latest_action
        loop = tracker.active_loop_name
        return {
            "sender_id": self.sender_id,
            "slots": {name: tracker.get_slot(name) for name in self.domain.all_slot_names},
            "latest_message": dict(latest_user["parse_data"]) if latest_user else {},
            "latest_event_time": self.events[-1]["timestamp"] if self.events else None,
            "followup_action": None,
            "paused": False,
            "events": list(self.events),
            "latest_input_channel": latest_user.get("input_channel") if latest_user else None,
            "active_loop": {"name": loop, "validate": True, "rejected": tracker.active_loop_rejected,
                            "is_interrupted": tracker.active_loop_interrupted} if loop else {},
            "latest_action": {"action_name": latest_action.action_name} if latest_action else {},
            "latest_action_name": latest_action.action_name if latest_action else None,
        }

    def _log(self, event: dict[str, Any]) -> None:
        self._reader.read(event)
        self.events.append(event)

    # ------------------------------------------------------------------ turns

    def handle_message(self, text: str, metadata: Mapping[str, Any] | None = None) -> Reply:
        """Answer one user message."""
        reply = Reply()
        now = self.clock()
        if not self.events or self._session_expired(now):
            self._start_session()
        self._last_user_time = now
        parse_data = self.model.parse(text)
        self._log(user_event(parse_data, self.input_channel, metadata=metadata))
        self._extract_slots(parse_data, reply)
        self._predict_and_run(reply)
        return reply

    def _session_expired(self, now: float) -> bool:
        minutes = float(self.domain.session_config.get("session_expiration_time") or 0)
        return minutes > 0 and self._last_user_time is not None and now - self._last_user_time > minutes * 60

    def _start_session(self) -> None:
        """Rasa's `action_session_start`: a new session, then listen."""
        self._log(rasa_event("action", name=ACTION_SESSION_START))
        self._log(rasa_event("session_started"))
        self._log(rasa_event("action", name=ACTION_LISTEN))

    def _extract_slots(self, parse_data: Mapping[str, Any], reply: Reply) -> None:
        """Rasa's `action_extract_slots`: the predefined mappings, then (with an action
        server) the actions of `custom` mappings and `action_validate_slot_mappings`, of
        which only the slots they set count."""
        for name, value in extract_slots(parse_data, self.tracker()).items():
            self._log(rasa_event("slot", name=name, value=value))
        if self.action_server is None:
            return
        actions = [mapping["action"] for slot in self.domain.slots for mapping in slot.mappings
                   if mapping.get("type") == "custom" and isinstance(mapping.get("action"), str)]
        if ACTION_VALIDATE_SLOT_MAPPINGS in self.domain.actions:
            actions.append(ACTION_VALIDATE_SLOT_MAPPINGS)
        for action in dict.fromkeys(actions):
            if action in self.domain.actions:
                try:
                    self._call_action_server(action, reply, only_slots=True)
                except ActionRejected:
                    reply.notice(f"the action server rejected '{action}' (a custom slot mapping)")

    def _predict_and_run(self, reply: Reply) -> None:
        rejected: str | None = None
        for _ in range(self.max_actions):
            if self._followup is not None:
                action, self._followup = self._followup, None
            else:
                prediction = self.model.ensemble.predict_next_action(self._reader.events, exclude=rejected)
                action = prediction.action
                for event in prediction.prediction.optional_events:
                    self._log(event_to_rasa(event))
            if action == ACTION_LISTEN:
                self._log(rasa_event("action", name=ACTION_LISTEN))
                return
            step = self._run(action, reply)
            if step is _Step.WAIT:
                return
            rejected = action if step is _Step.REJECTED else None
        reply.notice(f"stopped after {self.max_actions} actions without action_listen; listening now")
        self._log(rasa_event("action", name=ACTION_LISTEN))

    # ---------------------------------------------------------------- actions

    def _run(self, action: str, reply: Reply) -> _Step:
        """Run one action and say how the turn goes on."""
        if action in self.domain.forms:
            return self._run_form(action, reply)
        if action in self.domain.responses or action in self.domain.retrieval_actions:
            self._log_action(action, reply)
            self._utter(action, reply)
            return _Step.GO_ON
        if action in DEFAULT_ACTIONS:
            return self._run_default(action, reply)
        if action in self.domain.action_texts:
            self._log(rasa_event("action", name=None, action_text=action))
            reply.actions.append(action)
            self._send({"text": action}, reply)
            return _Step.GO_ON
        return self._run_custom(action, reply)

    def _log_action(self, action: str, reply: Reply) -> None:
        self._log(rasa_event("action", name=action))
        reply.actions.append(action)

    def _utter(self, name: str, reply: Reply, extra: Mapping[str, Any] | None = None) -> None:
        tracker = self.tracker()
        if name in self.domain.retrieval_actions:
            message = self._retrieval_response(name, tracker)
        else:
            message = render_response(self.domain.responses, name, tracker.slots, self.rng, self.input_channel, extra)
        if message is None:
            reply.notice(f"the domain has no response '{name}' to send")
            return
        self._send(message, reply)

    def _retrieval_response(self, action: str, tracker: DialogueStateTracker) -> dict[str, Any] | None:
        """`utter_faq` answers with the response the response selector chose for the message."""
        latest_user = next((e for e in reversed(self.events) if e["event"] == "user"), None)
        selector = (latest_user or {}).get("parse_data", {}).get("response_selector") or {}
        intent = action.removeprefix("utter_")
        chosen = (selector.get(intent) or selector.get("default") or {}).get("response") or {}
        key = chosen.get("utter_action")
        if isinstance(key, str) and key in self.domain.responses:
            message = render_response(self.domain.responses, key, tracker.slots, self.rng, self.input_channel)
            return message
        variations = chosen.get("responses") or []
        return render_variation(variations[0], tracker.slots) if variations else None

    def _send(self, message: dict[str, Any], reply: Reply) -> None:
        # rasa_sdk sends every key, empty ones as null, [] or {}: those say nothing.
        content = {key: message[key] for key in _MESSAGE_KEYS if message.get(key) not in (None, [], {}, "")}
        if not content:
            return
        name = message.get("response")
        data = {key: value for key, value in content.items() if key != "text"}
        self._log(rasa_event("bot", text=content.get("text"), data=data,
                             metadata={"utter_action": name} if name else {}))
        reply.message(content)

    def _run_form(self, form: str, reply: Reply) -> _Step:
        self._validate_form_slots(form, reply)
        run = run_form(form, self.tracker())
        if run.rejected:
            self._log(rasa_event("action_execution_rejected", name=form))
            return _Step.REJECTED
        self._log_action(form, reply)
        for event in run.events:
            self._log(event)
        if run.asked_slot is not None and run.ask is None:
            reply.notice(f"form '{form}' needs slot '{run.asked_slot}' but the domain has no "
                                 f"utter_ask_{run.asked_slot} response or action_ask_{run.asked_slot} action")
        elif run.ask is not None and run.ask.startswith("utter_"):
            self._utter(run.ask, reply)
        elif run.ask is not None:
            self._call_action_server(run.ask, reply)
        return _Step.GO_ON

    def _validate_form_slots(self, form: str, reply: Reply) -> None:
        """Rasa's custom form validation: `validate_<form>` on the action server sees the
        slots this message filled and may change them (a None refuses a value)."""
        validator = f"validate_{form}"
        if self.action_server is None or validator not in self.domain.actions:
            return
        tracker = self.tracker()
        required = set(self.domain.forms[form].get("required_slots") or [])
        if tracker.active_loop_name == form and not filled_this_turn(tracker) & required:
            return
        try:
            self._call_action_server(validator, reply)
        except ActionRejected:
            reply.notice(f"the action server rejected '{validator}'")

    def _run_default(self, action: str, reply: Reply) -> _Step:
        self._log_action(action, reply)
        if action == ACTION_RESTART:
            if "utter_restart" in self.domain.responses:
                self._utter("utter_restart", reply)
            self._log(rasa_event("restart"))
            self._start_session()
            return _Step.WAIT
        if action == ACTION_SESSION_START:
            self._log(rasa_event("session_started"))
            self._log(rasa_event("action", name=ACTION_LISTEN))
            return _Step.WAIT
        if action in _FALLBACKS:
            if _FALLBACKS[action] in self.domain.responses:
                self._utter(_FALLBACKS[action], reply)
            self._log(rasa_event("rewind"))
            return _Step.WAIT
        if action == ACTION_BACK:
            if "utter_back" in self.domain.responses:
                self._utter("utter_back", reply)
            self._log(rasa_event("rewind"))
            self._log(rasa_event("rewind"))
            return _Step.WAIT
        if action == ACTION_DEACTIVATE_LOOP:
            self._log(rasa_event("active_loop", name=None))
            self._log(rasa_event("slot", name=REQUESTED_SLOT, value=None))
            return _Step.GO_ON
        if action == ACTION_EXTRACT_SLOTS:
            latest = self.tracker_state()["latest_message"]
            if latest:
                self._extract_slots(latest, reply)
            return _Step.GO_ON
        if action not in _QUIET_DEFAULTS:
            reply.notice(f"default action '{action}' has no effect in trainkit's runtime")
        return _Step.GO_ON

    def _run_custom(self, action: str, reply: Reply) -> _Step:
        if action not in self.domain.actions:
            raise TrainkitError(f"the policies predicted '{action}', which is not an action of the domain")
        if self.action_server is None:
            self._log_action(action, reply)
            reply.notice(f"custom action '{action}' would run here (no action_endpoint in endpoints.yml)")
            return _Step.GO_ON
        try:
            return self._call_action_server(action, reply, log_as_action=True)
        except ActionRejected:
            self._log(rasa_event("action_execution_rejected", name=action))
            return _Step.REJECTED

    def _call_action_server(self, action: str, reply: Reply, log_as_action: bool = False,
                            only_slots: bool = False) -> _Step:
        """Run a custom action remotely; its events (`only_slots`: its slot events) and
        responses join the conversation."""
        assert self.action_server is not None
        try:
            answer = self.action_server.run(action, self.sender_id, self.tracker_state(), rasa_domain(self.domain))
        except ActionServerError as exc:
            reply.notice(str(exc))
            if log_as_action:
                self._log_action(action, reply)
            return _Step.GO_ON
        if log_as_action:
            self._log_action(action, reply)
        for index, event in enumerate(answer.events):
            if only_slots and event.get("event") != "slot":
                continue
            try:
                self._log(dict(event, timestamp=event.get("timestamp") or time.time()))
            except TrainkitError as exc:
                reply.notice(f"custom action '{action}' returned an unusable event {index}: {exc}")
                continue
            if event.get("event") == "followup" and isinstance(event.get("name"), str):
                self._followup = event["name"]
        for item in answer.responses:
            name = item.get("response") or item.get("template")
            extra = {k: v for k, v in item.items() if k not in _RESPONSE_ITEM_KEYS}
            if isinstance(name, str):
                self._utter(name, reply, extra)
            else:
                self._send(item, reply)
        return _Step.GO_ON

