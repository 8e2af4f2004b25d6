"""Domain-specific output layers around any app model: the model's own `head` becomes the target head, a copy
of it the source head; the input of the head (the shared representation) is kept for the selectors."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from etk_core.errors import ConfigError

TARGET, SOURCE = "target", "source"


class DomainHeads(nn.Module):
    """Routes the shared representation to the head of the current domain and remembers it."""

    def __init__(self, head: nn.Module, shared: bool = False) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({TARGET: head})
        if not shared:
            self.heads[SOURCE] = copy.deepcopy(head)
        self.domain = TARGET
        self.features: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        self.features = hidden
        head = self.heads[self.domain] if self.domain in self.heads else self.heads[TARGET]
        return head(hidden)


class DomainModel:
    """An app model whose `head` is split by domain; `run(batch, domain)` returns (outputs, representation)."""

    def __init__(self, model: nn.Module, shared_head: bool = False) -> None:
        head = getattr(model, "head", None)
        if not isinstance(head, nn.Module):
            raise ConfigError(f"the app model {type(model).__name__} has no `head` output layer; instance-based "
                              f"TL needs one (every model of text_classify and text_match has it)")
        self.model = model
        self.heads = DomainHeads(head, shared=shared_head)
        model.head = self.heads

    def run(self, batch: dict[str, Any], domain: str) -> tuple[dict[str, Any], torch.Tensor]:
        """Forward `batch` through the head of `domain`."""
        self.heads.domain = domain
        outputs = self.model(**batch)
        return outputs, self.heads.features

    def target_head(self, features: torch.Tensor) -> torch.Tensor:
        """The target head's logits for representations (no gradient)."""
        with torch.no_grad():
            return self.heads.heads[TARGET](features.detach())

    def representations(self, app: Any, features: list[dict[str, Any]], batch_size: int, device: Any) -> Any:
        """The shared representation (the input of the output layer) of each example, with the model as it is;
        a float32 numpy array, one row per example."""
        import numpy as np

        from etk_core.training.batching import eval_batches
        from etk_core.training.evaluation import move_to

        was_training = self.model.training
        self.model.eval()
        out: list[Any] = [None] * len(features)
        with torch.no_grad():
            for indices in eval_batches([app.length(f) for f in features], batch_size):
                batch = move_to(app.collate([features[i] for i in indices]), device)
                batch.pop("labels", None)
                _, hidden = self.run(batch, TARGET)
                for row, index in zip(hidden.float().cpu().numpy(), indices):
                    out[index] = row
        self.model.train(was_training)
        return np.stack(out)

    def target_model(self) -> nn.Module:
        """The app model with its target head alone (what is saved, exported and served)."""
        single = copy.copy(self.model)
        single._modules = dict(self.model._modules)
        single._modules["head"] = self.heads.heads[TARGET]
        return single
