"""LanguageModelFeaturizer: dense features from a pretrained BERT-family encoder.

Rasa runs Hugging Face `transformers` on TensorFlow for this. trainkit runs the encoder's
forward pass in numpy over the model's `model.safetensors` (`trainkit.ml.bert`) and
splits text with the model's own tokenizer through the `tokenizers` package (the
`trainkit[lm]` extra): no framework, and the weights come only from this machine
(`trainkit.nlu.pretrained`).

- **sentence** features: the model's own pooling (`1_Pooling/config.json` of a
  sentence-transformers model: the mean of the sub-word vectors, or the [CLS] vector),
  mean pooling when the model says nothing;
- **sequence** features: one row per token of the pipeline's tokenizer, the mean of the
  vectors of the sub-words whose character spans overlap the token (a token the model
  dropped, or one past the model's length limit, gets zeros).

The weights' content digest is the component's `resources_digest`, so replacing the
model on disk makes exactly the nodes that read it stale.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any, ClassVar

import numpy as np

from trainkit.engine.component import register
from trainkit.engine.options import OfType, Option
from trainkit.engine.threads import limited_blas
from trainkit.errors import ConfigError
from trainkit.ml.bert import BertConfig, BertEncoder
from trainkit.ml.safetensors import read_safetensors
from trainkit.nlu.base import Featurizer
from trainkit.nlu.batch import FeatureSet, MessageBatch, Token
from trainkit.nlu.pretrained import ModelFiles, locate, model_digest

# Sub-word positions per forward batch: the attention scores take batch x heads x L x L
# floats, so long texts go in smaller batches.
BATCH_POSITIONS = 4096
MAX_BATCH = 64


def tokenizers_installed() -> bool:
    try:
        return importlib.util.find_spec("tokenizers") is not None
    except (ImportError, ValueError):
        return False


class LoadedModel:
    """The encoder, its tokenizer and its pooling, loaded once per process and model."""

    def __init__(self, files: ModelFiles) -> None:
        from tokenizers import Tokenizer
        from tokenizers.implementations import BertWordPieceTokenizer

        directory = files.directory
        config = json.loads((directory / "config.json").read_text())
        self.config = BertConfig.from_dict(config)
        self.encoder = BertEncoder(self.config, read_safetensors(files.weights))
        if files.tokenizer.name == "tokenizer.json":
            self.tokenizer = Tokenizer.from_file(str(files.tokenizer))
        else:
            lowercase = self._setting(files, "tokenizer_config.json", "do_lower_case", True)
            self.tokenizer = BertWordPieceTokenizer(str(files.tokenizer), lowercase=bool(lowercase))
        self.max_length = min(int(self._setting(files, "sentence_bert_config.json", "max_seq_length",
                                                self.config.max_position_embeddings)),
                              self.config.max_position_embeddings)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.cls_pooling = bool(self._setting(files, "1_Pooling/config.json", "pooling_mode_cls_token", False))

    @staticmethod
    def _setting(files: ModelFiles, name: str, key: str, default: Any) -> Any:
        path = files.directory / name
        if not path.is_file():
            return default
        try:
            return json.loads(path.read_text()).get(key, default)
        except (OSError, ValueError, AttributeError):
            return default

    def encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per text: sub-word vectors (n x hidden, float32), their character spans
        (n x 2) and which are special tokens ([CLS], [SEP])."""
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.asarray([len(e.ids) for e in encodings])
        out: list[Any] = [None] * len(texts)
        order = np.argsort(lengths, kind="stable")
        start = 0
        while start < len(order):
            longest = int(lengths[order[min(start + MAX_BATCH, len(order)) - 1]])
            size = max(1, min(MAX_BATCH, BATCH_POSITIONS // max(longest, 1)))
            chunk = order[start:start + size]
            width = int(lengths[chunk].max())
            ids = np.zeros((len(chunk), width), np.int64)
            mask = np.zeros((len(chunk), width), np.int8)
            for row, index in enumerate(chunk):
                n = lengths[index]
                ids[row, :n] = encodings[index].ids
                mask[row, :n] = 1
            hidden = self.encoder.forward(ids, mask)
            for row, index in enumerate(chunk):
                n = lengths[index]
                encoding = encodings[index]
                out[index] = (hidden[row, :n].copy(), np.asarray(encoding.offsets, np.int64).reshape(n, 2),
                              np.asarray(encoding.special_tokens_mask, bool))
            start += size
        return out

    def pool(self, vectors: np.ndarray) -> np.ndarray:
        """The sentence vector of one text's sub-word vectors."""
        return vectors[0] if self.cls_pooling else vectors.mean(axis=0)


def align(tokens: list[Token], vectors: np.ndarray, spans: np.ndarray, special: np.ndarray) -> np.ndarray:
    """One row per pipeline token: the mean of the sub-word vectors overlapping it."""
    rows = np.zeros((len(tokens), vectors.shape[1]), np.float32)
    if not tokens:
        return rows
    words = ~special
    starts, ends = spans[words, 0], spans[words, 1]
    word_vectors = vectors[words]
    for i, token in enumerate(tokens):
        overlap = (starts < token.end) & (ends > token.start)
        if overlap.any():
            rows[i] = word_vectors[overlap].mean(axis=0)
    return rows


_LOADED: dict[tuple[str, str], LoadedModel] = {}


@register
class LanguageModelFeaturizer(Featurizer):
    """Dense sentence and token features from a pretrained BERT-family model on this machine."""

    name = "LanguageModelFeaturizer"
    version = "2"
    defaults: ClassVar[dict[str, Any]] = {
        "model_name": Option("bert", OfType((str,))),
        "model_weights": Option(None, OfType((str,), null=True)),
        "cache_dir": Option(None, OfType((str,), null=True)),
        "alias": Option(None, OfType((str,), null=True)),
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.files = locate(config)
        if not tokenizers_installed():
            raise ConfigError("LanguageModelFeaturizer needs the 'tokenizers' package to split text the way the "
                              "model was trained: pip install 'trainkit[lm]'")

    @classmethod
    def resources_digest(cls, config: dict[str, Any]) -> str | None:
        return model_digest(locate(config))

    def model(self) -> LoadedModel:
        """The loaded encoder (shared by every instance naming the same files)."""
        key = (str(self.files.directory), model_digest(self.files))
        loaded = _LOADED.get(key)
        if loaded is None:
            loaded = _LOADED[key] = LoadedModel(self.files)
        return loaded

    def featurize(self, batch: MessageBatch) -> FeatureSet:
        model = self.model()
        hidden = model.config.hidden_size
        tokens = batch.tokens if batch.tokens else [[] for _ in batch.texts]
        with limited_blas():
            encoded = model.encode(list(batch.texts)) if batch.texts else []
        sentence = np.zeros((len(batch.texts), hidden), np.float32)
        sequence = [np.zeros((0, hidden), np.float32)]
        for i, (vectors, spans, special) in enumerate(encoded):
            sentence[i] = model.pool(vectors)
            sequence.append(align(tokens[i], vectors, spans, special))
        return FeatureSet(self.origin, sentence, np.concatenate(sequence), batch.token_offsets)
