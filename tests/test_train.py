"""The training loop: determinism, bit-identical resumption, checkpoints, snapshots, DDP."""

import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from memloc.augment import AugmentPolicy
from memloc.models import create
from memloc.ssl import create_framework
from memloc.train import TrainConfig, train


def framework(name="simclr", policy=None, init_seed=0):
    torch.manual_seed(init_seed)  # the caller seeds the initialisation, not train()
    backbone = create("resnet9", in_channels=1, width=0.125)
    policy = policy or AugmentPolicy(crop_scale=(0.4, 1.0))
    head = {"proj_hidden": 32, "proj_dim": 16} if name == "simclr" else {}
    return create_framework(name, backbone, policy, num_classes=4, **head)


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 16, 16), generator=g, dtype=torch.uint8)
    return images, torch.randint(0, 4, (n,), generator=g)


def run(epochs=2, ckpt=None, seed=0, fw=None, **kw):
    torch.set_num_threads(1)
    fw = fw or framework()
    images, labels = data()
    config = TrainConfig(epochs=epochs, batch_size=16, seed=seed, **kw)
    log = train(fw, images, labels, config, checkpoint_dir=ckpt, progress=False)
    return fw, log


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_same_seed_same_weights_other_seed_other_weights():
    a, log_a = run()
    b, log_b = run()
    assert_same_weights(a, b)
    assert [e["loss"] for e in log_a["epochs"]] == [e["loss"] for e in log_b["epochs"]]
    c, _ = run(seed=1)  # same initialisation, other shuffle and views
    assert not torch.equal(a.backbone.block1.conv.weight, c.backbone.block1.conv.weight)


def test_log_lists_every_epoch():
    _, log = run(epochs=2)
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert log["steps_per_epoch"] == 4 and log["batch_size"] == 16 and log["world_size"] == 1
    for e in log["epochs"]:
        assert e["loss"] > 0 and e["pairs_per_s"] > 0 and e["wall_s"] > 0
    assert log["wall_s"] == pytest.approx(sum(e["wall_s"] for e in log["epochs"]))


def test_resume_after_epochs_gives_identical_weights(tmp_path):
    straight, log = run(epochs=3)
    run(epochs=1, ckpt=tmp_path)
    resumed, log_resumed = run(epochs=3, ckpt=tmp_path, fw=framework(init_seed=5))
    assert_same_weights(straight, resumed)
    assert [e["loss"] for e in log["epochs"]] == [e["loss"] for e in log_resumed["epochs"]]


@pytest.mark.parametrize("name", ["simsiam", "dino"])
def test_other_frameworks_resume_identically_after_a_crash(tmp_path, name):
    # DINO's teacher and centre are in the checkpoint, and its momentum schedule depends on the
    # planned total of steps, so the interrupted run must be the same 2-epoch run.
    straight, _ = run(epochs=2, fw=framework(name))
    fw = framework(name)
    own_step_end = getattr(fw, "on_step_end", None)

    def crash(step, total):
        if own_step_end is not None:
            own_step_end(step, total)
        if step == 6:  # the second of the 4 steps of epoch 2
            raise KeyboardInterrupt

    fw.on_step_end = crash
    with pytest.raises(KeyboardInterrupt):
        run(epochs=2, ckpt=tmp_path, fw=fw)
    resumed, _ = run(epochs=2, ckpt=tmp_path, fw=framework(name, init_seed=5))
    assert_same_weights(straight, resumed)


def test_resume_after_a_crash_mid_epoch_gives_identical_weights(tmp_path):
    straight, _ = run(epochs=2)

    def crash(step, total):
        if step == 6:  # the second of the 4 steps of epoch 2
            raise KeyboardInterrupt

    fw = framework()
    fw.on_step_end = crash
    with pytest.raises(KeyboardInterrupt):
        run(epochs=2, ckpt=tmp_path, fw=fw)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    resumed, _ = run(epochs=2, ckpt=tmp_path, fw=framework(init_seed=5))
    assert_same_weights(straight, resumed)


