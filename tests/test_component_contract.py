"""One contract over every registered component, in the spirit of scikit-learn's
estimator checks.

For every component trainkit registers:
- its options are all declared, its defaults pass their own declaration, values at the
  declared bounds construct it and values past them are a ConfigError naming the option;
and for every trainable pipeline component and policy, on the example assistant's data:
- training twice gives byte-identical artifacts (the same digest);
- train -> save -> load -> process gives what the freshly trained instance gives;
- empty training data trains, saves and loads without error and predicts nothing;
- loading with any one of its files missing is a clear TrainkitError naming the file.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainkit.core.trackers import TrackerProvider
from trainkit.data.domain import Domain
from trainkit.data.events import ActionExecuted, UserUttered
from trainkit.data.importer import load_project
from trainkit.data.training_data import TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import (
    FEATURIZER,
    POLICY,
    PROVIDER,
    TOKENIZER,
    Component,
    check_options,
    component_config,
    registered_components,
)
from trainkit.engine.fingerprint import digest_dir
from trainkit.engine.options import AnyOf, Float, Int, Option
from trainkit.engine.providers import prune_domain_for_core
from trainkit.engine.recipe import TRACKER_DEFAULTS
from trainkit.errors import ConfigError, TrainkitError
from trainkit.nlu.batch import MessageBatch
from trainkit.nlu.count_vectors import CountVectorsFeaturizer
from trainkit.nlu.tokenizers import WhitespaceTokenizer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffeebot"
# trainkit's own components (tests register fakes of their own in the same registry).
COMPONENTS = sorted(
    (name, cls) for name, cls in registered_components().items() if cls.__module__.startswith("trainkit.")
)
TEXTS = ["hi there", "I'd like a large latte with oat milk", "cancel my order please", "", "qwerty 42"]
# Options whose training cost grows with the value: the contract trains with small ones.
QUICK = {"epochs": 2, "max_iter": 20, "max_iterations": 5, "max_history": 3}


def _quick_config(cls: type[Component]) -> dict[str, Any]:
    return component_config(cls, {k: v for k, v in QUICK.items() if k in cls.defaults})


def _constructible(cls: type[Component]) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(component_config(cls, {}))
    except ConfigError:  # needs a package or a server trainkit does not ship
        return False
    return True


def _kind(cls: type[Component]) -> str:
    if PROVIDER in cls.roles:
        return "provider"
    if POLICY in cls.roles:
        return "policy"
    if TOKENIZER in cls.roles:
        return "tokenizer"
    return "nlu"


TRAINABLE = [(name, cls) for name, cls in COMPONENTS if cls.trainable and _kind(cls) in ("nlu", "policy")]


# ----------------------------------------------------------------- declarations


@pytest.mark.parametrize(("name", "cls"), COMPONENTS)
def test_every_option_is_declared_and_its_default_passes(name, cls):
    for key, default in cls.defaults.items():
        assert not isinstance(default, Option), f"{name}.{key}: declaration leaked into defaults"
        assert key in cls.options, f"{name}.{key} has no declaration"
        assert cls.options[key].problem(default) is None, f"{name}.{key} default {default!r}"
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert isinstance(cls.options[key], (Int, Float, AnyOf)), f"{name}.{key} needs bounds"


@pytest.mark.parametrize(("name", "cls"), COMPONENTS)
def test_each_option_accepts_its_bounds_and_refuses_past_them(name, cls):
    base = component_config(cls, {})
    constructible = _constructible(cls)
    for key, check in cls.options.items():
        for value in check.examples():
            config = {**base, key: value}
            check_options(cls, config)
            if constructible:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        cls(config)
                except ConfigError:
                    pass  # a constraint between options (e.g. min_ngram <= max_ngram)
        for value in check.counterexamples():
            if isinstance(value, float) and math.isnan(value) and check.problem(value) is None:
                continue
            assert check.problem(value) is not None, (name, key, value)
            with pytest.raises(ConfigError, match=f"'{key}'"):
                check_options(cls, {**base, key: value})
            if constructible:
                with pytest.raises(ConfigError, match=f"'{key}'"):
                    cls({**base, key: value})


# ----------------------------------------------------------------- training inputs


def _nlu_inputs(root: Path, training_data: TrainingData) -> dict[str, Any]:
    """Training data, tokens and count-vector features, as the graph's nodes write them."""
    data = ArtifactWriter(root / "data")
    data.json("training_data.json", training_data.as_dict())
    inputs: dict[str, Any] = {"training_data": Artifact(data.path)}
    tokens = ArtifactWriter(root / "tokens")
    WhitespaceTokenizer(component_config(WhitespaceTokenizer, {})).process_training_data(inputs, tokens)
    inputs["tokens"] = Artifact(tokens.path)
    featurizer = CountVectorsFeaturizer(component_config(CountVectorsFeaturizer, {}))
    vocabulary = ArtifactWriter(root / "vocabulary")
    featurizer.train(inputs, vocabulary)
    features = ArtifactWriter(root / "features")
    featurizer.process_training_data({**inputs, "model": Artifact(vocabulary.path)}, features)
    inputs["features"] = [Artifact(features.path)]
    return inputs


