"""DIETClassifier learns intents and entities (with roles), deterministically, and
predicts the same after a save/load round trip."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import component_config, get_component
from trainkit.ml import layers as nn
from trainkit.ml.sparse import CSR
from trainkit.nlu import diet as D
from trainkit.nlu import diet_network as N
from trainkit.nlu import entity_tags as T
from trainkit.nlu.batch import MessageBatch, featurizable_examples
from trainkit.nlu.diet_batch import EncodedData, duplicate_row_ids
from trainkit.nlu.diet_training import TrainingOptions, learning_rate_at

FEATURIZERS = [
    {"name": "WhitespaceTokenizer"},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 3},
]


def example(text, intent, *spans):
    entities = []
    for value, entity, role in spans:
        start = text.index(value)
        entities.append(Entity(start, start + len(value), value, entity, role))
    return Message.build(text, intent, entities)


def travel_data() -> TrainingData:
    cities = ["berlin", "paris", "rome", "madrid", "london", "vienna"]
    examples = []
    for i, a in enumerate(cities):
        b = cities[(i + 2) % len(cities)]
        examples.append(example(f"fly from {a} to {b}", "book_flight", (a, "city", "departure"), (b, "city", "destination")))
        examples.append(example(f"i need a flight to {b} from {a}", "book_flight", (b, "city", "destination"), (a, "city", "departure")))
        examples.append(example(f"what is the weather in {a}", "weather", (a, "city", None)))
        examples.append(example(f"will it rain in {b} tomorrow", "weather", (b, "city", None)))
    for text in ["hello there", "hi", "good morning", "hey bot", "hello", "hi friend"]:
        examples.append(example(text, "greet"))
    return TrainingData(examples)


def train_pipeline(tmp_path: Path, data: TrainingData, item: dict, featurizers=FEATURIZERS):
    """Run tokenizer and featurizers like the graph does, then train and load `item`."""
    td_dir = tmp_path / "td"
    ArtifactWriter(td_dir).json("training_data.json", data.as_dict())
    inputs = {"training_data": Artifact(td_dir)}
    steps, features = [], []
    for i, spec in enumerate([*featurizers, item]):
        cls = get_component(spec["name"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = component_config(cls, spec)
        component = cls(config)
        if "tokenizer" in cls.roles:
            component.process_training_data(inputs, ArtifactWriter(tmp_path / f"tok{i}"))
            inputs["tokens"] = Artifact(tmp_path / f"tok{i}")
            steps.append(component)
        elif "featurizer" in cls.roles:
            component.train(inputs, ArtifactWriter(tmp_path / f"model{i}"))
            loaded = cls.load(config, Artifact(tmp_path / f"model{i}"))
            loaded.process_training_data({**inputs, "model": Artifact(tmp_path / f"model{i}")}, ArtifactWriter(tmp_path / f"feat{i}"))
            features.append(Artifact(tmp_path / f"feat{i}"))
            steps.append(loaded)
        else:
            component.train({**inputs, "features": features}, ArtifactWriter(tmp_path / "model"))
            return steps, cls.load(config, Artifact(tmp_path / "model")), config


def parse(steps, model, texts):
    batch = MessageBatch(texts=list(texts))
    for step in [*steps, model]:
        step.process(batch)
    return batch


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diet")
    item = {"name": "DIETClassifier", "epochs": 40, "random_seed": 7}
    return train_pipeline(tmp, travel_data(), item)


def test_learns_intents_entities_and_roles(trained):
    steps, model, _ = trained
    batch = parse(steps, model, ["fly from rome to paris", "what is the weather in london", "hello bot"])
    assert [i["name"] for i in batch.intent] == ["book_flight", "weather", "greet"]
    assert len(batch.intent_ranking[0]) == 3
    assert sum(r["confidence"] for r in batch.intent_ranking[0]) == pytest.approx(1.0)
    flight = {(e["value"], e["entity"], e.get("role")) for e in batch.entities[0]}
    assert flight == {("rome", "city", "departure"), ("paris", "city", "destination")}
    weather = batch.entities[1]
    assert [(e["start"], e["end"], e["entity"]) for e in weather] == [(23, 29, "city")]
    assert weather[0]["extractor"] == "DIETClassifier"
    assert 0.0 < weather[0]["confidence_entity"] <= 1.0
    assert batch.entities[2] == []


def test_training_is_deterministic_and_round_trip_exact(trained, tmp_path):
    steps, model, config = trained
    texts = ["fly from berlin to vienna", "rain in madrid?", "hi"]
    again = train_pipeline(tmp_path, travel_data(), {"name": "DIETClassifier", "epochs": 40, "random_seed": 7})[1]
    for name, value in model.network.params.items():
        np.testing.assert_array_equal(value, again.network.params[name])
    first = parse(steps, model, texts).parse_results()
    second = parse(steps, again, texts).parse_results()
    assert first == second
    reloaded = D.DIETClassifier.load(config, Artifact(tmp_path / "model"))
    assert parse(steps, reloaded, texts).parse_results() == first


def test_ranking_length_and_intent_only(tmp_path):
    item = {"name": "DIETClassifier", "epochs": 5, "ranking_length": 2, "renormalize_confidences": True, "entity_recognition": False}
    steps, model, _ = train_pipeline(tmp_path, travel_data(), item)
    batch = parse(steps, model, ["fly from rome to paris"])
    assert len(batch.intent_ranking[0]) == 2
    assert sum(r["confidence"] for r in batch.intent_ranking[0]) == pytest.approx(1.0)
    assert batch.entities[0] == []
    assert not model.network.spec.heads


def test_transformer_options_warn_once():
    with pytest.warns(UserWarning, match="number_of_transformer_layers"):
        component_config(D.DIETClassifier, {"name": "DIETClassifier", "number_of_transformer_layers": 2})


def test_no_examples_trains_nothing(tmp_path):
    steps, model, _ = train_pipeline(tmp_path, TrainingData([Message(text="hi there")]), {"name": "DIETClassifier", "epochs": 2})
    assert model.network is None
    batch = parse(steps, model, ["hi"])
    assert batch.intent == [None]


def test_bilou_tags_and_decoding():
    message = example("fly from new york to rome", "x", ("new york", "city", None), ("rome", "city", None))
    from trainkit.nlu.batch import Token

    tokens = [Token(w, message.text.index(w), message.text.index(w) + len(w)) for w in message.text.split()]
    tags = T.entity_tags(tokens, message, bilou=True)
    assert tags == ["O", "O", "B-city", "L-city", "O", "U-city"]
    assert T.decode_entity_tags(tags) == [(2, 3, "city"), (5, 5, "city")]
    assert T.decode_entity_tags(["I-a", "I-a", "O", "B-b", "U-b"]) == [(0, 1, "a"), (3, 3, "b"), (4, 4, "b")]
    assert T.entity_tags(tokens, message, bilou=False) == ["O", "O", "city", "city", "O", "city"]


@pytest.mark.parametrize("pooling", [False, True])
def test_network_gradients_match_finite_differences(monkeypatch, pooling):
    monkeypatch.setattr(N, "DTYPE", np.float64)
    rng = np.random.default_rng(0)
    lengths = np.array([3, 1, 4, 2])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    sent = CSR.from_dense(rng.random((4, 7)) * (rng.random((4, 7)) < 0.5))
    seq = CSR.from_dense(rng.random((10, 6)) * (rng.random((10, 6)) < 0.5))
    tags = {"entity": rng.integers(0, 3, 10), "role": rng.integers(0, 2, 10)}
    # repeated token rows exercise the merging of identical tokens
    seq = CSR.vstack([seq.take_rows(np.arange(8)), seq.take_rows([0, 1])])
    data = EncodedData(sent, seq, offsets, np.array([0, 1, 2, 1]), tags, duplicate_row_ids(seq))
    assert duplicate_row_ids(seq)[8:].tolist() == [0, 1]
    spec = N.NetworkSpec(
        7, 6, ["a", "b", "c"], [N.TagHead("entity", ["O", "x", "y"]), N.TagHead("role", ["O", "r"])],
        dense_dimension=5, hidden_sizes=[4], label_hidden_sizes=[3], embedding_dimension=3,
        entity_hidden_size=4, context_window=1, token_pooling=pooling,
    )
    net = N.Network(spec)
    net.initialise(rng, 1.0)
    for name in net.params:
        net.params[name] = net.params[name] + rng.normal(size=net.params[name].shape) * 0.1
    options = TrainingOptions(1, (4, 4), 0.01, 0.0, False, 1.0, 0.0, nn.SimilarityLossConfig(), 5, 0)
    batch = net.make_batch(data, np.arange(4))
    _, grads, rows = net.loss_and_gradients(batch, None, options)
    # the entity heads read the sentence vector without training the sentence layer, so
    # that layer's gradient is the intent loss's alone
    intent_only = N.Network(dataclasses.replace(spec, heads=[]), net.params)
    assert {"sent.W", "sent.b"} <= set(grads)
    for name, grad in grads.items():
        judge = intent_only if name.startswith("sent.") else net
        param = net.params[name]
        full = np.zeros_like(param)
        if name in rows:
            full[rows[name]] = grad
        else:
            full = grad
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + 1e-6
            up = judge.loss_and_gradients(batch, None, options)[0]
            param[idx] = old - 1e-6
            down = judge.loss_and_gradients(batch, None, options)[0]
            param[idx] = old
            numeric[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(full, numeric, atol=1e-6, err_msg=name)


def test_rows_follow_featurizable_examples(tmp_path):
    data = TrainingData([Message(action_name="utter_x"), *travel_data().training_examples])
    assert len(featurizable_examples(data)) == len(travel_data().training_examples)
    steps, model, _ = train_pipeline(tmp_path, data, {"name": "DIETClassifier", "epochs": 30, "random_seed": 1})
    assert parse(steps, model, ["hello"]).intent[0]["name"] == "greet"


@pytest.mark.parametrize("strategy", ["balanced", "sequence"])
def test_batch_strategy_decides_how_often_a_rare_intent_is_seen(tmp_path, monkeypatch, strategy):
    """Rasa's default `balanced` strategy brings a rare intent back within an epoch;
    `sequence` visits every example once."""
    examples = [example(f"play song number {i}", "play") for i in range(60)]
    examples += [example("stop it", "stop"), example("stop the music", "stop")]
    seen: list[np.ndarray] = []
    original = N.Network.make_batch

    def recording(self, data, rows, rng=None, input_drop=0.0, **kwargs):
        if rng is not None:
            seen.append(data.labels[rows])
        return original(self, data, rows, rng, input_drop, **kwargs)

    monkeypatch.setattr(N.Network, "make_batch", recording)
    item = {"name": "DIETClassifier", "epochs": 3, "random_seed": 1, "batch_size": 8, "batch_strategy": strategy,
            "entity_recognition": False}
    train_pipeline(tmp_path, TrainingData(examples), item)
    labels = np.concatenate(seen)
    rare = int(np.sum(labels == 1))  # "stop" sorts after "play"
    if strategy == "sequence":
        assert labels.size == 3 * 62 and rare == 3 * 2
    else:
        assert rare > 3 * 2
        assert np.sum(labels == 0) == 3 * 60


def _random_encoded(rng: np.random.Generator, messages: int) -> tuple[EncodedData, N.NetworkSpec]:
    lengths = rng.integers(1, 6, messages)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = int(offsets[-1])
    sent = CSR.from_dense(rng.random((messages, 12)) * (rng.random((messages, 12)) < 0.4))
    seq = CSR.from_dense(rng.random((tokens, 9)) * (rng.random((tokens, 9)) < 0.4))
    tags = {"entity": rng.integers(0, 3, tokens)}
    data = EncodedData(sent, seq, offsets, rng.integers(0, 3, messages), tags, duplicate_row_ids(seq))
    spec = N.NetworkSpec(12, 9, ["a", "b", "c"], [N.TagHead("entity", ["O", "x", "y"])], dense_dimension=8,
                         embedding_dimension=4, entity_hidden_size=6, context_window=1)
    return data, spec


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "thread"])
def test_a_step_on_two_lanes_trains_the_same_weights(monkeypatch, tmp_path, forked):
    """The intent and token parts of a step run side by side when the node has two
    lanes, the intent part in a forked child process (or, where the process cannot fork,
    on a second thread); each has its own random stream and parameters, so the weights
    are identical to one lane's."""
    import os
    import threading

    data, spec = _random_encoded(np.random.default_rng(5), 40)
    options = TrainingOptions(3, (8, 16), 0.01, 0.2, True, 1.0, 0.002, nn.SimilarityLossConfig(), 5, 7,
                                average_from=0.5, hidden_drop_rate=0.3)
    seen = tmp_path / "intent-part-ran-in"  # appended to from the child process as well
    original = N.Network._intent_backward

    def recording(self, *args, **kwargs):
        with seen.open("a") as out:
            out.write(f"{os.getpid()} {threading.current_thread().name}\n")
        return original(self, *args, **kwargs)

    def where() -> set[tuple[int, str]]:
        found = {(int(pid), name) for pid, name in (line.split(" ", 1) for line in seen.read_text().splitlines())}
        seen.unlink()
        return found

    monkeypatch.setattr(N.Network, "_intent_backward", recording)
    monkeypatch.setattr(N, "FORK_INTENT_PART", forked)
    one, two = N.Network(spec), N.Network(spec)
    assert one.splits_into_parts()
    history_one = one.fit(data, options, lanes=1)
    here = (os.getpid(), threading.current_thread().name)
    assert where() == {here}  # one lane: the step stays whole here
    history_two = two.fit(data, options, lanes=2)
    places = where()
    if forked:
        assert len(places) == 1 and next(iter(places))[0] != os.getpid()
    else:
        assert {pid for pid, _ in places} == {os.getpid()} and here not in places
    assert history_one == history_two
    for name, value in one.params.items():
        np.testing.assert_array_equal(value, two.params[name], err_msg=name)
    # the weights moved: the comparison is not between two untrained networks
    fresh = N.Network(spec)
    fresh.initialise(np.random.default_rng(7), 1.0)
    assert not np.allclose(fresh.params["tok.W"], one.params["tok.W"])
    assert not np.allclose(fresh.params["sent.W"], two.params["sent.W"])  # the child's weights came back
    # without weight averaging the intent part's weights are the child's own: copies, not
    # views of its ring
    plain = N.Network(spec)
    plain.fit(data, dataclasses.replace(options, average_from=None), lanes=2)
    assert all(value.flags.owndata for value in plain.params.values())


