"""`fs` (FullyShared, Mou et al. 2016), `sp` and `sp_adv` (SharedPrivate and SharedPrivate-Adv, Liu, Qiu and
Huang, ACL 2017)."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_featuretl.transfer import ADVERSARIAL_OPTIONS, PRIVATE_OPTIONS, FeatureTransfer


class FullyShared(FeatureTransfer):
    """One shared encoder, one output layer per domain; L = λ·L_target + (1-λ)·L_source. [choice] Each step
    takes one target and one source batch (the spec's alternation, in one optimiser step)."""

    name = "fs"
    description = "FullyShared: one shared encoder, an output layer per domain, λ·L_target + (1-λ)·L_source"
    private: ClassVar[bool] = False
    options: ClassVar[dict[str, Option]] = {
        **FeatureTransfer.options,
        "target_weight": Option(float, 0.5, "λ: weight of the target loss (the source's is 1 - λ)", min=0, max=1),
    }

    def loss_weights(self) -> dict[str, float]:
        weight = float(self.opts["target_weight"])
        return {"target": weight, "source": 1.0 - weight}


class SharedPrivate(FeatureTransfer):
    """A shared encoder and a private encoder per domain; head_k([s; p_k]); L = Σ_k CE_k."""

    name = "sp"
    description = "SharedPrivate: shared + per-domain private encoders, head_k([s; p_k]), L = Σ_k CE_k"
    options: ClassVar[dict[str, Option]] = {**FeatureTransfer.options, **PRIVATE_OPTIONS}


class SharedPrivateAdv(SharedPrivate):
    """sp plus a domain discriminator D(s) = softmax(W_D s + b) over the K domains behind a gradient-reversal
    layer (L_adv) and the orthogonality loss L_diff between each domain's shared and private features:
    L = L_task + λ·L_adv + γ·L_diff. The discriminator's accuracy on the step's batches is logged
    (`disc_accuracy`); it tends to 1/K as the shared features lose their domain."""

    name = "sp_adv"
    description = "SharedPrivate-Adv: sp + a domain discriminator behind gradient reversal + orthogonality loss"
    options: ClassVar[dict[str, Option]] = {
        **SharedPrivate.options, **ADVERSARIAL_OPTIONS,
        "diff_weight": Option(float, 0.01, "γ: weight of the orthogonality loss L_diff", min=0),
    }

    def loss_weights(self) -> dict[str, float]:
        return {"adversarial": float(self.opts["adv_weight"]), "difference": float(self.opts["diff_weight"])}

    def extra_modules(self, run: Any) -> dict[str, Any]:
        return adversary(self.model.width, len(self.domains), float(self.opts["discriminator_lr"]))

    def extra_losses(self, context: Any, views: list[dict[str, Any]]) -> dict[str, Any]:
        from etk_featuretl.losses import difference_loss

        losses = adversarial_loss(context, views)
        losses["difference"] = sum(difference_loss(v["shared"], v["private"]) for v in views) / len(views)
        return losses


def adversary(width: int, domains: int, lr: float) -> dict[str, Any]:
    """The domain discriminator (a linear softmax layer over the shared features) as the stage's module."""
    from torch import nn

    from etk_core.training import Trainable

    return {"discriminator": Trainable(nn.Linear(width, domains), lr=lr, schedule="constant")}


def adversarial_loss(context: Any, views: list[dict[str, Any]]) -> dict[str, Any]:
    """L_adv = CE(D(GRL(s)), k) over the step's batches; logs the discriminator's accuracy."""
    import torch

    from etk_featuretl.grl import reverse_gradient

    discriminator = context.modules["discriminator"]
    shared = torch.cat([view["shared"] for view in views])
    domains = torch.cat([torch.full((len(view["shared"]),), view["domain"], dtype=torch.long,
                                    device=shared.device) for view in views])
    logits = discriminator(reverse_gradient(shared))
    context.log(disc_accuracy=(logits.argmax(-1) == domains).float().mean())
    return {"adversarial": torch.nn.functional.cross_entropy(logits.float(), domains)}
