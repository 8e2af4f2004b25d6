"""Training strategies on this machine: samples/s and peak memory per process for `single` and `ddp` (2
processes, the same global batch), and the gradient bytes each process sends per step with each DDP
communication hook (none, fp16, bf16 on GPUs only, powersgd), measured in the same run.

Throughput: `etk train` runs (minilm-l6, text_classify, `amazon_books:train` or `vader_amazon:train`).
Bytes: 2 gloo processes train the same model with torch DDP and a hook; every all-reduce the hook issues is
counted (tensor bytes per process and step; a ring all-reduce moves about 2(N-1)/N of that per process).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from etk_runs import etk_train

HOOKS = ("none", "fp16", "bf16", "powersgd")


def dataset() -> str:
    from etk_core.data.datasets.shared import shared_datasets_dir

    return "amazon_books:train" if shared_datasets_dir() else "vader_amazon:train"


def throughput(steps: int, batch: int, workdir: Path) -> dict[str, dict[str, float]]:
    common = ["--app", "text_classify", "--model", "minilm-l6", "--data", f"train={dataset()}",
              "--set", f"train.max_steps={steps}", "--set", "train.max_length=128", "--set", "train.eval_every=0"]
    single = etk_train([*common, "--set", f"train.batch_size={batch}"], workdir / "single", "single")
    ddp = etk_train([*common, "--strategy", "ddp", "--nproc", "2", "--set", f"train.batch_size={batch // 2}"],
                    workdir / "ddp", "ddp")
    return {"single": {"samples_per_s": single["train_samples_per_s"], "peak_rss_mib": single["peak_rss_mib"]},
            "ddp2": {"samples_per_s": 2 * ddp["train_samples_per_s"], "peak_rss_mib_per_process": ddp["peak_rss_mib"]}}


def _bytes_worker(rank: int, port: int, hook: str, steps: int, out: str) -> None:
    import torch
    import torch.distributed as dist
    from etk_apps.text_classify.app import TextClassify
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
    from torch.nn.parallel import DistributedDataParallel

    from etk_core.zoo import load_backbone

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)

    encoder, tokenizer = load_backbone({"name": "minilm-l6"})
    app = TextClassify({}, tokenizer, 64, labels=["neg", "pos"])
    model = DistributedDataParallel(app.build_model(encoder), find_unused_parameters=True)  # BERT pooler
    sent = [0]
    original = dist.all_reduce

    def counting(tensor, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        sent[0] += tensor.numel() * tensor.element_size()
        return original(tensor, *args, **kwargs)

    dist.all_reduce = counting
    if hook == "none":
        model.register_comm_hook(None, default_hooks.allreduce_hook)
    elif hook == "fp16":
        model.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif hook == "bf16":
        model.register_comm_hook(None, default_hooks.bf16_compress_hook)
    else:
        state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=1, start_powerSGD_iter=2)
        model.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    records = [{"text": f"review number {i} was {'great' if i % 2 else 'awful'}", "label": ["neg", "pos"][i % 2]}
               for i in range(8 * steps)]
    features = app.encode_all(records)
    per_step = []
    for step in range(steps):
        batch = app.collate(features[step * 8 + rank * 4: step * 8 + rank * 4 + 4])
        before = sent[0]
        model(**batch)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        per_step.append(sent[0] - before)
    if rank == 0:
        Path(out).write_text(json.dumps({"bytes_per_step": per_step[-1], "steps": per_step}), encoding="utf-8")
    dist.destroy_process_group()


def communicated_bytes(steps: int, workdir: Path) -> dict[str, int]:
    import torch
    import torch.multiprocessing as mp

    from etk_core.testing import free_port

    result = {}
    for hook in HOOKS:
        if hook == "bf16" and not torch.cuda.is_available():
            continue  # torch's bf16 hook needs NCCL
        out = workdir / f"bytes-{hook}.json"
        mp.spawn(_bytes_worker, args=(free_port(), hook, steps, str(out)), nprocs=2, join=True)
        result[hook] = json.loads(out.read_text(encoding="utf-8"))["bytes_per_step"]
    return result


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
        sent = communicated_bytes(4, Path(tmp))
    ratio = speed["ddp2"]["samples_per_s"] / speed["single"]["samples_per_s"]
    print(f"single {speed['single']['samples_per_s']:.2f} samples/s, peak {speed['single']['peak_rss_mib']:.0f} MiB; "
          f"ddp x2 {speed['ddp2']['samples_per_s']:.2f} samples/s ({ratio:.2f}x), "
          f"peak {speed['ddp2']['peak_rss_mib_per_process']:.0f} MiB per process", file=sys.stderr)
    for hook, count in sent.items():
        print(f"gradient bytes per process and step, hook {hook:8s}: {count / 2**20:8.2f} MiB "
              f"({count / sent['none']:.3f} of none)", file=sys.stderr)
    print(json.dumps({"throughput": speed, "ddp_vs_single": round(ratio, 3), "bytes_per_step": sent}))


if __name__ == "__main__":
    main()
