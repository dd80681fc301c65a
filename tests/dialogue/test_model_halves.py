"""A trained model answers Rasa-shaped events, and `load_model` never hands `parse` a
model without NLU: it picks the newest archive that has the half the caller needs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import trainkit
from trainkit.core.rasa_events import EventFormatError
from trainkit.errors import TrainkitError
from trainkit.model import NEEDS_CORE, NEEDS_NLU, load_model

SPOKEBOT = Path(__file__).resolve().parent / "spokebot"


def test_predict_next_action_reads_rasa_events(spokebot):
    events = [
        {"event": "action", "name": "action_session_start"},
        {"event": "session_started"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "I need a repair", "parse_data": {
            "intent": {"name": "book_repair", "confidence": 0.98}, "entities": []}},
    ]
    assert spokebot.predict_next_action(events)["action"] == "repair_form"
    events += [{"event": "action", "name": "repair_form"}, {"event": "active_loop", "name": "repair_form"},
               {"event": "slot", "name": "requested_slot", "value": "bike_type"}]
    assert spokebot.predict_next_action(events)["action"] == "action_listen"
    with pytest.raises(EventFormatError, match=r"event 4 \('slot'\): needs the slot's 'name'"):
        spokebot.predict_next_action(events[:4] + [{"event": "slot", "key_name": "x", "value": 1}])


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, spokebot_archive):
    """A full model and, written after it, a Core-only one."""
    project = tmp_path_factory.mktemp("halves") / "bot"
    shutil.copytree(SPOKEBOT, project)
    out = project / "models"
    out.mkdir()
    full = shutil.copy(spokebot_archive, out / "full.tar.gz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINKIT_CACHE_DIR", str(project / "cache"))
        patch.chdir(project)
        core = project / trainkit.train_core("domain.yml", "config.yml", "data", output="models",
                                              fixed_model_name="core").model
    os.utime(full, (1_000_000_000, 1_000_000_000))
    return out, core


def test_parse_on_a_core_only_model_is_a_clear_error(models_dir):
    _, core = models_dir
    model = load_model(core)
    with pytest.raises(TrainkitError, match="core.tar.gz has no NLU pipeline .* cannot parse 'hello'"):
        model.parse("hello")
    assert model.parse("/greet")["intent"]["name"] == "greet"
    with pytest.raises(TrainkitError, match="core.tar.gz has no NLU pipeline"):
        load_model(core, needs=NEEDS_NLU)


def test_a_directory_gives_the_newest_model_with_the_needed_half(models_dir):
    out, _ = models_dir
    assert load_model(out).name == "core.tar.gz"
    assert load_model(out, needs=NEEDS_CORE).name == "core.tar.gz"
    chosen = load_model(out, needs=NEEDS_NLU)
    assert chosen.name == "full.tar.gz" and chosen.parse("hello")["intent"]["name"] == "greet"


def test_a_directory_without_the_needed_half_names_what_is_missing(models_dir, tmp_path):
    _, core = models_dir
    shutil.copy(core, tmp_path / "only-core.tar.gz")
    with pytest.raises(TrainkitError, match="none of the 1 model archive.* has an NLU pipeline"):
        load_model(tmp_path, needs=NEEDS_NLU)


def test_the_cli_picks_the_model_each_command_needs(models_dir):
    from click.testing import CliRunner

    from trainkit.cli import main

    out, core = models_dir
    runner = CliRunner()
    talked = runner.invoke(main, ["shell", "-m", str(out)], input="are you a bot\n")
    assert talked.exit_code == 0 and talked.output == "I am a bot that books bike repairs.\n"
    parsed = runner.invoke(main, ["parse", "hello", "-m", str(out)])
    assert parsed.exit_code == 0 and '"greet"' in parsed.output
    refused = runner.invoke(main, ["shell", "nlu", "-m", str(core)], input="hello\n")
    assert refused.exit_code == 1
    assert refused.output.startswith("Error: core.tar.gz has no NLU pipeline")
