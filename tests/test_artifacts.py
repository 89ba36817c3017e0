"""The encoder cache: keyed by configuration, safe to load, self-healing, and locked."""

import hashlib
import json
import multiprocessing as mp
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from memloc import artifacts
from memloc.artifacts import (
    encoder_pair,
    encoder_spec,
    entry_status,
    get_encoder,
    load_checkpoint,
    load_encoder,
)
from memloc.models import create
from memloc.profiles import load_profile

TINY = dict(
    n_shared=40,
    n_candidate=20,
    n_independent=20,
    n_heldout=20,
    n_downstream=0,
    epochs=2,
    batch_size=32,
    snapshot_epochs=[1, 2],
)


def _spec(role="f", **overrides):
    profile = load_profile("quick", **{**TINY, **overrides})
    return encoder_spec(profile, role, "simclr", n_total=1500, in_channels=1)


def test_key_is_stable_and_covers_every_field():
    assert _spec().key == _spec().key
    assert _spec("f").key != _spec("g").key
    assert _spec(epochs=3).key != _spec().key
    assert _spec(seed=1).key != _spec().key
    assert _spec(split_seed=1).key != _spec().key
    assert _spec(lr=1e-4).key != _spec().key


def test_bad_role_and_framework_are_errors():
    profile = load_profile("quick")
    with pytest.raises(ValueError, match="role"):
        encoder_spec(profile, "h", n_total=10, in_channels=1)
    with pytest.raises(ValueError, match="framework"):
        encoder_spec(profile, "f", "byol", n_total=10, in_channels=1)


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    start = time.time()
    pair = encoder_pair("quick", cache_dir=cache, progress=False, parallel=False, **TINY)
    return pair, cache, time.time() - start


def test_pair_trains_f_and_g_from_the_same_init_on_their_own_splits(tiny_pair):
    pair, cache, _ = tiny_pair
    assert set(pair.entries) == {"f", "g"}
    for role in ("f", "g"):
        entry = pair.entries[role]
        assert entry_status(entry) == "complete"
        cfg = json.loads((entry / "config.json").read_text())
        assert cfg["role"] == role
        assert not (entry / "checkpoints" / "last.pt").exists()
    # Same seed, same init: the weights differ only because the training data differ.
    fw, gw = pair.f.state_dict(), pair.g.state_dict()
    assert any(not torch.equal(fw[k], gw[k]) for k in fw if fw[k].is_floating_point())
    s = pair.splits
    assert len(s.candidate) == 20 and len(set(s.candidate) & set(s.independent)) == 0
    assert sorted(pair.snapshots("f")) == [1, 2]


@pytest.mark.parametrize("framework", ["simsiam", "dino", "mae"])
def test_other_frameworks_train_pairs_through_the_cache(tmp_path, monkeypatch, framework):
    tiny = {**TINY, "epochs": 1, "snapshot_epochs": []}
    if framework == "mae":
        tiny["arch"] = "vit_tiny"  # MAE works on patches
    pair = encoder_pair(
        "quick", framework, cache_dir=tmp_path, progress=False, parallel=False, **tiny
    )
    assert pair.framework == framework and set(pair.entries) == {"f", "g"}
    for role, entry in pair.entries.items():
        assert entry_status(entry) == "complete"
        assert entry.name.startswith(f"{tiny.get('arch', 'resnet9')}-{framework}-")
        assert f"-{role}-" in entry.name
    # Only the backbone is kept: the same state as a fresh encoder of the architecture.
    fresh = artifacts.random_encoder(load_profile("quick", **tiny))
    assert pair.f.state_dict().keys() == fresh.state_dict().keys()

    monkeypatch.setattr(artifacts, "train", lambda *a, **k: pytest.fail("trained again"))
    again = encoder_pair("quick", framework, cache_dir=tmp_path, progress=False, **tiny)
    assert again.hashes == pair.hashes


