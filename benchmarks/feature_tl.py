"""Feature-based TL like Table 8 of the EasyTransfer paper: the same model, budget (steps = epochs over the
target train set, same batch sizes) and seeds for every row: tgt_only, src_only, mixed (etk-instancetl's
baselines), src_then_tgt (fine-tune on the source, then the target), fs, sp, sp_adv, drss, drss_adv.

Settings: Quora -> CIKM AnalytiCup 2018 English (text_match: `--qqp-rows` source pairs, the first `--cikm-rows`
CIKM train pairs, CIKM's dev and test splits; Prec@1 / Rec@1 / F1@1 of the positive class, ACC, AUC on the
test split) and two Amazon domain pairs (text_classify: `--source-rows` source reviews, `--target-rows` target
reviews and 200 more held out as dev, ACC on the target's dev split used as its test set). Every
run is `etk train` in its own process; `--log` appends each finished run to a JSON-lines file and skips runs
already there (a cut-short benchmark goes on where it stopped); `--readme` writes the tables into
plugins/etk-featuretl/README.md. Needs the shared datasets folder (ETK_DATASETS_DIR or ../shared/datasets).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from etk_runs import append_log, etk_train, read_log, write_section

METHODS = ("tgt_only", "src_only", "mixed", "src_then_tgt", "fs", "sp", "sp_adv", "drss", "drss_adv")
SETTINGS = ("qqp-cikm", "books-dvd", "electronics-kitchen")
README = Path(__file__).resolve().parent.parent / "plugins" / "etk-featuretl" / "README.md"
BEGIN, END = "<!-- BENCHMARK:BEGIN -->", "<!-- BENCHMARK:END -->"


def write_splits(folder: Path, source: str, target: str, source_rows: int, target_rows: int, dev_rows: int) -> None:
    """The first `source_rows` records of the `source` dataset; the first `target_rows` of `target` and, with
    `dev_rows`, that many more as dev (TSV files with text, text_pair where the data has pairs, and label)."""
    import csv

    from etk_core.data.load import load_records

    folder.mkdir(parents=True, exist_ok=True)
    chosen = {"source": load_records(source, {})[:source_rows]}
    target_records = load_records(target, {})
    chosen["target"] = target_records[:target_rows]
    if dev_rows:
        chosen["dev"] = target_records[target_rows: target_rows + dev_rows]
    keys = ["text", "text_pair", "label"] if "text_pair" in chosen["target"][0] else ["text", "label"]
    for role, records in chosen.items():
        with open(folder / f"{role}.tsv", "w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, keys, delimiter="\t", extrasaction="ignore")
            writer.writeheader()
            writer.writerows({key: " ".join(str(r[key]).split()) for key in keys} for r in records)


def data_args(setting: str, runs: Path, args: argparse.Namespace) -> tuple[str, list[str]]:
    """The app and `--data` arguments of a setting (its split files written on first use)."""
    splits = runs / f"splits-{setting}"
    files = ["--data", f"source={splits / 'source.tsv'}", "--data", f"target={splits / 'target.tsv'}"]
    if setting == "qqp-cikm":
        if not (splits / "target.tsv").is_file():
            write_splits(splits, "qqp:train", "cikm_en:train", args.qqp_rows, args.cikm_rows, 0)
        return "text_match", [*files, "--data", "dev=cikm_en:dev", "--data", "test=cikm_en:test"]
    source, target = setting.split("-")
    if not (splits / "dev.tsv").is_file():
        write_splits(splits, f"amazon_{source}:train", f"amazon_{target}:train", args.source_rows,
                     args.target_rows, 200)
    return "text_classify", [*files, "--data", f"dev={splits / 'dev.tsv'}", "--data", f"test=amazon_{target}:dev"]


def epochs(setting: str, args: argparse.Namespace) -> float:
    """The budget of a setting in passes over its target training data."""
    return args.epochs if setting == "qqp-cikm" else args.amazon_epochs


def positive_class(run: Path) -> dict[str, float]:
    """Prec@1, Rec@1 and F1@1 of the positive class ("1": duplicate) on CIKM's test split."""
    import etk_core
    from etk_core.data.load import load_records

    records = load_records("cikm_en:test", {})
    predicted = [p["label"] for p in etk_core.load(run, backend="torch").predict(records)]
    gold = [str(r["label"]) for r in records]
    hits = sum(p == g == "1" for p, g in zip(predicted, gold))
    precision = hits / max(1, predicted.count("1"))
    recall = hits / max(1, gold.count("1"))
    return {"test_prec1": precision, "test_rec1": recall,
            "test_f1_1": 2 * precision * recall / (precision + recall) if hits else 0.0}


