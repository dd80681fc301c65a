"""The DIET network in numpy: parameters, forward and backward pass, training loop.

The model follows DIET (Bunk et al. 2020, "DIET: Lightweight Language Understanding for
Dialogue Systems") without the transformer:

- intents: the concatenated sparse sentence features go through a sparse-to-dense layer
  (Rasa's `dense_dimension`, with `connection_density` and sparse input dropout), the
  `hidden_layers_sizes` feed-forward stack and a projection into `embedding_dimension`;
  each intent has a learned embedding, and the dot-product similarity between the two is
  trained with a softmax over all intents ("cross_entropy") or a margin loss;
- entities: the sparse sequence features of each token go through their own
  sparse-to-dense layer; each token then sees its neighbours (a window of shifted copies,
  the stand-in for the transformer's context) and the sentence vector, and a dense layer
  produces tag scores for a linear-chain CRF: one CRF head for entity tags (BILOU), and
  one each for roles and groups when the data has them.

Everything is trained jointly with Adam. The sparse layers are updated lazily (only the
feature rows present in a batch), so an epoch costs in proportion to the non-zeros of the
data, not to the vocabulary size; identical token rows of a batch go through the token
layer once. Given `random_seed`, training is deterministic.

A training step has two parts that only meet at the sentence vector: the intent part
(sentence layers, similarity loss) and the token part (token layers, context window, CRF
heads). When the node has two cores to itself (`trainkit.engine.threads.node_lanes`),
the intent part runs ahead and makes the batches, in a forked child process
(`trainkit.ml.forked`, so that the two parts do not share one interpreter lock) or,
where the process cannot fork, on a second thread (a `trainkit.ml.lanes.Lane`), while
the calling thread runs the token part and offers a lane thread halves of its products
(see `Network._fit_on_two_lanes`). Each part draws its dropout from a random stream of
its own and updates only its own weights, so the model is the same bit for bit on one
thread, two threads or two processes; only the time differs.

`batch_strategy: balanced`, Rasa's default, lays each epoch out in rounds that take from
every label in proportion, so rare intents come back more often (`trainkit.ml.batching`).

The minibatches and the operations on their token rows are in `trainkit.nlu.diet_batch`,
the training schedule (options, epochs, learning rate, weight average) in
`trainkit.nlu.diet_training`.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from trainkit.engine.progress import report_epoch
from trainkit.engine.threads import node_lanes
from trainkit.ml import crf
from trainkit.ml import layers as nn
from trainkit.ml.forked import Channel, ForkedChain
from trainkit.ml.lanes import Lane, share
from trainkit.ml.padded import PaddedRows
from trainkit.ml.sparse import CSR
from trainkit.nlu.batch import DenseScaling
from trainkit.nlu.diet_batch import (
    Batch,
    EncodedData,
    Merge,
    context_window,
    context_window_backward,
    gather,
    outside_rows,
    segment_sum,
    sum_by_index,
)
from trainkit.nlu.diet_training import (
    Average,
    Epoch,
    TrainingOptions,
    averages_after,
    learning_rate_at,
    plan_epochs,
)

# Single precision halves the memory traffic of the large sparse layers and doubles BLAS
# throughput; the CRF recursions run in it too (their messages are renormalised each step).
DTYPE = np.float32

# how many steps the intent part may run ahead of the token part on two lanes: enough for
# the lane to have its own work while the token part runs its sequential stretches, few
# enough that it is often free to take halves of the token part's products
LEAD = 1
# run the intent part in a forked child where the process can fork (`_fit_on_two_lanes`)
FORK_INTENT_PART = True
# the forked intent part's priority below this process's threads: when the token part
# offers the lane half of a product, the lane runs it at once instead of waiting for the
# child's time slice to end (and the child runs in the gaps)
INTENT_PART_NICE = 10
# what updating an element of a dense parameter costs against one of a row-sparse
# parameter's gathered rows (`Network._update`'s split: 2.3 against 5.6 ns measured for DIET's
# context layer and token layer at 64 messages per batch)
DENSE_UPDATE_SHARE = 0.45


@dataclass
class TagHead:
    """One CRF head: its name (entity / role / group) and its tag vocabulary."""

    name: str
    tags: list[str]


@dataclass
class NetworkSpec:
    """Everything that fixes the shapes of the network, persisted with the weights."""

    sentence_dim: int
    sequence_dim: int
    labels: list[str]
    heads: list[TagHead] = field(default_factory=list)
    dense_dimension: int = 256
    hidden_sizes: list[int] = field(default_factory=list)
    label_hidden_sizes: list[int] = field(default_factory=list)
    embedding_dimension: int = 20
    entity_hidden_size: int = 128
    context_window: int = 2
    similarity: str = "inner"  # or "cosine"
    intent_classification: bool = True
    token_pooling: bool = False
    # standardisation of dense feature blocks, {"sentence": ..., "sequence": ...}
    dense_scaling: dict[str, DenseScaling] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the model file."""
        return {
            "sentence_dim": self.sentence_dim,
            "sequence_dim": self.sequence_dim,
            "labels": list(self.labels),
            "heads": [{"name": h.name, "tags": list(h.tags)} for h in self.heads],
            "dense_dimension": self.dense_dimension,
            "hidden_sizes": list(self.hidden_sizes),
            "label_hidden_sizes": list(self.label_hidden_sizes),
            "embedding_dimension": self.embedding_dimension,
            "entity_hidden_size": self.entity_hidden_size,
            "context_window": self.context_window,
            "similarity": self.similarity,
            "intent_classification": self.intent_classification,
            "token_pooling": self.token_pooling,
            "dense_scaling": self.dense_scaling,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """Inverse of `as_dict`."""
        values = dict(data)
        values["heads"] = [TagHead(h["name"], list(h["tags"])) for h in data["heads"]]
        return cls(**values)

    @property
    def offsets(self) -> list[int]:
        """Token offsets of the context window, e.g. [-2, -1, 0, 1, 2]."""
        return list(range(-self.context_window, self.context_window + 1))


class Network:
    """The DIET network: parameters, forward/backward pass, training loop and prediction."""

    def __init__(self, spec: NetworkSpec, params: dict[str, np.ndarray] | None = None) -> None:
        self.spec = spec
        self.params: dict[str, np.ndarray] = params or {}
        self.masks: dict[str, np.ndarray] = {}

    # --------------------------------------------------------------- parameters
    @property
    def uses_entities(self) -> bool:
        """Whether any CRF head is trained."""
        return bool(self.spec.heads)

    @property
    def uses_tokens(self) -> bool:
        """Whether the token layers run (for entities or for pooled intent context)."""
        return bool(self.spec.heads) or self.spec.token_pooling

    def initialise(self, rng: np.random.Generator, connection_density: float) -> None:
        """Glorot-initialised weights; sparse layers get Rasa's fixed connection mask."""
        s = self.spec
        p: dict[str, np.ndarray] = {}
        if s.intent_classification:
            self._sparse_layer(p, "sent", rng, s.sentence_dim, s.dense_dimension, connection_density)
            width = s.dense_dimension
            for i, size in enumerate(s.hidden_sizes):
                p[f"hid{i}.W"] = nn.glorot_uniform(rng, width, size)
                p[f"hid{i}.b"] = np.zeros(size)
                width = size
            if s.token_pooling:
                width += s.entity_hidden_size
            p["emb.W"] = nn.glorot_uniform(rng, width, s.embedding_dimension)
            p["emb.b"] = np.zeros(s.embedding_dimension)
            label_width = s.label_hidden_sizes[0] if s.label_hidden_sizes else s.embedding_dimension
            p["lab.table"] = nn.glorot_uniform(rng, len(s.labels), label_width)
            for i, size in enumerate(s.label_hidden_sizes[1:] + [s.embedding_dimension] if s.label_hidden_sizes else []):
                p[f"labhid{i}.W"] = nn.glorot_uniform(rng, label_width, size)
                p[f"labhid{i}.b"] = np.zeros(size)
                label_width = size
        if self.uses_tokens:
            self._sparse_layer(p, "tok", rng, s.sequence_dim, s.entity_hidden_size, connection_density)
            ctx_in = len(s.offsets) * s.entity_hidden_size
            p["ctx.W"] = nn.glorot_uniform(rng, ctx_in, s.entity_hidden_size)
            if s.intent_classification:
                p["ctx.S"] = nn.glorot_uniform(rng, s.dense_dimension, s.entity_hidden_size)
            p["ctx.b"] = np.zeros(s.entity_hidden_size)
            for head in s.heads:
                k = len(head.tags)
                p[f"{head.name}.W"] = nn.glorot_uniform(rng, s.entity_hidden_size, k)
                p[f"{head.name}.b"] = np.zeros(k)
                p[f"{head.name}.trans"] = np.zeros((k, k))
                p[f"{head.name}.start"] = np.zeros(k)
                p[f"{head.name}.end"] = np.zeros(k)
        self.params = {name: value.astype(DTYPE) for name, value in p.items()}

    def _sparse_layer(self, p: dict[str, np.ndarray], name: str, rng: np.random.Generator, rows: int, units: int,
                      connection_density: float) -> None:
        """A sparse input layer's weights and bias, pruned by Rasa's fixed connection mask."""
        p[f"{name}.W"] = nn.glorot_uniform(rng, rows, units)
        p[f"{name}.b"] = np.zeros(units)
        mask = nn.connection_mask(rng, rows, units, connection_density)
        if mask is not None:
            self.masks[f"{name}.W"] = mask
            p[f"{name}.W"] *= mask

    def crf_params(self, head: str) -> crf.CRFParams:
        """The CRF transition parameters of one head."""
        p = self.params
        return crf.CRFParams(
            p[f"{head}.trans"].astype(np.float64),
            p[f"{head}.start"].astype(np.float64),
            p[f"{head}.end"].astype(np.float64),
        )

    # ------------------------------------------------------------------ batches
    def make_batch(
        self,
        data: EncodedData,
        rows: np.ndarray,
        rng: np.random.Generator | None = None,
        input_drop: float = 0.0,
        for_training: bool = False,
    ) -> Batch:
        """Gather a minibatch and lay out its tokens, message after message.

        With a generator, `input_drop` of the stored sparse inputs are dropped first.
        `for_training` also lays out what the sparse layers' gradients need, which the
        training loop does while the previous batch trains.
        """
        sentence, sequence, lengths, token_rows = gather(data, rows, self.uses_tokens)
        inverse = None
        if sequence is not None and data.token_uid is not None:
            distinct, inverse = nn.dense_unique(data.token_uid[token_rows], data.sequence.shape[0])
            sequence = data.sequence.take_rows(distinct)
        if rng is not None and input_drop > 0:
            sentence = nn.sparse_dropout(sentence, input_drop, rng, data.protected_sentence)
            if sequence is not None:
                sequence = nn.sparse_dropout(sequence, input_drop, rng, data.protected_sequence)
        steps = max(int(lengths.max()) if lengths.size else 0, 1)
        token_b = np.repeat(np.arange(rows.size), lengths)
        token_t = np.arange(token_b.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        tags = {name: ids[token_rows] for name, ids in data.tags.items()} if self.uses_entities else {}
        sentence_batch = nn.SparseBatch.from_csr(sentence, DTYPE, cells_per_entry=nn.SPARSE_CELLS_PER_ENTRY)
        sequence_batch = None if sequence is None else \
            nn.SparseBatch.from_csr(sequence, DTYPE, cells_per_entry=nn.SPARSE_CELLS_PER_ENTRY)
        if for_training:
            # the sentence layer only trains with intent classification
            for sparse in (sentence_batch if self.spec.intent_classification else None, sequence_batch):
                if sparse is not None:
                    sparse.prepare_gradient()
        return Batch(
            sentence_batch,
            sequence_batch,
            lengths,
            token_b,
            token_t,
            steps,
            None if data.labels is None else data.labels[rows],
            tags,
            inverse,
        )

    def prepare_token_part(self, batch: Batch, rate: float, rng: np.random.Generator) -> None:
        """Make what a training step's token part needs that depends only on its batch:
        the dropout masks of the token and the context layer, drawn from the token
        part's stream in the order its forward pass would draw them (so the numbers are
        the same whether they are drawn here or there), the rows the context window
        leaves out, the merge of identical token rows' gradients and the CRF's packing.
        On two lanes the lane does this while the step before runs its token part."""
        if not self.uses_tokens or batch.sequence is None:
            return
        shape = (batch.token_b.size, self.spec.entity_hidden_size)
        tok_mask = nn.dropout_mask(shape, rate, rng, DTYPE)
        batch.token_masks = (tok_mask, nn.dropout_mask(shape, rate, rng, DTYPE))
        for offset in self.spec.offsets:
            if offset:
                outside_rows(batch, offset)
        if batch.token_inverse is not None:
            batch.merge_plan()
        if self.uses_entities:
            batch.crf_packing()

    # ------------------------------------------------------------ forward pass
    def label_embeddings(self) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Embeddings of all labels (one-hot label features through the label layers)."""
        out = self.params["lab.table"]
        caches = []
        i = 0
        while f"labhid{i}.W" in self.params:
            x = nn.relu_forward(out)
            caches.append((out, x))
            out = nn.dense_forward(x, self.params[f"labhid{i}.W"], self.params[f"labhid{i}.b"])
            i += 1
        return out, caches

    def forward(
        self, batch: Batch, rng: np.random.Generator | None, options: TrainingOptions | None,
        token_rng: np.random.Generator | None = None,
    ) -> dict[str, Any]:
        """All intermediate values of one pass; dropout only when `rng` is given.

        Order: sentence layer, then the token layers (which see the sentence vector),
        then the sentence embedding (which sees the max-pooled token context). The token
        layers draw their dropout from `token_rng` (default `rng`), so the two parts of
        the network have random streams of their own and can run side by side.
        """
        rate = options.hidden_drop_rate if options is not None else 0.0
        c: dict[str, Any] = {}
        if self.spec.intent_classification:
            self._sentence_forward(batch, rate, rng, c)
        if self.uses_tokens and batch.sequence is not None:
            self._token_forward(batch, rate, rng if token_rng is None else token_rng, c)
        if self.spec.intent_classification:
            self._intent_forward(batch, rate, rng, c)
        return c

    def _sentence_forward(self, batch: Batch, rate: float, rng: np.random.Generator | None, c: dict[str, Any]) -> None:
        p = self.params
        h = nn.relu_forward(nn.sparse_dense_forward(batch.sentence, p["sent.W"], p["sent.b"]))
        c["sent.h"] = h
        h, c["sent.mask"] = nn.dropout_forward(h, rate, rng)
        c["sent.out"] = h

    def _token_forward(self, batch: Batch, rate: float, rng: np.random.Generator | None, c: dict[str, Any],
                       lane: Lane | None = None) -> None:
        """The token layers; they read the sentence vector from `c` (`sent.out`)."""
        s, p = self.spec, self.params
        assert batch.sequence is not None
        g = nn.relu_forward(nn.sparse_dense_forward(batch.sequence, p["tok.W"], p["tok.b"], lane))
        c["tok.h"] = g
        if batch.token_inverse is not None:
            g = g[batch.token_inverse]
        # a prepared batch (`prepare_token_part`) brings its masks: none are drawn here
        tok_mask, ctx_mask = batch.token_masks or (None, None)
        g, c["tok.mask"] = nn.dropout_forward(g, rate, rng, tok_mask)
        ctx_in = c["ctx.in"] = context_window(g, batch, s.offsets)
        # the window's product, the largest of a step, in two halves of rows (the second
        # offered to the lane when there is one)
        pre = _product_by_halves(ctx_in, p["ctx.W"], lane)
        pre += p["ctx.b"]
        if s.intent_classification:
            # the sentence vector's share is projected once per message, not per token
            pre = pre + (c["sent.out"] @ p["ctx.S"])[batch.token_b]
        z = nn.relu_forward(pre)
        c["ctx.h"] = z
        z, c["ctx.mask"] = nn.dropout_forward(z, rate, rng, ctx_mask)
        c["ctx.out"] = z
        for head in s.heads:
            # tag scores per token row (message after message), the CRF's layout
            c[f"{head.name}.em"] = nn.dense_forward(z, p[f"{head.name}.W"], p[f"{head.name}.b"])
        if s.token_pooling:
            # outputs are >= 0, so the zero padding of the grid never wins the max
            grid = np.zeros((batch.lengths.size, batch.steps, z.shape[1]), dtype=z.dtype)
            grid[batch.token_b, batch.token_t] = z
            c["pool.arg"] = grid.argmax(axis=1)
            c["pool.out"] = grid.max(axis=1)

    def _intent_forward(self, batch: Batch, rate: float, rng: np.random.Generator | None, c: dict[str, Any]) -> None:
        s, p = self.spec, self.params
        h = c["sent.out"]
        for i in range(len(s.hidden_sizes)):
            pre_in = h
            h = nn.relu_forward(nn.dense_forward(h, p[f"hid{i}.W"], p[f"hid{i}.b"]))
            c[f"hid{i}.in"], c[f"hid{i}.h"] = pre_in, h
            h, c[f"hid{i}.mask"] = nn.dropout_forward(h, rate, rng)
        if s.token_pooling:
            pooled = c.get("pool.out")
            if pooled is None:
                pooled = np.zeros((batch.lengths.size, s.entity_hidden_size), dtype=h.dtype)
            h = np.concatenate([h, pooled], axis=1)
        c["emb.in"] = h
        emb = nn.dense_forward(h, p["emb.W"], p["emb.b"])
        labels, c["lab.caches"] = self.label_embeddings()
        if s.similarity == "cosine":
            emb_n, c["emb.norms"] = nn.l2_normalize_forward(emb)
            lab_n, c["lab.norms"] = nn.l2_normalize_forward(labels)
            c["emb.normed"], c["lab.normed"] = emb_n, lab_n
            emb, labels = emb_n, lab_n
        c["emb"], c["labels"] = emb, labels

    # --------------------------------------------------------- loss + backward
    def loss_and_gradients(
        self, batch: Batch, rng: np.random.Generator | None, options: TrainingOptions,
        token_rng: np.random.Generator | None = None,
    ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Total loss, gradients, and the row indices of row-sparse gradients."""
        c = self.forward(batch, rng, options, token_rng)
        grads: dict[str, np.ndarray] = {}
        rows: dict[str, np.ndarray] = {}
        total, d_sent, d_pool = self._intent_backward(batch, rng, options, c, grads)
        if self.uses_tokens and batch.sequence is not None:
            loss, from_tokens = self._token_backward(batch, c, d_pool, grads, rows)
            total += loss
            if from_tokens is not None:
                d_sent = from_tokens if d_sent is None else d_sent + from_tokens
        if d_sent is not None:
            self._sentence_backward(batch, c, d_sent, grads, rows)
        return total, grads, rows

    def _intent_backward(
        self, batch: Batch, rng: np.random.Generator | None, options: TrainingOptions, c: dict[str, Any],
        grads: dict[str, np.ndarray],
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """The similarity loss; returns it with the gradients reaching the sentence layer's
        output and the pooled token context (None where there are none)."""
        s, p = self.spec, self.params
        if not s.intent_classification or batch.labels is None:
            return 0.0, None, None
        candidates = None
        if options.loss.loss_type != "cross_entropy":
            candidates = nn.sample_negatives(
                rng if rng is not None else np.random.default_rng(0),
                batch.labels,
                len(s.labels),
                options.number_of_negative_examples,
            )
        res_sim = nn.similarity_loss(c["emb"], c["labels"], batch.labels, candidates, options.loss)
        # parts of the loss (the sigmoid term) promote to double precision; the layers
        # below it stay in DTYPE
        d_emb, d_lab = res_sim.grad_inputs.astype(DTYPE), res_sim.grad_labels.astype(DTYPE)
        if s.similarity == "cosine":
            d_emb = nn.l2_normalize_backward(c["emb.normed"], c["emb.norms"], d_emb)
            d_lab = nn.l2_normalize_backward(c["lab.normed"], c["lab.norms"], d_lab)
        d_h, grads["emb.W"], grads["emb.b"] = nn.dense_backward(c["emb.in"], p["emb.W"], d_emb)
        d_pool = None
        if s.token_pooling:
            width = d_h.shape[1] - s.entity_hidden_size
            d_pool = d_h[:, width:]
            d_h = d_h[:, :width]
        for i in reversed(range(len(s.hidden_sizes))):
            d_h = nn.relu_backward(c[f"hid{i}.h"], nn.dropout_backward(c[f"hid{i}.mask"], d_h))
            d_h, grads[f"hid{i}.W"], grads[f"hid{i}.b"] = nn.dense_backward(c[f"hid{i}.in"], p[f"hid{i}.W"], d_h)
        for i in reversed(range(len(c["lab.caches"]))):
            _, x = c["lab.caches"][i]
            d_x, grads[f"labhid{i}.W"], grads[f"labhid{i}.b"] = nn.dense_backward(x, p[f"labhid{i}.W"], d_lab)
            d_lab = nn.relu_backward(x, d_x)
        grads["lab.table"] = d_lab
        return res_sim.loss, d_h, d_pool

    def _token_backward(
        self, batch: Batch, c: dict[str, Any], d_pool: np.ndarray | None,
        grads: dict[str, np.ndarray], rows: dict[str, np.ndarray], lane: Lane | None = None,
    ) -> tuple[float, np.ndarray | None]:
        """The CRF losses and the token layers' gradients; returns the loss with the
        intent loss's share of the gradient that reaches the sentence layer through the
        token context (None without pooling)."""
        s, p = self.spec, self.params
        assert batch.sequence is not None
        n = batch.lengths.size
        total = 0.0
        d_z = np.zeros_like(c["ctx.out"])
        if d_pool is not None:
            # route each pooled unit's gradient to the token that won the max
            d_grid = np.zeros((n, batch.steps, s.entity_hidden_size), dtype=d_z.dtype)
            b_idx = np.arange(n)[:, None]
            f_idx = np.arange(s.entity_hidden_size)[None, :]
            d_grid[b_idx, c["pool.arg"], f_idx] = d_pool
            d_z += d_grid[batch.token_b, batch.token_t]
        # the intent loss's share of the token context (pooling), kept apart so only it
        # trains the sentence layer through the context's sentence input
        d_z_intent = d_z.copy() if d_pool is not None else None
        for head in s.heads:
            # the recursions run in the network's precision (see `crf.token_nll_and_gradients`)
            res = crf.token_nll_and_gradients(
                c[f"{head.name}.em"], batch.tags[head.name], batch.lengths, self.crf_params(head.name),
                np.full(n, 1.0 / n), dtype=DTYPE, lane=lane, packing=batch.crf_packing(),
            )
            total += res.loss
            d_em = res.emissions.astype(d_z.dtype)
            dz_h, grads[f"{head.name}.W"], grads[f"{head.name}.b"] = nn.dense_backward(
                c["ctx.out"], p[f"{head.name}.W"], d_em, lane)
            d_z += dz_h
            grads[f"{head.name}.trans"] = res.transitions
            grads[f"{head.name}.start"] = res.start
            grads[f"{head.name}.end"] = res.end
        d_z = nn.relu_backward(c["ctx.h"], nn.dropout_backward(c["ctx.mask"], d_z))
        d_ctx_in, grads["ctx.W"], grads["ctx.b"] = nn.dense_backward(c["ctx.in"], p["ctx.W"], d_z, lane)
        d_g = context_window_backward(d_ctx_in, batch, s.offsets, s.entity_hidden_size)
        from_tokens = None
        if s.intent_classification:
            d_seg = segment_sum(d_z, batch.lengths)
            grads["ctx.S"] = c["sent.out"].T @ d_seg
            # the entity heads read the sentence vector but do not train the sentence
            # layer, which belongs to the intent loss (on snips2017 with one seed: intents
            # 0.9785 with their gradient, 0.9857 without, at the same entity F1; seeds
            # alone move that score by up to 0.007)
            if d_z_intent is not None:
                d_pre = nn.relu_backward(c["ctx.h"], nn.dropout_backward(c["ctx.mask"], d_z_intent))
                from_tokens = segment_sum(d_pre, batch.lengths) @ p["ctx.S"].T
        d_g = nn.dropout_backward(c["tok.mask"], d_g)
        if batch.token_inverse is not None:
            d_g = sum_by_index(d_g, batch.merge_plan())
        d_g = nn.relu_backward(c["tok.h"], d_g)
        grads["tok.W"], grads["tok.b"] = nn.sparse_dense_backward(batch.sequence, d_g, lane)
        rows["tok.W"] = batch.sequence.columns
        return total, from_tokens

    def _sentence_backward(
        self, batch: Batch, c: dict[str, Any], d_sent: np.ndarray,
        grads: dict[str, np.ndarray], rows: dict[str, np.ndarray],
    ) -> None:
        d_sent = nn.relu_backward(c["sent.h"], nn.dropout_backward(c["sent.mask"], d_sent))
        grads["sent.W"], grads["sent.b"] = nn.sparse_dense_backward(batch.sentence, d_sent)
        rows["sent.W"] = batch.sentence.columns

    # ------------------------------------------------------------------ training
    def splits_into_parts(self) -> bool:
        """Whether a training step runs as two independent parts: the intent part
        (sentence layers, similarity loss) and the token part (token layers, CRF heads).
        They only meet at the sentence vector the token layers read, which is computed
        first; with `use_token_context` the intent loss also trains the token layers, so
        the step stays whole."""
        return self.spec.intent_classification and bool(self.spec.heads) and not self.spec.token_pooling

    def _update(self, optimizer: nn.Adam, grads: dict[str, np.ndarray], rows: dict[str, np.ndarray],
                regularization: float, lane: Lane | None = None) -> None:
        """L2 on the weight matrices and the label table, then Adam on these parameters.

        With a lane, the last rows of each row-sparse parameter (the costly part) are
        offered to it while this thread updates the rest and the dense parameters, as
        many as make the two shares about equal: rows update independently, so the split
        never changes the numbers.
        """
        grads = {k: g.astype(DTYPE, copy=False) for k, g in grads.items()}
        decay = {name: regularization for name in grads if name.endswith(".W") or name == "lab.table"} \
            if regularization > 0 else None
        if lane is None:
            optimizer.update(self.params, grads, rows, self.masks, decay)
            return
        sparse = [k for k in grads if k in rows]
        # both threads write into the same moment arrays, which must exist beforehand
        optimizer.ensure_moments(self.params, sparse)
        # a dense parameter's element costs about DENSE_UPDATE_SHARE of a gathered row's
        dense = sum(g.size for k, g in grads.items() if k not in rows) * DENSE_UPDATE_SHARE
        row_cells = sum(grads[k].size for k in sparse)
        mine = min(max(0.5 - 0.5 * dense / max(row_cells, 1), 0.0), 0.5)
        halves = {k: int(rows[k].size * mine) for k in sparse}
        first = {k: g for k, g in grads.items() if k not in rows} | {k: grads[k][: halves[k]] for k in sparse}
        first_rows = {k: rows[k][: halves[k]] for k in sparse}
        second = {k: grads[k][halves[k]:] for k in sparse}
        second_rows = {k: rows[k][halves[k]:] for k in sparse}
        share(lambda: optimizer.update(self.params, first, first_rows, self.masks, decay),
              lambda: optimizer.update(self.params, second, second_rows, self.masks, decay), lane)

    def fit(self, data: EncodedData, options: TrainingOptions,
            start: dict[str, np.ndarray] | None = None, lanes: int | None = None) -> list[float]:
        """Train with Adam on linearly growing minibatches; returns the loss per epoch.

        `start` (finetuning) replaces the initial weights; `initialise` still runs, with
        the same seed, so the connection masks are those the start weights were trained
        under and the random draws of training follow the same sequence. `lanes` is how
        many threads a step may use (default: the node's share of the cores); the
        weights do not depend on it.
        """
        rng = np.random.default_rng(options.seed)
        self.initialise(rng, options.connection_density)
        if start is not None:
            self.params = {name: np.array(start[name], dtype=DTYPE) for name in self.params}
        # the batch order, the batches' input dropout, the intent part and the token part
        # each draw from a stream of their own
        intent_rng, token_rng, batch_rng = rng.spawn(3)
        input_drop = options.drop_rate if options.sparse_input_dropout else 0.0
        epochs = plan_epochs(data, options, rng)
        make_batch = partial(self.make_batch, data, rng=batch_rng, input_drop=input_drop, for_training=True)

        def make(rows: np.ndarray) -> Batch:
            batch = make_batch(rows)
            self.prepare_token_part(batch, options.hidden_drop_rate, token_rng)
            return batch

        lanes = node_lanes() if lanes is None else lanes
        average = Average()
        if lanes > 1 and self.splits_into_parts():
            history = self._fit_on_two_lanes(epochs, make, options, intent_rng, average)
        else:
            history = self._fit_on_one_lane(epochs, make, options, intent_rng, average)
        self.params = average.result(self.params)
        return history

    def _fit_on_one_lane(self, epochs: Iterator[Epoch], make: Callable[[np.ndarray], Batch],
                         options: TrainingOptions, intent_rng: np.random.Generator, average: Average) -> list[float]:
        """Whole steps, one after the other, on this thread."""
        optimizer = nn.Adam(options.learning_rate)
        history: list[float] = []
        for epoch in epochs:
            optimizer.learning_rate = learning_rate_at(options, epoch.index)
            epoch_loss = 0.0
            for idx in epoch.chunks:
                batch = make(idx)
                optimizer.advance()
                loss, grads, rows = self.loss_and_gradients(batch, intent_rng, options)
                self._update(optimizer, grads, rows, options.regularization)
                epoch_loss += loss * idx.size
            history.append(epoch_loss / max(epoch.rows, 1))
            report_epoch(epoch.index + 1, options.epochs, history[-1])
            if averages_after(options, epoch.index):
                average.add(self.params, self.params)
        return history

    def _fit_on_two_lanes(self, epochs: Iterator[Epoch], make: Callable[[np.ndarray], Batch],
                          options: TrainingOptions, intent_rng: np.random.Generator, average: Average) -> list[float]:
        """The intent part ahead of the token part, which runs here.

        The intent part makes the batches, runs each step's intent part and hands this
        thread the batch with its sentence vector. It runs in a forked child process
        (`trainkit.ml.forked`) where this process can fork, so that neither part waits
        for the other's interpreter lock; otherwise on a `Lane`, up to `LEAD` steps
        ahead, between whose pieces that thread also takes halves of the token part's
        products. Each part has its own optimiser (both count the same steps, so their
        updates are those of one) and averages its own weights at its own epoch ends,
        and the epoch's loss adds the parts' step losses in the order of one lane.
        """
        intent_names = [name for name in self.params if name.split(".")[0] not in self._token_part_prefixes()]
        intent_average = Average()

        def intent_part(channel: Channel) -> None:
            for _ in self._intent_chain(epochs, make, options, intent_rng, channel, intent_average):
                pass
            channel.put(_IntentPart({name: self.params[name] for name in intent_names}, intent_average))

        forked = ForkedChain.start(intent_part, slots=LEAD + 1, nice=INTENT_PART_NICE, types=_HANDED_OVER) \
            if FORK_INTENT_PART else None
        with Lane("diet") as lane:
            if forked is None:
                outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
                lane.start(self._intent_chain(epochs, make, options, intent_rng, outbox, intent_average))
                history = self._token_chain(outbox.get, lane.release, options, average, lane)
                lane.join()
                average.merge(intent_average)
                return history
            with forked:
                history = self._token_chain(forked.get, lambda _: forked.release(), options, average, lane)
                part = forked.get()
                if isinstance(part, BaseException):
                    raise part
                # the arrays live in the child's shared ring: the network keeps copies
                self.params.update({name: np.array(value) for name, value in part.params.items()})
                part.average.totals = {name: np.array(total) for name, total in part.average.totals.items()}
                average.merge(part.average)
                forked.release()
            return history

    def _token_chain(self, receive: Callable[[], Any], done_with: Callable[[int], None], options: TrainingOptions,
                     average: Average, lane: Lane | None) -> list[float]:
        """This thread's share of `_fit_on_two_lanes`: the token part of every step, on the
        batches and sentence vectors `receive` hands over (`done_with(steps)` once a step
        is done), and the loss and the weights to average at each epoch's end."""
        optimizer = nn.Adam(options.learning_rate)
        token_names = [name for name in self.params if name.split(".")[0] in self._token_part_prefixes()]
        history: list[float] = []
        done = 0
        for index in range(options.epochs):
            optimizer.learning_rate = learning_rate_at(options, index)
            token_losses: list[float] = []
            while not isinstance(item := receive(), _EpochDone):
                if isinstance(item, BaseException):
                    raise item
                batch, sentence = item
                optimizer.advance()
                token_losses.append(self._token_step(batch, sentence, options, optimizer, lane))
                done += 1
                done_with(done)
            epoch_loss = 0.0
            for intent_loss, token_loss, size in zip(item.losses, token_losses, item.sizes, strict=True):
                epoch_loss += (intent_loss + token_loss) * size
            history.append(epoch_loss / max(item.rows, 1))
            report_epoch(index + 1, options.epochs, history[-1])
            if averages_after(options, index):
                average.add(self.params, token_names)
        return history

    def _token_part_prefixes(self) -> set[str]:
        """Parameter name prefixes of the token part (the rest is the intent part)."""
        return {"tok", "ctx"} | {head.name for head in self.spec.heads}

    def _intent_chain(self, epochs: Iterator[Epoch], make: Callable[[np.ndarray], Batch], options: TrainingOptions,
                      rng: np.random.Generator, outbox: Any, average: Average) -> Iterator[int | None]:
        """The lane's share of `_fit_on_two_lanes`, one piece per `next`: make a batch,
        wait until the token part is at most `LEAD` steps behind, the sentence layer (its
        vector goes to the token part with the batch), the intent loss and its gradients,
        the update; at each epoch's end, the step losses and the weights to average."""
        try:
            optimizer = nn.Adam(options.learning_rate)
            intent_names = [name for name in self.params if name.split(".")[0] not in self._token_part_prefixes()]
            step = 0
            rate = options.hidden_drop_rate
            for epoch in epochs:
                optimizer.learning_rate = learning_rate_at(options, epoch.index)
                losses: list[float] = []
                for idx in epoch.chunks:
                    batch = make(idx)
                    yield step - LEAD
                    c: dict[str, Any] = {}
                    self._sentence_forward(batch, rate, rng, c)
                    outbox.put((batch, c["sent.out"]))
                    yield None
                    optimizer.advance()
                    self._intent_forward(batch, rate, rng, c)
                    grads: dict[str, np.ndarray] = {}
                    rows: dict[str, np.ndarray] = {}
                    loss, d_sent, _ = self._intent_backward(batch, rng, options, c, grads)
                    if d_sent is not None:
                        self._sentence_backward(batch, c, d_sent, grads, rows)
                    yield None
                    self._update(optimizer, grads, rows, options.regularization)
                    losses.append(loss)
                    step += 1
                    yield None
                if averages_after(options, epoch.index):
                    average.add(self.params, intent_names)
                outbox.put(_EpochDone(losses, [idx.size for idx in epoch.chunks], epoch.rows))
        except Exception as error:
            outbox.put(error)  # the token part waits on the outbox: it raises this
            raise

    def _token_step(self, batch: Batch, sentence: np.ndarray, options: TrainingOptions, optimizer: nn.Adam,
                    lane: Lane | None) -> float:
        """The token part of a step (forward, CRF losses, backward, update) given the
        batch's sentence vector; returns its loss. The batch brings its dropout masks
        (drawn on the lane), so this thread never touches a random stream."""
        c: dict[str, Any] = {"sent.out": sentence}
        self._token_forward(batch, options.hidden_drop_rate, None, c, lane)
        grads: dict[str, np.ndarray] = {}
        rows: dict[str, np.ndarray] = {}
        loss, _ = self._token_backward(batch, c, None, grads, rows, lane)
        self._update(optimizer, grads, rows, options.regularization, lane)
        return loss

    # ---------------------------------------------------------------- prediction
    def predict(
        self, data: EncodedData, chunk: int = 512
    ) -> tuple[np.ndarray | None, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Label confidences (n x L) and per head (tag ids, tag confidences) per token row."""
        n = len(data)
        probs = np.zeros((n, len(self.spec.labels))) if self.spec.intent_classification else None
        total_tokens = int(data.token_offsets[-1])
        heads = {
            h.name: (np.zeros(total_tokens, np.int64), np.zeros(total_tokens)) for h in self.spec.heads
        }
        for begin in range(0, n, chunk):
            rows = np.arange(begin, min(n, begin + chunk))
            batch = self.make_batch(data, rows)
            c = self.forward(batch, None, None)
            if probs is not None:
                probs[rows] = nn.softmax(c["emb"] @ c["labels"].T)
            if self.uses_entities and batch.sequence is not None:
                token_rows = np.repeat(data.token_offsets[rows], batch.lengths) + batch.token_t
                for head in self.spec.heads:
                    params = self.crf_params(head.name)
                    emissions = c[f"{head.name}.em"].astype(np.float64)
                    path, _ = crf.token_viterbi(emissions, batch.lengths, params)
                    heads[head.name][0][token_rows] = path
                    heads[head.name][1][token_rows] = crf.token_confidences(emissions, batch.lengths, params, path)
        return probs, heads


def _product_by_halves(x: np.ndarray, weight: np.ndarray, lane: Lane | None) -> np.ndarray:
    """`x @ weight` as two fixed halves of rows, so the second can run on the lane: the
    split never depends on the lane, so neither do the numbers."""
    out = np.empty((x.shape[0], weight.shape[1]), dtype=np.result_type(x, weight))
    half = x.shape[0] // 2
    share(lambda: np.matmul(x[:half], weight, out=out[:half]),
          lambda: np.matmul(x[half:], weight, out=out[half:]), lane)
    return out


@dataclass
class _IntentPart:
    """What a forked intent part hands back at the end: its weights and their average."""

    params: dict[str, np.ndarray]
    average: Average


@dataclass
class _EpochDone:
    """The intent part's end of an epoch: its loss and size per step."""

    losses: list[float]
    sizes: list[int]
    rows: int


# what the forked intent part hands over besides arrays and plain values
_HANDED_OVER = (Batch, nn.SparseBatch, CSR, PaddedRows, crf.Packing, Merge, _EpochDone, _IntentPart, Average)