def test_a_token_part_prepared_ahead_computes_what_the_step_would_draw_itself():
    """The lane draws the token part's dropout masks and lays out its merges and packing
    ahead of the step; the step's loss and gradients are those of the same batch drawing
    its masks in the forward pass from the same random state."""
    data, spec = _random_encoded(np.random.default_rng(3), 30)
    options = TrainingOptions(1, (30, 30), 0.01, 0.2, True, 1.0, 0.002, nn.SimilarityLossConfig(), 5, 7,
                                hidden_drop_rate=0.3)
    net = N.Network(spec)
    net.initialise(np.random.default_rng(0), 1.0)
    rows = np.arange(30)
    plain = net.make_batch(data, rows, for_training=True)
    prepared = net.make_batch(data, rows, for_training=True)
    net.prepare_token_part(prepared, options.hidden_drop_rate, np.random.default_rng(11))
    assert prepared.token_masks is not None and prepared.token_masks[0] is not None
    assert prepared.merge is not None and prepared.packing is not None
    loss_a, grads_a, _ = net.loss_and_gradients(plain, np.random.default_rng(4), options, np.random.default_rng(11))
    loss_b, grads_b, _ = net.loss_and_gradients(prepared, np.random.default_rng(4), options,
                                                np.random.default_rng(99))  # the masks are not drawn again
    assert loss_a == loss_b
    for name, grad in grads_a.items():
        np.testing.assert_array_equal(grad, grads_b[name], err_msg=name)
    # the masks took effect: without dropout the loss differs
    assert net.loss_and_gradients(plain, np.random.default_rng(4), options, None)[0] != loss_a


