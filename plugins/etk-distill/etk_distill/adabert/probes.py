"""The teacher's per-layer knowledge for L_KD: a linear probe per teacher layer, fitted once on the cached
[CLS] states of the training records, and its class probabilities."""

from __future__ import annotations

import torch
from torch.nn import functional

#: L-BFGS iterations of one probe fit (full batch; converges well before on a few thousand records).
PROBE_ITERATIONS = 100


def fit_probe(states: torch.Tensor, labels: torch.Tensor, classes: int, l2: float) -> torch.Tensor:
    """Log-probabilities [N, classes] of a multinomial logistic regression on standardised `states` [N, width]
    fitted to `labels` with an L2 penalty `l2`·‖W‖² (L-BFGS, float64: deterministic)."""
    x = states.double()
    x = (x - x.mean(dim=0)) / x.std(dim=0).clamp(min=1e-6)  # a constant state (layer 0's [CLS]) gives the prior
    weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=PROBE_ITERATIONS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = functional.cross_entropy(x @ weight + bias, labels) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return functional.log_softmax(x @ weight + bias, dim=-1)


def layer_targets(cls: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, l2: float) -> torch.Tensor:
    """[N, layers + 1, classes] log-probabilities per teacher layer: a probe on each layer's [CLS] state
    (the embeddings' and the hidden layers'), and for the last layer the teacher's own head (its logits)."""
    classes = logits.shape[-1]
    layers = cls.shape[1] - 1
    targets = [fit_probe(cls[:, layer], labels, classes, l2) for layer in range(layers)]
    targets.append(functional.log_softmax(logits.double(), dim=-1))
    return torch.stack(targets, dim=1).float()
