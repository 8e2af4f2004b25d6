"""The base of the feature-based algorithms, a stage of the core's training engine: the target domain and one
or more source domains, a `FeatureModel` (shared body, private bodies, a head per domain), a `target` and a
`source` stream (one source domain per batch), and a step that sums each domain's task loss with the
algorithm's extra terms (`extra_losses`). The target model is the artifact; the sources' models are written
beside it (`RUN/domains/NAME`, `etk evaluate RUN --domain NAME`)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from etk_core.artifact import DOMAINS_DIR
from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Algorithm

TARGET = "target"

PRIVATE_OPTIONS: dict[str, Option] = {
    "private": Option(str, "full", "private part of each domain: full (a copy of the encoder; embedding tables "
                                   "shared) or top (copies of the top algo.private_layers layers of a PLM)"),
    "private_layers": Option(int, 2, "layers of each private part with algo.private=top", min=1),
    "share_embeddings": Option(bool, True, "private encoders read the shared encoder's embedding tables"),
}
ADVERSARIAL_OPTIONS: dict[str, Option] = {
    "adv_weight": Option(float, 0.05, "λ: weight of the domain discriminator's loss (reversed into the shared "
                                      "encoder)", min=0),
    "discriminator_lr": Option(float, 1e-3, "AdamW learning rate of the domain discriminator", above=0),
}


class FeatureTransfer(Algorithm):
    """Shared/private feature transfer from source domains to the target (not registered itself)."""

    roles: ClassVar[tuple[str, ...]] = ("target", "source")
    optional_roles: ClassVar[tuple[str, ...]] = ("dev", "test")
    apps: ClassVar[tuple[str, ...] | None] = ("text_classify", "text_match")  # models with a linear `head`
    # a step leaves the private parts of the domains not in its batches without gradients, which DDP refuses
    strategies: ClassVar[tuple[str, ...] | None] = ("single",)
    own_step: ClassVar[bool] = True
    options: ClassVar[dict[str, Option]] = {
        "source_batch_size": Option((int, type(None)), None, "source examples per step (null: train.batch_size)",
                                    min=1),
    }
    #: Private bodies (None: one fully shared encoder).
    private: ClassVar[bool] = True
    #: Most source domains the algorithm relates to the target (None: any).
    max_sources: ClassVar[int | None] = None
    domains: list[str]

    # -- what the algorithms add ------------------------------------------------------------------------
    def loss_weights(self) -> dict[str, float]:
        """Weights of the named losses (default 1)."""
        return {}

    def extra_modules(self, run: Any) -> dict[str, Any]:
        """Extra trainable modules (`Trainable`), e.g. a domain discriminator."""
        return {}

    def extra_losses(self, context: Any, views: list[dict[str, Any]]) -> dict[str, Any]:
        """More named losses from the step's domain views (`domain` index, `shared`, `private` features,
        `labels`)."""
        return {}

    def on_epoch_end(self, context: Any, epoch: int) -> dict[str, float] | None:
        """After each pass over the target data."""
        return None

    # -- checks -------------------------------------------------------------------------------------------
    def check_run(self, run: Any) -> None:
        groups = run.groups("source")
        names = sorted({str(group) for group in groups}) if groups is not None else []
        self.domains = [TARGET, *(names if len(names) > 1 else ["source"])]
        if TARGET in self.domains[1:]:
            raise ConfigError(f"a source domain is named {TARGET!r}, the name of the target; rename it in the source "
                              f"data's domain column")
        if self.max_sources is not None and len(self.domains) - 1 > self.max_sources:
            raise ConfigError(f"algorithm {self.name!r} relates one source domain to the target; the source data has "
                              f"{len(self.domains) - 1} ({', '.join(self.domains[1:])}): give one domain, or use "
                              f"sp_adv for several")
        from etk_featuretl.bodies import PRIVATE_KINDS, check_private, take_head

        body, _ = take_head(run.build_model(), self.name)  # (a model around the run's encoder: no copy)
        if self.private:
            kind = run.config["algo"]["private"]
            if kind not in PRIVATE_KINDS:
                raise ConfigError(f"algo.private={kind!r} is not one of {', '.join(PRIVATE_KINDS)}; e.g. --set "
                                  f"algo.private=full")
            check_private(body, kind, int(run.config["algo"]["private_layers"]))

    def source_groups(self, run: Any) -> list[int] | None:
        """The domain index of every source feature (None: one source domain)."""
        if len(self.domains) == 2:
            return None
        index = {name: k for k, name in enumerate(self.domains)}
        return [index[str(group)] for group in run.groups("source")]

    # -- the stage ------------------------------------------------------------------------------------------
    def build(self, run: Any) -> Any:
        from etk_featuretl.model import FeatureModel

        opts = run.config["algo"]
        kind = opts["private"] if self.private else None
        return FeatureModel(run.build_model(), self.domains, self.name, kind, int(opts.get("private_layers", 2)),
                            bool(opts.get("share_embeddings", True)))

    def stage(self, run: Any, name: str) -> Any:
        from etk_core.training import Stage

        self.opts = run.config["algo"]
        cfg = run.config["train"]
        self.model = self.build(run).to(run.engine().device())
        streams = {"target": run.stream("target"),
                   "source": run.stream("source", self.opts.get("source_batch_size") or cfg["batch_size"],
                                        groups=self.source_groups(run), seed_offset=1)}
        per_epoch = math.ceil(len(run.features("target")) / cfg["batch_size"])
        total = cfg["max_steps"] or max(1, math.ceil(per_epoch * cfg["epochs"]))
        return Stage(name=name, model=self.model, streams=streams, step=self.step, max_steps=total,
                     loss_weights=self.loss_weights(), modules=self.extra_modules(run), dev=run.dev(),
                     eval_model=lambda: self.model.domain_model(0),
                     extra_artifacts=lambda: {f"{DOMAINS_DIR}/{domain}": self.model.domain_model(k)
                                              for k, domain in enumerate(self.domains) if k},
                     on_epoch_end=self.on_epoch_end)

    def step(self, context: Any, batches: dict[str, Any]) -> dict[str, Any]:
        """Each domain's cross-entropy through its own head, plus the algorithm's extra losses."""
        import torch

        views = []
        for role in ("target", "source"):
            batch = batches[role]
            domain = 0 if role == "target" else (batch.group if batch.group is not None else 1)
            model = self.model.domain_model(domain)
            shared, private = model.features(batch.tensors)
            logits = model.head(shared if private is None else torch.cat([shared, private], dim=-1))
            labels = batch.tensors["labels"]
            views.append({"role": role, "domain": domain, "shared": shared, "private": private, "labels": labels,
                          "loss": torch.nn.functional.cross_entropy(logits.float(), labels)})
        losses = {view["role"]: view["loss"] for view in views}
        losses.update(self.extra_losses(context, views))
        return losses

    # -- rebuilding the artifact --------------------------------------------------------------------------
    @classmethod
    def artifact_model(cls, build: Any, layout: dict[str, Any]) -> Any:
        from etk_featuretl.model import rebuild

        return rebuild(build, layout)

    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        from etk_core.training import default_summary

        figures = default_summary(run, results)
        figures["parameters"] = sum(p.numel() for p in self.model.parameters())
        figures["target_parameters"] = sum(p.numel() for p in self.model.domain_model(0).parameters())
        return figures
