"""ResponseSelector: picks the response of a retrieval intent (`faq/ask_name`).

Retrieval intents group many question/answer pairs under one intent the dialogue model
sees (`faq`); this component decides which of the grouped responses fits. It is the DIET
intent network of `trainkit.nlu.diet` with response keys as labels: text embeddings are
compared by similarity with one learned embedding per response key. `retrieval_intent`
restricts training to one retrieval intent (several selectors can then coexist, each
under its own key of the result); by default all retrieval intents are learned together
under "default".
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from trainkit.data.training_data import TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import FEATURIZER, RESPONSE_SELECTOR, Component, Inputs, register
from trainkit.engine.graph import BASE_MODEL
from trainkit.engine.options import OfType, Option
from trainkit.ml.sparse import CSR
from trainkit.nlu.base import NLUComponent
from trainkit.nlu.batch import (
    MessageBatch,
    featurizable_examples,
    sentence_matrix,
    sequence_matrix,
    training_batch,
)
from trainkit.nlu.diet import (
    COMMON_DEFAULTS,
    MODEL_FILE,
    TRANSFORMER_OPTIONS,
    _dimension,
    _layer_sizes,
    base_weights,
    check_common_config,
    encode_batch,
    estimated_network_memory,
    load_network,
    protected_columns,
    save_network,
    similarity_kind,
    training_options,
    training_scaling,
)
from trainkit.nlu.diet_batch import EncodedData
from trainkit.nlu.diet_network import Network, NetworkSpec

DEFAULT_SELECTOR_KEY = "default"
UTTER_PREFIX = "utter_"


@register
class ResponseSelector(NLUComponent):
    """Selects a response key for messages of retrieval intents (Rasa's ResponseSelector)."""

    name = "ResponseSelector"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({RESPONSE_SELECTOR})
    trainable = True
    finetunable = True
    requires: ClassVar[tuple[str, ...]] = (FEATURIZER,)
    unsupported_options: ClassVar[frozenset[str]] = TRANSFORMER_OPTIONS | {"use_text_as_label"}
    defaults: ClassVar[dict[str, Any]] = {
        **COMMON_DEFAULTS,
        "hidden_layers_sizes": Option(
            {"text": [256, 128], "label": [256, 128]}, COMMON_DEFAULTS["hidden_layers_sizes"].check
        ),
        "connection_density": Option(1.0, COMMON_DEFAULTS["connection_density"].check),
        "retrieval_intent": Option(None, OfType((str,), null=True)),
        "use_text_as_label": False,
    }

    @classmethod
    def estimated_memory(cls, config: dict[str, Any]) -> int:
        return estimated_network_memory(config)

    def __init__(self, config: dict[str, Any], network: Network | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        check_common_config(self.name, config)
        self.network = network
        self.meta = meta or {}

    @property
    def selector_key(self) -> str:
        """The key this selector's prediction is stored under in `response_selector`."""
        return self.config.get("retrieval_intent") or DEFAULT_SELECTOR_KEY

    # ----------------------------------------------------------------- training
    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        training_data, batch = training_batch(inputs)
        base = inputs.get(BASE_MODEL)
        assert not isinstance(base, list)
        network = self.fit(training_data, batch, base)
        if network is None:
            out.json(MODEL_FILE, {"empty": True, **self.meta})
            return
        save_network(out, network, self.meta)

    def fit(self, training_data: TrainingData, batch: MessageBatch, base: Artifact | None = None) -> Network | None:
        """Train on the retrieval-intent examples; None when there are none."""
        config = self.config
        wanted = config.get("retrieval_intent")
        examples = featurizable_examples(training_data)
        rows = np.asarray(
            [
                i
                for i, m in enumerate(examples)
                if m.is_nlu_example and m.intent_response_key and (not wanted or m.intent == wanted)
            ],
            np.int64,
        )
        responses = {
            key: training_data.responses.get(f"{UTTER_PREFIX}{key}")
            for key in sorted({examples[i].intent_response_key or "" for i in rows})
        }
        self.meta = {
            "all_retrieval_intents": training_data.retrieval_intents,
            "responses": responses,
        }
        scaling = training_scaling(batch, base)
        sentence = sentence_matrix(batch, scaling["sentence"])
        if rows.size == 0 or sentence.shape[1] == 0:
            return None
        keys = sorted(responses)
        labels = np.asarray([keys.index(examples[i].intent_response_key or "") for i in rows], np.int64)
        offsets = np.asarray(batch.token_offsets, np.int64)
        lengths = offsets[rows + 1] - offsets[rows]
        sequence = sequence_matrix(batch, scaling["sequence"])
        protected_sentence, _ = protected_columns(batch, config)
        data = EncodedData(
            sentence.take_rows(rows),
            CSR.empty(int(lengths.sum()), sequence.shape[1]),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            labels,
            protected_sentence=protected_sentence,
        )
        spec = NetworkSpec(
            sentence_dim=sentence.shape[1],
            sequence_dim=sequence.shape[1],
            labels=keys,
            dense_dimension=_dimension(config["dense_dimension"], "text", 256),
            hidden_sizes=_layer_sizes(config["hidden_layers_sizes"], "text"),
            label_hidden_sizes=_layer_sizes(config["hidden_layers_sizes"], "label"),
            embedding_dimension=int(config["embedding_dimension"]),
            similarity=similarity_kind(config),
            dense_scaling=scaling,
        )
        network = Network(spec)
        network.fit(data, training_options(config), base_weights(self.name, base, spec))
        self.network = network
        return network

    # --------------------------------------------------------------- prediction
    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        if model is None:
            return cls(config)
        meta = model.json(MODEL_FILE)
        if meta.get("empty"):
            return cls(config, None, {k: v for k, v in meta.items() if k != "empty"})
        network, meta = load_network(model)
        return cls(config, network, meta)

    def process(self, batch: MessageBatch) -> None:
        if self.network is None or len(batch) == 0:
            return
        spec = self.network.spec
        probs, _ = self.network.predict(encode_batch(batch, spec))
        assert probs is not None
        ranking_length = int(self.config["ranking_length"])
        renormalize = bool(self.config["renormalize_confidences"])
        responses = self.meta.get("responses", {})
        for i in range(len(batch)):
            order = np.argsort(-probs[i], kind="stable")
            if ranking_length > 0:
                order = order[:ranking_length]
            conf = probs[i][order]
            if renormalize and ranking_length > 0 and conf.sum() > 0:
                conf = conf / conf.sum()
            ranking = [
                {"confidence": float(c), "intent_response_key": spec.labels[j]}
                for j, c in zip(order, conf, strict=True)
            ]
            best = ranking[0]["intent_response_key"]
            prediction = {
                "response": {
                    "responses": responses.get(best),
                    "confidence": ranking[0]["confidence"],
                    "intent_response_key": best,
                    "utter_action": f"{UTTER_PREFIX}{best}",
                },
                "ranking": ranking,
            }
            result = dict(batch.response_selector[i] or {})
            result["all_retrieval_intents"] = list(self.meta.get("all_retrieval_intents", []))
            result[self.selector_key] = prediction
            batch.response_selector[i] = result
