"""The encoders: ResNet9 as in the paper, torchvision-compatible ResNets, the ViT, the registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm
from toys import channel_mean_resnet9

from memloc.models import Add, Encoder, MeasurementPoint, available, create, register
from memloc.models.vit import PRESETS

# Small versions of every architecture (fast on CPU).
SMALL = {
    "resnet9": {"width": 0.25},
    "resnet18": {"width": 0.125},
    "resnet34": {"width": 0.125},
    "resnet50": {"width": 0.125},
    "vit_tiny": {"depth": 2, "dim": 32, "num_heads": 2, "image_size": 16},
    "vit_small": {"depth": 2, "dim": 32, "num_heads": 2, "image_size": 16},
    "vit_base": {"depth": 2, "dim": 32, "num_heads": 2, "image_size": 16},
}


def record(model: nn.Module, modules: list[str]) -> dict[str, list[torch.Tensor]]:
    """Attach forward hooks; returns {module path: [outputs, one per call]} filled on forward."""
    seen = {name: [] for name in modules}
    for name in modules:
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: seen[name].append(out.detach().clone())
        )
    return seen


def small(name: str, **kwargs) -> Encoder:
    torch.manual_seed(0)
    return create(name, **{**SMALL[name], **kwargs}).eval()


# ----------------------------------------------------------------------------------- registry


def test_registry_names_and_unknown_name():
    assert available() == [
        "resnet9",
        "resnet18",
        "resnet34",
        "resnet50",
        "vit_tiny",
        "vit_small",
        "vit_base",
    ]
    with pytest.raises(ValueError, match="unknown encoder 'resnet7'") as err:
        create("resnet7")
    for name in available():
        assert name in str(err.value)
    with pytest.raises(ValueError, match="already registered"):
        register("resnet9")(lambda **kw: None)


def test_measurement_point_kind_is_checked():
    with pytest.raises(ValueError, match="kind"):
        MeasurementPoint("1", "block1", "convolution")


# ------------------------------------------------------------------------------------ ResNet9


def test_resnet9_points_in_exact_order():
    enc = create("resnet9")
    points = enc.measurement_points()
    assert [p.name for p in points] == ["1", "2", "3", "4", "Res2", "5", "6", "7", "8", "Res6"]
    assert [p.module for p in points] == [
        "block1",
        "block2",
        "block3",
        "block4",
        "res2",
        "block5",
        "block6",
        "block7",
        "block8",
        "res6",
    ]
    assert [p.kind for p in points] == ["conv"] * 4 + ["residual"] + ["conv"] * 4 + ["residual"]
    assert isinstance(enc.res2, Add) and isinstance(enc.res6, Add)


def test_resnet9_shapes_at_every_point_for_32px():
    enc = create("resnet9").eval()
    points = enc.measurement_points()
    seen = record(enc, [p.module for p in points])
    out = enc(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 256) and enc.feature_dim == 256
    channels = [32, 64, 64, 64, 64, 128, 256, 256, 256, 256]
    sizes = [16, 8, 8, 8, 8, 4, 2, 2, 2, 2]
    for p, c, s in zip(points, channels, sizes, strict=True):
        assert seen[p.module][0].shape == (2, c, s, s), p.name
    # Block outputs are taken after ReLU (and pool): non-negative.
    assert all((seen[f"block{i}"][0] >= 0).all() for i in range(1, 9))
    # The representation is the global average of the Res6 map.
    torch.testing.assert_close(out, seen["res6"][0].mean(dim=(2, 3)))


def test_resnet9_residual_sums():
    enc = small("resnet9").train()  # batch statistics: the sums must hold in train mode too
    seen = record(enc, ["block2", "block4", "res2", "block6", "block8", "res6"])
    enc(torch.rand(4, 3, 32, 32))
    torch.testing.assert_close(seen["res2"][0], seen["block2"][0] + seen["block4"][0])
    torch.testing.assert_close(seen["res6"][0], seen["block6"][0] + seen["block8"][0])


def test_resnet9_block_structure():
    enc = create("resnet9")
    for i in range(1, 9):
        block = enc.get_submodule(f"block{i}")
        conv = block.conv
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
        assert isinstance(block.bn, nn.BatchNorm2d) and isinstance(block.relu, nn.ReLU)
        assert hasattr(block, "pool") == (i in (1, 2, 5, 6))


def test_resnet9_width_multiplier_and_in_channels():
    enc = create("resnet9", width=0.25, in_channels=1)
    assert [enc.get_submodule(f"block{i}").conv.out_channels for i in range(1, 9)] == [
        8,
        16,
        16,
        16,
        32,
        64,
        64,
        64,
    ]
    assert enc.block1.conv.in_channels == 1
    assert enc.feature_dim == 64
    assert enc(torch.rand(3, 1, 28, 28)).shape == (3, 64)
    # round(c * width), at least 1 channel.
    tiny = create("resnet9", width=0.01)
    assert tiny.block1.conv.out_channels == 1 and tiny.feature_dim == 3
    assert create("resnet9", width=1.5).feature_dim == 384
    for bad in (0, -1.0, "2"):
        with pytest.raises(ValueError, match="width"):
            create("resnet9", width=bad)
    with pytest.raises(ValueError, match="in_channels"):
        create("resnet9", in_channels=0)


def test_resnet9_input_errors():
    enc = small("resnet9")
    assert enc.min_input_size == 16
    assert enc(torch.rand(1, 3, 16, 16)).shape == (1, enc.feature_dim)
    with pytest.raises(ValueError, match="at least 16x16.*got 15x15.*[Rr]esize or pad"):
        enc(torch.rand(1, 3, 15, 15))
    with pytest.raises(ValueError, match="3-channel.*got 1 channels.*in_channels=1"):
        enc(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        enc(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match=r"float\(\) / 255"):
        enc(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


# ------------------------------------------------------------------------ every architecture


@pytest.mark.parametrize("name", list(SMALL))
def test_every_point_resolves_and_fires_once_in_forward_order(name):
    enc = small(name)
    size = enc.min_input_size if name.startswith("vit") else 16
    modules = {p.module: None for p in enc.measurement_points() + enc.unit_points()}
    order, kept, copies = [], {}, {}
    for p_module in modules:

        def hook(_m, _i, out, module=p_module):
            order.append(module)
            kept[module], copies[module] = out, out.detach().clone()

        enc.get_submodule(p_module).register_forward_hook(hook)
    out = enc(torch.rand(2, enc.in_channels, size, size))
    assert out.shape == (2, enc.feature_dim)
    assert sorted(order) == sorted(modules), "every point's module runs exactly once"
    # No later in-place operation overwrites a recorded activation (recorders may keep views).
    for module in modules:
        torch.testing.assert_close(kept[module].detach(), copies[module])
    names = [p.name for p in enc.measurement_points()]
    assert len(set(names)) == len(names)
    # measurement_points() lists the points in the order the forward pass reaches them.
    point_modules = [p.module for p in enc.measurement_points()]
    assert [m for m in order if m in point_modules] == point_modules
    assert enc.arch == name


@pytest.mark.parametrize("name", list(SMALL))
def test_config_round_trip(name):
    enc = small(name, in_channels=1)
    again = create(enc.arch, **enc.config())
    assert type(again) is type(enc) and again.config() == enc.config()
    assert again.measurement_points() == enc.measurement_points()
    assert again.feature_dim == enc.feature_dim
    shapes = {k: v.shape for k, v in enc.state_dict().items()}
    assert {k: v.shape for k, v in again.state_dict().items()} == shapes
    again.load_state_dict(enc.state_dict())
    again.eval()
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(again(x), enc(x))


# ------------------------------------------------------------------------ torchvision ResNets


def torchvision_small_image(name: str, in_channels: int = 3) -> nn.Module:
    """torchvision's network with the same small-image changes: 3x3 stem, no max-pool, no fc."""
    net = getattr(tvm, name)(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net


@pytest.mark.parametrize("name, dim", [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)])
def test_torchvision_weights_load_and_outputs_match(name, dim):
    torch.manual_seed(0)
    reference = torchvision_small_image(name).eval()
    ours = create(name).eval()
    assert ours.feature_dim == dim
    ref_state = reference.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref_state.items()
    }
    ours.load_state_dict(ref_state)  # strict
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


