"""Tiny encoders and labelled images shared by the intervention and downstream tests."""

from __future__ import annotations

import torch

from memloc.experiments.interventions import ProbeSet
from memloc.models import create


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