def _intent_backward_failing(monkeypatch, at_call: int, failure) -> list[int]:
    """Make the intent part's backward pass call `failure()` at its `at_call`-th call;
    returns the list of calls seen in this process."""
    calls: list[int] = []
    original = N.Network._intent_backward

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            failure()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(N.Network, "_intent_backward", failing)
    return calls


def _overflow():
    raise FloatingPointError("similarity overflow")


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "thread"])
def test_a_failure_in_the_intent_part_reaches_the_caller(monkeypatch, forked):
    """The intent part runs ahead (in a child process or on the lane); when it fails, fit
    raises its error instead of waiting for a sentence vector that never comes."""
    data, spec = _random_encoded(np.random.default_rng(5), 40)
    options = TrainingOptions(3, (8, 16), 0.01, 0.2, True, 1.0, 0.002, nn.SimilarityLossConfig(), 5, 7)
    calls = _intent_backward_failing(monkeypatch, 4, _overflow)
    monkeypatch.setattr(N, "FORK_INTENT_PART", forked)
    with pytest.raises(FloatingPointError, match="similarity overflow"):
        N.Network(spec).fit(data, options, lanes=2)
    assert len(calls) == (0 if forked else 4)  # a child's calls are its own


def test_a_forked_intent_part_that_dies_is_a_clear_error_and_leaves_no_process(monkeypatch):
    import multiprocessing
    import os

    from trainkit.errors import TrainkitError

    data, spec = _random_encoded(np.random.default_rng(5), 40)
    options = TrainingOptions(3, (8, 16), 0.01, 0.2, True, 1.0, 0.002, nn.SimilarityLossConfig(), 5, 7)
    _intent_backward_failing(monkeypatch, 3, lambda: os._exit(9))  # as if killed for want of memory
    with pytest.raises(TrainkitError, match="ended early"):
        N.Network(spec).fit(data, options, lanes=2)
    assert not [child for child in multiprocessing.active_children() if child.name == "trainkit-forked"]


