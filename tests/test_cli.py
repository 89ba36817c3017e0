"""The `memloc` command: info, train (with a real kill and resume), clear errors."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from memloc.cli import main
from memloc.models import create

SMALL = [
    "n_shared=200",
    "n_candidate=100",
    "n_independent=100",
    "n_heldout=50",
    "n_downstream=0",
    "epochs=6",
    "batch_size=32",
    "snapshot_epochs=[]",
]


def _memloc(*args, cache):
    cmd = [sys.executable, "-m", "memloc.cli", "--cache-dir", str(cache), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_info_lists_profiles_encoders_and_points(capsys, tmp_path):
    main(["--cache-dir", str(tmp_path), "info"])
    out = capsys.readouterr().out
    assert "quick" in out and "cpu" in out and "paper" in out
    assert "1, 2, 3, 4, Res2, 5, 6, 7, 8, Res6" in out
    assert "fashion-mnist" in out


def test_unknown_profile_is_a_one_line_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--cache-dir", str(tmp_path), "train", "--profile", "huge"])
    assert exit_info.value.code == 2
    assert "known profiles" in capsys.readouterr().err


def _weights(cache: Path, role: str) -> dict:
    (entry,) = [p for p in cache.iterdir() if p.is_dir() and f"-{role}-" in p.name]
    return load_file(entry / "model.safetensors")


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_weights(tmp_path):
    """SIGKILL mid-training, start again: the entry ends with the uninterrupted run's weights."""
    args = ("train", "--profile", "quick", "--sequential", "--set", *SMALL)
    straight = _memloc(*args, cache=tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    run = _memloc(*args, cache=tmp_path / "killed")
    deadline = time.time() + 120
    checkpoint = None
    while time.time() < deadline and run.poll() is None:
        found = list((tmp_path / "killed").glob("*-f-*/checkpoints/last.pt"))
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.02)
    assert checkpoint is not None, "training never wrote a checkpoint"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert not list((tmp_path / "killed").glob("*-f-*/manifest.json")), "killed before finishing"

    resumed = _memloc(*args, cache=tmp_path / "killed")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    for role in ("f", "g"):
        a, b = _weights(tmp_path / "straight", role), _weights(tmp_path / "killed", role)
        assert all(torch.equal(a[k], b[k]) for k in a), role


TINY_ARCH = ["--arch", "resnet9", "--arch-kwargs", '{"in_channels": 1, "width": 0.125}']


def _saved_tiny_resnet(path):
    """A seeded ResNet9 (one channel, width 0.125, as ``TINY_ARCH`` says) saved at ``path``."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    encoder = create("resnet9", in_channels=1, width=0.125)
    save_file(encoder.state_dict(), path)
    return encoder


def test_layermem_on_user_checkpoints_writes_csv_and_provenance(tmp_path):
    """Your own weights, the profile's data: f identical to g gives SSLMem 0 at every layer."""
    import json

    import pandas as pd

    _saved_tiny_resnet(tmp_path / "w.safetensors")
    out = tmp_path / "out"
    main(
        [
            "--cache-dir", str(tmp_path / "cache"),
            "layermem", "--profile", "quick", "--n-points", "12", "--k-aug", "2",
            "--checkpoint-f", str(tmp_path / "w.safetensors"),
            "--checkpoint-g", str(tmp_path / "w.safetensors"),
            *TINY_ARCH, "--out", str(out),
        ]
    )  # fmt: skip
    table = pd.read_csv(out / "layermem.csv")
    assert list(table["layer"].astype(str)) == [
        "1",
        "2",
        "3",
        "4",
        "Res2",
        "5",
        "6",
        "7",
        "8",
        "Res6",
    ]
    assert (table["layermem_raw"] == 0).all()
    provenance = json.loads((out / "layermem.json").read_text())
    assert provenance["n_points"] == {"S_C": 12, "S_I": 12, "H": 12}
    assert provenance["k_aug"] == 2
    assert not (tmp_path / "cache").exists()  # nothing was trained


def test_cli_offers_every_framework():
    from memloc.cli import FRAMEWORK_CHOICES
    from memloc.ssl import FRAMEWORKS

    assert sorted(FRAMEWORK_CHOICES) == sorted(FRAMEWORKS)


# --- your data and your encoder -----------------------------------------------------------------


def test_a_folder_of_class_subfolders_works_end_to_end_with_profile_auto(tmp_path, capsys):
    """The README's path: PNGs in one sub-folder per class, `--profile auto`, no sizes given."""
    import json

    import pandas as pd
    from formats import write_image_folder

    write_image_folder(tmp_path / "pics", classes=("a", "b", "c"), per_class=30, size=(20, 20))
    cache = tmp_path / "cache"
    # Only the training length and the image side are set (for the test's time).
    data = ["dataset=imagefolder:" + str(tmp_path / "pics"), "image_size=16", "width=0.25"]
    run = ["--profile", "auto", "--set", *data, "epochs=2", "snapshot_epochs=[]"]
    main(["--cache-dir", str(cache), "train", "--sequential", *run])
    # 90 images: 6 per class held out as the test split, 72 train: S_S/S_C/S_I/H = 28/14/14/14.
    (f_entry,) = cache.glob("*-f-*")
    split = json.loads((f_entry / "splits.json").read_text())
    assert split["sizes"] == {
        "shared": 28,
        "candidate": 14,
        "independent": 14,
        "heldout": 14,
        "downstream": 0,
    }
    assert split["n_total"] == 72 and len(split["test_holdout"]["test_files"]) == 18
    assert not list(cache.glob("*.lock"))
    for command in ("unitmem", "layermem"):
        out = tmp_path / command
        main(["--cache-dir", str(cache), command, *run, "--k-aug", "2", "--out", str(out)])
        provenance = json.loads((out / f"{command}.json").read_text())
        expected = {"S_C": 14, "H": 14} if command == "unitmem" else {"S_C": 14, "S_I": 14, "H": 14}
        assert provenance["n_points"] == expected
        assert len(pd.read_csv(out / f"{command}.csv")) > 0
    assert "images: S_C = 14, H = 14" in capsys.readouterr().out


