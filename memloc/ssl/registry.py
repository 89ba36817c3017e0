"""The framework registry: ``register_framework`` (a decorator) and ``FRAMEWORKS``.

Each framework module (:mod:`memloc.ssl.simclr`, ``simsiam``, ``dino``, ``mae``,
``supervised``) decorates its class with ``@register_framework("<name>")``; :mod:`memloc.ssl`
imports them and builds them by name (:func:`memloc.ssl.create_framework`). A new method is
one module with one decorator, as for the encoders (:mod:`memloc.models.registry`).

Example
-------
>>> from memloc.ssl import FRAMEWORKS
>>> sorted(FRAMEWORKS)
['dino', 'mae', 'simclr', 'simsiam', 'supervised']
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

FRAMEWORKS: dict[str, type[nn.Module]] = {}


def register_framework(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Decorator: make a framework class available as ``create_framework(name, ...)``."""

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in FRAMEWORKS:
            raise ValueError(f"a framework named {name!r} is already registered")
        FRAMEWORKS[name] = cls
        return cls

    return decorate
