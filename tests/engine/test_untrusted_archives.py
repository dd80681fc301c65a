"""Loading model archives from strangers: no escapes, no imports, bounded, clean errors.

Every case starts from a real trained model (or a hand-built archive) and changes one
thing an attacker or a damaged download could change; each must end in one
`TrainkitError` that names the archive member, never a traceback or a silently
half-loaded model.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trainkit
from trainkit.engine.archive import (
    ArchiveLimits,
    extract_archive,
    read_metadata,
    write_archive,
)
from trainkit.errors import TrainkitError
from trainkit.model import load_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coffeebot"

# Every trainable built-in component that the example's data can train, few epochs.
CONFIG = """\
recipe: default.v1
language: en
assistant_id: hostile-archives
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 2
  - name: LogisticRegressionClassifier
  - name: KeywordIntentClassifier
  - name: CRFEntityExtractor
    max_iterations: 3
  - name: RegexEntityExtractor
  - name: EntitySynonymMapper
  - name: FallbackClassifier
policies:
  - name: MemoizationPolicy
  - name: AugmentedMemoizationPolicy
  - name: RulePolicy
  - name: TEDPolicy
    max_history: 3
    epochs: 2
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("hostile") / "bot"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("tests"))
    (project / "config.yml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINKIT_CACHE_DIR", str(project / ".cache"))
        patch.chdir(project)
        result = trainkit.train("domain.yml", "config.yml", "data", fixed_model_name="model")
    assert result.code == 0
    return project / result.model


def _members(archive: Path) -> dict[str, bytes | None]:
    """Archive contents by name (None for directories), in archive order."""
    contents: dict[str, bytes | None] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            contents[member.name] = None if handle is None else handle.read()
    return contents


