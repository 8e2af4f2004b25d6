"""Under `--strategy ddp --nproc 2` the replicas' selectors stay one selector: after training, each worker's
actor-critic and discriminator weights are the same (a sitecustomize in the workers dumps them)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from etk_core.testing import needs_packaged_minilm

pytestmark = needs_packaged_minilm()

DUMP = """
import os
from etk_instancetl import transfer

original = transfer.InstanceTransfer.summary

def summary(self, run, results):
    import torch
    rank = os.environ.get("RANK", "0")
    torch.save({"selector": self.selector.state_dict(), "discriminator": self.discriminator.state_dict(),
                "kept": self.kept_count}, os.path.join(os.environ["ETK_TEST_DUMP"], f"rank{rank}.pt"))
    return original(self, run, results)

transfer.InstanceTransfer.summary = summary
"""


def test_replicas_keep_one_selector(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(DUMP, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ETK_TEST_DUMP": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "etk_core", "train", "--app", "text_classify", "--algo", "mgtl",
               "--model", "bert-tiny", "--data", "source=synthetic_domains:train",
               "--data", "target=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev",
               "--strategy", "ddp", "--nproc", "2", "--no-export", "--output", str(tmp_path / "run"),
               *[item for value in ("train.max_steps=10", "train.batch_size=8", "train.max_length=32",
                                    "data.max_rows=96", "algo.warm_start_steps=0", "algo.episode_steps=2",
                                    "algo.reward_dev_size=32", "algo.distance_sample=0")
                 for item in ("--set", value)]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    assert first["kept"] == second["kept"] == 10 * 8  # each replica selected over its own source batches
    for part in ("selector", "discriminator"):
        for key, value in first[part].items():
            assert torch.allclose(value, second[part][key], atol=1e-6), (part, key)
    # and the selector did learn something (its weights moved away from the shared initialisation)
    assert first["selector"]["actor.2.weight"].abs().max() > 0
