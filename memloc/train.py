"""The training loop: one function, read top to bottom.

``train(framework, images, labels, config)`` runs ``config.epochs`` epochs of
``framework.training_step`` with Adam by default (the paper's recipe), checkpoints after
every epoch and resumes from the checkpoint it finds. What it guarantees:

- **Who seeds what.** The caller seeds the model's initialisation (``torch.manual_seed``
  before building the encoder and framework; :func:`memloc.artifacts.build_encoder` does).
  The loop owns two generators derived from ``config.seed``: one on the CPU for the per-epoch
  shuffle, one on the device for the augmentations. It never draws from the global RNG.
- **Batches.** Every epoch is a fresh seeded permutation cut into ``len(images) //
  batch_size`` full batches; the remainder (fewer than ``batch_size`` images, different ones
  every epoch) is dropped, so every step sees as many negatives and BatchNorm never sees a
  tiny batch. Images stay uint8 until their batch is moved to the device and scaled to [0, 1].
- **Determinism and resumption.** On the CPU the same seed gives bit-identical weights, and a
  run interrupted after epoch k and started again with the same ``checkpoint_dir`` ends with
  the same weights as an uninterrupted run: ``last.pt`` holds the framework (encoder and
  head), the optimizer, the epoch, the generators' states and the log so far, and loads with
  ``torch.load(weights_only=True)``.
- **Distributed.** Under ``torchrun`` (or an initialised process group) the framework is
  wrapped in DistributedDataParallel; ``batch_size`` stays the global batch, every rank draws
  the same permutation and takes its slice of every batch, BatchNorm statistics are
  synchronised over ranks, SimCLR's NT-Xent gathers negatives from all ranks, and only rank
  0 writes files. Each rank draws its own views (its augmentation generator is seeded with its
  rank), so with random augmentations a distributed run is another draw of the same training
  process, not a bit-copy of the one-process run; with a deterministic policy it matches the
  one-process run up to floating-point rounding.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn
from tqdm import tqdm

from memloc.ssl.losses import all_reduce_with_grad, distributed_world
from memloc.utils import atomic_torch_save, atomic_write_bytes, get_device, make_generator

CHECKPOINT = "last.pt"
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
# Fields that may change between an interrupted run and its continuation.
_RESUMABLE_CHANGES = ("epochs", "snapshot_epochs")
_STREAMS = {"shuffle": 0, "augment": 1, "noise": 2}  # "noise": DP-SGD (memloc.privacy)


class CheckpointError(RuntimeError):
    """A ``last.pt`` that cannot be read (truncated, corrupt); the message names the file."""


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (the defaults are the paper's SimCLR recipe).

    Parameters
    ----------
    epochs, batch_size : int
        Passes over the data and the global batch size (split over ranks under DDP).
    lr, weight_decay : float
        Optimizer learning rate and (L2) weight decay; the paper: Adam, 1e-3, 1e-6.
    seed : int
        Seeds the shuffling and the augmentations (not the model's initialisation).
    amp : bool
        bf16 autocast on CUDA (ignored on the CPU).
    snapshot_epochs : tuple of int
        Epochs after which the backbone's weights are kept (0: before training).
    optimizer : str
        "adam" (the paper), "adamw" or "sgd" (momentum 0.9).
    lr_schedule : str
        "constant" (the paper) or "cosine": the learning rate of step t of T falls from ``lr``
        to 0 as ``lr * (1 + cos(pi * t / T)) / 2`` (SimCLR's decay, without its warm-up),
        computed from the step, so a resumed run follows it exactly.
    """

    epochs: int
    batch_size: int
    lr: float = 1e-3
    weight_decay: float = 1e-6
    seed: int = 0
    amp: bool = True
    snapshot_epochs: tuple[int, ...] = ()
    optimizer: str = "adam"
    lr_schedule: str = "constant"

    def __post_init__(self):
        self.snapshot_epochs = tuple(int(e) for e in self.snapshot_epochs)
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError(
                f"need epochs >= 0 and batch_size >= 1, got {self.epochs}, {self.batch_size}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; known: {list(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; known: {list(LR_SCHEDULES)}"
            )
        bad = [e for e in self.snapshot_epochs if not 0 <= e <= self.epochs]
        if bad:
            raise ValueError(f"snapshot_epochs {bad} lie outside 0..epochs={self.epochs}")


