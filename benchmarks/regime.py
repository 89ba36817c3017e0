"""Which CPU regime makes encoders that learn and memorize? A sweep over training choices.

Each configuration is a set of overrides of a profile (default ``cpu``). For each one this
trains (or loads from the cache) the f/g pair exactly as the book would, then measures:

- SSL quality: linear probe and kNN-20 on the split's downstream points -> 2,000 test images,
  for f, g and the untrained encoder of the same architecture, and for f's snapshots (the
  accuracy after fewer epochs, from the same run);
- memorization strength: the S_C-vs-S_I contrast t of LayerMem at every layer (the profile's
  n_points and k_aug), and its maximum over layers at each snapshot epoch of f and g;
- cost: pairs of views per second and wall time of the training.

Every configuration's row is appended to the CSV as soon as it is measured, so an interrupted
sweep keeps what it finished, and a rerun skips the configurations already in the file. The
encoders land in the cache under the keys the book uses: the configuration the profile adopts
is already trained when the book is built.

    .venv/bin/python benchmarks/regime.py                      # every configuration below
    .venv/bin/python benchmarks/regime.py --only w05-b64-jit  # some of them
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from memloc.artifacts import encoder_pair
from memloc.experiments.layers import pair_layermem
from memloc.metrics import layermem
from memloc.profiles import load_profile
from memloc.regime import memorization_strength, pair_quality, training_cost

# Every configuration names what it changes from today's profile, so that a rerun trains the
# same encoders as the row in the CSV (the first nine were measured against the cpu profile of
# 2026-12-02, before it adopted their findings: 100 epochs and SimCLR's jitter strengths).
NO_JITTER = {"jitter_p": 0.0}
# Brightness and contrast at 0.4 (factors 0.6-1.4), the strength measured in issue 11.
MILD_JITTER = {"jitter": (0.4, 0.4, 0.4, 0.1)}
SIMCLR_JITTER = {"jitter": (0.8, 0.8, 0.8, 0.2)}  # SimCLR's strengths (factors 0.2-1.8)
SNAPSHOTS = {"snapshot_epochs": (25, 50, 100, 200)}
E100 = {"epochs": 100, **SNAPSHOTS}

# name -> overrides of the profile. Ordered by what the sweep should learn first.
CONFIGS: dict[str, dict] = {
    "w05-b64-jit": {"width": 0.5, "batch_size": 64, **SIMCLR_JITTER, **E100},
    "w05-b64-nojit": {"width": 0.5, "batch_size": 64, **SIMCLR_JITTER, **NO_JITTER, **E100},
    "w05-b256-jit": {"width": 0.5, "batch_size": 256, **SIMCLR_JITTER, **E100},
    "w05-b64-mildjit": {"width": 0.5, "batch_size": 64, **MILD_JITTER, **E100},
    "w05-b64-jit-16px": {"width": 0.5, "batch_size": 64, "image_size": 16, **SIMCLR_JITTER, **E100},
    "w05-b64-jit-e200": {"width": 0.5, "batch_size": 64, **SIMCLR_JITTER, **E100, "epochs": 200},
    "w1-b64-jit": {"width": 1.0, "batch_size": 64, **SIMCLR_JITTER, **E100},
    "w05-b64-jit-lr3e-3": {"width": 0.5, "batch_size": 64, "lr": 3e-3, **SIMCLR_JITTER, **E100},
    "w05-b64-mildjit-e300": {
        "width": 0.5,
        "batch_size": 64,
        "epochs": 300,
        **MILD_JITTER,
        "snapshot_epochs": (50, 100, 200, 300),
    },
    # The generality chapter's tables (``experiment``: the profile's [cpu.experiments.<id>]):
    # at batch 256 on 500 images an epoch is 2 steps, so A5's ResNets and T2's ViT take 100
    # steps in 50 epochs. Batch 64 gives 8 steps an epoch at about the same cost per epoch.
    "a5-resnet18-b256": {"experiment": "a5", "arch": "resnet18", "snapshot_epochs": (25, 50)},
    "a5-resnet18-b64": {
        "experiment": "a5",
        "arch": "resnet18",
        "batch_size": 64,
        "snapshot_epochs": (25, 50),
    },
    "a5-resnet18-b64-e200": {
        "experiment": "a5",
        "arch": "resnet18",
        "batch_size": 64,
        "epochs": 200,
        "snapshot_epochs": (50, 100, 200),
    },
    "t2-vit-b64": {"experiment": "t2", "batch_size": 64, "snapshot_epochs": (25, 50)},
    # T4's frameworks (run with --framework simsiam / dino) on the cpu recipe, trained longer:
    # the 200-epoch encoders are the snapshots of the same run.
    "t4-e400": {"experiment": "t4", "epochs": 400, "snapshot_epochs": (100, 200, 400)},
    # Their own recipes (the profile key recipes): SimSiam's and DINO's papers train a ResNet
    # with SGD (momentum 0.9), not Adam; lr 0.03 at batch 64 as lightly's CIFAR-10 benchmarks.
    # The profile's snapshot epochs, so that the encoders are the book's if a recipe is adopted.
    "t4-sgd": {
        "experiment": "t4",
        "recipes": {
            "simsiam": {"optimizer": "sgd", "lr": 0.03, "weight_decay": 5e-4},
            "dino": {"optimizer": "sgd", "lr": 0.03, "weight_decay": 5e-4},
        },
    },
    # DINO's head sized for 1,000 images (256 prototypes, not 1,024) and a teacher that follows
    # the student faster (momentum 0.99 rising to 1, not 0.996): 3,000 steps, not DINO's 300,000.
    "t4-dino-small-head": {
        "experiment": "t4",
        "recipes": {"dino": {"out_dim": 256, "teacher_momentum": 0.99}},
    },
    # The profile's recipe with SimCLR's cosine decay of the learning rate to 0 (the paper keeps
    # Adam's rate constant): the last epochs at a small rate, where a probe usually gains.
    "cosine": {"lr_schedule": "cosine"},
    "lr3e-3": {"lr": 3e-3},  # the profile's recipe at three times Adam's rate
    # SimCLR's Gaussian blur (p 0.5, sigma 0.1-2 pixels, kernel 3 = a tenth of 32 pixels) on
    # top of the profile's views: the one view operation of SimCLR and BYOL not yet measured.
    "blur": {"blur_p": 0.5},
    # Twice the shared points (2,000): more images to learn from at the same S_C and S_I, at
    # 1.5x the cost per epoch (f trains on 3,000 images, not 2,000).
    "shared2000": {"n_shared": 2000},
    # MAE on T2's ViT at batch 64 and four times the epochs (MAE trains 4.6x faster than the
    # ViT's SimCLR: 244 against 53 pairs/s).
    "t2-b64-e200": {
        "experiment": "t2",
        "batch_size": 64,
        "epochs": 200,
        "snapshot_epochs": (50, 100, 200),
    },
    # And eight times (MAE still climbed from 100 to 200 epochs); with a constant rate its
    # epoch-200 snapshot is the 200-epoch run's encoder, a check of the loop's determinism.
    "t2-b64-e400": {
        "experiment": "t2",
        "batch_size": 64,
        "epochs": 400,
        "snapshot_epochs": (100, 200, 400),
    },
}


def measure(name: str, profile_name: str, overrides: dict, framework: str, n_probe: int) -> dict:
    start = time.time()
    keys = {k: v for k, v in overrides.items() if k != "experiment"}
    profile = load_profile(profile_name, experiment=overrides.get("experiment"), **keys)
    pair = encoder_pair(profile, framework)
    snapshots = {f"f@{epoch}": enc for epoch, enc in pair.snapshots("f").items()}
    quality = pair_quality(pair, n_train=n_probe, n_test=n_probe, extra=snapshots)
    strength = memorization_strength(pair_layermem(pair).table)
    cost = training_cost(pair.entries)
    # The contrast of f and g as they were at each snapshot epoch: the same run, stopped earlier
    # (with a constant rate the loop is deterministic, so a run of that many epochs ends with the
    # same weights; under a cosine schedule they are the run's states on the way).
    g_snapshots = pair.snapshots("g")
    t_by_epoch = {}
    for epoch, f_then in pair.snapshots("f").items():
        if epoch in g_snapshots and epoch < pair.profile.epochs:
            table = layermem(
                f_then,
                g_snapshots[epoch],
                pair.images("candidate", pair.profile.n_points),
                k_aug=pair.profile.k_aug,
                policy=pair.policy,
                heldout_images=pair.images("heldout", pair.profile.n_points),
                independent_images=pair.images("independent", pair.profile.n_points),
            ).table
            t_by_epoch[epoch] = round(float(memorization_strength(table)["t"].max()), 2)
    row = {
        "config": name,
        "framework": framework,
        "overrides": json.dumps(overrides, sort_keys=True),
        "probe_f": quality.loc["f", "probe"],
        "probe_g": quality.loc["g", "probe"],
        "probe_untrained": quality.loc["untrained", "probe"],
        "margin_f": quality.loc["f", "probe"] - quality.loc["untrained", "probe"],
        "knn_f": quality.loc["f", "knn"],
        "knn_untrained": quality.loc["untrained", "knn"],
        "probe_by_epoch": json.dumps(
            {k.split("@")[1]: round(v, 4) for k, v in quality["probe"].items() if "@" in k}
        ),
        "t_max": strength["t"].max(),
        "t_max_by_epoch": json.dumps(t_by_epoch),
        "layers_significant": int(strength["significant"].sum()),
        "t_by_layer": json.dumps({k: round(v, 2) for k, v in strength["t"].items()}),
        "pairs_per_s": cost["pairs_per_s"].mean(),
        "train_wall_s": cost["wall_s"].max(),
        "wall_s": time.time() - start,
    }
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--framework", default="simclr")
    parser.add_argument("--only", nargs="*", help="configuration names (default: all)")
    parser.add_argument("--n-probe", type=int, default=2000, help="probe train and test images")
    parser.add_argument("--out", default="benchmarks/results/regime.csv")
    args = parser.parse_args(argv)
    names = args.only or list(CONFIGS)
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; known: {list(CONFIGS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        with out.open() as fh:
            done = {(r["config"], r["framework"]) for r in csv.DictReader(fh)}
    for name in names:
        if (name, args.framework) in done:
            print(f"{name}: already in {out}, skipped", file=sys.stderr)
            continue
        row = measure(name, args.profile, CONFIGS[name], args.framework, args.n_probe)
        new = not out.exists()
        with out.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(
            f"{name}: probe f {row['probe_f']:.3f} vs untrained {row['probe_untrained']:.3f} "
            f"(margin {row['margin_f']:+.3f}), kNN {row['knn_f']:.3f} vs "
            f"{row['knn_untrained']:.3f}; by epoch {row['probe_by_epoch']}; contrast t max "
            f"{row['t_max']:.1f}, per layer {row['t_by_layer']}, by epoch {row['t_max_by_epoch']}; "
            f"{row['pairs_per_s']:.0f} pairs/s, training {row['train_wall_s']:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
