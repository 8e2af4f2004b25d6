"""`etk_core.train(...)`: the Python entry point of training, and the orchestration `etk train` wraps.

A run is checked (components, data roles, app, strategy, --resume) before anything is launched or written;
a multi-process strategy launches its workers; this process (or each worker) reads and encodes the data,
creates the run folder, runs the algorithm's stages through the training engine, exports the best model
through the exporter registry and writes `summary.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etk_core.errors import ConfigError, EtkError

SUMMARY_FILE = "summary.json"


class WorkersFailed(EtkError):
    """A launched worker failed (it printed its own one-line error)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"a training worker failed with exit code {code}")
        self.exit_code = code


@dataclass
class RunResult:
    """What `etk_core.train` returns: the final metrics, the run folder and its model artifact."""

    metrics: dict[str, Any]
    run_dir: Path
    artifact: Path | None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The rows of the run's metrics.jsonl (see docs/metrics.md)."""
        path = self.run_dir / "metrics.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    @classmethod
    def read(cls, run_dir: Path) -> RunResult:
        """The result of a finished run from its folder (after workers trained it)."""
        import yaml

        summary = run_dir / SUMMARY_FILE
        if not summary.is_file():
            raise EtkError(f"{run_dir}: no {SUMMARY_FILE}; the run did not finish (continue it with --resume)")
        artifact = run_dir / "model"
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
        return cls(json.loads(summary.read_text(encoding="utf-8")), run_dir,
                   artifact if artifact.is_dir() else None, config)


def train(config: dict[str, Any] | str | Path | None = None, *, app: str | None = None, algo: str | None = None,
          model: str | None = None, data: dict[str, str] | None = None, strategy: str | None = None,
          nproc: int | None = None, output: str | Path | None = None, resume: bool = False,
          export: bool | None = None, seed: int | None = None, settings: dict[str, Any] | None = None,
          on_progress: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    """Train a run and return its RunResult.

    `config` is a config dict or a YAML/JSON file; the keyword arguments override it like the CLI's flags,
    and `settings` holds dotted keys like `--set` (`{"train.epochs": 1}`). `on_progress` receives a dict per
    event (`start`, `step`, `finish`); without it training is silent."""
    from etk_core import config as config_mod
    from etk_core.training.reporter import CallbackReporter, SilentReporter

    flags = {"app.name": app, "algo.name": algo, "model.name": model, "strategy.name": strategy,
             "output": str(output) if output is not None else None, "data.sources": data or None,
             "export": export, "strategy.nproc": nproc, "seed": seed}
    sets = [f"{key}={_as_text(value)}" for key, value in (settings or {}).items()]
    if isinstance(config, dict):
        resolved = config_mod.resolve(None, flags={**_flatten(config), **{k: v for k, v in flags.items()
                                                                        if v is not None}}, sets=sets)
    else:
        resolved = config_mod.resolve(config, flags, sets)
    reporter = CallbackReporter(on_progress) if on_progress else SilentReporter()
    return execute(resolved, resume=resume, reporter=reporter)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "sources":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _as_text(value: Any) -> str:
    """A Python value as `--set` would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def execute(config: dict[str, Any], resume: bool = False, reporter: Any = None, nodes: Any = None,
            verbose: bool = False) -> RunResult:
    """Run a resolved config here, or launch its workers and read the result they wrote."""
    from etk_core.launch import Nodes, is_worker, launch_workers
    from etk_core.run import check_run, default_output

    if resume and not config["output"]:
        raise ConfigError("--resume needs --output RUN_FOLDER (the run to continue)")
    if not is_worker():
        _, _, strategy_cls = check_run(config, resume)
        nodes = nodes or Nodes()
        if nodes.count > 1 and "nproc" not in strategy_cls.options:
            raise ConfigError(f"--nnodes needs a multi-process strategy (ddp, megatron), not {strategy_cls.name!r}")
        processes = strategy_cls(config["strategy"], config["train"]).processes()
        if processes * nodes.count > 1:
            config = {**config, "output": config["output"] or str(default_output(config))}
            code = launch_workers(config, processes, ["--resume"] if resume else [], verbose, nodes)
            if code:
                raise WorkersFailed(code)
            return RunResult.read(Path(config["output"])) if nodes.rank == 0 else RunResult({}, Path(
                config["output"]), None, config)
    return train_here(config, resume, reporter)


def train_here(config: dict[str, Any], resume: bool = False, reporter: Any = None) -> RunResult:
    """Train in this process (alone, or as one launched worker)."""
    from etk_core.run import prepare

    run = prepare(config, resume=resume)
    try:
        return _train_prepared(run, reporter)
    finally:
        if run.lock is not None:  # the run folder is free for the next run (of this process, too)
            run.lock.close()


def _train_prepared(run: Any, reporter: Any) -> RunResult:
    from etk_core.io import atomic_write_text
    from etk_core.run import start

    main = run.strategy.is_main_process()
    if main:
        start(run)
    run.strategy.barrier()
    run.reporter = reporter if main else None
    try:
        metrics = run_algorithm(run)
    finally:
        _leave_process_group()
    artifact = run.dir / "model"
    if main and run.config["export"] and artifact.is_dir():
        metrics.update(export_artifact(run, artifact))
    if not main:  # the main process reports
        return RunResult({}, run.dir, None, run.config)
    atomic_write_text(run.dir / SUMMARY_FILE, json.dumps(metrics, indent=1))
    record_final_figures(run.dir, metrics, artifact if artifact.is_dir() else None)
    return RunResult(metrics, run.dir, artifact if artifact.is_dir() else None, run.config)


def record_final_figures(run_dir: Path, figures: dict[str, Any], artifact: Path | None) -> None:
    """Keep the run's final figures (test metrics, an algorithm's own) where they outlive the terminal: a
    `{"kind": "final"}` row closing metrics.jsonl (one, also after a `--resume`) and `final` in the artifact's
    etk.json."""
    from etk_core.artifact import META_FILE, read_meta
    from etk_core.io import atomic_write_text

    log = run_dir / "metrics.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    kept = [line for line in lines if line.strip() and json.loads(line).get("kind") != "final"]
    stages = [json.loads(line).get("stage") for line in kept]
    row = {"kind": "final", "stage": stages[-1] if stages else "train", "step": figures.get("steps", 0),
           **figures}
    atomic_write_text(log, "".join(line + "\n" for line in [*kept, json.dumps(row)]))
    if artifact is not None:
        meta = read_meta(artifact)
        meta["final"] = figures
        atomic_write_text(artifact / META_FILE, json.dumps(meta, indent=1))


def _leave_process_group() -> None:
    """End this worker's part in the process group (left to interpreter shutdown, gloo's threads can abort
    the process after a successful run)."""
    import sys

    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_algorithm(run: Any) -> dict[str, Any]:
    """Train every stage of the run's algorithm through the engine; its summary (or the core's default)."""
    from etk_core.training.stages import train_stages
    from etk_core.training.summary import default_summary

    results = train_stages(run, run.algorithm)
    summary = run.algorithm.summary(run, results)
    return summary if summary is not None else default_summary(run, results)


def export_artifact(run: Any, artifact: Path, exporter: str = "onnx") -> dict[str, float]:
    """Export the run's best model through the exporter registry (as `etk export` does); its figures."""
    from etk_core.export.runtime import export_meta
    from etk_core.registry import get_component

    get_component("exporters", exporter)().export(artifact, {"loaded": run.best_artifact()})
    record = export_meta(artifact)
    return {"onnx_max_abs_diff": record["max_abs_diff"]} if "max_abs_diff" in record else {}
