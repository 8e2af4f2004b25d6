"""`src_then_tgt`: the sequential fine-tuning baseline (fine-tune on the source, then on the target from those
weights), with the budget of the transfer algorithms (each stage: train.epochs passes over the target's
batch count), so Table-8-style comparisons give every row the same steps."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from etk_core.artifact import DOMAINS_DIR
from etk_core.interfaces import Algorithm

SOURCE_ARTIFACT = f"{DOMAINS_DIR}/source"


class SrcThenTgt(Algorithm):
    """Stage `source`: the app model on the source data, selected on the target dev set, written to
    `RUN/domains/source`; stage `target`: that model fine-tuned on the target data (the run's `model/`)."""

    name = "src_then_tgt"
    description = "baseline: fine-tune on the source, then on the target from the source model's weights"
    roles: ClassVar[tuple[str, ...]] = ("target", "source")
    optional_roles: ClassVar[tuple[str, ...]] = ("dev", "test")
    apps: ClassVar[tuple[str, ...] | None] = ("text_classify", "text_match")

    def stages(self, run: Any) -> list[str]:
        return ["source", "target"]

    def stage(self, run: Any, name: str) -> Any:
        from etk_core.training import Stage

        cfg = run.config["train"]
        budget = cfg["max_steps"] or max(1, math.ceil(math.ceil(len(run.features("target")) / cfg["batch_size"])
                                                      * cfg["epochs"]))
        model = run.build_model()
        if name == "source":
            return Stage(name=name, model=model, streams={"source": run.stream("source")}, max_steps=budget,
                         dev=run.dev(), artifact=SOURCE_ARTIFACT)
        source = run.dir / SOURCE_ARTIFACT / "model.safetensors"
        if source.is_file():  # (no dev data: the source stage's last model; with dev: its best on target dev)
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(source)))
        return Stage(name=name, model=model, streams={"target": run.stream("target")}, max_steps=budget,
                     dev=run.dev())
