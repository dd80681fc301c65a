"""`trainkit run`: Rasa's HTTP API for parsing and talking, on the standard library.

Routes (Rasa's paths and shapes):

- `GET /status`: the model file, its fingerprint and training type;
- `POST /model/parse` `{"text": ...}`: the parse result;
- `POST /webhooks/rest/webhook` `{"sender": ..., "message": ...}`: the bot's messages,
  `[{"recipient_id", "text", "buttons", "image", ...}]`; one conversation per sender;
- `GET /conversations/<sender>/tracker`: that conversation's tracker JSON.

Trackers live in memory (the `max_conversations` most recently active). The server binds 127.0.0.1 unless told otherwise, refuses
bodies over `max_body_bytes` (413) and answers every error as Rasa does, a JSON object
with `status: failure`, a `reason` and a `message`, never a traceback. Requests are
served by threads; one lock per conversation keeps a sender's turns in order, and one
lock around the model keeps the numpy components from running twice at once.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

from trainkit.dialogue.action_server import ActionServerClient
from trainkit.dialogue.conversation import DEFAULT_MAX_ACTIONS, Conversation
from trainkit.errors import TrainkitError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5005
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Conversations kept in memory; past this the least recently active one is forgotten.
DEFAULT_MAX_CONVERSATIONS = 10_000
# Seconds a connection may sit idle (or trickle a request) before it is closed.
CONNECTION_TIMEOUT = 60
REST_CHANNEL = "rest"
_TRAINING_TYPES = {1: "NLU", 2: "CORE", 3: "BOTH", 4: "END_TO_END"}

logger = logging.getLogger(__name__)


class RequestError(Exception):
    """A request the server answers with an error status."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Assistant:
    """What the server serves: one model, its conversations and how to start them."""

    model: Any
    action_server: ActionServerClient | None = None
    seed: int | None = None
    max_actions: int = DEFAULT_MAX_ACTIONS
    max_conversations: int = DEFAULT_MAX_CONVERSATIONS
    conversations: OrderedDict[str, Conversation] = field(default_factory=OrderedDict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _registry_lock: threading.Lock = field(default_factory=threading.Lock)
    model_lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self) -> dict[str, Any]:
        """Rasa's `/status` fields, plus what trainkit knows about the model."""
        metadata = self.model.metadata
        return {
            "model_file": self.model.name,
            "model_id": metadata.get("assistant_id"),
            "fingerprint": metadata.get("package_fingerprint"),
            "training_type": _TRAINING_TYPES.get(self.model.training_type, str(self.model.training_type)),
            "trained_at": metadata.get("trained_at"),
            "trainkit_version": metadata.get("trainkit_version"),
            "num_active_training_jobs": 0,
            "conversations": len(self.conversations),
        }

    def parse(self, text: str) -> dict[str, Any]:
        """The parse result of one text."""
        if not self.model.has_nlu:
            raise RequestError(HTTPStatus.CONFLICT, f"{self.model.name} has no NLU pipeline; it cannot parse")
        with self.model_lock:
            return self.model.parse(text)

    def conversation(self, sender: str) -> tuple[Conversation, threading.Lock]:
        """The conversation of `sender`, created on its first message."""
        with self._registry_lock:
            if sender in self.conversations:
                self.conversations.move_to_end(sender)
            else:
                while len(self.conversations) >= self.max_conversations:
                    forgotten, _ = self.conversations.popitem(last=False)
                    del self._locks[forgotten]
                rng = random.Random(f"{self.seed}:{sender}") if self.seed is not None else random.Random()
                self.conversations[sender] = Conversation(
                    _LockedModel(self.model, self.model_lock), sender, rng, self.action_server,
                    self.max_actions, input_channel=REST_CHANNEL,
                )
                self._locks[sender] = threading.Lock()
            return self.conversations[sender], self._locks[sender]

    def webhook(self, sender: str, message: str, metadata: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The bot's answer to one message, as Rasa's REST channel sends it."""
        if self.model.ensemble is None:
            raise RequestError(HTTPStatus.CONFLICT, f"{self.model.name} has no dialogue policies; it cannot talk")
        conversation, lock = self.conversation(sender)
        with lock:
            reply = conversation.handle_message(message, metadata)
        for notice in reply.notices:
            logger.warning("%s: %s", sender, notice)
        return [{"recipient_id": sender, **m} for m in reply.messages]

    def tracker(self, sender: str) -> dict[str, Any]:
        """The tracker JSON of a known conversation."""
        with self._registry_lock:
            conversation = self.conversations.get(sender)
            lock = self._locks.get(sender)
        if conversation is None or lock is None:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no conversation with sender {sender!r}")
        with lock:
            return conversation.tracker_state()


class _LockedModel:
    """The model as a conversation uses it, with parse and prediction under the model lock."""

    def __init__(self, model: Any, lock: threading.Lock) -> None:
        self._model = model
        self._lock = lock
        self.domain = model.domain
        self.name = model.name
        self.ensemble = _LockedEnsemble(model.ensemble, lock) if model.ensemble is not None else None

    def parse(self, text: str) -> dict[str, Any]:
        with self._lock:
            return self._model.parse(text)


class _LockedEnsemble:
    def __init__(self, ensemble: Any, lock: threading.Lock) -> None:
        self._ensemble = ensemble
        self._lock = lock

    def predict_next_action(self, events: list[Any], exclude: str | None = None) -> Any:
        with self._lock:
            return self._ensemble.predict_next_action(events, exclude)


def _string_field(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"'{key}' must be a string" if key in body
                           else f"the request body needs '{key}'")
    return value


class _Handler(BaseHTTPRequestHandler):
    server: AssistantServer
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        logger.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch(self._get)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch(self._post)

    def _not_allowed(self) -> None:
        def refuse(path: str) -> Any:
            raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported; use GET or POST")

        self.close_connection = True  # a body we did not read must not be taken for a request
        self._dispatch(refuse)

    do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _get(self, path: str) -> Any:
        assistant = self.server.assistant
        if path in ("/", ""):
            return "Hello from trainkit"
        if path == "/status":
            return assistant.status()
        if path.startswith("/conversations/") and path.endswith("/tracker"):
            sender = unquote(path[len("/conversations/"):-len("/tracker")])
            return assistant.tracker(sender)
        raise RequestError(HTTPStatus.NOT_FOUND, f"no route GET {path}")

    def _post(self, path: str) -> Any:
        assistant = self.server.assistant
        if path not in ("/model/parse", "/webhooks/rest/webhook"):
            raise RequestError(HTTPStatus.NOT_FOUND, f"no route POST {path}")
        body = self._json_body()
        if path == "/model/parse":
            result = assistant.parse(_string_field(body, "text"))
            if isinstance(body.get("message_id"), str):
                result = {**result, "message_id": body["message_id"]}
            return result
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "'metadata' must be an object")
        return assistant.webhook(_string_field(body, "sender", "default"), _string_field(body, "message"), metadata)

    def _json_body(self) -> dict[str, Any]:
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or length_header is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length header")
        try:
            length = int(length_header)
        except ValueError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is negative")
        limit = self.server.max_body_bytes
        if length > limit:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"the request body has {length} bytes, over the limit of {limit}")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
        return body

    def _dispatch(self, route: Callable[[str], Any]) -> None:
        path = urlparse(self.path).path
        try:
            result = route(path)
            status = HTTPStatus.OK
        except RequestError as exc:
            result, status = _failure(exc.status, exc.message), exc.status
        except TrainkitError as exc:
            result, status = _failure(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc)), HTTPStatus.INTERNAL_SERVER_ERROR
        except Exception as exc:  # a bug must not kill the connection without an answer
            logger.exception("error handling %s %s", self.command, path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            result = _failure(status, f"internal error: {type(exc).__name__}")
        if status in (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.LENGTH_REQUIRED):
            self.close_connection = True  # the unread body must not be taken for the next request
        self._send(status, result)

    def _send(self, status: HTTPStatus, result: Any) -> None:
        if isinstance(result, str):
            data, kind = result.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, kind = json.dumps(result, ensure_ascii=False).encode("utf-8"), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _failure(status: HTTPStatus, message: str) -> dict[str, Any]:
    return {"status": "failure", "reason": status.phrase.replace(" ", ""), "message": message, "code": int(status)}


class AssistantServer(ThreadingHTTPServer):
    """The HTTP server; `serve_forever()` runs it, `shutdown()` stops it."""

    daemon_threads = True

    def __init__(self, assistant: Assistant, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.assistant = assistant
        self.max_body_bytes = max_body_bytes
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise TrainkitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    @property
    def url(self) -> str:
        """Where the server listens, e.g. http://127.0.0.1:5005."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
