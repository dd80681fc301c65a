"""`trainkit shell` and `trainkit shell nlu` driven through standard input."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from trainkit.cli import main


def run(args: list[str], text: str):
    return CliRunner().invoke(main, args, input=text)


def test_a_shell_session_books_a_repair_and_picks_a_button_by_number(spokebot_archive):
    lines = ["I need a repair", "2", "on monday", "yes", "/stop", "hello"]
    result = run(["shell", "-m", str(spokebot_archive), "--seed", "3"], "\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "What kind of bike is it?",
        '  1: Road bike (/inform{"bike_type": "road"})',
        '  2: Mountain bike (/inform{"bike_type": "mountain"})',
        "Which day would you bring your mountain bike in?",
        "Do you want the express service (same day)?",
        "Express repair of your mountain bike on monday, done the same day.",
        "[note] custom action 'action_book_repair' would run here (no action_endpoint in endpoints.yml)",
        "Your ticket number is None.",
    ]


def test_the_shell_calls_the_action_server_of_endpoints_yml(spokebot_archive, action_server, tmp_path,
                                                            monkeypatch):
    (tmp_path / "endpoints.yml").write_text(f"action_endpoint:\n  url: {action_server.url}\n")
    monkeypatch.chdir(tmp_path)
    lines = ["/book_repair", '/inform{"bike_type": "city", "day": "friday"}', "/deny"]
    result = run(["shell", "-m", str(spokebot_archive)], "\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "Booking saved.\nYour ticket number is R-city-friday." in result.output
    assert action_server.requests[0]["sender_id"] == "shell"


def test_a_bad_endpoints_file_is_one_error_line(spokebot_archive, tmp_path):
    bad = tmp_path / "endpoints.yml"
    bad.write_text("action_endpoint:\n  url: localhost:5055\n")
    result = run(["shell", "-m", str(spokebot_archive), "--endpoints", str(bad)], "hi\n")
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"Error: {bad}:2: action_endpoint url 'localhost:5055' must be")


def test_shell_nlu_prints_one_parse_result_a_line(spokebot_archive):
    result = run(["shell", "nlu", "-m", str(spokebot_archive)], "hello there\nmy city bike is broken\n")
    assert result.exit_code == 0, result.output
    parsed = [json.loads(line) for line in result.output.splitlines()]
    assert [p["intent"]["name"] for p in parsed] == ["greet", "book_repair"]
    assert parsed[1]["entities"][0]["value"] == "city"


def test_the_shell_reads_piped_stdin_in_a_real_process(spokebot_archive):
    done = subprocess.run(
        [sys.executable, "-m", "trainkit.cli", "shell", "-m", str(spokebot_archive)],
        input="are you a bot\n/stop\n", capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "I am a bot that books bike repairs.\n"
