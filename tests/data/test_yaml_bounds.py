"""Project files from anyone: alias bombs, deep nesting and huge lines are refused fast.

Each hostile document must end in one `DataError` naming the file and line, within a
time far below what expanding or recursing through it would take.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trainkit.data.config import load_config
from trainkit.data.domain_reader import load_domain
from trainkit.data.nlu_reader import read_nlu_file
from trainkit.data.yaml_io import YamlLimits, load_yaml, parse_yaml, to_plain
from trainkit.errors import DataError


def _bomb(levels: int = 9, width: int = 10) -> str:
    lines = ['  - a0: &a0 "lol"']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"  - a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _refused_quickly(call, *args, seconds: float = 2.0) -> DataError:
    start = time.perf_counter()
    with pytest.raises(DataError) as caught:
        call(*args)
    assert time.perf_counter() - start < seconds
    return caught.value


def test_an_alias_bomb_under_nlu_metadata_is_refused_quickly(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  metadata:\n    lols:\n'
        + _bomb().replace("  - ", "      - ")
        + "  examples: |\n    - hi\n"
    )
    error = _refused_quickly(read_nlu_file, path)
    assert "alias" in str(error) and error.problem.path == str(path)
    assert error.problem.line is not None and 5 <= error.problem.line <= 16


def test_an_alias_bomb_under_responses_is_refused_quickly(tmp_path):
    path = tmp_path / "domain.yml"
    path.write_text(
        'version: "3.1"\nintents: [greet]\nanchors:\n' + _bomb()
        + "responses:\n  utter_greet:\n  - text: hi\n    custom: *a9\n"
    )
    error = _refused_quickly(load_domain, path)
    assert "alias" in str(error) and error.problem.line is not None


def test_aliases_that_expand_modestly_are_fine():
    text = "base: &b {x: 1, y: [1, 2, 3]}\nitems: [*b, *b, *b, *b]\n"
    assert to_plain(parse_yaml(text, "small.yml"))["items"][3] == {"x": 1, "y": [1, 2, 3]}


@pytest.mark.parametrize("layout", ["[ per line", "{a: per line", "[ on one line", "- on one line"])
def test_deep_nesting_is_refused_with_its_line(tmp_path, layout):
    depth = 10_000
    if layout == "- on one line":
        text = "- " * depth + "x\n"
    elif layout == "[ on one line":
        text = "[" * depth + "]" * depth + "\n"
    else:
        opening = layout.split()[0].replace("{a:", "{a: ")
        closing = "]" if opening == "[" else "}"
        text = "\n".join([opening] * depth) + "\n1" + closing * depth + "\n"
    path = tmp_path / "deep.yml"
    path.write_text(text)
    error = _refused_quickly(load_yaml, path)
    assert "nested deeper than" in str(error)
    assert error.problem.path == str(path) and error.problem.line is not None


def test_nesting_within_the_bound_parses():
    depth = YamlLimits().max_depth - 2
    text = "[" * depth + "1" + "]" * depth
    assert parse_yaml(text, "ok.yml") is not None


def test_a_huge_comment_line_is_refused_quickly(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("language: en\n# " + "x" * 50_000_000 + "\npipeline: []\n")
    error = _refused_quickly(load_config, path)
    assert error.problem.line == 2 and "characters" in str(error)


def test_a_huge_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "nlu.yml"
    limits = YamlLimits()
    line = "# padding " + "x" * 1000 + "\n"
    path.write_text(line * (limits.max_file_size // len(line) + 2))
    error = _refused_quickly(read_nlu_file, path)
    assert "bytes" in str(error) and error.problem.path == str(path)


def test_the_limits_can_be_raised_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "long.yml"
    path.write_text("a: " + "x" * 3000 + "\n")
    monkeypatch.setenv("TRAINKIT_YAML_MAX_LINE_LENGTH", "1000")
    with pytest.raises(DataError, match="limit of 1000"):
        load_yaml(path)
    monkeypatch.setenv("TRAINKIT_YAML_MAX_LINE_LENGTH", "10000")
    assert load_yaml(path)["a"].startswith("x")


def test_an_unreadable_limit_in_the_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRAINKIT_YAML_MAX_DEPTH", "deep")
    with pytest.raises(DataError, match="TRAINKIT_YAML_MAX_DEPTH"):
        YamlLimits.from_environment()


def test_the_example_assistant_is_well_within_the_limits():
    example = Path(__file__).resolve().parents[2] / "examples" / "coffeebot"
    for path in [example / "domain.yml", example / "config.yml", *sorted((example / "data").glob("*.yml"))]:
        assert load_yaml(path) is not None


def test_an_integer_too_long_for_python_is_a_data_error_with_its_line(tmp_path):
    path = tmp_path / "domain.yml"
    path.write_text("version: '3.1'\nslots:\n  big:\n    initial_value: " + "9" * 5000 + "\n")
    error = _refused_quickly(load_domain, path)
    assert error.problem.line == 4 and "digits" in str(error)


def test_escaped_surrogate_pairs_read_as_the_character_they_encode(tmp_path):
    # JSON tools escape characters beyond the BMP as UTF-16 pairs; YAML leaves them as
    # two surrogates, which no later step could encode
    path = tmp_path / "nlu.yml"
    path.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: "- hi \\ud83d\\ude00 there\\n"\n')
    data = read_nlu_file(path)
    assert [m.text for m in data.nlu_examples] == ["hi \U0001F600 there"]


def test_a_lone_escaped_surrogate_is_refused_with_its_line(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello\n- intent: bye\n'
                    '  examples: "- bye \\ud83d\\n"\n')
    error = _refused_quickly(read_nlu_file, path)
    assert error.problem.line == 7 and "surrogate" in str(error)
    assert str(path) in str(error)
