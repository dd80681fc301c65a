"""End-to-end text for the dialogue: texts featurized by the NLU pipeline's featurizers.

A story turn written as `user: "I had that yesterday"` (with or without an intent) or
`bot: "How about sushi?"` carries a text. TEDPolicy featurizes such texts with the
tokenizer and featurizers of the project's NLU pipeline (the same components with the
same configs), so two different texts lead to different dialogue states. As in Rasa, the
featurizers learn from the whole training data: the NLU examples' texts as well as the
stories' user and bot texts (`EndToEndTextProvider` collects them). The trained
featurizers are stored inside the policy's artifact and featurize new texts at
prediction time exactly as they did in training.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainkit.data.events import ActionExecuted, Event, UserUttered
from trainkit.data.stories import StoryGraph
from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import (
    PROVIDER,
    TOKENIZER,
    Component,
    Inputs,
    get_component,
    register,
)
from trainkit.engine.fingerprint import fingerprint
from trainkit.nlu.batch import TRAINING_DATA_FILE, MessageBatch, load_training_data, sentence_matrix

TEXTS_FILE = "texts.json"


def event_texts(events: Iterable[Event]) -> set[str]:
    """The user texts (with or without an intent) and bot texts among `events`."""
    texts: set[str] = set()
    for event in events:
        if isinstance(event, UserUttered) and event.text:
            texts.add(event.text)
        elif isinstance(event, ActionExecuted) and event.action_text:
            texts.add(event.action_text)
    return texts


@register
class EndToEndTextProvider(Component):
    """The texts TED's featurizers learn from: NLU examples plus the stories' texts.

    Projects whose stories hold no text get an empty list, so editing their NLU data
    gives a byte-identical artifact and never retrains the dialogue policies.
    """

    name = "EndToEndTextProvider"
    version = "1"
    roles = frozenset({PROVIDER})

    def derive(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Write the sorted, unique texts (empty when no story turn is given as text)."""
        graph_artifact, data_artifact = inputs["story_graph"], inputs["training_data"]
        assert not isinstance(graph_artifact, list) and not isinstance(data_artifact, list)
        graph = StoryGraph.from_dict(graph_artifact.json("story_graph.json"))
        texts: set[str] = set()
        if graph.has_e2e_steps():
            texts = graph.user_texts_used() | graph.action_texts_used()
            texts |= {m.text for m in load_training_data(data_artifact).training_examples if m.text}
        out.json(TEXTS_FILE, {"texts": sorted(texts)})


def specs_resources_digest(specs: Sequence[dict[str, Any]]) -> str | None:
    """Digest of the pretrained resources (a language model's weights) the featurizers
    of `specs` read, or None when none reads any: a policy that featurizes texts with
    them must go stale when the weights change."""
    digests = [get_component(spec["component"]).resources_digest(spec["config"]) for spec in specs]
    if all(d is None for d in digests):
        return None
    return fingerprint(digests)


def read_texts(artifact: Artifact) -> list[str]:
    """The texts an `EndToEndTextProvider` node wrote."""
    return [str(text) for text in artifact.json(TEXTS_FILE).get("texts", [])]


@dataclass
class TextFeaturizer:
    """A trained tokenizer + featurizers chain turning texts into one vector each."""

    specs: list[dict[str, Any]]
    components: list[Component] = field(default_factory=list)
    dimension: int = 0

    @classmethod
    def fit(cls, specs: Sequence[dict[str, Any]], texts: Sequence[str], directory: Path) -> TextFeaturizer:
        """Train the featurizers on `texts`; their artifacts go to `directory/<index>`."""
        data = TrainingData(training_examples=[Message.build(text=text, intent=None) for text in texts])
        components: list[Component] = []
        with tempfile.TemporaryDirectory(prefix="trainkit-e2e-") as scratch:
            data_out = ArtifactWriter(Path(scratch) / "data")
            data_out.json(TRAINING_DATA_FILE, data.as_dict())
            inputs: dict[str, Any] = {"training_data": Artifact(data_out.path)}
            for index, spec in enumerate(specs):
                component_cls = get_component(spec["component"])
                component = component_cls(spec["config"])
                model: Artifact | None = None
                if TOKENIZER in component_cls.roles:
                    tokens_out = ArtifactWriter(Path(scratch) / f"tokens{index}")
                    component.process_training_data(inputs, tokens_out)
                    inputs["tokens"] = Artifact(tokens_out.path)
                elif component_cls.trainable:
                    model_out = ArtifactWriter(directory / str(index))
                    component.train(inputs, model_out)
                    model = Artifact(model_out.path)
                components.append(component_cls.load(spec["config"], model))
        featurizer = cls(list(specs), components)
        featurizer.dimension = featurizer.transform(texts[:1]).shape[1] if texts else 0
        return featurizer

    @classmethod
    def load(cls, specs: Sequence[dict[str, Any]], directory: Path) -> TextFeaturizer:
        """Rebuild the chain from the artifacts `fit` wrote."""
        components: list[Component] = []
        for index, spec in enumerate(specs):
            component_cls = get_component(spec["component"])
            model_dir = directory / str(index)
            components.append(component_cls.load(spec["config"], Artifact(model_dir) if model_dir.is_dir() else None))
        featurizer = cls(list(specs), components)
        featurizer.dimension = featurizer.transform(["x"]).shape[1]
        return featurizer

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) sentence features of the texts, float32."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch = MessageBatch(texts=list(texts))
        for component in self.components:
            component.process(batch)  # type: ignore[attr-defined]
        return np.asarray(sentence_matrix(batch).to_dense(), dtype=np.float32)
