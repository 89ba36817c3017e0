"""DP-SGD (memloc.privacy): which frameworks may train privately, per-image gradients against
autograd on each image alone, clipping, and a private run that spends at most its ε."""

from __future__ import annotations

import pytest
import torch
from opacus import GradSampleModule
from torch import nn

from memloc.augment import AugmentPolicy
from memloc.models import create
from memloc.privacy import (
    PrivacyConfig,
    clip_and_sum,
    per_image_gradients,
    private_framework,
    train_private,
)
from memloc.train import TrainConfig


def group_resnet(seed: int = 0):
    torch.manual_seed(seed)
    return create("resnet9", in_channels=1, width=0.125, norm="group")


def test_group_norm_resnet9_normalises_each_image_alone():
    enc = group_resnet().train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in enc.modules())
    x = torch.rand(4, 1, 16, 16)
    alone = enc(x[:1])
    together = enc(x)[:1]
    assert torch.allclose(alone, together, atol=1e-5)  # batch-mates change nothing
    again = create(enc.arch, **enc.config())
    assert enc.config()["norm"] == "group" and again.state_dict().keys() == enc.state_dict().keys()
    assert "norm" not in create("resnet9", in_channels=1).config()
    with pytest.raises(ValueError, match="unknown norm"):
        create("resnet9", norm="layer")


def test_private_framework_refuses_coupled_losses_and_batch_norm():
    with pytest.raises(ValueError, match="NT-Xent"):
        private_framework("simclr", group_resnet())
    with pytest.raises(ValueError, match="centre"):
        private_framework("dino", group_resnet())
    with pytest.raises(ValueError, match="norm='group'"):
        private_framework("simsiam", create("resnet9", in_channels=1, width=0.125))
    fw = private_framework("simsiam", group_resnet())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fw.modules())


def tiny_vit(seed: int = 0):
    torch.manual_seed(seed)
    return create("vit_tiny", in_channels=1, image_size=16, patch_size=8, width=0.125)


@pytest.mark.parametrize(
    "name, backbone",
    [("simsiam", group_resnet), ("supervised", group_resnet), ("simsiam", tiny_vit)],
)
def test_per_image_gradients_equal_autograd_on_each_image_alone(name, backbone):
    torch.set_num_threads(1)
    # Identity views make an image's loss the same whichever batch it is in. The ViT's
    # attention and its class token and position embeddings have no Opacus grad sampler:
    # Opacus differentiates them per image with functorch, checked here like the rest.
    fw = private_framework(name, backbone(), AugmentPolicy.identity(), num_classes=3)
    fw.train()
    x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1])
    views = 2 if name == "simsiam" else 1
    model = GradSampleModule(fw, loss_reduction="sum")
    loss, grads = per_image_gradients(model, x, y, torch.Generator(), views)
    model._close()
    params = [p for p in fw.parameters() if p.requires_grad]
    assert len(grads) == len(params) and grads[0].shape == (5, *params[0].shape)
    total = 0.0
    for i in range(5):
        one = fw(x[i : i + 1], y[i : i + 1], torch.Generator())
        total += float(one.detach())
        expected = torch.autograd.grad(one, params)
        for g, e in zip(grads, expected, strict=True):
            # float32: Opacus's per-row convolution gradients sum in another order.
            assert (g[i] - e).norm() <= 1e-3 * e.norm() + 1e-6
    assert loss == pytest.approx(total, rel=1e-5)


def test_clip_and_sum_bounds_each_image():
    grads = [torch.tensor([[3.0, 4.0], [0.3, 0.4]]), torch.zeros(2, 1)]  # norms 5 and 0.5
    summed = clip_and_sum(grads, max_grad_norm=1.0)
    # The first is scaled to norm 1, the second is left alone.
    assert torch.allclose(summed[0], torch.tensor([0.6 + 0.3, 0.8 + 0.4]), atol=1e-5)
    assert torch.equal(summed[1], torch.zeros(1))


# Eight steps are too few for the default orders of the RDP accountant to be tight.
@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")
def test_private_run_spends_at_most_its_epsilon_and_reproduces():
    torch.set_num_threads(1)
    images = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8)
    labels = torch.zeros(64, dtype=torch.long)
    config = TrainConfig(epochs=2, batch_size=16, seed=0)
    privacy = PrivacyConfig(epsilon=4.0, delta=1e-3, max_grad_norm=1.0, physical_batch=8)

    def run():
        policy = AugmentPolicy(crop_scale=(0.5, 1.0))
        fw = private_framework("simsiam", group_resnet(), policy, proj_dim=32, pred_hidden=8)
        log = train_private(fw, images, labels, config, privacy, progress=False)
        return fw, log

    fw, log = run()
    assert log["steps"] == 8 and log["sample_rate"] == 0.25
    assert 0.5 * privacy.epsilon < log["epsilon"] <= privacy.epsilon + 1e-6
    assert log["noise_multiplier"] > 0 and all(e["loss"] == e["loss"] for e in log["epochs"])
    again, log_again = run()
    assert log_again["epochs"][-1]["loss"] == log["epochs"][-1]["loss"]
    for (name, a), (_, b) in zip(fw.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="epsilon > 0"):
        PrivacyConfig(epsilon=0)


def test_interrupted_private_run_resumes_to_the_same_end(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    images = torch.randint(0, 256, (48, 1, 16, 16), dtype=torch.uint8)
    labels = torch.zeros(48, dtype=torch.long)
    config = TrainConfig(epochs=3, batch_size=16, seed=0)
    privacy = PrivacyConfig(epsilon=4.0, delta=1e-3, physical_batch=8)

    def framework():
        policy = AugmentPolicy(crop_scale=(0.5, 1.0))
        return private_framework("simsiam", group_resnet(), policy, proj_dim=32, pred_hidden=8)

    whole = framework()
    log = train_private(whole, images, labels, config, privacy, progress=False)

    # Crash in the third epoch: the noise generator fails on its 7th draw of that epoch.
    import memloc.privacy as private

    calls, real_normal = {"n": 0}, torch.normal

    def failing_normal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * 3 * len(list(whole.parameters())):
            raise KeyboardInterrupt
        return real_normal(*args, **kwargs)

    monkeypatch.setattr(private.torch, "normal", failing_normal)
    with pytest.raises(KeyboardInterrupt):
        train_private(framework(), images, labels, config, privacy, progress=False,
                      checkpoint_dir=tmp_path)  # fmt: skip
    monkeypatch.setattr(private.torch, "normal", real_normal)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 2
    resumed = framework()
    log2 = train_private(
        resumed, images, labels, config, privacy, progress=False, checkpoint_dir=tmp_path
    )
    assert log2["epsilon"] == log["epsilon"]
    assert [e["loss"] for e in log2["epochs"]] == [e["loss"] for e in log["epochs"]]
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="other settings"):
        train_private(framework(), images, labels, config, PrivacyConfig(epsilon=2.0),
                      progress=False, checkpoint_dir=tmp_path)  # fmt: skip
