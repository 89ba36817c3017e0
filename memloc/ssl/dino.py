"""DINO (Caron et al., 2021): a student matches an EMA teacher's centred, sharpened outputs."""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
import torch.distributed as dist
from torch import Tensor, nn

from memloc.augment import AugmentPolicy
from memloc.ssl.heads import DINOHead
from memloc.ssl.losses import dino_loss, distributed_world
from memloc.ssl.registry import register_framework


@register_framework("dino")
class DINO(nn.Module):
    """Self-distillation without labels: the student (``backbone`` + head) is trained to give,
    for each view, the distribution the teacher gives for the other view. The teacher is an
    exponential moving average of the student and gets no gradient.

    Two global views per image, and optionally DINO's multi-crop: ``local_crops`` more views
    per image, cut from a small part of it (``local_crop_scale``), that only the student sees
    and that learn to predict the teacher's global views. The local views keep the image size
    (DINO shrinks them to 96 pixels; a ViT here is built for one input size). Off by default,
    so that the training views and the measurement's are the same kind. The encoder memloc
    keeps and measures is the student's backbone, the one the gradient trains.

    Parameters
    ----------
    backbone : nn.Module
        The encoder; needs a ``feature_dim`` attribute.
    policy : AugmentPolicy, optional
        How views are drawn; the paper's SimCLR views by default.
    out_dim, hidden_dim, bottleneck : sizes of :class:`~memloc.ssl.heads.DINOHead`.
    student_temperature, teacher_temperature : the softmax temperatures (DINO: 0.1, 0.04).
    center_momentum : momentum of the running centre of the teacher's outputs.
    teacher_momentum : the teacher's EMA momentum at the start; it rises to 1 along a cosine
        over training (:meth:`on_step_end`).
    local_crops : number of local views per image (0: none, DINO's default setting uses 8).
    local_crop_scale : the area range of a local crop (DINO: 0.05 to 0.4); the global views'
        range is the policy's, which must then be an :class:`~memloc.augment.AugmentPolicy`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        policy: AugmentPolicy | None = None,
        out_dim: int = 1024,
        hidden_dim: int = 512,
        bottleneck: int = 128,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        center_momentum: float = 0.9,
        teacher_momentum: float = 0.996,
        local_crops: int = 0,
        local_crop_scale: tuple[float, float] = (0.05, 0.4),
    ):
        super().__init__()
        if not 0 <= teacher_momentum <= 1 or not 0 <= center_momentum <= 1:
            raise ValueError("momenta must lie in [0, 1]")
        if int(local_crops) != local_crops or local_crops < 0:
            raise ValueError(f"local_crops must be a non-negative integer, got {local_crops!r}")
        self.backbone = backbone
        self.policy = policy if policy is not None else AugmentPolicy.simclr()
        self.local_crops = int(local_crops)
        self.local_policy = None
        if self.local_crops:
            if not isinstance(self.policy, AugmentPolicy):
                raise TypeError("local crops need an AugmentPolicy (its crop scale is replaced)")
            self.local_policy = dataclasses.replace(self.policy, crop_scale=local_crop_scale)
        self.head = DINOHead(backbone.feature_dim, hidden_dim, bottleneck, out_dim)
        # The teacher starts as an exact copy of the student.
        self.teacher_backbone = copy.deepcopy(backbone)
        self.teacher_head = copy.deepcopy(self.head)
        for p in self._teacher_parameters():
            p.requires_grad_(False)
        self.register_buffer("center", torch.zeros(out_dim))
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.center_momentum = center_momentum
        self.teacher_momentum = teacher_momentum

    def _teacher_parameters(self):
        return [*self.teacher_backbone.parameters(), *self.teacher_head.parameters()]

    def _student_parameters(self):
        return [*self.backbone.parameters(), *self.head.parameters()]

    def training_step(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        """DINO's loss of one batch (``labels`` unused); updates the centre."""
        global_views = torch.cat([self.policy(x, generator), self.policy(x, generator)])
        local_views = [self.local_policy(x, generator) for _ in range(self.local_crops)]
        views = torch.cat([global_views, *local_views])
        student = self.head(self.backbone(views)).chunk(2 + self.local_crops)
        with torch.no_grad():
            self.teacher_backbone.train(self.training)
            teacher_out = self.teacher_head(self.teacher_backbone(global_views))
        loss = dino_loss(
            list(student),
            list(teacher_out.chunk(2)),
            self.center,
            student_temperature=self.student_temperature,
            teacher_temperature=self.teacher_temperature,
        )
        if self.training:
            self._update_center(teacher_out)
        return loss

    @torch.no_grad()
    def _update_center(self, teacher_out: Tensor) -> None:
        batch_sum = teacher_out.float().sum(dim=0)
        count = torch.tensor(float(len(teacher_out)), device=batch_sum.device)
        _, world = distributed_world()
        if world > 1:  # the centre is the mean over the global batch
            dist.all_reduce(batch_sum)
            dist.all_reduce(count)
        m = self.center_momentum
        self.center.mul_(m).add_(batch_sum / count, alpha=1 - m)

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """Move the teacher towards the student; the momentum follows a cosine from
        ``teacher_momentum`` to 1 over ``total_steps``."""
        m0 = self.teacher_momentum
        m = 1 - (1 - m0) * (math.cos(math.pi * step / max(total_steps, 1)) + 1) / 2
        for t, s in zip(self._teacher_parameters(), self._student_parameters(), strict=True):
            t.mul_(m).add_(s.detach(), alpha=1 - m)
        # BatchNorm statistics of the teacher follow the student's, with the same momentum.
        for t, s in zip(self.teacher_backbone.buffers(), self.backbone.buffers(), strict=True):
            if t.is_floating_point():
                t.mul_(m).add_(s, alpha=1 - m)
            else:
                t.copy_(s)

    def forward(self, x: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        # The training step is the forward pass so that DistributedDataParallel sees it.
        return self.training_step(x, labels, generator)
