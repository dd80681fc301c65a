"""The test assistant (spokebot, a bike-repair booking bot) trained once per session, and
a small action server speaking Rasa's action-server protocol."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import trainkit

SPOKEBOT = Path(__file__).resolve().parent / "spokebot"


@pytest.fixture(scope="session")
def spokebot_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model archive of spokebot (trained in a copy, with its own cache)."""
    project = tmp_path_factory.mktemp("spokebot") / "bot"
    shutil.copytree(SPOKEBOT, project)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINKIT_CACHE_DIR", str(project / "cache"))
        patch.chdir(project)
        result = trainkit.train("domain.yml", "config.yml", "data", output="models")
    assert result.model is not None
    return project / result.model


@pytest.fixture(scope="session")
def spokebot(spokebot_archive: Path) -> trainkit.Model:
    """The loaded spokebot model."""
    return trainkit.load_model(spokebot_archive)


@dataclass
class FakeActionServer:
    """Runs spokebot's `action_book_repair`, recording every request it gets."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)


@pytest.fixture
def action_server() -> Iterator[FakeActionServer]:
    state = FakeActionServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            action = body["next_action"]
            if action in state.reject:
                self._answer(400, {"error": "not now", "action_name": action})
                return
            slots = body["tracker"]["slots"]
            if action == "action_count_messages":  # a custom slot mapping: only its slot events count
                count = sum(e["event"] == "user" for e in body["tracker"]["events"])
                self._answer(200, {"events": [{"event": "slot", "name": "visits", "value": count},
                                              {"event": "followup", "name": "utter_goodbye"}]})
                return
            if action == "validate_repair_form":
                closed = slots["day"] == "sunday"
                self._answer(200, {
                    "events": [{"event": "slot", "name": "day", "value": None}] if closed else [],
                    "responses": [{"text": "We are closed on Sundays."}] if closed else []})
                return
            ticket = f"R-{slots['bike_type']}-{slots['day']}"
            self._answer(200, {"events": [{"event": "slot", "name": "ticket", "value": ticket}],
                               "responses": [{"text": "Booking saved.", "buttons": [], "elements": [], "custom": {},
                                              "template": None, "response": None, "image": None,
                                              "attachment": None}]})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
