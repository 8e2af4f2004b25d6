"""`drss` and `drss_adv`: Domain-Relationship Specific-Shared transfer (Yu, Qiu et al., WSDM 2018). Three
encoders over shared embeddings (source-private f_s, shared f_c, target-private f_t), z_src = W_s f_s + W_c^s
f_c and z_tgt = W_t f_t + W_c^t f_c, and the task weights related through Ω."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from etk_core.config import Option
from etk_featuretl.shared_private import adversarial_loss, adversary
from etk_featuretl.transfer import ADVERSARIAL_OPTIONS, PRIVATE_OPTIONS, FeatureTransfer

#: The rows of W (and of Ω), in the spec's order.
WEIGHT_NAMES = ("W_s", "W_c^s", "W_t", "W_c^t")
RELATION_FILE = "domain_relationship.json"
HEATMAP_FILE = "domain_relationship.png"


class Drss(FeatureTransfer):
    """W = [vec W_s; vec W_c^s; vec W_t; vec W_c^t] (4 × d·C); R = tr(Wᵀ Ω⁺ W), Ω = I/4 at first; each step
    optimises CE_src + μR + CE_tgt + μR on one source and one target batch (the spec's two steps, in one
    optimiser step, so R counts twice); after each pass over the target data Ω = (WWᵀ)^½ / tr((WWᵀ)^½). Ω and
    its correlations are written to `domain_relationship.json` and drawn in `domain_relationship.png`; the run
    summary prints the correlations (`relation_<row>~<row>`). [choice] The optimiser is the engine's AdamW at
    train.lr for every encoder (the original's Adagrad at 0.08 was for CNN encoders)."""

    name = "drss"
    description = "DRSS: source-private, shared and target-private encoders; task weights related by Ω (SVD)"
    max_sources: ClassVar[int | None] = 1
    options: ClassVar[dict[str, Option]] = {
        **FeatureTransfer.options, **PRIVATE_OPTIONS,
        "mu": Option(float, 2e-4, "μ: weight of the relationship regulariser R in each domain's loss", min=0),
    }
    omega: Any = None
    updates: int = 0

    def loss_weights(self) -> dict[str, float]:
        return {"relation": 2 * float(self.opts["mu"])}

    def stacked_weights(self) -> Any:
        """W, one vectorised head part per row (W_s, W_c^s, W_t, W_c^t)."""
        import torch

        shared_target, private_target = self.model.head_weights(0)
        shared_source, private_source = self.model.head_weights(1)
        return torch.stack([private_source.reshape(-1), shared_source.reshape(-1), private_target.reshape(-1),
                            shared_target.reshape(-1)])

    def current_omega(self) -> Any:
        import torch

        if self.omega is None:
            self.omega = torch.eye(len(WEIGHT_NAMES)) / len(WEIGHT_NAMES)
        return self.omega

    def extra_losses(self, context: Any, views: list[dict[str, Any]]) -> dict[str, Any]:
        from etk_featuretl.losses import relation_regulariser

        return {"relation": relation_regulariser(self.stacked_weights(), self.current_omega())}

    def on_epoch_end(self, context: Any, epoch: int) -> dict[str, float]:
        from etk_featuretl.losses import update_omega

        self.omega = update_omega(self.stacked_weights())
        self.updates += 1
        return {"omega_updates": self.updates}

    def state_dict(self) -> dict[str, Any]:
        return {"omega": self.current_omega().clone(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.omega, self.updates = state.get("omega"), int(state.get("updates", 0))

    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        from etk_featuretl.heatmap import draw_relationship
        from etk_featuretl.losses import correlations

        figures = super().summary(run, results)
        omega = self.current_omega()
        relation = correlations(omega)
        if run.engine().is_main_process:
            from etk_core.io import atomic_write_text

            atomic_write_text(run.dir / RELATION_FILE, json.dumps(
                {"rows": list(WEIGHT_NAMES), "omega": omega.tolist(), "correlation": relation.tolist(),
                 "updates": self.updates}, indent=1))
            draw_relationship(relation.numpy(), list(WEIGHT_NAMES), run.dir / HEATMAP_FILE,
                              f"{self.name}: task-weight correlations after {self.updates} Ω update(s)")
        for i in range(len(WEIGHT_NAMES)):
            for j in range(i + 1, len(WEIGHT_NAMES)):
                figures[f"relation_{WEIGHT_NAMES[i]}~{WEIGHT_NAMES[j]}"] = round(float(relation[i, j]), 4)
        return figures


class DrssAdv(Drss):
    """drss plus a 2-way domain classifier on the shared features f_c behind a gradient-reversal layer
    (Liu-style, weight λ). [choice] Not the released code's entropy-only term, which is degenerate."""

    name = "drss_adv"
    description = "DRSS-Adv: drss + a source/target discriminator on the shared features behind gradient reversal"
    options: ClassVar[dict[str, Option]] = {**Drss.options, **ADVERSARIAL_OPTIONS}

    def loss_weights(self) -> dict[str, float]:
        return {**super().loss_weights(), "adversarial": float(self.opts["adv_weight"])}

    def extra_modules(self, run: Any) -> dict[str, Any]:
        return adversary(self.model.width, len(self.domains), float(self.opts["discriminator_lr"]))

    def extra_losses(self, context: Any, views: list[dict[str, Any]]) -> dict[str, Any]:
        return {**super().extra_losses(context, views), **adversarial_loss(context, views)}
