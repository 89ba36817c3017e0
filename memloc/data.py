"""Image datasets as uint8 tensors: Fashion-MNIST, scikit-learn's digits, the torchvision
datasets the paper uses (MNIST, CIFAR-10/100, SVHN, STL10) and a user's image folder.

``load_dataset`` looks for a dataset in three places, in order:

1. the data root (``data_root()``: ``$MEMLOC_DATA``, else ``<repo>/data``), in the layout the
   torchvision class expects there (``FashionMNIST/raw``, ``cifar-10-batches-py``, ...);
2. for Fashion-MNIST, the IDX ``.gz`` files of the Debian package ``dataset-fashion-mnist``
   (``/usr/share/datasets/fashion-mnist``, or ``$MEMLOC_SYSTEM_DATA``), decompressed into the
   data root because torchvision reads the decompressed files;
3. torchvision's download, into a temporary folder inside the data root whose finished files
   are then moved into place, so that a failed download leaves nothing that later looks valid.

When all of them fail, :class:`DatasetUnavailable` says what was tried and how to get the data.
Files are converted to tensors on every call: the formats read in seconds, so no tensor cache
is kept. ``python -m memloc.data prepare fashion-mnist`` fetches a dataset ahead of time.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from memloc.utils import repo_root

DATASETS: tuple[str, ...] = (
    "fashion-mnist",
    "digits",
    "mnist",
    "cifar10",
    "cifar100",
    "svhn",
    "stl10",
)
IMAGEFOLDER_PREFIX = "imagefolder:"
# A folder of class sub-folders without train/ and test/ gets a test split held out of it:
# this share of every class (at least one image of a class with two or more), drawn with this
# seed, so that the same files always form the same test split.
IMAGEFOLDER_TEST_SHARE = 0.2
IMAGEFOLDER_TEST_SEED = 0
SPLITS = ("train", "test")
RESIZE_MODES = ("pad", "resize")

# Where the Debian package `dataset-fashion-mnist` installs the four IDX files.
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SYSTEM_DATA_ENV = "MEMLOC_SYSTEM_DATA"
DATA_ENV = "MEMLOC_DATA"
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# scikit-learn's digits have no official test split: the last 297 of the 1,797 points are the
# test set, the first 1,500 the training set (the points come in no particular class order).
DIGITS_N_TEST = 297

_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "stl-10": "stl10",
}
_DIGIT_CLASSES = [str(d) for d in range(10)]
_STL10_CLASSES = [
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
]


class DatasetUnavailable(RuntimeError):
    """A dataset could not be found, decompressed or downloaded; the message says how to get it."""


@dataclass(repr=False)
class ImageDataset:
    """Images as a uint8 tensor (N, C, H, W) with int64 labels (N,).

    ``source`` records where the files came from (a folder, a download, scikit-learn).
    ``test_holdout`` describes the test split held out of an image folder that has no
    ``train/`` and ``test/`` (share, seed and the test files); None for every other dataset.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    source: str = ""
    test_holdout: dict | None = None
    files: list[str] | None = None  # an image folder's files (relative paths), one per image

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must have shape ({len(self.images)},), got {tuple(self.labels.shape)}"
            )
        if self.files is not None and len(self.files) != len(self.images):
            raise ValueError(f"{len(self.files)} file names for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape=({c}, {h}, {w}), classes={len(self.classes)})"
        )

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        """Height of the images (square unless an image folder holds non-square images)."""
        return int(self.images.shape[2])

    def subset(self, indices) -> ImageDataset:
        """The points at ``indices`` (integer indices or a boolean mask), in that order."""
        idx = indices if isinstance(indices, torch.Tensor) else torch.as_tensor(np.asarray(indices))
        if idx.dtype != torch.bool:
            idx = idx.long()
        return ImageDataset(
            self.name,
            self.split,
            self.images[idx],
            self.labels[idx],
            self.classes,
            self.source,
            self.test_holdout,
            None if self.files is None else [self.files[i] for i in _positions(idx)],
        )


def _positions(idx: torch.Tensor) -> list[int]:
    """Integer positions of an index tensor (a boolean mask or integers)."""
    return (idx.nonzero().flatten() if idx.dtype == torch.bool else idx).tolist()


def data_root(root: str | Path | None = None) -> Path:
    """The folder datasets live in: ``root``, else ``$MEMLOC_DATA``, else ``<repo>/data``."""
    if root is None:
        root = os.environ.get(DATA_ENV) or repo_root() / "data"
    return Path(root).expanduser()


