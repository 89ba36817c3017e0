"""Frameworks, heads and losses: NT-Xent by hand, SimCLR and supervised steps that learn."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from memloc.augment import AugmentPolicy
from memloc.models import create
from memloc.ssl import FRAMEWORKS, ProjectionHead, SimCLR, Supervised, create_framework, nt_xent


def encoder(seed=0):
    torch.manual_seed(seed)
    return create("resnet9", in_channels=1, width=0.125)


def tiny_data(n=32, seed=0):
    """Noise images whose brightness (crop- and flip-invariant) gives their class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.5 * torch.rand(n, 1, 16, 16, generator=g) + y.view(-1, 1, 1, 1) / 6
    return x, y


def nt_xent_by_loops(z1, z2, t):
    """NT-Xent written out anchor by anchor (SimCLR paper, eq. 1)."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    total = 0.0
    for a in range(2 * n):
        twin = (a + n) % (2 * n)
        others = [k for k in range(2 * n) if k != a]
        denom = sum(math.exp(z[a] @ z[k] / t) for k in others)
        total += -math.log(math.exp(z[a] @ z[twin] / t) / denom)
    return total / (2 * n)


def test_nt_xent_two_pairs_by_hand():
    # Views coincide, the two images are orthogonal: every anchor sees cos 1 with its twin and
    # cos 0 with the two negatives, so loss = log(1 + 2 exp(-1 / t)).
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert nt_xent(z, z, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), abs=1e-6)
    assert nt_xent(3 * z, z / 7, 0.1).item() == pytest.approx(
        math.log(1 + 2 * math.exp(-10)), abs=1e-6
    )  # scale-free: the embeddings are normalised


def test_nt_xent_matches_the_written_out_formula():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    for t in (0.1, 0.5, 1.0):
        expected = nt_xent_by_loops(z1.numpy(), z2.numpy(), t)
        assert nt_xent(z1, z2, t).item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_grows_when_views_drift_apart():
    # Negatives stay orthogonal, positives separate along a third axis: the loss only grows.
    z = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    drift = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    losses = [nt_xent(z, z + a * drift).item() for a in (0.0, 0.2, 0.5, 1.0, 3.0)]
    assert losses == sorted(losses) and losses[0] < losses[-1]


def test_nt_xent_minimum_is_coinciding_views_of_antipodal_images():
    # Each anchor's term is smallest with cos 1 to its twin and cos -1 to both negatives.
    t = 0.5
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    best = math.log(1 + 2 * math.exp(-2 / t))
    assert nt_xent(z, z, t).item() == pytest.approx(best, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        z1, z2 = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
        assert nt_xent(z1, z2, t).item() > best


def test_nt_xent_refuses_bad_input():
    with pytest.raises(ValueError, match="both be"):
        nt_xent(torch.zeros(4, 8), torch.zeros(3, 8))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.ones(4, 8), torch.ones(4, 8), temperature=0)


def test_projection_head_is_linear_bn_relu_linear():
    head = ProjectionHead(32, 16, 8)
    kinds = [type(m) for m in head.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head(torch.randn(5, 32)).shape == (5, 8)


def learns(framework, x, y, steps=25):
    """Loss on fixed views before and after a few Adam steps on the same batch."""
    with torch.no_grad():
        before = framework.training_step(x, y, torch.Generator().manual_seed(0)).item()
    opt = torch.optim.Adam(framework.parameters(), lr=3e-3)
    for i in range(steps):
        loss = framework(x, y, torch.Generator().manual_seed(100 + i))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = framework.training_step(x, y, torch.Generator().manual_seed(0)).item()
    return before, after


def test_simclr_steps_lower_the_loss():
    torch.set_num_threads(1)
    x, y = tiny_data()
    policy = AugmentPolicy(crop_scale=(0.5, 1.0))
    model = create_framework("simclr", encoder(), policy, proj_hidden=32, proj_dim=16)
    before, after = learns(model, x, y)
    assert after < before - 0.2


def test_supervised_steps_lower_the_loss():
    torch.set_num_threads(1)
    x, y = tiny_data()
    model = create_framework("supervised", encoder(), num_classes=4)
    before, after = learns(model, x, y)
    assert after < before - 0.3


def test_create_framework_defaults_and_errors():
    simclr = create_framework("simclr", encoder(), num_classes=10)  # num_classes is ignored
    assert isinstance(simclr, SimCLR) and simclr.policy == AugmentPolicy.simclr()
    assert simclr.temperature == 0.5
    assert simclr.head.layers[-1].out_features == 128
    sup = create_framework("supervised", encoder(), num_classes=10)
    assert isinstance(sup, Supervised) and sup.policy == AugmentPolicy.supervised()
    assert sup.classifier.out_features == 10
    assert set(FRAMEWORKS) >= {"simclr", "supervised"}
    with pytest.raises(ValueError, match="known: \\['simclr', 'supervised'"):
        create_framework("byol", encoder())
    with pytest.raises(ValueError, match="num_classes"):
        create_framework("supervised", encoder())
    with pytest.raises(TypeError, match="feature_dim"):
        create_framework("simclr", nn.Linear(3, 3))


def test_simclr_loss_sees_two_views_of_every_image():
    # With the identity policy both views are the image: the positive pair is exact and the
    # loss equals NT-Xent on two copies of the batch's projections (BatchNorm over 2B rows).
    x, y = tiny_data(8)
    model = create_framework("simclr", encoder(), AugmentPolicy.identity(), proj_hidden=32)
    with torch.no_grad():
        loss = model.training_step(x, y, torch.Generator().manual_seed(0))
        z = model.head(model.backbone(torch.cat([x, x])))
    assert torch.equal(z[:8], z[8:])
    assert loss.item() == pytest.approx(nt_xent(z[:8], z[8:]).item(), abs=1e-6)
