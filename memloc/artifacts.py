"""The encoder cache: a trained encoder is identified by the hash of its full configuration.

Asking for a configuration that is cached loads it in seconds; otherwise it is trained and
stored. One entry is a folder ``<cache>/<arch>-<framework>-<dataset>-<role>-<key>/`` with

- ``config.json``        the full configuration (what the key hashes),
- ``model.safetensors``  the backbone's weights (never a pickle),
- ``log.json``           the training log (loss, pairs/s per epoch),
- ``provenance.json``    git commit, library versions, device, wall time,
- ``splits.json``        the data split the encoder was trained on,
- ``manifest.json``      written last: the SHA-256 of the weights. An entry without it, or whose
                         weights do not match it, is incomplete or corrupt and is trained again
                         (resuming from ``checkpoints/last.pt`` when that survived).

A lock file per entry makes two processes asking for the same entry at once wait for each
other instead of writing the same files.
"""

from __future__ import annotations

import _thread
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

import memloc
from memloc.augment import AugmentPolicy
from memloc.data import ImageDataset, load_dataset
from memloc.fingerprint import TRAINING, fingerprint
from memloc.models import Encoder, create
from memloc.profiles import Profile, fit_to_data, load_profile
from memloc.splits import Splits, candidate_split
from memloc.ssl import FRAMEWORKS, create_framework
from memloc.train import CHECKPOINT, CheckpointError, TrainConfig, train
from memloc.utils import atomic_write_json, get_device, repo_root, sha256_file

if TYPE_CHECKING:  # Opacus is imported only when a private encoder is trained
    from memloc.privacy import PrivacyConfig

