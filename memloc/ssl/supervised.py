"""The supervised baseline: encoder, linear classifier, cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memloc.augment import AugmentPolicy
from memloc.ssl.registry import register_framework


@register_framework("supervised")
class Supervised(nn.Module):
    """An encoder trained with labels (the paper's SL comparison for ClassMem/UnitMem).

    Parameters
    ----------
    backbone : nn.Module
        The encoder; needs a ``feature_dim`` attribute.
    policy : AugmentPolicy, optional
        Views drawn for training; the weak :meth:`AugmentPolicy.supervised` by default.
    num_classes : int
        Number of classes of the labels.
    """

    def __init__(
        self, backbone: nn.Module, policy: AugmentPolicy | None = None, num_classes: int = 0
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"Supervised needs num_classes >= 2, got {num_classes}")
        self.backbone = backbone
        self.policy = policy if policy is not None else AugmentPolicy.supervised()
        self.classifier = nn.Linear(backbone.feature_dim, num_classes)
        self.num_classes = num_classes

    def training_step(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        """Cross-entropy of one augmented view per image against ``labels`` (int64, (B,))."""
        logits = self.classifier(self.backbone(self.policy(x, generator)))
        return F.cross_entropy(logits.float(), labels)

    def forward(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        # The training step is the forward pass so that DistributedDataParallel sees it.
        return self.training_step(x, labels, generator)
