"""MAE (He et al., 2022): hide most patches of an image, reconstruct them from the rest."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memloc.augment import AugmentPolicy
from memloc.models.vit import Block, VisionTransformer
from memloc.ssl.registry import register_framework


def patchify(x: Tensor, patch_size: int) -> Tensor:
    """(B, C, H, W) images -> (B, N, patch_size² C) patches in the ViT's row-major order."""
    b, c, h, w = x.shape
    p = patch_size
    x = x.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def random_masking(
    n_images: int, n_patches: int, keep: int, generator: torch.Generator, device
) -> tuple[Tensor, Tensor]:
    """Which patches each image keeps: ``(ids_keep (B, keep), mask (B, N))`` with mask 1 on
    the hidden patches. A seeded random permutation per image."""
    noise = torch.rand(n_images, n_patches, generator=generator, device=generator.device)
    order = noise.to(device).argsort(dim=1)
    ids_keep = order[:, :keep]
    mask = torch.ones(n_images, n_patches, device=device)
    mask.scatter_(1, ids_keep, 0.0)
    return ids_keep, mask


class MAEDecoder(nn.Module):
    """MAE's light decoder: embed the visible tokens, put a shared mask token at every hidden
    position, add position embeddings, a few transformer blocks, predict each patch's pixels."""

    def __init__(
        self, dim: int, n_patches: int, patch_dim: int, dec_dim: int, depth: int, num_heads: int
    ):
        super().__init__()
        self.embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n_patches, dec_dim))
        self.blocks = nn.ModuleList(Block(dec_dim, num_heads, 4.0) for _ in range(depth))
        self.norm = nn.LayerNorm(dec_dim)
        self.pred = nn.Linear(dec_dim, patch_dim)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: Tensor, ids_keep: Tensor, n_patches: int) -> Tensor:
        """``tokens``: (B, 1 + keep, dim), cls first. Returns (B, N, patch_dim)."""
        x = self.embed(tokens)
        b, d = x.shape[0], x.shape[2]
        full = self.mask_token.to(x.dtype).expand(b, n_patches, d).clone()
        full.scatter_(1, ids_keep.unsqueeze(-1).expand(-1, -1, d), x[:, 1:])
        x = torch.cat([x[:, :1], full], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))[:, 1:]


@register_framework("mae")
class MAE(nn.Module):
    """A ViT trained to reconstruct the hidden patches of its input.

    The encoder sees only the kept patches (with their position embeddings and the cls
    token); the decoder fills in the rest. The loss is the mean squared error on the hidden
    patches, against each patch's pixels normalised by their own mean and variance
    (``norm_pix_loss``, MAE's default). The encoder memloc keeps and measures is the ViT,
    run on whole, unmasked images (its ordinary forward).

    Parameters
    ----------
    backbone : VisionTransformer
        The encoder (a memloc ViT: MAE works on patches).
    policy : AugmentPolicy, optional
        Views before masking; :meth:`AugmentPolicy.mae` by default.
    mask_ratio : float
        Share of the patches hidden from the encoder (MAE: 0.75).
    decoder_dim, decoder_depth, decoder_heads : size of :class:`MAEDecoder`.
    norm_pix_loss : normalise each target patch (True) or reconstruct raw pixels.
    """

    def __init__(
        self,
        backbone: nn.Module,
        policy: AugmentPolicy | None = None,
        mask_ratio: float = 0.75,
        decoder_dim: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        norm_pix_loss: bool = True,
    ):
        super().__init__()
        if not isinstance(backbone, VisionTransformer):
            raise TypeError(
                f"MAE needs a memloc ViT encoder (vit_tiny, vit_small, vit_base), got "
                f"{type(backbone).__name__}; use another framework for convolutional encoders"
            )
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio}")
        self.backbone = backbone
        self.policy = policy if policy is not None else AugmentPolicy.mae()
        self.mask_ratio = float(mask_ratio)
        self.norm_pix_loss = norm_pix_loss
        self.n_patches = (backbone.image_size // backbone.patch_size) ** 2
        self.keep = max(1, round(self.n_patches * (1 - self.mask_ratio)))
        patch_dim = backbone.patch_size**2 * backbone.in_channels
        self.decoder = MAEDecoder(
            backbone.dim, self.n_patches, patch_dim, decoder_dim, decoder_depth, decoder_heads
        )

    def encode_visible(self, x: Tensor, ids_keep: Tensor) -> Tensor:
        """The ViT on the kept patches only: (B, 1 + keep, dim) after the final norm."""
        vit = self.backbone
        tokens = vit.patch_embed(x) + vit.pos_embed[:, 1:]
        d = tokens.shape[2]
        tokens = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
        cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        for block in vit.blocks:
            tokens = block(tokens)
        return vit.norm(tokens)

    def training_step(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        """The reconstruction loss of one batch (``labels`` unused)."""
        self.backbone.check_input(x)
        x = self.policy(x, generator)
        ids_keep, mask = random_masking(len(x), self.n_patches, self.keep, generator, x.device)
        pred = self.decoder(self.encode_visible(x, ids_keep), ids_keep, self.n_patches)
        target = patchify(x, self.backbone.patch_size)
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        # The training step is the forward pass so that DistributedDataParallel sees it.
        return self.training_step(x, labels, generator)
