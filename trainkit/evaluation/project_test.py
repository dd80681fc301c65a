"""Testing a trained model on a project's files: what `trainkit test` and `doit test` run.

The bare `trainkit test` runs both halves the model has: the dialogue half on the test
stories (`tests/`), the NLU half on the NLU data (`data/`, as `rasa test` does). A half
the model lacks, or test stories that do not exist, is skipped with the reason; asking
for that half by name (`trainkit test core`) is an error instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainkit.data.paths import discover_files
from trainkit.errors import TrainkitError
from trainkit.evaluation.core_test import CoreTestResult, run_core_test
from trainkit.evaluation.cross_validation import CrossValidationResult, cross_validate
from trainkit.evaluation.nlu_test import NluTestResult, read_nlu_files, run_nlu_test
from trainkit.evaluation.reports import (
    WrittenFiles,
    write_core_reports,
    write_cross_validation_reports,
    write_nlu_reports,
)

DEFAULT_STORIES = "tests"
DEFAULT_NLU = "data"
DEFAULT_RESULTS = "results"


@dataclass
class EvaluationRun:
    """The results of one test run and the files it wrote."""

    core: CoreTestResult | None = None
    nlu: NluTestResult | None = None
    cross_validation: CrossValidationResult | None = None
    written: WrittenFiles = field(default_factory=WrittenFiles)
    skipped: list[str] = field(default_factory=list)




def _model(model: Any, needs: str | None = None) -> Any:
    """A loaded model; in a directory, the newest archive with the half a test `needs`."""
    from trainkit.model import load_model

    return load_model(model, needs=needs) if isinstance(model, (str, Path)) else model


def story_files(paths: Sequence[str | Path]) -> list[Path]:
    """The YAML files under the given story paths."""
    return [file for path in paths for file in discover_files(path)]


def run_core_tests(model: Any, stories: Sequence[str | Path] = (DEFAULT_STORIES,), out: str | Path = DEFAULT_RESULTS,
                   e2e: bool = False, plots: bool = True) -> EvaluationRun:
    """Replay the test stories and write `story_report.json` and its companions."""
    result = run_core_test(_model(model, "core"), story_files(stories), e2e)
    return EvaluationRun(core=result, written=write_core_reports(result, out, plots))


def run_nlu_tests(model: Any, nlu: Sequence[str | Path] = (DEFAULT_NLU,), out: str | Path = DEFAULT_RESULTS,
                  plots: bool = True) -> EvaluationRun:
    """Parse the NLU examples and write `intent_report.json` and its companions."""
    loaded = _model(model, "nlu")
    if not loaded.has_nlu:
        raise TrainkitError("the model has no NLU pipeline (it is a Core-only model)")
    result = run_nlu_test(loaded, read_nlu_files(nlu))
    return EvaluationRun(nlu=result, written=write_nlu_reports(result, out, plots))


def run_cross_validation(config: str | Path | None, nlu: Sequence[str | Path] = (DEFAULT_NLU,), folds: int = 5,
                         out: str | Path = DEFAULT_RESULTS, plots: bool = True,
                         project_dir: str | Path = ".") -> EvaluationRun:
    """Cross-validate the NLU pipeline of `config` and write the pooled reports."""
    result = cross_validate(config, read_nlu_files(nlu), folds, project_dir)
    return EvaluationRun(cross_validation=result, nlu=result.pooled,
                   written=write_cross_validation_reports(result, out, plots))


def run_tests(model: Any, stories: Sequence[str | Path] = (DEFAULT_STORIES,), nlu: Sequence[str | Path] = (DEFAULT_NLU,),
              out: str | Path = DEFAULT_RESULTS, e2e: bool = False, plots: bool = True) -> EvaluationRun:
    """Both halves the model has, on the files that exist."""
    loaded = _model(model)
    run = EvaluationRun()
    missing = [str(p) for p in stories if not Path(p).exists()]
    if loaded.ensemble is None:
        run.skipped.append("core: the model has no dialogue policies")
    elif missing:
        run.skipped.append(f"core: no test stories at {', '.join(missing)}")
    else:
        core = run_core_tests(loaded, stories, out, e2e, plots)
        run.core = core.core
        run.written.extend(core.written)
    if not loaded.has_nlu:
        run.skipped.append("nlu: the model has no NLU pipeline")
    else:
        nlu_run = run_nlu_tests(loaded, nlu, out, plots)
        run.nlu = nlu_run.nlu
        run.written.extend(nlu_run.written)
    return run
