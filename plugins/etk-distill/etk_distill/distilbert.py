"""`distilbert`: DistilBERT's losses for a task (Sanh et al. 2019), on a student of half the depth."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_distill.base import TEACHER_OPTIONS, Distiller, attention_mask, inputs_of, rows


class DistilBert(Distiller):
    """L = 5·softCE(T=2) + 2·CE(y) + 1·L_cos, L_cos = 1 − cos(h_s, h_t) over the last layer's real tokens
    (the teacher's token states computed per batch by the frozen teacher). The student of half the depth
    at the teacher's width, started from every other teacher layer, is `--model student-of-teacher`."""

    name = "distilbert"
    description = "DistilBERT (task variant): soft cross-entropy, labels and cosine of last-layer token states"
    layer_losses = True
    same_width = True
    options: ClassVar[dict[str, Option]] = {
        **TEACHER_OPTIONS,
        "temperature": Option(float, 2.0, "T of the soft cross-entropy", above=0),
        "soft_weight": Option(float, 5.0, "weight of the soft cross-entropy", min=0),
        "hard_weight": Option(float, 2.0, "weight of the labels' cross-entropy", min=0),
        "cosine_weight": Option(float, 1.0, "weight of the cosine loss of the last layer's states", min=0),
    }

    def stage(self, run: Any, name: str) -> Any:
        from etk_core.training import Stage
        from etk_distill.internals import capture
        from etk_distill.losses import cosine_loss, soft_cross_entropy

        opts = run.config["algo"]
        logits = self.cached(run)["logits"]

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            import torch

            batch = batches["train"]
            with torch.no_grad(), capture(context.frozen["teacher"]) as taught:
                context.frozen["teacher"](**inputs_of(batch.tensors))
            with capture(context.model) as seen:
                out = context.model(**batch.tensors)
            return {"soft": soft_cross_entropy(out["logits"], rows(logits, batch.indices, context.device),
                                               opts["temperature"]),
                    "hard": out["loss"],
                    "cosine": cosine_loss(seen.hidden[-1], taught.hidden[-1], attention_mask(batch.tensors))}

        return Stage(name=name, model=run.build_model(), streams={"train": run.stream("train")}, step=step,
                     frozen={"teacher": self.teacher.model},
                     loss_weights={"soft": opts["soft_weight"], "hard": opts["hard_weight"],
                                   "cosine": opts["cosine_weight"]}, dev=run.dev())