def train(
    framework: nn.Module,
    images_uint8: Tensor,
    labels: Tensor,
    config: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool | str = True,
    desc: str = "",
) -> dict:
    """Train ``framework`` (in place) on ``images_uint8`` (N, C, H, W) with ``labels`` (N,).

    Parameters
    ----------
    framework : nn.Module
        A :mod:`memloc.ssl` framework (``training_step(x, labels, generator)``).
    images_uint8 : Tensor
        uint8 images; they are moved to ``device`` once and scaled to [0, 1] batch by batch.
    labels : Tensor
        int64 labels (only supervised frameworks use them).
    config : TrainConfig
        The run's hyper-parameters.
    checkpoint_dir : path, optional
        Where ``last.pt`` (after every epoch) and ``epoch_XXXX.safetensors`` snapshots go; a
        ``last.pt`` found there is resumed. Without it nothing is written.
    device : str or torch.device, optional
        CUDA when available by default (under torchrun: the rank's GPU).
    progress : bool or "epochs"
        True: a tqdm bar with the loss and images (pairs of views) per second. ``"epochs"``:
        one printed line per epoch instead (for logs, e.g. the book's workflow jobs).
    desc : str
        The bar's label.

    Returns
    -------
    dict
        ``{"epochs": [{"epoch", "loss", "pairs_per_s", "wall_s"}, ...], "steps_per_epoch",
        "batch_size", "world_size", "wall_s"}`` (``wall_s``: the epochs' total).

    Example
    -------
    >>> import torch
    >>> from memloc.models import create
    >>> from memloc.ssl import create_framework
    >>> framework = create_framework("simclr", create("resnet9", in_channels=1, width=0.125))
    >>> images = torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8)
    >>> log = train(framework, images, torch.zeros(16, dtype=torch.long),
    ...             TrainConfig(epochs=2, batch_size=8), progress=False)
    >>> len(log["epochs"]), sorted(log["epochs"][0])
    (2, ['epoch', 'loss', 'pairs_per_s', 'wall_s'])
    """
    _check_data(images_uint8, labels, config)
    rank, world, owns_group = _start_distributed(device)
    try:
        return _train(
            framework,
            images_uint8,
            labels,
            config,
            checkpoint_dir,
            device,
            progress,
            desc,
            rank,
            world,
        )
    finally:
        if owns_group:
            dist.destroy_process_group()


def epoch_line(desc: str, entry: dict, epochs: int) -> str:
    """One line of ``progress="epochs"``: epoch, mean loss, pairs of views per second."""
    rate = f", {entry['pairs_per_s']:.0f} pairs/s" if "pairs_per_s" in entry else ""
    return (
        f"{desc or 'training'}: epoch {entry['epoch']}/{epochs}, loss {entry['loss']:.4f}"
        f"{rate}, {entry['wall_s']:.1f} s"
    )


