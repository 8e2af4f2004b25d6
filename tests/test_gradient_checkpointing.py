"""`train.gradient_checkpointing`: recomputing activations in backward trains exactly the same model."""

from __future__ import annotations

import torch

from etk_core.testing import needs_packaged_minilm, train_run

pytestmark = needs_packaged_minilm()

ARGS = ["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train", "--set", "train.max_steps=4",
        "--set", "train.batch_size=8", "--set", "train.max_length=32", "--set", "train.threads=1", "--no-export"]


def test_checkpointing_gives_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    plain = load_file(str(train_run(tmp_path / "a", ARGS) / "model" / "model.safetensors"))
    saved = load_file(str(train_run(tmp_path / "b", [*ARGS, "--set", "train.gradient_checkpointing=true"])
                          / "model" / "model.safetensors"))
    assert all(torch.allclose(plain[name], saved[name], atol=1e-6) for name in plain)
