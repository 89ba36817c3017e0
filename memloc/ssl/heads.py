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
