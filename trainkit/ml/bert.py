"""A BERT encoder's forward pass in numpy (float32), for pretrained weights.

Inference only: embeddings (word + position + token type, layer-normalised), then
`num_hidden_layers` blocks of multi-head self-attention and a GELU feed-forward layer,
each with a residual connection and layer normalisation (the post-norm layout of BERT,
MiniLM and LaBSE). Weights use Hugging Face's names (`encoder.layer.0.attention.self.
query.weight`, ...) with or without a `bert.` prefix; linear weights are stored
(out x in), so they are transposed once at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trainkit.errors import TrainkitError

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


@dataclass(frozen=True)
class BertConfig:
    """The architecture numbers of a `config.json`."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    vocab_size: int = 30522

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BertConfig:
        try:
            config = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise TrainkitError(f"config.json misses a BERT setting: {exc}") from None
        if config.hidden_act not in ACTIVATIONS:
            raise TrainkitError(f"config.json: activation {config.hidden_act!r} is not implemented "
                                f"(known: {', '.join(ACTIVATIONS)})")
        if config.hidden_size % config.num_attention_heads:
            raise TrainkitError("config.json: hidden_size is not a multiple of num_attention_heads")
        return config


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to within 1.5e-7 (Abramowitz and Stegun 7.1.26), enough for
    float32; numpy has no erf of its own. In-place steps: this runs over the widest
    activations of the network."""
    a = np.abs(x)
    t = 0.3275911 * a
    t += 1.0
    np.reciprocal(t, out=t)
    poly = 1.061405429 * t
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += c
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)


def gelu(x: np.ndarray, kind: str) -> np.ndarray:
    """BERT's activation: the exact (erf) GELU, or the tanh approximation some models use."""
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "gelu":
        y = erf(x * np.float32(0.7071067811865476))
        y += 1.0
        y *= x
        y *= 0.5
        return y
    inner = np.float32(0.7978845608028654) * (x + np.float32(0.044715) * x * x * x)
    return 0.5 * x * (1.0 + np.tanh(inner))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(eps)) * weight + bias


class BertEncoder:
    """Pretrained BERT weights and their forward pass."""

    def __init__(self, config: BertConfig, tensors: dict[str, np.ndarray]) -> None:
        self.config = config
        prefix = "bert." if any(k.startswith("bert.embeddings.") for k in tensors) else ""

        def get(name: str, transpose: bool = False) -> np.ndarray:
            key = prefix + name
            if key not in tensors:
                raise TrainkitError(f"the weights have no tensor {key!r}; is this a BERT model?")
            array = np.asarray(tensors[key], dtype=np.float32)
            return np.ascontiguousarray(array.T if transpose else array)

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")
        self.emb_norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(config.num_hidden_layers):
            layer = f"encoder.layer.{i}."
            qkv_w = np.concatenate([get(layer + f"attention.self.{p}.weight", True) for p in ("query", "key", "value")], axis=1)
            qkv_b = np.concatenate([get(layer + f"attention.self.{p}.bias") for p in ("query", "key", "value")])
            self.layers.append({
                "qkv.W": np.ascontiguousarray(qkv_w), "qkv.b": qkv_b,
                "att_out.W": get(layer + "attention.output.dense.weight", True),
                "att_out.b": get(layer + "attention.output.dense.bias"),
                "att_norm.w": get(layer + "attention.output.LayerNorm.weight"),
                "att_norm.b": get(layer + "attention.output.LayerNorm.bias"),
                "inter.W": get(layer + "intermediate.dense.weight", True),
                "inter.b": get(layer + "intermediate.dense.bias"),
                "out.W": get(layer + "output.dense.weight", True),
                "out.b": get(layer + "output.dense.bias"),
                "out_norm.w": get(layer + "output.LayerNorm.weight"),
                "out_norm.b": get(layer + "output.LayerNorm.bias"),
            })
        if self.word.shape[1] != config.hidden_size:
            raise TrainkitError("the word embeddings do not have config.json's hidden_size")

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Last hidden states (batch x length x hidden) of padded id rows.

        Padding positions (mask 0) are never attended to; their outputs are meaningless
        and callers drop them.
        """
        cfg = self.config
        batch, length = input_ids.shape
        heads, width = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
        x = self.word[input_ids] + self.position[:length][None] + self.token_type[0][None, None]
        x = layer_norm(x.reshape(batch * length, cfg.hidden_size), *self.emb_norm, cfg.layer_norm_eps)
        # (batch x 1 x 1 x length): a large negative score where the key is padding
        bias = ((1.0 - attention_mask.astype(np.float32)) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(width))
        for p in self.layers:
            # linear layers act on (batch * length) x hidden rows: one BLAS product each
            qkv = (x @ p["qkv.W"] + p["qkv.b"]).reshape(batch, length, 3, heads, width)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)  # batch x heads x length x width
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)  # batch x heads x width x length
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = (q * scale) @ k + bias  # batch x heads x length x length
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, cfg.hidden_size)
            x = layer_norm(x + context @ p["att_out.W"] + p["att_out.b"], p["att_norm.w"], p["att_norm.b"],
                           cfg.layer_norm_eps)
            hidden = gelu(x @ p["inter.W"] + p["inter.b"], cfg.hidden_act)
            x = layer_norm(x + hidden @ p["out.W"] + p["out.b"], p["out_norm.w"], p["out_norm.b"], cfg.layer_norm_eps)
        return x.reshape(batch, length, cfg.hidden_size)
