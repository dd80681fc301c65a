import enum
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from trainkit.engine.fingerprint import (
    canonical_json,
    digest_bytes,
    digest_dir,
    digest_file,
    digest_files,
    fingerprint,
    node_fingerprint,
)


def _make_tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.json").write_text('{"x": 1}')
    (root / "sub" / "weights.npz").write_bytes(b"\x00\x01\x02" * 1000)
    (root / "sub" / "deeper" / "z.txt").write_text("zzz")
    return root


def test_canonical_json_is_independent_of_key_order():
    first = {"b": 1, "a": {"y": [1, 2], "x": None}}
    second = {"a": {"x": None, "y": [1, 2]}, "b": 1}
    assert canonical_json(first) == canonical_json(second)
    assert canonical_json(first) == b'{"a":{"x":null,"y":[1,2]},"b":1}'
    assert fingerprint(first) == fingerprint(second)


def test_canonical_json_tuples_unicode_and_floats():
    assert canonical_json((1, 2)) == canonical_json([1, 2])
    assert canonical_json({"k": "é✓"}) == '{"k":"é✓"}'.encode()
    assert canonical_json(0.1) == b"0.1"
    assert canonical_json(1e-7) == b"1e-07"
    assert canonical_json(np.float64(0.1)) == b"0.1"
    assert canonical_json(True) == b"true"
    assert canonical_json(1) != canonical_json(1.0)


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        object(),
        Path("x"),
        b"bytes",
        np.int64(3),
        {"nested": [1, {"bad": object()}]},
        {1: "int key"},
    ],
)
def test_canonical_json_rejects_unsupported_types(value):
    with pytest.raises(TypeError):
        canonical_json(value)


def test_canonical_json_uses_values_of_subclasses():
    class Colour(str):
        def __str__(self) -> str:
            return "Colour(red)"

    class Level(enum.IntEnum):
        HIGH = 3

    assert canonical_json({"c": Colour("red"), "l": Level.HIGH}) == b'{"c":"red","l":3}'


def test_canonical_json_rejects_non_finite_floats():
    with pytest.raises(ValueError):
        canonical_json(float("nan"))


def test_file_digests(tmp_path):
    one = tmp_path / "one.bin"
    two = tmp_path / "two.bin"
    one.write_bytes(b"hello" * 300_000)
    two.write_bytes(b"other")
    assert digest_file(one) == digest_bytes(b"hello" * 300_000)
    assert len(digest_file(one)) == 32
    moved = tmp_path / "renamed.bin"
    shutil.copyfile(one, moved)
    assert digest_files([one, two]) == digest_files([moved, two])
    assert digest_files([one, two]) != digest_files([two, one])
    assert digest_files([one]) != digest_files([two])


def test_digest_dir_ignores_location_and_mtime(tmp_path):
    first = _make_tree(tmp_path / "first")
    second = tmp_path / "elsewhere" / "second"
    shutil.copytree(first, second)
    os.utime(second / "a.json", (1, 1))
    assert digest_dir(first) == digest_dir(second)


def test_digest_dir_sees_content_names_and_empty_dirs(tmp_path):
    base = digest_dir(_make_tree(tmp_path / "base"))

    content = _make_tree(tmp_path / "content")
    (content / "sub" / "deeper" / "z.txt").write_text("zzZ")
    assert digest_dir(content) != base

    renamed = _make_tree(tmp_path / "renamed")
    (renamed / "a.json").rename(renamed / "b.json")
    assert digest_dir(renamed) != base

    moved = _make_tree(tmp_path / "moved")
    (moved / "a.json").rename(moved / "sub" / "a.json")
    assert digest_dir(moved) != base

    extra = _make_tree(tmp_path / "extra")
    (extra / "empty").mkdir()
    assert digest_dir(extra) != base


def test_digest_dir_refuses_symlinks(tmp_path):
    tree = _make_tree(tmp_path / "tree")
    (tree / "link").symlink_to(tree / "a.json")
    with pytest.raises(ValueError, match="symlink"):
        digest_dir(tree)
    (tmp_path / "dirlink").symlink_to(tmp_path / "tree", target_is_directory=True)
    with pytest.raises(ValueError, match="symlink"):
        digest_dir(tmp_path / "dirlink")


def test_node_fingerprint_depends_on_every_part():
    base = node_fingerprint("Tok", "1", {"a": 1}, {"data": "d" * 32})
    assert base == node_fingerprint("Tok", "1", {"a": 1}, {"data": "d" * 32})
    assert base != node_fingerprint("Tok2", "1", {"a": 1}, {"data": "d" * 32})
    assert base != node_fingerprint("Tok", "2", {"a": 1}, {"data": "d" * 32})
    assert base != node_fingerprint("Tok", "1", {"a": 2}, {"data": "d" * 32})
    assert base != node_fingerprint("Tok", "1", {"a": 1}, {"data": "e" * 32})
    assert base != node_fingerprint("Tok", "1", {"a": 1}, {"other": "d" * 32})