def cell(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values) * 100:.1f} ± {sd * 100:.1f}"


def tables(done: list[dict[str, Any]], args: argparse.Namespace) -> str:
    seeds = sorted({r["seed"] for r in done})
    lines = [f"Model `{args.model}`; every row the same steps and batch sizes (epochs over the target's training "
             f"data), max length {args.max_length}; Quora {args.qqp_rows} pairs → CIKM {args.cikm_rows}, "
             f"{args.epochs} epochs (test: CIKM's 1,000); Amazon {args.source_rows} source reviews → "
             f"{args.target_rows} target reviews, {args.amazon_epochs} epochs (test: the target's 400 dev "
             f"reviews); seeds {', '.join(map(str, seeds))}; measured "
             f"{time.strftime('%Y-%m-%d')} on {args.where}.", ""]
    columns = [("qqp-cikm", "test_prec1", "Prec@1"), ("qqp-cikm", "test_rec1", "Rec@1"),
               ("qqp-cikm", "test_f1_1", "F1@1"), ("qqp-cikm", "test_accuracy", "ACC"),
               ("qqp-cikm", "test_auc", "AUC"), ("books-dvd", "test_accuracy", "books→dvd ACC"),
               ("electronics-kitchen", "test_accuracy", "electronics→kitchen ACC")]
    lines += ["| method | " + " | ".join(title for _, _, title in columns) + " |", "|---|" + "---|" * len(columns)]
    for method in METHODS:
        mine = [r for r in done if r["method"] == method]
        if not mine:
            continue
        cells = []
        for setting, key, _ in columns:
            values = [r[key] for r in mine if r["setting"] == setting and key in r]
            cells.append(cell(values) if values else "–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--epochs", type=float, default=3, help="passes over CIKM's target pairs")
    parser.add_argument("--amazon-epochs", type=float, default=10,
                        help="passes over the Amazon target reviews (200 reviews: 7 steps an epoch)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--qqp-rows", type=int, default=4000, help="Quora pairs of the source")
    parser.add_argument("--cikm-rows", type=int, default=1000, help="CIKM train pairs of the target")
    parser.add_argument("--source-rows", type=int, default=1600, help="Amazon source reviews")
    parser.add_argument("--target-rows", type=int, default=200, help="Amazon target reviews to train on")
    parser.add_argument("--set", action="append", default=[], help="extra config KEY=VALUE for every run")
    parser.add_argument("--runs", default="runs/bench-feature-tl")
    parser.add_argument("--log", default=None, help="JSON-lines file of finished runs (appended; done runs skipped)")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one seed, a few steps: checks the script")
    parser.add_argument("--readme", action="store_true")
    parser.add_argument("--where", default=f"{os.cpu_count()} CPU cores")
    args = parser.parse_args()
    from etk_core.data.datasets.shared import shared_datasets_dir

    if not shared_datasets_dir():
        raise SystemExit("feature_tl needs the shared datasets folder (set ETK_DATASETS_DIR)")
    if args.quick:
        args.seeds, args.set = args.seeds[:1], [*args.set, "train.max_steps=3"]
    runs, log = Path(args.runs), Path(args.log or Path(args.runs) / "runs.jsonl")
    runs.mkdir(parents=True, exist_ok=True)
    done = read_log(log)
    for seed in [] if args.table_only else args.seeds:
        for setting in args.settings.split(","):
            for method in args.methods.split(","):
                key = f"{method}-{setting}-{seed}"
                if any(r["key"] == key for r in done):
                    continue
                if (runs / key).exists():
                    shutil.rmtree(runs / key)
                app, data = data_args(setting, runs, args)
                metrics = etk_train(["--app", app, "--algo", method, "--model", args.model, *data,
                                     "--set", f"seed={seed}", "--set", f"train.epochs={epochs(setting, args)}",
                                     "--set", f"train.max_length={args.max_length}",
                                     *sum((["--set", s] for s in args.set), [])], runs / key, key)
                if setting == "qqp-cikm":
                    metrics.update(positive_class(runs / key))
                record = {"key": key, "method": method, "setting": setting, "seed": seed, **metrics}
                done.append(record)
                append_log(log, [record])
                print(f"{key:32s} test acc {metrics.get('test_accuracy', float('nan')):.4f} "
                      f"({metrics['seconds']:.0f} s)", file=sys.stderr, flush=True)
    text = tables(done, args)
    print(text)
    if args.readme and not args.quick:
        write_section(README, BEGIN, END, text)


if __name__ == "__main__":
    main()
