"""The encoder registry: ``register`` (a decorator), ``available`` and ``create``.

It sits below the architecture modules (:mod:`memloc.models.resnet9`, ``resnet``, ``vit``),
which import :func:`register` from here and register themselves when imported;
:mod:`memloc.models` imports them and re-exports these three functions. Keeping the registry
in its own module means no architecture module imports the package that imports it (no
import circle).
"""

from __future__ import annotations

from collections.abc import Callable

from memloc.models.base import Encoder
from memloc.models.foreign import create_foreign, is_foreign

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