def system_data_dir() -> Path:
    """The Debian package's Fashion-MNIST folder (``$MEMLOC_SYSTEM_DATA`` overrides it)."""
    return Path(os.environ.get(SYSTEM_DATA_ENV) or SYSTEM_FASHION_MNIST)


def resize_images(images: torch.Tensor, image_size: int, mode: str = "pad") -> torch.Tensor:
    """Bring uint8 images (N, C, H, W) to ``image_size`` x ``image_size``.

    ``"pad"`` adds zeros symmetrically (an odd surplus goes to the bottom/right) and keeps every
    pixel; ``"resize"`` rescales with antialiased bilinear interpolation.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {mode!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    image_size = int(image_size)
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    h, w = images.shape[-2:]
    if (h, w) == (image_size, image_size):
        return images
    if mode == "pad":
        if image_size < max(h, w):
            raise ValueError(
                f"cannot pad {h}x{w} images to {image_size}x{image_size}: padding only grows "
                f"images; use resize='resize' to shrink them"
            )
        top, left = (image_size - h) // 2, (image_size - w) // 2
        out = images.new_zeros((*images.shape[:-2], image_size, image_size))
        out[..., top : top + h, left : left + w] = images
        return out
    # The float path gives the same pixels on every CPU (torchvision's native uint8 kernel is
    # only taken on some instruction sets); chunks bound the float copy's memory.
    chunks = []
    for chunk in images.split(4096):
        x = TF.resize(
            chunk.float(),
            [image_size, image_size],
            interpolation=InterpolationMode.BILINEAR,
            antialias=True,
        )
        chunks.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(chunks)


def load_dataset(
    name: str = "fashion-mnist",
    split: str = "train",
    *,
    root: str | Path | None = None,
    image_size: int | None = None,
    resize: str = "pad",
    download: bool = True,
) -> ImageDataset:
    """Load a named dataset's split as uint8 tensors, resized to ``image_size`` if given.

    Parameters
    ----------
    name : one of ``DATASETS`` or ``"imagefolder:<path>"``: class subfolders
        (``<path>/<class>/<image>``), optionally under ``<path>/train`` and ``<path>/test``;
        without those, a stratified share of every class (``IMAGEFOLDER_TEST_SHARE``, seeded
        by ``IMAGEFOLDER_TEST_SEED``) is the test split and the rest the training split.
    split : ``"train"`` or ``"test"`` (STL10's labelled ``train``/``test`` splits).
    root : data root; default :func:`data_root`.
    image_size : side length of the returned images; ``None`` keeps the native size.
    resize : ``"pad"`` (zero-pad, keeps pixels) or ``"resize"`` (bilinear, antialiased).
    download : allow torchvision to download what is not found locally.

    Raises
    ------
    ValueError for an unknown name, split or resize mode; DatasetUnavailable when no source
    has the data.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    name = canonical_name(name)
    if name.startswith(IMAGEFOLDER_PREFIX):
        dataset = _load_imagefolder(name, split, image_size, resize)
    else:
        if name == "digits":
            dataset = _load_digits(split)
        else:
            dataset = _load_torchvision(name, split, data_root(root), download)
        if image_size is not None:
            dataset.images = resize_images(dataset.images, image_size, resize)
    return dataset


def canonical_name(name: str) -> str:
    """The canonical spelling of a dataset name; ValueError listing the known ones otherwise."""
    if name.startswith(IMAGEFOLDER_PREFIX):
        if not name[len(IMAGEFOLDER_PREFIX) :]:
            raise ValueError("imagefolder needs a path: 'imagefolder:<path>'")
        return name
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, or 'imagefolder:<path>'"
        )
    return key


# --- scikit-learn's digits -------------------------------------------------------------------


def _load_digits(split: str) -> ImageDataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Values are counts 0..16 of set pixels in 4x4 blocks; scale them to the uint8 range.
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    n_train = len(images) - DIGITS_N_TEST
    part = slice(0, n_train) if split == "train" else slice(n_train, None)
    return ImageDataset(
        "digits",
        split,
        torch.from_numpy(np.ascontiguousarray(images[part])),
        torch.from_numpy(digits.target[part].astype(np.int64)),
        list(_DIGIT_CLASSES),
        source="scikit-learn (bundled digits)",
    )


