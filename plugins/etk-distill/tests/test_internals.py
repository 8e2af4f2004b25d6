"""The hooks read the model's own hidden states and its pre-softmax attention scores."""

from __future__ import annotations

import torch
from etk_distill.internals import capture
from transformers import BertConfig, BertModel


class Wrapped(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, **batch):
        return self.encoder(**batch)


def _model():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, attn_implementation="eager")
    return Wrapped(BertModel(config).eval())


def test_hidden_states_are_the_models():
    model = _model()
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    with torch.no_grad(), capture(model) as seen:
        reference = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(seen.hidden) == 4
    for got, expected in zip(seen.hidden, reference, strict=True):
        assert torch.allclose(got, expected)


def test_attention_scores_are_taken_before_the_softmax():
    model = _model()
    ids = torch.randint(0, 50, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    with torch.no_grad(), capture(model, attention=True) as seen:
        probabilities = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    assert len(seen.scores) == 3
    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for scores, expected in zip(seen.scores, probabilities, strict=True):
        assert scores.shape == expected.shape == (2, 4, 6, 6)
        assert (scores < 0).any() or (scores > 1).any()  # scores, not probabilities
        assert torch.allclose(torch.softmax(scores + additive, dim=-1), expected, atol=1e-6)


def test_hooks_are_removed_after_the_block():
    model = _model()
    with capture(model, attention=True):
        pass
    assert all(not module._forward_hooks for module in model.modules())
