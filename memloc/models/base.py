"""What every memloc encoder provides: named measurement points, a config, checked inputs.

A *measurement point* is a module whose forward output is an activation the metrics measure
(LayerMem compares encoders there, UnitMem reads its units). Residual sums are computed by an
:class:`Add` module so that a forward hook on it sees the sum itself.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import nn

KINDS = ("conv", "residual", "block", "attention", "mlp", "embed")


@dataclass(frozen=True)
class MeasurementPoint:
    """One place in an encoder where activations are measured.

    Attributes
    ----------
    name : str
        What tables and users call it: ``"1"``, ``"Res2"``, ``"layer1.0.res"``, ``"block3.attn"``.
    module : str
        Dotted path of the module inside the encoder (``encoder.get_submodule(module)``); the
        activation is that module's forward output, and the module runs once per forward.
    kind : str
        One of ``KINDS``: ``"conv"``, ``"residual"``, ``"block"``, ``"attention"``, ``"mlp"``,
        ``"embed"``.
    """

    name: str
    module: str
    kind: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown measurement point kind {self.kind!r}; use one of {KINDS}")


def scale_channels(channels: int, width: float) -> int:
    """``channels`` times ``width``, rounded, at least 1."""
    return max(1, int(round(channels * width)))


def check_width(width: float) -> float:
    """``width`` as a float; ValueError unless it is a positive number."""
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not width > 0:
        raise ValueError(f"width must be a positive number (a channel multiplier); got {width!r}")
    return float(width)


def check_in_channels(in_channels: int) -> int:
    """``in_channels`` as an int; ValueError unless it is a positive integer."""
    if (
        isinstance(in_channels, bool)
        or not isinstance(in_channels, numbers.Integral)
        or in_channels < 1
    ):
        raise ValueError(f"in_channels must be a positive integer; got {in_channels!r}")
    return int(in_channels)


class Add(nn.Module):
    """``a + b`` as a module of its own, so that a forward hook sees a residual sum.

    The sum is a new tensor (never in place): activations recorded earlier stay untouched.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Encoder(nn.Module):
    """Base class of memloc's encoders: images (B, C, H, W) in [0, 1] -> features (B, feature_dim).

    Subclasses set ``arch`` (their registry name), ``feature_dim``, ``in_channels`` and
    ``min_input_size``, call :meth:`check_input` at the start of ``forward``, and implement
    :meth:`measurement_points` and :meth:`config`.
    """

    arch: str
    feature_dim: int
    in_channels: int
    min_input_size: int

    def measurement_points(self) -> list[MeasurementPoint]:
        """The points where activations are measured, in forward order."""
        raise NotImplementedError(f"{type(self).__name__} must define measurement_points()")

    def unit_points(self) -> list[MeasurementPoint]:
        """The points whose units UnitMem reads naturally; the measurement points by default.

        Architectures whose measurement points are not rectified (the ViT's residual stream)
        override this with the post-activation hidden layers.
        """
        return self.measurement_points()

    def config(self) -> dict:
        """Keyword arguments that rebuild this architecture: ``create(arch, **config())``."""
        raise NotImplementedError(f"{type(self).__name__} must define config()")

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError, saying what to do, when ``x`` is not a batch this encoder accepts."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{self.arch} expects a batch of images shaped (B, C, H, W); got {shape}. "
                "Add a batch dimension with x.unsqueeze(0) for a single image."
            )
        if not x.is_floating_point():
            raise ValueError(
                f"{self.arch} expects float images in [0, 1]; got dtype {x.dtype}. "
                "Convert uint8 images with x.float() / 255."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.arch} was built for {self.in_channels}-channel images but got "
                f"{x.shape[1]} channels; create it with in_channels={x.shape[1]}."
            )
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            size = self.min_input_size
            raise ValueError(
                f"{self.arch} needs images of at least {size}x{size} pixels; got "
                f"{height}x{width}. Resize or pad them to at least {size}x{size} "
                f"(e.g. load_dataset(..., image_size={max(size, 32)}))."
            )
