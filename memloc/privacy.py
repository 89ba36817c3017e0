"""Differentially private training of encoders (DP-SGD, Abadi et al. 2016) with Opacus.

What is protected, and how:

- The unit of privacy is one training image. Every step draws a Poisson batch (each image
  joins with probability q = batch_size / N), computes each image's gradient, clips it to
  norm C (``max_grad_norm``), sums, adds Gaussian noise of standard deviation σC, and divides
  by the expected batch size qN. Opacus's RDP accountant turns (σ, q, steps) into (ε, δ); σ is
  chosen so that the whole run spends the asked ε at the asked δ.
- Clipping bounds an image's influence only when the loss is a sum of per-image terms.
  SimCLR's NT-Xent is not: every image is a negative in every other image's term, so one
  image moves all the batch's gradients and the ε would not hold. memloc therefore trains
  private encoders with SimSiam (an image's loss involves only its own two views) or with the
  supervised baseline, and refuses SimCLR, DINO (its centre mixes the batch) and MAE with this
  reason.
- BatchNorm also mixes the images of a batch, so private encoders use GroupNorm (ResNet9 with
  ``norm="group"``), and the BatchNorm of a framework's heads becomes a one-group GroupNorm
  (a LayerNorm over the features).
- Per-image gradients come from Opacus's :class:`~opacus.GradSampleModule` (one gradient per
  row of each layer's input); an image's gradient is the sum over the rows of its views.
- The batches and the noise come from seeded torch generators, so a run is reproducible. They
  are not cryptographically secure (Opacus's ``secure_mode``): right for measuring
  memorization under DP, not for deploying a private model.

:func:`private_framework` builds a framework ready for DP-SGD; :func:`train_private` trains it
and returns the log with the ε spent.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from opacus import GradSampleModule
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.validators import ModuleValidator
from torch import Tensor, nn
from tqdm.auto import tqdm

from memloc.augment import AugmentPolicy
from memloc.ssl import FRAMEWORKS, create_framework
from memloc.train import (
    CHECKPOINT,
    TrainConfig,
    derived_seed,
    epoch_line,
    make_optimizer,
    set_learning_rate,
)
from memloc.utils import atomic_torch_save, get_device, make_generator

VIEWS_PER_IMAGE = {"simsiam": 2, "supervised": 1}
"""Frameworks whose loss is a sum of per-image terms, and how many rows (views) of each layer's
input belong to one image."""

REFUSED = {
    "simclr": "NT-Xent makes every image a negative of every other, so clipping one image's "
    "gradient does not bound its influence on the others'",
    "dino": "the centre of the teacher's outputs is a running mean over the batch",
    "mae": "the ViT's token and position parameters have no per-example gradients in Opacus",
}


@dataclass(frozen=True)
class PrivacyConfig:
    """The privacy target of a DP-SGD run.

    Attributes
    ----------
    epsilon, delta : the (ε, δ) the whole run may spend.
    max_grad_norm : C, the norm each image's gradient is clipped to.
    physical_batch : images per backward pass (memory only; the privacy does not depend on it).
    """

    epsilon: float
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    physical_batch: int = 64

    def __post_init__(self):
        if not self.epsilon > 0 or not 0 < self.delta < 1 or not self.max_grad_norm > 0:
            raise ValueError(
                f"need epsilon > 0, 0 < delta < 1 and max_grad_norm > 0, got {asdict(self)}"
            )
        if self.physical_batch < 1:
            raise ValueError(f"physical_batch must be >= 1, got {self.physical_batch}")


def private_framework(
    name: str,
    backbone: nn.Module,
    policy: AugmentPolicy | None = None,
    num_classes: int | None = None,
    **kwargs,
) -> nn.Module:
    """The framework ``name`` around ``backbone``, ready for DP-SGD: its heads' BatchNorm
    replaced by GroupNorm, every module checked by Opacus.

    Raises
    ------
    ValueError
        For a framework whose loss couples the images of a batch (the reason is in the
        message), or a backbone with BatchNorm (build it with ``norm="group"``: the cached
        encoder must be rebuilt from its architecture alone, so memloc does not swap its
        layers behind its back).
    """
    if name in REFUSED:
        raise ValueError(
            f"memloc does not train {name} privately: {REFUSED[name]}. Use one of "
            f"{sorted(VIEWS_PER_IMAGE)} (see memloc.privacy)"
        )
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}; known: {sorted(FRAMEWORKS)}")
    batch_norms = [
        n for n, m in backbone.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if batch_norms:
        raise ValueError(
            f"the backbone has BatchNorm ({', '.join(batch_norms[:3])}, ...), which mixes the "
            "images of a batch; build it with GroupNorm, e.g. create('resnet9', norm='group')"
        )
    framework = create_framework(name, backbone, policy, num_classes=num_classes, **kwargs)
    _without_batch_norm(framework)
    for module in framework.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False  # Opacus's hooks see each layer's output; in place breaks it
    errors = ModuleValidator.validate(framework, strict=False)
    if errors:
        raise ValueError(f"Opacus cannot train this framework privately: {errors}")
    framework.private_name = name
    return framework


def _without_batch_norm(module: nn.Module) -> None:
    """Replace every BatchNorm1d of ``module`` (the heads' hidden layers) by a GroupNorm with
    one group, a LayerNorm over the features: Opacus's own fix gives one group per channel
    there, which normalises each feature of a vector against itself and erases it."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d):
            setattr(module, name, nn.GroupNorm(1, child.num_features, affine=child.affine))
        else:
            _without_batch_norm(child)


def _framework_name(framework: nn.Module) -> str:
    name = getattr(framework, "private_name", None)
    if name not in VIEWS_PER_IMAGE:
        raise ValueError("train_private needs a framework made by private_framework()")
    return name


def per_image_gradients(
    model: GradSampleModule, x: Tensor, labels: Tensor, generator: torch.Generator, views: int
) -> tuple[float, list[Tensor]]:
    """Each image's gradient of its own loss term, one ``(B, *shape)`` tensor per trainable
    parameter of ``model`` (the GradSampleModule around a private framework), and the summed
    loss.

    The framework returns the mean loss over the batch; times B it is the sum of the per-image
    terms, whose per-row gradients Opacus computes. The rows of image i are i, i + B, ... (the
    frameworks put the views of the batch one after the other).
    """
    b = x.shape[0]
    with warnings.catch_warnings():
        # Opacus's hooks on the first layer, whose input (the images) needs no gradient.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        # functorch (Opacus's per-image gradients of a ViT's attention) on CPU: slower only.
        warnings.filterwarnings("ignore", message="There is a performance drop")
        loss = model(x, labels, generator) * b
        loss.backward()
    grads = []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        rows = p.grad_sample
        grads.append(rows.reshape(views, b, *p.shape).sum(dim=0))
        p.grad_sample = None
        p.grad = None
    return float(loss.detach()), grads


def clip_and_sum(grads: list[Tensor], max_grad_norm: float) -> list[Tensor]:
    """Scale every image's gradient (across all parameters) to norm at most ``max_grad_norm``
    and sum over the images: one tensor per parameter."""
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(dim=1) for g in grads))
    factor = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    return [torch.einsum("b,b...->...", factor, g) for g in grads]


