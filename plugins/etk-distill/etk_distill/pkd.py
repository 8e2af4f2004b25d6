"""`pkd`: BERT-PKD (Sun et al. 2019), patient distillation of the teacher's intermediate [CLS] states."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_distill.base import TEACHER_OPTIONS, Distiller, rows


class Pkd(Distiller):
    """L = (1−α)·CE + α·T²·KL_soft + β·Σ_j ‖ĥ_s^j − ĥ_t^{I(j)}‖², ĥ the normalised [CLS] of the student's
    intermediate layers and of the teacher layers I(j) (`skip` or `last`)."""

    name = "pkd"
    description = "BERT-PKD: soft logits plus the normalised [CLS] of intermediate layers (skip or last)"
    layer_losses = True
    same_width = True
    options: ClassVar[dict[str, Option]] = {
        **TEACHER_OPTIONS,
        "temperature": Option(float, 10.0, "T, the softmax temperature", above=0),
        "alpha": Option(float, 0.5, "α, the weight of the soft loss (1 − α: the labels')", min=0, max=1),
        "beta": Option(float, 100.0, "β, the weight of the patient loss", min=0),
        "strategy": Option(str, "skip", "teacher layers the student's intermediate layers match: skip or last"),
    }

    def check_run(self, run: Any) -> None:
        from etk_core.errors import ConfigError
        from etk_distill.layer_maps import PKD_STRATEGIES

        if run.config["algo"]["strategy"] not in PKD_STRATEGIES:
            raise ConfigError(f"algo.strategy={run.config['algo']['strategy']!r}: choose "
                              f"{' or '.join(PKD_STRATEGIES)}")
        super().check_run(run)

    def stage(self, run: Any, name: str) -> Any:
        from etk_core.training import Stage
        from etk_distill.internals import capture, layer_count
        from etk_distill.layer_maps import pkd_layers
        from etk_distill.losses import patient_loss, soft_kl

        opts = run.config["algo"]
        cached = self.cached(run)
        model = run.build_model()
        matched = pkd_layers(opts["strategy"], layer_count(self.teacher.model), layer_count(model))

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            batch = batches["train"]
            with capture(context.model) as seen:
                out = context.model(**batch.tensors)
            teacher_cls = rows(cached["cls"], batch.indices, context.device)
            return {"soft": soft_kl(out["logits"], rows(cached["logits"], batch.indices, context.device),
                                    opts["temperature"]),
                    "hard": out["loss"],
                    "patient": patient_loss([seen.hidden[j][:, 0] for j in range(1, len(matched) + 1)],
                                            [teacher_cls[:, layer] for layer in matched])}

        return Stage(name=name, model=model, streams={"train": run.stream("train")}, step=step,
                     loss_weights={"soft": opts["alpha"], "hard": 1.0 - opts["alpha"], "patient": opts["beta"]},
                     dev=run.dev())