def test_second_request_loads_from_cache_without_training(tiny_pair, monkeypatch):
    pair, cache, _ = tiny_pair

    def no_training(*args, **kwargs):
        raise AssertionError("a cached entry was trained again")

    monkeypatch.setattr(artifacts, "train", no_training)
    start = time.time()
    again = encoder_pair("quick", cache_dir=cache, progress=False, **TINY)
    assert time.time() - start < 10
    assert again.hashes == pair.hashes
    for k, v in pair.f.state_dict().items():
        assert torch.equal(v, again.f.state_dict()[k])


def test_same_seed_same_weights_in_a_fresh_cache(tiny_pair, tmp_path):
    pair, _, _ = tiny_pair
    spec = encoder_spec(pair.profile, "f", n_total=len(pair.dataset), in_channels=1)
    entry = get_encoder(spec, cache_dir=tmp_path, progress=False)
    w1 = load_file(entry / "model.safetensors")
    w0 = load_file(pair.entries["f"] / "model.safetensors")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_corrupt_entry_is_detected_and_retrained(tiny_pair, tmp_path):
    pair, _, _ = tiny_pair
    spec = encoder_spec(pair.profile, "g", n_total=len(pair.dataset), in_channels=1)
    entry = get_encoder(spec, cache_dir=tmp_path, progress=False)
    original = {k: v.clone() for k, v in load_file(entry / "model.safetensors").items()}
    blob = bytearray((entry / "model.safetensors").read_bytes())
    blob[-10:] = bytes(10)  # flip the tail of the last tensor
    (entry / "model.safetensors").write_bytes(bytes(blob))
    assert entry_status(entry) == "corrupt"
    with pytest.raises(RuntimeError, match="corrupt"):
        load_encoder(entry)
    get_encoder(spec, cache_dir=tmp_path, progress=False)
    assert entry_status(entry) == "complete"
    healed = load_file(entry / "model.safetensors")
    assert all(torch.equal(original[k], healed[k]) for k in original)


def test_partial_entry_is_never_used(tiny_pair, tmp_path):
    pair, _, _ = tiny_pair
    spec = encoder_spec(pair.profile, "f", n_total=len(pair.dataset), in_channels=1)
    entry = get_encoder(spec, cache_dir=tmp_path, progress=False)
    (entry / "manifest.json").unlink()
    assert entry_status(entry) == "partial"
    with pytest.raises(RuntimeError, match="partial"):
        load_encoder(entry)


def _ask(spec_dict, cache):
    torch.set_num_threads(1)
    return str(
        artifacts.get_encoder(artifacts.EncoderSpec(**spec_dict), cache_dir=cache, progress=False)
    )


def test_two_processes_asking_at_once_share_one_entry(tmp_path):
    spec = _spec(epochs=1)
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        paths = pool.starmap(_ask, [(spec.to_dict(), str(tmp_path))] * 2)
    assert paths[0] == paths[1]
    assert entry_status(artifacts.Path(paths[0])) == "complete"
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1


