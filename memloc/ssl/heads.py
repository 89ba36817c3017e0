"""Heads that sit on top of an encoder during training and are dropped afterwards."""

from __future__ import annotations

from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """SimCLR's projection MLP: Linear → BatchNorm → ReLU → Linear.

    The contrastive loss is computed on its output; the encoder's representation (its input)
    is what the metrics measure. The first linear layer has no bias because BatchNorm
    follows it.

    Parameters
    ----------
    in_dim : int
        Size of the encoder's representation.
    hidden_dim : int
        Width of the hidden layer.
    out_dim : int
        Size of the projection the loss sees.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class DINOHead(nn.Module):
    """DINO's head: an MLP to a bottleneck, L2 normalisation, then a weight-normalised linear
    layer to ``out_dim`` prototypes (its norm fixed to 1, as in DINO)."""

    def __init__(
        self, in_dim: int, hidden_dim: int = 512, bottleneck: int = 128, out_dim: int = 1024
    ):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck),
        )
        self.prototypes = nn.utils.parametrizations.weight_norm(
            nn.Linear(bottleneck, out_dim, bias=False)
        )
        # The norm of each prototype stays 1: only the directions learn.
        self.prototypes.parametrizations.weight.original0.data.fill_(1.0)
        self.prototypes.parametrizations.weight.original0.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.prototypes(nn.functional.normalize(self.mlp(x), dim=1))
