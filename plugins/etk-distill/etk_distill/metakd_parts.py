"""The pieces of `metakd` (`etk_distill.metakd`) that are plain tensor functions or small modules: prototype
scores, domain corruption, the per-example weights of meta-distillation, per-example versions of the layer
losses, and the domain branch u = tanh(W_c(E_dom[d] + mean h_last)).

Imported only inside the functions of `etk_distill.metakd` (this module imports torch).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


def prototype_scores(embeddings: torch.Tensor, domains: torch.Tensor, num_domains: int) -> torch.Tensor:
    """t_i ∈ [0, 1] for every example, from its embedding e_i [N, width] and domain id d_i ∈ 0..K−1 [N].

    With c_k the mean embedding of domain k and c̄_i = mean_{k'≠d_i} c_{k'} (the plain mean of the other
    domains' prototypes), the spec's score is s_i = ½[cos(e_i, c_{d_i}) + cos(e_i, c̄_i)] ∈ [−1, 1]; it is
    rescaled to t_i = (1 + s_i) / 2 = ½[(1 + cos(e_i, c_{d_i}))/2 + (1 + cos(e_i, c̄_i))/2] ∈ [0, 1], which
    keeps the order of the examples (an affine map) and is what the weights use. A domain with no example
    has no prototype and is left out of c̄ (K ≥ 2 domains with examples are needed)."""
    e = embeddings.double()
    domains = torch.as_tensor(domains, dtype=torch.long)
    present = torch.zeros(num_domains, dtype=torch.bool)
    present[domains.unique()] = True
    if int(present.sum()) < 2:
        raise ValueError(f"prototype scores need examples of at least 2 domains, got {int(present.sum())}")
    sums = torch.zeros(num_domains, e.shape[1], dtype=e.dtype).index_add_(0, domains, e)
    counts = torch.bincount(domains, minlength=num_domains).to(e.dtype)
    prototypes = sums / counts.clamp(min=1).unsqueeze(1)  # c_k [K, width]
    others = (prototypes * present.unsqueeze(1)).sum(0, keepdim=True) - prototypes  # Σ_{k'≠k} c_k'
    others = others / (int(present.sum()) - 1)  # c̄ per domain k [K, width]
    own = functional.cosine_similarity(e, prototypes[domains], dim=-1, eps=1e-12)
    rest = functional.cosine_similarity(e, others[domains], dim=-1, eps=1e-12)
    return ((1.0 + 0.5 * (own + rest)) / 2.0).clamp(0.0, 1.0).float()


def example_weights(scores: torch.Tensor, gold_probability: torch.Tensor) -> torch.Tensor:
    """w_i = (1 + t_i) / (1 + exp((p_T(y_i|x_i) − 1)²)): the prototype score t_i and the teacher's
    probability of the gold label (no gradient)."""
    t = scores.detach().float()
    p = gold_probability.detach().float()
    return (1.0 + t) / (1.0 + torch.exp((p - 1.0) ** 2))


def corrupt_domains(domains: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """d̃: the batch's domain ids in a random order (a permutation of the batch, from the global RNG
    unless `generator`), the targets of the meta-teacher's domain-corruption loss."""
    order = torch.randperm(len(domains), generator=generator).to(domains.device)
    return domains[order]


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of token states [batch, tokens, width] over the real tokens (`mask` [batch, tokens])."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def example_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per example [batch]: the mean squared error of token states [batch, tokens, width] over its real
    tokens (`etk_distill.losses.masked_mse` of that example alone)."""
    weights = mask.to(torch.float32).unsqueeze(-1)
    squared = ((student.float() - teacher.float()).pow(2) * weights).sum((1, 2))
    return squared / (weights.sum((1, 2)) * student.shape[-1]).clamp(min=1.0)


def example_attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per example [batch]: the MSE of pre-softmax attention scores [batch, heads, tokens, tokens] over its
    pairs of real tokens, averaged over the heads (`etk_distill.losses.attention_loss` of that example
    alone). Where student and teacher have different head counts, the head-averaged scores are compared."""
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    pairs = (mask[:, :, None] & mask[:, None, :]).unsqueeze(1).to(torch.float32)
    squared = ((student.float() - teacher.float()).pow(2) * pairs).sum((1, 2, 3))
    return squared / (pairs.sum((1, 2, 3)) * student.shape[1]).clamp(min=1.0)


class DomainBranch(nn.Module):
    """u = tanh(W_c(E_dom[d] + h̄)), h̄ the token mean of the last hidden states [batch, width];
    `logits(u)` = W_d u + b_d over the domains (the meta-teacher's domain classifier, `classify=True`)."""

    def __init__(self, num_domains: int, width: int, out_width: int, classify: bool = False) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_domains, width)
        self.project = nn.Linear(width, out_width)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.classifier = nn.Linear(out_width, num_domains) if classify else None

    def forward(self, pooled: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.project(self.embedding(domains).to(pooled.dtype) + pooled))

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise RuntimeError("this domain branch has no domain classifier (classify=False)")
        return self.classifier(u)


def fit_projections(student_width: int, teacher_width: int, count: int) -> nn.ModuleList:
    """W_fit, one Linear per matched hidden state (student width -> teacher width), identity-initialised
    (zero bias) where the widths agree, so a student copied from the teacher starts at its own states."""
    projections = nn.ModuleList(nn.Linear(student_width, teacher_width) for _ in range(count))
    if student_width == teacher_width:
        for projection in projections:
            nn.init.eye_(projection.weight)
            nn.init.zeros_(projection.bias)
    return projections

