"""TEDPolicy: a small numpy network that generalises from the training stories.

Rasa's TED runs a transformer over the dialogue and scores actions by the similarity of
the dialogue embedding to learned action embeddings. trainkit keeps the embedding and
similarity part and replaces the transformer with a feed-forward encoder over the last
`max_history` states laid side by side (each state encoded by `StateEncoder`), which is
enough to learn which features of the recent turns decide the next action and is cheap
to train on a CPU. The transformer's options are accepted and reported as unsupported.

End-to-end stories are learned from their texts, as Rasa's end-to-end TED does: each
state's user text and the text the bot last said (`bot:` steps, Rasa's `action_text`)
are featurized by the NLU pipeline's tokenizer and featurizers (see `text_features`)
and their vectors join the state's encoding; a bot text is then known by its words, not
by an opaque unit of its own. A bot text is also a label TED predicts. A user turn with
both an intent and a text is learned both ways (`training_examples(text_variants=True)`);
a live message with both is scored both ways and, as in Rasa, the text's reading wins
when it is confident (`e2e_confidence_threshold`) and more similar to an action than
the intent's, which marks the prediction as end-to-end.

Training is full-batch-vectorised Adam with softmax cross-entropy over all actions, L2
regularisation and dropout on the hidden layers; every random draw comes from one
generator seeded by `random_seed`, so the same data and config give the same weights.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainkit.core.featurization import (
    PREVIOUS_ACTION,
    USER,
    DomainView,
    State,
    StateEncoder,
    states_for_events,
    states_from_text,
    training_examples,
    user_turn_positions,
)
from trainkit.core.policy import Policy, PolicyPrediction, read_domain, read_trackers
from trainkit.core.rule_only import RuleOnlyData, find_rule_only_data
from trainkit.core.text_features import (
    TextFeaturizer,
    event_texts,
    read_texts,
    specs_resources_digest,
)
from trainkit.core.trackers import TrainingTracker
from trainkit.data.domain import Domain
from trainkit.data.events import ACTION_LISTEN, ActionExecuted, Event
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import Component, Inputs, register
from trainkit.engine.graph import BASE_MODEL
from trainkit.engine.options import (
    DROP_RATE,
    EPOCHS,
    HISTORY,
    LEARNING_RATE,
    MAX_BATCH_SIZE,
    MAX_UNITS,
    NON_NEGATIVE,
    PRIORITY,
    PROBABILITY,
    SEED,
    AnyOf,
    Choice,
    Int,
    ListOf,
    Option,
    layers,
    pair_or_int,
)
from trainkit.engine.progress import report_epoch
from trainkit.engine.recipe import TEXT_FEATURIZERS
from trainkit.errors import TrainkitError
from trainkit.ml import layers as nn
from trainkit.ml.batching import BALANCED, STRATEGIES, epoch_order
from trainkit.ml.sparse import CSR

MODEL_FILE = "ted_policy.json"
TEXT_DIR = "text_featurizers"
WEIGHTS_FILE = "ted_weights.npz"

# Rasa TED options that shape the transformer, sampling or logging: accepted, ignored.
_UNSUPPORTED = frozenset(
    {
        "number_of_transformer_layers",
        "transformer_size",
        "number_of_attention_heads",
        "unidirectional_encoder",
        "use_key_relative_attention",
        "use_value_relative_attention",
        "max_relative_position",
        "encoding_dimension",
        "dense_dimension",
        "concat_dimension",
        "number_of_negative_examples",
        "similarity_type",
        "loss_type",
        "ranking_length",
        "renormalize_confidences",
        "scale_loss",
        "evaluate_every_number_of_epochs",
        "evaluate_on_number_of_examples",
        "drop_rate_label",
        "drop_rate_attention",
        "connection_density",
        "use_sparse_input_dropout",
        "use_dense_input_dropout",
        "negative_margin_scale",
        "use_maximum_negative_similarity",
        "maximum_positive_similarity",
        "maximum_negative_similarity",
        "model_confidence",
        "constrain_similarities",
        "entity_recognition",
        "BILOU_flag",
        "split_entities_by_comma",
        "tensorboard_log_directory",
        "tensorboard_log_level",
        "checkpoint_model",
        "featurizers",
    }
)


def _batch_sizes(setting: Any, epochs: int) -> list[int]:
    """Rasa's linearly increasing batch size: `[low, high]` grows from low to high."""
    if isinstance(setting, (list, tuple)):
        low, high = int(setting[0]), int(setting[-1])
    else:
        low = high = int(setting)
    if epochs <= 1:
        return [low] * max(epochs, 0)
    return [int(low + (high - low) * e / (epochs - 1)) for e in range(epochs)]