ROLES = ("f", "g")
FRAMEWORK_NAMES = tuple(FRAMEWORKS)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """Where entries live: ``cache_dir``, else ``$MEMLOC_CACHE``, else ``<repo>/cache``."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("MEMLOC_CACHE", repo_root() / "cache"))


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that determines a trained encoder's weights. Its hash names the cache entry."""

    dataset: str
    n_total: int
    image_size: int
    resize: str
    split: dict
    role: str
    arch: str
    arch_kwargs: dict
    framework: str
    framework_kwargs: dict
    policy: dict
    train: dict
    version: str = memloc.__version__
    privacy: dict | None = None  # DP-SGD's target (memloc.privacy.PrivacyConfig); None: not private

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if out["privacy"] is None:
            del out["privacy"]  # so that the keys of non-private encoders do not change
        return out

    @property
    def key(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def entry_name(self) -> str:
        data = self.dataset.replace(":", "_").replace("/", "_")
        method = self.framework
        if self.privacy is not None:
            method += f"-dp{self.privacy['epsilon']:g}"
        return f"{self.arch}-{method}-{data}-{self.role}-{self.key}"


def profile_policy(profile: Profile, framework: str) -> AugmentPolicy:
    """The augmentation policy a profile trains with: the paper's SimCLR views with the
    profile's crop scale (small grayscale images do not survive 8% crops) and colour jitter
    (``jitter``, ``jitter_p``) and blur (``blur_p``, ``blur_sigma``, ``blur_kernel``) for SimCLR,
    SimSiam and DINO; MAE's crop and flip for MAE; weak views for the supervised baseline."""
    if framework == "supervised":
        return AugmentPolicy.supervised()
    if framework == "mae":
        return AugmentPolicy.mae()
    return dataclasses.replace(
        AugmentPolicy.simclr(),
        crop_scale=tuple(profile.crop_scale),
        jitter=tuple(profile.jitter),
        jitter_p=profile.jitter_p,
        blur_p=profile.blur_p,
        blur_sigma=tuple(profile.blur_sigma),
        blur_kernel=profile.blur_kernel,
    )


def encoder_spec(
    profile: Profile,
    role: str,
    framework: str = "simclr",
    *,
    n_total: int,
    in_channels: int,
    privacy: PrivacyConfig | None = None,
) -> EncoderSpec:
    """The spec of encoder ``role`` ("f" trains on S_S ∪ S_C, "g" on S_S ∪ S_I) of a profile,
    trained with DP-SGD to ``privacy``'s (ε, δ) when given (:mod:`memloc.privacy`)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use 'f' (S_S ∪ S_C) or 'g' (S_S ∪ S_I)")
    if framework not in FRAMEWORK_NAMES:
        raise ValueError(f"unknown framework {framework!r}; available: {list(FRAMEWORK_NAMES)}")
    epochs = profile.epochs if framework != "supervised" else profile.supervised_epochs
    framework_kwargs = {"temperature": profile.temperature} if framework == "simclr" else {}
    # A framework's own recipe (the profile key recipes); a spec without one keeps its key.
    train_recipe, framework_recipe = profile.recipe(framework)
    if profile.lr_schedule != "constant":  # only then, so that the other keys do not change
        train_recipe = {"lr_schedule": profile.lr_schedule, **train_recipe}
    framework_kwargs.update(framework_recipe)
    return EncoderSpec(
        dataset=profile.dataset,
        n_total=n_total,
        image_size=profile.image_size,
        resize=profile.resize,
        split={
            "n_shared": profile.n_shared,
            "n_candidate": profile.n_candidate,
            "n_independent": profile.n_independent,
            "n_heldout": profile.n_heldout,
            "n_downstream": profile.n_downstream,
            "seed": profile.split_seed,
        },
        role=role,
        arch=profile.arch,
        arch_kwargs=_arch_kwargs(profile, in_channels),
        framework=framework,
        framework_kwargs=framework_kwargs,
        policy=profile_policy(profile, framework).to_dict(),
        privacy=None if privacy is None else _check_private(profile, framework, privacy),
        train={
            "epochs": epochs,
            "batch_size": profile.batch_size,
            "lr": profile.lr,
            "weight_decay": profile.weight_decay,
            "seed": profile.seed,
            "snapshot_epochs": [e for e in profile.snapshot_epochs if e <= epochs],
            **train_recipe,
        },
    )


def _arch_kwargs(profile: Profile, in_channels: int) -> dict:
    kwargs = {"in_channels": in_channels, "width": profile.width}
    if profile.arch.startswith("vit"):  # a ViT is built for one input size
        kwargs["image_size"] = profile.image_size
        kwargs["patch_size"] = profile.patch_size
    # Only then, so that the paper's encoders keep their keys; a ViT has LayerNorm whatever
    # the key says.
    if profile.norm != "batch" and not profile.arch.startswith("vit"):
        kwargs["norm"] = profile.norm
    return kwargs


def _check_private(profile: Profile, framework: str, privacy: PrivacyConfig) -> dict:
    # The same refusals as memloc.privacy.private_framework, before anything is trained.
    from memloc.privacy import REFUSED, VIEWS_PER_IMAGE

    if framework not in VIEWS_PER_IMAGE:
        reason = REFUSED.get(framework, "its loss is not a sum of per-image terms")
        raise ValueError(
            f"memloc does not train {framework} privately: {reason}. Use one of "
            f"{sorted(VIEWS_PER_IMAGE)}"
        )
    # A ViT's LayerNorm normalises each image alone; a ResNet's BatchNorm mixes the batch.
    if profile.norm != "group" and not profile.arch.startswith("vit"):
        raise ValueError(
            f"a private {profile.arch} needs GroupNorm (BatchNorm mixes the images of a batch); "
            "use the profile key norm='group'"
        )
    # Typed, so that epsilon=1 and epsilon=1.0 name the same encoder.
    return {
        "epsilon": float(privacy.epsilon),
        "delta": float(privacy.delta),
        "max_grad_norm": float(privacy.max_grad_norm),
        "physical_batch": int(privacy.physical_batch),
    }


@contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path.lock``; a second process blocks here until the first is done.

    The holder deletes the lock file before it lets go (also when its work failed), so no
    ``.lock`` files stay behind. A waiter that wakes up on a deleted file tries again on the
    current one, so two processes never both hold the lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    waited = False
    while True:
        fh = open(lock, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                print(f"memloc: waiting for another process on {path.name}", file=sys.stderr)
                waited = True
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            held = os.fstat(fh.fileno()).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            held = False
        if held:
            break
        fh.close()  # the previous holder deleted this file: lock the new one
    _HELD_LOCKS.add(lock)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        _HELD_LOCKS.discard(lock)
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


# The lock files this process holds: a worker whose parent died deletes them before it ends
# (exit_with_parent), even when its training did not reach its own cleanup in time.
_HELD_LOCKS: set[Path] = set()


def entry_status(entry: Path) -> str:
    """``"complete"``, ``"missing"``, ``"partial"`` (no manifest yet) or ``"corrupt"``."""
    if not entry.exists():
        return "missing"
    manifest, weights = entry / "manifest.json", entry / "model.safetensors"
    if not manifest.exists():
        return "partial"
    try:
        expected = json.loads(manifest.read_text())["sha256"]
        EncoderSpec(**json.loads((entry / "config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return "corrupt"
    if not weights.exists() or sha256_file(weights) != expected:
        return "corrupt"
    return "complete"


def _provenance(device: torch.device, wall: float) -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    import numpy
    import torchvision

    return {
        "git_commit": commit or None,
        "memloc": memloc.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "wall_time_s": round(wall, 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # Not part of the key (memloc's version is): which training code produced the weights.
        "training_code_sha256": fingerprint(*TRAINING),
    }


def build_encoder(spec: EncoderSpec) -> Encoder:
    """The untrained encoder of ``spec``, initialised from the spec's seed (f and g start equal)."""
    torch.manual_seed(spec.train["seed"])
    return create(spec.arch, **spec.arch_kwargs)


def load_encoder(entry: str | Path) -> Encoder:
    """Load a complete cache entry; refuses incomplete or corrupt ones."""
    entry = Path(entry)
    status = entry_status(entry)
    if status == "corrupt":
        raise RuntimeError(
            f"cache entry {entry} is corrupt: {_corrupt_file(entry)}; ask for it again to "
            "retrain it"
        )
    if status != "complete":
        raise RuntimeError(f"cache entry {entry} is {status}; ask for it again to (re)train it")
    spec = EncoderSpec(**json.loads((entry / "config.json").read_text()))
    encoder = create(spec.arch, **spec.arch_kwargs)
    encoder.load_state_dict(load_file(entry / "model.safetensors"))
    return encoder.eval()


def _corrupt_file(entry: Path) -> str:
    """Which file of a corrupt entry (:func:`entry_status`) is at fault, and how."""
    for name, read in (
        ("manifest.json", lambda text: json.loads(text)["sha256"]),
        ("config.json", lambda text: EncoderSpec(**json.loads(text))),
    ):
        try:
            read((entry / name).read_text())
        except (OSError, ValueError, KeyError, TypeError) as err:
            return f"{entry / name} is unreadable ({_one_line(err, 80)})"
    return f"{entry / 'model.safetensors'} does not match the SHA-256 in manifest.json"


def _one_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:limit]}"


