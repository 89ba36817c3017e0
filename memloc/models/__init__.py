"""The encoders and their registry.

``create(name, **kwargs)`` builds an encoder by registry name; ``available()`` lists the names:
resnet9 (the paper's ResNet9), resnet18/34/50 (torchvision's, adapted to small images) and
vit_tiny/small/base; ``"torchvision:<name>"`` builds a torchvision architecture
(:mod:`memloc.models.foreign`). Every encoder is an :class:`Encoder` with ``arch``, ``feature_dim``,
``measurement_points()`` (forward order) and ``config()`` (``create(arch, **config())``
rebuilds the same architecture). All accept ``in_channels`` and ``width``.
"""

from __future__ import annotations

from memloc.models.base import Add, Encoder, MeasurementPoint
from memloc.models.registry import available, create, register

# Importing the architecture modules registers their encoders, in this order (ResNet9, the
# torchvision ResNets, the ViTs), which ``available()`` keeps.
# isort: off
from memloc.models import resnet9, resnet, vit  # noqa: F401
# isort: on

__all__ = ["Add", "Encoder", "MeasurementPoint", "available", "create", "register"]
