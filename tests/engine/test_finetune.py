"""Finetuning as a build: base outputs are inputs, compatibility is checked first."""

from __future__ import annotations

import tarfile

import pytest
from fake_components import NLU, train

from trainkit.engine.archive import read_metadata
from trainkit.engine.finetune import FinetuneError

CONFIG = """\
language: en
pipeline:
  - name: fake_components.FakeTokenizer
  - name: fake_components.FakeFeaturizer
  - name: fake_components.TunableClassifier
    epochs: {epochs}
    smoothing: {smoothing}
"""

MORE = NLU + """\
- intent: greet
  examples: |
    - good morning
"""


def _setup(project, epochs=10, smoothing=1):
    (project / "config.yml").write_text(CONFIG.format(epochs=epochs, smoothing=smoothing))


def _classifier(result):
    return next(n for n in result.dry_run_results if "TunableClassifier" in n)


def _artifact(model_path, node):
    with tarfile.open(model_path) as tar:
        member = tar.extractfile(f"components/{node}/model.json")
        import json

        return json.loads(member.read())


@pytest.fixture
def base(project):
    _setup(project)
    first = train()
    (project / "data" / "nlu.yml").write_text(MORE)
    return project / first.model


def test_a_finetuned_node_starts_from_the_base_and_trains_a_fraction_of_the_epochs(project, base):
    node = _classifier(train(dry_run=True))
    result = train(model_to_finetune=str(base), finetuning_epoch_fraction=0.25)
    assert result.model != str(base.relative_to(project))
    model = _artifact(project / result.model, node)
    assert model["history"] == [10, 3]  # ceil(10 * 0.25), on top of the base's 10 epochs
    assert model["counts"]["greet"]["good"] == 1
    assert model["counts"]["greet"]["hello"] == 2  # the base counted it, and the finetune again


def test_the_same_finetune_again_is_a_cache_hit_and_writes_nothing(project, base):
    first = train(model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    models = sorted((project / "models").iterdir())
    again = train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert all(r["status"] == "up to date" for r in again.dry_run_results.values())
    assert train(model_to_finetune=str(base), finetuning_epoch_fraction=0.5).model == first.model
    assert sorted((project / "models").iterdir()) == models
    other = train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.75)
    assert other.dry_run_results[_classifier(other)]["reason"] == "epoch fraction changed (0.5 -> 0.75)"


