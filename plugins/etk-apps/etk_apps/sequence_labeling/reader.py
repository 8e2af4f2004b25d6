"""The `conll` reader: CoNLL column files, one token per line, blank lines between sentences.

Each line holds whitespace-separated columns: the token first, the tag in the tag column (default: the last;
choose another with a fragment, `train.conll#tag_column=2`, 1-based, negative counts from the end).
`-DOCSTART-` lines separate documents and are skipped. A file whose lines have a single column holds tokens
only (input to `etk predict`). One row per sentence: `{"tokens": [...], "tags": [...]}`, located at the line
of its first token. Files ending in .conll, .iob or .bio are read; a .txt file only when its first lines look
like CoNLL (the reader asks first, priority 10, and otherwise leaves .txt to the TSV reader).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from typing import Any

from etk_core.data.readers.files import utf8_lines
from etk_core.errors import DataError
from etk_core.interfaces import RawRow, Reader

DOCSTART = "-DOCSTART-"
_TAG_LIKE = re.compile(r"^(O|[BIES]-\S+)$")
_SNIFF_LINES = 50


def split_spec(source: str) -> tuple[str, int]:
    """`(path, tag column index)` of `path[#tag_column=N]` (N 1-based, negative from the end; default -1)."""
    path, _, fragment = source.partition("#")
    if not fragment:
        return path, -1
    key, _, value = fragment.partition("=")
    try:
        number = int(value)
    except ValueError:
        number = 0
    if key.strip() != "tag_column" or number == 0:
        raise DataError(f"{source}: unknown CoNLL option {fragment!r}; the one option is #tag_column=N "
                        f"(1-based, negative from the end), e.g. train.conll#tag_column=4")
    return path, number - 1 if number > 0 else number


def looks_like_conll(path: str) -> bool:
    """Whether the file's first lines are CoNLL: most (>= 80%, at least 2) have >= 2 columns, the same number,
    tag-like last. One bad line does not hide the format: the reader then names it with file and line."""
    from collections import Counter

    try:
        lines = [line for _, line in islice(utf8_lines(path), _SNIFF_LINES)]
    except (DataError, OSError):
        return False
    rows = [line.split() for line in lines]
    rows = [fields for fields in rows if fields and fields[0] != DOCSTART]
    fitting = Counter(len(fields) for fields in rows if len(fields) >= 2 and _TAG_LIKE.match(fields[-1]))
    if not fitting:
        return False
    count = fitting.most_common(1)[0][1]  # lines of the commonest width
    return count >= 2 and count >= 0.8 * len(rows)


class ConllReader(Reader):
    """Sentences of a CoNLL column file as rows with `tokens` and (when there is a tag column) `tags`."""

    name = "conll"
    description = "CoNLL column file (token ... tag per line, blank line between sentences; .conll/.iob/.bio/.txt)"
    suffixes = (".conll", ".iob", ".bio")
    priority = 10

    @classmethod
    def accepts(cls, source: str) -> bool:
        path = source.partition("#")[0]
        lowered = path.lower()
        if lowered.endswith(cls.suffixes):
            return True
        return lowered.endswith(".txt") and looks_like_conll(path)

    def rows(self) -> Iterator[RawRow]:
        path, column = split_spec(self.source)
        width: int | None = None
        sentence: dict[str, Any] = {}
        count = 0
        for number, line in utf8_lines(path):
            fields = line.split()
            if not fields or fields[0] == DOCSTART:
                if sentence:
                    count += 1
                    yield self._row(sentence)
                sentence = {}
                continue
            where = f"{path}:{number}"
            if width is None:
                width = len(fields)
                if width > 1 and not -width <= column < width:
                    raise DataError(f"{where}: tag column {self.source.partition('#')[2]} is outside the "
                                    f"{width} columns of this file; fix #tag_column=N")
            sentence = sentence or {"where": where, "tokens": [], "tags": [], "error": None}
            if len(fields) != width and sentence["error"] is None:
                hint = " (a space inside a token?)" if len(fields) > width else ""
                sentence["error"] = (where, f"expected {width} columns like the file's first line, found "
                                            f"{len(fields)}{hint}")
            sentence["tokens"].append(fields[0])
            if width > 1 and len(fields) == width:
                sentence["tags"].append(fields[column])
        if sentence:
            count += 1
            yield self._row(sentence)
        if count == 0:
            raise DataError(f"{path}: no sentences; the file is empty or holds only -DOCSTART- lines")

    @staticmethod
    def _row(sentence: dict[str, Any]) -> RawRow:
        if sentence["error"] is not None:
            where, reason = sentence["error"]
            return RawRow(None, where, reason)
        values: dict[str, Any] = {"tokens": sentence["tokens"]}
        if sentence["tags"]:
            values["tags"] = sentence["tags"]
        return RawRow(values, sentence["where"])