def _train(framework, images, labels, config, checkpoint_dir, device, progress, desc, rank, world):
    device = rank_device(device, world)
    framework.to(device)
    images, labels = images.to(device), labels.to(device)
    steps = len(images) // config.batch_size  # the last partial batch is dropped
    if config.batch_size % world:
        raise ValueError(
            f"the global batch_size {config.batch_size} must split evenly over {world} ranks"
        )
    local = config.batch_size // world

    shuffle_gen = make_generator(derived_seed(config.seed, "shuffle"), "cpu")
    augment_gen = make_generator(derived_seed(config.seed, "augment", rank), device)
    optimizer = make_optimizer(config, framework.parameters())
    log, start = [], 0
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    if ckpt is not None and ckpt.exists():
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated zip archive, a foreign file
            raise CheckpointError(
                f"training checkpoint {ckpt} is unreadable ({type(err).__name__}: "
                f"{' '.join(str(err).split())[:120]}); delete it to train from the start"
            ) from None
        _check_resume(state, config, world, ckpt)
        framework.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle_gen.set_state(state["rng"]["shuffle"])
        augment_gen.set_state(state["rng"]["augment"][rank])
        log, start = state["log"], state["epoch"]
    elif checkpoint_dir is not None and rank == 0 and 0 in config.snapshot_epochs:
        _save_snapshot(framework, checkpoint_dir, 0)

    model, restore_bn = framework, []
    if world > 1:
        # Per-rank BatchNorm would normalise over a rank's slice only (and lets SimCLR cheat on
        # its negatives); synchronised statistics make the step the one of the global batch.
        restore_bn = _synchronise_batchnorm(framework)
        model = nn.parallel.DistributedDataParallel(
            framework,
            device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False,  # synchronised BatchNorm keeps the buffers equal
        )
    autocast = torch.autocast(
        device.type, torch.bfloat16, enabled=config.amp and device.type == "cuda"
    )
    on_step_end = getattr(framework, "on_step_end", None)
    bar = tqdm(
        total=config.epochs * steps,
        initial=start * steps,
        desc=desc or None,
        unit="step",
        disable=progress is not True or rank != 0,
        position=int(os.environ.get("MEMLOC_TQDM_POSITION", "0")),
        dynamic_ncols=True,
    )
    try:
        for epoch in range(start, config.epochs):
            framework.train()
            order = torch.randperm(len(images), generator=shuffle_gen).to(device)
            loss_sum = torch.zeros((), device=device)
            tic = time.perf_counter()
            for step in range(steps):
                batch = order[step * config.batch_size : (step + 1) * config.batch_size]
                batch = batch[rank * local : (rank + 1) * local]
                x = images[batch].float().div_(255)
                with autocast:
                    loss = model(x, labels[batch], augment_gen)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                set_learning_rate(optimizer, config, epoch * steps + step, config.epochs * steps)
                optimizer.step()
                if on_step_end is not None:
                    on_step_end(epoch * steps + step + 1, config.epochs * steps)
                loss_sum += loss.detach()
                bar.update()
                if step % 10 == 0 or step == steps - 1:
                    rate = (step + 1) * config.batch_size / (time.perf_counter() - tic)
                    bar.set_postfix(
                        epoch=epoch + 1, loss=f"{loss.item():.4f}", pairs_s=f"{rate:.0f}"
                    )
            if world > 1:
                dist.all_reduce(loss_sum)
                loss_sum /= world
            wall = time.perf_counter() - tic
            log.append(
                {
                    "epoch": epoch + 1,
                    "loss": loss_sum.item() / steps,
                    "pairs_per_s": steps * config.batch_size / wall,
                    "wall_s": wall,
                }
            )
            if progress == "epochs" and rank == 0:
                print(epoch_line(desc, log[-1], config.epochs), flush=True)
            if checkpoint_dir is not None:
                rng = {"shuffle": shuffle_gen, "augment": augment_gen}
                _save_checkpoint(framework, optimizer, epoch + 1, rng, log, config, checkpoint_dir)
    finally:
        bar.close()
        for parent, name, module in restore_bn:
            setattr(parent, name, module)
    return {
        "epochs": log,
        "steps_per_epoch": steps,
        "batch_size": config.batch_size,
        "world_size": world,
        "wall_s": sum(e["wall_s"] for e in log),
    }


# ---------------------------------------------------------------------------- checks, setup
def _check_data(images: Tensor, labels: Tensor, config: TrainConfig) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise TypeError(
            f"train() takes uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    if labels.shape != (len(images),):
        raise ValueError(f"labels must be ({len(images)},), got {tuple(labels.shape)}")
    if len(images) < config.batch_size:
        raise ValueError(
            f"{len(images)} images make no full batch of {config.batch_size}; lower batch_size"
        )


def derived_seed(seed: int, stream: str, rank: int = 0) -> int:
    """Independent seeds for the loop's generators from the one ``config.seed`` (``stream``:
    shuffle, augment, noise; also used by the DP-SGD loop of :mod:`memloc.privacy`)."""
    words = [int(seed) & 0xFFFFFFFF, _STREAMS[stream], rank]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> 1)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total_steps`` under ``config``.

    >>> config = TrainConfig(epochs=1, batch_size=1, lr=0.1, lr_schedule="cosine")
    >>> [round(learning_rate(config, t, 4), 4) for t in range(4)]
    [0.1, 0.0854, 0.05, 0.0146]
    """
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * (1 + math.cos(math.pi * step / max(total_steps, 1))) / 2


def set_learning_rate(optimizer, config: TrainConfig, step: int, total_steps: int) -> None:
    """Give every parameter group the learning rate of ``step`` (:func:`learning_rate`)."""
    lr = learning_rate(config, step, total_steps)
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The optimizer ``config`` names (sgd with momentum 0.9, adam, adamw) over ``params``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def _start_distributed(device) -> tuple[int, int, bool]:
    """``(rank, world_size, whether this call created the process group)``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        on_cuda = get_device(device).type == "cuda"
        dist.init_process_group("nccl" if on_cuda else "gloo")
        return dist.get_rank(), dist.get_world_size(), True
    return 0, 1, False


