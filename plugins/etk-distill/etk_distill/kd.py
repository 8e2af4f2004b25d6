"""`kd`: vanilla knowledge distillation (Hinton et al. 2015) from a teacher's cached logits."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_distill.base import TEACHER_OPTIONS, Distiller, rows


class Kd(Distiller):
    """L = α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1−α)·CE(y, z_s); any student, any tokenizer."""

    name = "kd"
    description = "vanilla knowledge distillation: soft teacher logits (T², KL) plus the labels"
    options: ClassVar[dict[str, Option]] = {
        **TEACHER_OPTIONS,
        "temperature": Option(float, 5.0, "T, the softmax temperature of both logits", above=0),
        "alpha": Option(float, 0.2, "α, the weight of the soft loss (1 − α: the labels' cross-entropy)",
                        min=0, max=1),
    }

    def stage(self, run: Any, name: str) -> Any:
        from etk_core.training import Stage
        from etk_distill.losses import soft_kl

        opts = run.config["algo"]
        logits = self.cached(run)["logits"]

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            batch = batches["train"]
            out = context.model(**batch.tensors)
            return {"soft": soft_kl(out["logits"], rows(logits, batch.indices, context.device),
                                    opts["temperature"]),
                    "hard": out["loss"]}

        return Stage(name=name, model=run.build_model(), streams={"train": run.stream("train")}, step=step,
                     loss_weights={"soft": opts["alpha"], "hard": 1.0 - opts["alpha"]}, dev=run.dev())
