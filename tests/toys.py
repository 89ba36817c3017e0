"""Tiny encoders and labelled images shared by the tests."""

from __future__ import annotations

import torch

from memloc.models import create
from memloc.probe import ProbeSet


def tiny_resnet(seed: int = 0):
    torch.manual_seed(seed)
    return create("resnet9", in_channels=1, width=0.125).eval()


def labelled_images(n: int, seed: int, size: int = 16):
    """Two classes told apart by brightness, so that a probe has something to learn."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 1, size, size, generator=g) * 0.5 + 0.4 * labels.view(-1, 1, 1, 1)
    return images, labels


def probe_set(name: str = "toy", role: str = "pretraining", seed: int = 0) -> ProbeSet:
    train_x, train_y = labelled_images(24, seed)
    test_x, test_y = labelled_images(16, seed + 1)
    return ProbeSet(name, role, train_x, train_y, test_x, test_y)


def channel_mean_resnet9():
    """A ResNet9 (one input channel, width 0.125) with hand-set weights: every conv has only its
    centre tap, 1 / in_channels, so each unit of a block is ReLU(mean over the input channels
    at that pixel), pooled where the block pools; BatchNorm is the identity (eval, eps 0). Each
    residual sum then only doubles a map."""
    enc = create("resnet9", in_channels=1, width=0.125).eval()
    for i in range(1, 9):
        block = enc.get_submodule(f"block{i}")
        with torch.no_grad():
            block.conv.weight.zero_()
            block.conv.weight[:, :, 1, 1] = 1.0 / block.conv.in_channels
        block.bn.eps = 0.0
    return enc
