"""Distillation on the Amazon reviews of 4 domains (books, dvd, electronics, kitchen), like Table 10 of the
EasyTransfer paper: each domain's own split (train 1,600, dev 400, used as the test set: every run trains a
fixed budget and selects its best model on reviews held out of the train split), >= 3 seeds, mean ± sd.

Per domain and seed: the teacher (`--teacher-model`, fine-tuned on the domain), the student alone (the same
`student-of-teacher`, half the teacher's layers, fine-tuned without a teacher), then kd, pkd, distilbert,
tinybert (students of that teacher), kd and metakd from a mixed-domain teacher (fine-tuned on all four
domains), and adabert. Every run is `etk train` in its own process. The accuracy table (per domain and
average, parameters) comes with an ONNX Runtime speed table measured in the same run: each architecture's
latency per example (batch 1) and throughput (batch 32) on the dev texts, and the QPS ratio to the teacher.
`--log` appends each finished run to a JSON-lines file and skips runs already there (a cut-short benchmark
goes on where it stopped); `--readme` writes the tables into plugins/etk-distill/README.md. Needs the shared
datasets folder (ETK_DATASETS_DIR or ../shared/datasets).
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

DOMAINS = ("books", "dvd", "electronics", "kitchen")
METHODS = ("teacher", "student", "kd", "pkd", "distilbert", "tinybert", "mixed_teacher", "kd_mixed", "metakd",
           "adabert")
README = Path(__file__).resolve().parent.parent / "plugins" / "etk-distill" / "README.md"
BEGIN, END = "<!-- BENCHMARK:BEGIN -->", "<!-- BENCHMARK:END -->"


def write_splits(folder: Path, rows: int, heldout: int) -> None:
    """Per domain, `rows` training reviews and `heldout` more as the dev set that selects the best model
    (both from the dataset's train split, so the test split stays unseen), and the four domains together
    with their domain column (for the mixed teacher and metakd)."""
    import csv

    from etk_core.data.load import load_records

    folder.mkdir(parents=True, exist_ok=True)
    every: dict[str, list[dict[str, Any]]] = {"train": [], "dev": []}
    for domain in DOMAINS:
        records = load_records(f"amazon_{domain}:train", {})
        for split, chosen in (("train", records[:rows]), ("dev", records[rows: rows + heldout])):
            chosen = [{"text": r["text"], "label": r["label"], "domain": domain} for r in chosen]
            every[split] += chosen
            _write_tsv(folder / f"{split}-{domain}.tsv", chosen, csv)
    for split, chosen in every.items():
        _write_tsv(folder / f"{split}-all.tsv", chosen, csv)


def _write_tsv(path: Path, records: list[dict[str, Any]], csv: Any) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, ["text", "label", "domain"], delimiter="\t")
        writer.writeheader()
        writer.writerows({**r, "text": " ".join(r["text"].split())} for r in records)


def data(splits: Path, domain: str, which: str | None = None) -> list[str]:
    """Train and held-out dev of `which` (a domain, or `all`), and the domain's test split."""
    which = which or domain
    return ["--data", f"train={splits / f'train-{which}.tsv'}", "--data", f"dev={splits / f'dev-{which}.tsv'}",
            "--data", f"test=amazon_{domain}:dev"]


def run_args(method: str, domain: str, seed: int, runs: Path, args: argparse.Namespace) -> list[str]:
    """The `etk train` arguments of one method (teachers are earlier runs under `runs`)."""
    teacher = runs / f"teacher-{domain}-{seed}"
    mixed = runs / f"mixed_teacher-{seed}"
    splits = runs / "splits"
    student = ["--model", "student-of-teacher", "--set", f"model.layers={args.student_layers}"]
    common = ["--app", "text_classify", "--set", f"seed={seed}", "--set", f"train.epochs={args.epochs}",
              "--set", f"train.max_length={args.max_length}", *sum((["--set", s] for s in args.set), [])]
    if method == "teacher":
        return [*common, "--model", args.teacher_model, *data(splits, domain)]
    if method == "mixed_teacher":  # all four domains; scored on each domain's test split afterwards
        return [*common, "--model", args.teacher_model, *data(splits, domain, "all")]
    if method == "student":
        return [*common, *student, "--set", f"model.teacher={teacher}", *data(splits, domain)]
    if method in ("kd", "pkd", "distilbert", "tinybert"):
        return [*common, "--algo", method, *student, "--set", f"model.teacher={teacher}", *data(splits, domain)]
    if method == "kd_mixed":
        return [*common, "--algo", "kd", *student, "--set", f"model.teacher={mixed}", *data(splits, domain)]
    if method == "metakd":
        return [*common, "--algo", "metakd", *student, "--set", f"model.teacher={mixed}",
                *data(splits, domain, "all"), "--set", f"algo.target_domain={domain}"]
    if method == "adabert":
        return [*common, "--algo", "adabert", "--model", "adabert-cnn", "--set", f"model.teacher={teacher}",
                *data(splits, domain)]
    raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def speed(folder: Path, texts: list[str], threads: int) -> dict[str, float]:
    """ONNX Runtime latency per example (batch 1, ms) and throughput (batch 32, examples/s) of an export,
    with `threads` intra-op threads."""
    from etk_core.predict import Predictor

    one = Predictor(folder, batch_size=1, backend="onnx", threads=threads)
    one.predict(texts[:5])
    started = time.perf_counter()
    for text in texts:
        one.predict([text])
    latency = (time.perf_counter() - started) / len(texts) * 1000
    many = Predictor(folder, batch_size=32, backend="onnx", threads=threads)
    many.predict(texts[:32])
    started = time.perf_counter()
    many.predict(texts)
    return {"ms_per_example": round(latency, 2), "qps": round(len(texts) / (time.perf_counter() - started), 1)}


def artifact_params(run: Path) -> int:
    """Parameters stored in a run's model artifact."""
    import math

    from safetensors import safe_open

    with safe_open(str(run / "model" / "model.safetensors"), "pt") as weights:
        return sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())  # noqa: SIM118


