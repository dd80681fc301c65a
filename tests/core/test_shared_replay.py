"""The test stories of real assistants, replayed action by action as `rasa test core` does.

Trained with Rasa's default config (the config.yml says only the language), Rasa 3.6
predicts every action of these test stories right; so must trainkit.
"""

from __future__ import annotations

import shutil
import warnings

import pytest

import trainkit
from trainkit.core.replay import replay_stories
from trainkit.data.story_reader import read_story_file

# project -> (test stories, actions) Rasa 3.6 gets right, which is all of them.
EXPECTED = {
    "rasa-init": (7, 35),
    "rasa-examples/formbot": (3, 29),
    "assistants/financial-demo": (48, 317),
}


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_test_stories_replay_without_a_wrong_action(shared_datasets, tmp_path, project):
    source = shared_datasets / project
    shutil.copytree(source / "data", tmp_path / "data")
    shutil.copy(source / "domain.yml", tmp_path / "domain.yml")
    (tmp_path / "config.yml").write_text("language: en\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train_core(
            str(tmp_path / "domain.yml"), str(tmp_path / "config.yml"), str(tmp_path / "data"),
            output=str(tmp_path / "models"), project_dir=str(tmp_path),
        )
    model = trainkit.load_model(result.model)
    report = replay_stories(model.ensemble, read_story_file(source / "tests" / "test_stories.yml"))
    stories, actions = EXPECTED[project]
    assert (len(report.stories), report.total_actions) == (stories, actions)
    assert report.failures() == []
    assert (report.correct_stories, report.correct_actions) == (stories, actions)
