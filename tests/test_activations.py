"""Activation capture: layer names, reductions, one forward pass, hooks cleaned up; views."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from memloc.activations import (
    LayerRecorder,
    evaluation,
    flatten,
    iter_views,
    record,
    resolve_layers,
    unit_mean,
)
from memloc.models import create

RESNET9_POINTS = ["1", "2", "3", "4", "Res2", "5", "6", "7", "8", "Res6"]


def resnet9():
    torch.manual_seed(0)
    return create("resnet9", in_channels=1, width=0.25).eval()


def tiny_vit():
    torch.manual_seed(0)
    return create(
        "vit_tiny", in_channels=1, depth=2, dim=16, num_heads=2, image_size=16, patch_size=4
    ).eval()


def noise_policy(x, generator):
    return x + 0.1 * torch.randn(x.shape, generator=generator, device=x.device)


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


# ------------------------------------------------------------------------------ names
def test_resolve_memloc_points_in_forward_order():
    model = resnet9()
    assert [p.name for p in resolve_layers(model)] == RESNET9_POINTS
    points = resolve_layers(model, ["Res6", "3"])
    assert [(p.name, p.module, p.kind) for p in points] == [
        ("Res6", "res6", "residual"),
        ("3", "block3", "conv"),
    ]
    # A dotted module path works beside the point names.
    (p,) = resolve_layers(model, "block3.conv")
    assert (p.name, p.module, p.kind) == ("block3.conv", "block3.conv", "conv")


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match="Res2") as err:
        resolve_layers(resnet9(), ["9"])
    assert "block1.conv" in str(err.value)
    with pytest.raises(KeyError, match="fc"):
        resolve_layers(nn.Sequential(OrderedDict(fc=nn.Linear(2, 2))), ["fc2"])


def test_bad_layer_lists():
    with pytest.raises(ValueError, match="empty"):
        resolve_layers(resnet9(), [])
    with pytest.raises(ValueError, match="more than once"):
        resolve_layers(resnet9(), ["1", "1"])


def test_plain_module_defaults_to_children():
    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), act=nn.ReLU(), head=nn.Linear(2, 2)))
    assert [p.name for p in resolve_layers(model)] == ["conv", "act", "head"]


def test_vit_unit_points():
    vit = tiny_vit()
    names = [p.name for p in resolve_layers(vit)]
    assert names[:4] == ["block1.attn", "block1.res1", "block1.mlp", "block1"]
    units = [p.name for p in resolve_layers(vit, units=True)]
    assert units == ["block1.mlp.act", "block2.mlp.act"]
    x = torch.rand(3, 1, 16, 16)
    out = record(vit, x, ["block2.mlp.act", "block1.attn"], reduce="unit_mean")
    assert list(out) == ["block2.mlp.act", "block1.attn"]
    assert out["block2.mlp.act"].shape == (3, 64)  # tokens averaged, 4 * dim hidden units
    assert out["block1.attn"].shape == (3, 16)


# ------------------------------------------------------------------------------ reductions
def test_reductions():
    conv = torch.rand(2, 3, 4, 5)
    assert torch.allclose(unit_mean(conv), conv.mean(dim=(2, 3)))
    tokens = torch.rand(2, 7, 6)
    assert torch.allclose(unit_mean(tokens), tokens.mean(dim=1))
    vectors = torch.rand(2, 6)
    assert torch.equal(unit_mean(vectors), vectors)
    assert torch.equal(flatten(conv), conv.reshape(2, -1))


def test_recorder_matches_manual_forward():
    model = resnet9()
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        out1 = model.block1(x)
        out2 = model.block2(out1)
        out4 = model.block4(model.block3(out2))
        res2 = out2 + out4
    acts = record(model, x, ["1", "Res2"], reduce="flatten")
    assert torch.allclose(acts["1"], out1.reshape(4, -1))
    assert torch.allclose(acts["Res2"], res2.reshape(4, -1))
    means = record(model, x, ["Res2"], reduce="unit_mean")
    assert torch.allclose(means["Res2"], res2.mean(dim=(2, 3)))


def test_all_layers_from_one_forward_pass_and_hooks_removed():
    model = resnet9()
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(1))
    before = hook_count(model)
    with LayerRecorder(model, None, reduce="unit_mean") as rec:
        assert hook_count(model) == before + len(RESNET9_POINTS)
        acts = rec(torch.rand(2, 1, 16, 16))
    assert len(calls) == 1
    assert list(acts) == RESNET9_POINTS
    assert hook_count(model) == before


def test_forward_stops_after_last_requested_point():
    model = resnet9()
    ran = []
    model.block8.register_forward_hook(lambda *a: ran.append("8"))
    record(model, torch.rand(2, 1, 16, 16), ["1", "4"])
    assert ran == []


def test_hooks_removed_on_exception():
    model = resnet9()
    before = hook_count(model)
    with pytest.raises(ValueError, match="channel"):
        record(model, torch.rand(2, 3, 16, 16), ["1"])  # wrong number of channels
    assert hook_count(model) == before
    with pytest.raises(ZeroDivisionError):
        with LayerRecorder(model, ["1"]):
            raise ZeroDivisionError
    assert hook_count(model) == before


def test_tuple_output_and_reused_module():
    class WithAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(4, 1, batch_first=True)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.attn(x, x, x)[0])
            return self.relu(x - 1)  # the same ReLU module runs twice

    model = WithAttention().eval()
    x = torch.rand(2, 3, 4)
    out = record(model, x, ["attn"], reduce="unit_mean")
    with torch.no_grad():
        expected = model.attn(x, x, x)[0].mean(dim=1)
    assert torch.allclose(out["attn"], expected)
    with pytest.raises(RuntimeError, match="more than once"):
        record(model, x, ["relu"])


def test_batch_must_be_the_first_axis():
    class SequenceFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.TransformerEncoderLayer(4, 1, 8)  # expects (T, B, D)

        def forward(self, x):
            return self.attn(x.transpose(0, 1))

    with pytest.raises(ValueError, match="batch_first"):
        record(SequenceFirst().eval(), torch.rand(2, 3, 4), ["attn"])


# ------------------------------------------------------------------------------ forwards
def test_scripts_forward_is_the_children_in_order_without_the_sums():
    model = resnet9()
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        h, manual = x, {}
        for i in range(1, 9):
            h = model.get_submodule(f"block{i}")(h)
            manual[str(i)] = h.reshape(4, -1)
    scripts = record(model, x, None, reduce="flatten", forward="scripts")
    paper = record(model, x, None, reduce="flatten")
    assert list(scripts) == RESNET9_POINTS
    for name, value in manual.items():
        torch.testing.assert_close(scripts[name], value)
    # The sums are skipped: what the network carries at Res2 (Res6) is block 4's (block 8's).
    torch.testing.assert_close(scripts["Res2"], manual["4"])
    torch.testing.assert_close(scripts["Res6"], manual["8"])
    for name in ["1", "2", "3", "4"]:  # before the first sum: the same network
        assert torch.equal(scripts[name], paper[name])
    for name in ["Res2", "5", "6", "7", "8", "Res6"]:
        assert not torch.allclose(scripts[name], paper[name]), name
    means = record(model, x, ["Res6", "2"], forward="scripts")  # unit_mean, in the order asked
    assert list(means) == ["Res6", "2"]
    torch.testing.assert_close(means["Res6"], scripts["Res6"].reshape(4, -1, 1).mean(-1))


def test_scripts_forward_stops_after_last_requested_block():
    model = resnet9()
    ran = []
    model.block5.register_forward_hook(lambda *a: ran.append("5"))
    record(model, torch.rand(2, 1, 16, 16), ["1", "Res2"], forward="scripts")
    assert ran == []


def test_scripts_forward_errors():
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match="unknown forward 'skipless'"):
        record(resnet9(), x, ["1"], forward="skipless")
    with pytest.raises(ValueError, match="VisionTransformer has none: use forward='paper'"):
        record(tiny_vit(), x, ["block1.mlp.act"], forward="scripts")
    with pytest.raises(ValueError, match="not 'block3.conv'"):
        record(resnet9(), x, ["block3.conv"], forward="scripts")
    with pytest.raises(ValueError, match="channel"):  # the input is still checked
        record(resnet9(), torch.rand(2, 3, 16, 16), ["1"], forward="scripts")


# ------------------------------------------------------------------------------ views
def collect(batches, pairs=False):
    """{(point, k): view(s)} from an iter_views stream."""
    out = {}
    for b in batches:
        n = len(b.points)
        for j in range(n):
            key = (int(b.points[j]), int(b.ks[j]))
            out[key] = (b.views[j], b.views[n + j]) if pairs else (b.views[j],)
    return out


@pytest.mark.parametrize("mode", ["single", "pairs"])
def test_views_do_not_depend_on_batch_size(mode):
    images = torch.rand(70, 1, 4, 4)  # more than one block of draws
    kwargs = dict(k_aug=3, policy=noise_policy, mode=mode, seed=5)
    runs = [collect(iter_views(images, batch_size=b, **kwargs), mode == "pairs") for b in (1, 50)]
    assert runs[0].keys() == {(i, k) for i in range(70) for k in range(3)}
    for key, views in runs[0].items():
        for a, b in zip(views, runs[1][key], strict=True):
            assert torch.equal(a, b)
    other = collect(iter_views(images, batch_size=50, **{**kwargs, "seed": 6}), mode == "pairs")
    assert not torch.equal(other[(0, 0)][0], runs[0][(0, 0)][0])


def test_view_modes():
    images = (torch.rand(5, 1, 4, 4) * 255).to(torch.uint8)
    x = images.float() / 255
    (batch,) = iter_views(images, k_aug=0, policy=None, mode="single", batch_size=10)
    assert torch.equal(batch.views, x) and batch.ks.tolist() == [0] * 5
    (batch,) = iter_views(images, k_aug=1, policy=noise_policy, mode="original", batch_size=10)
    assert torch.equal(batch.views[:5], x) and not torch.equal(batch.views[5:], x)
    (batch,) = iter_views(images, k_aug=1, policy=noise_policy, mode="pairs", batch_size=10)
    assert batch.views.shape == (10, 1, 4, 4)
    assert not torch.equal(batch.views[:5], batch.views[5:])
    with pytest.raises(ValueError, match="policy"):
        next(iter_views(images, k_aug=2, policy=None))
    with pytest.raises(ValueError, match="one view per image"):
        next(iter_views(images, k_aug=1, policy=lambda x, g: x[:1]))


def test_evaluation_restores_modes():
    model = resnet9().train()
    model.block3.bn.eval()
    with evaluation(model):
        assert not any(m.training for m in model.modules())
        assert torch.is_inference_mode_enabled()
    assert model.training and model.block1.bn.training and not model.block3.bn.training
