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


def test_layermem_on_user_checkpoints_writes_csv_and_provenance(tmp_path):
    """Your own weights, the profile's data: f identical to g gives SSLMem 0 at every layer."""
    import json

    import pandas as pd
    from safetensors.torch import save_file

    from memloc.models import create

    torch.manual_seed(0)
    encoder = create("resnet9", in_channels=1, width=0.125)
    save_file(encoder.state_dict(), tmp_path / "w.safetensors")
    out = tmp_path / "out"
    main(
        [
            "--cache-dir", str(tmp_path / "cache"),
            "layermem", "--profile", "quick", "--n-points", "12", "--k-aug", "2",
            "--checkpoint-f", str(tmp_path / "w.safetensors"),
            "--checkpoint-g", str(tmp_path / "w.safetensors"),
            "--arch", "resnet9", "--arch-kwargs", '{"in_channels": 1, "width": 0.125}',
            "--out", str(out),
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
    assert provenance["n_points"] == 12 and provenance["k_aug"] == 2
    assert not (tmp_path / "cache").exists()  # nothing was trained


def test_cli_offers_every_framework():
    from memloc.cli import FRAMEWORK_CHOICES
    from memloc.ssl import FRAMEWORKS

    assert sorted(FRAMEWORK_CHOICES) == sorted(FRAMEWORKS)