def train_private(
    framework: nn.Module,
    images_uint8: Tensor,
    labels: Tensor,
    config: TrainConfig,
    privacy: PrivacyConfig,
    *,
    device: str | torch.device | None = None,
    progress: bool | str = True,
    checkpoint_dir: str | Path | None = None,
) -> dict:
    """DP-SGD training of a :func:`private_framework` (in place) on ``images_uint8``.

    ``config`` gives the epochs, the expected batch size (``batch_size``: the sampling rate is
    batch_size / N), the optimizer and the seed; ``privacy``
    the (ε, δ) target and the clipping norm. The run has ``epochs * (N // batch_size)`` steps,
    as :func:`memloc.train.train` would. With ``checkpoint_dir``, every epoch ends with
    ``last.pt`` there (weights, optimizer, the three generators, the accountant's history), and
    a run that finds one resumes from it: an interrupted run ends exactly as an uninterrupted
    one, with the same ε spent.

    Returns
    -------
    dict
        ``epochs`` (per epoch: mean loss per sampled image, wall time), ``epsilon`` (spent,
        at most the target), ``delta``, ``noise_multiplier`` σ, ``sample_rate`` q, ``steps``,
        ``max_grad_norm``.
    """
    views = VIEWS_PER_IMAGE[_framework_name(framework)]
    device = get_device(device)
    n = len(images_uint8)
    steps_per_epoch = n // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size {config.batch_size} is larger than the {n} images")
    q = config.batch_size / n
    total = config.epochs * steps_per_epoch
    sigma = get_noise_multiplier(
        target_epsilon=privacy.epsilon,
        target_delta=privacy.delta,
        sample_rate=q,
        steps=total,
        accountant="rdp",
    )
    framework.to(device)
    model = GradSampleModule(framework, loss_reduction="sum")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(config, params)
    accountant = RDPAccountant()
    sample_gen = make_generator(derived_seed(config.seed, "shuffle"), "cpu")
    augment_gen = make_generator(derived_seed(config.seed, "augment"), device)
    noise_gen = make_generator(derived_seed(config.seed, "noise"), device)
    images, labels = images_uint8.to(device), labels.to(device)
    log, start = [], 0
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    settings = {"config": asdict(config), "privacy": asdict(privacy), "sigma": float(sigma)}
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state["settings"] != settings:
            raise ValueError(
                f"{ckpt} was written by a private run with other settings; delete it or pick "
                "another checkpoint_dir"
            )
        framework.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for gen, name in ((sample_gen, "sample"), (augment_gen, "augment"), (noise_gen, "noise")):
            gen.set_state(state["rng"][name])
        accountant.history = [tuple(h) for h in state["accountant"]]
        log, start = state["log"], state["epoch"]
    bar = tqdm(
        total=total,
        initial=start * steps_per_epoch,
        desc="DP-SGD",
        unit="step",
        disable=progress is not True,
        dynamic_ncols=True,
    )
    try:
        for epoch in range(start, config.epochs):
            framework.train()
            tic, loss_sum, seen = time.perf_counter(), 0.0, 0
            for step in range(steps_per_epoch):
                # Poisson sampling: the accountant's analysis assumes it.
                chosen = torch.nonzero(torch.rand(n, generator=sample_gen) < q).squeeze(1)
                summed = [torch.zeros_like(p) for p in params]
                for part in chosen.to(device).split(privacy.physical_batch):
                    x = images[part].float().div_(255)
                    loss, grads = per_image_gradients(model, x, labels[part], augment_gen, views)
                    clipped = clip_and_sum(grads, privacy.max_grad_norm)
                    for s, g in zip(summed, clipped, strict=True):
                        s += g
                    loss_sum, seen = loss_sum + loss, seen + len(part)
                std = sigma * privacy.max_grad_norm
                for p, s in zip(params, summed, strict=True):
                    noise = torch.normal(0.0, std, p.shape, generator=noise_gen, device=device)
                    p.grad = (s + noise) / (q * n)
                set_learning_rate(optimizer, config, epoch * steps_per_epoch + step, total)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                accountant.step(noise_multiplier=sigma, sample_rate=q)
                bar.update()
            wall = time.perf_counter() - tic
            log.append({"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "wall_s": wall})
            if progress == "epochs":  # one line per epoch (memloc.train's log format)
                line = {**log[-1], "pairs_per_s": seen / wall}
                print(epoch_line("DP-SGD", line, config.epochs), flush=True)
            if ckpt is not None:
                state = {
                    "model": {k: v.detach().cpu() for k, v in framework.state_dict().items()},
                    "optimizer": optimizer.state_dict(),
                    "rng": {
                        "sample": sample_gen.get_state(),
                        "augment": augment_gen.get_state(),
                        "noise": noise_gen.get_state(),
                    },
                    "accountant": [list(h) for h in accountant.history],
                    "epoch": epoch + 1,
                    "log": log,
                    "settings": settings,
                }
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                atomic_torch_save(state, ckpt)
    finally:
        bar.close()
        model._close()
    return {
        "epochs": log,
        "epsilon": float(accountant.get_epsilon(delta=privacy.delta)),
        "delta": privacy.delta,
        "noise_multiplier": float(sigma),
        "sample_rate": q,
        "steps": total,
        "max_grad_norm": privacy.max_grad_norm,
        "expected_batch_size": math.floor(q * n),
    }
