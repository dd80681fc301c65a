"""WhitespaceTokenizer: Rasa's default tokenizer for space-separated languages."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from trainkit.engine.component import register
from trainkit.engine.options import OfType, Option
from trainkit.nlu.base import Tokenizer
from trainkit.nlu.batch import Token

# Punctuation is cut where it is not part of a word; everything matched becomes a space.
_CUT = re.compile(
    # a run of symbols that ends a word (followed by whitespace or the end)
    r"[^\w#@&]+(?=\s|$)"
    # a run of symbols that starts a word, unless a digit follows (keeps "-5", ".5")
    r"|(?:\s|^)[^\w#@&]+(?=[^0-9\s])"
    # symbols inside a word, unless they sit between digits (10'000) or are characters
    # that URLs and e-mail addresses are made of
    r"|(?<=[^0-9\s])[^\w._~:/?#\[\]()@!$&*+,;=-]+(?=[^0-9\s])"
)

# A token made only of pictographs is dropped (it carries no word features).
_EMOJI_ONLY = re.compile(
    "["
    "\U0001f000-\U0001faff"  # symbols, pictographs, emoticons, transport, flags
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats
    "\u2300-\u23ff"  # technical symbols (hourglass, watch...)
    "\u2b00-\u2bff"  # arrows and stars
    "\ufe0f\u200d"  # variation selector and zero-width joiner
    "]+"
)


@register
class WhitespaceTokenizer(Tokenizer):
    """Splits on whitespace and on punctuation that is not inside a word.

    Offsets always point into the original text, so entity spans annotated on the text
    can be matched to tokens exactly.
    """

    name = "WhitespaceTokenizer"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {
        "intent_tokenization_flag": False,
        "intent_split_symbol": "_",
        "token_pattern": Option(None, OfType((str,), null=True)),
    }

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of `text` with offsets into it."""
        if not text or not text.strip():
            return []
        words = [w for w in _CUT.sub(" ", text).split() if not _EMOJI_ONLY.fullmatch(w)]
        if not words:
            # everything was punctuation (":)"): keep the whole text as one token
            words = [text.strip()]
        tokens = []
        position = 0
        for word in words:
            start = text.index(word, position)
            position = start + len(word)
            tokens.append(Token(word, start, position))
        return self.apply_token_pattern(tokens)
