"""Classic models: masked blocks give the same result whatever padding a batch adds; shapes, losses."""

from __future__ import annotations

import pytest
import torch
from etk_apps.classic.layers import ConvEncoder, masked_mean, masked_softmax

from etk_core.errors import ConfigError


def padded(ids: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    row = ids + [0] * (length - len(ids))
    return torch.tensor([row]), torch.tensor([[1] * len(ids) + [0] * (length - len(ids))])


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("length", [1, 2, 5])
def test_conv_encoder_ignores_padding(wide, length):
    torch.manual_seed(0)
    encoder = ConvEncoder(6, (2, 3, 4, 5), 4, "tanh" if wide else "relu", wide=wide)
    text = torch.randn(1, length, 6)
    alone = encoder(text, torch.ones(1, length, dtype=torch.long))
    for extra in (1, 7):
        batch = torch.cat([text, torch.randn(1, extra, 6) * 0], dim=1)  # padded positions are zero embeddings
        mask = torch.tensor([[1] * length + [0] * extra])
        assert torch.allclose(encoder(batch, mask), alone, atol=1e-6)
    assert alone.shape == (1, 16) and bool((alone > -1e3).all())  # every text has a position per width


def test_masked_mean_and_softmax():
    values = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert masked_mean(values, mask).item() == pytest.approx(2.0)
    weights = masked_softmax(torch.tensor([[0.0, 0.0, 50.0]]), mask, dim=-1)
    assert weights.tolist()[0] == pytest.approx([0.5, 0.5, 0.0])


class WordList:
    """A stand-in vocabulary of 40 tokens, pad id 0."""

    size, pad_id = 40, 0

    @staticmethod
    def tokens() -> list[str]:
        return [f"w{i}" for i in range(40)]


OPTIONS = {"embedding_dim": 8, "embeddings": None, "freeze_embeddings": False, "filter_sizes": None,
           "num_filters": 4, "hidden_dim": 8, "classic_dropout": 0.5, "abs_difference": False}


@pytest.mark.parametrize("name", ["bicnn", "dam", "dam_plus"])
def test_pair_models_ignore_padding(name):
    from etk_apps.classic.build import build_classic_model

    torch.manual_seed(0)
    model = build_classic_model(name, WordList(), OPTIONS, 3, 16).eval()
    a, a_mask = padded([5, 6, 7], 3)
    b, b_mask = padded([8, 9], 3)
    alone = model(a, a_mask, b, b_mask)["logits"]
    a2, a2_mask = padded([5, 6, 7], 9)
    b2, b2_mask = padded([8, 9], 9)
    assert torch.allclose(model(a2, a2_mask, b2, b2_mask)["logits"], alone, atol=1e-5)
    out = model(a2, a2_mask, b2, b2_mask, labels=torch.tensor([2]))
    assert out["logits"].shape == (1, 3) and out["loss"].ndim == 0


@pytest.mark.parametrize("length", [1, 3, 16, 64])
def test_hcnn_works_for_any_fixed_length(length):
    from etk_apps.classic.build import build_classic_model

    model = build_classic_model("hcnn", WordList(), {**OPTIONS, "abs_difference": True}, 2, length).eval()
    a, a_mask = padded([5, 6, 7][:length], length)
    b, b_mask = padded([8], length)
    out = model(a, a_mask, b, b_mask, labels=torch.tensor([1]))
    assert out["logits"].shape == (1, 2) and torch.isfinite(out["loss"])


def test_textcnn_defaults_and_frozen_embeddings():
    from etk_apps.classic.build import build_classic_model

    model = build_classic_model("textcnn", WordList(), {**OPTIONS, "num_filters": None, "freeze_embeddings": True},
                                2, 16)
    assert model.conv.widths == (3, 4, 5) and model.conv.out_dim == 300
    assert not model.embedding.weight.requires_grad and model.embedding.weight[0].abs().sum() == 0
    ids, mask = padded([3, 4], 2)
    assert model(ids, mask)["logits"].shape == (1, 2)


def test_classic_option_errors(tokenizer):
    from etk_apps.text_classify import TextClassify

    with pytest.raises(ConfigError, match="app.vocab is used only by classic models"):
        TextClassify({"vocab": "words.txt"}, tokenizer, 16)
    with pytest.raises(ConfigError, match="app.embedding_dim must be a positive integer"):
        TextClassify({"model": "textcnn", "embedding_dim": 0}, tokenizer, 16)
    with pytest.raises(ConfigError, match="app.classic_dropout"):
        TextClassify({"model": "textcnn", "classic_dropout": 1.0}, tokenizer, 16)
    with pytest.raises(ConfigError, match="app.model 'bicnn' is not one of plm, textcnn"):
        TextClassify({"model": "bicnn"}, tokenizer, 16)
