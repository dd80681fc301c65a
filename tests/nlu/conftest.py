"""Fixtures that train NLU components the way the graph does: through artifacts on disk."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from tiny_bert import write_tiny_bert

from trainkit.data.training_data import TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import FEATURIZER, PROVIDER, TOKENIZER, component_config
from trainkit.nlu.batch import MessageBatch


class PipelineRunner:
    """Trains pipeline items in order into tmp artifacts and loads them for prediction."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ids = itertools.count()

    def writer(self, label: str) -> tuple[ArtifactWriter, Artifact]:
        path = self.root / f"{next(self._ids)}_{label}"
        return ArtifactWriter(path), Artifact(path)

    def data(self, training_data: TrainingData) -> Artifact:
        out, artifact = self.writer("data")
        out.json("training_data.json", training_data.as_dict())
        return artifact

    def train(self, training_data: TrainingData, items: list[tuple[type, dict[str, Any]]]) -> list[Any]:
        """Train every item and return the loaded components (what prediction uses)."""
        data = self.data(training_data)
        tokens: Artifact | None = None
        features: list[Artifact] = []
        loaded = []
        providers: dict[str, dict[str, Any]] = {}
        self.artifacts: list[Artifact | None] = []
        for cls, options in items:
            config = component_config(cls, options)
            if PROVIDER in cls.roles:
                providers[cls.name] = config
            if cls.provider:  # as the recipe does: the provider's settings travel along
                config[cls.provider] = dict(providers[cls.provider])
            component = cls(config)
            inputs: dict[str, Any] = {"training_data": data}
            if tokens is not None and TOKENIZER not in cls.roles:
                inputs["tokens"] = tokens
            model: Artifact | None = None
            if TOKENIZER in cls.roles:
                out, tokens = self.writer(cls.name)
                component.process_training_data(inputs, out)
            elif FEATURIZER in cls.roles:
                run_inputs = dict(inputs)
                if cls.trainable:
                    out, model = self.writer(f"train_{cls.name}")
                    component.train(inputs, out)
                    run_inputs["model"] = model
                out, feats = self.writer(f"run_{cls.name}")
                component.process_training_data(run_inputs, out)
                features.append(feats)
            elif cls.trainable:
                out, model = self.writer(f"train_{cls.name}")
                component.train({**inputs, "features": list(features)}, out)
            self.artifacts.append(model)
            loaded.append(cls.load(config, model))
        self.features = features
        return loaded

    @staticmethod
    def parse(components: list[Any], texts: list[str]) -> MessageBatch:
        """Run loaded components over texts."""
        batch = MessageBatch(texts=list(texts))
        for component in components:
            component.process(batch)
        return batch


@pytest.fixture
def runner(tmp_path: Path) -> PipelineRunner:
    return PipelineRunner(tmp_path)



@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    """A small random BERT on disk; needs only the `tokenizers` package to run."""
    pytest.importorskip("tokenizers")
    return write_tiny_bert(tmp_path / "tiny-bert")
