"""The book's Snakemake workflow (workflow/Snakefile, memloc.workflow): the plan of jobs, the
dry run of every profile, the SLURM profile's resources and the code digest.

The dry runs write their plan into a temporary results folder and look for encoders in an
empty temporary cache, so they list every train job a fresh machine would run.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memloc import book, workflow
from memloc.utils import code_hash, repo_root

NOTEBOOKS = repo_root() / "notebooks"
PRESENT = [nb.name for nb in book.result_notebooks() if (NOTEBOOKS / f"{nb.name}.py").exists()]


def _job_stats(output: str) -> dict[str, int]:
    """The ``Job stats`` table of a Snakemake dry run: rule -> number of jobs."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in table.splitlines()[3:]]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[0] != "total"}


def _jobs(output: str) -> list[dict]:
    """Each job block of a dry run: its rule, output and resources."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        match = re.match(r"(?:local)?rule (\w+):", block)
        if not match:
            continue
        fields = dict(re.findall(r"^\s{4}(\w+): (.*)$", block, flags=re.MULTILINE))
        resources = dict(
            item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item
        )
        jobs.append({"rule": match.group(1), "output": fields.get("output"), **resources})
    return jobs


def _dry_run(tmp_path, profile, *, executor=None, prefix=(), env=None):
    config = {"results": str(tmp_path / "results"), "cache": str(tmp_path / "cache")}
    cmd = workflow.snakemake_command(profile, config=config, executor=executor, dry_run=True)
    if prefix:  # run snakemake's CLI through a Python prelude (stand-in checksums)
        cmd = [sys.executable, "-c", prefix[0], *prefix[1:]] + cmd[3:]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


def _needed(plan) -> set[str]:
    return {entry for entries in plan.notebooks.values() for entry in entries}


def test_plan_follows_the_notebooks_parameters():
    plan = workflow.book_plan("quick", ["t1_layermem", "f3c_unitmem_privacy"])
    shared = plan.notebooks["t1_layermem"]
    # T1 reads the shared pairs: f and g of SimCLR and of the supervised baseline.
    assert [e.split("-")[1] + "-" + e.split("-")[-2] for e in shared] == [
        "simclr-f",
        "simclr-g",
        "supervised-f",
        "supervised-g",
    ]
    # F3c: f alone per ε of the quick profile (1, 16), then the reference without DP-SGD.
    private = plan.notebooks["f3c_unitmem_privacy"]
    assert ["-dp1-" in private[0], "-dp16-" in private[1], "-dp" not in private[2]] == [True] * 3
    assert all(e.split("-")[-2] == "f" for e in private) and len(private) == 3
    # A parameter Papermill would inject reaches the plan: ε list and profile keys alike.
    fewer = workflow.book_plan("quick", ["f3c_unitmem_privacy"], {"epsilons": [16]})
    assert len(fewer.notebooks["f3c_unitmem_privacy"]) == 2
    reseeded = workflow.book_plan("quick", ["t1_layermem"], {"seed": 3})
    assert not set(reseeded.notebooks["t1_layermem"]) & set(shared)
    # The same plan twice names the same entries (the names are spec hashes).
    again = workflow.book_plan("quick", ["t1_layermem", "f3c_unitmem_privacy"])
    assert again.notebooks == plan.notebooks


def test_slurm_dry_run_trains_on_gpus_and_runs_notebooks_on_cpus(tmp_path):
    """`make book EXECUTOR=slurm` at quick: every encoder one GPU job, every notebook a CPU job,
    the claims page and the book on the submitting machine."""
    output = _dry_run(tmp_path, "quick", executor="slurm")
    plan = workflow.book_plan("quick", PRESENT)
    stats = _job_stats(output)
    assert stats["train"] == len(_needed(plan)) and stats["notebook"] == len(PRESENT)
    assert stats["claims"] == stats["book"] == 1
    jobs = _jobs(output)
    train = [j for j in jobs if j["rule"] == "train"]
    notebooks = [j for j in jobs if j["rule"] == "notebook"]
    assert len(train) == stats["train"] and len(notebooks) == stats["notebook"]
    assert {(j["gres"], j["slurm_partition"]) for j in train} == {("gpu:1", "gpu")}
    assert all("gres" not in j and j["slurm_partition"] == "cpu" for j in notebooks)
    assert {j["cpus_per_task"] for j in notebooks} == {"8"}
    trained = {Path(j["output"]).parent.name for j in train}
    assert trained == _needed(plan)
    # The plan the timing table reads was written next to the results.
    written = json.loads((tmp_path / "results" / "quick" / "plan.json").read_text())
    assert written["notebooks"] == plan.notebooks


@pytest.mark.parametrize("profile", ["cpu"])
def test_dry_run_of_a_profile_lists_every_job(tmp_path, profile):
    output = _dry_run(tmp_path, profile)
    plan = workflow.book_plan(profile, PRESENT)
    stats = _job_stats(output)
    assert stats == {
        "train": len(_needed(plan)),
        "notebook": len(PRESENT),
        "claims": 1,
        "book": 1,
        "all": 1,
    }


PAPER_PRELUDE = """
import json, sys
import torchvision.datasets as tvd
sys.path.insert(0, sys.argv[1])
from formats import expect_checksums
md5s = json.loads(sys.argv[2])
class Patch:  # expect_checksums takes a monkeypatch; this one sets for good (one process)
    setattr = staticmethod(setattr)
