"""Evaluating trained models: `trainkit test core`, `trainkit test nlu` and the
benchmarks' NLU metrics.

- `metrics`: classification reports and confusion matrices in numpy
- `nlu`: the summary intent and entity metrics the benchmarks record
- `nlu_test`, `cross_validation`: `trainkit test nlu` (held-out data or k folds)
- `core_test`, `story_writer`: `trainkit test core` (replayed test stories)
- `reports`, `plots`: the result files and PNG plots, named as Rasa names them
"""

from trainkit.evaluation.nlu import (
    FALLBACK_INTENT,
    IntentReport,
    best_non_fallback,
    entity_report,
    evaluate_nlu,
    intent_report,
    undo_fallback,
)

__all__ = [
    "FALLBACK_INTENT",
    "IntentReport",
    "best_non_fallback",
    "entity_report",
    "evaluate_nlu",
    "intent_report",
    "undo_fallback",
]
