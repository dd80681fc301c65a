"""Finetuning real components on the project `trainkit init` writes."""

from __future__ import annotations

import json
import re
import tarfile

import pytest
from click.testing import CliRunner

import trainkit
from trainkit.cli import main
from trainkit.engine.finetune import FinetuneError
from trainkit.scaffold import init_project

NEW_EXAMPLES = """
  - intent: greet
    examples: |
      - top of the morning to you
      - salutations coffeebot
  - intent: goodbye
    examples: |
      - farewell for today
"""


def _train(project, **kwargs):
    return trainkit.train(str(project / "domain.yml"), str(project / "config.yml"), [str(project / "data")],
                          output=str(project / "models"), project_dir=str(project), **kwargs)


def _members(path):
    with tarfile.open(path) as tar:
        metadata = json.loads(tar.extractfile("metadata.json").read())
        return metadata, {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _node(metadata, component, fn="train"):
    return next(n["name"] for n in metadata["train_schema"]["nodes"] if n["component"] == component and n["fn"] == fn)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The init project, trained once, then given new NLU examples."""
    project = init_project(tmp_path_factory.mktemp("init") / "bot")
    model = project / _train(project).model
    with (project / "data" / "nlu.yml").open("a") as handle:
        handle.write(NEW_EXAMPLES)
    return project, model


@pytest.fixture
def project(base, tmp_path):
    """A copy of the base project (each test edits its own)."""
    import shutil

    source, model = base
    copy = tmp_path / "bot"
    shutil.copytree(source, copy)
    return copy, copy / "models" / model.name


def test_the_init_project_finetunes_after_adding_examples(project):
    path, model = project
    result = _train(path, model_to_finetune=str(model), finetuning_epoch_fraction=0.2)
    tuned = path / result.model
    assert tuned != model
    old_meta, old = _members(model)
    new_meta, new = _members(tuned)
    diet = _node(new_meta, "DIETClassifier")
    ted = _node(new_meta, "TEDPolicy")
    for name in (diet, ted):
        weights = [m for m in new if m.startswith(f"components/{name}/") and m.endswith(".npz")]
        assert weights and all(new[m] != old[m] for m in weights)
    losses = json.loads(new[f"components/{ted}/ted_policy.json"])["losses"]
    assert len(losses) == 20  # ceil(100 * 0.2) epochs
    first_losses = json.loads(old[f"components/{ted}/ted_policy.json"])["losses"]
    assert losses[0] < first_losses[0]  # it started from trained weights, not from scratch
    parsed = trainkit.load_model(tuned).parse("salutations coffeebot")
    assert parsed["intent"]["name"] == "greet"
    # the same finetune again: every node cached, no new archive
    again = _train(path, model_to_finetune=str(model), finetuning_epoch_fraction=0.2, dry_run=True)
    assert all(r["status"] == "up to date" for r in again.dry_run_results.values()), again.dry_run_results


def test_epochs_may_change_but_other_options_may_not(project):
    path, model = project
    config = (path / "config.yml").read_text()
    (path / "config.yml").write_text(config.replace("epochs: 100", "epochs: 50", 1))
    result = _train(path, model_to_finetune=str(model), finetuning_epoch_fraction=0.1)
    assert result.model
    (path / "config.yml").write_text(config.replace("max_history: 5", "max_history: 3"))
    with pytest.raises(FinetuneError, match=r"has other options: max_history"):
        _train(path, model_to_finetune=str(model))


def test_new_labels_are_refused_with_what_differs(project):
    path, model = project
    with (path / "data" / "nlu.yml").open("a") as handle:
        handle.write("  - intent: complain\n    examples: |\n      - this is cold\n      - it took forever\n")
    domain = (path / "domain.yml").read_text()
    (path / "domain.yml").write_text(domain.replace("intents:\n", "intents:\n  - complain\n", 1))
    with pytest.raises(FinetuneError) as caught:
        _train(path, model_to_finetune=str(model))
    message = str(caught.value)
    assert "nlu intents: new 'complain'" in message
    assert "core intents: new 'complain'" in message


def test_a_new_slot_in_the_domain_is_refused(project):
    path, model = project
    domain = (path / "domain.yml").read_text()
    assert "\nslots:\n" in domain
    (path / "domain.yml").write_text(domain.replace(
        "\nslots:\n", "\nslots:\n  loyalty_card:\n    type: bool\n    mappings:\n      - type: custom\n", 1))
    with pytest.raises(FinetuneError, match=r"core slots differ: loyalty_card"):
        _train(path, model_to_finetune=str(model))


def test_the_cli_finetunes_the_newest_model_without_a_path(project, monkeypatch):
    path, model = project
    monkeypatch.chdir(path)
    outcome = CliRunner().invoke(main, ["train", "--finetune", "--epoch-fraction", "0.1"])
    assert outcome.exit_code == 0, outcome.output
    written = re.search(r"Model: (\S+)", outcome.output).group(1)
    assert (path / written).name != model.name
    refused = CliRunner().invoke(main, ["train", "--finetune", "nowhere.tar.gz"])
    assert refused.exit_code == 1
    assert "cannot finetune" in refused.output and "Traceback" not in refused.output