def rank_device(device, world: int) -> torch.device:
    """The device one training process uses: ``device`` (None: CUDA when available), with a
    bare ``"cuda"`` given an index, since ``torch.cuda.set_device`` refuses one without: the
    rank's GPU (``LOCAL_RANK``) when ``world`` > 1, else the current GPU. A CUDA device is
    also made the process's current one."""
    device = get_device(device)
    if device.type == "cuda" and device.index is None:
        # set_device needs an index (a bare "cuda" is refused): the rank's GPU, else the
        # current one.
        index = int(os.environ.get("LOCAL_RANK", "0")) if world > 1 else torch.cuda.current_device()
        device = torch.device("cuda", index)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _check_resume(state: dict, config: TrainConfig, world: int, path: Path) -> None:
    saved = state["config"]
    now = dataclasses.asdict(config)
    # A checkpoint from before a field existed ran with its default.
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    resumable = _RESUMABLE_CHANGES if config.lr_schedule == "constant" else ("snapshot_epochs",)
    changed = [k for k in now if k not in resumable and saved.get(k, defaults[k]) != now[k]]
    if changed:
        diff = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        raise ValueError(
            f"{path} was written by a run with another configuration ({diff}); "
            "delete it or pick another checkpoint_dir"
        )
    if len(state["rng"]["augment"]) != world:
        raise ValueError(
            f"{path} was written by {len(state['rng']['augment'])} process(es), this run has "
            f"{world}; resume with the same number of processes"
        )
    if state["epoch"] > config.epochs:
        raise ValueError(
            f"{path} is at epoch {state['epoch']}, past the {config.epochs} epochs asked for"
        )


# ---------------------------------------------------------------------------- files
def _save_snapshot(framework: nn.Module, checkpoint_dir, epoch: int) -> None:
    weights = {k: v.detach().cpu().contiguous() for k, v in framework.backbone.state_dict().items()}
    path = Path(checkpoint_dir) / f"epoch_{epoch:04d}.safetensors"
    atomic_write_bytes(path, safetensors_bytes(weights))


def _save_checkpoint(framework, optimizer, epoch, rng, log, config, checkpoint_dir) -> None:
    rank, world = distributed_world()
    augment_states = [rng["augment"].get_state()]
    if world > 1:
        augment_states = [None] * world
        dist.all_gather_object(augment_states, rng["augment"].get_state())
    if rank == 0:
        # The snapshot first: a checkpoint at epoch k implies the snapshot of epoch k exists.
        if epoch in config.snapshot_epochs:
            _save_snapshot(framework, checkpoint_dir, epoch)
        state = {
            "model": {k: v.detach().cpu() for k, v in framework.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "rng": {"shuffle": rng["shuffle"].get_state(), "augment": augment_states},
            "log": log,
            "config": dataclasses.asdict(config),
        }
        atomic_torch_save(state, Path(checkpoint_dir) / CHECKPOINT)
    if world > 1:
        dist.barrier()  # nobody runs ahead (or reads last.pt) before it is written


# ---------------------------------------------------------------------------- BatchNorm over ranks
class _GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span all ranks, on any device.

    ``torch.nn.SyncBatchNorm`` refuses CPU tensors; this one sums the per-channel statistics
    over ranks with a differentiable all-reduce, so it runs with gloo as well as NCCL. It
    shares its parameters and buffers with the BatchNorm it replaces.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([xf.numel() / xf.shape[1]], device=x.device)
        total = all_reduce_with_grad(torch.cat([xf.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = xf - mean.view(shape)
        var = all_reduce_with_grad(centred.square().sum(dims)) / n  # two passes: no cancellation
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked
                self.running_mean.lerp_(mean.detach(), float(m))
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1), float(m))
        return out.to(x.dtype)


def _synchronise_batchnorm(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Swap every BatchNorm of ``module`` for a :class:`_GlobalBatchNorm` sharing its tensors;
    returns what to ``setattr`` back afterwards."""
    swapped = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, _GlobalBatchNorm
            ):
                sync = _GlobalBatchNorm(
                    child.num_features,
                    eps=child.eps,
                    momentum=child.momentum,
                    affine=child.affine,
                    track_running_stats=child.track_running_stats,
                )
                if child.affine:
                    sync.weight, sync.bias = child.weight, child.bias
                if child.track_running_stats:
                    sync.running_mean = child.running_mean
                    sync.running_var = child.running_var
                    sync.num_batches_tracked = child.num_batches_tracked
                sync.train(child.training)
                setattr(parent, name, sync)
                swapped.append((parent, name, child))
    return swapped[::-1]


__all__ = ["CHECKPOINT", "OPTIMIZERS", "TrainConfig", "train"]
