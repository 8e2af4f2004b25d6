"""An example algorithm: target and source batches in every step, weighted by learnt uncertainties.

Each stream's loss L gets a learnt log-variance s (Kendall et al., CVPR 2018): the step optimises
exp(-s) L + s per stream, so a stream whose loss stays high (a noisy or unrelated source) ends up weighted
less. The log-variances are an extra trainable module with their own learning rate; the engine checkpoints
them with the model, and the artifact is the app model alone.
"""

from __future__ import annotations

from typing import Any

from etk_core.config import Option
from etk_core.interfaces import Algorithm
from etk_core.training import Stage, Trainable

STREAMS = ("target", "source")


class UncertaintyWeighted(Algorithm):
    """Train on target and source together, each loss weighted by a learnt uncertainty."""

    name = "hello_weighted"
    description = "example: target + source streams, losses weighted by learnt uncertainties"
    roles = ("target", "source")
    optional_roles = ("dev", "test")
    own_step = True
    options = {"weight_lr": Option(float, 0.05, "learning rate of the log-variances")}

    def stage(self, run: Any, name: str) -> Stage:
        import torch

        log_variance = torch.nn.ParameterDict({stream: torch.nn.Parameter(torch.zeros(())) for stream in STREAMS})

        def step(context: Any, batches: dict[str, Any]) -> dict[str, Any]:
            losses = {}
            for stream in STREAMS:
                loss = context.model(**batches[stream].tensors)["loss"]
                s = context.modules["log_variance"][stream]
                losses[stream] = torch.exp(-s) * loss + s
                context.log(**{f"weight_{stream}": torch.exp(-s), f"raw_loss_{stream}": loss})
            return losses

        return Stage(name=name, model=run.build_model(),
                     streams={"target": run.stream("target"), "source": run.stream("source", seed_offset=1)},
                     step=step, modules={"log_variance": Trainable(log_variance, lr=run.config["algo"]["weight_lr"],
                                                                   schedule="constant")},
                     dev=run.dev())
