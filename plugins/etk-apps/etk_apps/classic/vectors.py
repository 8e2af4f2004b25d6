"""Word vectors from a text file (GloVe: `word v1 ... vD` per line; word2vec text: the same after a
`COUNT DIM` header line) for the rows of an embedding table. The file's dimension (header, else first line)
must equal app.embedding_dim; a word is everything before the last D fields (GloVe 840B has words with
spaces).

A vocabulary token takes the vector of the same word, else of its lower-cased form. Only the lines of
wanted words are parsed, so a large file costs one pass of reading. Tokens with no vector keep a random
vector with the spread of the loaded ones; the padding row stays zero.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from etk_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import torch

logger = logging.getLogger("etk.apps.classic")


def read_vectors(path: str, tokens: list[str], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, found): an array (len(tokens), dim) and a boolean array of the rows that got a vector."""
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"app.embeddings: {path} does not exist; give a GloVe or word2vec text file")
    exact: dict[str, list[int]] = {}
    lowered: dict[str, list[int]] = {}
    for index, token in enumerate(tokens):
        exact.setdefault(token, []).append(index)
        lowered.setdefault(token.lower(), []).append(index)
    vectors = np.zeros((len(tokens), dim), dtype=np.float32)
    found = np.zeros(len(tokens), dtype=bool)
    by_exact = np.zeros(len(tokens), dtype=bool)
    width: int | None = None  # the file's dimension, from its header or first vector line
    with file.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip().split(" ")
            if len(fields) < 2:
                continue
            if number == 1 and len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                width = int(fields[1])  # word2vec header: COUNT DIM
            elif width is None:
                width = len(fields) - 1
            if width != dim:
                raise _dimension_error(path, number, width, dim)
            if number == 1 and len(fields) == 2 and fields[0].isdigit():
                continue
            if len(fields) <= dim:
                raise DataError(f"{path}:{number}: expected a word and {dim} numbers, got {len(fields)} fields; "
                                f"fix or remove the line")
            word = " ".join(fields[:-dim])  # a few GloVe words hold spaces; the numbers are the last `dim`
            exact_rows = exact.get(word, [])
            fallback = [i for i in lowered.get(word, []) if not by_exact[i]] if word == word.lower() else []
            rows = list(dict.fromkeys(exact_rows + fallback))
            if not rows:
                continue
            try:
                vector = np.asarray(fields[-dim:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}:{number}: expected a word and {dim} numbers, got {line[:60].strip()!r}; "
                                f"fix or remove the line") from None
            vectors[rows] = vector
            found[rows] = True
            by_exact[exact_rows] = True
    return vectors, found


def _dimension_error(path: str, line: int, got: int, dim: int) -> Exception:
    return ConfigError(f"{path}:{line}: word vectors have {got} dimensions but app.embedding_dim is {dim}; "
                       f"set --set app.embedding_dim={got}")


def load_into(weight: torch.Tensor, path: str, tokens: list[str], pad_id: int | None) -> int:
    """Copy the vectors of `path` into the rows of an embedding `weight` (torch tensor); return the count."""
    import numpy as np
    import torch

    vectors, found = read_vectors(path, tokens, int(weight.shape[1]))
    count = int(found.sum())
    if count == 0:
        logger.warning("app.embeddings: none of the %d vocabulary tokens has a vector in %s", len(tokens), path)
        return 0
    spread = float(vectors[found].std()) or 0.1
    with torch.no_grad():
        filled = torch.randn(weight.shape) * spread
        filled[torch.from_numpy(np.flatnonzero(found))] = torch.from_numpy(vectors[found])
        if pad_id is not None:
            filled[pad_id] = 0.0
        weight.copy_(filled.to(weight.dtype))
    logger.info("app.embeddings: %d of %d vocabulary tokens have a vector in %s", count, len(tokens), path)
    return count