def test_checkpoint_loads_with_weights_only_and_holds_the_run(tmp_path):
    fw, log = run(epochs=2, ckpt=tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and state["log"] == log["epochs"]
    assert state["model"].keys() == fw.state_dict().keys()
    assert state["config"]["seed"] == 0 and state["config"]["batch_size"] == 16
    assert set(state["rng"]) == {"shuffle", "augment"} and len(state["rng"]["augment"]) == 1
    assert state["optimizer"]["param_groups"][0]["lr"] == 1e-3
    # Asking again for the finished run trains nothing and returns the same log.
    again, log_again = run(epochs=2, ckpt=tmp_path, fw=framework(init_seed=5))
    assert_same_weights(fw, again)
    assert log_again["epochs"] == log["epochs"]


def test_snapshots_keep_the_backbone_at_the_asked_epochs(tmp_path):
    init = framework().backbone.state_dict()
    fw, _ = run(epochs=2, ckpt=tmp_path, snapshot_epochs=(0, 1, 2))
    names = sorted(p.name for p in tmp_path.glob("epoch_*.safetensors"))
    assert names == ["epoch_0000.safetensors", "epoch_0001.safetensors", "epoch_0002.safetensors"]
    first = load_file(tmp_path / "epoch_0000.safetensors")
    last = load_file(tmp_path / "epoch_0002.safetensors")
    assert first.keys() == fw.backbone.state_dict().keys()
    assert all(torch.equal(first[k], v) for k, v in init.items())
    assert all(torch.equal(last[k], v) for k, v in fw.backbone.state_dict().items())


def test_resume_refuses_another_configuration(tmp_path):
    run(epochs=1, ckpt=tmp_path)
    with pytest.raises(ValueError, match="lr: 0.001 -> 0.01"):
        run(epochs=2, ckpt=tmp_path, lr=1e-2)
    run(epochs=2, ckpt=tmp_path)
    with pytest.raises(ValueError, match="past the 1 epochs"):
        run(epochs=1, ckpt=tmp_path)


def test_a_cosine_schedule_sets_each_steps_rate_and_resumes_identically(tmp_path, monkeypatch):
    # The rate each optimizer step used, read where Adam steps.
    rates, adam_step = [], torch.optim.Adam.step

    def step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return adam_step(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.optim.Adam, "step", step)
        run(epochs=2, lr=0.1, lr_schedule="cosine")  # 2 epochs of 4 steps
    assert rates == pytest.approx([0.1 * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)])

    straight, _ = run(epochs=2, lr_schedule="cosine")
    constant, _ = run(epochs=2)
    assert not torch.equal(
        constant.backbone.block1.conv.weight, straight.backbone.block1.conv.weight
    )

    # Interrupted in its second epoch and resumed, it ends with the same weights.
    def crash(step, total):
        if step == 6:
            raise KeyboardInterrupt

    fw = framework()
    fw.on_step_end = crash
    with pytest.raises(KeyboardInterrupt):
        run(epochs=2, ckpt=tmp_path / "crash", fw=fw, lr_schedule="cosine")
    resumed, _ = run(
        epochs=2, ckpt=tmp_path / "crash", fw=framework(init_seed=5), lr_schedule="cosine"
    )
    assert_same_weights(straight, resumed)
    # A finished shorter run cannot be extended: its schedule spanned its own epochs.
    run(epochs=1, ckpt=tmp_path / "short", lr_schedule="cosine")
    with pytest.raises(ValueError, match="epochs: 1 -> 2"):
        run(epochs=2, ckpt=tmp_path / "short", lr_schedule="cosine")
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        TrainConfig(epochs=1, batch_size=1, lr_schedule="step")


def test_supervised_training_lowers_the_loss():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (64,), generator=g)
    noise = torch.randint(0, 128, (64, 1, 16, 16), generator=g)
    images = (noise + 40 * labels.view(-1, 1, 1, 1)).to(torch.uint8)  # brightness is the class
    fw = framework("supervised", AugmentPolicy.supervised())
    log = train(fw, images, labels, TrainConfig(epochs=5, batch_size=16), progress=False)
    losses = [e["loss"] for e in log["epochs"]]
    assert losses[-1] < 0.5 * losses[0]  # 1.03 -> 0.29 at the time of writing


def test_bad_input_is_refused():
    images, labels = data()
    with pytest.raises(TypeError, match="uint8"):
        train(framework(), images.float(), labels, TrainConfig(1, 16), progress=False)
    with pytest.raises(ValueError, match="no full batch"):
        train(framework(), images[:8], labels[:8], TrainConfig(1, 16), progress=False)
    with pytest.raises(ValueError, match="labels"):
        train(framework(), images, labels[:3], TrainConfig(1, 16), progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(1, 16, optimizer="lamb")
    with pytest.raises(ValueError, match="snapshot_epochs"):
        TrainConfig(2, 16, snapshot_epochs=(3,))


# ---------------------------------------------------------------------------- DDP
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# SGD, not Adam: Adam's normalised first steps turn rounding-level differences in near-zero
# gradients into lr-sized weight differences, which says nothing about the two runs' gradients.
DDP_RUN = dict(epochs=2, optimizer="sgd", lr=0.01)


def _ddp_worker(rank, world, port, out_dir):
    # What torchrun sets; train() sees WORLD_SIZE > 1 and starts (and ends) a gloo group.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world))
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank))
    fw, log = run(ckpt=out_dir, fw=framework(policy=AugmentPolicy.identity()), **DDP_RUN)
    torch.save({"model": fw.state_dict(), "log": log}, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_process_ddp_matches_one_process_on_the_global_batch(tmp_path):
    """Global batch 16 as 2 x 8: gathered negatives, synchronised BatchNorm and averaged
    gradients reproduce the one-process run to rounding (the largest weight difference after
    8 steps is about 4e-6). The policy is deterministic because each rank draws its own views;
    with random views the runs would be different draws."""
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single, log = run(fw=framework(policy=AugmentPolicy.identity()), **DDP_RUN)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for k, v in single.state_dict().items():
        assert torch.equal(ranks[0]["model"][k], ranks[1]["model"][k]), k
        torch.testing.assert_close(ranks[0]["model"][k], v, atol=5e-5, rtol=0, msg=k)
    assert ranks[0]["log"]["world_size"] == 2
    for a, b in zip(ranks[0]["log"]["epochs"], log["epochs"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    state = torch.load(tmp_path / "last.pt", weights_only=True)  # written by rank 0 only
    assert state["epoch"] == 2 and len(state["rng"]["augment"]) == 2


def test_a_bare_cuda_device_gets_an_index(monkeypatch):
    # torch.cuda.set_device refuses "cuda" without an index; found on a GPU machine.
    from memloc import train as train_module

    calls = []
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(d))
    assert train_module.rank_device("cuda", 1) == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert train_module.rank_device("cuda", 2) == torch.device("cuda", 1)
    assert calls == [torch.device("cuda", 0), torch.device("cuda", 1)]
    assert train_module.rank_device("cpu", 1) == torch.device("cpu")