# --- torchvision datasets --------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    cls: str  # class name in torchvision.datasets
    subdir: str  # folder under the data root passed to the class as its root ("" = the root)
    files: str  # where the class expects its files, relative to the data root
    manual: str  # how to put the files there by hand


_SPECS = {
    "fashion-mnist": _Spec(
        "FashionMNIST",
        "",
        "FashionMNIST/raw",
        "put the four IDX files ({}.gz) under {{root}}/FashionMNIST/raw".format(
            ".gz, ".join(IDX_FILES)
        ),
    ),
    "mnist": _Spec(
        "MNIST",
        "",
        "MNIST/raw",
        "put the four IDX files ({}.gz) under {{root}}/MNIST/raw".format(".gz, ".join(IDX_FILES)),
    ),
    "cifar10": _Spec(
        "CIFAR10",
        "",
        "cifar-10-batches-py",
        "extract cifar-10-python.tar.gz in {root} (giving {root}/cifar-10-batches-py)",
    ),
    "cifar100": _Spec(
        "CIFAR100",
        "",
        "cifar-100-python",
        "extract cifar-100-python.tar.gz in {root} (giving {root}/cifar-100-python)",
    ),
    "svhn": _Spec(
        "SVHN",
        "svhn",
        "svhn",
        "put train_32x32.mat and test_32x32.mat under {root}/svhn",
    ),
    "stl10": _Spec(
        "STL10",
        "",
        "stl10_binary",
        "extract stl10_binary.tar.gz in {root} (giving {root}/stl10_binary)",
    ),
}


def _construct(name: str, split: str, root: Path, download: bool):
    """The torchvision dataset object of ``name``/``split`` with its files under ``root``."""
    import torchvision.datasets as tvd

    spec = _SPECS[name]
    cls = getattr(tvd, spec.cls)
    folder = root / spec.subdir if spec.subdir else root
    if name in ("svhn", "stl10"):
        return cls(str(folder), split=split, download=download)
    return cls(str(folder), train=split == "train", download=download)


def _to_tensors(name: str, ds) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images uint8 (N, C, H, W), labels int64, classes) from a torchvision dataset object."""
    if name in ("fashion-mnist", "mnist"):
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long(), list(ds.classes)
    if name in ("cifar10", "cifar100"):
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        return images, torch.as_tensor(ds.targets, dtype=torch.int64), list(ds.classes)
    labels = torch.from_numpy(np.asarray(ds.labels).astype(np.int64))
    images = torch.from_numpy(np.ascontiguousarray(ds.data))  # SVHN and STL10: already CHW
    if name == "svhn":
        return images, labels, list(_DIGIT_CLASSES)
    return images, labels, list(getattr(ds, "classes", None) or _STL10_CLASSES)


def _load_torchvision(name: str, split: str, root: Path, download: bool) -> ImageDataset:
    spec = _SPECS[name]
    files = root / spec.files

    # Each source puts the files where the torchvision class looks and says where they came from.
    def in_root() -> str:
        return str(files)

    def gz_in_root() -> str:
        _decompress_idx(files, files)
        return f"{files} (decompressed .gz files)"

    def debian() -> str:
        _decompress_idx(system_data_dir(), files)
        return f"{system_data_dir()} (Debian package dataset-fashion-mnist)"

    def download_() -> str:
        _download(name, split, root)
        return f"download by torchvision into {root}"

    attempts: list[tuple[str, Callable[[], str]]] = [(f"data root ({files})", in_root)]
    if name in ("fashion-mnist", "mnist"):
        attempts.append((f"IDX .gz files in {files}", gz_in_root))
    if name == "fashion-mnist":
        attempts.append((f"Debian package files in {system_data_dir()}", debian))
    if download:
        attempts.append(("download", download_))

    tried: list[str] = []
    for what, prepare in attempts:
        try:
            source = prepare()
            ds = _construct(name, split, root, download=False)
        except Exception as err:  # network, archive and format errors alike: report, go on
            tried.append(f"{what}: {_one_line(err)}")
            continue
        images, labels, classes = _to_tensors(name, ds)
        return ImageDataset(name, split, images, labels, classes, source=source)

    if not download:
        tried.append("download: not allowed (download=False)")
    ways = [spec.manual.format(root=root)]
    if name == "fashion-mnist":
        debian = f"apt-get install dataset-fashion-mnist (IDX files in {system_data_dir()})"
        ways = ["make data", debian] + ways
    ways.append(f"load it with download=True where the internet is reachable (files go to {root})")
    raise DatasetUnavailable(
        f"dataset {name!r} ({split}) is not available.\nTried:\n"
        + "".join(f"  - {t}\n" for t in tried)
        + "Get it with one of:\n"
        + "".join(f"  - {w}\n" for w in ways)
        + f"(The data root is $MEMLOC_DATA, else <repo>/data; here {root}.)"
    )


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def _check_idx(path: Path) -> None:
    """Raise ValueError unless ``path`` is a complete IDX file of uint8 images or labels."""
    with open(path, "rb") as fh:
        header = fh.read(16)
    if len(header) < 8:
        raise ValueError(f"{path} is too short to be an IDX file")
    magic, n = struct.unpack(">II", header[:8])
    if magic == 0x801:
        expected = 8 + n
    elif magic == 0x803 and len(header) == 16:
        rows, cols = struct.unpack(">II", header[8:16])
        expected = 16 + n * rows * cols
    else:
        raise ValueError(f"{path} is not an IDX file of uint8 images or labels")
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{path} has {size} bytes, its header promises {expected}")


def _decompress_idx(src: Path, raw: Path) -> None:
    """Decompress the four IDX ``.gz`` files of ``src`` into ``raw``, each file atomically.

    torchvision's (Fashion-)MNIST reads the decompressed files from ``<root>/<Class>/raw``, so
    links to the ``.gz`` files would not do; the decompressed copy takes about 55 MB.
    """
    if not src.is_dir():
        raise FileNotFoundError(f"{src} does not exist")
    missing = [f + ".gz" for f in IDX_FILES if not (src / f"{f}.gz").is_file()]
    if missing:
        raise FileNotFoundError(f"missing {', '.join(missing)}")
    raw.mkdir(parents=True, exist_ok=True)
    for f in IDX_FILES:
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{f}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(src / f"{f}.gz", "rb") as inp:
                shutil.copyfileobj(inp, out, length=1 << 20)
            _check_idx(Path(tmp))
            os.replace(tmp, raw / f)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _download(name: str, split: str, root: Path) -> None:
    """Download with torchvision into a temporary folder, then move the finished files into the
    data root one by one (``os.replace``: a file is either complete or absent)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".download-"))
    try:
        _construct(name, split, tmp, download=True)
        for path in sorted(tmp.rglob("*")):
            # The archives are extracted already; the extracted files are what the loaders read.
            if path.is_file() and not path.name.endswith((".tar.gz", ".zip")):
                dest = root / path.relative_to(tmp)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- image folders ---------------------------------------------------------------------------


