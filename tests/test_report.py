"""`memloc report`: your folder and checkpoints through the book's notebooks to an HTML report."""

import hashlib
import json

import pandas as pd
import pytest
import torch
from formats import write_image_folder
from safetensors.torch import save_file

from memloc.artifacts import checkpoint_pair
from memloc.cli import main
from memloc.models import create
from memloc.profiles import load_profile
from memloc.report import report_pages

# What `memloc train --profile auto` saves for RGB images: the profile's ResNet9 and width.
ARCH_KWARGS = {"in_channels": 3, "width": load_profile("auto").width}


@pytest.fixture(scope="module")
def folder_and_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    write_image_folder(root / "pics", classes=("a", "b", "c"), per_class=30, size=(16, 16))
    paths = {}
    for role, seed in (("f", 1), ("g", 2)):
        torch.manual_seed(seed)
        paths[role] = root / f"{role}.safetensors"
        save_file(create("resnet9", **ARCH_KWARGS).state_dict(), paths[role])
    return root, paths


def _args(root, paths, *more):
    # No --arch: the profile's architecture, its width and the data's channels.
    return [
        "report",
        "--dataset", f"imagefolder:{root / 'pics'}",
        "--checkpoint-f", str(paths["f"]),
        "--k-aug", "2",
        *more,
    ]  # fmt: skip


def test_a_report_on_a_folder_and_two_checkpoints(folder_and_checkpoints, tmp_path, monkeypatch):
    root, paths = folder_and_checkpoints
    monkeypatch.setenv("MEMLOC_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report"
    main(_args(root, paths, "--checkpoint-g", str(paths["g"]), "--out", str(out)))

    html = out / "_build" / "html"
    assert (html / "index.html").exists()
    assert (html / "pages" / "t1_layermem.html").exists() and (
        html / "pages" / "units.html"
    ).exists()
    summary = json.loads((out / "report.json").read_text())
    for role in ("f", "g"):
        expected = hashlib.sha256(paths[role].read_bytes()).hexdigest()
        assert summary["checkpoints"][role]["sha256"] == expected
        # Every page's provenance names the files it read.
        for page in ("t1_layermem", "units"):
            assert expected in (out / "pages" / f"{page}.ipynb").read_text()
    # 90 images, 18 held out as the test split: S_S/S_C/S_I/H = 28/14/14/14.
    assert summary["sizes"] == {
        "train": 72,
        "test": 18,
        "shared": 28,
        "candidate": 14,
        "independent": 14,
        "heldout": 14,
    }
    assert set(summary["pages"]) == {"t1_layermem", "units"}

    per_image = pd.read_csv(out / "pages" / "t1_layermem" / "layermem_per_image.csv")
    assert per_image.groupby("set")["point"].nunique().to_dict() == {
        "candidate": 14,
        "heldout": 14,
        "independent": 14,
    }
    # The file names are the folder's and the labels those of their class folder.
    assert all((root / "pics" / f).exists() for f in per_image["file"])
    assert (per_image["file"].str[0] == per_image["label"].map(dict(enumerate("abc")))).all()
    # No image is in two sets.
    assert per_image.groupby("file")["set"].nunique().max() == 1

    units = pd.read_csv(out / "pages" / "units" / "unitmem_per_unit.csv")
    assert units["layer"].drop_duplicates().tolist() == [
        p.name for p in create("resnet9", **ARCH_KWARGS).measurement_points()
    ]
    images = pd.read_csv(out / "pages" / "units" / "mu_max_images.csv")
    assert len(images) == 14 and (images["units"] >= images["top_units"]).all()
    assert images["units"].sum() >= units["defined"].sum()  # one μ_max per defined unit
    assert (out / "pages" / "units" / "classmem_per_unit.csv").exists()  # 3 classes
    # The CSVs are downloads of the front page.
    downloads = {p.name for p in (html / "_downloads").rglob("*.csv")}
    assert {"layermem_per_image.csv", "unitmem_per_unit.csv", "mu_max_images.csv"} <= downloads


def test_without_g_the_report_reads_f_alone(folder_and_checkpoints, tmp_path, monkeypatch):
    assert [p.name for p in report_pages(with_g=True)] == ["t1_layermem", "units"]
    root, paths = folder_and_checkpoints
    monkeypatch.setenv("MEMLOC_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report"
    main(_args(root, paths, "--out", str(out), "--no-build"))
    summary = json.loads((out / "report.json").read_text())
    assert list(summary["pages"]) == ["units"] and list(summary["checkpoints"]) == ["f"]
    assert not (out / "pages" / "t1_layermem.ipynb").exists()
    front = (out / "index.md").read_text()
    assert "Without `--checkpoint-g` there is no g" in front
    assert "pages/units/unitmem_per_unit.csv" in front


def test_the_checkpoint_pair_hashes_are_the_files(folder_and_checkpoints):
    root, paths = folder_and_checkpoints
    pair = checkpoint_pair(
        "auto",
        {"f": str(paths["f"]), "arch": "resnet9", "arch_kwargs": {"width": ARCH_KWARGS["width"]}},
        dataset=f"imagefolder:{root / 'pics'}",
    )
    assert pair.g is None
    assert pair.hashes == {"f": hashlib.sha256(paths["f"].read_bytes()).hexdigest()}
    files = pair.files("candidate")
    assert len(files) == 14 and all((root / "pics" / f).exists() for f in files)
    with pytest.raises(ValueError, match="checkpoints needs 'f'"):
        checkpoint_pair("auto", {"g": str(paths["g"])}, dataset=f"imagefolder:{root / 'pics'}")


def test_a_wrong_checkpoint_stops_the_report_before_any_notebook(
    folder_and_checkpoints, tmp_path, capsys
):
    root, paths = folder_and_checkpoints
    wrong = tmp_path / "wide.safetensors"
    save_file(create("resnet9", in_channels=3, width=1.0).state_dict(), wrong)
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as info:
        main(_args(root, paths, "--checkpoint-g", str(wrong), "--out", str(out)))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "wide.safetensors" in err and "width" in err
    assert not (out / "pages").exists()
