"""A node's fingerprint covers the code it runs: editing a component's source makes
exactly its nodes stale, and early cutoff still stops at identical outputs."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import textwrap
from pathlib import Path

import fake_components
import pytest
from fake_components import NLU

import trainkit
from trainkit.engine import code_identity as ci
from trainkit.engine.component import get_component
from trainkit.errors import TrainkitError

sys.modules.setdefault("fake_components", fake_components)

TOKENIZER = '''\
from trainkit.data.training_data import TrainingData
from trainkit.engine.component import TOKENIZER, Component, register

from {package}.helpers import normalise


@register
class EditableTokenizer(Component):
    name = "EditableTokenizer"
    roles = frozenset({{TOKENIZER}})

    def process_training_data(self, inputs, out):
        data = TrainingData.from_dict(inputs["training_data"].json("training_data.json"))
        out.json("tokens.json", [normalise(m.text).split() for m in data.training_examples if m.text])
'''

HELPERS = '''\
def normalise(text):
    return text.{method}()
'''

CLASSIFIER = '''\
from trainkit.engine.component import INTENT_CLASSIFIER, Component, register


@register
class EditableClassifier(Component):
    name = "EditableClassifier"
    roles = frozenset({{INTENT_CLASSIFIER}})
    trainable = True

    def train(self, inputs, out):
        features = inputs["features"][0].json("features.json")
        out.json("model.json", {{"rows": len(features), "scale": {scale}}})
'''

CONFIG = """\
language: en
pipeline:
  - name: {package}.tokenizer.EditableTokenizer
  - name: fake_components.FakeFeaturizer
  - name: {package}.classifier.EditableClassifier
"""


class Package:
    """A small custom-component package on disk whose sources a test edits."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.dir = root / name
        self.dir.mkdir()
        (self.dir / "__init__.py").write_text("")
        self.write(method="lower", scale=1)

    def write(self, method: str, scale: int, tokenizer_comment: str = "") -> None:
        (self.dir / "helpers.py").write_text(HELPERS.format(method=method))
        (self.dir / "tokenizer.py").write_text(tokenizer_comment + TOKENIZER.format(package=self.name))
        (self.dir / "classifier.py").write_text(CLASSIFIER.format(scale=scale))
        # Python trusts a .pyc whose source has the same size and mtime second; an edit
        # within the same second as the last import must not be read from the old one.
        shutil.rmtree(self.dir / "__pycache__", ignore_errors=True)

    def reload(self) -> None:
        """What a new process would import: the modules as they are on disk now."""
        importlib.invalidate_caches()
        for module in ("helpers", "tokenizer", "classifier"):
            name = f"{self.name}.{module}"
            if name in sys.modules:
                importlib.reload(sys.modules[name])


