"""Config option values are checked from each component's declaration before training.

Wrong types, absurd sizes and nonsense values each stop the build with one ConfigError
naming config.yml, the line of the component and the option, before any node runs.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

import trainkit
from trainkit.data.config import load_config
from trainkit.engine.recipe import compile_recipe
from trainkit.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coffeebot"

PIPELINE_LINE = 7  # line of the component under test in the config below
POLICY_LINE = 9


def _config(tmp_path: Path, component: str, options: str, policy: bool) -> Path:
    item = f"  - name: {component}\n" + "".join(f"    {line}\n" for line in options.splitlines())
    pipeline = "  - name: WhitespaceTokenizer\n  - name: CountVectorsFeaturizer\n  - name: KeywordIntentClassifier\n"
    text = "recipe: default.v1\nlanguage: en\npipeline:\n" + pipeline
    if policy:
        text += "  - name: DIETClassifier\npolicies:\n" + item
    else:
        text += item + "policies:\n  - name: RulePolicy\n"
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


CASES = [
    # wrong types
    ("DIETClassifier", "epochs: ten", "epochs", "whole number"),
    ("DIETClassifier", "epochs: [1]", "epochs", "whole number"),
    ("DIETClassifier", "learning_rate: fast", "learning_rate", "number"),
    ("DIETClassifier", "random_seed: abc", "random_seed", "whole number"),
    ("DIETClassifier", "hidden_layers_sizes: {text: [a]}", "hidden_layers_sizes", "whole number"),
    ("DIETClassifier", "hidden_layers_sizes: 12", "hidden_layers_sizes", "mapping"),
    ("ResponseSelector", "epochs: '10'", "epochs", "whole number"),
    ("TEDPolicy", "max_history: '5'", "max_history", "whole number"),
    ("MemoizationPolicy", "max_history: [5]", "max_history", "whole number"),
    ("TEDPolicy", "learning_rate: [0.1]", "learning_rate", "number"),
    ("TEDPolicy", "random_seed: 1.5", "random_seed", "whole number"),
    ("LogisticRegressionClassifier", "max_iter: many", "max_iter", "whole number"),
    ("CRFEntityExtractor", "L1_c: high", "L1_c", "number"),
    ("FallbackClassifier", "threshold: [1]", "threshold", "number"),
    ("FallbackClassifier", "ambiguity_threshold: '0.1'", "ambiguity_threshold", "number"),
    ("CountVectorsFeaturizer", "lowercase: 'yes'", "lowercase", "true or false"),
    # absurd sizes
    ("DIETClassifier", "epochs: 1e12", "epochs", "whole number"),
    ("DIETClassifier", "epochs: 1000000000000", "epochs", "between"),
    ("DIETClassifier", "hidden_layers_sizes: {text: [100000000]}", "hidden_layers_sizes", "between"),
    ("DIETClassifier", "embedding_dimension: 1e8", "embedding_dimension", "whole number"),
    ("DIETClassifier", "embedding_dimension: 100000000", "embedding_dimension", "between"),
    ("TEDPolicy", "max_history: 1e9", "max_history", "whole number"),
    ("TEDPolicy", "max_history: 1000000000", "max_history", "between"),
    ("TEDPolicy", "hidden_layers_sizes: {dialogue: [100000000]}", "hidden_layers_sizes", "between"),
    # nonsense values
    ("DIETClassifier", "batch_size: 0", "batch_size", "between"),
    ("DIETClassifier", "batch_size: -5", "batch_size", "between"),
    ("DIETClassifier", "batch_size: [64, -1]", "batch_size", "between"),
    ("TEDPolicy", "batch_size: 0", "batch_size", "between"),
    ("DIETClassifier", "learning_rate: -1", "learning_rate", "(0"),
    ("TEDPolicy", "learning_rate: 0", "learning_rate", "(0"),
    ("DIETClassifier", "drop_rate: 2.0", "drop_rate", "[0"),
    ("DIETClassifier", "learning_rate: " + "9" * 400, "learning_rate", "(0"),
    ("DIETClassifier", "learning_rate: .inf", "learning_rate", "number"),
    ("TEDPolicy", "drop_rate_dialogue: -0.5", "drop_rate_dialogue", "[0"),
    ("DIETClassifier", "ranking_length: -3", "ranking_length", "between"),
    ("LogisticRegressionClassifier", "ranking_length: -3", "ranking_length", "between"),
    ("TEDPolicy", "max_history: -1", "max_history", "between"),
    ("MemoizationPolicy", "max_history: -1", "max_history", "between"),
    ("RulePolicy", "core_fallback_threshold: 1.5", "core_fallback_threshold", "[0"),
    ("FallbackClassifier", "threshold: -0.1", "threshold", "[0"),
    ("CRFEntityExtractor", "max_iterations: 0", "max_iterations", "between"),
    ("DIETClassifier", "batch_strategy: random", "batch_strategy", "one of"),
    ("TEDPolicy", "batch_strategy: random", "batch_strategy", "one of"),
]


@pytest.mark.parametrize(("component", "options", "option", "problem"), CASES)
def test_bad_option_values_name_the_file_line_and_option(tmp_path, component, options, option, problem):
    policy = component.endswith("Policy")
    path = _config(tmp_path, component, options, policy)
    config = load_config(path)
    with pytest.raises(ConfigError) as caught:
        compile_recipe(config, use_nlu=True, use_core=True)
    error = caught.value
    assert error.problem.path == str(path)
    assert error.problem.line == (POLICY_LINE if policy else PIPELINE_LINE)
    assert f"'{option}'" in error.problem.message and problem in error.problem.message, error.problem.message


def test_values_inside_the_bounds_compile(tmp_path):
    path = _config(tmp_path, "DIETClassifier", "epochs: 0\nbatch_size: [1, 8]\nlearning_rate: 0.5\n"
                   "drop_rate: 0.0\nranking_length: 0\nrandom_seed: 7", policy=False)
    assert compile_recipe(load_config(path), use_nlu=True, use_core=True).nodes


def test_sizes_that_cannot_fit_in_memory_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_MAX_MODEL_MEMORY", "1G")
    path = _config(tmp_path, "DIETClassifier", "hidden_layers_sizes: {text: [16000, 16000]}", policy=False)
    with pytest.raises(ConfigError, match=r"need about \d+\.\d GB of memory") as caught:
        compile_recipe(load_config(path), use_nlu=True, use_core=True)
    assert caught.value.problem.line == PIPELINE_LINE


def test_ted_memory_estimate_counts_the_history_window(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_MAX_MODEL_MEMORY", "64M")
    path = _config(tmp_path, "TEDPolicy", "max_history: 500\nhidden_layers_sizes: {dialogue: [4096]}", policy=True)
    with pytest.raises(ConfigError, match="memory"):
        compile_recipe(load_config(path), use_nlu=True, use_core=True)


def test_a_bad_value_stops_training_before_any_node_runs(tmp_path, monkeypatch):
    project = tmp_path / "bot"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("tests"))
    (project / "config.yml").write_text(
        (EXAMPLE / "config.yml").read_text().replace("    epochs: 100\n  - name: EntitySynonymMapper",
                                                     "    epochs: -100\n  - name: EntitySynonymMapper")
    )
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"config\.yml:\d+: .*'epochs' must be between 0"):
        trainkit.train("domain.yml", "config.yml", "data")
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "cache" / "objects").exists() or not any((tmp_path / "cache" / "objects").iterdir())
