"""An algorithm's stages, one after the other, each trained by the loop; a stage's result is written before the
next one starts, and `--resume` continues in the stage (and at the step) where the run stopped."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from etk_core.errors import EtkError
from etk_core.io import atomic_write_text
from etk_core.training.checkpoint import checkpoints, latest_checkpoint, load_algorithm_state, read_state, save_marker
from etk_core.training.loop import LoopResult, TrainingLoop

STAGES_FILE = "stages.json"
logger = logging.getLogger("etk.resume")


def _truncate_log(run_dir: Path, names: list[str], index: int, step: int | None) -> None:
    """Drop metrics rows written after the point we resume from (they will be written again): rows of later
    stages, and of stage `index` after `step` (all of them when the stage restarts, `step` None)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        position = names.index(row["stage"]) if row.get("stage") in names else -1
        if position < index or (position == index and step is not None and row.get("step", 0) <= step):
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _stage_records(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STAGES_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _resume_point(ckpt_dir: Path, engine: Any) -> Path | None:
    """The newest intact checkpoint to resume from (a warning where a newer one is damaged, which the main
    process then moves aside as `.NAME.damaged` so that retention never keeps it over the new ones)."""
    warnings: list[str] = []
    found = latest_checkpoint(ckpt_dir, warn=warnings.append)
    engine.barrier()  # every process has chosen before the main one moves anything
    if warnings and engine.is_main_process:
        logger.warning("%s", warnings[0])
        for path in checkpoints(ckpt_dir):
            if found is not None and _newer(path, found):
                aside = path.with_name(f".{path.name}.damaged")
                shutil.rmtree(aside, ignore_errors=True)
                path.rename(aside)
    return found


def _newer(path: Path, than: Path) -> bool:
    names = [p.name for p in checkpoints(than.parent)]
    return names.index(path.name) > names.index(than.name)


def train_stages(run: Any, algorithm: Any) -> dict[str, LoopResult]:
    """Run every stage of `algorithm` (resuming where `run.resume` says); their results by stage name."""
    names = list(algorithm.stages(run))
    if len(set(names)) != len(names) or not names:
        raise EtkError(f"algorithm {algorithm.name!r} declares stages {names}; they must be distinct and not empty")
    engine = run.engine()
    ckpt_dir = run.dir / "checkpoints"
    start, resume_from = 0, None
    keep = run.config["train"].get("keep_checkpoints", 1)
    found = _resume_point(ckpt_dir, engine) if run.resume else None
    if found:
        saved = read_state(found)
        if saved.get("stage", names[0]) not in names:
            raise EtkError(f"{found}: checkpoint of stage {saved.get('stage')!r}, which algorithm "
                           f"{algorithm.name!r} does not have; resume with the run's own config")
        algorithm.load_state_dict(load_algorithm_state(found))
        index = names.index(saved.get("stage", names[0]))
        start, resume_from = (index + 1, None) if saved.get("done") else (index, found)
        if saved.get("done"):
            engine.restore_rng(found)
        if engine.is_main_process:
            _truncate_log(run.dir, names, start, saved["step"] if resume_from else None)
    elif run.resume and engine.is_main_process:
        _truncate_log(run.dir, names, 0, None)
    records = _stage_records(run.dir)
    results = {name: LoopResult.from_dict(records[name]) for name in names[:start] if name in records}
    if found and saved.get("done") and names[start - 1] not in results and "best" in saved:
        # stopped after the stage's last checkpoint, before its record was written: the checkpoint has it
        results[names[start - 1]] = LoopResult.from_state(saved)
    prefix = (lambda name: f"{name}-") if len(names) > 1 else (lambda name: "")
    for index in range(start, len(names)):
        name = names[index]
        stage = algorithm.stage(run, name)
        if stage.run_once is not None:
            figures = stage.run_once() or {}
            result = LoopResult(steps=0, best_metrics=None, last_metrics=None, samples_per_s=0.0, figures=figures)
            if engine.is_main_process:
                save_marker(ckpt_dir, {"stage": name, "stage_index": index, "done": True, "step": 0},
                            algorithm.state_dict(), f"{prefix(name)}step-0000000", keep=keep)
        else:
            artifact = stage.artifact

            def on_best(model: Any, metrics: dict[str, float], folder: str | None = artifact,
                        extra: Any = stage.extra_artifacts) -> None:
                if folder is not None:
                    run.save_artifact(model, metrics, folder=folder)
                for subfolder, other in (extra() if extra else {}).items():
                    run.save_artifact(other, metrics, folder=subfolder)

            loop = TrainingLoop(stage=stage, app=run.app, config=run.config, engine=engine, run_dir=run.dir,
                                on_best=on_best, reporter=run.reporter if engine.is_main_process else None,
                                resume_from=resume_from if index == start else None,
                                algorithm_state=algorithm.state_dict, stage_index=index,
                                checkpoint_prefix=prefix(name))
            result = loop.fit()
        results[name] = result
        if engine.is_main_process:
            records[name] = result.as_dict()
            atomic_write_text(run.dir / STAGES_FILE, json.dumps(records, indent=1))
        engine.barrier()  # the main process has written the stage's result before anyone reads it
    return results