@pytest.fixture
def package(tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    name = f"editable_{request.node.name[5:25]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = Package(tmp_path, name)
    (tmp_path / "config.yml").write_text(CONFIG.format(package=name))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    yield pkg
    for module in list(sys.modules):
        if module.startswith(name):
            del sys.modules[module]


def stale(**kwargs) -> dict[str, str]:
    results = trainkit.train(None, "config.yml", "data", dry_run=True, **kwargs).dry_run_results
    return {name: r["reason"] for name, r in results.items() if r["status"] != "up to date"}


def trained(caplog) -> list[str]:
    caplog.clear()
    trainkit.train(None, "config.yml", "data")
    line = next((r.getMessage() for r in caplog.records if r.getMessage().startswith("Trained ")), "")
    return line.split(": ", 1)[1].split(", ") if line else []


def test_editing_a_component_makes_exactly_its_node_stale(package, caplog):
    caplog.set_level("INFO", logger="trainkit")
    trainkit.train(None, "config.yml", "data")
    assert stale() == {}
    package.write(method="lower", scale=2)
    package.reload()
    assert stale() == {"train_EditableClassifier2": "code of EditableClassifier changed",
                       "package": "waits for: train_EditableClassifier2"}
    assert trained(caplog) == ["train_EditableClassifier2"]
    assert stale() == {}


def test_a_code_change_with_identical_output_stops_at_that_node(package, caplog):
    caplog.set_level("INFO", logger="trainkit")
    trainkit.train(None, "config.yml", "data")
    package.write(method="lower", scale=1, tokenizer_comment="# tokens, documented differently\n")
    package.reload()
    reasons = stale()
    assert reasons["run_EditableTokenizer0"] == "code of EditableTokenizer changed"
    assert trained(caplog) == ["run_EditableTokenizer0"]  # same tokens: early cutoff


def test_a_change_in_a_module_the_component_imports_counts(package, caplog):
    caplog.set_level("INFO", logger="trainkit")
    trainkit.train(None, "config.yml", "data")
    package.write(method="upper", scale=1)
    package.reload()
    assert stale()["run_EditableTokenizer0"] == "code of EditableTokenizer changed"
    # Upper-cased tokens are different features: everything after the tokenizer retrains.
    assert set(trained(caplog)) == {"run_EditableTokenizer0", "train_FakeFeaturizer1",
                                    "run_FakeFeaturizer1", "train_EditableClassifier2"}


def test_a_worker_running_other_code_than_was_planned_refuses(package):
    trainkit.train(None, "config.yml", "data")
    from trainkit.engine.graph import Node
    from trainkit.engine.runner import execute_node
    from trainkit.training import prepare

    plan = prepare(None, "config.yml", "data")
    node = Node.from_dict(next(n for n in plan.spec.nodes if n["name"] == "train_EditableClassifier2"))
    with pytest.raises(TrainkitError, match="changed while the build ran"):
        execute_node(plan.spec, node, {}, "0" * 32, {}, code="not-the-code-on-disk")


def test_built_in_components_have_disjoint_closures():
    diet = ci.component_code(get_component("DIETClassifier"))
    counts = ci.component_code(get_component("CountVectorsFeaturizer"))
    assert "trainkit.nlu.diet" in diet.modules and "trainkit.nlu.count_vectors" not in diet.modules
    assert "trainkit.nlu.count_vectors" in counts.modules and "trainkit.nlu.diet" not in counts.modules
    assert "trainkit.ml.layers" in diet.modules  # what DIET imports is part of DIET's code
    assert diet.digest != counts.digest


def test_third_party_versions_are_part_of_the_identity(monkeypatch):
    before = ci.code_identity("trainkit.ml.layers").digest
    monkeypatch.setattr(ci, "_VERSION_MEMO", {"numpy": "0.0-other"})
    assert ci.code_identity("trainkit.ml.layers").digest != before


def test_imports_are_found_without_importing(tmp_path, monkeypatch):
    package = tmp_path / "scanme"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "deep.py").write_text("X = 1\n")
    (package / "other.py").write_text("Y = 2\n")
    (package / "main.py").write_text(textwrap.dedent("""\
        import os
        from . import other
        from .sub import deep as renamed

        def lazy():
            from scanme.sub import (
                deep,
            )
            raise SystemExit("importing this module would fail")
        raise SystemExit("never imported")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    identity = ci.code_identity("scanme.main")
    assert set(identity.modules) == {"scanme", "scanme.main", "scanme.other", "scanme.sub", "scanme.sub.deep"}
    assert "scanme.main" not in sys.modules
    (package / "sub" / "deep.py").write_text("X = 2\n")
    assert ci.code_identity("scanme.main").digest != identity.digest


def test_an_installed_release_has_a_code_identity_too(tmp_path):
    """A wheel installed into site-packages (not this editable checkout) hashes its own
    sources: editing its copy of the count-vector module changes exactly that identity."""
    import shutil
    import subprocess

    checkout = Path(__file__).resolve().parents[2]
    source = tmp_path / "source"  # a copy, so building leaves nothing in the checkout
    for name in ("trainkit", "recipes", "examples"):
        shutil.copytree(checkout / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(checkout / name, source / name)
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("trainkit-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = (
        "import json, trainkit\n"
        "from trainkit.engine.code_identity import component_code\n"
        "from trainkit.engine.component import get_component\n"
        "print(json.dumps([trainkit.__file__] + [component_code(get_component(n)).digest\n"
        "                  for n in ('CountVectorsFeaturizer', 'DIETClassifier')]))\n"
    )

    def identities():
        import json

        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    location, counts, diet = identities()
    assert location.startswith(str(target))
    with open(target / "trainkit" / "nlu" / "count_vectors.py", "a") as handle:
        handle.write("\n# a local patch\n")
    _, new_counts, new_diet = identities()
    assert new_counts != counts and new_diet == diet
