"""Fixtures that train NLU components the way the graph does: through artifacts on disk."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainkit.data.training_data import TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import FEATURIZER, TOKENIZER, component_config
from trainkit.ml.safetensors import write_safetensors
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
        self.artifacts: list[Artifact | None] = []
        for cls, options in items:
            config = component_config(cls, options)
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



TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ",", ".", "'", "?", "a", "an", "the", "i", "you",
              "hello", "hi", "hey", "bye", "goodbye", "see", "later", "book", "table", "for", "two", "in",
              "paris", "berlin", "coffee", "latte", "tea", "please", "want", "would", "like", "can", "t", "find",
              "my", "card", "order", "cancel", "large", "small", "oat", "milk", "##s", "##ing", "##er", "##ly"]
TINY_CONFIG = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 8, "num_hidden_layers": 2,
               "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
               "max_position_embeddings": 32, "type_vocab_size": 2, "vocab_size": len(TINY_VOCAB)}


def tiny_bert_tensors(config: dict[str, Any], seed: int = 0, prefix: str = "") -> dict[str, np.ndarray]:
    """Random weights of a small BERT with Hugging Face's tensor names."""
    rng = np.random.default_rng(seed)
    h, i = config["hidden_size"], config["intermediate_size"]

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.5, size=shape).astype(np.float32)

    tensors = {
        "embeddings.word_embeddings.weight": normal(config["vocab_size"], h),
        "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": 1 + normal(h) * 0.1, "embeddings.LayerNorm.bias": normal(h) * 0.1,
    }
    for n in range(config["num_hidden_layers"]):
        layer = f"encoder.layer.{n}."
        for part in ("query", "key", "value"):
            tensors[layer + f"attention.self.{part}.weight"] = normal(h, h)
            tensors[layer + f"attention.self.{part}.bias"] = normal(h)
        tensors.update({
            layer + "attention.output.dense.weight": normal(h, h), layer + "attention.output.dense.bias": normal(h),
            layer + "attention.output.LayerNorm.weight": 1 + normal(h) * 0.1,
            layer + "attention.output.LayerNorm.bias": normal(h) * 0.1,
            layer + "intermediate.dense.weight": normal(i, h), layer + "intermediate.dense.bias": normal(i),
            layer + "output.dense.weight": normal(h, i), layer + "output.dense.bias": normal(h),
            layer + "output.LayerNorm.weight": 1 + normal(h) * 0.1, layer + "output.LayerNorm.bias": normal(h) * 0.1,
        })
    return {prefix + k: v for k, v in tensors.items()}


def write_tiny_bert(directory: Path, seed: int = 0, config: dict[str, Any] | None = None) -> Path:
    """A complete model directory (config.json, model.safetensors, vocab.txt)."""
    config = config or TINY_CONFIG
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    write_safetensors(directory / "model.safetensors", tiny_bert_tensors(config, seed))
    return directory


@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    """A small random BERT on disk; needs only the `tokenizers` package to run."""
    pytest.importorskip("tokenizers")
    return write_tiny_bert(tmp_path / "tiny-bert")
