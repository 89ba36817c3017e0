"""SimSiam (Chen & He, 2021): two views, a projector and a predictor, stop-gradient."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from memloc.augment import AugmentPolicy
from memloc.ssl.heads import ProjectionHead
from memloc.ssl.losses import negative_cosine
from memloc.ssl.registry import register_framework


@register_framework("simsiam")
class SimSiam(nn.Module):
    """An encoder trained to predict one view's projection from the other's, without
    negatives: the stop-gradient on the target side is what prevents collapse.

    Its loss is a sum over the images of a batch of per-image terms, so (unlike SimCLR's)
    each image's gradient depends on the others only through BatchNorm.

    Parameters
    ----------
    backbone : nn.Module
        The encoder; needs a ``feature_dim`` attribute.
    policy : AugmentPolicy, optional
        How views are drawn; the paper's SimCLR views by default.
    proj_dim : int
        Output size of the projector (the predictor maps it to itself).
    pred_hidden : int
        Bottleneck width of the predictor (SimSiam: a quarter of ``proj_dim``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        policy: AugmentPolicy | None = None,
        proj_dim: int = 512,
        pred_hidden: int = 128,
    ):
        super().__init__()
        self.backbone = backbone
        self.policy = policy if policy is not None else AugmentPolicy.simclr()
        dim = backbone.feature_dim
        self.projector = ProjectionHead(dim, dim, proj_dim)
        # The predictor is a bottleneck MLP of the projection head's shape, back to proj_dim.
        self.predictor = ProjectionHead(proj_dim, pred_hidden, proj_dim)

    def training_step(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        """The symmetric negative-cosine loss of one batch (``labels`` unused)."""
        v1, v2 = self.policy(x, generator), self.policy(x, generator)
        z1, z2 = self.projector(self.backbone(torch.cat([v1, v2]))).chunk(2)
        p1, p2 = self.predictor(torch.cat([z1, z2])).chunk(2)
        return (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2

    def forward(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        # The training step is the forward pass so that DistributedDataParallel sees it.
        return self.training_step(x, labels, generator)
