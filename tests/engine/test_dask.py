"""Training on a Dask cluster (LocalCluster with worker processes on 127.0.0.1): workers
share no disk, cache or working directory with the client, the model is byte-identical
to a local build, and a worker lost mid-node means the node reruns elsewhere."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from fake_components import NLU

import trainkit

distributed = pytest.importorskip("distributed")

HERE = Path(__file__).resolve().parent
CONFIG = """\
language: en
pipeline:
  - name: fake_components.FakeTokenizer
  - name: fake_components.FakeFeaturizer
  - name: fake_components.FakeFeaturizer
    lowercase: false
  - name: {classifier}
"""
PRELOAD = """\
import os


def dask_setup(worker):
    # A worker that shares nothing with the client: another working directory and a
    # cache location it cannot write.
    os.chdir({workdir!r})
    os.environ["TRAINKIT_CACHE_DIR"] = "/nonexistent/trainkit-cache"
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("worker-cwd")
    preload = tmp_path_factory.mktemp("preload") / "isolate_worker.py"
    preload.write_text(PRELOAD.format(workdir=str(workdir)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None, preload=[str(preload)]) as local:
            yield local


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "client-cache"))
    (tmp_path / "config.yml").write_text(CONFIG.format(classifier="fake_components.FakeClassifier"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    return tmp_path


def components(path: str) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()
                if m.isfile() and m.name.startswith("components/")}


def test_a_cluster_build_equals_a_local_build(project, cluster, monkeypatch, caplog):
    local = trainkit.train(None, "config.yml", "data", fixed_model_name="local").model
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(project / "other-cache"))
    caplog.set_level("DEBUG", logger="trainkit")
    remote = trainkit.train(None, "config.yml", "data", fixed_model_name="remote",
                            scheduler=cluster.scheduler_address).model
    assert "ran train_FakeClassifier3 on the cluster" in caplog.text
    assert components(remote) == components(local)
    assert not Path("/nonexistent/trainkit-cache").exists()


def test_the_environment_names_the_scheduler(project, cluster, monkeypatch, caplog):
    monkeypatch.setenv("TRAINKIT_DASK_SCHEDULER", cluster.scheduler_address)
    caplog.set_level("DEBUG", logger="trainkit")
    trainkit.train(None, "config.yml", "data")
    assert "on the cluster" in caplog.text


def test_a_lost_worker_means_the_node_reruns_elsewhere(project, cluster, caplog):
    marker = project / "died-once"
    (project / "config.yml").write_text(
        CONFIG.format(classifier="fake_components.DyingClassifier") + f"    marker: {marker}\n")
    result = trainkit.train(None, "config.yml", "data", scheduler=cluster.scheduler_address)
    assert marker.exists()  # the first attempt killed its worker
    assert Path(result.model).is_file()
    assert trainkit.train(None, "config.yml", "data", dry_run=True).code == 0


def test_an_unreachable_scheduler_is_one_clear_error(project):
    with pytest.raises(trainkit.errors.TrainkitError, match="cannot reach the Dask scheduler"):
        trainkit.train(None, "config.yml", "data", scheduler="tcp://127.0.0.1:9")
