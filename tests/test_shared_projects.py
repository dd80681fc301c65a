"""Existing Rasa 3.x projects train unmodified, or stop before training with a message
naming what is missing (components that need spaCy or Hugging Face models)."""

from __future__ import annotations

import shutil
import warnings

import pytest

import trainkit
from trainkit.core.replay import replay_stories
from trainkit.data.story_reader import read_story_file
from trainkit.errors import ConfigError
from trainkit.nlu import pretrained
from trainkit.nlu.language_model import tokenizers_installed
from trainkit.training import prepare

PROJECTS = [
    "rasa-init",
    "rasa-examples/concertbot",
    "rasa-examples/e2ebot",
    "rasa-examples/formbot",
    "rasa-examples/knowledgebasebot",
    "rasa-examples/moodbot",
    "rasa-examples/reminderbot",
    "rasa-examples/responseselectorbot",
    "rasa-examples/rules",
    "assistants/financial-demo",
    "assistants/helpdesk-assistant",
]
# Projects whose config names a component that needs a pretrained model, and that name.
NEEDS_EXTERNAL_MODEL = {
    "rasa-examples/e2ebot": "LanguageModelFeaturizer",
    "rasa-examples/moodbot": "SpacyNLP",
    "rasa-examples/reminderbot": "SpacyNLP",
    "assistants/financial-demo": "SpacyNLP",
}
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _model_installed(weights: str | None) -> bool:
    try:
        pretrained.locate({"model_name": "bert", "model_weights": weights})
    except ConfigError:
        return False
    return tokenizers_installed()


# e2ebot's LanguageModelFeaturizer names no weights: Rasa's default for bert, rasa/LaBSE.
if _model_installed(None):
    del NEEDS_EXTERNAL_MODEL["rasa-examples/e2ebot"]
# Trained for real in the suite (the others compile their graphs only, to keep it fast).
TRAINED = ["rasa-init", "rasa-examples/formbot", "rasa-examples/responseselectorbot", "rasa-examples/rules"]


@pytest.fixture
def copy_of(shared_datasets, tmp_path, monkeypatch):
    def make(project: str):
        target = tmp_path / project.replace("/", "-")
        shutil.copytree(shared_datasets / project, target)
        monkeypatch.chdir(target)
        return target

    return make


@pytest.mark.parametrize("project", PROJECTS)
def test_project_compiles_or_names_the_missing_model(copy_of, project):
    copy_of(project)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if project in NEEDS_EXTERNAL_MODEL:
            with pytest.raises(ConfigError) as caught:
                prepare("domain.yml", "config.yml", "data")
            message = str(caught.value)
            assert NEEDS_EXTERNAL_MODEL[project] in message and "config.yml:" in message
            assert "instead" in message
        else:
            plan = prepare("domain.yml", "config.yml", "data")
            assert plan.recipe.nodes


@pytest.mark.parametrize("project", TRAINED)
def test_project_trains_unmodified_and_answers(copy_of, project):
    target = copy_of(project)
    config_before = (target / "config.yml").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train("domain.yml", "config.yml", "data")
    assert result.code == 0 and result.model
    assert (target / "config.yml").read_bytes() == config_before  # never rewritten
    model = trainkit.load_model(result.model)
    assert model.parse("hello")["intent"]["name"]
    second = trainkit.train("domain.yml", "config.yml", "data", dry_run=True)
    assert second.code == 0
    tuned = trainkit.train("domain.yml", "config.yml", "data", model_to_finetune=result.model,
                           finetuning_epoch_fraction=0.2)
    assert tuned.code == 0 and tuned.model and tuned.model != result.model
    assert trainkit.load_model(tuned.model).parse("hello")["intent"]["name"]