for cls in (tvd.CIFAR10, tvd.SVHN, tvd.STL10):
    expect_checksums(Patch, cls, md5s)
from snakemake.cli import main
sys.argv = ["snakemake", *sys.argv[3:]]
main()
"""


def test_paper_dry_run_on_stand_in_data(tmp_path):
    """The paper profile's plan on stand-in CIFAR-10, SVHN and STL10 written in the real
    formats: every encoder of the paper's book is a train job (sizes come from the files)."""
    from formats import write_cifar10, write_stl10, write_svhn

    data = tmp_path / "data"
    md5s = dict(write_cifar10(data)["md5"])
    # F3a's paper sizes need 5,000 training images of SVHN and STL10 (3,000 + 1,000 + 1,000).
    for split, n in (("train", 5000), ("test", 3)):
        written = write_svhn(data / "svhn", split, n=n)
        md5s[written["filename"]] = written["md5"]
    md5s.update(write_stl10(data, n_train=5000)["md5"])
    env = {**__import__("os").environ, "MEMLOC_DATA": str(data)}
    tests = str(Path(__file__).parent)
    output = _dry_run(tmp_path, "paper", prefix=(PAPER_PRELUDE, tests, json.dumps(md5s)), env=env)
    stats = _job_stats(output)
    assert stats["notebook"] == len(PRESENT)
    trained = {Path(j["output"]).parent.name for j in _jobs(output) if j["rule"] == "train"}
    assert len(trained) == stats["train"]
    # The paper's T4 trains ResNet50 (SimCLR, DINO) and ViT-Base (SimCLR, DINO, MAE) pairs,
    # A5 three ResNets, F3a f on three data sets, F3c f at four ε and without DP-SGD.
    assert sum(e.startswith("resnet50-") for e in trained) >= 4
    vits = {e.split("-")[1] for e in trained if e.startswith("vit_base-")}
    assert vits >= {"simclr", "dino", "mae"}
    assert {e.split("-")[-3] for e in trained if e.startswith("resnet9-simclr-")} >= {
        "cifar10",
        "svhn",
        "stl10",
    }
    assert len([e for e in trained if "-dp" in e]) == 4


@pytest.mark.paper_toy
def test_the_paper_profile_runs_end_to_end_at_toy_sizes(tmp_path):
    """The paper's whole workflow (``make book PROFILE=paper-toy``, without Jupyter Book) on
    stand-in CIFAR-10, SVHN and STL10: every train job (ResNet9 to 50, ViT-Base, DP-SGD, F3a's
    three data sets, A7's colour donor) and every notebook at the paper's structure, each
    notebook recording verdicts it computed. Where the paper profile's bugs show up before
    hours on a GPU."""
    from formats import write_checksum_site, write_paper_data

    md5s = write_paper_data(tmp_path / "data")
    site = write_checksum_site(tmp_path / "site", md5s)  # reaches the jobs' own processes
    env = {**os.environ, "MEMLOC_DATA": str(tmp_path / "data")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    results, cache = tmp_path / "results", tmp_path / "cache"
    config = {"results": str(results), "cache": str(cache), "build": False}
    cmd = workflow.snakemake_command("paper-toy", config=config)
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    plan = json.loads((results / "paper-toy" / "plan.json").read_text())
    trained = {p.parent.name for p in cache.glob("*/model.safetensors")}
    assert trained == set(plan["encoders"])
    assert {e.split("-")[0] for e in trained} >= {"resnet9", "resnet18", "resnet50", "vit_base"}
    assert {"svhn", "stl10"} <= {e.split("-")[-3] for e in trained}
    verdicts = {}
    with (results / "claims.csv").open() as fh:
        for row in csv.DictReader(fh):
            verdicts.setdefault(row["notebook"], set()).add(row["verdict"])
    computed = {"supported", "not supported", "context", "not testable here"}
    assert set(verdicts) == set(PRESENT)
    assert all(v <= computed for v in verdicts.values()), verdicts
    # The stand-ins are noise: no pair learned and memorized, so the claims that need it say
    # so instead of a verdict (T1 needs both).
    assert verdicts["t1_layermem"] == {"not testable here"}


def test_code_hash_ignores_docstrings_and_the_digest_file_keeps_its_time(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('"""Module."""\ndef f(x):\n    return 2 * x\n')
    base = code_hash([source], root=tmp_path)
    source.write_text('"""Other words."""\n# why\ndef f(x):  # double\n    return 2*x\n')
    assert code_hash([source], root=tmp_path) == base
    source.write_text('"""Module."""\ndef f(x):\n    return 3 * x\n')
    assert code_hash([source], root=tmp_path) != base

    digest = tmp_path / "code_digest.json"
    assert workflow.write_code_digest(digest, "quick") is True
    before = digest.stat().st_mtime_ns
    assert workflow.write_code_digest(digest, "quick") is False
    assert digest.stat().st_mtime_ns == before
    assert workflow.write_code_digest(digest, "cpu") is True  # the profile is part of it


def test_snakemake_command_refuses_an_unknown_executor():
    with pytest.raises(ValueError, match="unknown executor 'pbs'"):
        workflow.snakemake_command("quick", executor="pbs")
    cmd = workflow.snakemake_command("quick", executor="slurm", keep_going=True)
    assert cmd[cmd.index("--executor") + 1] == "slurm" and "--keep-going" in cmd
