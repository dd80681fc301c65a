"""Small but real components for engine tests: they compute their outputs from the data,
so changes to the data really change (or really do not change) their artifacts."""

from __future__ import annotations

import trainkit
from trainkit.data.training_data import TrainingData
from trainkit.engine.component import FEATURIZER, INTENT_CLASSIFIER, TOKENIZER, Component, register

# A tiny NLU file the engine tests train on.
NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello there
    - hi
- intent: bye
  examples: |
    - goodbye friend
    - bye
"""

# A pipeline of the components below; `{epochs}` is the classifier's.
CONFIG = """\
language: en
pipeline:
  - name: fake_components.FakeTokenizer
  - name: fake_components.FakeFeaturizer
  - name: fake_components.FakeClassifier
    epochs: {epochs}
"""


def train(**kwargs):
    return trainkit.train(None, "config.yml", "data", **kwargs)


def _examples(inputs):
    data = TrainingData.from_dict(inputs["training_data"].json("training_data.json"))
    return [m for m in data.training_examples if m.text]


@register
class FakeTokenizer(Component):
    name = "FakeTokenizer"
    roles = frozenset({TOKENIZER})

    def process_training_data(self, inputs, out):
        out.json("tokens.json", [m.text.lower().split() for m in _examples(inputs)])


@register
class FakeFeaturizer(Component):
    name = "FakeFeaturizer"
    roles = frozenset({FEATURIZER})
    trainable = True
    requires = (TOKENIZER,)
    defaults = {"lowercase": True}

    def train(self, inputs, out):
        tokens = inputs["tokens"].json("tokens.json")
        out.json("vocab.json", sorted({t for ts in tokens for t in ts}))

    def process_training_data(self, inputs, out):
        vocab = inputs["model"].json("vocab.json")
        tokens = inputs["tokens"].json("tokens.json")
        out.json("features.json", [sorted(vocab.index(t) for t in ts if t in vocab) for ts in tokens])


@register
class FakeClassifier(Component):
    name = "FakeClassifier"
    roles = frozenset({INTENT_CLASSIFIER})
    trainable = True
    defaults = {"epochs": 1, "layers": {"text": [8], "label": [4]}}

    def train(self, inputs, out):
        examples = _examples(inputs)
        features = inputs["features"][0].json("features.json")
        table: dict[str, list[str]] = {}
        for message, row in zip(examples, features, strict=True):
            if message.intent:
                table.setdefault(message.intent, []).extend(str(i) for i in row)
        out.json("model.json", {"centroids": table, "epochs": self.config["epochs"]})


class Failing(Exception):
    pass


@register
class ExplodingClassifier(Component):
    """Writes part of its output, then fails: nothing of it may reach the cache."""

    name = "ExplodingClassifier"
    roles = frozenset({INTENT_CLASSIFIER})
    trainable = True

    def train(self, inputs, out):
        out.json("partial.json", {"half": True})
        raise Failing("boom")


@register
class DyingClassifier(Component):
    """Kills the process running it the first time (as a lost cluster worker), then trains."""

    name = "DyingClassifier"
    roles = frozenset({INTENT_CLASSIFIER})
    trainable = True
    defaults = {"marker": ""}

    def train(self, inputs, out):
        import os
        from pathlib import Path

        marker = Path(self.config["marker"])
        if not marker.exists():
            marker.write_text("died once")
            os._exit(1)
        out.json("model.json", {"rows": len(inputs["features"][0].json("features.json"))})


@register
class WeightedFeaturizer(Component):
    """Features scaled by "pretrained weights" read from a file named in its config."""

    name = "WeightedFeaturizer"
    roles = frozenset({FEATURIZER})
    requires = (TOKENIZER,)
    defaults = {"weights": ""}

    @classmethod
    def resources_digest(cls, config):
        from trainkit.engine.fingerprint import digest_file

        return digest_file(config["weights"])

    def process_training_data(self, inputs, out):
        from pathlib import Path

        scale = float(Path(self.config["weights"]).read_text())
        tokens = inputs["tokens"].json("tokens.json")
        out.json("features.json", [[int(scale * len(t)) for t in ts] for ts in tokens])


@register
class TunableClassifier(Component):
    """Counts words per intent; finetuning adds the new counts to the base model's."""

    name = "TunableClassifier"
    roles = frozenset({INTENT_CLASSIFIER})
    trainable = True
    finetunable = True
    defaults = {"epochs": 10, "smoothing": 1}

    def train(self, inputs, out):
        counts: dict[str, dict[str, int]] = {}
        history = []
        base = inputs.get("base_model")
        if base is not None:
            previous = base.json("model.json")
            counts, history = previous["counts"], previous["history"]
        for message in _examples(inputs):
            if message.intent:
                table = counts.setdefault(message.intent, {})
                for word in message.text.lower().split():
                    table[word] = table.get(word, 0) + 1
        history = [*history, self.config["epochs"]]
        out.json("model.json", {"counts": counts, "history": history})