def test_rasa_init_finetunes_after_new_examples(copy_of):
    """Rasa 3.6 fails to finetune the project `rasa init` writes; trainkit finetunes it."""
    target = copy_of("rasa-init")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = trainkit.train("domain.yml", "config.yml", "data").model
        nlu = target / "data" / "nlu.yml"
        nlu.write_text(nlu.read_text().replace("    - hey\n", "    - hey\n    - hiya buddy\n    - yo there\n", 1))
        assert "hiya buddy" in nlu.read_text()
        tuned = trainkit.train("domain.yml", "config.yml", "data", model_to_finetune=base,
                               finetuning_epoch_fraction=0.2)
    assert tuned.code == 0 and tuned.model != base
    model = trainkit.load_model(tuned.model)
    assert model.parse("hiya buddy")["intent"]["name"] == "greet"
    report = replay_stories(model.ensemble, read_story_file(target / "tests" / "test_stories.yml"))
    assert report.failures() == []
    assert report.correct_actions == report.total_actions == 35


# Projects naming SpacyNLP with en_core_web_md, which CI cannot install: they train when
# `model` points at a pipeline built in the test (trained for real when quick to train).
SPACY_PROJECTS = {"rasa-examples/moodbot": True, "rasa-examples/reminderbot": True,
                  "assistants/financial-demo": False}


@pytest.mark.parametrize("project", sorted(SPACY_PROJECTS))
def test_spacy_project_trains_with_a_locally_built_pipeline(copy_of, spacy_pipeline, project):
    target = copy_of(project)
    config = (target / "config.yml").read_text()
    assert 'model: "en_core_web_md"' in config
    (target / "config.yml").write_text(config.replace('"en_core_web_md"', f'"{spacy_pipeline()}"'))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not SPACY_PROJECTS[project]:
            plan = prepare("domain.yml", "config.yml", "data")
            assert any(node.name.startswith("provide_SpacyNLP") for node in plan.recipe.nodes)
            return
        result = trainkit.train("domain.yml", "config.yml", "data")
        assert result.code == 0 and result.model
        model = trainkit.load_model(result.model)
    parsed = model.parse("hello alice")
    assert parsed["intent"]["name"]
    if "SpacyEntityExtractor" in config:
        assert {"entity": "PERSON", "value": "alice", "start": 6, "end": 11, "confidence": None,
                "extractor": "SpacyEntityExtractor"} in parsed["entities"]
    assert trainkit.train("domain.yml", "config.yml", "data", dry_run=True).code == 0


def _train_and_answer(target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train("domain.yml", "config.yml", "data")
    assert result.code == 0 and result.model
    model = trainkit.load_model(result.model)
    assert model.parse("hello")["intent"]["name"] == "greet"
    assert trainkit.train("domain.yml", "config.yml", "data", dry_run=True).code == 0
    return model


@pytest.mark.skipif(not _model_installed(None), reason="rasa/LaBSE is not on this machine")
def test_e2ebot_trains_from_its_own_config_when_its_model_is_installed(copy_of):
    _train_and_answer(copy_of("rasa-examples/e2ebot"))


@pytest.mark.skipif(not _model_installed(MINILM), reason="all-MiniLM-L6-v2 is not installed")
def test_e2ebot_trains_with_the_packaged_minilm(copy_of):
    """Its config with only the weights (and, for the suite's time, the epochs) changed:
    the language model feeds DIET and TED's end-to-end texts."""
    target = copy_of("rasa-examples/e2ebot")
    config = (target / "config.yml").read_text()
    config = config.replace("  - name: LanguageModelFeaturizer\n",
                            f"  - name: LanguageModelFeaturizer\n    model_weights: {MINILM}\n")
    (target / "config.yml").write_text(config.replace("epochs: 200", "epochs: 3"))
    model = _train_and_answer(target)
    stale_free = trainkit.train("domain.yml", "config.yml", "data", dry_run=True)
    assert all(r["status"] == "up to date" for r in stale_free.dry_run_results.values())
    events = [{"event": "action", "name": "action_listen"},
              {"event": "user", "text": "hello", "parse_data": model.parse("hello")}]
    assert model.predict_next_action(events)["action"]
