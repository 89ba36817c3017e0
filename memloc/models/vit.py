"""A small Vision Transformer (timm-like, readable) for small images.

Patch embedding (a conv with kernel = stride = ``patch_size``), a cls token, learned position
embeddings, ``depth`` pre-norm blocks and a final LayerNorm; the representation is the cls
token after the final norm. A block is::

    x = res1(x, attn(norm1(x)))     # res1, res2: Add modules
    x = res2(x, mlp(norm2(x)))      # mlp: fc1 -> act (GELU) -> fc2

Measurement points, per block i = 1 ... depth (names count from 1, module paths from 0), in
forward order:

- ``"block{i}.attn"`` (module ``blocks.{i-1}.attn``, kind "attention"): the attention sublayer's
  output (after its projection), before the residual add;
- ``"block{i}.res1"`` (module ``blocks.{i-1}.res1``, kind "residual"): the residual stream after
  the attention sublayer's add, so that a block's change in memorization splits into the
  attention part (``block{i-1}`` to ``block{i}.res1``) and the MLP part (``block{i}.res1``
  to ``block{i}``);
- ``"block{i}.mlp"`` (module ``blocks.{i-1}.mlp``, kind "mlp"): the MLP sublayer's output,
  before the residual add;
- ``"block{i}"`` (module ``blocks.{i-1}``, kind "residual"): the block output (the residual
  stream after both adds).

All three are shaped (B, 1 + n_patches, dim); the unit axis is the last. The MLP's hidden
units after GELU (module ``blocks.{i-1}.mlp.act``, shape (B, tokens, 4 * dim)) are the
points :meth:`VisionTransformer.unit_points` returns, named ``"block{i}.mlp.act"``: UnitMem
reads units there because, unlike the residual stream, they are (almost) non-negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from memloc.models.base import Add, Encoder, MeasurementPoint, check_in_channels, check_width
from memloc.models.registry import register

# arch -> (dim, depth, num_heads), as in timm / the ViT paper.
PRESETS = {
    "vit_tiny": (192, 12, 3),
    "vit_small": (384, 12, 6),
    "vit_base": (768, 12, 12),
}


class PatchEmbed(nn.Module):
    """Cut the image into non-overlapping patches and project each: (B, C, H, W) -> (B, N, dim)."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention: qkv projection, scaled dot-product attention, output proj."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, head_dim)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear; ``act`` is a module of its own so its output can be hooked."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm transformer block with hookable residual sums ``res1`` and ``res2``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.res1 = Add()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.res2 = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(x, self.attn(self.norm1(x)))
        return self.res2(x, self.mlp(self.norm2(x)))


