"""Rasa's formbot example, unmodified apart from a lighter config, in a conversation
(skipped when the shared datasets are absent)."""

from __future__ import annotations

import random
import shutil
import warnings

import pytest

import trainkit
from trainkit.dialogue.conversation import Conversation

# Formbot's pipeline without Duckling (no server in tests) and with few epochs: the
# conversation is decided by its rules and memoization.
LIGHT_CONFIG = """\
recipe: default.v1
assistant_id: form_bot
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 5
policies:
  - name: AugmentedMemoizationPolicy
  - name: RulePolicy
"""


@pytest.fixture(scope="module")
def formbot(shared_datasets, tmp_path_factory):
    project = tmp_path_factory.mktemp("formbot") / "bot"
    shutil.copytree(shared_datasets / "rasa-examples" / "formbot", project)
    (project / "config.yml").write_text(LIGHT_CONFIG)
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setenv("TRAINKIT_CACHE_DIR", str(project / "cache"))
        patch.chdir(project)
        result = trainkit.train("domain.yml", "config.yml", "data", output="models", core_additional_arguments={
            "augmentation_factor": 0})
    return trainkit.load_model(project / result.model)


def test_formbot_fills_its_restaurant_form_and_submits(formbot):
    conversation = Conversation(formbot, rng=random.Random(0))

    def say(text: str) -> list[str]:
        return [m["text"] for m in conversation.handle_message(text).messages]

    assert say("/request_restaurant") == ["What cuisine?"]
    assert say('/inform{"cuisine": "greek"}') == ["How many people?"]
    assert say("/chitchat") == ["chitchat", "How many people?"]
    assert say('/inform{"number": 4}') == ["Do you want to sit outside?"]
    assert say("/affirm") == ["Please provide additional preferences"]
    assert say("/deny") == ["Please give your feedback on your experience so far"]
    # free text still goes through NLU, and a chitchat parse would take the chitchat rule;
    # at 5 epochs this text is clearly `inform` (0.6 to 0.7), unlike e.g. "the waiter was
    # friendly" (0.24 to 0.26, chitchat or inform by a hair)
    done = say("the food was great")
    assert done[0] == "All done!"
    assert "- cuisine: greek" in done[1] and "- num_people: 4" in done[1] and "- outdoor_seating: True" in done[1]
    assert "- preferences: no additional preferences" in done[1]
    assert "- feedback: the food was great" in done[1]
