"""Frameworks, heads and losses: NT-Xent, SimSiam's and DINO's losses by hand, steps of every
framework that learn, DINO's teacher and centre."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from memloc.augment import AugmentPolicy
from memloc.models import create
from memloc.ssl import (
    DINO,
    FRAMEWORKS,
    MAE,
    DINOHead,
    ProjectionHead,
    SimCLR,
    Supervised,
    create_framework,
    dino_loss,
    negative_cosine,
    nt_xent,
)
from memloc.ssl.mae import patchify, random_masking


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


def test_create_framework_defaults_and_errors():
    simclr = create_framework("simclr", encoder(), num_classes=10)  # num_classes is ignored
    assert isinstance(simclr, SimCLR) and simclr.policy == AugmentPolicy.simclr()
    assert simclr.temperature == 0.5
    assert simclr.head.layers[-1].out_features == 128
    sup = create_framework("supervised", encoder(), num_classes=10)
    assert isinstance(sup, Supervised) and sup.policy == AugmentPolicy.supervised()
    assert sup.classifier.out_features == 10
    assert set(FRAMEWORKS) >= {"simclr", "supervised"}
    with pytest.raises(
        ValueError, match="known: \\['dino', 'mae', 'simclr', 'simsiam', 'supervised'"
    ):
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


# ------------------------------------------------------------------------------ SimSiam


def test_negative_cosine_by_hand_and_stop_gradient():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    z = torch.tensor([[3.0, 0.0], [1.0, 0.0]], requires_grad=True)
    loss = negative_cosine(p, z)  # cosines 1 and 0
    assert loss.item() == pytest.approx(-0.5)
    loss.backward()
    assert z.grad is None and p.grad is not None
    with pytest.raises(ValueError, match="both be"):
        negative_cosine(torch.zeros(2, 3), torch.zeros(2, 4))


# ------------------------------------------------------------------------------ DINO


def test_dino_loss_by_hand():
    # Two views, two prototypes. Teacher logits (t - c) / 0.5; student logits s / 1.
    t1, t2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    s1, s2 = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    c = torch.tensor([0.5, 0.0])

    def softmax(v):
        e = [math.exp(a) for a in v]
        return [a / sum(e) for a in e]

    q1, q2 = softmax([(1 - 0.5) / 0.5, 0.0]), softmax([-0.5 / 0.5, 1 / 0.5])
    log_p1 = [math.log(a) for a in softmax([2.0, 0.0])]
    log_p2 = [math.log(a) for a in softmax([0.0, 0.0])]
    # The teacher's view 1 teaches the student's view 2 and the other way round.
    cross_12 = -sum(a * b for a, b in zip(q1, log_p2, strict=True))
    cross_21 = -sum(a * b for a, b in zip(q2, log_p1, strict=True))
    expected = (cross_12 + cross_21) / 2
    got = dino_loss([s1, s2], [t1, t2], c, student_temperature=1.0, teacher_temperature=0.5)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="two views"):
        dino_loss([s1], [t1], c)


def test_dino_head_prototypes_keep_unit_norm():
    head = DINOHead(16, hidden_dim=8, bottleneck=4, out_dim=10)
    assert head(torch.randn(3, 16)).shape == (3, 10)
    weight = head.prototypes.weight
    assert torch.allclose(weight.norm(dim=1), torch.ones(10), atol=1e-6)
    assert not head.prototypes.parametrizations.weight.original0.requires_grad


def test_dino_teacher_gets_no_gradient():
    torch.set_num_threads(1)
    x, y = tiny_data()
    model = create_framework(
        "dino", encoder(), AugmentPolicy(crop_scale=(0.5, 1.0)), out_dim=32, center_momentum=1.0
    )
    assert isinstance(model, DINO)
    teacher = {k: v.clone() for k, v in model.teacher_backbone.state_dict().items()}
    learns(model, x, y, steps=3)
    # Without on_step_end the teacher's weights do not move (BatchNorm statistics may).
    for name, p in model.teacher_backbone.named_parameters():
        assert torch.equal(p, teacher[name]) and p.grad is None


def test_dino_multi_crop_local_views_reach_only_the_student():
    torch.set_num_threads(1)
    x, y = tiny_data()
    policy = AugmentPolicy(crop_scale=(0.5, 1.0))
    model = DINO(encoder(), policy, out_dim=32, center_momentum=1.0, local_crops=2)
    assert model.local_policy.crop_scale == (0.05, 0.4)
    sizes = {"student": [], "teacher": []}
    model.head.register_forward_hook(lambda m, i, o: sizes["student"].append(len(o)))
    model.teacher_head.register_forward_hook(lambda m, i, o: sizes["teacher"].append(len(o)))
    model.training_step(x, y, torch.Generator().manual_seed(0))
    assert sizes == {"student": [4 * len(x)], "teacher": [2 * len(x)]}
    before, after = learns(model, x, y)
    assert after < before - 0.05
    with pytest.raises(ValueError, match="local_crops"):
        DINO(encoder(), policy, local_crops=-1)


def test_dino_centre_is_a_running_mean_of_the_teacher_outputs():
    torch.set_num_threads(1)
    x, y = tiny_data(8)
    model = DINO(encoder(), AugmentPolicy(crop_scale=(0.5, 1.0)), out_dim=8, center_momentum=0.9)
    outputs = []
    model.teacher_head.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    model.training_step(x, y, torch.Generator().manual_seed(0))
    assert torch.allclose(model.center, 0.1 * outputs[0].mean(dim=0), atol=1e-6)
    model.eval()
    frozen = model.center.clone()
    model.training_step(x, y, torch.Generator().manual_seed(1))
    assert torch.equal(model.center, frozen)  # evaluation does not move the centre


def test_dino_teacher_ema_follows_the_cosine_schedule():
    model = DINO(encoder(), out_dim=8, teacher_momentum=0.9)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.teacher_backbone.parameters()]
    model.on_step_end(0, 10)  # momentum 0.9 at the start
    pairs = zip(
        model.teacher_backbone.parameters(), before, model.backbone.parameters(), strict=True
    )
    for t, old, s in pairs:
        assert torch.allclose(t, 0.9 * old + 0.1 * s)
    frozen = [p.clone() for p in model.teacher_backbone.parameters()]
    model.on_step_end(10, 10)  # momentum 1 at the end: the teacher stays
    for t, old in zip(model.teacher_backbone.parameters(), frozen, strict=True):
        assert torch.equal(t, old)
    with pytest.raises(ValueError, match="momenta"):
        DINO(encoder(), teacher_momentum=1.5)


# ------------------------------------------------------------------------------ MAE


def tiny_vit(seed=0):
    torch.manual_seed(seed)
    return create(
        "vit_tiny", image_size=16, patch_size=4, in_channels=1, dim=24, depth=2, num_heads=2
    )


def test_patchify_by_hand():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    patches = patchify(x, 2)
    assert patches.shape == (1, 4, 4)
    assert patches[0, 0].tolist() == [0, 1, 4, 5]  # top-left patch, row by row
    assert patches[0, 1].tolist() == [2, 3, 6, 7]
    assert patches[0, 3].tolist() == [10, 11, 14, 15]


def test_random_masking_keeps_the_asked_number_reproducibly():
    ids, mask = random_masking(3, 16, 4, torch.Generator().manual_seed(0), "cpu")
    assert ids.shape == (3, 4) and (mask.sum(dim=1) == 12).all()
    assert all(mask[i, ids[i]].sum() == 0 for i in range(3))
    again, _ = random_masking(3, 16, 4, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(ids, again)


def test_mae_encoder_on_every_patch_is_the_vits_forward():
    vit = tiny_vit().eval()
    model = MAE(vit, mask_ratio=0.5)
    x = torch.rand(2, 1, 16, 16)
    every = torch.arange(16).expand(2, 16)
    with torch.no_grad():
        assert torch.allclose(model.encode_visible(x, every)[:, 0], vit(x), atol=1e-6)
    assert model.keep == 8


def test_mae_refuses_a_resnet_and_a_full_mask():
    assert create_framework("mae", tiny_vit()).policy == AugmentPolicy.mae()
    with pytest.raises(TypeError, match="ViT"):
        MAE(encoder())
    with pytest.raises(ValueError, match="mask_ratio"):
        MAE(tiny_vit(), mask_ratio=1.0)


# ---------------------------------------------------------------- the contract, per framework

# Every registered framework, built small: (backbone, create_framework's arguments, the loss
# drop that 25 Adam steps on one tiny batch must reach). A new framework without an entry
# fails the first test below.
CROP = AugmentPolicy(crop_scale=(0.5, 1.0))
CONTRACT = {
    "simclr": (encoder, {"policy": CROP, "proj_hidden": 32, "proj_dim": 16}, 0.2),
    "simsiam": (encoder, {"policy": CROP}, 0.1),
    # A fixed centre (momentum 1) keeps the targets' sharpness the same before and after.
    "dino": (encoder, {"policy": CROP, "out_dim": 32, "center_momentum": 1.0}, 0.05),
    "mae": (tiny_vit, {}, 0.05),
    "supervised": (encoder, {"num_classes": 4}, 0.3),
}


def test_every_registered_framework_is_in_the_contract():
    assert set(CONTRACT) == set(FRAMEWORKS)


@pytest.mark.parametrize("name", sorted(FRAMEWORKS))
def test_a_few_steps_lower_the_loss(name):
    torch.set_num_threads(1)
    x, y = tiny_data()
    backbone, kwargs, drop = CONTRACT[name]
    model = create_framework(name, backbone(), **kwargs)
    assert isinstance(model, FRAMEWORKS[name])
    before, after = learns(model, x, y)
    assert after < before - drop
    if name == "simsiam":  # negative cosine similarity
        assert -1.0 <= after
