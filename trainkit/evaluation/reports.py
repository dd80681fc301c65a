"""Writing a test run's result files, under the names Rasa gives them.

Every file is written whole to a temp file and renamed, so a reader (or a CI step that
uploads `results/`) never sees half a report. Error lists are written even when empty,
so a rerun never leaves a stale list of errors beside a new report.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from trainkit.engine.atomic import write_json_atomic
from trainkit.evaluation.core_test import CoreTestResult
from trainkit.evaluation.cross_validation import CrossValidationResult
from trainkit.evaluation.metrics import confusion_matrix, unique_labels
from trainkit.evaluation.nlu_test import NluTestResult
from trainkit.evaluation.story_writer import failed_stories_yaml, stories_with_warnings_yaml

STORY_REPORT = "story_report.json"
FAILED_STORIES = "failed_test_stories.yml"
STORIES_WITH_WARNINGS = "stories_with_warnings.yml"
STORY_CONFUSION_MATRIX = "story_confusion_matrix.png"
INTENT_REPORT = "intent_report.json"
INTENT_ERRORS = "intent_errors.json"
INTENT_CONFUSION_MATRIX = "intent_confusion_matrix.png"
INTENT_HISTOGRAM = "intent_histogram.png"
RESPONSE_SELECTION_REPORT = "response_selection_report.json"
RESPONSE_SELECTION_ERRORS = "response_selection_errors.json"
CROSS_VALIDATION_REPORT = "cross_validation_report.json"


@dataclass
class WrittenFiles:
    """What a test run wrote, and whether plots were left out for want of matplotlib."""

    files: list[Path] = field(default_factory=list)
    plots_skipped: bool = False

    def extend(self, other: WrittenFiles) -> None:
        self.files += other.files
        self.plots_skipped = self.plots_skipped or other.plots_skipped


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to a temp file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json(path: Path, payload: object) -> Path:
    write_json_atomic(path, payload)
    return path


def _plots_wanted(plots: bool, written: WrittenFiles) -> bool:
    from trainkit.evaluation.plots import plotting_available

    if plots and not plotting_available():
        written.plots_skipped = True
        return False
    return plots


def write_core_reports(result: CoreTestResult, out: str | Path, plots: bool = True) -> WrittenFiles:
    """`story_report.json`, `failed_test_stories.yml`, `stories_with_warnings.yml` and
    the story confusion matrix."""
    out = Path(out)
    written = WrittenFiles([
        _json(out / STORY_REPORT, result.story_report()),
        write_text_atomic(out / FAILED_STORIES, failed_stories_yaml(result.replay.stories)),
        write_text_atomic(out / STORIES_WITH_WARNINGS, stories_with_warnings_yaml(result.replay.stories)),
    ])
    if _plots_wanted(plots, written):
        from trainkit.evaluation.plots import plot_confusion_matrix

        targets = [a.expected for s in result.replay.stories for a in s.actions]
        predictions = [a.predicted for s in result.replay.stories for a in s.actions]
        labels = unique_labels(targets, predictions)
        written.files.append(plot_confusion_matrix(confusion_matrix(targets, predictions, labels), labels,
                                                   "Action Confusion matrix", out / STORY_CONFUSION_MATRIX))
    return written


def write_nlu_reports(result: NluTestResult, out: str | Path, plots: bool = True) -> WrittenFiles:
    """The intent report and errors, the response selection's and each extractor's
    report and errors, and the plots."""
    out = Path(out)
    written = WrittenFiles([_json(out / INTENT_REPORT, result.intent_report),
                            _json(out / INTENT_ERRORS, result.intent_errors)])
    if result.response_report is not None:
        written.files += [_json(out / RESPONSE_SELECTION_REPORT, result.response_report),
                          _json(out / RESPONSE_SELECTION_ERRORS, result.response_errors)]
    for entities in result.entities:
        written.files += [_json(out / f"{entities.extractor}_report.json", entities.report),
                          _json(out / f"{entities.extractor}_errors.json", entities.errors)]
    if _plots_wanted(plots, written):
        from trainkit.evaluation.plots import plot_confidence_histogram, plot_confusion_matrix

        targets = [p.intent for p in result.intents]
        predictions = [p.predicted or "" for p in result.intents]
        labels = unique_labels(targets, predictions)
        written.files.append(plot_confusion_matrix(confusion_matrix(targets, predictions, labels), labels,
                                                   "Intent Confusion matrix", out / INTENT_CONFUSION_MATRIX))
        written.files.append(plot_confidence_histogram([p.confidence for p in result.intents if p.correct],
                                                       [p.confidence for p in result.intents if not p.correct],
                                                       out / INTENT_HISTOGRAM))
        for entities in result.entities:
            labels = unique_labels(entities.targets, entities.predictions)
            matrix = confusion_matrix(entities.targets, entities.predictions, labels)
            written.files.append(plot_confusion_matrix(matrix, labels, f"{entities.extractor} Confusion matrix",
                                                       out / f"{entities.extractor}_confusion_matrix.png"))
    return written


def write_cross_validation_reports(result: CrossValidationResult, out: str | Path, plots: bool = True) -> WrittenFiles:
    """The NLU reports of the pooled test folds, and the per-fold scores."""
    written = write_nlu_reports(result.pooled, out, plots)
    written.files.append(_json(Path(out) / CROSS_VALIDATION_REPORT, result.scores()))
    return written
