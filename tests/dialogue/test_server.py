"""`trainkit run`'s HTTP server, talked to over loopback with a real client."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from trainkit.dialogue.server import DEFAULT_HOST, Assistant, AssistantServer


@pytest.fixture
def server(spokebot) -> Iterator[AssistantServer]:
    instance = AssistantServer(Assistant(spokebot, seed=1), port=0, max_body_bytes=2048)
    thread = threading.Thread(target=instance.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield instance
    finally:
        instance.shutdown()
        instance.server_close()


def call(server: AssistantServer, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def say(server: AssistantServer, sender: str, message: str) -> list[str]:
    status, messages = call(server, "/webhooks/rest/webhook", {"sender": sender, "message": message})
    assert status == 200
    assert all(m["recipient_id"] == sender for m in messages)
    return [m["text"] for m in messages]


def test_binds_loopback_by_default_and_reports_the_model(server, spokebot_archive):
    assert DEFAULT_HOST == "127.0.0.1" and server.server_address[0] == "127.0.0.1"
    status, body = call(server, "/status")
    assert status == 200
    assert body["model_file"] == spokebot_archive.name and body["training_type"] == "BOTH"
    assert body["fingerprint"]


def test_parse_returns_rasa_s_parse_result(server):
    status, body = call(server, "/model/parse", {"text": "please fix my mountain bike"})
    assert status == 200
    assert body["intent"]["name"] == "book_repair"
    assert [(e["entity"], e["value"]) for e in body["entities"]] == [("bike_type", "mountain")]
    assert body["text"] == "please fix my mountain bike" and body["intent_ranking"]


def test_webhook_keeps_one_conversation_per_sender_through_a_form(server):
    assert say(server, "ann", "I need a repair") == ["What kind of bike is it?"]
    assert say(server, "bob", "hello")[0] in {"Hi! I can book a repair for your bike.",
                                             "Hello! Spoke & Chain workshop here, want a repair slot?"}
    assert say(server, "ann", "a road bike") == ["Which day would you bring your road bike in?"]
    assert say(server, "ann", "saturday works") == ["Do you want the express service (same day)?"]
    assert say(server, "ann", "no")[0] == "Standard repair of your road bike on saturday, ready two days later."
    status, tracker = call(server, "/conversations/ann/tracker")
    assert status == 200 and tracker["slots"]["day"] == "saturday" and tracker["active_loop"] == {}
    status, other = call(server, "/conversations/bob/tracker")
    assert other["slots"]["day"] is None
    _, messages = call(server, "/webhooks/rest/webhook", {"sender": "cid", "message": "/book_repair"})
    assert messages[0]["buttons"][0] == {"title": "Road bike", "payload": '/inform{"bike_type": "road"}'}


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/model/parse", b"{not json", 400, "not valid JSON"),
    ("/model/parse", [1, 2], 400, "JSON object"),
    ("/model/parse", {"message": "hi"}, 400, "'text'"),
    ("/webhooks/rest/webhook", {"sender": "x", "message": 5}, 400, "'message' must be a string"),
    ("/model/parse", {"text": "x" * 5000}, 413, "over the limit of 2048"),
    ("/nowhere", {"text": "hi"}, 404, "no route"),
    ("/conversations/nobody/tracker", None, 404, "no conversation"),
])
def test_bad_requests_get_json_errors_with_their_status(server, path, body, status, words):
    got, answer = call(server, path, body)
    assert got == status
    assert answer["status"] == "failure" and answer["code"] == status and words in answer["message"]


def test_other_methods_get_a_json_405(server):
    request = urllib.request.Request(server.url + "/model/parse", data=b"{}", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 405 and json.loads(caught.value.read())["reason"] == "MethodNotAllowed"


def test_a_body_without_length_is_refused(server):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    connection.putrequest("POST", "/model/parse")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    assert response.status == 411 and json.loads(response.read())["status"] == "failure"
    connection.close()


def test_trainkit_run_serves_until_stopped(spokebot_archive):
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "trainkit.cli", "run", "-m", str(spokebot_archive), "--port", "0"],
                               stderr=subprocess.PIPE, text=True)
    try:
        banner = process.stderr.readline()
        assert banner.startswith(f"Serving {spokebot_archive.name} on http://127.0.0.1:")
        url = banner.split(" on ")[1].split()[0]
        with urllib.request.urlopen(url + "/status", timeout=30) as response:
            assert json.loads(response.read())["training_type"] == "BOTH"
        request = urllib.request.Request(url + "/webhooks/rest/webhook", method="POST",
                                         data=json.dumps({"sender": "s", "message": "are you a bot"}).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == [{"recipient_id": "s", "text": "I am a bot that books bike repairs."}]
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()


def test_concurrent_senders_each_get_their_own_answers(server):
    results: dict[str, list[list[str]]] = {}

    def converse(sender: str, bike: str) -> None:
        results[sender] = [say(server, sender, "/book_repair"), say(server, sender, f'/inform{{"bike_type": "{bike}"}}')]

    threads = [threading.Thread(target=converse, args=(f"s{i}", bike))
               for i, bike in enumerate(["road", "city", "mountain", "road", "city", "mountain"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results["s1"] == [["What kind of bike is it?"], ["Which day would you bring your city bike in?"]]
    assert results["s2"][1] == ["Which day would you bring your mountain bike in?"]
    assert len(results) == 6


def test_the_least_recently_active_conversation_is_forgotten_past_the_limit(spokebot):
    assistant = Assistant(spokebot, seed=0, max_conversations=2)
    for sender in ["a", "b", "a", "c"]:
        assistant.webhook(sender, "/greet", None)
    assert list(assistant.conversations) == ["a", "c"]
