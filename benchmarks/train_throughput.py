"""How much does on-the-fly augmentation cost a SimCLR training step?

Times, in one process, (a) the real training step (two augmented views drawn on the fly,
ResNet9 + projection head forward, NT-Xent, backward, Adam step) and (b) the same step on views
augmented beforehand, and prints both in augmented pairs per second and their ratio (the goal
on the CPU: >= 0.8). The two are timed in alternating short blocks and each figure is the
fastest block, so that load from other processes on a shared machine does not decide the ratio.

    python benchmarks/train_throughput.py [--threads 2] [--batch 256] [--width 1] [--channels 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from memloc.augment import AugmentPolicy
from memloc.models import create
from memloc.ssl import SimCLR, nt_xent
from memloc.train import TrainConfig, train


def step_timer(framework, optimizer, step):
    def timed(n: int) -> float:
        """Seconds per step over ``n`` steps."""
        tic = time.perf_counter()
        for _ in range(n):
            loss = step()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - tic) / n

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--channels", type=int, default=1, help="3: colour jitter and grayscale too"
    )
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per block")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    policy = AugmentPolicy.simclr()
    framework = SimCLR(
        create("resnet9", in_channels=args.channels, width=args.width), policy
    ).train()
    optimizer = torch.optim.Adam(framework.parameters(), lr=1e-3, weight_decay=1e-6)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, args.channels, args.size, args.size), generator=g)
    images = images.to(torch.uint8)
    labels = torch.zeros(args.batch, dtype=torch.long)
    views = torch.cat([policy(images.float() / 255, g), policy(images.float() / 255, g)])

    def real_step():  # what train() runs per batch
        x = images.float().div_(255)
        return framework(x, labels, g)

    def bare_step():  # the same model, loss and update on views made beforehand
        z1, z2 = framework.head(framework.backbone(views)).chunk(2)
        return nt_xent(z1, z2, framework.temperature)

    real = step_timer(framework, optimizer, real_step)
    bare = step_timer(framework, optimizer, bare_step)
    real(args.warmup)
    bare(args.warmup)
    times = {"real": [], "bare": []}
    for _ in range(args.blocks):
        times["real"].append(real(args.steps))
        times["bare"].append(bare(args.steps))

    def augment_only():
        x = images.float() / 255
        return policy(x, g), policy(x, g)

    tic = time.perf_counter()
    for _ in range(args.steps):
        augment_only()
    augment_s = (time.perf_counter() - tic) / args.steps

    # The whole loop (shuffling, indexing, uint8 -> float, logging): its second epoch of
    # `steps` batches (the first one includes the new optimizer's warm-up).
    data = images.repeat(args.steps, 1, 1, 1)
    log = train(
        framework,
        data,
        torch.zeros(len(data), dtype=torch.long),
        TrainConfig(epochs=2, batch_size=args.batch),
        progress=False,
    )

    real_s, bare_s = min(times["real"]), min(times["bare"])
    print(
        f"SimCLR step, ResNet9 width {args.width}, {args.batch} images "
        f"{args.channels}x{args.size}x{args.size}, {args.threads} threads, "
        f"torch {torch.__version__}"
    )
    print(f"  augmentation alone (2 views): {1000 * augment_s:8.1f} ms/step")
    print(f"  training step, views made beforehand: {args.batch / bare_s:8.1f} pairs/s")
    print(f"  training step, augmenting on the fly: {args.batch / real_s:8.1f} pairs/s")
    print(f"  train() loop, second epoch:           {log['epochs'][1]['pairs_per_s']:8.1f} pairs/s")
    print(f"  ratio (on the fly / beforehand):      {bare_s / real_s:8.3f}")


if __name__ == "__main__":
    main()