def test_resnet_points_and_residual_sums():
    enc = small("resnet18").train()
    names = [p.name for p in enc.measurement_points()]
    assert names[:5] == ["stem", "layer1.0.res", "layer1.0", "layer1.1.res", "layer1.1"]
    assert names[-2:] == ["layer4.1.res", "layer4.1"]
    assert len(names) == 1 + 2 * 8
    assert len(small("resnet34").measurement_points()) == 1 + 2 * 16
    assert [p.kind for p in enc.measurement_points()[:3]] == ["conv", "residual", "block"]
    seen = record(
        enc,
        ["layer1.0", "layer1.1.bn2", "layer1.1.res", "layer1.1"]
        + ["layer2.0.downsample", "layer2.0.bn2", "layer2.0.res"],
    )
    enc(torch.rand(2, 3, 16, 16))
    # Identity shortcut: res = branch + block input (layer1.0's output); output = ReLU(res).
    torch.testing.assert_close(
        seen["layer1.1.res"][0], seen["layer1.1.bn2"][0] + seen["layer1.0"][0]
    )
    torch.testing.assert_close(seen["layer1.1"][0], F.relu(seen["layer1.1.res"][0]))
    # Projection shortcut: res = branch + downsample(x).
    torch.testing.assert_close(
        seen["layer2.0.res"][0], seen["layer2.0.bn2"][0] + seen["layer2.0.downsample"][0]
    )


