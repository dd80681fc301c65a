"""A small random BERT written to disk: a real model directory for the language-model
tests that needs no download (only the `tokenizers` package to run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from trainkit.ml.safetensors import write_safetensors

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