def test_unitmem_needs_one_checkpoint_and_reports_each_set(tmp_path, capsys):
    import json

    import pandas as pd

    from memloc.artifacts import user_pair
    from memloc.metrics import unitmem

    encoder = _saved_tiny_resnet(tmp_path / "f.safetensors")
    out = tmp_path / "out"
    main(
        [
            "--cache-dir", str(tmp_path / "cache"),
            "unitmem", "--profile", "quick", "--set", "n_heldout=5",
            "--n-points", "12", "--k-aug", "0",
            "--checkpoint-f", str(tmp_path / "f.safetensors"), *TINY_ARCH, "--out", str(out),
        ]
    )  # fmt: skip
    provenance = json.loads((out / "unitmem.json").read_text())
    # 12 candidates were asked and measured; H holds 5 images, and 5 were measured.
    assert provenance["n_points"] == {"S_C": 12, "H": 5} and provenance["k_aug"] == 0
    assert "images: S_C = 12, H = 5" in capsys.readouterr().out
    # K = 0 is taken as asked: the unaugmented images, as the library computes them.
    pair = user_pair("quick", encoder.eval(), n_heldout=5)
    direct = unitmem(encoder, pair.images("candidate", 12), k_aug=0).units
    table = pd.read_csv(out / "unitmem.csv")
    mine = table[table["encoder"] == "f on S_C (trained on them)"]
    assert mine["unitmem"].to_numpy() == pytest.approx(direct["unitmem"].to_numpy(), nan_ok=True)
    assert not (tmp_path / "cache").exists()  # nothing was trained


@pytest.mark.parametrize(
    "args, message",
    [
        (["unitmem", "--n-points", "0"], "--n-points must be at least 2, got 0"),
        (["layermem", "--k-aug", "0", "--checkpoint-g", "F"], "--k-aug must be at least 1, got 0"),
        (["unitmem", "--arch-kwargs", "{width: 1}"], "--arch-kwargs is not valid JSON"),
        (["layermem"], "layermem compares f with g: give --checkpoint-g too"),
    ],
)
def test_bad_measurement_options_are_one_line_errors(tmp_path, args, message):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    weights = create("resnet9", in_channels=1, width=0.125).state_dict()
    save_file(weights, tmp_path / "f.safetensors")
    checkpoint = ["--checkpoint-f", str(tmp_path / "f.safetensors"), "--arch", "resnet9"]
    arch = ["--arch-kwargs", '{"in_channels": 1, "width": 0.125}']
    args = [str(tmp_path / "f.safetensors") if a == "F" else a for a in args]
    command = [*args, *checkpoint] + ([] if "--arch-kwargs" in args else arch)
    with pytest.raises(SystemExit) as info:
        main(["--cache-dir", str(tmp_path / "cache"), *command, "--set", "n_heldout=5"])
    assert message in str(info.value.code)


@pytest.mark.parametrize(
    "override, message",
    [
        ("crop_scale=0.5", "profile key crop_scale must be a list, got 0.5"),
        ("epochs=abc", "profile key epochs must be an integer, got 'abc'"),
    ],
)
def test_bad_set_values_name_the_key(tmp_path, capsys, override, message):
    with pytest.raises(SystemExit) as info:
        main(["--cache-dir", str(tmp_path), "train", "--profile", "quick", "--set", override])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_whole_model_checkpoint_is_a_one_line_error(tmp_path, capsys):
    torch.save(create("resnet9", in_channels=1, width=0.125), tmp_path / "model.pt")
    with pytest.raises(SystemExit) as info:
        main(
            [
                "--cache-dir", str(tmp_path / "cache"), "unitmem", "--profile", "quick",
                "--checkpoint-f", str(tmp_path / "model.pt"), "--arch", "resnet9",
                "--arch-kwargs", '{"in_channels": 1, "width": 0.125}',
            ]
        )  # fmt: skip
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.pt holds pickled Python objects" in err


def test_unitmem_on_a_torchvision_checkpoint_and_an_image_folder(tmp_path):
    """The issue's setup: a torchvision ResNet18 state dict and a folder of class folders."""
    import json

    import pandas as pd
    import torchvision
    from formats import write_image_folder
    from safetensors.torch import save_file

    write_image_folder(tmp_path / "pics", classes=("a", "b", "c"), per_class=30, size=(32, 32))
    torch.manual_seed(0)
    save_file(torchvision.models.resnet18().state_dict(), tmp_path / "r18.safetensors")
    out = tmp_path / "out"
    main(
        [
            "--cache-dir", str(tmp_path / "cache"),
            "unitmem", "--profile", "auto",
            "--set", "dataset=imagefolder:" + str(tmp_path / "pics"),
            "--checkpoint-f", str(tmp_path / "r18.safetensors"),
            "--arch", "torchvision:resnet18", "--k-aug", "0", "--out", str(out),
        ]
    )  # fmt: skip
    table = pd.read_csv(out / "unitmem.csv")
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert list(table["layer"].drop_duplicates()) == blocks
    assert json.loads((out / "unitmem.json").read_text())["n_points"] == {"S_C": 14, "H": 14}