def test_resnet_identity_shortcut_sum():
    enc = small("resnet50").eval()
    seen = record(enc, ["layer1.0", "layer1.1.bn3", "layer1.1.res"])
    enc(torch.rand(2, 3, 8, 8))
    torch.testing.assert_close(
        seen["layer1.1.res"][0], seen["layer1.1.bn3"][0] + seen["layer1.0"][0]
    )


def test_resnet_width_in_channels_and_input_errors():
    enc = create("resnet18", width=0.5, in_channels=1).eval()
    assert enc.conv1.in_channels == 1 and enc.conv1.out_channels == 32
    assert enc.conv1.kernel_size == (3, 3) and enc.conv1.stride == (1, 1)
    assert enc.feature_dim == 256
    assert create("resnet50", width=0.5).feature_dim == 1024
    assert enc.min_input_size == 8
    assert enc(torch.rand(1, 1, 8, 8)).shape == (1, 256)
    with pytest.raises(ValueError, match="at least 8x8"):
        enc(torch.rand(1, 1, 7, 7))
    with pytest.raises(ValueError, match="in_channels=3"):
        enc(torch.rand(1, 3, 8, 8))


# --------------------------------------------------------------------------------------- ViT


def test_vit_points_and_sublayer_sums():
    enc = small("vit_tiny", in_channels=1)
    assert [p.name for p in enc.measurement_points()] == [
        "block1.attn",
        "block1.res1",
        "block1.mlp",
        "block1",
        "block2.attn",
        "block2.res1",
        "block2.mlp",
        "block2",
    ]
    kinds = [p.kind for p in enc.measurement_points()[:4]]
    assert kinds == ["attention", "residual", "mlp", "residual"]
    assert [p.module for p in enc.unit_points()] == ["blocks.0.mlp.act", "blocks.1.mlp.act"]
    modules = [
        "blocks.0.attn",
        "blocks.0.res1",
        "blocks.0.mlp",
        "blocks.0.mlp.act",
        "blocks.0",
        "blocks.1",
        "norm",
    ]
    seen = record(enc, modules + ["blocks.1.norm1"])
    out = enc(torch.rand(3, 1, 16, 16))
    n_tokens = 1 + (16 // 4) ** 2
    assert seen["blocks.0.attn"][0].shape == (3, n_tokens, 32)
    assert seen["blocks.0.mlp.act"][0].shape == (3, n_tokens, 128)
    assert (seen["blocks.0.mlp.act"][0] >= -0.17).all()  # GELU's minimum is about -0.17
    # block output = stream after attention + MLP output.
    torch.testing.assert_close(
        seen["blocks.0"][0], seen["blocks.0.res1"][0] + seen["blocks.0.mlp"][0]
    )
    # The representation is the cls token after the final norm.
    torch.testing.assert_close(out, seen["norm"][0][:, 0])
    assert out.shape == (3, enc.feature_dim) and enc.feature_dim == 32


def test_vit_attention_matches_explicit_softmax():
    enc = small("vit_tiny")
    attn = enc.blocks[0].attn
    x = torch.randn(2, 5, 32)
    B, N, D, H = 2, 5, 32, 2
    q, k, v = attn.qkv(x).reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-2, -1) / (D // H) ** 0.5, dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(B, N, D))
    torch.testing.assert_close(attn(x), expected)


def test_vit_presets_width_and_errors():
    for name, (dim, _depth, heads) in PRESETS.items():
        enc = create(name, depth=1)
        assert (enc.dim, enc.num_heads, enc.feature_dim) == (dim, heads, dim)
        assert enc.blocks[0].mlp.fc1.out_features == 4 * dim
    assert len(create("vit_tiny").blocks) == 12
    assert create("vit_tiny", depth=1, width=0.5).dim == 96
    assert create("vit_tiny", depth=1, width=0.1).dim == 18  # 19.2 -> multiple of 3 heads
    assert create("vit_tiny", depth=1, image_size=28, patch_size=7).pos_embed.shape == (1, 17, 192)
    with pytest.raises(ValueError, match="not divisible by patch_size 5"):
        create("vit_tiny", depth=1, image_size=32, patch_size=5)
    with pytest.raises(ValueError, match="num_heads"):
        create("vit_tiny", depth=1, dim=32)  # 3 heads do not divide 32
    with pytest.raises(ValueError, match="dim or width"):
        create("vit_tiny", depth=1, dim=48, width=0.5)
    enc = small("vit_tiny")
    assert enc.min_input_size == 16
    with pytest.raises(ValueError, match="16x16 images but got 32x32.*image_size=32"):
        enc(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 16x16"):
        enc(torch.rand(1, 3, 8, 8))


# ------------------------------------------------------------------------ the scripts' reading


def test_resnet9_skipless_getter_on_hand_set_weights():
    enc = channel_mean_resnet9()
    x = torch.rand(3, 1, 16, 16)
    getter = enc.skipless_getter([f"block{i}" for i in range(1, 9)])
    seen = record(enc, [f"block{i}" for i in range(1, 9)] + ["res2", "res6"])
    with torch.no_grad():
        enc(x)  # the hooks' first entries: the paper's forward
        skipless = getter(x)
    # Every unit carries the same map: 16 -> pool -> 8 -> pool -> 4 (blocks 2, 3, 4).
    four = F.max_pool2d(F.max_pool2d(x, 2), 2)
    # Without the sums: blocks 5 and 6 pool the 4x4 map twice, blocks 7 and 8 pass it on.
    one = F.max_pool2d(F.max_pool2d(four, 2), 2)
    expected = {"block4": four, "block5": F.max_pool2d(four, 2), "block8": one}
    for block, value in expected.items():
        torch.testing.assert_close(skipless[block], value.expand_as(skipless[block]))
    # The paper's forward adds block 2 to block 4 (Res2 = 2 x the map) and block 6 to block 8
    # (Res6 = 2 x (2 x one)); the getter never adds, so from Res2 on the paper's maps are
    # exactly 2x (blocks 5 to 8) and 4x (Res6) the skip-less ones, and equal before.
    for i in range(1, 5):
        torch.testing.assert_close(seen[f"block{i}"][0], skipless[f"block{i}"])
    torch.testing.assert_close(seen["res2"][0], 2 * skipless["block4"])
    for i in range(5, 9):
        torch.testing.assert_close(seen[f"block{i}"][0], 2 * skipless[f"block{i}"])
    torch.testing.assert_close(seen["res6"][0], 4 * skipless["block8"])


def test_resnet9_skipless_getter_is_the_children_in_order():
    enc = small("resnet9", in_channels=1)
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        out = enc.skipless_getter(["block8", "block3"])(x)
        h = x
        manual = {}
        for i in range(1, 9):
            h = enc.get_submodule(f"block{i}")(h)
            manual[f"block{i}"] = h
    assert set(out) == {"block3", "block8"}
    torch.testing.assert_close(out["block3"], manual["block3"])
    torch.testing.assert_close(out["block8"], manual["block8"])
    assert enc.skipless_block("res2") == "block4" and enc.skipless_block("res6") == "block8"
    assert enc.skipless_block("block5") == "block5"
    with pytest.raises(ValueError, match="not 'block3.conv'"):
        enc.skipless_block("block3.conv")


# ----------------------------------------------------------------------------------- torchvision


def test_torchvision_resnet18_by_name_loads_torchvision_weights_and_returns_its_features(tmp_path):
    from safetensors.torch import save_file

    from memloc.artifacts import load_checkpoint

    torch.manual_seed(0)
    reference = tvm.resnet18().eval()
    save_file(reference.state_dict(), tmp_path / "r18.safetensors")  # with its fc head
    encoder = load_checkpoint(tmp_path / "r18.safetensors", "torchvision:resnet18")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    reference.fc = nn.Identity()  # the representation: the pooled 512-d feature
    with torch.no_grad():
        assert torch.allclose(encoder(x), reference(x), atol=1e-6)
    assert encoder.arch == "torchvision:resnet18" and encoder.feature_dim == 512
    # Parameter names are torchvision's: the wrapper adds no prefix and drops only fc.
    assert set(reference.state_dict()) == set(encoder.state_dict())


def test_torchvision_default_points_are_the_blocks_and_any_module_path_resolves():
    from memloc.activations import resolve_layers
    from memloc.metrics import unitmem

    encoder = create("torchvision:resnet18").eval()
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert [p.name for p in encoder.measurement_points()] == blocks
    assert [p.name for p in resolve_layers(encoder, None, units=True)] == blocks
    assert [p.module for p in resolve_layers(encoder, ["layer3.1.conv2", "avgpool"])] == [
        "layer3.1.conv2",
        "avgpool",
    ]
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    units = unitmem(encoder, x, k_aug=0).units
    # 64 + 64 + 128 + 128 + 256 + 256 + 512 + 512 units, nothing from avgpool or fc.
    assert units.groupby("layer", sort=False).size().to_dict() == {
        name: n for name, n in zip(blocks, [64, 64, 128, 128, 256, 256, 512, 512], strict=True)
    }


def test_torchvision_options_and_errors():
    gray = create("torchvision:resnet18", in_channels=1)
    assert gray.conv1.in_channels == 1 and gray(torch.rand(2, 1, 32, 32)).shape == (2, 512)
    rebuilt = create(gray.arch, **gray.config())
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in gray.state_dict().items()
    }
    gray.eval()
    assert not gray._model.training and not gray.layer1.training
    with pytest.raises(ValueError, match="no width multiplier"):
        create("torchvision:resnet18", width=0.5)
    with pytest.raises(ValueError, match="torchvision has no model 'resnet7'"):
        create("torchvision:resnet7")
    with pytest.raises(ValueError, match="unknown architecture library 'keras'"):
        create("keras:resnet18")
    with pytest.raises(ValueError, match="does not accept the arguments"):
        create("torchvision:resnet18", depth=3)
    with pytest.raises(ValueError, match="at least 32x32"):
        gray(torch.rand(1, 1, 16, 16))


def test_a_torchvision_encoder_trains_with_a_framework():
    from memloc.augment import AugmentPolicy
    from memloc.ssl import create_framework
    from memloc.train import TrainConfig, train

    torch.manual_seed(0)
    encoder = create("torchvision:resnet18", in_channels=1)
    assert encoder.training and encoder.feature_dim == 512  # known before any forward
    framework = create_framework("simclr", encoder, policy=AugmentPolicy.simclr())
    images = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)
    before = encoder.layer4[1].conv2.weight.clone()
    log = train(framework, images, torch.zeros(8, dtype=torch.long), TrainConfig(1, 4))
    assert len(log["epochs"]) == 1 and not torch.equal(before, encoder.layer4[1].conv2.weight)


