"""Results bundles (memloc.bundle, `memloc bundle ...`): export the book's cache entries at a
profile, import them through a file:// URL into an empty cache, and refuse bad archives.

The cache the tests export holds every encoder the quick book's plan names, built here at
random initialisation with their real specs (no training: the bundle carries files, and the
entries are complete in the cache's sense: config, safetensors weights, manifest), so the
tests stay self-contained on a fresh clone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from memloc import book, bundle, workflow
from memloc.artifacts import build_encoder, entry_status, load_encoder
from memloc.cli import main

PROFILE = "quick"
PRESENT = [
    nb.name for nb in book.result_notebooks() if (book.NOTEBOOKS_DIR / f"{nb.name}.py").exists()
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_entry(root: Path, spec, *, snapshot: bool = False) -> Path:
    """A complete cache entry of ``spec`` (artifacts' layout) with untrained weights."""
    entry = root / spec.entry_name
    (entry / "checkpoints").mkdir(parents=True)
    (entry / "config.json").write_text(json.dumps(spec.to_dict()))
    weights = {k: v.contiguous() for k, v in build_encoder(spec).state_dict().items()}
    save_file(weights, entry / "model.safetensors")
    (entry / "log.json").write_text('{"loss": []}')
    if snapshot:
        save_file(weights, entry / "checkpoints" / "epoch_0001.safetensors")
    (entry / "manifest.json").write_text(
        json.dumps({"sha256": _sha256(entry / "model.safetensors")})
    )
    return entry


@pytest.fixture(scope="module")
def plan():
    return workflow.book_plan(PROFILE, PRESENT)


@pytest.fixture(scope="module")
def cache(tmp_path_factory, plan) -> Path:
    """Every entry of the quick book, complete, plus what a bundle must leave behind."""
    root = tmp_path_factory.mktemp("cache")
    for k, spec in enumerate(plan.encoders.values()):
        _write_entry(root, spec, snapshot=k == 0)
    first = next(iter(plan.encoders))
    (root / f"{first}.lock").write_text("")  # a lock file of a running request
    (root / first / ".log.json.x1.tmp").write_text("{")  # an atomic write in progress
    # last.pt of a run stopped between writing its manifest and deleting its resume state.
    (root / first / "checkpoints" / "last.pt").write_bytes(b"resume state")
    # Stored measurements: a UnitMem activation file, a complete LayerMem triple and one whose
    # JSON (written last) is missing, i.e. a measurement interrupted while being stored.
    np.savez(root / "unitmem-0123456789abcdef0123.npz", layer=np.arange(6.0))
    (root / "finetune-0123456789abcdef0123.json").write_text('{"accuracy": 0.5, "seed": 0}')
    for stem, parts in (
        ("layermem-aa-11", bundle.LAYERMEM_PARTS),
        ("layermem-bb-11", (".table.csv.gz",)),
    ):
        for suffix in parts:
            (root / f"{stem}{suffix}").write_bytes(f"{stem}{suffix}".encode())
    return root


@pytest.fixture(scope="module")
def archive(cache, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "memloc-quick.tar"
    main(["--cache-dir", str(cache), "bundle", "export", "--profile", PROFILE, str(out)])
    return out


def _members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def _listing(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): _sha256(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_round_trip_through_a_file_url_leaves_no_train_job(
    archive, cache, plan, tmp_path, monkeypatch, capsys
):
    """export -> import into an empty cache (file:// URL, fetched by pooch) -> the workflow's
    dry run at the quick profile has no train job left and the notebooks' loader reads the
    imported weights."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "downloads"))  # pooch's folder
    empty = tmp_path / "cache"
    main(["--cache-dir", str(empty), "bundle", "import", archive.resolve().as_uri()])
    out = capsys.readouterr().out
    assert f"{len(plan.encoders)} encoders added" in out and _sha256(archive) in out
    needed = {e for entries in plan.notebooks.values() for e in entries}
    present, missing = bundle.plan_status(PROFILE, empty)
    assert missing == [] and set(present) == needed
    # Byte for byte what was exported: every bundled file of the source cache, no more.
    with tarfile.open(archive) as tar:
        bundled = {n.removeprefix("cache/") for n in tar.getnames() if n.startswith("cache/")}
    assert _listing(empty) == {k: v for k, v in _listing(cache).items() if k in bundled}
    name = present[-1]
    loaded, original = load_encoder(empty / name), load_encoder(cache / name)
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    # Snakemake sees every entry's weights: nothing to train, every notebook still to run.
    config = {"results": str(tmp_path / "results"), "cache": str(empty), "build": False}
    cmd = workflow.snakemake_command(PROFILE, config=config, dry_run=True)
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "rule train:" not in run.stdout + run.stderr
    assert (run.stdout + run.stderr).count("rule notebook:") == len(PRESENT)


def test_a_bundle_carries_complete_entries_and_measurements_only(archive, cache, plan, tmp_path):
    names = _members(archive)
    # The manifest is the archive's last member and lists every other file once.
    assert names[-1] == bundle.MANIFEST
    with tarfile.open(archive) as tar:
        lines = tar.extractfile(bundle.MANIFEST).read().decode().splitlines()
        info = json.loads(tar.extractfile(bundle.INFO).read())
    assert sorted(line.split("  ", 1)[1] for line in lines) == sorted(names[:-1])
    assert info["profile"] == PROFILE and info["missing"] == []
    assert sorted(info["entries"]) == sorted(plan.encoders)
    assert not [n for n in names if n.endswith((".lock", ".tmp", ".pt"))]
    assert any(n.endswith("checkpoints/epoch_0001.safetensors") for n in names)
    assert "cache/unitmem-0123456789abcdef0123.npz" in names
    assert "cache/finetune-0123456789abcdef0123.json" in names  # T5's stored accuracies
    assert {n for n in names if "layermem-" in n} == {
        f"cache/layermem-aa-11{s}" for s in bundle.LAYERMEM_PARTS
    }

    # An unfinished training (no manifest yet, a last.pt to resume from) stays out.
    partial_cache = tmp_path / "cache"
    shutil.copytree(cache, partial_cache)
    unfinished = sorted(plan.encoders)[0]
    (partial_cache / unfinished / "manifest.json").unlink()
    (partial_cache / unfinished / "checkpoints" / "last.pt").write_bytes(b"resume state")
    assert entry_status(partial_cache / unfinished) == "partial"
    contents = bundle.export_bundle(tmp_path / "b.tar", PROFILE, partial_cache)
    assert contents.missing == [unfinished] and unfinished not in contents.entries
    assert not [n for n in _members(tmp_path / "b.tar") if unfinished in n]


def _flip_byte(archive: Path, member: str, out: Path) -> Path:
    shutil.copyfile(archive, out)
    with tarfile.open(out) as tar:
        offset = tar.getmember(member).offset_data
    with open(out, "r+b") as fh:
        fh.seek(offset + 100)
        byte = fh.read(1)
        fh.seek(offset + 100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    return out


def _seeded_cache(root: Path, plan) -> dict[str, str]:
    """A cache holding one interrupted training of a bundled entry; returns its listing."""
    name = sorted(plan.encoders)[1]
    (root / name / "checkpoints").mkdir(parents=True)
    (root / name / "config.json").write_text(json.dumps(plan.encoders[name].to_dict()))
    (root / name / "checkpoints" / "last.pt").write_bytes(b"resume state")
    return _listing(root)


def test_a_hash_mismatch_refuses_the_whole_bundle(archive, plan, tmp_path, capsys):
    weights = next(n for n in _members(archive) if n.endswith("model.safetensors"))
    bad = _flip_byte(archive, weights, tmp_path / "bad.tar")
    target = tmp_path / "cache"
    before = _seeded_cache(target, plan)
    with pytest.raises(SystemExit) as exit_info:
        main(["--cache-dir", str(target), "bundle", "import", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"{weights} does not match its SHA-256 in MANIFEST.sha256" in err
    # Nothing was written: no entry, no measurement, no staging folder left behind.
    assert _listing(target) == before and sorted(p.name for p in target.iterdir()) == [
        sorted(plan.encoders)[1]
    ]


@pytest.mark.parametrize("cut", ["in a file", "before the manifest"])
def test_a_truncated_archive_is_refused(archive, plan, tmp_path, cut):
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    weights = next(m for m in members if m.name.endswith("model.safetensors"))
    size = weights.offset_data + weights.size // 2 if cut == "in a file" else members[-1].offset
    short = tmp_path / "short.tar"
    short.write_bytes(archive.read_bytes()[:size])
    target = tmp_path / "cache"
    before = _seeded_cache(target, plan)
    expected = "not a complete tar archive" if cut == "in a file" else "no MANIFEST.sha256"
    with pytest.raises(bundle.BundleError, match=expected):
        bundle.import_bundle(short, target)
    assert _listing(target) == before


def test_complete_entries_are_kept_and_unfinished_ones_replaced(archive, cache, plan, tmp_path):
    target = tmp_path / "cache"
    _seeded_cache(target, plan)
    unfinished = sorted(plan.encoders)[1]
    kept = sorted(plan.encoders)[2]
    shutil.copytree(cache / kept, target / kept)
    (target / kept / "log.json").write_text('{"loss": [1.0]}')  # this cache's own run
    report = bundle.import_bundle(archive, target)
    assert report.kept == [kept] and unfinished in report.imported
    assert len(report.imported) == len(plan.encoders) - 1
    assert (target / kept / "log.json").read_text() == '{"loss": [1.0]}'
    assert entry_status(target / unfinished) == "complete"
    assert not (target / unfinished / "checkpoints" / "last.pt").exists()
    # A second import changes nothing.
    again = bundle.import_bundle(archive, target)
    assert again.imported == [] and again.measurements_added == 0
    assert len(again.kept) == len(plan.encoders)


def test_a_wrong_archive_hash_is_refused(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "downloads"))
    wrong = "0" * 64
    for source in (str(archive), archive.resolve().as_uri()):
        with pytest.raises(bundle.BundleError, match=source):
            bundle.import_bundle(source, tmp_path / "cache", sha256=wrong)
        assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    right = _sha256(archive)
    assert bundle.import_bundle(archive.resolve().as_uri(), tmp_path / "c2", sha256=right).imported


def test_export_refuses_a_cache_without_the_profiles_encoders(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "--cache-dir",
                str(tmp_path),
                "bundle",
                "export",
                "--profile",
                PROFILE,
                str(tmp_path / "x.tar"),
            ]
        )
    err = capsys.readouterr().err.strip()
    assert err.startswith("memloc bundle: error: nothing to export at profile 'quick'")
    assert not (tmp_path / "x.tar").exists()