def test_a_finetune_never_stands_in_for_a_training_from_scratch(project, base):
    tuned = train(model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    scratch = train()
    node = _classifier(train(dry_run=True))
    assert scratch.model != tuned.model
    assert _artifact(project / scratch.model, node)["history"] == [10]
    assert read_metadata(project / scratch.model)["package_fingerprint"] != \
        read_metadata(project / tuned.model)["package_fingerprint"]


def test_no_path_means_the_newest_model_in_the_output_directory(project, base):
    result = train(model_to_finetune="", finetuning_epoch_fraction=0.5)
    assert _artifact(project / result.model, _classifier(train(dry_run=True)))["history"] == [10, 5]


def test_epoch_counts_may_change_but_nothing_else(project, base):
    _setup(project, epochs=40)
    result = train(model_to_finetune=str(base), finetuning_epoch_fraction=0.1)
    assert _artifact(project / result.model, _classifier(train(dry_run=True)))["history"] == [10, 4]
    _setup(project, smoothing=2)
    with pytest.raises(FinetuneError, match=r"pipeline or policies differ.*has other options: smoothing"):
        train(model_to_finetune=str(base))


def test_a_new_intent_is_refused_before_anything_trains(project, base):
    (project / "data" / "nlu.yml").write_text(MORE + "- intent: thanks\n  examples: |\n    - thank you\n")
    with pytest.raises(FinetuneError, match=r"labels differ.*nlu intents: new 'thanks'"):
        train(model_to_finetune=str(base))
    assert not (project / ".trainkit" / "nodes").exists() or not any(
        "TunableClassifier" in p.name for p in (project / ".trainkit" / "nodes").iterdir()
        if p.stat().st_mtime > base.stat().st_mtime
    )


def test_a_pipeline_with_another_component_is_refused(project, base):
    (project / "config.yml").write_text(CONFIG.replace("TunableClassifier", "FakeClassifier").format(epochs=1, smoothing=1)
                                        .replace("    smoothing: 1\n", ""))
    with pytest.raises(FinetuneError, match="differ from the model's"):
        train(model_to_finetune=str(base))


def test_missing_or_broken_base_models_are_clear_errors(project, base):
    with pytest.raises(FinetuneError, match="does not exist"):
        train(model_to_finetune=str(project / "nope.tar.gz"))
    empty = project / "empty"
    empty.mkdir()
    with pytest.raises(FinetuneError, match="no model archive"):
        train(model_to_finetune=str(empty))
    with pytest.raises(FinetuneError, match="epoch fraction must be a positive number"):
        train(model_to_finetune=str(base), finetuning_epoch_fraction=0)
    broken = project / "broken.tar.gz"
    broken.write_bytes(base.read_bytes()[:200])
    with pytest.raises(Exception, match="broken.tar.gz"):
        train(model_to_finetune=str(broken))


def _rewrite_metadata(source, target, change):
    import io
    import json

    with tarfile.open(source) as tar_in, tarfile.open(target, "w:gz") as tar_out:
        for member in tar_in.getmembers():
            data = tar_in.extractfile(member).read() if member.isfile() else None
            if member.name == "metadata.json":
                metadata = json.loads(data)
                change(metadata)
                data = json.dumps(metadata).encode()
                member.size = len(data)
            tar_out.addfile(member, io.BytesIO(data) if data is not None else None)


def test_another_model_format_or_no_label_sets_is_refused(project, base):
    other = project / "other.tar.gz"
    _rewrite_metadata(base, other, lambda m: m.update(format_version=99))
    with pytest.raises(FinetuneError, match=r"model format 99.*Train from scratch"):
        train(model_to_finetune=str(other))
    unlabelled = project / "unlabelled.tar.gz"
    _rewrite_metadata(base, unlabelled, lambda m: m.pop("labels"))
    with pytest.raises(FinetuneError, match="records no label sets"):
        train(model_to_finetune=str(unlabelled))


def _tampered_copy(base, target):
    """`base` with one byte added to the classifier's model file (its record no longer
    matches it)."""
    import io

    with tarfile.open(base) as tar_in, tarfile.open(target, "w:gz") as tar_out:
        for member in tar_in.getmembers():
            data = tar_in.extractfile(member).read() if member.isfile() else None
            if "TunableClassifier" in member.name and member.name.endswith("model.json"):
                data = data.replace(b'"history"', b'"history" ')
                member.size = len(data)
            tar_out.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def test_a_base_output_that_differs_from_its_record_is_refused(project, base):
    tampered = _tampered_copy(base, project / "tampered.tar.gz")
    with pytest.raises(FinetuneError, match="is damaged"):
        train(model_to_finetune=str(tampered))


def _count_extractions(monkeypatch):
    from trainkit.engine import finetune

    calls = []
    real = finetune.extract_model

    def counting(path, target, *args, **kwargs):
        calls.append(path)
        return real(path, target, *args, **kwargs)

    monkeypatch.setattr(finetune, "extract_model", counting)
    return calls


def test_replanning_an_unchanged_base_does_not_extract_it_again(project, base, monkeypatch):
    calls = _count_extractions(monkeypatch)
    first = train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert len(calls) == 1
    again = train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert len(calls) == 1  # verified before: the same path, size, mtime and content
    def fingerprints(result):
        return {name: r["fingerprint"] for name, r in result.dry_run_results.items()}

    assert fingerprints(again) == fingerprints(first)  # the same finetune is planned
    tuned = train(model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert len(calls) == 1
    assert _artifact(project / tuned.model, _classifier(again))["history"] == [10, 5]


def test_a_changed_base_archive_is_verified_again(project, base, monkeypatch):
    import os

    calls = _count_extractions(monkeypatch)
    train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert len(calls) == 1
    # the same bytes with another mtime: read again, found to be the same, not extracted
    stat = base.stat()
    os.utime(base, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert len(calls) == 1
    # other bytes under the same name, size and mtime: extracted and checked again
    tampered = _tampered_copy(base, project / "tampered.tar.gz")
    stat = base.stat()
    base.write_bytes(tampered.read_bytes())
    os.utime(base, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(FinetuneError, match="is damaged"):
        train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert len(calls) == 2


def test_a_base_whose_outputs_left_the_cache_is_extracted_again(project, base, monkeypatch):
    import shutil

    calls = _count_extractions(monkeypatch)
    train(dry_run=True, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    shutil.rmtree(project / ".trainkit" / "cache")
    result = train(model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    assert len(calls) == 2
    assert _artifact(project / result.model, _classifier(train(dry_run=True)))["history"] == [10, 5]