# ----------------------------------------------------------------------------------------- timm


def test_a_timm_vit_by_name_loads_timm_weights_and_measures_its_blocks(tmp_path):
    import timm
    from safetensors.torch import save_file

    from memloc.artifacts import load_checkpoint
    from memloc.metrics import unitmem

    kwargs = {"img_size": 32, "patch_size": 8, "depth": 2}
    torch.manual_seed(0)
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, **kwargs).eval()
    save_file(reference.state_dict(), tmp_path / "vit.safetensors")  # with its 1000-way head
    encoder = load_checkpoint(tmp_path / "vit.safetensors", "timm:vit_tiny_patch16_224", **kwargs)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    reference.reset_classifier(0)  # the representation: the pooled class token, 192-d
    with torch.no_grad():
        assert torch.allclose(encoder(x), reference(x), atol=1e-5)
    assert encoder.feature_dim == 192
    assert set(encoder.state_dict()) == set(reference.state_dict())
    # LayerMem reads the blocks; UnitMem their MLP's hidden units after GELU (768 = 4 x 192),
    # as memloc's own ViT.
    assert [p.name for p in encoder.measurement_points()] == ["blocks.0", "blocks.1"]
    units = unitmem(encoder, x, k_aug=0).units
    assert units.groupby("layer", sort=False).size().to_dict() == {
        "blocks.0.mlp.act": 768,
        "blocks.1.mlp.act": 768,
    }
    assert units["defined"].any()
    # Rebuilt from its config (the untrained twin of the regime checks): same shapes.
    twin = create(encoder.arch, **encoder.config())
    assert {k: v.shape for k, v in twin.state_dict().items()} == {
        k: v.shape for k, v in encoder.state_dict().items()
    }


def test_timm_grey_images_and_errors():
    r18 = create("timm:resnet18", in_channels=1).eval()
    assert r18.conv1.in_channels == 1 and r18(torch.rand(2, 1, 32, 32)).shape == (2, 512)
    assert [p.name for p in r18.measurement_points()][-1] == "layer4.1"
    with pytest.raises(ValueError, match="timm has no model 'resnet7'"):
        create("timm:resnet7")
    with pytest.raises(ValueError, match="does not accept the arguments"):
        create("timm:resnet18", depth=3)
