"""What a test run prints: the lines `trainkit test` and `doit test` show, and the JSON
summary of `--json`.

The headings and the `Correct: N / M` lines follow what `rasa test` logs, so a Rasa user
finds the numbers where they expect them.
"""

from __future__ import annotations

from typing import Any

from trainkit.evaluation.core_test import CoreTestResult
from trainkit.evaluation.cross_validation import CrossValidationResult
from trainkit.evaluation.nlu_test import NluTestResult
from trainkit.evaluation.plots import PLOT_EXTRA_HINT


def core_lines(result: CoreTestResult) -> list[str]:
    """Conversation- and action-level results, and one line per wrong action."""
    summary = result.summary()
    conversation, action = summary["conversation"], summary["action"]
    level = "END-TO-END" if result.e2e else "CONVERSATION"
    lines = [
        f"Evaluation results on {level} level:",
        f"  Correct: {conversation['correct']} / {conversation['total']}",
        f"  Accuracy: {conversation['accuracy']:.3f}",
        *([f"  With warnings (action_unlikely_intent): {warned}"] if (warned := len(result.replay.stories_with_warnings))
          else []),
        "Evaluation results on ACTION level:",
        f"  Correct: {action['correct']} / {action['total']}",
        f"  Accuracy: {action['accuracy']:.3f}",
        f"  F1-score: {action['f1_score']:.3f}",
        f"  Precision: {action['precision']:.3f}",
        f"  In-data fraction: {action['in_data_fraction']:.3f}",
    ]
    return lines + [f"Wrong: {failure}" for failure in result.replay.failures()]


def nlu_lines(result: NluTestResult) -> list[str]:
    """Intent results and each extractor's exact-match entity scores."""
    summary = result.summary()
    intent = summary["intent"]
    lines = [
        f"Intent evaluation ({summary['examples']} examples):",
        f"  Correct: {sum(p.correct for p in result.intents)} / {len(result.intents)}",
        f"  Accuracy: {intent['accuracy']:.3f}",
        f"  F1-score: {intent['f1_score']:.3f}",
        f"  Precision: {intent['precision']:.3f}",
    ]
    if result.responses is not None:
        selection = summary["response_selection"]
        lines += [
            f"Response selection ({len(result.responses)} examples of retrieval intents):",
            f"  Correct: {sum(p.correct for p in result.responses)} / {len(result.responses)}",
            f"  Accuracy: {selection['accuracy']:.3f}",
        ]
    for extractor, scores in summary["entities"].items():
        lines += [
            f"Entity evaluation, {extractor} (exact span and type, {scores['support']} entities):",
            f"  Precision: {scores['precision']:.3f}  Recall: {scores['recall']:.3f}  F1-score: {scores['f1_score']:.3f}",
        ]
    return lines


def cross_validation_lines(result: CrossValidationResult) -> list[str]:
    """Mean (standard deviation) of each score over the folds, training and test part."""
    scores = result.scores()
    sections = [("Intent", scores["intent"])] + [(f"Entity ({name})", parts) for name, parts in scores["entities"].items()]
    lines = [f"Cross-validation over {scores['folds']} folds, mean (standard deviation):"]
    for label, parts in sections:
        lines.append(f"{label} evaluation results:")
        for part in ("train", "test"):
            lines += [f"  {part} {metric}: {values['mean']:.3f} ({values['std']:.3f})"
                      for metric, values in parts[part].items()]
    return lines


def run_lines(run: Any, out: str) -> list[str]:
    """Everything a test run prints, ending with the files it wrote."""
    lines: list[str] = []
    if run.core is not None:
        lines += core_lines(run.core)
    if run.cross_validation is not None:
        lines += cross_validation_lines(run.cross_validation)
        lines.append("Pooled test folds:")
    if run.nlu is not None:
        lines += nlu_lines(run.nlu)
    lines += [f"Skipped {reason}." for reason in run.skipped]
    lines.append(f"Results written to {out}/: {', '.join(p.name for p in run.written.files)}")
    if run.written.plots_skipped:
        lines.append(f"Plots not drawn: matplotlib is not installed; for plots: {PLOT_EXTRA_HINT}")
    return lines


def run_summary(run: Any) -> dict[str, Any]:
    """The `--json` form of a test run."""
    payload: dict[str, Any] = {"files": [str(p) for p in run.written.files], "skipped": run.skipped,
                               "plots_skipped": run.written.plots_skipped}
    if run.core is not None:
        payload["core"] = {**run.core.summary(), **run.core.replay.as_dict()}
    if run.nlu is not None:
        payload["nlu"] = run.nlu.summary()
    if run.cross_validation is not None:
        payload["cross_validation"] = run.cross_validation.scores()
    return payload