def cell(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values) * 100:.1f} ± {sd * 100:.1f}"


def tables(runs: list[dict[str, Any]], speeds: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    seeds = sorted({r["seed"] for r in runs})
    lines = [f"Teacher `{args.teacher_model}`; students `student-of-teacher` with {args.student_layers} layers; "
             f"{args.epochs} epochs over {args.train_rows} training reviews per domain (best of each epoch on "
             f"{args.heldout} more held out), max length {args.max_length}; test = each domain's dev split (400); "
             f"seeds "
             f"{', '.join(map(str, seeds))}; measured {time.strftime('%Y-%m-%d')} on {args.where}.", "",
             "| method | " + " | ".join(DOMAINS) + " | average | parameters |",
             "|---|" + "---|" * (len(DOMAINS) + 2)]
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        by_domain = [[r["test_accuracy"] for r in mine if r["domain"] == d] for d in DOMAINS]
        average = [statistics.mean(r["test_accuracy"] for r in mine if r["seed"] == s and r["domain"] in DOMAINS)
                   for s in seeds if any(r["seed"] == s for r in mine)]
        params = mine[0].get("student_params") or (artifact_params(Path(mine[0]["run"]))
                                                    if Path(mine[0]["run"], "model").is_dir() else None)
        lines.append(f"| {method} | " + " | ".join(cell(v) if v else "–" for v in by_domain)
                     + f" | {cell(average)} | " + (f"{params / 1e6:.1f}M |" if params else "– |"))
    if speeds:
        base = speeds.get("teacher")
        lines += ["", f"ONNX Runtime (fp32, {args.threads} intra-op thread(s)), 200 dev texts of "
                  f"{args.domains.split(',')[0]}, measured one after the other in this run:", "",
                  "| model | ms per example (batch 1) | examples/s (batch 32) | QPS vs teacher |",
                  "|---|---|---|---|"]
        for name, figures in speeds.items():
            ratio = f"{figures['qps'] / base['qps']:.2f}×" if base else "–"
            lines.append(f"| {name} | {figures['ms_per_example']} | {figures['qps']} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods, in order")
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--teacher-model", default="minilm-l6")
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--train-rows", type=int, default=1400, help="training reviews per domain")
    parser.add_argument("--heldout", type=int, default=200, help="reviews per domain held out of train as dev")
    parser.add_argument("--set", action="append", default=[], help="extra config KEY=VALUE for every run")
    parser.add_argument("--runs", default="runs/bench-distill", help="folder of the benchmark's run folders")
    parser.add_argument("--log", default=None, help="JSON-lines file of finished runs (appended; done runs skipped)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for the speed table")
    parser.add_argument("--table-only", action="store_true", help="train nothing: the tables of the runs in the log")
    parser.add_argument("--no-speed", action="store_true", help="skip the ONNX Runtime speed table")
    parser.add_argument("--quick", action="store_true", help="one seed, one domain, a few steps: checks the script")
    parser.add_argument("--readme", action="store_true", help="write the tables into the plugin README")
    parser.add_argument("--where", default=f"{os.cpu_count()} CPU cores", help="the machine, for the table")
    args = parser.parse_args()
    from etk_core.data.datasets.shared import shared_datasets_dir

    if not shared_datasets_dir():
        raise SystemExit("distill needs the shared datasets folder (set ETK_DATASETS_DIR)")
    if args.quick:
        args.seeds, args.domains, args.set = args.seeds[:1], args.domains.split(",")[0], [*args.set,
                                                                                          "train.max_steps=4"]
    runs_dir, log = Path(args.runs), Path(args.log or Path(args.runs) / "runs.jsonl")
    runs_dir.mkdir(parents=True, exist_ok=True)
    if not (runs_dir / "splits" / "dev-all.tsv").is_file():
        write_splits(runs_dir / "splits", args.train_rows, args.heldout)
    done = read_log(log)
    methods = args.methods.split(",")
    # seeds outside: a cut-short benchmark has every method for the first seeds
    for seed in [] if args.table_only else args.seeds:
        for domain in args.domains.split(","):
            for method in methods:
                key = run_key(method, domain, seed)
                if any(r["key"] == key or r["key"].startswith(key + "-") for r in done):
                    continue
                teacher = TEACHER_OF.get(method)
                if teacher and not (runs_dir / run_key(teacher, domain, seed) / "model").is_dir():
                    # logged by an earlier session whose run folders are gone: train it again, log it once
                    train_one(teacher, domain, seed, runs_dir, args)
                records = train_one(method, domain, seed, runs_dir, args)
                done.extend(records)
                append_log(log, records)
    speeds = {} if args.no_speed else measure_speeds(runs_dir, methods, args)
    text = tables(done, speeds, args)
    print(text)
    if args.readme and not args.quick:
        write_section(README, BEGIN, END, text)


TEACHER_OF = {"student": "teacher", "kd": "teacher", "pkd": "teacher", "distilbert": "teacher",
              "tinybert": "teacher", "adabert": "teacher", "kd_mixed": "mixed_teacher", "metakd": "mixed_teacher"}


def run_key(method: str, domain: str, seed: int) -> str:
    """The run folder's name (and log key) of one method, domain and seed; one mixed teacher per seed."""
    return f"{method}-{seed}" if method == "mixed_teacher" else f"{method}-{domain}-{seed}"


def train_one(method: str, domain: str, seed: int, runs_dir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train one method's run (a folder left by a cut-short run is started again); its log records."""
    key = run_key(method, domain, seed)
    if (runs_dir / key).exists():
        shutil.rmtree(runs_dir / key)
    metrics = etk_train(run_args(method, domain, seed, runs_dir, args), runs_dir / key, key)
    metrics.setdefault("student_params", artifact_params(runs_dir / key))
    records = [{"key": key, "method": method, "domain": domain, "seed": seed, **metrics}]
    if method == "mixed_teacher":  # one teacher for every domain: scored on each domain's test split
        records = [{**records[0], "key": f"{key}-{other}", "domain": other,
                    "test_accuracy": domain_accuracy(runs_dir / key, other)} for other in DOMAINS]
    print(f"{key:28s} test acc {metrics.get('test_accuracy', float('nan')):.4f} ({metrics['seconds']:.0f} s)",
          file=sys.stderr, flush=True)
    return records


def domain_accuracy(run: Path, domain: str) -> float:
    """A model's accuracy on one domain's test split (the dev split of the dataset)."""
    import etk_core
    from etk_core.data.load import load_records

    return etk_core.load(run, backend="torch").evaluate(load_records(f"amazon_{domain}:dev", {}))["accuracy"]


def measure_speeds(runs_dir: Path, methods: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Export one run of each architecture (teacher, half-depth student, adabert) and time it."""
    import subprocess

    from etk_core.data.load import load_records

    seed, domain = args.seeds[0], args.domains.split(",")[0]
    texts = [r["text"] for r in load_records(f"amazon_{domain}:dev", {})][:200]
    chosen = {"teacher": f"teacher-{domain}-{seed}", f"student ({args.student_layers} layers)": f"kd-{domain}-{seed}",
              "adabert": f"adabert-{domain}-{seed}"}
    speeds = {}
    for name, key in chosen.items():
        folder = runs_dir / key
        if not (folder / "model").is_dir():
            continue
        subprocess.run([sys.executable, "-m", "etk_core", "export", str(folder)], check=True, capture_output=True)
        speeds[name] = speed(folder, texts, threads=args.threads)
    return speeds


if __name__ == "__main__":
    main()
