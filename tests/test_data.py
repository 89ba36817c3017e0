"""memloc.data: the real torchvision loaders read small files written in the real formats."""

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from formats import (
    IDX_FILES,
    expect_checksums,
    idx_images_bytes,
    write_cifar10,
    write_cifar100,
    write_idx_dataset,
    write_image_folder,
    write_stl10,
    write_svhn,
)

from memloc import data
from memloc.data import (
    DatasetUnavailable,
    ImageDataset,
    imagefolder_test_mask,
    load_dataset,
    resize_images,
)

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh data root and no Debian files, unless a test puts them somewhere."""
    monkeypatch.setenv("MEMLOC_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MEMLOC_SYSTEM_DATA", str(tmp_path / "no-system-data"))
    return tmp_path / "data"


def _files(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, hidden temporaries included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --- where the data root is -------------------------------------------------------------------


def test_data_root_env_argument_and_default(tmp_path, monkeypatch):
    assert data.data_root() == tmp_path / "data"
    assert data.data_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("MEMLOC_DATA")
    assert data.data_root() == Path(data.__file__).resolve().parent.parent / "data"


# --- (Fashion-)MNIST: IDX files ---------------------------------------------------------------


def test_fashion_mnist_from_decompressed_idx_files_in_the_data_root(isolated):
    arrays = write_idx_dataset(isolated / "FashionMNIST" / "raw", n_train=12, n_test=5, gz=False)
    train = load_dataset("fashion-mnist", download=False)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.equal(train.images[:, 0], torch.from_numpy(arrays["train_images"]))
    assert train.labels.dtype == torch.int64
    assert train.labels.tolist() == arrays["train_labels"].tolist()
    assert train.classes[0] == "T-shirt/top" and len(train.classes) == 10
    assert (train.name, train.split, train.channels, train.image_size) == (
        "fashion-mnist",
        "train",
        1,
        28,
    )
    test = load_dataset("fashion-mnist", "test", download=False)
    assert torch.equal(test.images[:, 0], torch.from_numpy(arrays["test_images"]))


def test_mnist_gz_files_in_the_data_root_are_decompressed_in_place(isolated):
    raw = isolated / "MNIST" / "raw"
    arrays = write_idx_dataset(raw, n_train=6, n_test=4, gz=True, seed=1)
    test = load_dataset("mnist", "test", download=False)
    assert torch.equal(test.images[:, 0], torch.from_numpy(arrays["test_images"]))
    assert "decompressed" in test.source
    assert all((raw / f).is_file() for f in IDX_FILES)
    assert not [f for f in _files(raw) if f.startswith(".")]


def test_fashion_mnist_falls_back_to_the_debian_files(tmp_path, isolated, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    arrays = write_idx_dataset(system, n_train=12, n_test=5, gz=True, seed=2)
    monkeypatch.setenv("MEMLOC_SYSTEM_DATA", str(system))
    first = load_dataset("fashion-mnist", download=False)
    assert str(system) in first.source
    assert torch.equal(first.images[:, 0], torch.from_numpy(arrays["train_images"]))
    # Decompressed once into the data root, without leftovers; the next load reads them there.
    assert _files(isolated) == ["FashionMNIST", "FashionMNIST/raw"] + [
        f"FashionMNIST/raw/{f}" for f in sorted(IDX_FILES)
    ]
    second = load_dataset("fashion-mnist", "test", download=False)
    assert second.source == str(isolated / "FashionMNIST" / "raw")
    assert second.labels.tolist() == arrays["test_labels"].tolist()


def test_default_system_path_is_the_debian_packages():
    assert data.SYSTEM_FASHION_MNIST == Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_broken_debian_files_give_one_clear_error_and_leave_nothing(
    tmp_path, isolated, monkeypatch, damage
):
    system = tmp_path / "system"
    write_idx_dataset(system, gz=True)
    if damage == "missing":
        (system / "t10k-labels-idx1-ubyte.gz").unlink()
    else:
        # A valid gzip stream whose IDX header promises more images than it holds.
        import gzip

        images = np.zeros((3, 28, 28), np.uint8)
        payload = idx_images_bytes(images)[:-100]
        (system / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(payload))
    monkeypatch.setenv("MEMLOC_SYSTEM_DATA", str(system))
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("fashion-mnist", download=False)
    message = str(err.value)
    assert "'fashion-mnist'" in message
    assert "make data" in message and "apt-get install dataset-fashion-mnist" in message
    assert str(isolated / "FashionMNIST" / "raw") in message
    assert ("missing t10k-labels" if damage == "missing" else "header promises") in message
    # The three intact files may be in place, never the broken one nor a temporary file.
    left = _files(isolated / "FashionMNIST" / "raw")
    assert "t10k-images-idx3-ubyte" not in left and "t10k-labels-idx1-ubyte" not in left
    assert not [f for f in left if f.startswith(".")]


# --- downloads --------------------------------------------------------------------------------


def test_failed_download_leaves_nothing_half_written(isolated, monkeypatch):
    def partial_download(self):
        # What an interrupted download looks like: a folder with a truncated file.
        folder = Path(self.root) / self.base_folder
        folder.mkdir(parents=True)
        (folder / "data_batch_1").write_bytes(b"\x80\x02 truncated")
        raise URLError("no route to host")

    monkeypatch.setattr(tvd.CIFAR10, "download", partial_download)
    with pytest.raises(DatasetUnavailable, match="no route to host") as err:
        load_dataset("cifar10")
    assert "extract cifar-10-python.tar.gz" in str(err.value)
    assert _files(isolated) == []


def test_successful_download_is_moved_into_the_data_root(isolated, monkeypatch):
    written = {}

    def fake_download(self):
        written.update(write_cifar10(self.root))
        (Path(self.root) / "cifar-10-python.tar.gz").write_bytes(b"archive")

    monkeypatch.setattr(tvd.CIFAR10, "download", fake_download)
    expect_checksums(monkeypatch, tvd.CIFAR10, write_cifar10(isolated.parent / "md5s")["md5"])
    ds = load_dataset("cifar10", "test")
    assert "download" in ds.source
    assert ds.labels.tolist() == written["test_labels"]
    # The extracted files are in place; the archive and the temporary folder are gone.
    assert _files(isolated) == ["cifar-10-batches-py"] + sorted(
        f"cifar-10-batches-py/{f}" for f in written["md5"]
    )


def test_download_false_never_calls_torchvision_download(monkeypatch):
    def forbidden(self):
        raise AssertionError("download was attempted")

    monkeypatch.setattr(tvd.MNIST, "download", forbidden)
    with pytest.raises(DatasetUnavailable, match=r"download: not allowed"):
        load_dataset("mnist", download=False)


# --- CIFAR, SVHN, STL10 -------------------------------------------------------------------------


def test_cifar10_batches(isolated, monkeypatch):
    out = write_cifar10(isolated, per_batch=2, n_test=3)
    expect_checksums(monkeypatch, tvd.CIFAR10, out["md5"])
    train = load_dataset("cifar10", download=False)
    assert train.images.shape == (10, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(out["train_images"]).permute(0, 3, 1, 2))
    assert train.labels.tolist() == out["train_labels"]
    assert train.classes == out["classes"]
    test = load_dataset("cifar10", "test", download=False)
    assert torch.equal(test.images, torch.from_numpy(out["test_images"]).permute(0, 3, 1, 2))


def test_cifar10_integrity_check_still_runs(isolated, monkeypatch):
    out = write_cifar10(isolated)
    expect_checksums(monkeypatch, tvd.CIFAR10, out["md5"])
    batch = isolated / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1])
    with pytest.raises(DatasetUnavailable, match="not found or corrupted"):
        load_dataset("cifar10", download=False)


def test_cifar100_uses_the_fine_labels(isolated, monkeypatch):
    out = write_cifar100(isolated, n_train=6, n_test=3)
    expect_checksums(monkeypatch, tvd.CIFAR100, out["md5"])
    train = load_dataset("cifar-100", download=False)
    assert train.name == "cifar100" and len(train.classes) == 100
    assert train.labels.tolist() == out["train_labels"]
    assert torch.equal(train.images, torch.from_numpy(out["train_images"]).permute(0, 3, 1, 2))


def test_svhn_mat_files(isolated, monkeypatch):
    out = write_svhn(isolated / "svhn", "test", n=12)
    expect_checksums(monkeypatch, tvd.SVHN, {out["filename"]: out["md5"]})
    ds = load_dataset("svhn", "test", download=False)
    assert ds.images.shape == (12, 3, 32, 32)
    assert torch.equal(ds.images, torch.from_numpy(out["images"]).permute(0, 3, 1, 2))
    # SVHN stores the digit 0 as label 10.
    assert ds.labels.tolist() == [y % 10 for y in out["y"]]
    assert ds.classes == [str(d) for d in range(10)]


def test_stl10_binaries(isolated, monkeypatch):
    out = write_stl10(isolated, n_train=4, n_test=3)
    expect_checksums(monkeypatch, tvd.STL10, out["md5"])
    train = load_dataset("stl10", download=False)
    assert train.images.shape == (4, 3, 96, 96)
    assert torch.equal(train.images, torch.from_numpy(out["train_images"]).permute(0, 3, 1, 2))
    assert train.labels.tolist() == (out["train_labels"].astype(int) - 1).tolist()
    assert train.classes == out["classes"]
    test = load_dataset("stl10", "test", image_size=32, resize="resize", download=False)
    assert test.images.shape == (3, 3, 32, 32)


# --- scikit-learn digits ------------------------------------------------------------------------


def test_digits_offline_in_uint8_range():
    from sklearn.datasets import load_digits

    raw = load_digits()
    train, test = load_dataset("digits"), load_dataset("digits", "test")
    assert (len(train), len(test)) == (1500, 297)
    assert train.images.shape == (1500, 1, 8, 8) and train.images.dtype == torch.uint8
    assert int(train.images.min()) == 0 and int(train.images.max()) == 255
    # 0..16 maps linearly onto 0..255: 16 -> 255, 8 -> 128 (127.5 rounded to even).
    expected = np.rint(raw.images[-297:] * 255 / 16)
    np.testing.assert_array_equal(test.images[:, 0].numpy(), expected)
    assert test.labels.tolist() == raw.target[-297:].tolist()
    assert train.classes == [str(d) for d in range(10)]


# --- padding and resizing -----------------------------------------------------------------------


def test_pad_keeps_the_pixels_in_the_centre():
    x = torch.randint(1, 256, (5, 1, 28, 28), dtype=torch.uint8)
    y = resize_images(x, 32, "pad")
    assert y.shape == (5, 1, 32, 32) and y.dtype == torch.uint8
    assert torch.equal(y[:, :, 2:30, 2:30], x)
    border = y.clone()
    border[:, :, 2:30, 2:30] = 0
    assert int(border.sum()) == 0


def test_pad_with_an_odd_surplus_puts_the_extra_row_at_the_bottom_right():
    x = torch.full((1, 3, 8, 8), 7, dtype=torch.uint8)
    y = resize_images(x, 11, "pad")
    assert torch.equal(y[0, 0].nonzero().min(0).values, torch.tensor([1, 1]))
    assert torch.equal(y[0, 0].nonzero().max(0).values, torch.tensor([8, 8]))


def test_pad_to_a_smaller_size_is_refused():
    with pytest.raises(ValueError, match="cannot pad 28x28 images to 16x16.*resize='resize'"):
        resize_images(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), 16, "pad")


def test_resize_keeps_constant_images_constant_and_the_mean():
    flat = torch.full((2, 3, 8, 8), 200, dtype=torch.uint8)
    assert torch.equal(resize_images(flat, 32, "resize"), torch.full((2, 3, 32, 32), 200))
    digits = load_dataset("digits", "test", image_size=16, resize="resize")
    assert digits.images.shape == (297, 1, 16, 16) and digits.images.dtype == torch.uint8
    original = load_dataset("digits", "test").images.float().mean()
    assert abs(float(digits.images.float().mean()) - float(original)) < 2.0
    shrunk = resize_images(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), 16, "resize")
    assert shrunk.shape == (1, 1, 16, 16)


def test_load_dataset_pads_fashion_mnist_to_32(isolated):
    write_idx_dataset(isolated / "FashionMNIST" / "raw", gz=False)
    native = load_dataset("fashion-mnist", download=False)
    padded = load_dataset("fashion-mnist", image_size=32, download=False)
    assert padded.image_size == 32
    assert torch.equal(padded.images[:, :, 2:30, 2:30], native.images)


def test_same_size_is_a_no_op():
    x = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    assert resize_images(x, 8, "resize") is x and resize_images(x, 8, "pad") is x


# --- image folders ------------------------------------------------------------------------------


def test_imagefolder_flat_layout_holds_out_a_stratified_test_split(tmp_path):
    """Class sub-folders without train/ and test/: 20% of every class is the test split."""
    written = write_image_folder(tmp_path / "pics", classes=("a", "b", "c"), per_class=10)
    name = f"imagefolder:{tmp_path / 'pics'}"
    train, test = load_dataset(name), load_dataset(name, "test")
    assert train.classes == test.classes == ["a", "b", "c"]
    # round(0.2 * 10) = 2 test images of each class, the other 8 train.
    assert test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert train.labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    # Every image is in exactly one split, with its own pixels.
    files = test.test_holdout["test_files"]
    assert train.test_holdout == test.test_holdout and len(files) == 6
    for i, f in enumerate(files):
        assert torch.equal(test.images[i], torch.from_numpy(written[f]).permute(2, 0, 1))
    pool = {tuple(v.transpose(2, 0, 1).flatten().tolist()) for v in written.values()}
    seen = [tuple(x.flatten().tolist()) for x in torch.cat([train.images, test.images])]
    assert len(set(seen)) == 30 and set(seen) == pool
    # Deterministic: the same folder gives the same split.
    assert load_dataset(name, "test").test_holdout["test_files"] == files
    # Each image keeps its file name, through subsets too (reports name the images).
    assert test.files == files and set(train.files) == set(written) - set(files)
    for dataset in (train, train.subset([5, 0, 17]), train.subset(train.labels == 1)):
        for x, f in zip(dataset.images, dataset.files, strict=True):
            assert torch.equal(x, torch.from_numpy(written[f]).permute(2, 0, 1))


def test_imagefolder_test_mask_rules():
    labels = [0] * 3 + [1] * 1 + [2] * 2 + [3] * 50
    mask = imagefolder_test_mask(labels, share=0.2, seed=0)
    counts = [int(mask[np.asarray(labels) == c].sum()) for c in range(4)]
    # round(0.6) = 1; a class of one image keeps it; at least one of two; round(10) = 10.
    assert counts == [1, 0, 1, 10]
    assert np.array_equal(mask, imagefolder_test_mask(labels, share=0.2, seed=0))
    assert not np.array_equal(mask, imagefolder_test_mask(labels, share=0.2, seed=1))
    with pytest.raises(ValueError, match="between 0 and 1"):
        imagefolder_test_mask(labels, share=1.0)


def test_imagefolder_of_single_images_cannot_hold_out_a_test_split(tmp_path):
    write_image_folder(tmp_path / "one", classes=("a", "b"), per_class=1)
    with pytest.raises(DatasetUnavailable, match="too few images.*train/<class>"):
        load_dataset(f"imagefolder:{tmp_path / 'one'}")


def test_imagefolder_train_test_layout_and_resizing(tmp_path):
    write_image_folder(tmp_path / "p" / "train", per_class=3, size=(12, 12))
    write_image_folder(tmp_path / "p" / "test", per_class=1, size=(12, 12), mode="L", seed=1)
    train = load_dataset(f"imagefolder:{tmp_path / 'p'}", image_size=16)
    test = load_dataset(f"imagefolder:{tmp_path / 'p'}", "test", image_size=8, resize="resize")
    assert train.images.shape == (6, 3, 16, 16) and test.images.shape == (2, 3, 8, 8)
    # Grayscale PNGs come back as RGB with three equal channels.
    assert torch.equal(test.images[:, 0], test.images[:, 2])


def test_imagefolder_mixed_sizes_need_an_image_size(tmp_path):
    write_image_folder(tmp_path / "m", classes=("a",), per_class=2, size=(10, 10))
    write_image_folder(tmp_path / "m", classes=("b",), per_class=2, size=(14, 9), seed=2)
    with pytest.raises(ValueError, match="different sizes.*image_size"):
        load_dataset(f"imagefolder:{tmp_path / 'm'}")
    assert load_dataset(f"imagefolder:{tmp_path / 'm'}", image_size=14).images.shape[1:] == (
        3,
        14,
        14,
    )


def test_imagefolder_missing_or_empty(tmp_path):
    with pytest.raises(DatasetUnavailable, match="is not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetUnavailable, match="class subfolders"):
        load_dataset(f"imagefolder:{tmp_path / 'empty'}")


# --- names, arguments, the dataset object -------------------------------------------------------


def test_unknown_names_and_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*fashion-mnist.*stl10"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", "val")
    with pytest.raises(ValueError, match="resize"):
        load_dataset("digits", resize="crop")
    assert data.canonical_name("Fashion_MNIST") == "fashion-mnist"
    assert data.canonical_name("CIFAR-10") == "cifar10"


def test_subset_and_validation():
    ds = load_dataset("digits", "test")
    sub = ds.subset(np.array([5, 0, 5]))
    assert torch.equal(sub.images, ds.images[[5, 0, 5]])
    assert sub.labels.tolist() == ds.labels[[5, 0, 5]].tolist()
    assert (sub.name, sub.split, sub.classes) == (ds.name, ds.split, ds.classes)
    mask = ds.labels == 3
    assert len(ds.subset(mask)) == int(mask.sum())
    assert len(ds.subset(torch.arange(10))) == 10
    assert "n=297" in repr(ds)
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset("x", "train", torch.zeros(2, 1, 4, 4), torch.zeros(2), [])
    with pytest.raises(ValueError, match="labels"):
        ImageDataset("x", "train", torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3), [])


# --- the command line ---------------------------------------------------------------------------


def test_prepare_command(tmp_path, isolated, monkeypatch, capsys):
    assert data.main(["prepare", "fashion-mnist", "--no-download"]) == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err
    system = tmp_path / "system"
    write_idx_dataset(system, gz=True)
    monkeypatch.setenv("MEMLOC_SYSTEM_DATA", str(system))
    assert data.main(["prepare", "fashion-mnist", "--no-download"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist train: 12 images 1x28x28" in out and str(system) in out


# --- the real Fashion-MNIST, where the Debian package is installed ------------------------------


@pytest.mark.skipif(
    not (REAL_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="the Debian package dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setenv("MEMLOC_SYSTEM_DATA", str(REAL_FASHION_MNIST))
    train = load_dataset("fashion-mnist", download=False)
    test = load_dataset("fashion-mnist", "test", image_size=32, download=False)
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.images.shape[1:] == (1, 28, 28) and test.images.shape[1:] == (1, 32, 32)
    assert len(train.classes) == 10
    assert torch.bincount(train.labels).tolist() == [6000] * 10
