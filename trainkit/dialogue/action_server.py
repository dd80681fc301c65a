"""A client of a Rasa action server (the `rasa_sdk` webhook protocol).

The request is Rasa's: `next_action`, `sender_id`, the tracker as Rasa's HTTP API shows
it, the domain in Rasa's layout and a version. The reply holds `events` to apply and
`responses` to send. A 400 reply naming the action is Rasa's "action rejected" (the
conversation asks the policies again); any other failure is an `ActionServerError`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from trainkit.data.domain import Domain
from trainkit.dialogue.endpoints import ActionEndpoint
from trainkit.errors import TrainkitError

# The Rasa version the request claims to come from: rasa_sdk checks compatibility by it.
RASA_COMPATIBLE_VERSION = "3.6.0"
# Replies larger than this are refused (an action server answers with a few events).
MAX_REPLY_BYTES = 10 * 1024 * 1024


class ActionServerError(TrainkitError):
    """The action server could not be reached or answered with something unusable."""


class ActionRejected(Exception):
    """The action server refused to run the action (Rasa's `ActionExecutionRejection`)."""


@dataclass
class ActionReply:
    """What a custom action asked for."""

    events: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)


def rasa_domain(domain: Domain) -> dict[str, Any]:
    """The domain in the layout `rasa_sdk` reads (`Domain.as_dict()` in Rasa)."""
    intents: list[Any] = []
    for name in domain.intents:
        properties = domain.intent_properties.get(name)
        intents.append({name: dict(properties)} if properties else name)
    slots = {
        slot.name: {
            "type": slot.type,
            "initial_value": slot.initial_value,
            "influence_conversation": slot.influence_conversation,
            "mappings": slot.mappings,
            **({"values": slot.values} if slot.type == "categorical" else {}),
            **({"min_value": slot.min_value, "max_value": slot.max_value} if slot.type == "float" else {}),
        }
        for slot in domain.slots
    }
    return {
        "version": "3.1",
        "config": {"store_entities_as_slots": domain.store_entities_as_slots},
        "session_config": dict(domain.session_config),
        "intents": intents,
        "entities": list(domain.entities),
        "slots": slots,
        "responses": domain.responses,
        "actions": list(domain.actions),
        "forms": domain.forms,
        "e2e_actions": list(domain.action_texts),
    }


def _reply_list(body: dict[str, Any], key: str, action: str) -> list[dict[str, Any]]:
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ActionServerError(f"the action server's reply for '{action}' has '{key}' that is not a list of objects")
    return items


class ActionServerClient:
    """Runs custom actions on the server an `ActionEndpoint` names."""

    def __init__(self, endpoint: ActionEndpoint) -> None:
        self.endpoint = endpoint

    def run(self, action: str, sender_id: str, tracker: dict[str, Any], domain: dict[str, Any]) -> ActionReply:
        """POST the action request and read the reply."""
        payload = {"next_action": action, "sender_id": sender_id, "tracker": tracker, "domain": domain,
                   "version": RASA_COMPATIBLE_VERSION}
        request = urllib.request.Request(
            self.endpoint.url, data=json.dumps(payload).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.endpoint.timeout) as response:
                raw = response.read(MAX_REPLY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(65536).decode("utf-8", "replace")
            if exc.code == 400 and _names_action(detail, action):
                raise ActionRejected(action) from None
            raise ActionServerError(
                f"the action server at {self.endpoint.url} failed to run '{action}': HTTP {exc.code} {detail[:200]}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ActionServerError(
                f"cannot reach the action server at {self.endpoint.url} to run '{action}': {reason}"
            ) from None
        if len(raw) > MAX_REPLY_BYTES:
            raise ActionServerError(f"the action server's reply for '{action}' is over {MAX_REPLY_BYTES} bytes")
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except ValueError as exc:
            raise ActionServerError(f"the action server's reply for '{action}' is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ActionServerError(f"the action server's reply for '{action}' is not a JSON object")
        return ActionReply(_reply_list(body, "events", action), _reply_list(body, "responses", action))


def _names_action(detail: str, action: str) -> bool:
    try:
        body = json.loads(detail)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("action_name") == action