def _check_same_layout(base: TEDPolicy, policy: TEDPolicy) -> None:
    """A finetune must see dialogues laid out as the base model saw them."""
    assert base.encoder is not None and policy.encoder is not None
    if base.actions != policy.actions:
        raise TrainkitError("TEDPolicy: cannot finetune: the domain's actions differ from the model's")
    if base.encoder.as_dict() != policy.encoder.as_dict():
        raise TrainkitError("TEDPolicy: cannot finetune: the dialogue states are encoded differently than in the "
                            "model (intents, entities, slots or forms of the domain changed)")


def _dialogue_layers(setting: Any) -> list[int]:
    """Hidden sizes of the dialogue encoder.

    Rasa's `hidden_layers_sizes` maps attributes to sizes; only the dialogue entry
    applies here, since user texts join the state encoding before the dialogue layers.
    A plain list is accepted as the dialogue sizes.
    """
    if isinstance(setting, dict):
        return [int(x) for x in setting.get("dialogue", [])]
    return [int(x) for x in setting or []]


@register
class TEDPolicy(Policy):
    """Feed-forward dialogue encoder + action embeddings, trained on story trackers."""

    name = "TEDPolicy"
    version = "3"
    # The recipe hands it the pipeline's tokenizer and featurizers for end-to-end texts.
    featurizes_text = True
    priority = 1
    finetunable = True
    defaults = {
        "max_history": Option(None, HISTORY),
        "epochs": Option(1, EPOCHS),
        "batch_size": Option([64, 256], pair_or_int(1, MAX_BATCH_SIZE)),
        # how an epoch orders the training examples, by the action they teach
        # (`trainkit.ml.batching`); Rasa's default is balanced
        "batch_strategy": Option(BALANCED, Choice(STRATEGIES)),
        "learning_rate": Option(0.001, LEARNING_RATE),
        "hidden_layers_sizes": Option(
            {"text": [], "action_text": [], "label_action_text": [], "dialogue": [128]},
            AnyOf((
                layers(("text", "action_text", "label_action_text", "dialogue"), MAX_UNITS),
                ListOf(Int(1, MAX_UNITS), max_length=16),
            )),
        ),
        "embedding_dimension": Option(20, Int(1, MAX_UNITS)),
        "drop_rate_dialogue": Option(0.1, DROP_RATE),
        "regularization_constant": Option(0.001, NON_NEGATIVE),
        "random_seed": Option(None, SEED),
        "priority": Option(1, PRIORITY),
        "e2e_confidence_threshold": Option(0.5, PROBABILITY),
    }
    unsupported_options = _UNSUPPORTED

    # Every dialogue state has at least this many features (intents, actions, slots), so
    # the memory estimate is a lower bound whatever the domain.
    _MIN_STATE_FEATURES = 16

    @classmethod
    def resources_digest(cls, config: dict[str, Any]) -> str | None:
        """The end-to-end text featurizers' resources (a language model's weights)."""
        return specs_resources_digest(config.get(TEXT_FEATURIZERS) or [])

    @classmethod
    def estimated_memory(cls, config: dict[str, Any]) -> int:
        """Float32 weights, gradients and Adam moments of the dialogue encoder."""
        window = int(config.get("max_history") or 1)
        sizes = [window * cls._MIN_STATE_FEATURES, *_dialogue_layers(config.get("hidden_layers_sizes")),
                 int(config.get("embedding_dimension") or 1)]
        params = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
        return params * 4 * 4

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.params: dict[str, np.ndarray] = {}
        self.actions: list[str] = []
        self.encoder: StateEncoder | None = None
        self.window = 0
        self.n_layers = 0
        self.losses: list[float] = []
        self.rule_only = RuleOnlyData()
        self.text: TextFeaturizer | None = None

    # --- data ---------------------------------------------------------------------------

    @property
    def max_history(self) -> int | None:
        """States the network sees; None uses the longest training history."""
        value = self.config.get("max_history")
        return None if value is None else int(value)

    def _examples(self, trackers: list[TrainingTracker], domain: Domain) -> list[tuple[list, str]]:
        """Unique (history, action) pairs of the story trackers, augmented ones included."""
        seen: set[str] = set()
        out = []
        view = DomainView(domain)
        for tracker in trackers:
            if tracker.is_rule:
                continue
            for example in training_examples(
                tracker.events, domain, self.max_history, tracker.unpredictable, view=view,
                text_variants=self.text is not None,
            ):
                key = example.key + "\n" + example.action
                if key not in seen:
                    seen.add(key)
                    out.append((example.states, example.action))
        return out

    # --- network ------------------------------------------------------------------------

    def _init_params(self, n_in: int, n_actions: int, rng: np.random.Generator) -> None:
        sizes = [n_in, *_dialogue_layers(self.config.get("hidden_layers_sizes"))]
        dim = int(self.config.get("embedding_dimension", 20))

        def glorot(n: int, m: int) -> np.ndarray:
            limit = np.sqrt(6.0 / (n + m))
            return rng.uniform(-limit, limit, size=(n, m)).astype(np.float32)

        self.params = {}
        for i in range(len(sizes) - 1):
            self.params[f"W{i}"] = glorot(sizes[i], sizes[i + 1])
            self.params[f"b{i}"] = np.zeros(sizes[i + 1], dtype=np.float32)
        self.n_layers = len(sizes) - 1
        self.params["W_embed"] = glorot(sizes[-1], dim)
        self.params["b_embed"] = np.zeros(dim, dtype=np.float32)
        self.params["action_embeddings"] = glorot(n_actions, dim)

    def _forward(
        self, x: CSR, rng: np.random.Generator | None = None, drop: float = 0.0
    ) -> tuple[np.ndarray, list[tuple[Any, np.ndarray]]]:
        """Logits (batch, actions) and, per hidden layer, (input, dropout-scaled mask).

        The input is sparse (see `StateEncoder.history_matrix`): the first layer reads
        only the weight rows of the units the batch has, so its cost follows the states
        in the batch, not the window's width.
        """
        cache: list[tuple[Any, np.ndarray]] = []
        h: Any = nn.SparseBatch.from_csr(x, np.float32)
        for i in range(self.n_layers):
            z = _linear(h, self.params[f"W{i}"], self.params[f"b{i}"])
            mask = (z > 0).astype(np.float32)
            if rng is not None and drop > 0:
                mask *= (rng.random(z.shape) >= drop).astype(np.float32) / (1.0 - drop)
            cache.append((h, mask))
            h = z * mask
        cache.append((h, np.ones(1, dtype=np.float32)))
        dialogue = _linear(h, self.params["W_embed"], self.params["b_embed"])  # (batch, dim)
        cache.append((dialogue, np.ones(1, dtype=np.float32)))
        return dialogue @ self.params["action_embeddings"].T, cache

    def _gradients(
        self, logits: np.ndarray, cache: list[tuple[Any, np.ndarray]], targets: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Cross-entropy loss and its gradients (L2 on weight matrices added)."""
        batch = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = float(-np.log(probs[np.arange(batch), targets] + 1e-12).mean())
        d_logits = probs
        d_logits[np.arange(batch), targets] -= 1.0
        d_logits /= batch
        dialogue = cache[-1][0]
        top = cache[-2][0]
        grads = {
            "action_embeddings": d_logits.T @ dialogue,
        }
        d_dialogue = d_logits @ self.params["action_embeddings"]  # (batch, dim)
        grads["W_embed"] = _weight_gradient(top, d_dialogue, self.params["W_embed"])
        grads["b_embed"] = d_dialogue.sum(axis=0)
        if self.n_layers:
            d_h = d_dialogue @ self.params["W_embed"].T
        for i in range(self.n_layers - 1, -1, -1):
            h_in, mask = cache[i]
            d_z = d_h * mask
            grads[f"W{i}"] = _weight_gradient(h_in, d_z, self.params[f"W{i}"])
            grads[f"b{i}"] = d_z.sum(axis=0)
            if i > 0:  # the input needs no gradient
                d_h = d_z @ self.params[f"W{i}"].T
        reg = float(self.config.get("regularization_constant", 0.0) or 0.0)
        if reg:
            for name in grads:
                if name.startswith("W") or name == "action_embeddings":
                    grads[name] += reg * self.params[name]
        return loss, grads

    # --- training -----------------------------------------------------------------------

    def _fit_text(
        self, trackers: list[TrainingTracker], extra_texts: Sequence[str], directory: Path | None
    ) -> None:
        """Train the pipeline's featurizers when the stories hold texts.

        They learn from the stories' user and bot texts plus `extra_texts` (the NLU
        examples' texts), as Rasa's end-to-end featurizers see the whole training data.
        """
        specs = self.config.get(TEXT_FEATURIZERS) or []
        story_texts: set[str] = set()
        for tracker in trackers:
            if not tracker.is_rule:
                story_texts |= event_texts(tracker.events)
        self.text = None
        if not specs or not story_texts:
            return
        texts = sorted(story_texts | set(extra_texts))
        if directory is not None:
            self.text = TextFeaturizer.fit(specs, texts, directory)
            return
        with tempfile.TemporaryDirectory(prefix="trainkit-ted-text-") as scratch:
            self.text = TextFeaturizer.fit(specs, texts, Path(scratch))

    def _inputs(self, histories: list[list[State]]) -> CSR:
        """(n, window * width) sparse network inputs: each state's encoding, then, with
        end-to-end texts, the featurized text of the state's user turn and of the bot's
        last utterance (nothing where the state has an intent or an action name instead)."""
        assert self.encoder is not None
        if self.text is None:
            return self.encoder.history_matrix(histories, self.window)
        recent = [states[-self.window :] for states in histories]
        texts = sorted(
            {t for states in recent for s in states for t in (_user_text(s), _bot_text(s))} - {None}
        )
        size, dimension = self.encoder.size, self.text.dimension
        vectors: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
        for text, vector in zip(texts, self.text.transform(texts), strict=True):
            vector = np.asarray(vector, dtype=np.float32)
            hot = np.flatnonzero(vector)
            vectors[text] = (hot, vector[hot])

        def text_columns(state: State) -> tuple[np.ndarray, np.ndarray]:
            # after the state's own units: the user text's block, then the bot text's
            columns, values = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
            for block, text in enumerate((_user_text(state), _bot_text(state))):
                if text in vectors:
                    hot, weights = vectors[text]
                    columns.append(size + block * dimension + hot)
                    values.append(weights)
            return np.concatenate(columns), np.concatenate(values)

        return self.encoder.history_matrix(recent, self.window, size + 2 * dimension, text_columns)

    def fit(
        self,
        trackers: list[TrainingTracker],
        domain: Domain,
        text_directory: Path | None = None,
        texts: Sequence[str] = (),
        base: TEDPolicy | None = None,
    ) -> TEDPolicy:
        """Train on the story trackers; an empty model when there are none.

        `text_directory` keeps the trained text featurizers (the artifact's subfolder when
        training a node); without it they live in memory only. `texts` are further texts
        (the NLU examples') the featurizers learn their vocabulary from. A `base` policy
        (finetuning) fixes the layout (window, text featurizers, state encoding) and the
        starting weights.
        """
        self.actions = list(domain.action_names_or_texts)
        self.rule_only = find_rule_only_data(trackers, domain)
        if base is not None:
            self.text = base.text
        else:
            self._fit_text(trackers, texts, text_directory)
        self.encoder = StateEncoder.from_domain(domain, action_texts=self.text is None)
        if base is not None:
            _check_same_layout(base, self)
        examples = self._examples(trackers, domain)
        if not examples:
            self.params, self.window, self.n_layers, self.text = {}, 0, 0, None
            return self
        if base is not None and not base.params:
            raise TrainkitError("TEDPolicy: cannot finetune: the model to finetune learned nothing; train from scratch")
        self.window = base.window if base is not None else (
            self.max_history or max(len(states) for states, _ in examples))
        x = self._inputs([states for states, _ in examples])
        action_index = {a: i for i, a in enumerate(self.actions)}
        unknown = sorted({a for _, a in examples if a not in action_index})
        if unknown:
            raise TrainkitError(
                "TEDPolicy: the stories use actions the domain does not have: "
                + ", ".join(f"'{a}'" for a in unknown)
                + " (run `trainkit validate` to see where)"
            )
        y = np.array([action_index[a] for _, a in examples], dtype=np.int64)
        seed = self.config.get("random_seed")
        rng = np.random.default_rng(0 if seed is None else int(seed))
        self._init_params(x.shape[1], len(self.actions), rng)
        if base is not None:
            self.params = {name: np.array(base.params[name], dtype=np.float32) for name in self.params}
        # in-place updates: with max_history unset the first layer has window * width rows
        optimizer = nn.Adam(float(self.config.get("learning_rate", 0.001)))
        drop = float(self.config.get("drop_rate_dialogue", 0.0) or 0.0)
        epochs = int(self.config.get("epochs", 1))
        self.losses = []
        strategy = str(self.config.get("batch_strategy", BALANCED))
        for batch_size in _batch_sizes(self.config.get("batch_size", 64), epochs):
            size = max(batch_size, 1)
            # a balanced epoch may visit a rare action's examples more than once
            order = epoch_order(len(y), y, size, rng, strategy)
            total = 0.0
            for start in range(0, order.size, size):
                batch = order[start : start + size]
                logits, cache = self._forward(x.take_rows(batch), rng, drop)
                loss, grads = self._gradients(logits, cache, y[batch])
                optimizer.step(self.params, grads)
                total += loss * len(batch)
            self.losses.append(total / max(order.size, 1))
            report_epoch(len(self.losses), epochs, self.losses[-1])
        return self

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Train and persist the weights (npz) and the layout they expect (JSON)."""
        texts = inputs.get("texts")
        assert not isinstance(texts, list)
        extra = read_texts(texts) if texts is not None else []
        base_model = inputs.get(BASE_MODEL)
        assert not isinstance(base_model, list)
        base = None
        if base_model is not None:
            if (base_model.path / TEXT_DIR).is_dir():
                shutil.copytree(base_model.path / TEXT_DIR, out.path / TEXT_DIR)
            loaded = TEDPolicy.load(self.config, base_model)
            assert isinstance(loaded, TEDPolicy)
            base = loaded
        self.fit(read_trackers(inputs), read_domain(inputs), out.path / TEXT_DIR, extra, base)
        assert self.encoder is not None
        out.json(
            MODEL_FILE,
            {
                "text_featurizers": self.text.specs if self.text is not None else [],
                "actions": self.actions,
                "encoder": self.encoder.as_dict(),
                "window": self.window,
                "n_layers": self.n_layers,
                "losses": [round(v, 6) for v in self.losses],
                "rule_only_data": self.rule_only.as_dict(),
            },
        )
        out.arrays(WEIGHTS_FILE, self.params)

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        """Rebuild the network from its artifact."""
        policy = cls(config)
        if model is None:
            return policy
        meta = model.json(MODEL_FILE)
        policy.actions = list(meta["actions"])
        policy.encoder = StateEncoder.from_dict(meta["encoder"])
        policy.window = int(meta["window"])
        policy.n_layers = int(meta["n_layers"])
        policy.rule_only = RuleOnlyData.from_dict(meta.get("rule_only_data"))
        policy.params = model.arrays(WEIGHTS_FILE)
        if meta.get("text_featurizers"):
            policy.text = TextFeaturizer.load(meta["text_featurizers"], model.path / TEXT_DIR)
        return policy

    # --- prediction ---------------------------------------------------------------------

    def _scores(self, histories: list[list[State]]) -> tuple[np.ndarray, np.ndarray]:
        """(logits, softmax) over the training domain's actions, one row per history."""
        logits, _ = self._forward(self._inputs(histories))
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        return logits, probs / probs.sum(axis=1, keepdims=True)

    def action_probabilities(self, states: list[State]) -> np.ndarray:
        """Softmax over the training domain's actions for one state history."""
        return self._scores([states])[1][0]

    def predict_action_probabilities(self, events: list[Event], domain: Domain) -> PolicyPrediction:
        """The network's distribution, mapped onto the given domain's actions.

        A message just received with both an intent and a text is scored from each; the
        text's reading is taken, as an end-to-end prediction, when its best action is
        more similar than the intent's best and more probable than the threshold.
        """
        if not self.params or self.encoder is None:
            return self.prediction(domain)
        states, _ = states_for_events(events, domain)
        histories = [self.rule_only.strip(states)]
        latest = next((e for e in reversed(events) if isinstance(e, ActionExecuted)), None)
        if self.text is not None and latest is not None and latest.action_name == ACTION_LISTEN:
            from_text = states_from_text(states, user_turn_positions(events), events)
            if from_text is not None:
                histories.append(self.rule_only.strip(from_text))
        logits, probs = self._scores(histories)
        chosen = 0
        threshold = float(self.config.get("e2e_confidence_threshold", 0.5))
        if len(histories) == 2 and probs[1].max() > threshold and logits[1].max() > logits[0].max():
            chosen = 1
        scores = {action: float(p) for action, p in zip(self.actions, probs[chosen], strict=True)}
        return self.prediction(domain, scores, is_end_to_end_prediction=chosen == 1)


def _user_text(state: State) -> str | None:
    return state.get(USER, {}).get("text")


def _bot_text(state: State) -> str | None:
    return state.get(PREVIOUS_ACTION, {}).get("action_text")



def _linear(x: np.ndarray | nn.SparseBatch, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """`x @ W + b` for a dense or a sparse (first-layer) input."""
    if isinstance(x, nn.SparseBatch):
        return nn.sparse_dense_forward(x, weight, bias)
    return x @ weight + bias


def _weight_gradient(x: np.ndarray | nn.SparseBatch, d_out: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`x.T @ d_out` as a full matrix of the weight's shape; for a sparse input only the
    rows of the units the batch has are computed (the others are zero)."""
    if not isinstance(x, nn.SparseBatch):
        return x.T @ d_out
    grad = np.zeros_like(weight)
    grad[x.columns] = x.tmatmul(d_out).astype(weight.dtype, copy=False)
    return grad