def _core_inputs(root: Path, project: Any, empty: bool) -> dict[str, Any]:
    graph = ArtifactWriter(root / "story_graph")
    stories = project.stories.as_dict()
    if empty:
        stories = {key: [] if isinstance(value, list) else value for key, value in stories.items()}
    graph.json("story_graph.json", stories)
    domain = ArtifactWriter(root / "domain")
    domain.json("domain.json", prune_domain_for_core(project.domain.as_dict()))
    trackers = ArtifactWriter(root / "trackers")
    # Without augmentation: the contract needs real trackers, not many of them.
    TrackerProvider({**TRACKER_DEFAULTS, "augmentation_factor": 0}).derive(
        {"story_graph": Artifact(graph.path), "domain": Artifact(domain.path)}, trackers
    )
    return {"trackers": Artifact(trackers.path), "domain": Artifact(domain.path)}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project = load_project(EXAMPLE / "config.yml", EXAMPLE / "domain.yml", EXAMPLE / "data")
        return {
            ("nlu", False): _nlu_inputs(root / "nlu", project.training_data()),
            ("nlu", True): _nlu_inputs(root / "nlu_empty", TrainingData()),
            ("policy", False): _core_inputs(root / "core", project, empty=False),
            ("policy", True): _core_inputs(root / "core_empty", project, empty=True),
        }


def _train(cls: type[Component], inputs: dict[str, Any], out: Path) -> Component:
    component = cls(_quick_config(cls))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        component.train(inputs, ArtifactWriter(out))
    return component


def _run_and_snapshot(component: Any, batch: MessageBatch) -> Any:
    component.process(batch)
    features = {
        origin: (matrix.to_dense() if hasattr(matrix, "to_dense") else np.asarray(matrix)).tolist()
        for origin, matrix in {**batch.sentence_features, **{f"seq:{k}": v for k, v in batch.sequence_features.items()}}.items()
    }
    return {"parse": batch.parse_results(), "features": features}


def _policy_outputs(policy: Any, domain: Domain) -> list[list[float]]:
    conversations = [
        [],
        [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet", "confidence": 1.0})],
        [ActionExecuted("action_listen"), UserUttered("bye", {"name": "goodbye", "confidence": 1.0})],
    ]
    return [list(policy.predict_action_probabilities(events, domain).probabilities) for events in conversations]


def _outputs(component: Any, cls: type[Component], inputs: dict[str, Any], nlu_features: Any) -> Any:
    if POLICY in cls.roles:
        domain = Domain.from_dict(inputs["domain"].json("domain.json"))
        return _policy_outputs(component, domain)
    batch = MessageBatch(texts=list(TEXTS))
    WhitespaceTokenizer(component_config(WhitespaceTokenizer, {})).process(batch)
    if FEATURIZER not in cls.roles:
        nlu_features.process(batch)
    return _run_and_snapshot(component, batch)


@pytest.fixture(scope="module")
def count_vectors(inputs):
    """The loaded CountVectorsFeaturizer the NLU inputs were featurized with."""
    vocabulary = inputs[("nlu", False)]["features"][0].path.parent / "vocabulary"
    return CountVectorsFeaturizer.load(component_config(CountVectorsFeaturizer, {}), Artifact(vocabulary))


@pytest.fixture(scope="module")
def empty_count_vectors(inputs):
    vocabulary = inputs[("nlu", True)]["features"][0].path.parent / "vocabulary"
    return CountVectorsFeaturizer.load(component_config(CountVectorsFeaturizer, {}), Artifact(vocabulary))


# ----------------------------------------------------------------- training contract


def _requires_constructible(cls: type[Component]) -> None:
    if not _constructible(cls):
        pytest.skip(f"{cls.name} needs a package or service that is not installed")


@pytest.mark.parametrize(("name", "cls"), TRAINABLE)
def test_training_twice_gives_the_same_artifact(name, cls, inputs, tmp_path):
    _requires_constructible(cls)
    data = inputs[(_kind(cls), False)]
    _train(cls, data, tmp_path / "first")
    _train(cls, data, tmp_path / "second")
    assert digest_dir(tmp_path / "first") == digest_dir(tmp_path / "second")


@pytest.mark.parametrize(("name", "cls"), TRAINABLE)
def test_a_loaded_component_predicts_what_the_trained_one_did(name, cls, inputs, count_vectors, tmp_path):
    _requires_constructible(cls)
    data = inputs[(_kind(cls), False)]
    trained = _train(cls, data, tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = cls.load(_quick_config(cls), Artifact(tmp_path / "model"))
    in_memory = _outputs(trained, cls, data, count_vectors)
    assert _outputs(loaded, cls, data, count_vectors) == in_memory


@pytest.mark.parametrize(("name", "cls"), TRAINABLE)
def test_empty_training_data_trains_loads_and_predicts_nothing(name, cls, inputs, empty_count_vectors, tmp_path):
    _requires_constructible(cls)
    data = inputs[(_kind(cls), True)]
    _train(cls, data, tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = cls.load(_quick_config(cls), Artifact(tmp_path / "model"))
    outputs = _outputs(loaded, cls, data, empty_count_vectors)
    if POLICY in cls.roles:
        for probabilities in outputs:
            assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities)
    else:
        assert all(result["intent"]["name"] is None for result in outputs["parse"])


@pytest.mark.parametrize(("name", "cls"), TRAINABLE)
def test_loading_with_a_file_missing_is_a_clear_error(name, cls, inputs, tmp_path):
    _requires_constructible(cls)
    data = inputs[(_kind(cls), False)]
    _train(cls, data, tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files, f"{name} persisted nothing"
    for missing in files:
        broken = tmp_path / f"without-{missing}"
        broken.mkdir()
        for name_ in files:
            if name_ != missing:
                (broken / name_).write_bytes((tmp_path / "model" / name_).read_bytes())
        with pytest.raises(TrainkitError, match=missing):
            cls.load(_quick_config(cls), Artifact(broken))