def _train_entry(spec: EncoderSpec, entry: Path, device: torch.device, progress: bool) -> None:
    dataset = load_dataset(spec.dataset, "train", image_size=spec.image_size, resize=spec.resize)
    if len(dataset) != spec.n_total:
        raise RuntimeError(
            f"{spec.dataset} has {len(dataset)} training points, the spec expects {spec.n_total}"
        )
    splits = splits_from_spec(spec)
    splits.test_holdout = dataset.test_holdout  # an image folder's held-out test files
    indices = torch.as_tensor(splits.train_indices(spec.role))
    encoder = build_encoder(spec)
    if spec.privacy is None:
        build = create_framework
    else:
        from memloc.privacy import private_framework as build
    framework = build(
        spec.framework,
        encoder,
        policy=AugmentPolicy.from_dict(spec.policy),
        num_classes=len(dataset.classes),
        **spec.framework_kwargs,
    )
    entry.mkdir(parents=True, exist_ok=True)
    atomic_write_json(entry / "config.json", spec.to_dict())
    splits.save(entry / "splits.json")
    config = TrainConfig(**{**spec.train, "snapshot_epochs": tuple(spec.train["snapshot_epochs"])})
    start = time.time()
    if spec.privacy is None:
        log = train(
            framework,
            dataset.images[indices],
            dataset.labels[indices],
            config,
            checkpoint_dir=entry / "checkpoints",
            device=device,
            progress=progress,
            desc=f"{spec.framework} {spec.role}",
        )
    else:
        from memloc.privacy import PrivacyConfig, train_private

        log = train_private(
            framework,
            dataset.images[indices],
            dataset.labels[indices],
            config,
            PrivacyConfig(**spec.privacy),
            device=device,
            progress=progress,
            checkpoint_dir=entry / "checkpoints",
        )
    wall = time.time() - start
    weights = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(weights, entry / "model.safetensors")
    atomic_write_json(entry / "log.json", log)
    atomic_write_json(entry / "provenance.json", _provenance(device, wall))
    atomic_write_json(entry / "manifest.json", {"sha256": sha256_file(entry / "model.safetensors")})
    # The optimizer state is only needed to resume; the finished entry keeps weights and snapshots.
    (entry / "checkpoints" / "last.pt").unlink(missing_ok=True)


