"""SimCLR (Chen et al., 2020): two views, a projection head, NT-Xent."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from memloc.augment import AugmentPolicy
from memloc.ssl.heads import ProjectionHead
from memloc.ssl.losses import nt_xent
from memloc.ssl.registry import register_framework


@register_framework("simclr")
class SimCLR(nn.Module):
    """An encoder trained contrastively: the two views of an image attract, all others repel.

    Parameters
    ----------
    backbone : nn.Module
        The encoder; needs a ``feature_dim`` attribute (the size of its output).
    policy : AugmentPolicy, optional
        How views are drawn; the paper's SimCLR views by default.
    proj_hidden : int, optional
        Hidden width of the projection head; the backbone's ``feature_dim`` by default.
    proj_dim : int
        Output size of the projection head (the loss's embedding).
    temperature : float
        NT-Xent temperature (the paper: 0.5).
    """

    def __init__(
        self,
        backbone: nn.Module,
        policy: AugmentPolicy | None = None,
        proj_hidden: int | None = None,
        proj_dim: int = 128,
        temperature: float = 0.5,
    ):
        super().__init__()
        self.backbone = backbone
        self.policy = policy if policy is not None else AugmentPolicy.simclr()
        dim = backbone.feature_dim
        self.head = ProjectionHead(dim, proj_hidden or dim, proj_dim)
        self.temperature = temperature

    def training_step(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        """The NT-Xent loss of one batch (``x`` float in [0, 1]; ``labels`` unused)."""
        v1, v2 = self.policy(x, generator), self.policy(x, generator)
        # Both views in one pass: BatchNorm normalises over all 2B views (SimCLR's global BN
        # when the batch is split over ranks and BatchNorm is synchronised).
        z1, z2 = self.head(self.backbone(torch.cat([v1, v2]))).chunk(2)
        return nt_xent(z1, z2, self.temperature)

    def forward(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        # The training step is the forward pass so that DistributedDataParallel sees it.
        return self.training_step(x, labels, generator)
