import pytest

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.component import component_config
from trainkit.errors import ConfigError
from trainkit.nlu.tokenizers import WhitespaceTokenizer


def tokenizer(**options):
    return WhitespaceTokenizer(component_config(WhitespaceTokenizer, options))


def spans(text, **options):
    tokens = tokenizer(**options).tokenize(text)
    for t in tokens:
        assert text[t.start : t.end] == t.text
    return [(t.text, t.start, t.end) for t in tokens]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world!", [("Hello", 0, 5), ("world", 7, 12)]),
        ("I don't know.", [("I", 0, 1), ("don", 2, 5), ("t", 6, 7), ("know", 8, 12)]),
        ("Grüße, Jürgen?", [("Grüße", 0, 5), ("Jürgen", 7, 13)]),
        ("mail bob@example.com now", [("mail", 0, 4), ("bob@example.com", 5, 20), ("now", 21, 24)]),
        ("see https://x.org/a?b=1.", [("see", 0, 3), ("https://x.org/a?b=1", 4, 23)]),
        ("pay 10'000.00 or -5", [("pay", 0, 3), ("10'000.00", 4, 13), ("or", 14, 16), ("-5", 17, 19)]),
        ("  spaced   out  ", [("spaced", 2, 8), ("out", 11, 14)]),
        ("東京 に 行く", [("東京", 0, 2), ("に", 3, 4), ("行く", 5, 7)]),
        ("i ❤️ you 😀", [("i", 0, 1), ("you", 5, 8)]),
    ],
)
def test_offsets_on_unicode_and_punctuation(text, expected):
    assert spans(text) == expected


def test_only_punctuation_stays_one_token():
    assert spans(":)") == [(":)", 0, 2)]
    assert spans("") == []


def test_token_pattern_splits_tokens_further():
    assert spans("hello_world foo", token_pattern=r"[^_]+") == [("hello", 0, 5), ("world", 6, 11), ("foo", 12, 15)]


def test_invalid_token_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match="token_pattern"):
        tokenizer(token_pattern="(")


def test_intent_split_flag(runner):
    data = TrainingData([Message.build("hi there", "greet_user_now")])
    runner.train(data, [(WhitespaceTokenizer, {"intent_tokenization_flag": True, "intent_split_symbol": "_"})])
    tokens = runner.root.glob("*WhitespaceTokenizer/tokens.json")
    import json

    payload = json.loads(next(tokens).read_text())
    assert payload["intent_tokens"] == {"greet_user_now": ["greet", "user", "now"]}
    assert payload["spans"] == [[0, 2, 3, 8]]
    assert tokenizer().split_label("greet_user") == ["greet_user"]


def test_training_tokens_equal_prediction_tokens(runner):
    texts = ["Hello, world!", "I'm fine; thanks", "order #42 please"]
    data = TrainingData([Message.build(t, "x") for t in texts])
    (component,) = runner.train(data, [(WhitespaceTokenizer, {})])
    import json

    payload = json.loads(next(runner.root.glob("*WhitespaceTokenizer/tokens.json")).read_text())
    batch = runner.parse([component], texts)
    assert payload["spans"] == [[v for t in toks for v in (t.start, t.end)] for toks in batch.tokens]
