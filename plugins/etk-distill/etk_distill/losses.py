"""The distillation losses of the spec (`../shared/specs/algorithms.md`, "Model-based TL")."""

from __future__ import annotations

from typing import Any


def soft_kl(student: Any, teacher: Any, temperature: float) -> Any:
    """Hinton's soft loss: T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)), averaged over the batch (T² keeps the
    gradient's scale independent of T)."""
    from torch.nn import functional

    log_student = functional.log_softmax(student.float() / temperature, dim=-1)
    log_teacher = functional.log_softmax(teacher.float() / temperature, dim=-1)
    return functional.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature ** 2


def soft_cross_entropy(student: Any, teacher: Any, temperature: float) -> Any:
    """−Σ softmax(z_t/T) · log softmax(z_s/T), averaged over the batch (TinyBERT's and DistilBERT's soft loss:
    the KL above without T² and plus the teacher's entropy, which has no gradient)."""
    from torch.nn import functional

    target = functional.softmax(teacher.float() / temperature, dim=-1)
    return -(target * functional.log_softmax(student.float() / temperature, dim=-1)).sum(-1).mean()


def patient_loss(student_cls: list[Any], teacher_cls: list[Any]) -> Any:
    """BERT-PKD's patient loss: Σ_j ‖ĥ_s^j − ĥ_t^j‖² with ĥ = [CLS]/‖[CLS]‖₂, averaged over the batch."""
    from torch.nn import functional

    total = 0.0
    for student, teacher in zip(student_cls, teacher_cls, strict=True):
        difference = functional.normalize(student.float(), dim=-1) - functional.normalize(teacher.float(), dim=-1)
        total = total + difference.pow(2).sum(-1).mean()
    return total


def masked_mse(student: Any, teacher: Any, mask: Any) -> Any:
    """Mean squared error over the real tokens (`mask` [batch, tokens]) of token states [batch, tokens, width]."""
    weights = mask.to(student.dtype).unsqueeze(-1)
    squared = (student.float() - teacher.float()).pow(2) * weights
    return squared.sum() / (weights.sum() * student.shape[-1]).clamp(min=1.0)


def cosine_loss(student: Any, teacher: Any, mask: Any) -> Any:
    """DistilBERT's L_cos: 1 − cos(h_s, h_t) averaged over the real tokens."""
    from torch.nn import functional

    cosine = functional.cosine_similarity(student.float(), teacher.float(), dim=-1)
    weights = mask.to(cosine.dtype)
    return ((1.0 - cosine) * weights).sum() / weights.sum().clamp(min=1.0)


def attention_loss(student: Any, teacher: Any, mask: Any) -> Any:
    """TinyBERT's L_attn for one layer: MSE of pre-softmax attention scores [batch, heads, tokens, tokens]
    over the pairs of real tokens (padded queries and keys are left out), i.e. the mean over heads. Where the
    student has another number of heads than the teacher, their head-averaged scores are compared (TinyBERT
    itself keeps the teacher's head count)."""
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    pairs = (mask[:, :, None] & mask[:, None, :]).unsqueeze(1).to(student.dtype)  # [batch, 1, tokens, tokens]
    squared = (student.float() - teacher.float()).pow(2) * pairs
    return squared.sum() / (pairs.sum() * student.shape[1]).clamp(min=1.0)
