"""`trainkit test nlu --cross-validation`: train on k-1 folds, test on the k-th, k times.

Folds are stratified by intent (each intent's examples spread over the folds as evenly
as possible) and drawn with a fixed seed, so a rerun makes the same folds. Each fold
trains through `trainkit.train_nlu` in a temporary project that shares the real
project's cache: the fold files have the same name and bytes every time, so a second
cross-validation of unchanged data trains nothing. As in Rasa, the reports are written
from the pooled test predictions of all folds, and accuracy, precision and F1 are given
as mean and standard deviation over the folds, on the training and the test part.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainkit.data.nlu_writer import write_nlu_file
from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.cache import CACHE_DIR_ENV
from trainkit.errors import TrainkitError
from trainkit.evaluation.nlu_test import (
    NluTestResult,
    entity_extractors,
    parse_all,
    score_parses,
    selects_responses,
)

FOLD_SEED = 0


def stratified_folds(intents: list[str], folds: int, seed: int = FOLD_SEED) -> list[list[int]]:
    """The test indices of each fold: every intent's examples dealt round the folds.

    The dealing continues from fold to fold across intents, so fold sizes differ by at
    most one.
    """
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in range(folds)]
    next_fold = 0
    for intent in sorted(set(intents)):
        members = [i for i, name in enumerate(intents) if name == intent]
        for index in rng.permutation(members):
            out[next_fold].append(int(index))
            next_fold = (next_fold + 1) % folds
    return [sorted(fold) for fold in out]


@dataclass
class CrossValidationResult:
    """Pooled test predictions of every fold, and per-fold summary scores."""

    pooled: NluTestResult
    folds: list[dict[str, Any]]  # {"train": summary, "test": summary} per fold

    def scores(self) -> dict[str, Any]:
        """Mean and standard deviation of each score over the folds, as Rasa logs them."""

        def spread(part: str, pick: Any) -> dict[str, dict[str, Any]]:
            names = [name for name in pick(self.folds[0][part]) if name != "support"]
            values = {name: [float(pick(fold[part])[name]) for fold in self.folds] for name in names}
            return {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v} for name, v in values.items()}

        extractors = [e.extractor for e in self.pooled.entities]
        return {
            "folds": len(self.folds),
            "intent": {part: spread(part, lambda s: s["intent"]) for part in ("train", "test")},
            "entities": {
                name: {part: spread(part, lambda s, n=name: s["entities"][n]) for part in ("train", "test")}
                for name in extractors
            },
        }


@contextlib.contextmanager
def _shared_cache(project_dir: Path) -> Iterator[None]:
    """Point fold trainings at the project's cache unless a cache is configured already."""
    if os.environ.get(CACHE_DIR_ENV, "").strip():
        yield
        return
    os.environ[CACHE_DIR_ENV] = str((project_dir / ".trainkit" / "cache").resolve())
    try:
        yield
    finally:
        os.environ.pop(CACHE_DIR_ENV, None)


def _subset(data: TrainingData, examples: list[Message]) -> TrainingData:
    return TrainingData(examples, dict(data.entity_synonyms), list(data.regex_features),
                        list(data.lookup_tables), dict(data.responses))


def _train_fold(config: Path | None, train: TrainingData, directory: Path) -> Any:
    import trainkit

    directory.mkdir(parents=True, exist_ok=True)
    config_path = None
    if config is not None:
        config_path = directory / "config.yml"
        shutil.copyfile(config, config_path)
    data_file = write_nlu_file(train, directory / "data" / "nlu.yml")
    engine_log = logging.getLogger("trainkit")
    level = engine_log.level
    # The folds' node-by-node training log would bury the results; problems still show.
    engine_log.setLevel(logging.WARNING)
    try:
        result = trainkit.train_nlu(config_path, str(data_file), output=str(directory / "models"),
                                    fixed_model_name="fold", project_dir=str(directory))
    finally:
        engine_log.setLevel(level)
    return trainkit.load_model(result.model)


def cross_validate(config: str | Path | None, data: TrainingData, folds: int,
                   project_dir: str | Path = ".") -> CrossValidationResult:
    """Train and test the NLU pipeline of `config` on `folds` stratified folds of `data`."""
    examples = data.nlu_examples
    if folds < 2:
        raise TrainkitError(f"--folds must be at least 2, got {folds}")
    if folds > len(examples):
        raise TrainkitError(f"--folds {folds} is more than the {len(examples)} NLU examples")
    intents = [m.intent or "" for m in examples]
    pooled_examples: list[Message] = []
    pooled_parses: list[dict[str, Any]] = []
    fold_scores: list[dict[str, Any]] = []
    extractors: list[str] = []
    responses = False
    with _shared_cache(Path(project_dir)), tempfile.TemporaryDirectory(prefix="trainkit-cv-") as tmp:
        for number, test_indices in enumerate(stratified_folds(intents, folds)):
            chosen = set(test_indices)
            train = [m for i, m in enumerate(examples) if i not in chosen]
            test = [examples[i] for i in test_indices]
            model = _train_fold(Path(config) if config else None, _subset(data, train), Path(tmp) / f"fold-{number}")
            extractors = entity_extractors(model.pipeline)
            responses = selects_responses(model.pipeline)
            train_parses = parse_all(model, [m.text or "" for m in train])
            test_parses = parse_all(model, [m.text or "" for m in test])
            fold_scores.append({
                "train": score_parses(train, train_parses, extractors, responses).summary(),
                "test": score_parses(test, test_parses, extractors, responses).summary(),
            })
            pooled_examples += test
            pooled_parses += test_parses
    return CrossValidationResult(score_parses(pooled_examples, pooled_parses, extractors, responses), fold_scores)
