"""ResNet18/34/50: torchvision's networks adapted to small images.

The changes from ``torchvision.models.resnet18/34/50`` are the usual CIFAR ones: the stem is a
3x3 stride-1 conv (not 7x7 stride 2), there is no first max-pool, ``fc`` is an Identity (the
representation is the 512- or 2048-d pooled feature) and ``in_channels`` is free. The blocks are
torchvision's ``BasicBlock``/``Bottleneck`` with the residual sum moved into an :class:`Add`
module named ``res`` and a ReLU that is not in place (so a recorded sum is not overwritten).
Parameter names are torchvision's: a torchvision state dict of the same architecture (with the
3x3 stem) loads as is.

Measurement points, in forward order:

- ``"stem"`` (module ``relu``, kind "conv"): conv1 -> bn1 -> ReLU;
- for every block, e.g. the first of ``layer1``:
  ``"layer1.0.res"`` (kind "residual"): the sum of the residual branch and the shortcut, before
  the final ReLU; ``"layer1.0"`` (kind "block"): the block output, after that ReLU.

ResNet18 has 17 points, ResNet34 33, ResNet50 33. ``width`` scales every channel count
(the stem has ``round(64 * width)`` channels); width 1 is torchvision's network.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet as tv

from memloc.models.base import (
    Add,
    Encoder,
    MeasurementPoint,
    check_in_channels,
    check_width,
    scale_channels,
)
from memloc.models.registry import register


class BasicBlock(tv.BasicBlock):
    """torchvision's BasicBlock whose residual sum is the hookable module ``res``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()  # torchvision's is in place and would overwrite the recorded sum
        self.res = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(self.res(out, identity))


class Bottleneck(tv.Bottleneck):
    """torchvision's Bottleneck whose residual sum is the hookable module ``res``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()
        self.res = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self.res(out, identity))


# arch -> (block type, blocks per stage), as in torchvision.
LAYOUTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def make_layer(block: type, inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """One stage of ``blocks`` blocks: torchvision's ``ResNet._make_layer`` without groups and
    dilation (a 1x1 conv + BatchNorm shortcut where the shape changes)."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            tv.conv1x1(inplanes, planes * block.expansion, stride),
            nn.BatchNorm2d(planes * block.expansion),
        )
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet(Encoder):
    """A torchvision ResNet with a 3x3 stride-1 stem, no first max-pool and no classifier.

    Parameters
    ----------
    arch : str
        "resnet18", "resnet34" or "resnet50".
    in_channels : int
        Channels of the input images.
    width : float
        Channel multiplier (1.0: torchvision's 64-128-256-512 stages).

    Inputs must be at least 8x8 (the stages halve the resolution three times).
    """

    min_input_size = 8

    def __init__(self, arch: str = "resnet18", in_channels: int = 3, width: float = 1.0):
        super().__init__()
        if arch not in LAYOUTS:
            raise ValueError(f"unknown ResNet {arch!r}; use one of {list(LAYOUTS)}")
        self.arch = arch
        self.in_channels = check_in_channels(in_channels)
        self.width = check_width(width)
        block, layers = LAYOUTS[arch]
        base = scale_channels(64, self.width)

        self.conv1 = nn.Conv2d(self.in_channels, base, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU()
        e = block.expansion
        self.layer1 = make_layer(block, base, base, layers[0], stride=1)
        self.layer2 = make_layer(block, base * e, 2 * base, layers[1], stride=2)
        self.layer3 = make_layer(block, 2 * base * e, 4 * base, layers[2], stride=2)
        self.layer4 = make_layer(block, 4 * base * e, 8 * base, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Identity()
        self.feature_dim = 8 * base * block.expansion

        # torchvision's initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        # torchvision's ResNet._make_layer without groups and dilation.
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                tv.conv1x1(self._inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        layers += [block(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def measurement_points(self) -> list[MeasurementPoint]:
        """``stem``, then ``layerS.B.res`` and ``layerS.B`` for every block."""
        points = [MeasurementPoint("stem", "relu", "conv")]
        for stage in range(1, 5):
            for b in range(len(self.get_submodule(f"layer{stage}"))):
                path = f"layer{stage}.{b}"
                points.append(MeasurementPoint(f"{path}.res", f"{path}.res", "residual"))
                points.append(MeasurementPoint(path, path, "block"))
        return points

    def config(self) -> dict:
        """``{"in_channels": ..., "width": ...}`` (the architecture is ``arch``)."""
        return {"in_channels": self.in_channels, "width": self.width}


@register("resnet18")
def resnet18(**kwargs) -> ResNet:
    """ResNet18 for small images (BasicBlocks 2-2-2-2, feature_dim 512 at width 1)."""
    return ResNet("resnet18", **kwargs)


@register("resnet34")
def resnet34(**kwargs) -> ResNet:
    """ResNet34 for small images (BasicBlocks 3-4-6-3, feature_dim 512 at width 1)."""
    return ResNet("resnet34", **kwargs)


@register("resnet50")
def resnet50(**kwargs) -> ResNet:
    """ResNet50 for small images (Bottlenecks 3-4-6-3, feature_dim 2048 at width 1)."""
    return ResNet("resnet50", **kwargs)