def _write(path: Path, contents: dict[str, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _rewrite(source: Path, target: Path, **changes: bytes | None) -> Path:
    """A copy of `source` with members replaced (bytes) or removed (None)."""
    contents = _members(source)
    for name, data in changes.items():
        name = name.replace("__", "/")
        if data is None:
            del contents[name]
        else:
            contents[name] = data
    return _write(target, contents)


def _metadata(archive: Path) -> dict:
    data = _members(archive)["metadata.json"]
    assert data is not None
    return json.loads(data)


def _with_metadata(source: Path, target: Path, metadata: object) -> Path:
    return _rewrite(source, target, **{"metadata.json": json.dumps(metadata).encode()})


def _node_files(archive: Path) -> list[str]:
    return sorted(
        name for name, data in _members(archive).items()
        if data is not None and name.startswith("components/")
    )


def _trainable_items(metadata: dict) -> list[dict]:
    schema = metadata["predict_schema"]
    return [item for item in schema["pipeline"] + schema["policies"] if item["node"]]


# ----------------------------------------------------------------- the happy path


def test_the_trained_model_loads_and_parses(trained):
    model = load_model(trained)
    assert model.parse("I'd like a latte")["intent"]["name"]


# ----------------------------------------------------------------- node names


@pytest.mark.parametrize("node", ["/etc", "../outside", "components/../../x", "a/b", ""])
def test_node_names_outside_the_archive_are_refused(trained, tmp_path, node):
    metadata = _metadata(trained)
    _trainable_items(metadata)[0]["node"] = node
    archive = _with_metadata(trained, tmp_path / "m.tar.gz", metadata)
    with pytest.raises(TrainkitError, match=r"metadata\.json.*node"):
        load_model(archive)


def test_a_node_pointing_at_an_absolute_directory_does_not_read_it(trained, tmp_path):
    metadata = _metadata(trained)
    item = next(i for i in _trainable_items(metadata) if i["component"] == "KeywordIntentClassifier")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keywords.json").write_text(json.dumps({"keywords": [["zebra", "from_outside"]]}))
    item["node"] = str(outside)
    archive = _with_metadata(trained, tmp_path / "m.tar.gz", metadata)
    with pytest.raises(TrainkitError, match="not a directory of the archive"):
        load_model(archive)


def test_a_node_without_files_in_the_archive_is_refused(trained, tmp_path):
    metadata = _metadata(trained)
    _trainable_items(metadata)[0]["node"] = "train_Ghost9"
    archive = _with_metadata(trained, tmp_path / "m.tar.gz", metadata)
    with pytest.raises(TrainkitError, match="train_Ghost9"):
        load_model(archive)


# ----------------------------------------------------------------- imports


CUSTOM_MODULE = '''
from trainkit.engine.component import Component
IMPORTED = True

class Echo(Component):
    name = "HostileEcho"

    def process(self, batch):
        pass
'''


@pytest.fixture
def custom_package(tmp_path, monkeypatch):
    package = tmp_path / "pkgs" / "hostile_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(CUSTOM_MODULE)
    monkeypatch.syspath_prepend(str(package.parent))
    yield "hostile_pkg"
    sys.modules.pop("hostile_pkg", None)


def _custom_archive(tmp_path: Path, component: str) -> Path:
    metadata = {
        "format_version": 1, "trainkit_version": "0.1.0", "training_type": 1, "model_type": "nlu",
        "predict_schema": {
            "pipeline": [{"name": "Echo0", "component": component, "config": {}, "node": None}],
            "policies": [],
        },
        "domain": {},
    }
    return write_archive(tmp_path / "custom.tar.gz", metadata, {})


def test_a_component_outside_trainkit_is_not_imported(tmp_path, custom_package):
    archive = _custom_archive(tmp_path, "hostile_pkg.Echo")
    with pytest.raises(TrainkitError, match=r"hostile_pkg\.Echo.*allow_custom"):
        load_model(archive)
    assert "hostile_pkg" not in sys.modules


def test_a_standard_library_module_is_not_imported(tmp_path):
    sys.modules.pop("antigravity", None)
    archive = _custom_archive(tmp_path, "antigravity.fly")
    with pytest.raises(TrainkitError, match="not built into trainkit"):
        load_model(archive)
    assert "antigravity" not in sys.modules


def test_an_allowed_package_may_provide_components(tmp_path, custom_package):
    archive = _custom_archive(tmp_path, "hostile_pkg.Echo")
    model = load_model(archive, allow_custom=["hostile_pkg"])
    assert type(model.pipeline[0]).__name__ == "Echo"


def test_allowing_one_package_does_not_allow_its_prefix_twins(tmp_path, custom_package):
    archive = _custom_archive(tmp_path, "hostile_pkg.Echo")
    with pytest.raises(TrainkitError, match="not built into trainkit"):
        load_model(archive, allow_custom=["hostile"])
    assert "hostile_pkg" not in sys.modules


def test_allowed_packages_can_come_from_the_environment(tmp_path, custom_package, monkeypatch):
    monkeypatch.setenv("TRAINKIT_ALLOW_CUSTOM_COMPONENTS", "other, hostile_pkg")
    archive = _custom_archive(tmp_path, "hostile_pkg.Echo")
    assert load_model(archive).pipeline


# ----------------------------------------------------------------- limits


def test_default_limits_are_generous():
    limits = ArchiveLimits()
    assert limits.max_members >= 10_000
    assert limits.max_member_size >= 512 * 1024**2
    assert limits.max_total_size >= limits.max_member_size
    assert limits.max_metadata_size >= 16 * 1024**2


def _many_members(path: Path, count: int, size: int = 1) -> Path:
    contents: dict[str, bytes | None] = {"metadata.json": b"{}", "components": None}
    for i in range(count):
        contents[f"components/n/f{i}"] = b"x" * size
    return _write(path, contents)


def test_too_many_members_are_refused_before_extraction(tmp_path):
    archive = _many_members(tmp_path / "many.tar.gz", 60)
    target = tmp_path / "out"
    with pytest.raises(TrainkitError, match="more than 50 members"):
        extract_archive(archive, target, ArchiveLimits(max_members=50))
    assert not any(target.iterdir())


def test_a_member_too_large_is_refused_before_extraction(tmp_path):
    archive = _write(tmp_path / "big.tar.gz", {"metadata.json": b"{}", "components/n/w.npz": b"\0" * 5000})
    target = tmp_path / "out"
    with pytest.raises(TrainkitError, match=r"components/n/w\.npz.*5000 bytes.*limit of 4096"):
        extract_archive(archive, target, ArchiveLimits(max_member_size=4096))
    assert not any(target.iterdir())


def test_a_total_size_too_large_is_refused_before_extraction(tmp_path):
    archive = _many_members(tmp_path / "total.tar.gz", 5, size=400)
    target = tmp_path / "out"
    with pytest.raises(TrainkitError, match="more than 1000 bytes in total"):
        extract_archive(archive, target, ArchiveLimits(max_total_size=1000))
    assert not any(target.iterdir())


def test_a_huge_metadata_file_is_refused_without_reading_it(tmp_path):
    metadata = b'{"pad": "' + b" " * 3000 + b'"}'
    archive = _write(tmp_path / "meta.tar.gz", {"metadata.json": metadata})
    limits = ArchiveLimits(max_metadata_size=2048)
    with pytest.raises(TrainkitError, match=r"metadata\.json.*limit of 2048"):
        read_metadata(archive, limits)
    with pytest.raises(TrainkitError, match=r"metadata\.json.*limit of 2048"):
        load_model(archive, limits=limits)


def test_limits_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_ARCHIVE_MAX_MEMBERS", "10")
    archive = _many_members(tmp_path / "many.tar.gz", 20)
    with pytest.raises(TrainkitError, match="more than 10 members"):
        load_model(archive)


def test_an_unreadable_limit_in_the_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRAINKIT_ARCHIVE_MAX_TOTAL_SIZE", "lots")
    with pytest.raises(TrainkitError, match="TRAINKIT_ARCHIVE_MAX_TOTAL_SIZE"):
        ArchiveLimits.from_environment()


# ----------------------------------------------------------------- component files


def _component_files(archive: Path) -> list[str]:
    """Files of the nodes a loaded model reads (the domain travels in metadata.json)."""
    nodes = {item["node"] for item in _trainable_items(_metadata(archive))}
    return [name for name in _node_files(archive) if name.split("/")[1] in nodes]


def test_every_component_file_is_required(trained, tmp_path):
    files = _component_files(trained)
    assert len(files) >= 10
    for index, name in enumerate(files):
        archive = _rewrite(trained, tmp_path / f"m{index}.tar.gz", **{name: None})
        with pytest.raises(TrainkitError) as caught:
            load_model(archive)
        assert name in str(caught.value), name


def test_a_trainable_component_without_a_node_is_refused(trained, tmp_path):
    metadata = _metadata(trained)
    item = _trainable_items(metadata)[0]
    item["node"] = None
    archive = _with_metadata(trained, tmp_path / "m.tar.gz", metadata)
    with pytest.raises(TrainkitError, match=f"{item['name']}.*no files"):
        load_model(archive)


# ----------------------------------------------------------------- malformed members


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _first(trained: Path, suffix: str) -> str:
    return next(name for name in _node_files(trained) if name.endswith(suffix))


@pytest.mark.parametrize(
    ("suffix", "data", "problem"),
    [
        ("weights.npz", b"not a zip file at all", "not a valid .npz"),
        ("weights.npz", _npz(coef=np.array([{"a": 1}, None], dtype=object)), "not a valid .npz"),
        ("weights.npz", b"PK\x03\x04" + b"\0" * 40, "not a valid .npz"),
        (".json", b"{not json", "not valid JSON"),
        (".json", b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (".json", b"\xff\xfe\x00garbage", "not valid JSON"),
        (".json", b"[1, 2, 3]", "unexpected content"),
        (".json", b"{}", "unexpected content"),
    ],
)
def test_malformed_component_files_name_the_member(trained, tmp_path, suffix, data, problem):
    for name in [n for n in _component_files(trained) if n.endswith(suffix)]:
        archive = _rewrite(trained, tmp_path / "m.tar.gz", **{name: data})
        with pytest.raises(TrainkitError) as caught:
            load_model(archive)
        message = str(caught.value)
        assert name in message and problem in message, (name, message)


def test_weights_of_the_wrong_shape_are_refused(trained, tmp_path):
    name = _first(trained, "weights.npz")
    with np.load(io.BytesIO(_members(trained)[name]), allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    key = sorted(arrays)[0]
    arrays[key] = np.zeros((3, 3, 3, 3), np.float32)
    archive = _rewrite(trained, tmp_path / "m.tar.gz", **{name: _npz(**arrays)})
    with pytest.raises(TrainkitError, match=name):
        load_model(archive)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{broken", "not valid JSON"),
        (b"\xff\xfe\xfd", "not valid JSON"),
        (b'{"format_version": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"format_version": 1, "training_type": 3}', "predict_schema"),
        (b'{"format_version": 1, "training_type": 1, "predict_schema": []}', "predict_schema"),
        (b'{"format_version": 1, "training_type": 1, "predict_schema": {"pipeline": {}}}', "pipeline"),
        (b'{"format_version": 1, "training_type": "one", "predict_schema": {"pipeline": [], "policies": []}}',
         "training_type"),
        (b'{"format_version": 1, "training_type": 1, "predict_schema": {"pipeline": [7], "policies": []}}',
         "pipeline item 1"),
        (b'{"format_version": 1, "training_type": 1, "domain": [], "predict_schema": {"pipeline": [], "policies": []}}',
         "domain"),
    ],
)
def test_malformed_metadata_names_the_member(tmp_path, data, problem):
    archive = _write(tmp_path / "m.tar.gz", {"metadata.json": data})
    with pytest.raises(TrainkitError) as caught:
        load_model(archive)
    message = str(caught.value)
    assert "metadata.json" in message and problem in message, message


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("component", 5, "'component' must be a string"),
        ("config", "epochs=3", "'config' must be a mapping"),
        ("node", 3, "'node' must be a string or null"),
        ("name", None, "'name' must be a string"),
    ],
)
def test_schema_items_of_the_wrong_type_name_the_item(trained, tmp_path, key, value, problem):
    metadata = _metadata(trained)
    metadata["predict_schema"]["pipeline"][1][key] = value
    archive = _with_metadata(trained, tmp_path / "m.tar.gz", metadata)
    with pytest.raises(TrainkitError, match=rf"metadata\.json.*pipeline item 2.*{problem}"):
        load_model(archive)


def test_stored_component_config_of_the_wrong_type_is_a_clean_error(trained, tmp_path):
    metadata = _metadata(trained)
    item = next(i for i in metadata["predict_schema"]["pipeline"] if i["component"] == "FallbackClassifier")
    item["config"]["threshold"] = [1]
    archive = _with_metadata(trained, tmp_path / "m.tar.gz", metadata)
    with pytest.raises(TrainkitError, match="threshold"):
        load_model(archive)


@pytest.mark.parametrize("data", [b"", b"\x1f\x8b\x08\x00garbage", b"plain text, not an archive"])
def test_an_archive_that_is_not_a_tarball_is_one_error(tmp_path, data):
    archive = tmp_path / "m.tar.gz"
    archive.write_bytes(data)
    with pytest.raises(TrainkitError, match=str(archive)):
        load_model(archive)


def test_a_truncated_archive_is_one_error(trained, tmp_path):
    archive = tmp_path / "m.tar.gz"
    archive.write_bytes(trained.read_bytes()[: trained.stat().st_size // 2])
    with pytest.raises(TrainkitError, match=str(archive)):
        load_model(archive)


def test_an_npz_that_expands_past_the_member_limit_is_refused(trained, tmp_path, monkeypatch):
    name = _first(trained, "weights.npz")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, coef=np.zeros(40 * 1024**2 // 8))
    assert len(buffer.getvalue()) < 1024**2
    archive = _rewrite(trained, tmp_path / "m.tar.gz", **{name: buffer.getvalue()})
    monkeypatch.setenv("TRAINKIT_ARCHIVE_MAX_MEMBER_SIZE", "10M")
    with pytest.raises(TrainkitError, match=rf"{name} expands to \d+ bytes, over the limit"):
        load_model(archive)


# ----------------------------------------------------------------- fuzzing the metadata

_fuzz_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10,
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            found += _paths(child, (*prefix, index))
    return found


@pytest.fixture(scope="module")
def metadata_paths(trained):
    metadata = _metadata(trained)
    return metadata, [p for p in _paths(metadata) if p and p[0] not in ("train_schema", "fingerprints", "trained_at")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_the_metadata_loads_or_is_a_trainkit_error(trained, metadata_paths, tmp_path, data):
    original, paths = metadata_paths
    metadata = json.loads(json.dumps(original))
    path = data.draw(st.sampled_from(paths))
    target = metadata
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(_fuzz_values)
    archive = _with_metadata(trained, tmp_path / "fuzz.tar.gz", metadata)
    try:
        model = load_model(archive)
    except TrainkitError:
        return
    model.parse("a large latte please")
    if model.policies:
        model.predict_next_action([])
