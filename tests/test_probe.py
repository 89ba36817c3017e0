"""Downstream evaluation: frozen features, linear probes, fine-tuning chosen layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from memloc.activations import record
from memloc.models import create
from memloc.probe import (
    features,
    finetune,
    finetune_layers,
    linear_probe,
    mean_std_over_seeds,
    probe_accuracy,
)


def tiny_encoder(seed: int = 0):
    torch.manual_seed(seed)
    return create("resnet9", width=0.25, in_channels=1)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class ChannelMeans(nn.Module):
    """A parameter-free 'encoder': the mean brightness of each channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def brightness_data(n: int, seed: int):
    """Dark images (class 0) and bright images (class 1), 16x16, one channel."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    level = 0.25 + 0.5 * labels.float()
    noise = 0.1 * torch.rand(n, 1, 16, 16, generator=generator)
    return level.view(-1, 1, 1, 1) + noise, labels


def random_data(n: int, seed: int, classes: int = 3):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 16, 16, generator=generator)
    return images, torch.arange(n) % classes


def test_probe_accuracy_separates_separable_features():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    centres = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    train = centres[labels] + rng.normal(size=(60, 3))
    test = centres[labels] + rng.normal(size=(60, 3))
    assert probe_accuracy(train, labels, test, labels) == 1.0
    # Chance on a shuffled test set: the probe really uses the labels.
    assert probe_accuracy(train, labels, test, rng.permutation(labels)) < 0.7


def test_linear_probe_on_separable_images_is_perfect_and_deterministic():
    train_images, train_labels = brightness_data(20, 0)
    test_images, test_labels = brightness_data(20, 1)
    encoder = ChannelMeans()
    accuracy = linear_probe(encoder, train_images, train_labels, test_images, test_labels)
    assert accuracy == 1.0

    resnet = tiny_encoder().train()
    before = snapshot(resnet)
    train_images, train_labels = random_data(30, 0)
    test_images, test_labels = random_data(30, 1)
    first = linear_probe(resnet, train_images, train_labels, test_images, test_labels, seed=0)
    second = linear_probe(resnet, train_images, train_labels, test_images, test_labels, seed=0)
    assert first == second
    assert resnet.training  # the mode is restored
    for name, tensor in resnet.state_dict().items():
        assert torch.equal(tensor, before[name]), name  # BN statistics not updated


def test_features_are_pooled_outputs_independent_of_the_batch():
    encoder = tiny_encoder()
    images, _ = random_data(10, 0)
    final = features(encoder, images)
    assert final.shape == (10, encoder.feature_dim) and final.dtype == torch.float32
    layer4 = features(encoder, images, layer="4", batch_size=3)
    encoder.eval()
    expected = record(encoder, images, ["4"])["4"]
    torch.testing.assert_close(layer4, expected)
    # Eval mode: an image's features do not depend on the rest of its batch.
    torch.testing.assert_close(features(encoder, images, batch_size=4), final)
    uint8 = (images * 255).round().to(torch.uint8)
    torch.testing.assert_close(features(encoder, uint8), features(encoder, uint8.float() / 255))


def test_unknown_layer_names_raise_with_the_valid_names():
    encoder = tiny_encoder()
    images, labels = random_data(8, 0)
    with pytest.raises(ValueError, match=r"no layer 'block9'; valid names: 1, 2, 3, 4, Res2"):
        finetune(encoder, ["block9"], images, labels, images, labels, epochs=1, lr=1e-3)
    with pytest.raises(ValueError, match="valid names"):
        features(encoder, images, layer="9")
    with pytest.raises(ValueError, match="no parameters"):
        finetune(encoder, ["Res2"], images, labels, images, labels, epochs=1, lr=1e-3)


def test_finetune_trains_only_the_chosen_layers():
    encoder = tiny_encoder()
    before = snapshot(encoder)
    images, labels = random_data(32, 0)
    tuned, head = finetune_layers(encoder, ["4"], images, labels, epochs=1, lr=1e-2, batch_size=16)
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, before[name]), name  # the input is untouched
    after = tuned.state_dict()
    for name, old in before.items():
        if name.startswith("block4."):
            continue
        assert torch.equal(after[name], old), name  # frozen parameters and BN statistics
    assert not torch.equal(after["block4.conv.weight"], before["block4.conv.weight"])
    assert not torch.equal(after["block4.bn.bias"], before["block4.bn.bias"])
    # BatchNorm inside the fine-tuned layer trains: its running statistics move.
    assert not torch.equal(after["block4.bn.running_mean"], before["block4.bn.running_mean"])
    assert head.out_features == 3 and head.in_features == encoder.feature_dim
    assert tuned.training == encoder.training
    assert all(p.requires_grad for p in tuned.parameters())

    # No layer: only the head trains, the encoder stays exactly as it was.
    frozen, _ = finetune_layers(encoder, [], images, labels, epochs=1, lr=1e-2, batch_size=16)
    for name, tensor in frozen.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_finetune_accuracy_is_deterministic():
    encoder = tiny_encoder()
    train_images, train_labels = random_data(24, 0)
    test_images, test_labels = random_data(12, 1)

    def run(seed: int) -> float:
        return finetune(
            encoder,
            ["8"],
            train_images,
            train_labels,
            test_images,
            test_labels,
            epochs=1,
            lr=1e-3,
            seed=seed,
            batch_size=12,
        )

    first = run(0)
    assert 0 <= first <= 1
    assert run(0) == first


def test_mean_std_over_seeds():
    mean, std = mean_std_over_seeds(lambda seed: float(seed), [1, 2, 3])
    assert mean == 2.0 and std == 1.0
    mean, std = mean_std_over_seeds(lambda seed: 0.5, [7])
    assert mean == 0.5 and math.isnan(std)
    with pytest.raises(ValueError, match="at least one seed"):
        mean_std_over_seeds(lambda seed: 0.5, [])
