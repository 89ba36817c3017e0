"""How fast are memloc's LayerMem and UnitMem, against the authors' loop and the bare forwards?

On one ResNet9 pair (random init, width 1, 1x32x32 images) and one set of points (N images,
K augmentations), times in one process:

(a) memloc: ``layermem(f, g, ...)`` over all ten measurement points (views drawn once per
    batch, both encoders, all layers from one forward pass each, distances reduced in hooks);
(b) a re-creation of the authors' loop (their layer_mem.py / UnitMem.py): one layer per run,
    one image at a time, every augmentation drawn per image with torchvision's transforms and
    passed through f and g separately (batch size 1, a full forward pass with the layer read
    by a hook), outputs copied to numpy and compared there. It is timed on a
    subset of layers and points and extrapolated linearly (every run of the loop costs the
    same: one full forward pass per view), which the output says;
(c) the bare forward passes the metric needs: N x K x 2 views x 2 encoders, no hooks, views
    made beforehand, in batches of the size memloc uses (its CPU default: 128 images per
    forward pass, ``memloc.activations.default_batch_size``).

It prints (b)/(a) (goal >= 50) and (a)/(c) (goal <= 1.3), then the same for UnitMem
(N x K x 1 encoder). Each memloc and bare figure is the fastest of a few alternating repeats,
so that load from other processes on a shared machine does not decide the ratios.

    python benchmarks/metrics_throughput.py [--threads 2] [--n 64] [--k 4] [--width 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from torchvision import transforms as T

from memloc.activations import default_batch_size
from memloc.augment import AugmentPolicy
from memloc.metrics import UndefinedUnitsWarning, layermem, unitmem
from memloc.models import create


def best_of(fns: dict, repeats: int) -> dict[str, float]:
    """Fastest wall time of each function over ``repeats`` alternating rounds."""
    times = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            tic = time.perf_counter()
            fn()
            times[name] = min(times[name], time.perf_counter() - tic)
    return times


def authors_transform(size: int) -> T.Compose:
    """Per-image views made by torchvision's transforms on one image tensor: crop and flip
    (what memloc's policy does to 1-channel images)."""
    return T.Compose([T.RandomResizedCrop(size, scale=(0.08, 1.0)), T.RandomHorizontalFlip()])


def layer_output(encoder, module: str, x: torch.Tensor) -> np.ndarray:
    """One forward pass of a single image, one layer read by a hook, copied to numpy."""
    seen = {}
    handle = encoder.get_submodule(module).register_forward_hook(
        lambda m, i, o: seen.__setitem__("out", o)
    )
    try:
        encoder(x)
    finally:
        handle.remove()
    return seen["out"].cpu().numpy()


def authors_layermem(f, g, images, modules, k_aug, transform) -> None:
    """The authors' loop: for each layer, for each image, for each augmentation, two views
    through f and g one at a time; distances in numpy; normalise per layer at the end."""
    for module in modules:
        scores = []
        for x in images:
            dist_f, dist_g = [], []
            for _ in range(k_aug):
                v1, v2 = transform(x).unsqueeze(0), transform(x).unsqueeze(0)
                with torch.no_grad():
                    f1, f2 = layer_output(f, module, v1), layer_output(f, module, v2)
                    g1, g2 = layer_output(g, module, v1), layer_output(g, module, v2)
                dist_f.append(np.linalg.norm((f1 - f2).reshape(-1)))
                dist_g.append(np.linalg.norm((g1 - g2).reshape(-1)))
            scores.append(np.mean(dist_g) - np.mean(dist_f))
        scores = np.array(scores)
        _ = np.mean(scores / (scores.max() - scores.min()))


def authors_unitmem(encoder, images, modules, k_aug, transform) -> None:
    """The authors' UnitMem loop: per layer, per image, per augmentation one forward pass of
    one image; the spatial mean of every channel in numpy; the ratio at the end."""
    for module in modules:
        mu = []
        for x in images:
            acts = []
            for _ in range(k_aug):
                with torch.no_grad():
                    out = layer_output(encoder, module, transform(x).unsqueeze(0))
                acts.append(out[0].mean(axis=(1, 2)))
            mu.append(np.mean(acts, axis=0))
        mu = np.array(mu)
        top = mu.max(axis=0)
        rest = (mu.sum(axis=0) - top) / (len(mu) - 1)
        with np.errstate(invalid="ignore", divide="ignore"):  # dead units: 0 / 0
            _ = (top - rest) / (top + rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=64, help="images")
    parser.add_argument("--k", type=int, default=4, help="augmentations (view pairs)")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None, help="images per forward pass")
    parser.add_argument("--subset-layers", type=int, default=2, help="layers timed for (b)")
    parser.add_argument("--subset-points", type=int, default=8, help="images timed for (b)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UndefinedUnitsWarning)

    torch.manual_seed(0)
    f = create("resnet9", in_channels=1, width=args.width).eval()
    g = create("resnet9", in_channels=1, width=args.width).eval()
    images = torch.rand(args.n, 1, args.size, args.size, generator=torch.Generator().manual_seed(0))
    policy = AugmentPolicy.simclr()
    n, k = args.n, args.k
    points = f.measurement_points()
    pairs = n * k
    print(
        f"ResNet9 width {args.width}, 1x{args.size}x{args.size}, N={n} images, K={k}, "
        f"{len(points)} layers, {args.threads} threads"
    )

    # (c) the bare forward passes: the same views, the same batches as memloc's.
    gen = torch.Generator().manual_seed(0)
    views = torch.cat([policy(images.repeat(k, 1, 1, 1), gen) for _ in range(2)])
    batch_pairs = args.batch // 2 if args.batch else default_batch_size("cpu", 2)
    batch_views = args.batch or default_batch_size("cpu", 1)
    print(f"{2 * batch_pairs} images per forward pass (LayerMem), {batch_views} (UnitMem)")

    def bare_layermem():
        with torch.inference_mode():
            for s in range(0, pairs, batch_pairs):
                batch = torch.cat([views[s : s + batch_pairs], views[pairs + s :][:batch_pairs]])
                f(batch)
                g(batch)

    def bare_unitmem():
        with torch.inference_mode():
            for s in range(0, pairs, batch_views):
                f(views[s : s + batch_views])

    def memloc_layermem():
        layermem(
            f, g, images, k_aug=k, policy=policy, top_k=min(16, n // 2), batch_size=batch_pairs
        )

    def memloc_unitmem():
        unitmem(f, images, k_aug=k, policy=policy, batch_size=batch_views)

    memloc_layermem(), memloc_unitmem(), bare_layermem()  # warm-up
    t = best_of(
        {
            "layermem": memloc_layermem,
            "bare_layermem": bare_layermem,
            "unitmem": memloc_unitmem,
            "bare_unitmem": bare_unitmem,
        },
        args.repeats,
    )

    # (b) the authors' loops on a subset, extrapolated linearly to all layers and images.
    transform = authors_transform(args.size)
    torch.manual_seed(0)
    modules = [p.module for p in points]
    sub_layers = modules[:: max(1, len(modules) // args.subset_layers)][: args.subset_layers]
    sub_images = images[: args.subset_points]
    scale = (len(modules) / len(sub_layers)) * (n / len(sub_images))
    tic = time.perf_counter()
    authors_layermem(f, g, sub_images, sub_layers, k, transform)
    t["authors_layermem"] = (time.perf_counter() - tic) * scale
    tic = time.perf_counter()
    authors_unitmem(f, sub_images, sub_layers, k, transform)
    t["authors_unitmem"] = (time.perf_counter() - tic) * scale

    print(
        f"(b) authors' loops timed on {len(sub_layers)} of {len(modules)} layers and "
        f"{len(sub_images)} of {n} images, extrapolated linearly (x{scale:g})"
    )
    for metric, forwards in (("layermem", pairs * 2 * 2), ("unitmem", pairs)):
        a, b, c = t[metric], t[f"authors_{metric}"], t[f"bare_{metric}"]
        print(f"\n{metric}:")
        print(f"  (a) memloc, all layers          {a:8.3f} s")
        print(f"  (b) authors' loop (extrapolated){b:8.3f} s")
        print(f"  (c) bare forwards ({forwards} images) {c:8.3f} s")
        print(f"  (b)/(a) = {b / a:7.1f}   (goal >= 50)")
        print(f"  (a)/(c) = {a / c:7.2f}   (goal <= 1.3)")


if __name__ == "__main__":
    main()
