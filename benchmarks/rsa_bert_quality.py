"""RSA-BERT quality: fine-tune `minilm-l6` with dense attention and with Random Sparse Attention (k=2, k=4)
on an Amazon domain at max length 512, same data, seed and steps; report dev accuracy and training time.

Each run is `etk train` in its own process (`--json`); the table goes to stdout and, with `--readme`, into
plugins/etk-kernels/README.md between the QUALITY markers. The last line is one JSON object. Needs the shared
datasets folder (Amazon reviews) unless `--data` names other splits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from etk_runs import etk_train, write_section

README = Path(__file__).resolve().parent.parent / "plugins" / "etk-kernels" / "README.md"
BEGIN, END = "<!-- QUALITY:BEGIN -->", "<!-- QUALITY:END -->"


def train(label: str, model_args: list[str], args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    return etk_train(["--app", "text_classify", *model_args, "--data", f"train={args.train}",
                      "--data", f"dev={args.dev}", "--set", f"train.epochs={args.epochs}",
                      "--set", f"train.max_length={args.max_length}", "--set", f"train.batch_size={args.batch_size}",
                      "--set", f"seed={args.seed}"], workdir / label, label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="amazon_books:train")
    parser.add_argument("--dev", default="amazon_books:dev")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="a few steps on the packaged data: checks the script")
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train, args.dev, args.epochs, args.max_length = "vader_amazon:train", "vader_amazon:dev", 0.02, 128
    configs = {"dense": ["--model", "minilm-l6"],
               "rsa k=2": ["--model", "rsa-bert", "--set", "model.base=minilm-l6", "--set", "model.rsa_k=2"],
               "rsa k=4": ["--model", "rsa-bert", "--set", "model.base=minilm-l6", "--set", "model.rsa_k=4"]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, model_args in configs.items():
            results[label] = train(label.replace(" ", "").replace("=", ""), model_args, args, Path(tmp))
            print(f"{label}: dev acc {results[label]['dev_accuracy']:.4f}, "
                  f"{results[label]['train_samples_per_s']:.2f} samples/s", file=sys.stderr, flush=True)
    base = results["dense"]["train_samples_per_s"]
    lines = [f"`{args.train}` → `{args.dev}`, `minilm-l6`, {args.epochs} epoch(s), max length {args.max_length}, "
             f"batch {args.batch_size}, seed {args.seed}; {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores.", "",
             "| attention | dev accuracy | macro-F1 | train samples/s | time per epoch vs dense |",
             "|---|---|---|---|---|"]
    for label, metrics in results.items():
        lines.append(f"| {label} | {metrics['dev_accuracy']:.4f} | {metrics['dev_macro_f1']:.4f} | "
                     f"{metrics['train_samples_per_s']:.2f} | {base / metrics['train_samples_per_s']:.2f}× |")
    text = "\n".join(lines)
    print(text)
    if args.readme and not args.quick:
        write_section(README, BEGIN, END, text)
    print(json.dumps({"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
