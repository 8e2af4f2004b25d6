"""Shared fixtures: a small WordPiece tokenizer and a tiny BERT, built offline (no hub, no zoo needed)."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

WORDS = ("good great fine nice happy love best bad awful poor sad hate worst the a movie film book was is "
         "it this very really and but not").split()


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    return BertTokenizer(vocab={token: index for index, token in enumerate(tokens)})


@pytest.fixture
def tiny_encoder(tokenizer):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    return BertModel(config)
