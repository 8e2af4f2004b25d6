"""The models of the feature-based family: `FeatureModel` trains (a shared body, private bodies and one head
per domain); `DomainModel` is one domain's model (shared + private + head), the artifact that exports and
serves like any app model and that `artifact_model` rebuilds from its layout."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_featuretl.bodies import private_body, represent, take_head


class DomainModel(nn.Module):
    """One domain's classifier: head([shared(x); private(x)]) (no private body: head(shared(x)))."""

    def __init__(self, shared: nn.Module, private: nn.Module | None, head: nn.Linear,
                 layout: dict[str, Any]) -> None:
        super().__init__()
        self.shared = shared
        self.private = private
        self.head = head
        self.etk_layout = layout  # kept in the artifact's etk.json

    def features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The shared and the private representation of a batch."""
        shared = represent(self.shared, batch)
        return shared, represent(self.private, batch) if self.private is not None else None

    def forward(self, labels: torch.Tensor | None = None, **inputs: Any) -> dict[str, Any]:
        shared, private = self.features(inputs)
        logits = self.head(shared if private is None else torch.cat([shared, private], dim=-1))
        outputs: dict[str, Any] = {"logits": logits}
        if labels is not None:
            outputs["loss"] = nn.functional.cross_entropy(logits.float(), labels)
        return outputs


class FeatureModel(nn.Module):
    """The shared body, a private body per domain (none for `fs`) and a head per domain; domain 0 is the
    target, whose head starts as the app model's own."""

    def __init__(self, app_model: nn.Module, domains: list[str], algorithm: str, private: str | None = None,
                 private_layers: int = 2, share_embeddings: bool = True) -> None:
        super().__init__()
        self.domains = list(domains)
        self.layout = {"private": private, "private_layers": private_layers, "share_embeddings": share_embeddings}
        self.shared, head = take_head(app_model, algorithm)
        width = head.in_features * (2 if private else 1)
        heads = [head if not private else _linear(width, head.out_features)] + \
            [_linear(width, head.out_features) for _ in self.domains[1:]]
        self.heads = nn.ModuleList(heads)
        self.private = nn.ModuleList(private_body(self.shared, private, private_layers, share_embeddings)
                                     for _ in self.domains) if private else None
        self.width = head.in_features

    def domain_model(self, index: int) -> DomainModel:
        """Domain `index`'s model (its modules are this model's: a view, no copy)."""
        return DomainModel(self.shared, self.private[index] if self.private is not None else None,
                           self.heads[index], self.layout)

    def head_weights(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_c, W_k): the columns of domain `index`'s head that read the shared and the private features."""
        weight = self.heads[index].weight
        return weight[:, :self.width], weight[:, self.width:]


def rebuild(build: Any, layout: dict[str, Any]) -> DomainModel:
    """A domain's model with uninitialised weights, from the artifact's layout (`build()`: a fresh app model)."""
    model = FeatureModel(build(), ["target"], "artifact", layout.get("private"), int(layout.get("private_layers", 2)),
                         bool(layout.get("share_embeddings", True)))
    return model.domain_model(0)


def _linear(width: int, labels: int) -> nn.Linear:
    layer = nn.Linear(width, labels)
    nn.init.normal_(layer.weight, std=0.02)
    nn.init.zeros_(layer.bias)
    return layer
