"""The engine's caching contract on the bundled example assistant with real components.

One warm cache is shared by the module; each test copies the assistant, changes one
thing, and checks exactly which nodes retrain.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
from pathlib import Path

import pytest

import trainkit
from trainkit.core.action_fingerprints import ActionFingerprint
from trainkit.data.events import ActionExecuted, UserUttered
from trainkit.data.nlu_reader import read_nlu_file
from trainkit.evaluation import evaluate_nlu

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffeebot"

# The example's components, with fewer epochs to keep the suite fast.
CONFIG = """\
recipe: default.v1
language: en
assistant_id: coffeebot-test
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: LogisticRegressionClassifier
  - name: RegexEntityExtractor
  - name: EntitySynonymMapper
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
  - name: TEDPolicy
    max_history: 5
    epochs: {epochs}
"""
NLU_NODES = {
    "run_WhitespaceTokenizer0", "train_CountVectorsFeaturizer1", "run_CountVectorsFeaturizer1",
    "train_CountVectorsFeaturizer2", "run_CountVectorsFeaturizer2", "train_LogisticRegressionClassifier3",
    "train_RegexEntityExtractor4", "train_EntitySynonymMapper5",
}
CORE_NODES = {"train_MemoizationPolicy0", "train_RulePolicy1", "train_TEDPolicy2"}


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    project = tmp_path_factory.mktemp("warm") / "bot"
    _copy(project)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINKIT_CACHE_DIR", str(cache))
        patch.chdir(project)
        assert trainkit.train("domain.yml", "config.yml", "data").code == 0
    return cache


def _copy(target: Path) -> None:
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("tests"))
    (target / "config.yml").write_text(CONFIG.format(epochs=20))


@pytest.fixture
def bot(tmp_path, monkeypatch, warm_cache):
    target = tmp_path / "bot"
    _copy(target)
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(warm_cache))
    monkeypatch.chdir(target)
    return target


class Trained:
    """Collects the nodes each training run trains, from the engine's log."""

    def __init__(self, caplog):
        self.caplog = caplog
        caplog.set_level(logging.INFO, logger="trainkit")

    def run(self, **kwargs):
        self.caplog.clear()
        result = trainkit.train("domain.yml", "config.yml", "data", **kwargs)
        messages = [r.getMessage() for r in self.caplog.records]
        trained = next((m.split(": ", 1)[1].split(", ") for m in messages if m.startswith("Trained ")), [])
        return result, set(trained), messages


@pytest.fixture
def trained(caplog):
    return Trained(caplog)


def test_no_change_trains_nothing_and_writes_nothing(bot, trained):
    first, nodes, messages = trained.run()  # this checkout's first build: packages from the cache
    assert nodes == set() and any("Nothing to train" in m for m in messages)
    assert Path(first.model).is_file()
    second, nodes, messages = trained.run()
    assert nodes == set() and second.model == first.model
    assert any("up to date; nothing was written" in m for m in messages)
    assert [p.name for p in (bot / "models").iterdir()] == [Path(first.model).name]
    assert trainkit.train("domain.yml", "config.yml", "data", dry_run=True).code == 0


def test_fixed_model_name_reuses_the_unchanged_archive(bot, trained):
    first, _, _ = trained.run(fixed_model_name="coffee")
    stamp = Path(first.model).stat().st_mtime_ns
    second, nodes, messages = trained.run(fixed_model_name="coffee")
    assert nodes == set() and Path(second.model).stat().st_mtime_ns == stamp
    assert any("up to date" in m for m in messages)


def test_added_nlu_example_retrains_only_nlu_nodes(bot, trained):
    nlu = bot / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace("      - hiya\n", "      - hiya\n      - howdy partner\n", 1))
    _, nodes, _ = trained.run()
    assert nodes and nodes <= NLU_NODES
    assert not nodes & CORE_NODES


