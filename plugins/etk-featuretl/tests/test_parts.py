"""The family's parts: gradient reversal, the orthogonality loss, DRSS's Ω update and regulariser, the
adversary pushing shared features towards domain-free ones, private bodies that share what they should."""

from __future__ import annotations

import pytest
import torch
from etk_featuretl.grl import GradientReversal, reverse_gradient
from etk_featuretl.losses import correlations, difference_loss, relation_regulariser, update_omega
from torch import nn


@pytest.mark.parametrize("scale", [1.0, 0.3, 2.5])
def test_gradient_reversal_is_the_identity_forward_and_reverses_scaled_gradients(scale):
    x = torch.randn(5, 3, requires_grad=True)
    weights = torch.randn(5, 3)
    out = GradientReversal(scale)(x)
    assert torch.equal(out, x)
    (out * weights).sum().backward()
    assert torch.allclose(x.grad, -scale * weights)
    y = torch.randn(4, requires_grad=True)
    (reverse_gradient(y) * 2).sum().backward()
    assert torch.allclose(y.grad, torch.full((4,), -2.0))


def test_difference_loss_is_zero_for_orthogonal_features_and_positive_otherwise():
    shared = torch.zeros(8, 6)
    private = torch.zeros(8, 6)
    shared[:4] = torch.randn(4, 6)  # the shared features live on the first examples, the private ones on the rest:
    private[4:] = torch.randn(4, 6)  # every shared column is orthogonal to every private column
    assert difference_loss(shared, private).item() == pytest.approx(0.0, abs=1e-12)
    same = torch.randn(8, 6)
    assert difference_loss(same, same).item() > 0.05
    assert difference_loss(same, torch.randn(8, 6)).item() > 0
    assert 0 <= difference_loss(same, 100 * same).item() <= 1  # scale-free, bounded


def test_omega_update_keeps_trace_one_and_positive_semidefinite():
    torch.manual_seed(0)
    for rows in (torch.randn(4, 30), torch.randn(4, 2) @ torch.randn(2, 30)):  # full rank and rank 2
        omega = update_omega(rows)
        assert omega.trace().item() == pytest.approx(1.0, abs=1e-5)
        assert torch.allclose(omega, omega.T, atol=1e-6)
        assert torch.linalg.eigvalsh(omega.double()).min().item() >= -1e-6


def test_omega_relates_the_rows_that_are_alike():
    torch.manual_seed(1)
    common = torch.randn(40)
    weights = torch.stack([torch.randn(40), common + 0.1 * torch.randn(40), torch.randn(40),
                           common + 0.1 * torch.randn(40)])  # W_c^s ~ W_c^t
    relation = correlations(update_omega(weights)).abs()
    off = relation - torch.eye(4)
    assert off.argmax().item() in (1 * 4 + 3, 3 * 4 + 1)  # the strongest off-diagonal pair is (W_c^s, W_c^t)
    assert off[1, 3] > 0.8


def test_relation_regulariser_is_trace_of_w_t_omega_inverse_w():
    weights = torch.randn(4, 10)
    omega = torch.eye(4) / 4
    assert relation_regulariser(weights, omega).item() == pytest.approx(4 * weights.pow(2).sum().item(), rel=1e-5)
    learnt = update_omega(weights)
    # with Ω fitted to W, R is at its minimum over trace-one Ω: (Σ singular values)²
    assert relation_regulariser(weights, learnt).item() == pytest.approx(
        torch.linalg.svdvals(weights).sum().item() ** 2, rel=1e-3)
    assert relation_regulariser(weights, learnt) < relation_regulariser(weights, omega)


class _Context:
    def __init__(self, discriminator):
        self.modules = {"discriminator": discriminator}
        self.figures = {}

    def log(self, **figures):
        self.figures.update({key: float(value) for key, value in figures.items()})


def _train_adversary(reversed_into_encoder: bool, steps: int = 600) -> list[float]:
    """A linear shared encoder over 4 domains whose inputs say the domain (dims 0-3, offset 1.5, noise 0.5) and
    the label (dim 4), trained on the label and against a linear domain discriminator behind gradient reversal
    (λ = 1, Adam 3e-3); as the control, the discriminator reads detached features, so nothing pushes the
    encoder. Returns the discriminator's accuracy per step."""
    from etk_featuretl.shared_private import adversarial_loss

    torch.manual_seed(0)
    encoder, head, discriminator = nn.Linear(5, 8), nn.Linear(8, 2), nn.Linear(8, 4)
    optimiser = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=3e-3, weight_decay=0.01)
    adversary = torch.optim.Adam(discriminator.parameters(), lr=3e-3)
    accuracy = []
    for _ in range(steps):
        views, task = [], 0.0
        for domain in range(4):
            labels = torch.randint(0, 2, (16,))
            inputs = torch.randn(16, 5) * 0.5
            inputs[:, domain] += 1.5
            inputs[:, 4] += 2.0 * labels - 1.0
            shared = encoder(inputs)
            task = task + nn.functional.cross_entropy(head(shared), labels) / 4
            views.append({"shared": shared if reversed_into_encoder else shared.detach(), "domain": domain})
        context = _Context(discriminator)
        optimiser.zero_grad()
        adversary.zero_grad()
        (task + adversarial_loss(context, views)["adversarial"]).backward()
        optimiser.step()
        adversary.step()
        accuracy.append(context.figures["disc_accuracy"])
    return accuracy


def test_discriminator_accuracy_on_shared_features_falls_towards_chance():
    control = _train_adversary(reversed_into_encoder=False)[100:]
    adversarial = _train_adversary(reversed_into_encoder=True)[100:]
    # the domains are easy to tell apart in features nobody hides them from; behind the reversal the
    # discriminator is held near chance (1/K = 0.25) for the rest of training
    assert sum(control) / len(control) > 0.85
    assert sum(adversarial) / len(adversarial) < 0.45
