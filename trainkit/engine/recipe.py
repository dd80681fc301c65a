"""The default recipe (`default.v1`): how config.yml's pipeline and policies become nodes.

Node names follow Rasa's (`train_DIETClassifier5`, `run_CountVectorsFeaturizer3`), so a
user reading a Rasa log recognises them. Unlike Rasa, classifiers read every featurizer's
output directly (fan-in) instead of through a chain, so independent featurizers train in
parallel and a change to one featurizer never reruns the others.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

from trainkit.data.config import TrainingConfig
from trainkit.engine.component import (
    FEATURIZER,
    POLICY,
    PROVIDER,
    TOKENIZER,
    Component,
    component_config,
    get_component,
)
from trainkit.engine.graph import DERIVE, PROCESS, PROVIDE, TRAIN, Node
from trainkit.errors import ConfigError, GraphError

NLU_DATA = "nlu_training_data_provider"
DOMAIN = "domain_provider"
CORE_DOMAIN = "domain_for_core_training_provider"
STORIES = "story_graph_provider"
TRACKERS = "training_tracker_provider"
E2E_TEXTS = "end_to_end_texts_provider"

TRACKER_DEFAULTS: dict[str, Any] = {
    "augmentation_factor": 50,
    "remove_duplicates": True,
    "use_story_concatenation": True,
    "tracker_limit": None,
    "random_seed": 42,
}


@dataclass
class Recipe:
    """The compiled result: train nodes plus what a loaded model needs to predict."""

    nodes: list[Node]
    # pipeline/policy items in order: {"name", "component", "config", "node" (artifact or None)}
    nlu_pipeline: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)

    def predict_schema(self) -> dict[str, Any]:
        """What metadata.json records so a loaded model can rebuild the prediction path."""
        return {"pipeline": self.nlu_pipeline, "policies": self.policies}


def _where(config: TrainingConfig, section: str, index: int) -> str:
    line = config.line_of_item(section, index)
    if config.path is None:
        return ""
    return f"{config.path}:{line}: " if line else f"{config.path}: "


def _resolve(config: TrainingConfig, section: str, index: int, item: dict[str, Any]) -> type[Component]:
    try:
        return get_component(item["name"])
    except GraphError as exc:
        raise ConfigError(f"{section} item {index + 1}: {exc}", config.path, config.line_of_item(section, index)) from None


def _check_constructs(
    cls: type[Component], merged: dict[str, Any], config: TrainingConfig, section: str, index: int
) -> None:
    """Build the component once, so bad options or missing packages stop us before training."""
    try:
        cls(merged)
    except ConfigError as exc:
        raise ConfigError(
            f"{section} item {index + 1} ({cls.name}): {exc.problem.message}",
            config.path,
            config.line_of_item(section, index),
        ) from None


def _nlu_nodes(config: TrainingConfig, recipe: Recipe, persist: bool) -> None:
    recipe.nodes.append(
        Node(NLU_DATA, "NLUDataProvider", PROVIDE, {"language": config.language}, {}, "data", persist)
    )
    tokens: str | None = None
    features: list[str] = []
    seen_roles: set[str] = set()
    providers: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(config.pipeline):
        cls = _resolve(config, "pipeline", index, item)
        where = _where(config, "pipeline", index)
        node_base = f"{cls.name}{index}"
        if POLICY in cls.roles:
            raise ConfigError(
                f"'{cls.name}' is a policy; list it under 'policies', not 'pipeline'",
                config.path,
                config.line_of_item("pipeline", index),
            )
        for role in cls.requires:
            if role not in seen_roles:
                raise GraphError(
                    f"{where}node '{node_base}': {cls.name} needs a {role} earlier in the pipeline"
                )
        merged = component_config(cls, item, where)
        if cls.provider:
            if cls.provider not in providers:
                raise ConfigError(f"{cls.name} needs {cls.provider} earlier in the pipeline", config.path,
                                  config.line_of_item("pipeline", index))
            merged[cls.provider] = copy.deepcopy(providers[cls.provider])
        _check_constructs(cls, merged, config, "pipeline", index)
        ref = item["name"]  # as written, so worker processes can import custom components
        model_node: str | None = None
        base_needs: dict[str, str | list[str]] = {"training_data": NLU_DATA}
        if tokens is not None and TOKENIZER not in cls.roles:
            base_needs["tokens"] = tokens
        if PROVIDER in cls.roles:
            providers[cls.name] = merged
            if cls.trainable:  # records the outside resource it provides, for the model
                provide = Node(f"provide_{node_base}", ref, TRAIN, merged, {}, "nlu", True)
                recipe.nodes.append(provide)
                model_node = provide.name
        elif TOKENIZER in cls.roles:
            run = Node(f"run_{node_base}", ref, PROCESS, merged, dict(base_needs), "nlu")
            recipe.nodes.append(run)
            tokens = run.name
        elif FEATURIZER in cls.roles:
            run_needs = dict(base_needs)
            if cls.trainable:
                train = Node(f"train_{node_base}", ref, TRAIN, merged, dict(base_needs), "nlu", True)
                recipe.nodes.append(train)
                model_node = train.name
                run_needs["model"] = train.name
            run = Node(f"run_{node_base}", ref, PROCESS, merged, run_needs, "nlu")
            recipe.nodes.append(run)
            features.append(run.name)
        elif cls.trainable:
            needs = dict(base_needs)
            needs["features"] = list(features)
            train = Node(f"train_{node_base}", ref, TRAIN, merged, needs, "nlu", True)
            recipe.nodes.append(train)
            model_node = train.name
        seen_roles.update(cls.roles)
        recipe.nlu_pipeline.append(
            {"name": node_base, "component": ref, "config": merged, "node": model_node}
        )


# TEDPolicy's node config lists the pipeline's tokenizer and featurizers under this key
# (component and merged config each), to featurize end-to-end user texts.
TEXT_FEATURIZERS = "text_featurizers"


def _pipeline_text_featurizers(config: TrainingConfig) -> tuple[list[dict[str, Any]], list[ConfigError]]:
    """The pipeline's first tokenizer and the featurizers after it, with merged configs,
    and why each tokenizer or featurizer that cannot be built here was left out.

    Components that cannot be built (a language model whose weights are missing) are left
    out; the NLU half reports them as errors, and without it `_check_text_featurizers`
    does. Their options were warned about there, so not twice. Components reading a
    provider's resource (spaCy) are left out too: the policy's fingerprint does not cover
    that resource.
    """
    specs: list[dict[str, Any]] = []
    left_out: list[ConfigError] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index, item in enumerate(config.pipeline):
            try:
                cls = get_component(item["name"])
            except GraphError:
                continue
            wanted = (TOKENIZER in cls.roles and not specs) or (FEATURIZER in cls.roles and bool(specs))
            if cls.provider or not wanted:
                continue
            try:
                merged = component_config(cls, item)
                cls(merged)
            except ConfigError as exc:
                left_out.append(ConfigError(f"pipeline item {index + 1} ({cls.name}): {exc.problem.message}",
                                            config.path, config.line_of_item("pipeline", index)))
                continue
            specs.append({"component": item["name"], "config": merged})
    return (specs if len(specs) > 1 else []), left_out


def _check_text_featurizers(policy: str, left_out: list[ConfigError], stories_have_texts: bool) -> None:
    """Never leave a featurizer out of a policy's text featurizers silently.

    When the stories hold texts the policy featurizes them, so a featurizer it cannot
    build stops the training as the NLU half would; otherwise nothing reads it yet, and a
    warning names what was left out.
    """
    if not left_out:
        return
    if stories_have_texts:
        first = left_out[0]
        raise ConfigError(f"{first.problem.message} ({policy} featurizes the stories' end-to-end texts with the "
                          "pipeline's featurizers, so it needs this one too)", first.problem.path, first.problem.line)
    for error in left_out:
        warnings.warn(f"{error.problem}; it is left out of {policy}'s end-to-end text featurizers "
                      "(the stories hold no texts, so none is featurized yet)", stacklevel=3)


def _end_to_end_texts(config: TrainingConfig, recipe: Recipe) -> str:
    """The node collecting the texts end-to-end featurizers learn from (added once).

    It reads the NLU data, so a Core-only recipe gets the NLU data provider too; the
    texts are empty unless the stories hold texts, so NLU edits of other projects stop
    there and retrain no policy.
    """
    names = {node.name for node in recipe.nodes}
    if NLU_DATA not in names:
        recipe.nodes.append(Node(NLU_DATA, "NLUDataProvider", PROVIDE, {"language": config.language}, {}, "data"))
    if E2E_TEXTS not in names:
        recipe.nodes.append(
            Node(E2E_TEXTS, "EndToEndTextProvider", DERIVE, {}, {"story_graph": STORIES, "training_data": NLU_DATA},
                 "core")
        )
    return E2E_TEXTS


def _core_nodes(config: TrainingConfig, recipe: Recipe, tracker_config: dict[str, Any],
                stories_have_texts: bool = False) -> None:
    recipe.nodes.append(Node(CORE_DOMAIN, "CoreDomainProvider", DERIVE, {}, {"domain": DOMAIN}, "core"))
    recipe.nodes.append(Node(STORIES, "StoryGraphProvider", PROVIDE, {}, {}, "data"))
    recipe.nodes.append(
        Node(TRACKERS, "TrackerProvider", DERIVE, tracker_config, {"story_graph": STORIES, "domain": CORE_DOMAIN}, "core")
    )
    for index, item in enumerate(config.policies):
        cls = _resolve(config, "policies", index, item)
        where = _where(config, "policies", index)
        if POLICY not in cls.roles:
            raise ConfigError(
                f"'{cls.name}' is an NLU component; list it under 'pipeline', not 'policies'",
                config.path,
                config.line_of_item("policies", index),
            )
        merged = component_config(cls, item, where)
        _check_constructs(cls, merged, config, "policies", index)
        needs: dict[str, str | list[str]] = {"trackers": TRACKERS, "domain": CORE_DOMAIN}
        if getattr(cls, "featurizes_text", False):
            merged[TEXT_FEATURIZERS], left_out = _pipeline_text_featurizers(config)
            _check_text_featurizers(cls.name, left_out, stories_have_texts)
            if merged[TEXT_FEATURIZERS]:
                needs["texts"] = _end_to_end_texts(config, recipe)
        name = f"train_{cls.name}{index}"
        ref = item["name"]
        recipe.nodes.append(Node(name, ref, TRAIN, merged, needs, "core", True))
        recipe.policies.append(
            {"name": f"{cls.name}{index}", "component": ref, "config": merged, "node": name,
             "priority": merged.get("priority", cls.priority)}
        )


def compile_recipe(
    config: TrainingConfig,
    use_nlu: bool,
    use_core: bool,
    tracker_arguments: dict[str, Any] | None = None,
    persist_nlu_training_data: bool = False,
    stories_have_texts: bool = False,
) -> Recipe:
    """Turn the config into graph nodes for the halves being trained.

    With `persist_nlu_training_data` the NLU data provider is a target, so the training
    data (as the components saw it) is packaged with the model. `stories_have_texts`
    says whether TEDPolicy will featurize end-to-end texts, which decides whether a
    featurizer it cannot build is an error or a warning.
    """
    recipe = Recipe(nodes=[Node(DOMAIN, "DomainProvider", PROVIDE, {}, {}, "data", True)])
    if use_nlu:
        _nlu_nodes(config, recipe, persist_nlu_training_data)
    if use_core:
        tracker_config = dict(TRACKER_DEFAULTS)
        for key, value in (tracker_arguments or {}).items():
            if key in tracker_config:
                tracker_config[key] = value
        _core_nodes(config, recipe, tracker_config, stories_have_texts)
    return recipe
