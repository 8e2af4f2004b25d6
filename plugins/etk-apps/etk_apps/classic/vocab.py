"""The vocabulary of classic models: the backbone tokenizer's, or a given word list.

With the tokenizer's, token ids are exactly what the tokenizer produces (special tokens included) and the
embedding table has `len(tokenizer)` rows. A given vocabulary is word-level: text is split into words and
punctuation marks (`\\w+|[^\\w\\s]`), each looked up as is, then lower-cased, else `[UNK]`; `[PAD]` (id 0),
`[UNK]` and `[SEP]` (between the two texts of a pair) are added when the list lacks them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from etk_core.errors import ConfigError

PAD, UNK, SEP = "[PAD]", "[UNK]", "[SEP]"
_WORD = re.compile(r"\w+|[^\w\s]")


def read_word_list(path: str) -> list[str]:
    """Tokens of a vocabulary file: the first field of each line (so a word-vectors file works too); a
    word2vec header line (`COUNT DIM`) is skipped."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"app.vocab: {path} does not exist; give a file with one token per line")
    words: list[str] = []
    with file.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields or (number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields)):
                continue
            words.append(fields[0])
    if not words:
        raise ConfigError(f"app.vocab: {path} holds no tokens; give a file with one token per line")
    return words


class Vocabulary:
    """Token ids for classic models. `words` is None when the tokenizer supplies them."""

    def __init__(self, tokenizer: Any, words: list[str] | None = None) -> None:
        self.tokenizer = tokenizer
        self.words: list[str] | None = None
        if words is not None:
            ordered = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
            self.words = list(dict.fromkeys(ordered + ([SEP] if SEP not in ordered else [])))
            self._ids = {word: index for index, word in enumerate(self.words)}

    @classmethod
    def from_option(cls, value: str | list[str] | None, tokenizer: Any) -> Vocabulary:
        """From `app.vocab`: null (the tokenizer), a file path, or the word list an artifact stored."""
        if value is None:
            return cls(tokenizer)
        return cls(tokenizer, list(value) if isinstance(value, list) else read_word_list(value))

    @property
    def size(self) -> int:
        """Rows of the embedding table."""
        return len(self.words) if self.words is not None else len(self.tokenizer)

    @property
    def pad_id(self) -> int:
        if self.words is not None:
            return 0
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def tokens(self) -> list[str]:
        """The token string of every id (to look up word vectors)."""
        if self.words is not None:
            return list(self.words)
        return list(self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer)))))

    def word_ids(self, text: str) -> list[int]:
        """Ids of the words of `text` in a given vocabulary (at least one: `[UNK]` for an empty text)."""
        unk = self._ids[UNK]
        ids = [self._ids.get(word, self._ids.get(word.lower(), unk)) for word in _WORD.findall(text)]
        return ids or [unk]

    def encode(self, text: str, pair: str | None, max_length: int) -> dict[str, list[int]]:
        """`input_ids` and `attention_mask` of a text (or a pair), truncated to `max_length`."""
        if self.words is None:
            encoded = self.tokenizer(text, pair, truncation=True, max_length=max_length)
            ids = list(encoded["input_ids"])
        else:
            first = self.word_ids(text)[:max_length]
            if pair is None:
                ids = first
            else:
                second = self.word_ids(pair)[:max_length]
                while len(first) + len(second) + 1 > max_length and len(first) + len(second) > 2:
                    (first if len(first) >= len(second) else second).pop()
                ids = first + [self._ids[SEP]] + second
                ids = ids[:max_length]
        return {"input_ids": ids, "attention_mask": [1] * len(ids)}
