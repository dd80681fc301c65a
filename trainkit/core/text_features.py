"""End-to-end text for the dialogue: user texts featurized by the NLU pipeline's featurizers.

A story turn written as `user: "I had that yesterday"` without an intent only carries its
text. TEDPolicy featurizes such texts with the tokenizer and featurizers of the
project's NLU pipeline (the same components with the same configs), trained on the
dialogue's own texts, so two different texts lead to different dialogue states. The
trained featurizers are stored inside the policy's artifact and featurize new texts at
prediction time exactly as they did in training.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import TOKENIZER, Component, get_component
from trainkit.nlu.batch import TRAINING_DATA_FILE, MessageBatch, sentence_matrix


@dataclass
class TextFeaturizer:
    """A trained tokenizer + featurizers chain turning texts into one vector each."""

    specs: list[dict[str, Any]]
    components: list[Component] = field(default_factory=list)
    dimension: int = 0

    @classmethod
    def fit(cls, specs: Sequence[dict[str, Any]], texts: Sequence[str], directory: Path) -> TextFeaturizer:
        """Train the featurizers on `texts`; their artifacts go to `directory/<index>`."""
        data = TrainingData(training_examples=[Message.build(text=text, intent=None) for text in texts])
        components: list[Component] = []
        with tempfile.TemporaryDirectory(prefix="trainkit-e2e-") as scratch:
            data_out = ArtifactWriter(Path(scratch) / "data")
            data_out.json(TRAINING_DATA_FILE, data.as_dict())
            inputs: dict[str, Any] = {"training_data": Artifact(data_out.path)}
            for index, spec in enumerate(specs):
                component_cls = get_component(spec["component"])
                component = component_cls(spec["config"])
                model: Artifact | None = None
                if TOKENIZER in component_cls.roles:
                    tokens_out = ArtifactWriter(Path(scratch) / f"tokens{index}")
                    component.process_training_data(inputs, tokens_out)
                    inputs["tokens"] = Artifact(tokens_out.path)
                elif component_cls.trainable:
                    model_out = ArtifactWriter(directory / str(index))
                    component.train(inputs, model_out)
                    model = Artifact(model_out.path)
                components.append(component_cls.load(spec["config"], model))
        featurizer = cls(list(specs), components)
        featurizer.dimension = featurizer.transform(texts[:1]).shape[1] if texts else 0
        return featurizer

    @classmethod
    def load(cls, specs: Sequence[dict[str, Any]], directory: Path) -> TextFeaturizer:
        """Rebuild the chain from the artifacts `fit` wrote."""
        components: list[Component] = []
        for index, spec in enumerate(specs):
            component_cls = get_component(spec["component"])
            model_dir = directory / str(index)
            components.append(component_cls.load(spec["config"], Artifact(model_dir) if model_dir.is_dir() else None))
        featurizer = cls(list(specs), components)
        featurizer.dimension = featurizer.transform(["x"]).shape[1]
        return featurizer

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) sentence features of the texts, float32."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch = MessageBatch(texts=list(texts))
        for component in self.components:
            component.process(batch)  # type: ignore[attr-defined]
        return np.asarray(sentence_matrix(batch).to_dense(), dtype=np.float32)