class VisionTransformer(Encoder):
    """A ViT preset (``vit_tiny``, ``vit_small``, ``vit_base``) for ``image_size`` images.

    Parameters
    ----------
    arch : str
        The preset: sets ``dim``, ``depth`` and ``num_heads`` unless they are given.
    image_size : int
        Height = width of the inputs (position embeddings are learned for exactly this size).
    patch_size : int
        Side of a patch; must divide ``image_size``.
    in_channels : int
        Channels of the input images.
    width : float
        Multiplier of the preset's ``dim`` (rounded to a multiple of ``num_heads``); give either
        ``width`` or ``dim``, not both.
    depth, dim, num_heads : int, optional
        Overrides of the preset (small models for tests and quick runs).
    mlp_ratio : float
        Hidden size of the MLP relative to ``dim``.
    """

    def __init__(
        self,
        arch: str = "vit_tiny",
        *,
        image_size: int = 32,
        patch_size: int = 4,
        in_channels: int = 3,
        width: float = 1.0,
        depth: int | None = None,
        dim: int | None = None,
        num_heads: int | None = None,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        if arch not in PRESETS:
            raise ValueError(f"unknown ViT preset {arch!r}; use one of {list(PRESETS)}")
        preset_dim, preset_depth, preset_heads = PRESETS[arch]
        width = check_width(width)
        depth = preset_depth if depth is None else int(depth)
        num_heads = preset_heads if num_heads is None else int(num_heads)
        if dim is not None and width != 1.0:
            raise ValueError(f"give dim or width, not both (got dim={dim}, width={width})")
        if dim is None:
            # The preset's dim scaled, rounded to a multiple of the head count.
            dim = max(1, round(preset_dim * width / num_heads)) * num_heads
        dim = int(dim)
        if not (int(image_size) == image_size >= 1 and int(patch_size) == patch_size >= 1):
            raise ValueError(
                f"image_size and patch_size must be positive integers; got {image_size}, "
                f"{patch_size}"
            )
        if image_size % patch_size != 0:
            raise ValueError(
                f"image_size {image_size} is not divisible by patch_size {patch_size}; pick a "
                f"patch size that divides it or resize the images (e.g. to "
                f"{(image_size // patch_size + 1) * patch_size})"
            )
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1; got {depth}")

        self.arch = arch
        self.in_channels = check_in_channels(in_channels)
        self.image_size = int(image_size)
        self.min_input_size = self.image_size
        self.patch_size = int(patch_size)
        self.depth = depth
        self.dim = dim
        self.num_heads = num_heads
        self.mlp_ratio = float(mlp_ratio)
        self.feature_dim = dim
        n_patches = (self.image_size // self.patch_size) ** 2

        self.patch_embed = PatchEmbed(self.in_channels, dim, self.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n_patches, dim))
        self.blocks = nn.ModuleList(Block(dim, num_heads, self.mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

        # timm's initialisation: truncated normal (std 0.02) for embeddings and linear layers.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> None:
        """The base checks, and the image size must be exactly ``image_size``."""
        super().check_input(x)
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"{self.arch} was built for {self.image_size}x{self.image_size} images but got "
                f"{x.shape[-2]}x{x.shape[-1]}; resize the images or create it with "
                f"image_size={x.shape[-1]}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]

    def measurement_points(self) -> list[MeasurementPoint]:
        """Per block i (from 1): ``block{i}.attn``, ``block{i}.res1``, ``block{i}.mlp``,
        ``block{i}``."""
        points = []
        for i in range(1, self.depth + 1):
            points.append(MeasurementPoint(f"block{i}.attn", f"blocks.{i - 1}.attn", "attention"))
            points.append(MeasurementPoint(f"block{i}.res1", f"blocks.{i - 1}.res1", "residual"))
            points.append(MeasurementPoint(f"block{i}.mlp", f"blocks.{i - 1}.mlp", "mlp"))
            points.append(MeasurementPoint(f"block{i}", f"blocks.{i - 1}", "residual"))
        return points

    def unit_points(self) -> list[MeasurementPoint]:
        """Per block i (from 1): ``block{i}.mlp.act``, the MLP's hidden units after GELU."""
        return [
            MeasurementPoint(f"block{i}.mlp.act", f"blocks.{i - 1}.mlp.act", "mlp")
            for i in range(1, self.depth + 1)
        ]

    def config(self) -> dict:
        """The resolved architecture (``width`` is folded into ``dim``)."""
        return {
            "image_size": self.image_size,
            "patch_size": self.patch_size,
            "in_channels": self.in_channels,
            "depth": self.depth,
            "dim": self.dim,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
        }


@register("vit_tiny")
def vit_tiny(**kwargs) -> VisionTransformer:
    """ViT-Tiny: dim 192, depth 12, 3 heads (patch 4 on 32x32 images by default)."""
    return VisionTransformer("vit_tiny", **kwargs)


@register("vit_small")
def vit_small(**kwargs) -> VisionTransformer:
    """ViT-Small: dim 384, depth 12, 6 heads."""
    return VisionTransformer("vit_small", **kwargs)


@register("vit_base")
def vit_base(**kwargs) -> VisionTransformer:
    """ViT-Base: dim 768, depth 12, 12 heads."""
    return VisionTransformer("vit_base", **kwargs)
