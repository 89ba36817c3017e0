"""CUDA checks and GPU throughput, in one run on a machine with a GPU (no data download needed).

1. Correctness on CUDA against the CPU, on the same random ResNet9: the activations of every
   measurement point, and UnitMem on unaugmented images (K = 0, so no random views), agree
   to float32 tolerance. A short SimCLR training on CUDA lowers its loss.
2. Training throughput of every framework at the paper profile's recipe (batch 512, 32x32
   three-channel images, bf16 autocast), measured by ``memloc.train.train`` itself on random
   images (throughput does not depend on the pixels): augmented pairs per second of the second
   epoch, and the wall time the paper profile (its epochs on |S_S| + |S_C| = 45,000 images per
   encoder, f and g) would take at that rate. CIFAR-10 itself need not be downloaded.
3. LayerMem and UnitMem against the authors' batch-1 loop and the bare forward passes on the
   GPU, as ``metrics_throughput.py`` measures them on the CPU: (b)/(a) (goal >= 50) and
   (a)/(c).

4. DP-SGD (memloc.privacy) on CUDA: the ε spent and the throughput of a private SimSiam.

    python benchmarks/gpu_checks.py [--epochs-images 45000] [--skip 1,2,3,4]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_throughput import authors_layermem, authors_transform, authors_unitmem  # noqa: E402

from memloc.activations import LayerRecorder, default_batch_size, iter_views  # noqa: E402
from memloc.augment import AugmentPolicy  # noqa: E402
from memloc.metrics import UndefinedUnitsWarning, layermem, unitmem  # noqa: E402
from memloc.metrics.layermem import _distances  # noqa: E402
from memloc.models import create  # noqa: E402
from memloc.profiles import load_profile  # noqa: E402
from memloc.ssl import create_framework  # noqa: E402
from memloc.train import TrainConfig, train  # noqa: E402

DEVICE = "cuda"  # --device cpu runs the same code on tiny sizes, to check the script itself


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats: int = 3) -> float:
    """Fastest of ``repeats`` runs, in seconds (the GPU synchronised around each)."""
    best = float("inf")
    for _ in range(repeats):
        sync()
        tic = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - tic)
    return best


def correctness() -> None:
    print("== 1. CUDA against CPU (TF32 off: cuDNN's default TF32 convolutions differ ~5e-4)")
    if DEVICE == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    cpu = create("resnet9", in_channels=3, width=0.5).eval()
    gpu = create("resnet9", in_channels=3, width=0.5).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu.to(DEVICE)
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    names = [p.name for p in cpu.measurement_points()]
    with torch.no_grad():
        with LayerRecorder(cpu, names, reduce="flatten") as rec:
            out_cpu = rec(images)
        with LayerRecorder(gpu, names, reduce="flatten") as rec:
            out_gpu = {k: v.cpu() for k, v in rec(images.to(DEVICE)).items()}
    worst = max(
        float((out_cpu[k] - out_gpu[k]).abs().max() / out_cpu[k].abs().max().clamp(min=1e-12))
        for k in names
    )
    print(f"  activations, {len(names)} points: largest relative difference {worst:.2e}")
    assert worst < 1e-4, worst
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        u_cpu = unitmem(cpu, images, k_aug=0).units
        u_gpu = unitmem(gpu, images.to(DEVICE), k_aug=0).units
    diff = np.nanmax(np.abs(u_cpu["unitmem"].to_numpy() - u_gpu["unitmem"].to_numpy()))
    same_defined = (u_cpu["unitmem"].isna() == u_gpu["unitmem"].isna()).mean()
    print(f"  UnitMem (K=0): largest difference {diff:.2e}, same defined units {same_defined:.3f}")
    assert diff < 1e-3
    if DEVICE == "cuda":
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True

    torch.manual_seed(0)
    fw = create_framework("simclr", create("resnet9", in_channels=3, width=0.5), proj_dim=64)
    data = torch.randint(0, 256, (2048, 3, 32, 32), dtype=torch.uint8)
    log = train(
        fw,
        data,
        torch.zeros(2048, dtype=torch.long),
        TrainConfig(epochs=3, batch_size=256),
        device=DEVICE,
        progress=False,
    )
    losses = [round(e["loss"], 4) for e in log["epochs"]]
    print(f"  SimCLR on CUDA, 3 epochs of 2048 images: loss {losses}")
    assert losses[-1] < losses[0]


def throughput(n_images: int, frameworks: list[str]) -> None:
    print(f"== 2. training throughput, paper recipe (batch 512, 3x32x32, bf16), {n_images} images")
    data = torch.randint(0, 256, (n_images, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n_images,))
    paper = load_profile("paper")
    for name in frameworks:
        torch.manual_seed(0)
        if name == "mae":
            backbone = create("vit_tiny", in_channels=3, image_size=32, patch_size=4)
        else:
            backbone = create("resnet9", in_channels=3, width=1.0)
        fw = create_framework(name, backbone, num_classes=10)
        tic = time.perf_counter()
        log = train(
            fw, data, labels, TrainConfig(epochs=2, batch_size=512), device=DEVICE, progress=False
        )
        wall = time.perf_counter() - tic
        rate = log["epochs"][1]["pairs_per_s"]
        epochs = paper.supervised_epochs if name == "supervised" else paper.epochs
        hours = 2 * epochs * (paper.n_shared + paper.n_candidate) / rate / 3600
        print(
            f"  {name:10s} {backbone.arch:9s} {rate:9.0f} pairs/s (2nd epoch; 2 epochs took "
            f"{wall:.1f} s); paper profile f + g ({epochs} epochs) at this rate: {hours:.2f} h"
        )


def metrics(
    n: int, k: int, subset_layers: int, subset_points: int, batch: int, authors=True
) -> None:
    print(
        f"== 3. LayerMem and UnitMem on the GPU: ResNet9 width 1, 1x32x32, N={n}, K={k}, "
        f"{batch} view pairs per forward pass"
    )
    warnings.simplefilter("ignore", UndefinedUnitsWarning)
    torch.manual_seed(0)
    f = create("resnet9", in_channels=1, width=1.0).eval().to(DEVICE)
    g = create("resnet9", in_channels=1, width=1.0).eval().to(DEVICE)
    images = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    policy = AugmentPolicy.simclr()
    points = f.measurement_points()
    pairs = n * k
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    views = torch.cat([policy(images.repeat(k, 1, 1, 1), gen) for _ in range(2)])

    def bare_layermem():
        with torch.inference_mode():
            for s in range(0, pairs, batch):
                x = torch.cat([views[s : s + batch], views[pairs + s :][:batch]])
                f(x)
                g(x)

    def bare_unitmem():
        with torch.inference_mode():
            for s in range(0, pairs, 2 * batch):
                f(views[s : s + 2 * batch])

    def memloc_layermem():
        layermem(f, g, images, k_aug=k, policy=policy, top_k=min(16, n // 2), batch_size=batch)

    def memloc_unitmem():
        unitmem(f, images, k_aug=k, policy=policy, batch_size=2 * batch)

    transform = authors_transform(32)
    sub_points = images[:subset_points]
    sub_modules = [p.module for p in points[-subset_layers:]]

    def authors_lm():
        authors_layermem(f, g, sub_points, sub_modules, k, transform)

    def authors_um():
        authors_unitmem(f, sub_points, sub_modules, k, transform)

    def distances_only():  # the views, forwards and distances, without the statistics after
        _distances(
            [f, g],
            images,
            points,
            k_aug=k,
            policy=policy,
            variant="views",
            seed=0,
            stream=0,
            batch_size=batch,
        )

    def views_only():
        for _ in iter_views(
            images,
            k_aug=k,
            policy=policy,
            mode="pairs",
            seed=0,
            stream=0,
            batch_size=batch,
            device=DEVICE,
        ):
            pass

    scale = (len(points) / subset_layers) * (n / subset_points)
    d, v = timed(distances_only), timed(views_only)
    print(f"  inside LayerMem: views alone {v:.3f} s, views + forwards + distances {d:.3f} s")
    a, c = timed(memloc_layermem), timed(bare_layermem)
    if not authors:
        print(f"  LayerMem: (a) {a:.3f} s, (c) {c:.3f} s, (a)/(c) = {a / c:.2f}")
        a, c = timed(memloc_unitmem), timed(bare_unitmem)
        print(f"  UnitMem: (a) {a:.3f} s, (c) {c:.3f} s, (a)/(c) = {a / c:.2f}")
        return
    b = timed(authors_lm, repeats=1) * scale
    print(f"  LayerMem: (a) memloc {a:.3f} s, (b) authors' loop {b:.1f} s (extrapolated from ")
    print(f"    {subset_layers} layers x {subset_points} images), (c) bare forwards {c:.3f} s")
    print(f"    (b)/(a) = {b / a:.1f} (goal >= 50), (a)/(c) = {a / c:.2f} (goal <= 1.3)")
    a, c = timed(memloc_unitmem), timed(bare_unitmem)
    b = timed(authors_um, repeats=1) * scale
    print(f"  UnitMem: (a) {a:.3f} s, (b) {b:.1f} s, (c) {c:.3f} s; (b)/(a) = {b / a:.1f}, ")
    print(f"    (a)/(c) = {a / c:.2f}")


def private(n_images: int) -> None:
    from memloc.privacy import PrivacyConfig, private_framework, train_private

    print(f"== 4. DP-SGD (SimSiam, ResNet9 with GroupNorm, 3x32x32), {n_images} images, batch 512")
    torch.manual_seed(0)
    fw = private_framework("simsiam", create("resnet9", in_channels=3, norm="group"))
    data = torch.randint(0, 256, (n_images, 3, 32, 32), dtype=torch.uint8)
    privacy = PrivacyConfig(epsilon=8.0, delta=1e-5, physical_batch=256)
    tic = time.perf_counter()
    log = train_private(
        fw,
        data,
        torch.zeros(n_images, dtype=torch.long),
        TrainConfig(epochs=2, batch_size=512),
        privacy,
        device=DEVICE,
        progress=False,
    )
    wall = time.perf_counter() - tic
    rate = n_images / log["epochs"][1]["wall_s"]
    print(
        f"  epsilon spent {log['epsilon']:.3f} of {privacy.epsilon} (delta {privacy.delta}), "
        f"sigma {log['noise_multiplier']:.3f}, losses "
        f"{[round(e['loss'], 4) for e in log['epochs']]}; 2 epochs in {wall:.1f} s, "
        f"{rate:.0f} images/s in the 2nd"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs-images", type=int, default=45_000)
    parser.add_argument("--frameworks", default="simclr,simsiam,dino,mae,supervised")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--subset-layers", type=int, default=2)
    parser.add_argument("--subset-points", type=int, default=4)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: 1,2,3,4")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--private-images", type=int, default=8192)
    parser.add_argument(
        "--batches",
        default="",
        help="view pairs per forward pass, comma-separated (memloc's "
        "default first, then these without the authors' loop)",
    )
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a machine with a GPU")
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}")
    skip = set(args.skip.split(","))
    if "1" not in skip:
        correctness()
    if "2" not in skip:
        throughput(args.epochs_images, args.frameworks.split(","))
    if "4" not in skip:
        private(args.private_images)
    if "3" not in skip:
        default = default_batch_size(DEVICE, 2)
        metrics(args.n, args.k, args.subset_layers, args.subset_points, default)
        for b in filter(None, args.batches.split(",")):
            metrics(args.n, args.k, args.subset_layers, args.subset_points, int(b), authors=False)


if __name__ == "__main__":
    main()
