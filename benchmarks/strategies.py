"""Training strategies on this machine: samples/s and peak memory per process for `single`, `ddp` (2
processes), megatron `tp=2` and `pp=2` (2 processes each), all with the same global batch; the gradient bytes
each process sends per step with each DDP communication hook (none, fp16, bf16, powersgd); and the activation
bytes TP and PP move per step.

Throughput: `etk train` runs (minilm-l6, text_classify, `amazon_books:train` or `vader_amazon:train`).
Bytes: what each hook all-reduces per process and step, computed from the model's gradient shapes (a ring
all-reduce then moves about 2(N-1)/N of that per process); the tests check that the hooks are active.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from etk_runs import etk_train


def dataset() -> str:
    from etk_core.data.datasets.shared import shared_datasets_dir

    return "amazon_books:train" if shared_datasets_dir() else "vader_amazon:train"


def throughput(steps: int, batch: int, workdir: Path) -> dict[str, dict[str, float]]:
    common = ["--app", "text_classify", "--model", "minilm-l6", "--data", f"train={dataset()}",
              "--set", f"train.max_steps={steps}", "--set", "train.max_length=128", "--set", "train.eval_every=0"]
    single = etk_train([*common, "--set", f"train.batch_size={batch}"], workdir / "single", "single")
    ddp = etk_train([*common, "--strategy", "ddp", "--nproc", "2", "--set", f"train.batch_size={batch // 2}"],
                    workdir / "ddp", "ddp")
    megatron = {f"{key}2": etk_train([*common, "--strategy", "megatron", "--set", f"strategy.{key}=2",
                                      "--set", f"train.batch_size={batch}"], workdir / key, f"megatron {key}=2")
                for key in ("tp", "pp")}
    # rank 0 reports: its samples are the whole batch (one data-parallel replica); it also holds the gathered
    # whole model for evaluation and saving, so its peak is the highest of the group
    return {"single": {"samples_per_s": single["train_samples_per_s"], "peak_rss_mib": single["peak_rss_mib"]},
            "ddp2": {"samples_per_s": 2 * ddp["train_samples_per_s"], "peak_rss_mib_per_process": ddp["peak_rss_mib"]},
            **{name: {"samples_per_s": run["train_samples_per_s"], "peak_rss_mib_per_process": run["peak_rss_mib"]}
               for name, run in megatron.items()}}


def activation_bytes(batch: int, length: int, hidden: int = 384, layers: int = 6) -> dict[str, int]:
    """Bytes one process sends per step (fp32, ring all-reduce over 2 ranks sends the tensor once):
    TP=2 all-reduces [B, n, H] after the embedding and after each layer's attention and feed-forward output
    (forward), and the input gradient of each column-parallel layer (backward: the fused q/k/v projection and
    the feed-forward up-projection, 2 per layer); PP=2 sends the boundary activation forward and its gradient
    back."""
    tensor = 4 * batch * length * hidden
    return {"tp2": (1 + 2 * layers + 2 * layers) * tensor, "pp2": 2 * tensor}


def communicated_bytes(rank: int = 1) -> dict[str, int]:
    """Bytes each process puts into the gradient all-reduce per step, per hook, from the model's gradient
    shapes: none sends fp32 gradients, fp16 / bf16 halve them, PowerSGD of rank r sends (m + n) r values per
    m x n weight matrix (when smaller than m n) and every vector uncompressed."""
    from etk_apps.text_classify.app import TextClassify

    from etk_core.zoo import load_backbone

    encoder, tokenizer = load_backbone({"name": "minilm-l6"})
    model = TextClassify({}, tokenizer, 64, labels=["neg", "pos"]).build_model(encoder)
    shapes = [tuple(p.shape) for name, p in model.named_parameters() if "pooler" not in name]  # pooler: unused
    full = sum(4 * math.prod(shape) for shape in shapes)
    low_rank = sum(4 * (min((shape[0] + math.prod(shape[1:])) * rank, math.prod(shape)) if len(shape) > 1
                        else shape[0]) for shape in shapes)
    return {"none": full, "fp16": full // 2, "bf16": full // 2, "powersgd": low_rank}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps = 4
    with tempfile.TemporaryDirectory() as tmp:
        speed = throughput(args.steps, args.batch, Path(tmp))
    sent = communicated_bytes()
    ratio = speed["ddp2"]["samples_per_s"] / speed["single"]["samples_per_s"]
    print(f"single {speed['single']['samples_per_s']:.2f} samples/s, peak {speed['single']['peak_rss_mib']:.0f} MiB",
          file=sys.stderr)
    for name in ("ddp2", "tp2", "pp2"):
        row = speed[name]
        print(f"{name:6s} {row['samples_per_s']:.2f} samples/s "
              f"({row['samples_per_s'] / speed['single']['samples_per_s']:.2f}x single), "
              f"peak {row['peak_rss_mib_per_process']:.0f} MiB per process", file=sys.stderr)
    moved = activation_bytes(args.batch, 128)
    for name, count in moved.items():
        print(f"activation bytes per process and step, {name} (at 128 tokens): {count / 2**20:8.2f} MiB",
              file=sys.stderr)
    for hook, count in sent.items():
        print(f"gradient bytes per process and step, hook {hook:8s}: {count / 2**20:8.2f} MiB "
              f"({count / sent['none']:.3f} of none)", file=sys.stderr)
    print(json.dumps({"throughput": speed, "ddp_vs_single": round(ratio, 3), "bytes_per_step": sent,
                      "activation_bytes_per_step_at_128": moved}))


if __name__ == "__main__":
    main()
