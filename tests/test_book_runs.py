"""The book on other data or settings (issue 12): every ``--param`` profile key reaches the
train jobs and the notebooks alike, an unknown or unused ``--param`` and an unknown ``--only``
stop the build before anything trains, and a run other than a profile's own has its own name,
results folder and book, whose pages name the data set."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from memloc import book, workflow
from memloc.experiments.encoders import EncoderRequest, notebook_encoders
from memloc.profiles import load_profile, merge_overrides


def _image_folder(root, classes=("a", "b", "c"), per_class=40, size=16):
    """A folder of class sub-folders of small grey PNGs (the layout the README documents)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(60 + 60 * k + rng.normal(0, 30, (size, size)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


# ----------------------------------------------------------------------------- item 4


def test_profile_keys_reach_the_train_plan_and_the_notebooks_alike():
    run = workflow.resolve_run(
        "quick", {"epochs": 3, "variant": "original"}, ["t1_layermem", "t2_vit_sublayers"]
    )
    assert run.profile_overrides == {"epochs": 3}
    assert run.notebook_parameters == {"variant": "original"}
    # Papermill injects the profile keys into every notebook, a notebook parameter only into
    # the notebooks that declare it (T2 has no `variant`).
    t1 = run.parameters_for("t1_layermem", book.notebook_parameters("t1_layermem"))
    t2 = run.parameters_for("t2_vit_sublayers", book.notebook_parameters("t2_vit_sublayers"))
    assert t1 == {"variant": "original", "profile_overrides": {"epochs": 3}}
    assert t2 == {"profile_overrides": {"epochs": 3}}

    plan = workflow.book_plan("quick", ["t1_layermem", "t2_vit_sublayers"], run=run)
    # Every encoder the plan trains has the asked epochs (SSL; supervised keeps its own key).
    for spec in plan.encoders.values():
        if spec.framework != "supervised":
            assert spec.train["epochs"] == 3, spec.entry_name
    # What T1's code asks for (encoder_pair with merge_overrides of its parameters) is the
    # plan's shared pair; what T2's encoder function asks for with what Papermill injects is
    # T2's entries in the plan.
    t1_profile = load_profile("quick", **merge_overrides(t1["profile_overrides"], dataset=None))
    t1_specs = workflow.request_specs(EncoderRequest("t1", t1_profile, "simclr"))
    assert [s.entry_name for s in t1_specs] == plan.notebooks["t1_layermem"][:2]
    t2_requests = notebook_encoders("t2_vit_sublayers", {"profile": "quick", **t2})
    t2_entries = [s.entry_name for r in t2_requests for s in workflow.request_specs(r)]
    assert t2_entries == plan.notebooks["t2_vit_sublayers"]
    # Without the key, other entries: the key changed what is trained.
    plain = workflow.book_plan("quick", ["t1_layermem", "t2_vit_sublayers"])
    assert not set(plain.encoders) & set(plan.encoders)


def test_a_notebook_applies_the_run_keys_and_refuses_a_contradiction():
    assert merge_overrides({"epochs": 3}, dataset=None, n_points=10) == {
        "epochs": 3,
        "n_points": 10,
    }
    assert merge_overrides({"dataset": "digits"}, dataset="digits") == {"dataset": "digits"}
    with pytest.raises(ValueError, match="profile key dataset is 'digits' in profile_overrides"):
        merge_overrides({"dataset": "digits"}, dataset="fashion-mnist")
    # Every result notebook declares the parameter (else a run could not honour --param).
    for nb in book.result_notebooks():
        if (book.NOTEBOOKS_DIR / f"{nb.name}.py").exists():
            assert "profile_overrides" in book.notebook_parameters(nb.name), nb.name


def test_a_notebook_parameter_named_like_a_profile_key_is_set_with_its_notebook_name():
    # `seed` is the profile's training seed; T1's own `seed` (its views) is t1_layermem.seed.
    run = workflow.resolve_run("quick", {"t1_layermem.seed": 3}, ["t1_layermem"])
    assert run.name == "quick" and run.profile_overrides == {}
    t1 = run.parameters_for("t1_layermem", book.notebook_parameters("t1_layermem"))
    assert t1 == {"seed": 3, "profile_overrides": {}}
    with pytest.raises(ValueError, match="t1_layermem has no parameter sede; its parameters: "):
        workflow.resolve_run("quick", {"t1_layermem.sede": 3}, ["t1_layermem"])
    # A profile key T1 does not declare is the whole run's: the error says how to run T1 alone.
    with pytest.raises(ValueError, match="n_points is a profile key.*--only t1_layermem --param"):
        workflow.resolve_run("quick", {"t1_layermem.n_points": 300}, ["t1_layermem"])
    with pytest.raises(ValueError, match="t5_finetune_layers is not a notebook to run"):
        workflow.resolve_run("quick", {"t5_finetune_layers.epochs": 3}, ["t1_layermem"])


# ----------------------------------------------------------------------------- items 5 and 7


@pytest.fixture()
def no_snakemake(monkeypatch):
    """memloc.book's main must stop before it starts Snakemake (nothing trains)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"Snakemake was started: {args}")

    monkeypatch.setattr(book.subprocess, "run", refuse)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--param", "epoch=4"], "--param epoch: not a profile key and not a parameter of"),
        # a7's parameter, but A7 is not among the notebooks to run
        (["--only", "t1_layermem", "--param", "donor_epochs=3"], "--param donor_epochs: not a"),
        (["--param", "out_dir=x"], "--param out_dir is set by the workflow itself"),
        (["--param", "epochs=abc"], "profile key epochs must be an integer, got 'abc'"),
        (["--only", "t1_layermen"], "--only t1_layermen: no such result notebook; valid names: "),
        (["--param", "epochs=4", "--run", "quick"], "--run quick holds the quick profile's own"),
        (["--param", "epochs=4", "--run", "cpu"], "--run cpu: the cpu profile's results"),
        (["--run", "../elsewhere"], "a run name is letters, digits"),
    ],
)
def test_bad_param_only_or_run_fails_in_one_line_before_anything_runs(
    argv, message, no_snakemake, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        book.main(["--profile", "quick", "--dry-run", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_the_errors_list_the_valid_names(no_snakemake, capsys):
    with pytest.raises(SystemExit):
        book.main(["--profile", "quick", "--only", "t1_layermem", "--param", "epoch=4"])
    err = capsys.readouterr().err
    assert "profile keys: dataset, image_size" in err and "epochs" in err
    assert "notebook parameters: check_learned, checkpoints, framework, variant" in err
    with pytest.raises(SystemExit):
        book.main(["--profile", "quick", "--only", "t1_layermen"])
    err = capsys.readouterr().err
    assert all(name in err for name in ("t1_layermem", "t3_layer_consistency", "f3c_unitmem"))


# ----------------------------------------------------------------------------- item 6


def test_run_names_follow_the_data_set_and_the_changed_keys(tmp_path):
    folder = tmp_path / "my pics"
    assert workflow.resolve_run("quick", {}, ["t1_layermem"]).name == "quick"
    # A key set to the profile's own value changes nothing: still the profile's run.
    assert workflow.resolve_run("quick", {"dataset": "digits"}, ["t1_layermem"]).name == "quick"
    mine = workflow.resolve_run("quick", {"dataset": f"imagefolder:{folder}/"}, ["t1_layermem"])
    assert mine.name == "quick-imagefolder-my-pics" and not mine.is_profile_book
    assert mine.dataset == f"imagefolder:{folder}/"
    assert workflow.default_run_name("cpu", {"epochs": 4}) == "cpu-epochs4"
    named = workflow.resolve_run("quick", {"epochs": 4}, ["t1_layermem"], run="mine")
    assert named.name == "mine" and named.profile == "quick"


def test_pages_of_a_run_name_it_and_its_data_set_and_leave_the_profile_book_alone(tmp_path):
    results = tmp_path / "results"
    run = workflow.resolve_run("quick", {"dataset": "fashion-mnist"}, ["t1_layermem"], run="mine")
    plan = {"profile": "quick", "run": run.name, "dataset": run.dataset, "notebooks": {}}
    plan["profile_overrides"], plan["encoders"] = run.profile_overrides, {}
    (results / "mine").mkdir(parents=True)
    (results / "mine" / "plan.json").write_text(json.dumps(plan))
    own_book = results / "mine" / "book"
    workflow.stage_book(book.BOOK_DIR, own_book)
    assert (own_book / "_config.yml").read_bytes() == (book.BOOK_DIR / "_config.yml").read_bytes()
    book.write_pages(
        book.result_notebooks(),
        "quick",
        book_dir=own_book,
        results_dir=results,
        run="mine",
        pages_dir=own_book / "results",
    )
    header = (own_book / "results" / "claims_table.md").read_text().splitlines()[0]
    assert header == (
        'Run **mine** of this build: profile `quick` with `dataset="fashion-mnist"`, '
        "data set `fashion-mnist`."
    )
    assert not (results / "claims.csv").exists() and not (results / "quick").exists()
    # The profile's book says its profile and data set.
    table = book.claims_markdown([], "quick", dataset="digits")
    assert table.startswith("Profile of this build: **quick**, data set `digits`.")


def test_provenance_names_the_data_set_of_the_run():
    assert book.provenance(profile="quick")["dataset"] == "digits"
    info = book.provenance(profile="quick", profile_overrides={"dataset": "fashion-mnist"})
    assert info["dataset"] == "fashion-mnist" and info["profile_overrides"]


def test_dry_run_on_an_image_folder_writes_only_its_own_run(tmp_path):
    folder = _image_folder(tmp_path / "mine")
    results = tmp_path / "results"
    config = {
        "results": str(results),
        "cache": str(tmp_path / "cache"),
        "params": {"dataset": f"imagefolder:{folder}", "epochs": 2, "check_learned": False},
        "only": ["t1_layermem"],
    }
    cmd = workflow.snakemake_command("auto", config=config, dry_run=True, extra=["-p"])
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = out.stdout + out.stderr
    plan = json.loads((results / "auto-imagefolder-mine-epochs2" / "plan.json").read_text())
    assert plan["dataset"] == f"imagefolder:{folder}" and plan["run"] != plan["profile"]
    assert plan["profile_overrides"] == {"dataset": f"imagefolder:{folder}", "epochs": 2}
    assert not (results / "auto").exists() and not (results / "profile.txt").exists()
    # The notebook job gets the run's name and its profile keys; the book is built apart.
    assert "--run auto-imagefolder-mine-epochs2" in log
    # with their types: Snakemake's --config would make them the strings "2" and "false"
    assert '"check_learned": false, "profile_overrides": {"dataset": "imagefolder:' in log
    assert '"epochs": 2}' in log
    assert "auto-imagefolder-mine-epochs2/book/_build/html/.memloc-built" in log
    # T1 reads the shared pairs (4 encoders), trained on the folder.
    assert len(plan["notebooks"]["t1_layermem"]) == 4
    assert all("-imagefolder" in entry for entry in plan["notebooks"]["t1_layermem"])


@pytest.mark.slow
def test_a_run_on_an_image_folder_trains_and_executes_what_it_was_asked(tmp_path):
    """The whole path on a folder of 120 PNGs: the train jobs and T1 use the same encoders,
    trained with the --param keys, and the pages name the run and the data set (about two
    minutes on two cores; the Jupyter Book build is left out)."""
    import os

    folder = _image_folder(tmp_path / "mine")
    results, cache = tmp_path / "results", tmp_path / "cache"
    params = {"dataset": f"imagefolder:{folder}", "epochs": 2, "supervised_epochs": 1}
    config = {
        "results": str(results),
        "cache": str(cache),
        "params": {**params, "check_learned": False},
        "only": ["t1_layermem"],
        "build": False,
        "run": "mine",
    }
    cmd = workflow.snakemake_command("auto", config=config, cores="2") + ["--nolock"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    plan = json.loads((results / "mine" / "plan.json").read_text())
    entries = plan["notebooks"]["t1_layermem"]
    for entry in entries:  # trained with the asked epochs
        spec = json.loads((cache / entry / "config.json").read_text())
        framework = entry.split("-")[1]
        key = "supervised_epochs" if framework == "supervised" else "epochs"
        assert spec["train"]["epochs"] == params[key], (entry, spec["train"])
    executed = (results / "mine" / "t1_layermem.ipynb").read_text()
    # T1 measured the pair the train jobs made (its provenance lists the entries' hashes)
    # and names the folder.
    for entry in entries[:2]:
        assert entry.rsplit("-", 1)[1] in executed
    assert f'\\"dataset\\": \\"imagefolder:{folder}\\"' in executed
    header = (results / "mine" / "book" / "results" / "claims_table.md").read_text()
    assert header.startswith("Run **mine** of this build: profile `auto`")
    assert f"data set `imagefolder:{folder}`" in header.splitlines()[0]
    assert not (results / "auto").exists() and not (results / "claims.csv").exists()


def test_an_image_folder_defaults_to_auto_and_too_few_images_stop_before_snakemake(
    tmp_path, no_snakemake, capsys
):
    folder = _image_folder(tmp_path / "small", per_class=15)  # 36 training images
    with pytest.raises(SystemExit) as exit_info:
        book.main(["--run", "mine", "--param", f"dataset=imagefolder:{folder}", "--dry-run"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    # The profile auto (shares of the data) was chosen; its minimum per set is not reached.
    assert f"imagefolder:{folder} has 36 training images; split_shares" in err
    assert "add images (at least 50)" in err and len(err.splitlines()) == 1


def test_a_listed_notebook_whose_encoders_do_not_apply_is_left_out_only_when_not_asked_for():
    params = {"t2_vit_sublayers.arch": "resnet9"}  # T2 needs a ViT
    notebooks = ["t1_layermem", "t2_vit_sublayers"]
    plan = workflow.book_plan("quick", notebooks, params, optional={"t2_vit_sublayers"})
    assert "t2_vit_sublayers" not in plan.notebooks and "t1_layermem" in plan.notebooks
    assert plan.skipped["t2_vit_sublayers"].startswith("T2 needs a ViT; arch='resnet9'")
    with pytest.raises(ValueError, match="T2 needs a ViT"):
        workflow.book_plan("quick", notebooks, params)
