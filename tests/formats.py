"""Tiny datasets written in the real on-disk formats the torchvision loaders read.

Every writer returns the arrays it wrote, so tests can compare what a loader returns with
what went into the files. Images are random uint8 noise from a seeded generator.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def md5(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


# --- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------


def idx_images_bytes(images: np.ndarray) -> bytes:
    """IDX3 file: magic 0x00000803, big-endian counts (n, rows, cols), then uint8 pixels."""
    n, rows, cols = images.shape
    return struct.pack(">IIII", 0x803, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray) -> bytes:
    """IDX1 file: magic 0x00000801, big-endian count n, then uint8 labels."""
    return struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()


def write_idx_dataset(
    folder: str | Path, n_train: int = 12, n_test: int = 5, size: int = 28, gz: bool = True, seed=0
) -> dict[str, np.ndarray]:
    """The four (Fashion-)MNIST IDX files in ``folder`` (``.gz`` when ``gz``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    payloads = [
        idx_images_bytes(arrays["train_images"]),
        idx_labels_bytes(arrays["train_labels"]),
        idx_images_bytes(arrays["test_images"]),
        idx_labels_bytes(arrays["test_labels"]),
    ]
    for name, payload in zip(IDX_FILES, payloads, strict=True):
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
    return arrays


# --- CIFAR-10 / CIFAR-100 (pickled python dicts) -------------------------------------------------


def _cifar_rows(images_nhwc: np.ndarray) -> np.ndarray:
    # The batches store each image as 3072 bytes: the red plane, then green, then blue.
    return images_nhwc.transpose(0, 3, 1, 2).reshape(len(images_nhwc), -1)


def _pickle(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(root: str | Path, per_batch: int = 2, n_test: int = 3, seed: int = 0) -> dict:
    """``<root>/cifar-10-batches-py`` with data_batch_1..5, test_batch and batches.meta.

    Returns the images (N, 32, 32, 3), labels and the md5 of every file written.
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed)
    train = rng.integers(0, 256, (5 * per_batch, 32, 32, 3), dtype=np.uint8)
    train_labels = rng.integers(0, 10, 5 * per_batch).tolist()
    test = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
    test_labels = rng.integers(0, 10, n_test).tolist()
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch)
        _pickle(
            folder / f"data_batch_{b + 1}",
            {
                "batch_label": f"training batch {b + 1} of 5",
                "labels": train_labels[part],
                "data": _cifar_rows(train[part]),
                "filenames": [f"img{i}.png" for i in range(per_batch)],
            },
        )
    _pickle(
        folder / "test_batch",
        {"batch_label": "testing batch 1 of 1", "labels": test_labels, "data": _cifar_rows(test)},
    )
    classes = ["airplane", "automobile", "bird", "cat", "deer"]
    classes += ["dog", "frog", "horse", "ship", "truck"]
    _pickle(
        folder / "batches.meta",
        {"label_names": classes, "num_cases_per_batch": per_batch, "num_vis": 3072},
    )
    return {
        "train_images": train,
        "train_labels": train_labels,
        "test_images": test,
        "test_labels": test_labels,
        "classes": classes,
        "md5": {p.name: md5(p) for p in folder.iterdir()},
    }


def write_cifar100(root: str | Path, n_train: int = 6, n_test: int = 3, seed: int = 0) -> dict:
    """``<root>/cifar-100-python`` with train, test and meta (fine and coarse labels)."""
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed)
    out = {"classes": [f"class{i:02d}" for i in range(100)]}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        _pickle(
            folder / split,
            {
                "filenames": [f"img{i}.png" for i in range(n)],
                "batch_label": f"{split} batch",
                "fine_labels": fine,
                "coarse_labels": [f // 5 for f in fine],
                "data": _cifar_rows(images),
            },
        )
        out[f"{split}_images"], out[f"{split}_labels"] = images, fine
    _pickle(
        folder / "meta",
        {
            "fine_label_names": out["classes"],
            "coarse_label_names": [f"super{i}" for i in range(20)],
        },
    )
    out["md5"] = {p.name: md5(p) for p in folder.iterdir()}
    return out


# --- SVHN (MATLAB .mat) ------------------------------------------------------------------------


def write_svhn(folder: str | Path, split: str = "train", n: int = 7, seed: int = 0) -> dict:
    """``<folder>/<split>_32x32.mat`` with X (32, 32, 3, N) uint8 and y (N, 1) in 1..10 (10 = 0)."""
    import scipy.io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % 10 + 1  # every label 1..10 shows up, 10 included
    path = folder / f"{split}_32x32.mat"
    scipy.io.savemat(path, {"X": images.transpose(1, 2, 3, 0), "y": y.reshape(-1, 1)})
    return {"images": images, "y": y, "md5": md5(path), "filename": path.name}


# --- STL10 (raw binaries) ----------------------------------------------------------------------


def _stl_bytes(images_nhwc: np.ndarray) -> bytes:
    # Column-major per channel, as in the original MATLAB export: (N, C, W, H) in C order.
    return images_nhwc.transpose(0, 3, 2, 1).tobytes()


def write_stl10(root: str | Path, n_train: int = 4, n_test: int = 3, seed: int = 0) -> dict:
    """``<root>/stl10_binary`` with train/test X and y, a one-image unlabeled_X.bin and
    class_names.txt. Labels on disk are 1..10."""
    folder = Path(root) / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed)
    out = {"classes": ["airplane", "bird", "car", "cat", "deer"]}
    out["classes"] += ["dog", "horse", "monkey", "ship", "truck"]
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
        labels = rng.integers(1, 11, n).astype(np.uint8)
        (folder / f"{split}_X.bin").write_bytes(_stl_bytes(images))
        (folder / f"{split}_y.bin").write_bytes(labels.tobytes())
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    unlabeled = rng.integers(0, 256, (1, 96, 96, 3), dtype=np.uint8)
    (folder / "unlabeled_X.bin").write_bytes(_stl_bytes(unlabeled))
    (folder / "class_names.txt").write_text("\n".join(out["classes"]) + "\n")
    out["md5"] = {p.name: md5(p) for p in folder.iterdir()}
    return out


# --- image folders -----------------------------------------------------------------------------


def write_image_folder(
    folder: str | Path,
    classes=("cat", "dog"),
    per_class: int = 2,
    size: tuple[int, int] = (10, 10),
    mode: str = "RGB",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """PNG files ``<folder>/<class>/<i>.png``; returns {relative path: pixels (H, W, C)}."""
    folder = Path(folder)
    rng = _rng(seed)
    written = {}
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            channels = 3 if mode == "RGB" else 1
            pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode=mode).save(
                folder / c / f"{i}.png"
            )
            written[f"{c}/{i}.png"] = pixels
    return written


# --- checksums -----------------------------------------------------------------------------------


def expect_checksums(monkeypatch, cls, md5s: dict[str, str]) -> None:
    """Make torchvision's class ``cls`` expect our files' md5 instead of the originals'.

    CIFAR, SVHN and STL10 compare every file with a fixed md5 of the real data set, which no
    small file can match. The check itself still runs, against the md5 of the files written
    here: only the table of expected values is replaced, for the duration of one test.
    """
    for attr in ("train_list", "test_list"):
        if hasattr(cls, attr):
            table = [[f, md5s.get(f, h)] for f, h in getattr(cls, attr)]
            monkeypatch.setattr(cls, attr, table)
    if hasattr(cls, "meta"):
        meta = dict(cls.meta)
        meta["md5"] = md5s.get(meta["filename"], meta["md5"])
        monkeypatch.setattr(cls, "meta", meta)
    if hasattr(cls, "split_list"):
        table = {k: [url, f, md5s.get(f, h)] for k, (url, f, h) in cls.split_list.items()}
        monkeypatch.setattr(cls, "split_list", table)


def write_paper_data(root: str | Path, n_train: int = 120, n_test: int = 60) -> dict[str, str]:
    """Stand-ins of the paper profile's data sets under ``root`` (CIFAR-10, SVHN, STL10) in
    the real formats, ``n_train`` training and ``n_test`` test images each; returns the md5
    of every file, for :func:`expect_checksums` (or :func:`write_checksum_site`)."""
    root = Path(root)
    per_batch = -(-n_train // 5)
    md5s = dict(write_cifar10(root, per_batch=per_batch, n_test=n_test)["md5"])
    for split, n in (("train", n_train), ("test", n_test)):
        written = write_svhn(root / "svhn", split, n=n)
        md5s[written["filename"]] = written["md5"]
    md5s.update(write_stl10(root, n_train=n_train, n_test=n_test)["md5"])
    return md5s


def write_checksum_site(folder: str | Path, md5s: dict[str, str]) -> Path:
    """A ``sitecustomize.py`` in ``folder`` that makes torchvision's CIFAR, SVHN and STL10
    expect ``md5s`` in every Python process started with ``folder`` on ``PYTHONPATH``: the
    workflow's train jobs and notebook kernels are processes of their own, which a
    monkeypatch in the test's process does not reach. Returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import torchvision.datasets as tvd\n"
        "from formats import expect_checksums\n"
        "class _Set:  # a monkeypatch that sets for the life of the process\n"
        "    setattr = staticmethod(setattr)\n"
        f"_md5s = json.loads({json.dumps(json.dumps(md5s))})\n"
        "for _cls in (tvd.CIFAR10, tvd.SVHN, tvd.STL10):\n"
        "    expect_checksums(_Set, _cls, _md5s)\n"
    )
    return folder
