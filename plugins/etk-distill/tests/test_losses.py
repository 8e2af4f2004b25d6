"""The losses and layer maps as the spec writes them."""

from __future__ import annotations

import math

import pytest
import torch
from etk_distill.layer_maps import init_layers, pkd_layers, uniform_layers
from etk_distill.losses import attention_loss, cosine_loss, masked_mse, patient_loss, soft_cross_entropy, soft_kl

from etk_core.errors import ConfigError


def test_kd_loss_is_zero_for_the_teachers_logits_and_scales_with_t_squared():
    teacher = torch.randn(8, 3)
    assert soft_kl(teacher.clone(), teacher, 5.0) == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(8, 3)
    for temperature in (1.0, 2.0, 5.0):
        p_teacher = torch.softmax(teacher / temperature, -1)
        kl = (p_teacher * (p_teacher.log() - torch.log_softmax(student / temperature, -1))).sum(-1).mean()
        assert soft_kl(student, teacher, temperature) == pytest.approx(float(kl) * temperature ** 2, rel=1e-5)


def test_soft_cross_entropy_is_kl_plus_the_teachers_entropy():
    teacher, student = torch.randn(6, 4), torch.randn(6, 4)
    p = torch.softmax(teacher / 2, -1)
    entropy = float(-(p * p.log()).sum(-1).mean())
    assert soft_cross_entropy(student, teacher, 2.0) == pytest.approx(float(soft_kl(student, teacher, 2.0)) / 4
                                                                      + entropy, rel=1e-5)


def test_patient_loss_compares_directions_not_lengths():
    cls = [torch.randn(4, 16) for _ in range(3)]
    assert patient_loss([c * 7 for c in cls], cls) == pytest.approx(0.0, abs=1e-6)
    opposite = patient_loss([-c for c in cls], cls)
    assert opposite == pytest.approx(3 * 4.0, rel=1e-5)  # ‖u − (−u)‖² = 4 for unit vectors, 3 layers


def test_token_losses_leave_padding_out():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()
    teacher = torch.randn(2, 3, 8)
    student = teacher.clone()
    student[~mask] += 100.0  # only padded positions differ
    assert masked_mse(student, teacher, mask) == pytest.approx(0.0, abs=1e-6)
    assert cosine_loss(student, teacher, mask) == pytest.approx(0.0, abs=1e-6)
    scores = torch.randn(2, 4, 3, 3)
    other = scores.clone()
    other[0, :, 2, :] += 50.0
    other[1, :, :, 1:] += 50.0
    assert attention_loss(other, scores, mask) == pytest.approx(0.0, abs=1e-6)
    other[0, 1, 0, 1] += 2.0  # one real pair of one head: (2²) / (real pairs 4+1) / 4 heads
    assert attention_loss(other, scores, mask) == pytest.approx(4.0 / 5 / 4, rel=1e-5)


def test_layer_maps_are_the_specs():
    assert pkd_layers("skip", 12, 6) == [2, 4, 6, 8, 10]
    assert pkd_layers("last", 12, 6) == [7, 8, 9, 10, 11]
    assert uniform_layers(12, 4) == [0, 3, 6, 9, 12]
    assert uniform_layers(6, 3) == [0, 2, 4, 6]
    assert init_layers("skip", 12, 6) == [1, 3, 5, 7, 9, 11]  # DistilBERT: every other layer
    assert init_layers("first", 6, 3) == [1, 2, 3]
    assert init_layers("last", 6, 2) == [5, 6]
    assert init_layers("2,4,6", 6, 3) == [2, 4, 6]


@pytest.mark.parametrize(("choice", "layers"), [("1,9", 2), ("1,2", 3), ("odd", 2), ("skip", 7), ("skip", 0)])
def test_bad_layer_choices_are_refused(choice, layers):
    with pytest.raises(ConfigError):
        init_layers(choice, 6, layers)


def test_kd_gradient_pulls_the_student_towards_the_teacher():
    teacher = torch.tensor([[4.0, 0.0]])
    student = torch.zeros(1, 2, requires_grad=True)
    soft_kl(student, teacher, 2.0).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]
    assert math.isfinite(float(student.grad.abs().sum()))


def test_attention_loss_compares_head_averages_when_head_counts_differ():
    mask = torch.ones(1, 3).bool()
    teacher = torch.randn(1, 4, 3, 3)
    student = teacher.mean(1, keepdim=True).repeat(1, 2, 1, 1)
    assert attention_loss(student, teacher, mask) == pytest.approx(0.0, abs=1e-6)
