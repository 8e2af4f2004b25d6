"""Instance-based TL on the paper's paraphrase transfer pair: source `qqp:train` (Quora, 8,999 pairs), target
`cikm_en` (CIKM AnalytiCup 2018 English: train 2,000, dev 1,000, test 1,000, fixed splits).

Runs tgt_only, src_only, mixed, ruder_plank, rtl and mgtl with the same model, budget (steps = epochs over
the target train set, same batch sizes) and seeds, each through `etk train` in its own process, and prints a
table of test accuracy and AUC (mean ± sd over the seeds) like Table 9 of the EasyTransfer paper; `--readme`
writes the table into plugins/etk-instancetl/README.md between the BENCHMARK markers. The last line is one
JSON object with every run's figures. Needs the shared datasets folder (ETK_DATASETS_DIR or ../shared/datasets).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from etk_runs import etk_train, write_section

ALGOS = ("tgt_only", "src_only", "mixed", "ruder_plank", "rtl", "mgtl")
README = Path(__file__).resolve().parent.parent / "plugins" / "etk-instancetl" / "README.md"
BEGIN, END = "<!-- BENCHMARK:BEGIN -->", "<!-- BENCHMARK:END -->"


def train(algo: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """One `etk train` run; its final metrics."""
    return etk_train(["--app", "text_match", "--algo", algo, "--model", args.model,
                      "--data", "source=qqp:train", "--data", "target=cikm_en:train", "--data", "dev=cikm_en:dev",
                      "--data", "test=cikm_en:test", "--set", f"seed={seed}", "--set", f"train.epochs={args.epochs}",
                      "--set", f"train.max_length={args.max_length}", *sum((["--set", s] for s in args.set), [])],
                     workdir / f"{algo}-{seed}", f"{algo} seed {seed}")


def applies(assignment: str, algo: str) -> bool:
    """Whether `--set KEY=VALUE` applies to `algo` (an `algo.` key only where the algorithm has that option)."""
    from etk_core.registry import get_component

    key = assignment.split("=", 1)[0]
    return not key.startswith("algo.") or key[5:] in get_component("algorithms", algo).options


def table(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    def cell(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {sd:.4f}"

    lines = [f"Model `{args.model}`, {args.epochs} epochs over the 2,000 target pairs (same steps for every "
             f"algorithm), max length {args.max_length}, seeds {', '.join(map(str, args.seeds))}"
             + (f", `--set {' '.join(args.set)}`" if args.set else "") + f"; measured {time.strftime('%Y-%m-%d')} "
             f"on {args.where}.", "",
             "| algorithm | test ACC | test AUC | dev ACC | source kept | MMD² selected / rejected | minutes per run |",
             "|---|---|---|---|---|---|---|"]
    for algo, runs in results.items():
        kept = [r["source_kept"] for r in runs if "source_kept" in r]
        mmd = [(r["mmd_selected"], r["mmd_rejected"]) for r in runs if "mmd_selected" in r]
        lines.append(" | ".join([
            f"| {algo}", cell([r["test_accuracy"] for r in runs]), cell([r["test_auc"] for r in runs]),
            cell([r["dev_accuracy"] for r in runs]), f"{statistics.mean(kept):.2f}" if kept else "–",
            f"{statistics.mean(m[0] for m in mmd):.4f} / {statistics.mean(m[1] for m in mmd):.4f}" if mmd else "–",
            f"{statistics.mean(r['seconds'] for r in runs) / 60:.1f} |"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default=",".join(ALGOS), help="comma-separated algorithms")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], help="extra config KEY=VALUE for every run")
    parser.add_argument("--quick", action="store_true", help="one seed, a few steps: checks the script runs")
    parser.add_argument("--readme", action="store_true", help="write the table into the plugin README")
    parser.add_argument("--log", help="append each finished run's metrics to this JSON-lines file")
    parser.add_argument("--from-log", help="make the table from a --log file (runs done elsewhere, e.g. on a GPU)")
    parser.add_argument("--where", default=f"{os.cpu_count()} CPU cores", help="the machine, for the table")
    args = parser.parse_args()
    if args.from_log:
        results: dict[str, list[dict[str, float]]] = {}
        runs = [json.loads(line) for line in Path(args.from_log).read_text(encoding="utf-8").splitlines() if line]
        for algo in args.algos.split(","):
            results[algo] = [r for r in runs if r["algo"] == algo]
        args.seeds = sorted({r["seed"] for r in runs})
        text = table(results, args)
        print(text)
        if args.readme:
            write_section(README, BEGIN, END, text)
        return
    from etk_core.data.datasets.shared import shared_datasets_dir

    if not shared_datasets_dir():
        raise SystemExit("instance_tl needs the shared datasets folder (set ETK_DATASETS_DIR)")
    if args.quick:
        args.seeds, args.set = args.seeds[:1], [*args.set, "train.max_steps=4", "algo.trials=3"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:  # seeds outside: a cut-short run still has every algorithm
            for algo in args.algos.split(","):
                run_args = argparse.Namespace(**{**vars(args), "set": [s for s in args.set if applies(s, algo)]})
                metrics = train(algo, seed, run_args, Path(tmp))
                results.setdefault(algo, []).append(metrics)
                if args.log:
                    with open(args.log, "a", encoding="utf-8") as log:
                        log.write(json.dumps({"algo": algo, "seed": seed, **metrics}) + "\n")
                print(f"{algo:12s} seed {seed}: test acc {metrics['test_accuracy']:.4f} auc {metrics['test_auc']:.4f} "
                      f"({metrics['seconds']:.0f} s)", file=sys.stderr, flush=True)
    text = table(results, args)
    print(text)
    if args.readme and not args.quick:
        write_section(README, BEGIN, END, text)
    print(json.dumps({"args": {k: v for k, v in vars(args).items()}, "results": results}))


if __name__ == "__main__":
    main()