def test_an_interrupted_fit_stops_its_forked_intent_part(monkeypatch):
    import multiprocessing

    data, spec = _random_encoded(np.random.default_rng(5), 40)
    options = TrainingOptions(3, (8, 16), 0.01, 0.2, True, 1.0, 0.002, nn.SimilarityLossConfig(), 5, 7)
    steps = []

    def interrupted(self, *args, **kwargs):
        steps.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(N.Network, "_token_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        N.Network(spec).fit(data, options, lanes=2)
    assert steps
    assert not [child for child in multiprocessing.active_children() if child.name == "trainkit-forked"]


def test_token_context_keeps_the_step_whole():
    data, spec = _random_encoded(np.random.default_rng(6), 10)
    assert not N.Network(dataclasses.replace(spec, token_pooling=True)).splits_into_parts()
    assert not N.Network(dataclasses.replace(spec, heads=[])).splits_into_parts()


def test_cosine_schedule_falls_from_the_learning_rate_towards_zero():
    options = TrainingOptions(10, (8, 8), 0.01, 0.0, False, 1.0, 0.0, nn.SimilarityLossConfig(), 5, 0,
                                learning_rate_schedule="cosine")
    rates = [learning_rate_at(options, epoch) for epoch in range(options.epochs)]
    assert rates[0] == pytest.approx(0.01)
    assert rates[5] == pytest.approx(0.005)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert 0.0 < rates[-1] < 0.001
    constant = dataclasses.replace(options, learning_rate_schedule="constant")
    assert {learning_rate_at(constant, epoch) for epoch in range(10)} == {0.01}


def test_fit_trains_each_epoch_at_its_scheduled_rate(monkeypatch):
    """The optimiser sees the schedule's rate in every epoch: with one epoch cosine and
    constant agree, with more they part."""
    data, spec = _random_encoded(np.random.default_rng(8), 24)
    seen: list[float] = []
    original = nn.Adam.update

    def recording(self, *args, **kwargs):
        seen.append(self.learning_rate)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Adam, "update", recording)
    cosine = TrainingOptions(4, (8, 8), 0.01, 0.0, False, 1.0, 0.0, nn.SimilarityLossConfig(), 5, 3,
                               learning_rate_schedule="cosine")
    N.Network(spec).fit(data, cosine, lanes=1)
    assert sorted(set(seen), reverse=True) == pytest.approx([learning_rate_at(cosine, e) for e in range(4)])
    weights = {}
    for schedule in ("cosine", "constant"):
        for epochs in (1, 3):
            net = N.Network(spec)
            net.fit(data, dataclasses.replace(cosine, epochs=epochs, learning_rate_schedule=schedule), lanes=1)
            weights[schedule, epochs] = net.params["sent.W"]
    np.testing.assert_array_equal(weights["cosine", 1], weights["constant", 1])
    assert not np.allclose(weights["cosine", 3], weights["constant", 3])


def test_diet_defaults_to_a_cosine_schedule_from_a_higher_rate():
    from trainkit.nlu.diet import DIETClassifier, training_options
    from trainkit.nlu.response_selector import ResponseSelector

    options = training_options(component_config(DIETClassifier, {}))
    assert (options.learning_rate, options.learning_rate_schedule) == (0.01, "cosine")
    # `constant` is Rasa's behaviour
    own = training_options(component_config(DIETClassifier, {"learning_rate": 0.002, "learning_rate_schedule": "constant"}))
    assert (own.learning_rate, own.learning_rate_schedule) == (0.002, "constant")
    selector = training_options(component_config(ResponseSelector, {}))
    assert (selector.learning_rate, selector.learning_rate_schedule) == (0.001, "constant")
