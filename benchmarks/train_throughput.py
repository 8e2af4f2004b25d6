"""Training throughput: etk `finetune` vs Hugging Face `Trainer` (dynamic padding), same everything else.

Same model (minilm-l6), data (Amazon books train split, or vader_amazon without the shared folder), batch
size, max length, learning rate, seed, steps and threads, in one process. Both figures are samples per second
of the training loop (etk: its own step timer; Trainer: its `train_samples_per_second`). The last line is
one JSON object with the figures and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def dataset_spec() -> str:
    from etk_core.data.datasets.shared import shared_datasets_dir

    return "amazon_books:train" if shared_datasets_dir() else "vader_amazon:train"


def run_etk(spec: str, steps: int, batch: int, max_length: int, workdir: Path) -> float:
    from etk_core.config import resolve
    from etk_core.run import prepare, start

    config = resolve(flags={"model.name": "minilm-l6", "data.sources": {"train": spec},
                            "output": str(workdir / "etk")},
                     sets=[f"train.max_steps={steps}", f"train.batch_size={batch}",
                           f"train.max_length={max_length}", "train.lr=5e-5"])
    run = prepare(config)
    start(run)
    result = run.fit(run.build_model(), dev=None, save_best=False)
    return result.samples_per_s


def run_trainer(spec: str, steps: int, batch: int, max_length: int, workdir: Path) -> float:
    from etk_zoo.minilm import minilm_folder
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from etk_core.config import resolve
    from etk_core.data.load import load_records

    folder = minilm_folder()
    records = load_records(spec, resolve()["data"], required=("text", "label"))
    labels = sorted({record["label"] for record in records})
    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples = [{**tokenizer(record["text"], truncation=True, max_length=max_length),
                 "labels": labels.index(record["label"])} for record in records]
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(labels))
    args = TrainingArguments(output_dir=str(workdir / "trainer"), per_device_train_batch_size=batch,
                             max_steps=steps, learning_rate=5e-5, warmup_steps=max(1, steps // 10), weight_decay=0.01,
                             save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True,
                             seed=42, remove_unused_columns=False, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=examples,
                      data_collator=DataCollatorWithPadding(tokenizer))
    return float(trainer.train().metrics["train_samples_per_second"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run of the same comparison")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args(argv)
    steps = args.steps or (8 if args.quick else 60)
    spec = dataset_spec()
    print(f"data {spec}, model minilm-l6, batch {args.batch_size}, max_length {args.max_length}, "
          f"steps {steps}, threads {__import__('torch').get_num_threads()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        trainer = run_trainer(spec, steps, args.batch_size, args.max_length, Path(tmp))
        print(f"Trainer: {trainer:.2f} samples/s", file=sys.stderr)
        etk = run_etk(spec, steps, args.batch_size, args.max_length, Path(tmp))
        print(f"etk:     {etk:.2f} samples/s", file=sys.stderr)
        elapsed = time.perf_counter() - started
    print(json.dumps({"data": spec, "steps": steps, "batch_size": args.batch_size, "max_length": args.max_length,
                      "etk_samples_per_s": round(etk, 3), "trainer_samples_per_s": round(trainer, 3),
                      "ratio": round(etk / trainer, 3), "seconds": round(elapsed, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
