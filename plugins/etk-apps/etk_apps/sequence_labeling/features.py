"""Words -> sub-tokens with a fast tokenizer (`is_split_into_words`), and word character spans."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from etk_core.errors import ConfigError, DataError
from etk_core.interfaces import Record

_WORD = re.compile(r"\S+")


def record_words(record: Record) -> tuple[list[str], str, list[tuple[int, int]]]:
    """`(words, text, spans)`: the record's tokens (or its text split on whitespace), the text that entity
    offsets refer to, and each word's `(start, end)` character span in it.

    With tokens, the text is the record's `text` when every token occurs in it in order, else the tokens
    joined by single spaces."""
    where = record.get("_where", "?")
    tokens, text = record.get("tokens"), record.get("text")
    if isinstance(tokens, str):
        tokens = tokens.split()
    if tokens is None:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: no tokens and no text; give a tokens column (a list of words) or a text")
        matches = list(_WORD.finditer(text))
        return [m.group() for m in matches], text, [m.span() for m in matches]
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise DataError(f"{where}: tokens must be a list of strings, got {type(tokens).__name__}; "
                        f"check the tokens column (data.tokens)")
    if not tokens:
        raise DataError(f"{where}: empty tokens; every sentence needs at least one word")
    if isinstance(text, str):
        spans = _find_in(text, tokens)
        if spans is not None:
            return list(tokens), text, spans
    return list(tokens), " ".join(tokens), _joined_spans(tokens)


def _find_in(text: str, tokens: Sequence[str]) -> list[tuple[int, int]] | None:
    spans, cursor = [], 0
    for token in tokens:
        start = text.find(token, cursor) if token else -1
        if start < 0:
            return None
        spans.append((start, start + len(token)))
        cursor = start + len(token)
    return spans


def _joined_spans(tokens: Sequence[str]) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for token in tokens:
        spans.append((cursor, cursor + len(token)))
        cursor += len(token) + 1
    return spans


def align(tokenizer: Any, words: list[str], max_length: int) -> dict[str, Any]:
    """Sub-token features of one sentence: `input_ids`, `attention_mask` (+ `token_type_ids`) and
    `word_starts`: the position of each word's first sub-token, or -1 for a word cut off by `max_length`
    (or one the tokenizer turns into no sub-token)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"sequence_labeling needs a fast tokenizer (word ids), but the backbone's is "
                          f"{type(tokenizer).__name__}; choose a backbone with a fast tokenizer")
    encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    starts = [-1] * len(words)
    for position, word in enumerate(encoded.word_ids()):
        if word is not None and starts[word] < 0:
            starts[word] = position
    features: dict[str, Any] = {"input_ids": list(encoded["input_ids"]),
                                "attention_mask": list(encoded["attention_mask"]), "word_starts": starts}
    if "token_type_ids" in encoded:
        features["token_type_ids"] = list(encoded["token_type_ids"])
    return features
