"""Training frameworks: how an encoder learns (SimCLR, SimSiam, DINO, MAE, or the supervised
baseline).

A framework is an ``nn.Module`` holding the encoder as ``backbone`` and its augmentation
``policy``, with ``training_step(x, labels, generator) -> scalar loss`` (``x`` float in
[0, 1]; ``forward`` is the same call, so that DistributedDataParallel can wrap it). It may
define ``on_step_end(step, total_steps)``, which :func:`memloc.train.train` calls after every
optimizer step (for momentum teachers, schedules). The training loop knows nothing else
about it, so a new method (SimSiam, DINO, MAE) is one more module whose class carries
``@register_framework("<name>")`` (:mod:`memloc.ssl.registry`), imported below.
Parts (heads, losses) live in :mod:`memloc.ssl.heads` and :mod:`memloc.ssl.losses`.
"""

from __future__ import annotations

from torch import nn

from memloc.augment import AugmentPolicy
from memloc.ssl.dino import DINO
from memloc.ssl.heads import DINOHead, ProjectionHead
from memloc.ssl.losses import dino_loss, negative_cosine, nt_xent
from memloc.ssl.mae import MAE
from memloc.ssl.registry import FRAMEWORKS, register_framework
from memloc.ssl.simclr import SimCLR
from memloc.ssl.simsiam import SimSiam
from memloc.ssl.supervised import Supervised

__all__ = [
    "DINO",
    "DINOHead",
    "FRAMEWORKS",
    "MAE",
    "ProjectionHead",
    "SimCLR",
    "SimSiam",
    "Supervised",
    "create_framework",
    "dino_loss",
    "negative_cosine",
    "nt_xent",
    "register_framework",
]


def create_framework(
    name: str,
    backbone: nn.Module,
    policy: AugmentPolicy | None = None,
    num_classes: int | None = None,
    **kwargs,
) -> nn.Module:
    """Wrap ``backbone`` in the framework ``name`` (a key of :data:`FRAMEWORKS`).

    The head's parameters are initialised from the global RNG: seed it (``torch.manual_seed``)
    before building the backbone, as :func:`memloc.artifacts.build_encoder` does, and the
    whole framework's initialisation is reproducible.

    Parameters
    ----------
    name : str
        A key of :data:`FRAMEWORKS`.
    backbone : nn.Module
        The encoder (``feature_dim`` attribute required).
    policy : AugmentPolicy, optional
        The views to train on; each framework's own default when omitted.
    num_classes : int, optional
        Needed by "supervised"; ignored by self-supervised frameworks.
    **kwargs
        Passed to the framework (e.g. ``temperature``, ``proj_dim`` for SimCLR).
    """
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}; known: {sorted(FRAMEWORKS)}")
    if not hasattr(backbone, "feature_dim"):
        raise TypeError(f"the backbone {type(backbone).__name__} has no feature_dim attribute")
    if name == "supervised":
        if num_classes is None:
            raise ValueError("the supervised framework needs num_classes")
        kwargs["num_classes"] = num_classes
    return FRAMEWORKS[name](backbone, policy, **kwargs)
