"""The encoders and their registry.

``create(name, **kwargs)`` builds an encoder by registry name; ``available()`` lists the names:
resnet9 (the paper's ResNet9), resnet18/34/50 (torchvision's, adapted to small images) and
vit_tiny/small/base; ``"torchvision:<name>"`` builds a torchvision architecture
(:mod:`memloc.models.foreign`). Every encoder is an :class:`Encoder` with ``arch``, ``feature_dim``,
``measurement_points()`` (forward order) and ``config()`` (``create(arch, **config())``
rebuilds the same architecture). All accept ``in_channels`` and ``width``.
"""

from __future__ import annotations

from collections.abc import Callable

from memloc.models.base import Add, Encoder, MeasurementPoint

_REGISTRY: dict[str, Callable[..., Encoder]] = {}


def register(name: str) -> Callable:
    """Decorator: make an encoder class or factory function available as ``create(name)``."""

    def decorate(factory: Callable[..., Encoder]) -> Callable[..., Encoder]:
        if name in _REGISTRY:
            raise ValueError(f"an encoder named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def available() -> list[str]:
    """The registered encoder names, in registration order."""
    return list(_REGISTRY)


def create(name: str, **kwargs) -> Encoder:
    """Build the encoder registered as ``name`` with ``kwargs`` (``in_channels``, ``width``, ...).

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.
    """
    if is_foreign(name):  # "torchvision:resnet18": memloc.models.foreign
        return create_foreign(name, **kwargs)
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown encoder {name!r}; available: {', '.join(available())}, or "
            "torchvision:<name> (e.g. torchvision:resnet18)"
        )
    return _REGISTRY[name](**kwargs)


# The architecture modules register themselves with the decorator above, so they come last.
from memloc.models import resnet9, resnet, vit  # noqa: E402, F401, I001
from memloc.models.foreign import create_foreign, is_foreign  # noqa: E402

__all__ = ["Add", "Encoder", "MeasurementPoint", "available", "create", "register"]