def test_user_checkpoints_load_safely(tiny_pair, tmp_path):
    pair, _, _ = tiny_pair
    kwargs = pair.f.config()
    torch.save(pair.f.state_dict(), tmp_path / "f.pt")
    loaded = load_checkpoint(tmp_path / "f.pt", pair.f.arch, **kwargs)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in pair.f.state_dict().items())
    # An arbitrary pickled object is refused, not executed.
    torch.save({"model": object()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt holds pickled Python objects"):
        load_checkpoint(tmp_path / "evil.pt", pair.f.arch, **kwargs)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", pair.f.arch, **kwargs)


def test_private_spec_is_keyed_by_its_target_and_leaves_other_keys_alone():
    from memloc.privacy import PrivacyConfig

    profile = load_profile("quick", **TINY, norm="group")
    plain = encoder_spec(profile, "f", "simsiam", n_total=1500, in_channels=1)
    assert "privacy" not in plain.to_dict()  # non-private keys are as before the option

    def private(eps):
        privacy = PrivacyConfig(eps)
        return encoder_spec(profile, "f", "simsiam", n_total=1500, in_channels=1, privacy=privacy)

    assert private(1).key == private(1.0).key != private(2.0).key != plain.key
    assert "-dp1-" in private(1).entry_name and plain.arch_kwargs["norm"] == "group"
    with pytest.raises(ValueError, match="NT-Xent"):
        encoder_spec(
            profile, "f", "simclr", n_total=1500, in_channels=1, privacy=PrivacyConfig(1.0)
        )
    with pytest.raises(ValueError, match="GroupNorm"):
        encoder_spec(
            load_profile("quick"), "f", "simsiam", n_total=1500, in_channels=1,
            privacy=PrivacyConfig(1.0),
        )  # fmt: skip


def test_f_encoder_trains_f_alone_privately_through_the_cache(tmp_path, monkeypatch):
    from memloc.artifacts import f_encoder, privacy_log
    from memloc.privacy import PrivacyConfig

    sizes = {**TINY, "n_independent": 0, "snapshot_epochs": [], "norm": "group", "width": 0.125}
    kwargs = dict(privacy=PrivacyConfig(4.0), cache_dir=tmp_path, progress=False, **sizes)
    pair = f_encoder("quick", "simsiam", **kwargs)
    assert pair.g is None and pair.trained == ("f",) and list(pair.entries) == ["f"]
    log = privacy_log(pair.entries["f"])
    assert 2.0 < log["epsilon"] <= 4.0 and log["noise_multiplier"] > 0
    assert len(list(tmp_path.glob("*-dp4-*-f-*"))) == 1  # the entry (no lock left), no g
    monkeypatch.setattr("memloc.privacy.train_private", lambda *a, **k: pytest.fail("retrained"))
    again = f_encoder("quick", "simsiam", **kwargs)
    assert again.trained == () and again.entries == pair.entries
    monkeypatch.undo()
    plain = f_encoder("quick", "simsiam", cache_dir=tmp_path, progress=False, **sizes)
    assert privacy_log(plain.entries["f"]) == {} and plain.entries != pair.entries


def test_a_private_vit_needs_no_group_norm_and_trains_through_the_cache(tmp_path):
    from memloc.artifacts import f_encoder, privacy_log
    from memloc.privacy import PrivacyConfig

    sizes = {**TINY, "n_independent": 0, "snapshot_epochs": [], "width": 0.125}
    vit = dict(arch="vit_tiny", patch_size=8, **sizes)
    pair = f_encoder(
        "quick", "simsiam", privacy=PrivacyConfig(8.0), cache_dir=tmp_path, progress=False, **vit
    )
    assert pair.f.arch == "vit_tiny" and "norm" not in pair.f.config()
    assert 4.0 < privacy_log(pair.entries["f"])["epsilon"] <= 8.0
    with pytest.raises(ValueError, match="resnet9 needs GroupNorm"):
        f_encoder("quick", "simsiam", privacy=PrivacyConfig(8.0), cache_dir=tmp_path, **sizes)


# --- your checkpoints: every wrong file is a one-line error naming it -------------------------


def _resnet9(width=0.125, seed=0):
    torch.manual_seed(seed)
    return create("resnet9", in_channels=1, width=width)


def _one_line_error(path, message, **kwargs):
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(path, "resnet9", **{"in_channels": 1, "width": 0.125, **kwargs})
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_whole_pickled_model_is_refused_with_what_to_save(tmp_path):
    torch.save(_resnet9(), tmp_path / "model.pt")  # torch.save(model), not its state dict
    _one_line_error(tmp_path / "model.pt", r"pickled Python objects .*torch.save\(model\)")


def test_truncated_files_are_refused(tmp_path):
    save_file(_resnet9().state_dict(), tmp_path / "w.safetensors")
    torch.save(_resnet9().state_dict(), tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        blob = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(blob[: len(blob) // 2])
    _one_line_error(tmp_path / "w.safetensors", "not a readable safetensors file.*truncated")
    _one_line_error(tmp_path / "w.pt", "not a readable PyTorch file.*truncated")


def test_a_pt_file_that_is_not_a_state_dict_is_refused(tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "numbers.pt")
    _one_line_error(tmp_path / "list.pt", "holds a list, not a state dict")
    _one_line_error(tmp_path / "numbers.pt", r"entries \['epoch', 'lr'\] are not tensors")


def test_a_checkpoint_of_another_width_names_the_width(tmp_path):
    save_file(_resnet9(width=0.25).state_dict(), tmp_path / "w.safetensors")
    # Every channel count scales with width: the file's are twice a width-0.125 model's.
    _one_line_error(tmp_path / "w.safetensors", r"another width \(about 0.25.*\"width\": 0.25")
    message = r"1-channel images: pass in_channels=1$"
    _one_line_error(tmp_path / "w.safetensors", message, in_channels=3, width=0.25)
    assert load_checkpoint(tmp_path / "w.safetensors", "resnet9", in_channels=1, width=0.25)


def test_wrapped_and_prefixed_state_dicts_load(tmp_path):
    model = _resnet9(seed=3)
    state = model.state_dict()
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ddp.pt")
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in state.items()}}, tmp_path / "fw.pt")
    for name in ("ddp.pt", "fw.pt"):
        loaded = load_checkpoint(tmp_path / name, "resnet9", in_channels=1, width=0.125)
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in state.items())
    save_file({"conv.weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    _one_line_error(tmp_path / "other.safetensors", "shares no tensor name.*another architecture")


# --- the cache after failures: no lock files, no half entries, unreadable files named ---------


def test_failed_training_leaves_neither_lock_nor_entry(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(artifacts, "train", crash)
    with pytest.raises(RuntimeError, match="out of memory"):
        get_encoder(_spec(), cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_lock_file_is_removed_after_use(tiny_pair):
    _, cache, _ = tiny_pair
    assert not list(cache.glob("*.lock"))


def test_truncated_training_checkpoint_is_named_and_training_restarts(tiny_pair, tmp_path, capsys):
    pair, _, _ = tiny_pair
    spec = encoder_spec(pair.profile, "f", n_total=len(pair.dataset), in_channels=1)
    last = tmp_path / spec.entry_name / "checkpoints" / "last.pt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"PK\x03\x04 cut short")
    entry = get_encoder(spec, cache_dir=tmp_path, progress=False)
    err = capsys.readouterr().err
    assert f"training checkpoint {last} is unreadable" in err and "from the start" in err
    # From the start, it ends with the weights of an undisturbed run.
    w0, w1 = (load_file(e / "model.safetensors") for e in (pair.entries["f"], entry))
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_corrupt_config_and_snapshot_are_named(tiny_pair, tmp_path):
    import dataclasses
    import shutil

    pair, _, _ = tiny_pair
    entry = tmp_path / pair.entries["f"].name
    shutil.copytree(pair.entries["f"], entry)
    snapshot = entry / "checkpoints" / "epoch_0001.safetensors"
    snapshot.write_bytes(snapshot.read_bytes()[:100])
    with pytest.raises(RuntimeError, match=f"snapshot {snapshot} is unreadable"):
        dataclasses.replace(pair, entries={"f": entry}).snapshots("f")
    (entry / "config.json").write_text('{"dataset": ')
    assert entry_status(entry) == "corrupt"  # a later request trains it again
    weights_sha256 = hashlib.sha256((entry / "model.safetensors").read_bytes()).hexdigest()
    (entry / "manifest.json").write_text(json.dumps({"sha256": weights_sha256}))
    with pytest.raises(RuntimeError, match=f"corrupt: {entry / 'config.json'} is unreadable"):
        load_encoder(entry)


def test_user_pair_takes_f_alone(tiny_pair):
    pair, _, _ = tiny_pair
    mine = artifacts.user_pair(pair.profile, pair.f)
    assert mine.g is None and mine.splits == pair.splits
