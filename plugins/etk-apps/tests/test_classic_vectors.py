"""Classic models' vocabulary (tokenizer's or a given word list) and word vectors (GloVe / word2vec text)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from etk_apps.classic import Vocabulary
from etk_apps.classic.vectors import load_into, read_vectors
from etk_apps.classic.vocab import read_word_list

from etk_core.errors import ConfigError, DataError

GLOVE = "good 0.1 0.2 0.3\nBad 1 2 3\nbad -1 -2 -3\nmovie 0.5 0.5 0.5\nnew york 7 7 7\n"


def test_tokenizer_vocabulary_is_the_tokenizers(tokenizer):
    vocabulary = Vocabulary.from_option(None, tokenizer)
    assert vocabulary.size == len(tokenizer) and vocabulary.pad_id == tokenizer.pad_token_id
    assert vocabulary.tokens()[:3] == ["[PAD]", "[UNK]", "[CLS]"]
    encoded = vocabulary.encode("good movie", "bad book", 16)
    assert encoded["input_ids"] == tokenizer("good movie", "bad book")["input_ids"]
    assert set(encoded) == {"input_ids", "attention_mask"}


def test_given_word_list(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("2 3\ngood x\nmovie\n\nBook\ngood\n")  # word2vec-style header, blank line, duplicate
    assert read_word_list(str(path)) == ["good", "movie", "Book", "good"]
    vocabulary = Vocabulary.from_option(str(path), None)
    assert vocabulary.words == ["[PAD]", "[UNK]", "good", "movie", "Book", "[SEP]"]
    assert vocabulary.pad_id == 0 and vocabulary.size == 6
    assert vocabulary.encode("Good movie, Book!", None, 8)["input_ids"] == [2, 3, 1, 4, 1]  # lower-case fallback
    assert vocabulary.encode("", None, 8)["input_ids"] == [1]
    pair = vocabulary.encode("good good good good", "movie movie", 5)
    assert pair["input_ids"] == [2, 2, 5, 3, 3] and pair["attention_mask"] == [1] * 5
    assert Vocabulary.from_option(vocabulary.words, None).words == vocabulary.words  # as an artifact stores it
    with pytest.raises(ConfigError, match="app.vocab: .*missing.txt does not exist"):
        Vocabulary.from_option(str(tmp_path / "missing.txt"), None)


@pytest.mark.parametrize("header", ["", "4 3\n"])
def test_read_vectors_glove_and_word2vec(tmp_path, header):
    path = tmp_path / "vectors.txt"
    path.write_text(header + GLOVE)
    vectors, found = read_vectors(str(path), ["[PAD]", "good", "bad", "Movie", "BAD", "book", "new york"], 3)
    assert found.tolist() == [False, True, True, True, True, False, True]
    assert vectors[6].tolist() == [7, 7, 7]  # a word with a space (as in GloVe 840B)
    assert vectors[1].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert vectors[2].tolist() == [-1, -2, -3]  # exact match
    assert vectors[3].tolist() == [0.5, 0.5, 0.5]  # Movie <- movie
    assert vectors[4].tolist() == [-1, -2, -3]  # BAD <- bad (lower-case), not "Bad"


def test_vector_errors(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text(GLOVE)
    with pytest.raises(ConfigError, match=r"vectors\.txt:1: word vectors have 3 dimensions but app\.embedding_dim "
                                          r"is 5; set --set app\.embedding_dim=3"):
        read_vectors(str(path), ["good"], 5)
    path.write_text("10 5\n")
    with pytest.raises(ConfigError, match=r"vectors\.txt:1: word vectors have 5 dimensions .* is 3"):
        read_vectors(str(path), ["good"], 3)
    path.write_text("good 0.1 zero 0.3\n")
    with pytest.raises(DataError, match=r"vectors\.txt:1: expected a word and 3 numbers"):
        read_vectors(str(path), ["good"], 3)
    path.write_text("good 0.1 0.2 0.3\nbad 0.1\n")
    with pytest.raises(DataError, match=r"vectors\.txt:2: expected a word and 3 numbers, got 2 fields"):
        read_vectors(str(path), ["good"], 3)
    with pytest.raises(ConfigError, match="app.embeddings: .*nothing.txt does not exist"):
        read_vectors(str(tmp_path / "nothing.txt"), ["good"], 3)


def test_load_into_embedding_table(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text(GLOVE)
    torch.manual_seed(0)
    table = torch.nn.Embedding(4, 3, padding_idx=0)
    assert load_into(table.weight, str(path), ["[PAD]", "good", "movie", "unknown"], pad_id=0) == 2
    weight = table.weight.detach().numpy()
    assert weight[0].tolist() == [0, 0, 0]
    assert np.allclose(weight[1], [0.1, 0.2, 0.3]) and np.allclose(weight[2], [0.5, 0.5, 0.5])
    assert 0 < np.abs(weight[3]).max() < 2  # random, with the spread of the loaded vectors