def splits_from_spec(spec: EncoderSpec) -> Splits:
    """The split an encoder of ``spec`` trains on (every encoder of a pair shares it)."""
    s = spec.split
    return candidate_split(
        spec.n_total,
        n_shared=s["n_shared"],
        n_candidate=s["n_candidate"],
        n_independent=s["n_independent"],
        n_heldout=s["n_heldout"],
        n_downstream=s["n_downstream"],
        seed=s["seed"],
        dataset=spec.dataset,
    )


def get_encoder(
    spec: EncoderSpec,
    *,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> Path:
    """Make sure the entry of ``spec`` is complete (training it if needed); return its folder."""
    entry = cache_root(cache_dir) / spec.entry_name
    with _locked(entry):
        status = entry_status(entry)
        if status == "complete":
            return entry
        if status == "corrupt":
            print(
                f"memloc: {entry.name} is corrupt ({_corrupt_file(entry)}); training it again",
                file=sys.stderr,
            )
            for name in ("manifest.json", "model.safetensors"):
                (entry / name).unlink(missing_ok=True)
            # A checkpoint that survived would only restore the same corrupt run's end state.
            shutil.rmtree(entry / "checkpoints", ignore_errors=True)
        if threads is not None:
            torch.set_num_threads(threads)
        last = entry / "checkpoints" / CHECKPOINT
        try:
            try:
                _train_entry(spec, entry, get_device(device), progress)
            except CheckpointError as err:
                # last.pt holds the head and optimizer state too; a snapshot holds the backbone
                # alone, so a run cannot continue from one: start the entry again.
                print(f"memloc: {err}; training {entry.name} again from the start", file=sys.stderr)
                last.unlink(missing_ok=True)
                _train_entry(spec, entry, get_device(device), progress)
        except BaseException:
            # A failed run leaves its entry only when last.pt lets the next request resume it.
            if not last.exists():
                shutil.rmtree(entry, ignore_errors=True)
            raise
    return entry


# How often a training worker checks that its parent is alive, and how long it then gives the
# training's own cleanup (get_encoder removes an entry that cannot be resumed) before it exits.
PARENT_POLL_S = 0.5
ORPHAN_GRACE_S = 5.0


def exit_with_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> threading.Thread:
    """Make this process exit when ``parent_pid`` is no longer its parent (it died).

    A worker of :func:`encoder_pair`'s process pool runs this first (the pool's initializer):
    after a ``kill -9`` of the parent, the workers would otherwise finish their training as
    orphans, holding the cache locks and the memory. A daemon thread polls ``os.getppid()``
    (an orphan is re-parented, so the value changes); when the parent is gone it interrupts
    the main thread, so that the training's cleanup runs, and ends the process with
    ``os._exit`` after :data:`ORPHAN_GRACE_S` whatever the main thread is doing, deleting the
    lock files it still holds. Portable, and
    without ``PR_SET_PDEATHSIG``'s catch that it fires when the spawning *thread* ends.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        print(
            f"memloc: training worker {os.getpid()}: its parent {parent_pid} died; exiting",
            file=sys.stderr,
            flush=True,
        )
        _thread.interrupt_main()
        time.sleep(ORPHAN_GRACE_S)
        # The main thread may still be inside a long tensor operation (a loaded machine): the
        # flock dies with the process, the files are removed here.
        for lock in list(_HELD_LOCKS):
            lock.unlink(missing_ok=True)
        os._exit(1)

    watcher = threading.Thread(target=watch, name="memloc-exit-with-parent", daemon=True)
    watcher.start()
    return watcher


def _train_worker(
    spec_dict: dict, cache_dir: str, device: str | None, position: int, progress: bool = True
) -> str:
    # One thread per process: two encoders side by side use the two cores better than one
    # encoder at a time with two threads (measured on a shared 2-core machine).
    os.environ["MEMLOC_TQDM_POSITION"] = str(position)
    spec = EncoderSpec(**spec_dict)
    return str(get_encoder(spec, cache_dir=cache_dir, device=device, threads=1, progress=progress))


@dataclass
class EncoderPair:
    """f (trained on S_S ∪ S_C) and g (trained on S_S ∪ S_I), with the data they came from."""

    profile: Profile
    framework: str
    f: Encoder
    g: Encoder | None  # None: f alone (f_encoder)
    dataset: ImageDataset
    test: ImageDataset
    splits: Splits
    policy: AugmentPolicy
    entries: dict[str, Path] = field(default_factory=dict)
    trained: tuple[str, ...] = ()  # the roles this call trained (the rest came from the cache)
    checkpoints: dict[str, dict] = field(default_factory=dict)  # your files: path, sha256

    @property
    def hashes(self) -> dict[str, str]:
        """Per role, the cache key of its entry, or the SHA-256 of your checkpoint file."""
        if self.checkpoints:
            return {role: c["sha256"] for role, c in self.checkpoints.items()}
        return {role: path.name.rsplit("-", 1)[-1] for role, path in self.entries.items()}

    def images(self, which: str, n: int | None = None) -> torch.Tensor:
        """Float [0, 1] images of ``candidate``, ``independent``, ``heldout``, ``shared`` or
        ``downstream`` (the first ``n``; held-out falls back to the test split when the profile
        keeps no training points aside)."""
        if which == "heldout" and len(self.splits.heldout) == 0:
            return self.test.images[:n].float() / 255
        indices = getattr(self.splits, which)[:n]
        return self.dataset.images[torch.as_tensor(indices)].float() / 255

    def files(self, which: str, n: int | None = None) -> list[str] | None:
        """The image folder's file names of :meth:`images` (None for other data sets)."""
        if which == "heldout" and len(self.splits.heldout) == 0:
            return None if self.test.files is None else self.test.files[:n]
        if self.dataset.files is None:
            return None
        return [self.dataset.files[i] for i in getattr(self.splits, which)[:n]]

    def labels(self, which: str, n: int | None = None) -> torch.Tensor:
        if which == "heldout" and len(self.splits.heldout) == 0:
            return self.test.labels[:n]
        return self.dataset.labels[torch.as_tensor(getattr(self.splits, which)[:n])]

    def snapshots(self, role: str = "f") -> dict[int, Encoder]:
        """Encoders saved at the profile's ``snapshot_epochs`` (for UnitMem over training)."""
        out = {}
        for path in sorted((self.entries[role] / "checkpoints").glob("epoch_*.safetensors")):
            encoder = create(self.f.arch, **self.f.config())
            try:
                encoder.load_state_dict(load_file(path))
            except Exception as err:  # a truncated or foreign file: say which one
                raise RuntimeError(
                    f"snapshot {path} is unreadable ({_one_line(err)}); delete it, or delete "
                    f"{self.entries[role]} to train the entry again"
                ) from None
            out[int(path.stem.split("_")[1])] = encoder.eval()
        return out


def _profile_data(profile: Profile, framework: str):
    """A profile fitted to its data (:func:`memloc.profiles.fit_to_data`: sizes from
    ``split_shares``), its train and test data and the specs of its f and g."""
    dataset = load_dataset(
        profile.dataset, "train", image_size=profile.image_size, resize=profile.resize
    )
    test = load_dataset(
        profile.dataset, "test", image_size=profile.image_size, resize=profile.resize
    )
    profile = fit_to_data(profile, len(dataset))
    specs = {
        role: encoder_spec(
            profile, role, framework, n_total=len(dataset), in_channels=dataset.channels
        )
        for role in ROLES
    }
    return profile, dataset, test, specs


def encoder_pair(
    profile: str | Profile = "cpu",
    framework: str = "simclr",
    *,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    parallel: bool | None = None,
    **overrides,
) -> EncoderPair:
    """The cached f/g pair of a profile, training whatever is missing.

    On the CPU, two missing encoders train side by side in two single-threaded processes
    (``parallel=None`` decides: CPU and at least two cores); on CUDA one after the other.

    Example
    -------
    A pair of tiny encoders on scikit-learn's digits, one epoch each (seconds):

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as cache:
    ...     pair = encoder_pair("quick", dataset="digits", epochs=1, width=0.125,
    ...                         snapshot_epochs=[], cache_dir=cache, progress=False)
    >>> pair.f.arch, len(pair.images("candidate")), sorted(pair.hashes)
    ('resnet9', 150, ['f', 'g'])
    """
    profile = load_profile(profile, **overrides)
    profile, dataset, test, specs = _profile_data(profile, framework)
    root = cache_root(cache_dir)
    todo = [r for r in ROLES if entry_status(root / specs[r].entry_name) != "complete"]
    dev = get_device(device)
    if parallel is None:
        parallel = dev.type == "cpu" and (os.cpu_count() or 1) >= 2
    entries = {}
    if parallel and len(todo) == 2:
        # The workers exit when this process dies (exit_with_parent), even by kill -9.
        with ProcessPoolExecutor(
            max_workers=2,
            mp_context=get_context("spawn"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {
                r: pool.submit(_train_worker, specs[r].to_dict(), str(root), str(dev), i, progress)
                for i, r in enumerate(todo)
            }
            entries = {r: Path(fut.result()) for r, fut in futures.items()}
    for role in ROLES:
        if role not in entries:
            entries[role] = get_encoder(specs[role], cache_dir=root, device=dev, progress=progress)
    return EncoderPair(
        profile=profile,
        framework=framework,
        f=load_encoder(entries["f"]),
        g=load_encoder(entries["g"]),
        dataset=dataset,
        test=test,
        splits=splits_from_spec(specs["f"]),
        policy=AugmentPolicy.from_dict(specs["f"].policy),
        entries=entries,
        trained=tuple(todo),
    )


def user_pair(
    profile: str | Profile,
    f: Encoder,
    g: Encoder | None = None,
    framework: str = "simclr",
    **overrides,
) -> EncoderPair:
    """Your own f and g (e.g. from :func:`load_checkpoint`) with a profile's data, split and
    augmentation policy; nothing is trained. f must have trained on S_S ∪ S_C and g on
    S_S ∪ S_I of this split for SSLMem to mean memorization. ``g`` may be None: UnitMem and
    ClassMem read one encoder (Wang et al., 2024, §3.2), only LayerMem needs g."""
    profile = load_profile(profile, **overrides)
    profile, dataset, test, specs = _profile_data(profile, framework)
    return EncoderPair(
        profile=profile,
        framework=framework,
        f=f.eval(),
        g=None if g is None else g.eval(),
        dataset=dataset,
        test=test,
        splits=splits_from_spec(specs["f"]),
        policy=AugmentPolicy.from_dict(specs["f"].policy),
    )


def checkpoint_pair(
    profile: str | Profile,
    checkpoints: dict,
    framework: str = "simclr",
    **overrides,
) -> EncoderPair:
    """:func:`user_pair` from checkpoint files, as ``memloc report`` passes them to the notebooks.

    ``checkpoints`` holds ``f`` (a path), optionally ``g``, ``arch`` (a memloc name,
    ``torchvision:NAME`` or ``timm:NAME``; default the profile's) and ``arch_kwargs`` (a dict;
    ``in_channels`` defaults to the data's, ``width`` to the profile's for its own
    architecture). The pair records each file's path and SHA-256 (its ``hashes``, shown in
    every page's provenance).

    Example
    -------
    >>> pair = checkpoint_pair("auto", {"f": "f.safetensors", "arch": "resnet9"},
    ...                        dataset="imagefolder:pics")  # doctest: +SKIP
    """
    unknown = set(checkpoints) - {"f", "g", "arch", "arch_kwargs"}
    if unknown or not checkpoints.get("f"):
        raise ValueError(
            f"checkpoints needs 'f' (a path) and may hold 'g', 'arch', 'arch_kwargs'; got "
            f"{sorted(checkpoints)}"
        )
    p = load_profile(profile, **overrides)
    arch = checkpoints.get("arch") or p.arch
    kwargs = dict(checkpoints.get("arch_kwargs") or {})
    # Not given: the data's channels, and for the profile's own architecture its width (what
    # `memloc train` with this profile saves).
    data = load_dataset(p.dataset, "train", image_size=p.image_size, resize=p.resize)
    kwargs.setdefault("in_channels", data.channels)
    if arch == p.arch:
        kwargs.setdefault("width", p.width)
    roles = {role: checkpoints[role] for role in ROLES if checkpoints.get(role)}
    encoders = {role: load_checkpoint(path, arch, **kwargs) for role, path in roles.items()}
    pair = user_pair(profile, encoders["f"], encoders.get("g"), framework, **overrides)
    pair.checkpoints = {
        role: {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}
        for role, path in roles.items()
    }
    return pair


def untrained_twin(encoder: Encoder, seed: int = 0) -> Encoder:
    """``encoder``'s own architecture and settings at a seeded random initialisation: the
    untrained control of the regime checks and of UnitMem, for any encoder (a cached one, where
    it equals f at epoch 0 since the cache seeds f the same way, or your checkpoint).

    Example
    -------
    >>> twin = untrained_twin(create("resnet9", width=0.25), seed=0)
    >>> twin.arch, twin.config()["width"], twin.training
    ('resnet9', 0.25, False)
    """
    torch.manual_seed(seed)
    return create(encoder.arch, **encoder.config()).eval()


def random_encoder(profile: str | Profile = "cpu", seed: int = 0, in_channels: int = 1) -> Encoder:
    """The profile's architecture at random initialisation: UnitMem's no-learning control."""
    profile = load_profile(profile)
    torch.manual_seed(seed)
    return create(profile.arch, **_arch_kwargs(profile, in_channels)).eval()


def load_checkpoint(path: str | Path, arch: str, **arch_kwargs) -> Encoder:
    """A user's weights in architecture ``arch``: ``.safetensors``, or a ``torch.save`` state
    dict read with ``weights_only=True`` (never an arbitrary pickle).

    A dict holding the state dict under ``"model"`` or ``"state_dict"`` is unwrapped, and a
    ``"module."`` (DistributedDataParallel) or ``"backbone."`` (a memloc framework) prefix is
    dropped. Keys the architecture lacks (a classifier head) are ignored. Anything else that
    does not fit is a ValueError of one line naming the file and what to do: a pickled model
    (``torch.save(model)``), a truncated file, a file that is not a state dict, tensors of
    other shapes (with the width or channel count they suggest).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    encoder = create(arch, **arch_kwargs)
    state = _read_state_dict(path)
    _check_fits(state, encoder, path, arch, arch_kwargs)
    encoder.load_state_dict(state, strict=False)
    return encoder.eval()


_SAVE_ADVICE = (
    "save the weights alone: safetensors.torch.save_file(model.state_dict(), 'w.safetensors') "
    "or torch.save(model.state_dict(), 'w.pt')"
)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import pickle

    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except Exception as err:  # safetensors' own error type, or an OSError
            raise ValueError(
                f"{path} is not a readable safetensors file ({_one_line(err, 120)}): it is "
                f"truncated or corrupt; write it again ({_SAVE_ADVICE})"
            ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path} holds pickled Python objects (e.g. a whole model saved with "
            f"torch.save(model)); memloc loads with torch.load(weights_only=True) and never "
            f"unpickles objects: {_SAVE_ADVICE}"
        ) from None
    except Exception as err:  # a truncated zip archive, a file of another format
        raise ValueError(
            f"{path} is not a readable PyTorch file ({_one_line(err, 120)}): it is truncated "
            f"or in another format; write it again ({_SAVE_ADVICE})"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        what = "an empty dict" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise ValueError(f"{path} holds {what}, not a state dict of tensors; {_SAVE_ADVICE}")
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(
            f"{path} is a dict whose entries {not_tensors[:3]} are not tensors, not a state "
            f"dict; {_SAVE_ADVICE}"
        )
    for prefix in ("module.", "backbone."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def _check_fits(state: dict, encoder: Encoder, path: Path, arch: str, arch_kwargs: dict) -> None:
    """ValueError naming ``path`` unless ``state`` has every tensor of ``encoder`` in its shape."""
    own = encoder.state_dict()
    built = f"{arch}({', '.join(f'{k}={v!r}' for k, v in arch_kwargs.items())})"
    missing = [k for k in own if k not in state]
    if len(missing) == len(own):
        raise ValueError(
            f"{path} shares no tensor name with {built} (the file has e.g. {list(state)[:3]}, "
            f"the model {list(own)[:3]}): it is a checkpoint of another architecture; pass the "
            "one it was saved from (--arch)"
        )
    if missing:
        raise ValueError(
            f"{path} lacks {len(missing)} of the {len(own)} tensors of {built}, e.g. "
            f"{missing[:3]}: it is a checkpoint of another architecture or depth; pass the one "
            "it was saved from (--arch, --arch-kwargs)"
        )
    other = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()]
    other = [(k, a, b) for k, a, b in other if a != b]
    if not other:
        return
    key, in_file, in_model = other[0]
    hints = []
    config = encoder.config() if hasattr(encoder, "config") else {}
    if len(in_file) > 1 and in_file[1] != in_model[1]:
        hints.append(f"it takes {in_file[1]}-channel images: pass in_channels={in_file[1]}")
    if in_file[0] != in_model[0] and "width" in config:
        width = config["width"] * in_file[0] / in_model[0]
        hints.append(
            f"it was saved at another width (about {width:g}, this model has "
            f"{config['width']:g}): pass --arch-kwargs '{{\"width\": {width:g}}}' "
            f"(width={width:g} in Python, or the profile key width)"
        )
    hint = "; ".join(hints) or "build the model with the arguments it was saved with"
    raise ValueError(
        f"{path} does not fit {built}: {len(other)} tensors have other shapes, e.g. {key} is "
        f"{list(in_file)} in the file and {list(in_model)} in the model; {hint}"
    )


def list_cache(cache_dir: str | Path | None = None) -> list[dict]:
    """One row per cache entry: name, status, framework, role, dataset, epochs, wall time."""
    rows = []
    root = cache_root(cache_dir)
    for entry in sorted(p for p in root.glob("*") if p.is_dir()):
        row = {"entry": entry.name, "status": entry_status(entry)}
        try:
            cfg = json.loads((entry / "config.json").read_text())
            row.update(dataset=cfg["dataset"], framework=cfg["framework"], role=cfg["role"])
            row["epochs"] = cfg["train"]["epochs"]
        except (OSError, ValueError, KeyError):
            pass
        prov = entry / "provenance.json"
        if prov.exists():
            row["wall_time_s"] = json.loads(prov.read_text()).get("wall_time_s")
        rows.append(row)
    return rows


def f_encoder(
    profile: str | Profile = "cpu",
    framework: str = "simclr",
    *,
    privacy: PrivacyConfig | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> EncoderPair:
    """The f of a profile's pair alone, as an :class:`EncoderPair` whose ``g`` is None: for
    results that need only f (UnitMem), half the training of :func:`encoder_pair`. With
    ``privacy`` (a :class:`memloc.privacy.PrivacyConfig`), f is trained with DP-SGD and its
    ``log.json`` holds the ε spent (:func:`privacy_log`)."""
    profile = load_profile(profile, **overrides)
    profile, dataset, test, _ = _profile_data(profile, framework)
    spec = encoder_spec(
        profile, "f", framework, n_total=len(dataset), in_channels=dataset.channels, privacy=privacy
    )
    root = cache_root(cache_dir)
    trained = () if entry_status(root / spec.entry_name) == "complete" else ("f",)
    entry = get_encoder(spec, cache_dir=root, device=device, progress=progress)
    return EncoderPair(
        profile=profile,
        framework=framework,
        f=load_encoder(entry),
        g=None,
        dataset=dataset,
        test=test,
        splits=splits_from_spec(spec),
        policy=AugmentPolicy.from_dict(spec.policy),
        entries={"f": entry},
        trained=trained,
    )


def privacy_log(entry: str | Path) -> dict:
    """The privacy accounting of a private cache entry: ``epsilon`` spent, ``delta``,
    ``noise_multiplier``, ``sample_rate``, ``steps``, ``max_grad_norm`` (empty for a
    non-private entry)."""
    log = json.loads((Path(entry) / "log.json").read_text())
    return (
        {k: v for k, v in log.items() if k != "epochs"}
        if isinstance(log, dict) and "epsilon" in log
        else {}
    )