def imagefolder_test_mask(
    labels, share: float = IMAGEFOLDER_TEST_SHARE, seed: int = IMAGEFOLDER_TEST_SEED
) -> np.ndarray:
    """Which images of a folder without ``train/`` and ``test/`` form its test split.

    Stratified: ``round(share * n_c)`` images of every class c, but at least one of a class
    with two or more images and never all of them; drawn with ``default_rng(seed)``, class by
    class in label order, so the same files give the same mask.
    """
    labels = np.asarray(labels)
    if not 0 < share < 1:
        raise ValueError(f"the test share must be between 0 and 1, got {share!r}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = len(members)
        k = min(max(int(round(share * n)), 1 if n >= 2 else 0), n - 1)
        mask[members[rng.permutation(n)[:k]]] = True
    return mask


def _load_imagefolder(name: str, split: str, image_size: int | None, resize: str) -> ImageDataset:
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import default_loader

    path = Path(name[len(IMAGEFOLDER_PREFIX) :]).expanduser()
    layout = (
        "class subfolders of images (<path>/<class>/<image>), optionally split into "
        "<path>/train/<class>/... and <path>/test/<class>/..."
    )
    if not path.is_dir():
        raise DatasetUnavailable(f"{name}: {path} is not a folder; it should hold {layout}")
    has_splits = (path / "train").is_dir()
    folder = path / split if has_splits else path
    if not folder.is_dir():
        raise DatasetUnavailable(f"{name}: {folder} does not exist; it should hold {layout}")
    try:
        ds = ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetUnavailable(f"{name}: {_one_line(err)}; it should hold {layout}") from err

    samples = ds.samples
    holdout = None
    if not has_splits:
        # No train/ and test/: hold out a stratified share as the test split (the training
        # split is the rest, so the two never share an image).
        mask = imagefolder_test_mask([t for _, t in samples])
        if not mask.any():
            raise DatasetUnavailable(
                f"{name}: too few images to hold out a test split (every class has one image); "
                f"add images or split them into {path}/train/<class> and {path}/test/<class>"
            )
        files = [f for f, _ in samples]
        test_files = [os.path.relpath(f, folder) for f, m in zip(files, mask, strict=True) if m]
        holdout = {
            "share": IMAGEFOLDER_TEST_SHARE,
            "seed": IMAGEFOLDER_TEST_SEED,
            "n_images": len(samples),
            "test_files": test_files,
        }
        keep = mask if split == "test" else ~mask
        samples = [s for s, k in zip(samples, keep, strict=True) if k]

    images = []
    for file, _ in samples:
        x = TF.pil_to_tensor(default_loader(file))[None]  # RGB uint8 (1, 3, H, W)
        if image_size is not None:
            x = resize_images(x, image_size, resize)
        images.append(x)
    shapes = {tuple(x.shape[1:]) for x in images}
    if len(shapes) > 1:
        raise ValueError(
            f"{name}: images have different sizes {sorted(shapes)[:4]}; pass image_size= "
            f"to bring them to one size"
        )
    source = str(folder)
    if holdout is not None:
        source += (
            f" ({split}: {len(samples)} of {len(ds.samples)} images; the test split is a "
            f"stratified {IMAGEFOLDER_TEST_SHARE:.0%} of every class, seed {IMAGEFOLDER_TEST_SEED})"
        )
    return ImageDataset(
        name,
        split,
        torch.cat(images),
        torch.as_tensor([t for _, t in samples], dtype=torch.int64),
        list(ds.classes),
        source=source,
        test_holdout=holdout,
        files=[os.path.relpath(f, folder) for f, _ in samples],
    )


# --- helpers for other data sets -----------------------------------------------------------


def default_other_dataset(dataset: str) -> str:
    """The second probe data set of a profile: scikit-learn's digits, or Fashion-MNIST when the
    encoder was pre-trained on digits (both are available offline)."""
    return "fashion-mnist" if canonical_name(dataset) == "digits" else "digits"


def default_donor_dataset(dataset: str, channels: int) -> str:
    """A7's donor data set: another one whose images have ``channels`` channels, so that the
    donor's layers fit the encoder they are swapped into. For the colour data sets of
    torchvision (the paper's CIFAR-10, ...) SVHN (CIFAR-10 for SVHN); otherwise digits
    (Fashion-MNIST for digits), available offline. A colour folder of your own therefore
    needs a colour donor named (A7's ``donor_dataset``): digits' grey images do not fit.

    >>> default_donor_dataset("fashion-mnist", 1), default_donor_dataset("cifar10", 3)
    ('digits', 'svhn')
    """
    name = canonical_name(dataset)
    if channels == 3 and name in ("cifar10", "cifar100", "stl10", "svhn"):
        return "cifar10" if name == "svhn" else "svhn"
    return default_other_dataset(dataset)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 or float images (N, C, H, W) with ``channels`` channels: colour to grey by the
    mean over channels, grey to colour by repeating the channel."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 1:
        grey = images.float().mean(dim=1, keepdim=True)
        return grey.round().to(images.dtype) if images.dtype == torch.uint8 else grey
    if c == 1:
        return images.repeat(1, channels, 1, 1)
    raise ValueError(f"cannot turn {c}-channel images into {channels}-channel ones")


# --- command line ----------------------------------------------------------------------------


def prepare(name: str = "fashion-mnist", *, root=None, download: bool = True) -> list[ImageDataset]:
    """Make sure both splits of ``name`` load (finding, decompressing or downloading them)."""
    return [load_dataset(name, split, root=root, download=download) for split in SPLITS]


def main(argv: list[str] | None = None) -> int:
    """``python -m memloc.data prepare NAME``: exit 0 when the dataset loads, 2 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m memloc.data")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="find, decompress or download a dataset")
    p.add_argument("name", nargs="?", default="fashion-mnist")
    p.add_argument("--root", default=None, help="data root (default: $MEMLOC_DATA or <repo>/data)")
    p.add_argument("--no-download", action="store_true", help="only use local files")
    args = parser.parse_args(argv)
    try:
        datasets = prepare(args.name, root=args.root, download=not args.no_download)
    except (DatasetUnavailable, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    for ds in datasets:
        c, h, w = ds.images.shape[1:]
        print(f"{ds.name} {ds.split}: {len(ds)} images {c}x{h}x{w}, from {ds.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
