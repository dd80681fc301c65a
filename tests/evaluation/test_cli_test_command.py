"""`trainkit test`, `test core` and `test nlu` on the example assistant, trained once:
the report files Rasa writes, valid PNG plots, and the same intent accuracy the
benchmarks compute for the same model."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import trainkit
from trainkit.cli import main
from trainkit.data.nlu_reader import read_nlu_file
from trainkit.data.story_reader import read_story_file
from trainkit.evaluation import evaluate_nlu

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coffeebot"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    target = tmp_path_factory.mktemp("cli-test") / "coffeebot"
    shutil.copytree(EXAMPLE, target)
    config = target / "config.yml"  # fewer epochs: these tests check the reports, not the model
    config.write_text(config.read_text().replace("epochs: 100", "epochs: 20"))
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.chdir(target)
        result = trainkit.train("domain.yml", "config.yml", "data", fixed_model_name="bot")
    assert result.code == 0
    return target


@pytest.fixture
def in_bot(bot, monkeypatch):
    monkeypatch.chdir(bot)
    return bot


def run(*args):
    return CliRunner().invoke(main, list(args))


def assert_png(path: Path):
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_test_core_writes_the_story_report_and_marks_the_first_wrong_step(in_bot):
    result = run("test", "core", "--out", "core-results")
    assert result.exit_code == 0, result.output
    out = in_bot / "core-results"
    report = json.loads((out / "story_report.json").read_text())
    conversation = report["conversation_accuracy"]
    assert conversation["total"] == 6
    assert f"Correct: {conversation['correct']} / 6" in result.output
    summary = json.loads(run("test", "core", "--out", "core-results", "--json").output)["core"]
    assert summary["actions"] == 34 == sum(row["support"] for label, row in report.items()
                                           if isinstance(row, dict) and label not in
                                           ("macro avg", "weighted avg", "micro avg", "conversation_accuracy"))
    assert f"Correct: {summary['correct_actions']} / 34" in result.output
    assert report["accuracy"] == pytest.approx(summary["correct_actions"] / 34)
    assert result.output.count("Wrong: ") == 34 - summary["correct_actions"]
    failed = (out / "failed_test_stories.yml").read_text()
    if conversation["correct"] < 6:
        first = summary["failures"][0]
        story, _, rest = first.partition(": expected '")
        expected, _, predicted = rest.partition("', predicted '")
        assert f"- story: {story}" in failed
        assert f"- action: {expected}  # predicted: {predicted.split(chr(39))[0]}" in failed
        assert len(read_story_file(out / "failed_test_stories.yml").story_steps) == 6 - conversation["correct"]
    else:
        assert failed.startswith("# None of the test stories failed")
    assert_png(out / "story_confusion_matrix.png")


def test_test_nlu_accuracy_is_the_benchmark_accuracy(in_bot):
    result = run("test", "nlu", "--nlu", "tests/heldout_nlu.yml", "--out", "nlu-results")
    assert result.exit_code == 0, result.output
    out = in_bot / "nlu-results"
    report = json.loads((out / "intent_report.json").read_text())
    benchmark = evaluate_nlu(trainkit.load_model(in_bot / "models"), read_nlu_file("tests/heldout_nlu.yml"))
    assert report["accuracy"] == pytest.approx(benchmark["intent"]["accuracy"])
    assert f"Accuracy: {benchmark['intent']['accuracy']:.3f}" in result.output
    assert report["weighted avg"]["f1-score"] == pytest.approx(benchmark["intent"]["weighted_f1"])
    errors = json.loads((out / "intent_errors.json").read_text())
    assert len(errors) == round((1 - report["accuracy"]) * benchmark["examples"])
    for error in errors:
        assert set(error) == {"text", "intent", "intent_prediction"} and error["intent"] != error["intent_prediction"]["name"]
    for label, row in report.items():
        if isinstance(row, dict) and label not in ("macro avg", "weighted avg", "micro avg"):
            assert set(row) == {"precision", "recall", "f1-score", "support", "confused_with"}
    entities = json.loads((out / "DIETClassifier_report.json").read_text())
    micro = entities.get("micro avg") or {"precision": 1.0, "recall": 1.0}
    assert micro["precision"] == pytest.approx(benchmark["entities"]["precision"])
    assert micro["recall"] == pytest.approx(benchmark["entities"]["recall"])
    assert_png(out / "intent_confusion_matrix.png")
    assert_png(out / "intent_histogram.png")
    assert_png(out / "DIETClassifier_confusion_matrix.png")


def test_bare_test_runs_both_halves(in_bot):
    result = run("test", "--out", "all-results", "--no-plot")
    assert result.exit_code == 0, result.output
    names = {p.name for p in (in_bot / "all-results").iterdir()}
    assert names == {"story_report.json", "failed_test_stories.yml", "stories_with_warnings.yml",
                     "intent_report.json", "intent_errors.json",
                     "DIETClassifier_report.json", "DIETClassifier_errors.json"}
    assert "Evaluation results on CONVERSATION level:" in result.output
    assert "Intent evaluation (258 examples):" in result.output  # data/, as `rasa test` does


def test_e2e_scores_the_user_texts_too(in_bot):
    result = run("test", "core", "--e2e", "--out", "e2e-results", "--no-plot", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads((in_bot / "e2e-results" / "story_report.json").read_text())
    assert {"greet", "order_drink", "inform"} <= set(report)  # intents of the stories' user turns
    assert json.loads(result.output)["core"]["is_end_to_end_evaluation"] is True


def test_without_matplotlib_the_reports_come_and_the_cli_says_how_to_get_plots(in_bot, monkeypatch):
    monkeypatch.setattr("trainkit.evaluation.plots.plotting_available", lambda: False)
    result = run("test", "nlu", "--out", "plain-results")
    assert result.exit_code == 0, result.output
    assert (in_bot / "plain-results" / "intent_report.json").is_file()
    assert not list((in_bot / "plain-results").glob("*.png"))
    assert "pip install 'trainkit[plot]'" in result.output


def test_bad_input_is_one_clean_line(in_bot):
    missing = run("test", "core", "--stories", "no/such/stories.yml")
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert "no/such/stories.yml: path does not exist" in missing.output
    folds = run("test", "nlu", "--cross-validation", "--folds", "1")
    assert folds.exit_code == 1 and "--folds must be at least 2" in folds.output
