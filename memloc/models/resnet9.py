"""ResNet9 as the paper uses it (NOTES.md §5).

Eight blocks conv3x3 -> BatchNorm (GroupNorm with ``norm="group"``, for DP-SGD) -> ReLU; a
2x2 max-pool closes blocks 1, 2, 5 and 6; the output of block 2 is added to that of block 4
(Res2), the output of block 6 to that of block 8 (Res6). The representation is the global
average of the Res6 map.

Channels@spatial size at each point for a 32x32 input (width 1): 1: 32@16, 2: 64@8,
3: 64@8, 4: 64@8, Res2: 64@8, 5: 128@4, 6: 256@2, 7: 256@2, 8: 256@2, Res6: 256@2.

The authors' UnitMem.py and ClassMem.py read this network differently (NOTES.md §3.7): through
torchvision's ``IntermediateLayerGetter``, which calls the children in order and never runs
``forward``, so neither residual is added. :meth:`ResNet9.skipless_getter` is that reading.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

from memloc.models.base import (
    Add,
    Encoder,
    MeasurementPoint,
    check_in_channels,
    check_width,
    scale_channels,
)
from memloc.models.registry import register

if TYPE_CHECKING:
    from torchvision.models._utils import IntermediateLayerGetter

CHANNELS = (32, 64, 64, 64, 128, 256, 256, 256)
POOLED = (1, 2, 5, 6)


NORMS = ("batch", "group")

# In the scripts' skip-less forward the residual sums never happen: what the network carries
# at Res2 (Res6) is the output of block 4 (block 8), the block before the skipped addition.
SKIPPED_SUMS = {"res2": "block4", "res6": "block8"}


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups of at least two channels (a group of one channel on a
    1x1 map would have a single value): it normalises each image on its own, which DP-SGD's
    per-example gradients need (BatchNorm mixes a batch)."""
    return nn.GroupNorm(math.gcd(32, channels // 2) if channels > 1 else 1, channels)


class ConvBlock(nn.Sequential):
    """conv3x3 (padding 1) -> BatchNorm2d (or GroupNorm) -> ReLU [-> MaxPool2d(2)], children
    named ``conv``, ``bn``, ``relu``, ``pool`` (so ``block3.conv.weight[c]`` is unit c's
    filter)."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool, norm: str = "batch"):
        layers = OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            bn=nn.BatchNorm2d(out_channels) if norm == "batch" else group_norm(out_channels),
            relu=nn.ReLU(),
        )
        if pool:
            layers["pool"] = nn.MaxPool2d(2)
        super().__init__(layers)


@register("resnet9")
class ResNet9(Encoder):
    """The paper's ResNet9.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for Fashion-MNIST, 3 for CIFAR-10).
    width : float
        Channel multiplier: block i has ``max(1, round(CHANNELS[i] * width))`` channels.
    norm : ``"batch"`` (the paper) or ``"group"`` (GroupNorm, for differentially private
        training; the module keeps the name ``bn``).

    Measurement points, in forward order: ``1, 2, 3, 4, Res2, 5, 6, 7, 8, Res6`` (modules
    ``block1`` ... ``block8``, ``res2``, ``res6``). A block's activation is its output after
    ReLU and, for blocks 1, 2, 5, 6, after the max-pool, so it is non-negative. Inputs must be
    at least 16x16 (four 2x2 pools).
    """

    min_input_size = 16

    def __init__(self, in_channels: int = 3, width: float = 1.0, norm: str = "batch"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; use one of {NORMS}")
        self.arch = "resnet9"
        self.in_channels = check_in_channels(in_channels)
        self.width = check_width(width)
        self.norm = norm
        channels = [scale_channels(c, self.width) for c in CHANNELS]
        previous = self.in_channels
        for i, out in enumerate(channels, start=1):
            self.add_module(f"block{i}", ConvBlock(previous, out, pool=i in POOLED, norm=norm))
            previous = out
        # The sums are registered after the eight blocks: calling the children in order (the
        # scripts' IntermediateLayerGetter) then runs the blocks and stops before the sums.
        self.res2 = Add()
        self.res6 = Add()
        self.feature_dim = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        out1 = self.block1(x)
        out2 = self.block2(out1)
        out3 = self.block3(out2)
        out4 = self.block4(out3)
        res2 = self.res2(out2, out4)
        out5 = self.block5(res2)
        out6 = self.block6(out5)
        out7 = self.block7(out6)
        out8 = self.block8(out7)
        res6 = self.res6(out6, out8)
        return res6.mean(dim=(2, 3))

    def measurement_points(self) -> list[MeasurementPoint]:
        """``1, 2, 3, 4, Res2, 5, 6, 7, 8, Res6``: kinds "conv" and "residual"."""
        points = [MeasurementPoint(str(i), f"block{i}", "conv") for i in range(1, 5)]
        points.append(MeasurementPoint("Res2", "res2", "residual"))
        points += [MeasurementPoint(str(i), f"block{i}", "conv") for i in range(5, 9)]
        points.append(MeasurementPoint("Res6", "res6", "residual"))
        return points

    def skipless_block(self, module: str) -> str:
        """The block whose output the scripts' skip-less forward carries at ``module``.

        ``module`` is a measurement point's module: ``block1`` ... ``block8`` are themselves;
        ``res2`` and ``res6``, whose additions the scripts never run, are ``block4`` and
        ``block8``. Any other module (``block3.conv``) is a ValueError.
        """
        if module in SKIPPED_SUMS:
            return SKIPPED_SUMS[module]
        if module in {f"block{i}" for i in range(1, len(CHANNELS) + 1)}:
            return module
        raise ValueError(
            f"the skip-less forward reads the outputs of block1 ... block8, res2 and res6, "
            f"not {module!r}"
        )

    def skipless_getter(self, blocks: Iterable[str]) -> IntermediateLayerGetter:
        """What the authors' UnitMem.py and ClassMem.py ran: torchvision's
        ``IntermediateLayerGetter`` over this network (NOTES.md §3.7).

        The getter calls the children ``block1``, ``block2``, ... in order, each on the output
        of the one before, up to the last of ``blocks``, and returns ``{block: output}``. It
        never calls :meth:`forward`, so the residual sums (Res2, Res6) are skipped: blocks 5 to
        8 see a network without its skip connections. The getter shares this network's
        modules (same weights, same train/eval mode) and does not check the input size.
        """
        # Imported here: torchvision is needed only for this reading, and it is slow to import.
        from torchvision.models._utils import IntermediateLayerGetter

        return IntermediateLayerGetter(self, {block: block for block in blocks})

    def config(self) -> dict:
        """``{"in_channels": ..., "width": ...}`` and ``"norm"`` when it is not BatchNorm."""
        config = {"in_channels": self.in_channels, "width": self.width}
        return config if self.norm == "batch" else {**config, "norm": self.norm}
