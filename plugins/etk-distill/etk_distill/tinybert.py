"""`tinybert`: TinyBERT's task distillation (Jiao et al. 2020) in two stages: the intermediate layers
(embeddings, hidden states, pre-softmax attention scores), then the prediction layer."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_distill.base import TEACHER_OPTIONS, Distiller, attention_mask, inputs_of, rows

#: The run folder's artifact of the student after the intermediate stage (the prediction stage starts from it).
INTERMEDIATE_ARTIFACT = "intermediate"


class TinyBert(Distiller):
    """Stage `intermediate`: L_embd + L_hidn + L_attn over the layer map g(m) = m·L_T/L_S (learnt projections
    W_e, W_h where the widths differ); stage `prediction`: softCE(z_s/t, z_t/t) on the teacher's logits."""

    name = "tinybert"
    description = "TinyBERT: intermediate-layer distillation (attention scores, states), then prediction layer"
    layer_losses = True
    options: ClassVar[dict[str, Option]] = {
        **TEACHER_OPTIONS,
        "temperature": Option(float, 1.0, "t of the prediction stage's soft cross-entropy", above=0),
        "intermediate_epochs": Option((float, type(None)), None, "epochs of the intermediate stage (null: "
                                      "train.epochs)", above=0),
        "intermediate_lr": Option((float, type(None)), None, "learning rate of the intermediate stage (null: "
                                  "train.lr)", above=0),
        "attention_weight": Option(float, 1.0, "weight of L_attn", min=0),
        "hidden_weight": Option(float, 1.0, "weight of L_hidn", min=0),
        "embedding_weight": Option(float, 1.0, "weight of L_embd", min=0),
    }

    def stages(self, run: Any) -> list[str]:
        return ["intermediate", "prediction"]

    def stage(self, run: Any, name: str) -> Any:
        return self._intermediate(run) if name == "intermediate" else self._prediction(run)

    def _intermediate(self, run: Any) -> Any:
        import torch

        from etk_core.training import Stage, Trainable
        from etk_distill.internals import capture, encoder_of, layer_count
        from etk_distill.layer_maps import uniform_layers
        from etk_distill.losses import attention_loss, masked_mse

        opts = run.config["algo"]
        model = run.build_model()
        teacher = self.teacher.model
        widths = (encoder_of(model).config.hidden_size, encoder_of(teacher).config.hidden_size)
        mapped = uniform_layers(layer_count(teacher), layer_count(model))
        modules = {}
        if widths[0] != widths[1]:  # W_e and W_h: one projection per matched state, student width -> teacher's
            projections = torch.nn.ModuleList(torch.nn.Linear(*widths) for _ in mapped)
            modules["projections"] = Trainable(projections, lr=opts["intermediate_lr"] or run.config["train"]["lr"])

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            batch = batches["train"]
            mask = attention_mask(batch.tensors)
            with torch.no_grad(), capture(context.frozen["teacher"], attention=True) as taught:
                context.frozen["teacher"](**inputs_of(batch.tensors))
            with capture(context.model, attention=True) as seen:
                context.model(**inputs_of(batch.tensors))
            project = context.modules.get("projections")
            states = [project[m](seen.hidden[m]) if project is not None else seen.hidden[m]
                      for m in range(len(mapped))]
            return {"embedding": masked_mse(states[0], taught.hidden[mapped[0]], mask),
                    "hidden": sum(masked_mse(states[m], taught.hidden[mapped[m]], mask)
                                  for m in range(1, len(mapped))),
                    "attention": sum(attention_loss(seen.scores[m - 1], taught.scores[mapped[m] - 1], mask)
                                     for m in range(1, len(mapped)))}

        return Stage(name="intermediate", model=model, streams={"train": run.stream("train")}, step=step,
                     modules=modules, frozen={"teacher": teacher}, epochs=opts["intermediate_epochs"],
                     lr=opts["intermediate_lr"], artifact=INTERMEDIATE_ARTIFACT,
                     loss_weights={"embedding": opts["embedding_weight"], "hidden": opts["hidden_weight"],
                                   "attention": opts["attention_weight"]})

    def _prediction(self, run: Any) -> Any:
        from safetensors.torch import load_file

        from etk_core.training import Stage
        from etk_distill.losses import soft_cross_entropy

        opts = run.config["algo"]
        logits = self.cached(run)["logits"]
        model = run.build_model()
        model.load_state_dict(load_file(str(run.dir / INTERMEDIATE_ARTIFACT / "model.safetensors")))

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            batch = batches["train"]
            out = context.model(**inputs_of(batch.tensors))
            return {"soft": soft_cross_entropy(out["logits"], rows(logits, batch.indices, context.device),
                                               opts["temperature"])}

        return Stage(name="prediction", model=model, streams={"train": run.stream("train")}, step=step,
                     dev=run.dev())
