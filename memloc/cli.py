"""The ``memloc`` command: ``info``, ``train``, ``layermem``, ``unitmem``, ``classmem``,
``report`` (an HTML report on your checkpoints, :mod:`memloc.report`), ``bundle`` (export,
import and check a results bundle, :mod:`memloc.bundle`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

# memloc.ssl.FRAMEWORKS, named here so that `memloc --help` need not import torch (a test keeps
# the two equal).
FRAMEWORK_CHOICES = ("simclr", "simsiam", "dino", "mae", "supervised")


def _parse_overrides(items: list[str]) -> dict:
    """``--set key=value`` pairs (:func:`memloc.utils.parse_key_values`)."""
    from memloc.utils import parse_key_values

    return parse_key_values(items, "--set")


def _arch_kwargs(text: str | None) -> dict:
    """--arch-kwargs as a dict; a one-line error naming the option otherwise."""
    if not text:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(
            f"--arch-kwargs is not valid JSON ({err.msg} at character {err.pos}): {text!r}; "
            'write it as a JSON object, e.g. --arch-kwargs \'{"in_channels": 3, "width": 0.5}\''
        ) from None
    if not isinstance(kwargs, dict):
        raise SystemExit(f"--arch-kwargs must be a JSON object ({{...}}), got {text!r}")
    return kwargs


def _count(value: int | None, option: str, default: int, minimum: int) -> int:
    """``value`` as asked (0 included), or ``default`` when not given; below ``minimum``
    is a one-line error (a 0 is never replaced by the profile's value)."""
    if value is None:
        return default
    if value < minimum:
        raise SystemExit(f"{option} must be at least {minimum}, got {value}")
    return value


def cmd_info(args) -> None:
    from memloc import artifacts, data, models, profiles

    print("Datasets:", ", ".join(data.DATASETS), "(and imagefolder:<path>)")
    print("\nEncoders and their measurement points:")
    for name in models.available():
        kwargs = {"depth": 2} if name.startswith("vit") else {}
        try:
            points = models.create(name, **kwargs).measurement_points()
        except Exception as err:  # an architecture that needs arguments still gets listed
            print(f"  {name}: ({err})")
            continue
        shown = ", ".join(p.name for p in points[:12]) + (" …" if len(points) > 12 else "")
        note = " (per block; shown for depth 2)" if kwargs else ""
        print(f"  {name}: {len(points)} points{note}: {shown}")
    print(
        "  torchvision:<name> (e.g. torchvision:resnet18): torchvision's architecture; points "
        "are its blocks (layer1.0 ... for ResNets), any module path can be named"
    )
    print("\nProfiles:")
    for name in [*profiles.profile_names(), profiles.AUTO]:
        p = profiles.load_profile(name)
        sizes = (
            f"S_S/S_C/S_I/H/downstream = shares {list(p.split_shares)} of the data"
            if p.split_shares
            else f"S_S/S_C/S_I/H = {p.n_shared}/{p.n_candidate}/{p.n_independent}/{p.n_heldout}"
        )
        print(
            f"  {name}: {p.dataset} {p.image_size}px, {sizes}, {p.arch} x{p.width}, "
            f"{p.epochs} epochs — {p.description}"
        )
    rows = artifacts.list_cache(args.cache_dir)
    print(f"\nCache ({artifacts.cache_root(args.cache_dir)}): {len(rows)} entries")
    if rows:
        print(pd.DataFrame(rows).to_string(index=False))


def cmd_train(args) -> None:
    from memloc.artifacts import encoder_pair

    start = time.time()
    pair = encoder_pair(
        args.profile,
        args.framework,
        cache_dir=args.cache_dir,
        device=args.device,
        parallel=False if args.sequential else None,
        **_parse_overrides(args.set),
    )
    print(
        f"{args.framework} pair for profile {args.profile!r} ready in {time.time() - start:.1f} s"
    )
    for role, path in pair.entries.items():
        print(f"  {role}: {path}")


def _pair_or_checkpoints(args, need_g: bool = True):
    """f and g from the profile's cache, or your checkpoints (--checkpoint-f/-g) with the
    profile's data and split (then nothing is trained). UnitMem and ClassMem read f alone
    (``need_g=False``): --checkpoint-f is enough for them."""
    from memloc.artifacts import encoder_pair, load_checkpoint, user_pair

    overrides = _parse_overrides(args.set)
    kwargs = _arch_kwargs(args.arch_kwargs)
    if not (args.checkpoint_f or args.checkpoint_g):
        return encoder_pair(args.profile, args.framework, cache_dir=args.cache_dir, **overrides)
    if not args.checkpoint_f:
        raise SystemExit("give --checkpoint-f: the encoder to measure (--checkpoint-g is its g)")
    if need_g and not args.checkpoint_g:
        raise SystemExit(
            f"{args.command} compares f with g: give --checkpoint-g too (the same architecture "
            "trained without S_C); unitmem and classmem need --checkpoint-f alone"
        )
    from memloc.profiles import load_profile

    arch = args.arch or load_profile(args.profile, **overrides).arch
    f = load_checkpoint(args.checkpoint_f, arch, **kwargs)
    g = load_checkpoint(args.checkpoint_g, arch, **kwargs) if args.checkpoint_g else None
    return user_pair(args.profile, f, g, args.framework, **overrides)


def _write(result_df: pd.DataFrame, args, kind: str, pair, extra: dict, start: float) -> None:
    import memloc

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{kind}.csv"
    result_df.to_csv(csv, index=False)
    provenance = {
        "metric": kind,
        "profile": pair.profile.name,
        "framework": pair.framework,
        "encoder_hashes": pair.hashes,
        "checkpoints": {"f": args.checkpoint_f, "g": args.checkpoint_g},
        "memloc": memloc.__version__,
        "wall_time_s": round(time.time() - start, 2),
        **extra,
    }
    (out / f"{kind}.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    print(f"\nwrote {csv} and {out / f'{kind}.json'}")


def cmd_layermem(args) -> None:
    from memloc.metrics import layermem

    start = time.time()
    pair = _pair_or_checkpoints(args)
    n = _count(args.n_points, "--n-points", pair.profile.n_points, 1)
    k = _count(args.k_aug, "--k-aug", pair.profile.k_aug, 1)
    sets = {
        "S_C": pair.images("candidate", n),
        "S_I": pair.images("independent", n),
        "H": pair.images("heldout", n),
    }
    measured = {name: len(x) for name, x in sets.items()}
    result = layermem(
        pair.f,
        pair.g,
        sets["S_C"],
        layers=args.layers,
        k_aug=k,
        policy=pair.policy,
        variant=args.variant,
        seed=args.seed,
        heldout_images=sets["H"] if len(sets["H"]) else None,
        independent_images=sets["S_I"] if len(sets["S_I"]) else None,
        top_k=min(pair.profile.top_k, min(v for v in measured.values() if v) // 2),
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(result.table.round(4).to_string(index=False))
    print(f"images measured: {_describe(measured)} (K={k})")
    extra = {
        "variant": args.variant,
        "k_aug": k,
        "n_points": measured,
        "n_points_asked": args.n_points,
        "seed": args.seed,
    }
    _write(result.table, args, "layermem", pair, extra, start)


def _describe(measured: dict[str, int]) -> str:
    return ", ".join(f"{name} = {n}" for name, n in measured.items())


def cmd_unitmem(args, classes: bool = False) -> None:
    import torch

    from memloc.metrics import classmem, unitmem
    from memloc.models import create

    start = time.time()
    pair = _pair_or_checkpoints(args, need_g=False)
    n = _count(args.n_points, "--n-points", pair.profile.n_points, 2)
    default_k = 0 if classes else pair.profile.k_aug
    k = _count(args.k_aug, "--k-aug", default_k, 0)  # 0: the unaugmented images
    # The no-learning control: f's own architecture at a seeded random initialisation.
    torch.manual_seed(0)
    random_init = create(pair.f.arch, **pair.f.config()).eval()
    frames = []
    encoders = {
        "f on S_C (trained on them)": (pair.f, "candidate"),
        "f on H (never seen)": (pair.f, "heldout"),
        "random init on S_C": (random_init, "candidate"),
    }
    measured = {}
    for label, (encoder, which) in encoders.items():
        kwargs = dict(
            layers=args.layers, k_aug=k, policy=pair.policy, rest=args.rest, forward=args.forward
        )
        images = pair.images(which, n)
        measured[{"candidate": "S_C", "heldout": "H"}[which]] = len(images)
        if classes:
            labels = pair.labels(which, n)
            res = classmem(encoder, images, labels, accumulate=args.accumulate, **kwargs)
        else:
            res = unitmem(encoder, images, seed=args.seed, **kwargs)
        frames.append(res.units.assign(encoder=label))
    units = pd.concat(frames, ignore_index=True)
    value = "unitmem" if "unitmem" in units else units.columns[2]
    summary = (
        units.pivot_table(
            index="layer", columns="encoder", values=value, aggfunc="mean", sort=False
        )
        .reindex(units["layer"].drop_duplicates())
        .round(4)
    )
    kind = "classmem" if classes else "unitmem"
    print(f"mean {kind} per layer (rest={args.rest}, K={k}; images: {_describe(measured)})")
    print(summary.to_string())
    extra = {
        "rest": args.rest,
        "k_aug": k,
        "n_points": measured,
        "n_points_asked": args.n_points,
        "seed": args.seed,
    }
    # The paper's definition or the authors' script variants (NOTES.md §3.7), in the record.
    extra["forward"] = args.forward
    if classes:
        extra["accumulate"] = args.accumulate
    _write(units, args, kind, pair, extra, start)


def cmd_report(args) -> None:
    from memloc.notebooks import NotebookFailed
    from memloc.report import build_report

    overrides = _parse_overrides(args.set)
    if args.n_points is not None:
        overrides["n_points"] = _count(args.n_points, "--n-points", args.n_points, 2)
    if args.k_aug is not None:  # 0: the images themselves (UnitMem); LayerMem needs 1
        overrides["k_aug"] = _count(args.k_aug, "--k-aug", args.k_aug, 0)
    try:
        index = build_report(
            args.dataset,
            args.checkpoint_f,
            checkpoint_g=args.checkpoint_g,
            arch=args.arch,
            arch_kwargs=_arch_kwargs(args.arch_kwargs),
            out=args.out,
            profile=args.profile,
            framework=args.framework,
            overrides=overrides,
            build=not args.no_build,
        )
    except NotebookFailed as err:
        raise RuntimeError(str(err).splitlines()[0]) from None
    print(f"\nthe report: {index}")


def cmd_bundle(args) -> None:
    from memloc import bundle
    from memloc.artifacts import cache_root

    if args.bundle_command == "export":
        contents = bundle.export_bundle(args.out, args.profile, args.cache_dir)
        size = Path(args.out).stat().st_size / 2**20
        print(
            f"wrote {args.out} ({size:.1f} MiB): {len(contents.entries)} encoders of profile "
            f"{args.profile!r}, {len(contents.measurements)} stored measurement files"
        )
        if contents.missing:
            print(
                f"left out {len(contents.missing)} encoders that are not complete in the cache: "
                + ", ".join(contents.missing)
            )
    elif args.bundle_command == "import":
        report = bundle.import_bundle(args.source, args.cache_dir, sha256=args.sha256)
        print(
            f"imported {args.source} (profile {report.profile!r}) into "
            f"{cache_root(args.cache_dir)}: {len(report.imported)} encoders added, "
            f"{len(report.kept)} already complete and kept, {report.measurements_added} "
            f"measurement files added, {report.measurements_kept} kept; archive SHA-256 "
            f"{report.archive_sha256}"
        )
    else:
        present, missing = bundle.plan_status(args.profile, args.cache_dir)
        total = len(present) + len(missing)
        print(f"profile {args.profile!r}: {len(present)} of {total} encoders of the book cached")
        for name in missing:
            print(f"  to train: {name}")
        if missing and args.check:
            raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memloc", description=__doc__)
    parser.add_argument("--cache-dir", default=None, help="encoder cache (default ./cache)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="datasets, encoders, profiles, cache contents")

    p = sub.add_parser("train", help="train (or load from the cache) a profile's f and g")
    p.add_argument("--profile", default="cpu", help="quick, cpu, paper or auto (sizes from data)")
    p.add_argument("--framework", default="simclr", choices=FRAMEWORK_CHOICES)
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="profile overrides")
    p.add_argument("--device", default=None)
    p.add_argument("--sequential", action="store_true", help="train f then g in this process")

    for name in ("layermem", "unitmem", "classmem"):
        p = sub.add_parser(name, help=f"{name} on a profile's cached encoders or your checkpoints")
        p.add_argument("--profile", default="cpu")
        p.add_argument("--framework", default="simclr", choices=FRAMEWORK_CHOICES)
        p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="profile overrides")
        p.add_argument(
            "--layers",
            nargs="*",
            default=None,
            help="measurement points or module paths, e.g. layer3.1 (default: the encoder's)",
        )
        p.add_argument("--n-points", type=int, default=None, help="images per set (a maximum)")
        p.add_argument(
            "--k-aug", type=int, default=None, help="augmentations per image (unitmem: 0 = none)"
        )
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--checkpoint-f", default=None, help="your f weights (.safetensors/.pt)")
        p.add_argument(
            "--checkpoint-g",
            default=None,
            help="your g weights (layermem only: unitmem and classmem read f alone)",
        )
        p.add_argument(
            "--arch",
            default=None,
            help="architecture of the checkpoints: a memloc name (resnet9, ...) or "
            "torchvision:NAME (e.g. torchvision:resnet18); default the profile's",
        )
        p.add_argument("--arch-kwargs", default=None, help="JSON, e.g. '{\"in_channels\": 3}'")
        p.add_argument("--out", default=f"results/{name}")
        if name == "layermem":
            p.add_argument("--variant", default="views", choices=["views", "original"])
        else:
            p.add_argument("--rest", default="mean", choices=["mean", "median"])
            p.add_argument(
                "--forward",
                default="paper",
                choices=["paper", "scripts"],
                help="scripts: a ResNet9 read without its residual sums, as the authors' scripts",
            )
        if name == "classmem":
            p.add_argument(
                "--accumulate",
                default="class",
                choices=["class", "running"],
                help="running: the scripts' never-reset running mean over the classes so far",
            )

    p = sub.add_parser("report", help="an HTML memorization report on your f (and g) checkpoints")
    p.add_argument("--dataset", required=True, help="imagefolder:DIR (class sub-folders) or a name")
    p.add_argument("--checkpoint-f", required=True, help="your f weights (.safetensors/.pt)")
    p.add_argument("--checkpoint-g", default=None, help="your g weights: adds LayerMem (T1)")
    p.add_argument("--arch", default=None, help="resnet9, ..., or torchvision:NAME")
    p.add_argument("--arch-kwargs", default=None, help="JSON, e.g. '{\"in_channels\": 3}'")
    p.add_argument("--profile", default="auto", help="auto: split sizes from the data")
    p.add_argument("--framework", default="simclr", choices=FRAMEWORK_CHOICES)
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="profile overrides")
    p.add_argument("--n-points", type=int, default=None, help="images per set (a maximum)")
    p.add_argument("--k-aug", type=int, default=None, help="augmentations per image")
    p.add_argument("--out", default="report", help="the report's folder (default ./report)")
    p.add_argument("--no-build", action="store_true", help="execute the pages, skip Jupyter Book")

    p = sub.add_parser("bundle", help="export, import or check a results bundle of the book")
    bundle_sub = p.add_subparsers(dest="bundle_command", required=True)
    b = bundle_sub.add_parser("export", help="pack the book's encoders and measurements")
    b.add_argument("--profile", default="cpu")
    b.add_argument("out", help="the archive to write, e.g. memloc-cpu.tar")
    b = bundle_sub.add_parser("import", help="fetch, verify and unpack a bundle into the cache")
    b.add_argument("source", help="a path or a URL (https://, file://, ...)")
    b.add_argument("--sha256", default=None, help="the archive's SHA-256, checked when given")
    b = bundle_sub.add_parser("status", help="which of the book's encoders the cache holds")
    b.add_argument("--profile", default="cpu")
    b.add_argument("--check", action="store_true", help="exit 1 when any encoder is missing")

    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            cmd_info(args)
        elif args.command == "train":
            cmd_train(args)
        elif args.command == "layermem":
            cmd_layermem(args)
        elif args.command == "unitmem":
            cmd_unitmem(args)
        elif args.command == "classmem":
            cmd_unitmem(args, classes=True)
        elif args.command == "report":
            cmd_report(args)
        elif args.command == "bundle":
            cmd_bundle(args)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError) as err:
        # Bad input (unknown profile, layer, dataset; missing data): one line, no traceback.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"memloc {args.command}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