def test_changed_response_text_trains_nothing_but_repackages(bot, trained):
    domain = bot / "domain.yml"
    text = domain.read_text()
    start = text.index("- text:", text.index("utter_greet:"))
    end = text.index("\n", start)
    domain.write_text(text[:start] + '- text: "Welcome to the shop, a brand new greeting!"' + text[end:])
    result, nodes, _ = trained.run()
    assert nodes == set()
    model = trainkit.load_model(result.model)
    greet = model.domain.responses["utter_greet"]
    assert any("brand new greeting" in variation.get("text", "") for variation in greet)


def test_changed_story_retrains_only_dialogue_nodes(bot, trained):
    stories = bot / "data" / "stories.yml"
    stories.write_text(stories.read_text() + """
  - story: greet then ask for the menu twice
    steps:
      - intent: greet
      - action: utter_greet
      - intent: goodbye
      - action: utter_goodbye
""")
    _, nodes, _ = trained.run()
    assert nodes and nodes <= CORE_NODES


def test_whitespace_comments_and_key_order_retrain_nothing(bot, trained):
    domain = bot / "domain.yml"
    domain.write_text("# reordered and commented\n\n" + domain.read_text().replace("\n", "\n\n", 3))
    nlu = bot / "data" / "nlu.yml"
    nlu.write_text("# a comment at the top\n" + nlu.read_text())
    _, nodes, _ = trained.run()
    assert nodes == set()


def test_config_a_to_b_to_a_third_run_trains_nothing(bot, trained):
    (bot / "config.yml").write_text(CONFIG.format(epochs=21))
    _, nodes, _ = trained.run()
    assert nodes == {"train_TEDPolicy2"}
    (bot / "config.yml").write_text(CONFIG.format(epochs=20))
    _, nodes, _ = trained.run()
    assert nodes == set()


def test_component_version_change_invalidates_exactly_that_component(bot, trained, monkeypatch):
    from trainkit.core.memoization import MemoizationPolicy

    trained.run()  # this checkout's first build: everything from the cache
    monkeypatch.setattr(MemoizationPolicy, "version", MemoizationPolicy.version + "-changed")
    dry = trainkit.train("domain.yml", "config.yml", "data", dry_run=True)
    stale = {n: r["reason"] for n, r in dry.dry_run_results.items() if r["status"] != "up to date"}
    assert set(stale) == {"train_MemoizationPolicy0", "package"}
    assert stale["train_MemoizationPolicy0"].startswith("component version changed")
    _, nodes, _ = trained.run()
    assert nodes == {"train_MemoizationPolicy0"}


def test_force_retrains_everything(bot, trained):
    assert trainkit.train("domain.yml", "config.yml", "data", dry_run=True, force_training=True).code == 8
    _, nodes, _ = trained.run(force_training=True)
    assert nodes == NLU_NODES | CORE_NODES


def test_parallel_build_is_byte_identical_to_sequential(bot, monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "cold1"))
    sequential = trainkit.train("domain.yml", "config.yml", "data", fixed_model_name="seq").model
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "cold2"))
    parallel = trainkit.train("domain.yml", "config.yml", "data", fixed_model_name="par", n_jobs=2).model

    def components(path):
        with tarfile.open(path) as archive:
            return {m.name: archive.extractfile(m).read() for m in archive.getmembers()
                    if m.isfile() and m.name.startswith("components/")}

    assert components(sequential) == components(parallel)


def test_loaded_model_parses_held_out_sentences_and_predicts_actions(bot):
    result = trainkit.train("domain.yml", "config.yml", "data")
    model = trainkit.load_model(result.model)
    report = evaluate_nlu(model, read_nlu_file(EXAMPLE / "tests" / "heldout_nlu.yml"))
    assert report["intent"]["accuracy"] >= 0.85, report
    prediction = model.predict_next_action([ActionExecuted("action_listen"), UserUttered(intent="greet")])
    assert prediction["action"] == "utter_greet"


def test_loaded_model_exposes_the_action_fingerprints_of_its_training_data(bot):
    model = trainkit.load_model(trainkit.train("domain.yml", "config.yml", "data").model)
    fingerprints = model.action_fingerprints
    assert fingerprints["order_form"] == ActionFingerprint(slots=(), active_loop=(None, "order_form"))
    assert all(isinstance(f, ActionFingerprint) for f in fingerprints.values())
