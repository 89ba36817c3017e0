"""Interventions: pruning units, swapping layers, training one unit, and who owns a unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from memloc.activations import record
from memloc.augment import AugmentPolicy
from memloc.interventions import prune_units, swap_layers, train_one_unit
from memloc.models import create
from memloc.models.units import unit_modules
from memloc.ssl import SimCLR

# ResNet9 at width 0.25: channels 8, 16, 16, 16, 32, 64, 64, 64.
WIDTH = 0.25
UNITS_3 = 16
UNITS_4 = 16


def tiny_encoder(seed: int = 0, width: float = WIDTH):
    """A 1-channel ResNet9 whose BatchNorm layers hold non-trivial parameters and statistics
    (so that nothing passes because a BatchNorm is still the identity)."""
    torch.manual_seed(seed)
    encoder = create("resnet9", width=width, in_channels=1)
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return encoder.eval()


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_state(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    current = module.state_dict()
    assert current.keys() == state.keys()
    for name, tensor in state.items():
        assert torch.equal(current[name], tensor), name


def hand_table() -> pd.DataFrame:
    """Layer 3: UnitMem 0.05 * unit (0.00 ... 0.75) with units 0 and 15 undefined (NaN).
    Layer 4: 0.325 + 0.04 * unit (0.325 ... 0.925, no ties with layer 3). Res2: all 0.5 (a
    residual sum, never pruned)."""
    score_3 = np.arange(UNITS_3) * 0.05
    score_3[[0, 15]] = np.nan
    score_4 = 0.325 + 0.04 * np.arange(UNITS_4)
    rows = {
        "layer": ["3"] * UNITS_3 + ["4"] * UNITS_4 + ["Res2"] * UNITS_4,
        "unit": list(range(UNITS_3)) + list(range(UNITS_4)) * 2,
        "unitmem": list(score_3) + list(score_4) + [0.5] * UNITS_4,
    }
    table = pd.DataFrame(rows)
    table["defined"] = table["unitmem"].notna()
    return table


def chosen_units(chosen: pd.DataFrame) -> dict[str, list[int]]:
    return {layer: sorted(g["unit"].tolist()) for layer, g in chosen.groupby("layer")}


def assert_only_channels_zeroed(original, pruned, units: dict[str, list[int]]) -> None:
    """Every tensor equals the original except the chosen channels' conv and BN slices, which
    are 0; the running statistics are untouched."""
    changed = {}
    for layer, channels in units.items():
        block = f"block{layer}"
        for name in ("conv.weight", "bn.weight", "bn.bias"):
            changed[f"{block}.{name}"] = channels
    before, after = original.state_dict(), pruned.state_dict()
    assert before.keys() == after.keys()
    for name, old in before.items():
        new = after[name]
        if name not in changed:
            assert torch.equal(new, old), name
            continue
        rows = torch.zeros(old.shape[0], dtype=torch.bool)
        rows[changed[name]] = True
        assert (new[rows] == 0).all(), name
        assert torch.equal(new[~rows], old[~rows]), name


def test_unit_modules_map_points_to_conv_and_batchnorm():
    encoder = tiny_encoder()
    assert unit_modules(encoder, "8") == (encoder.block8.conv, encoder.block8.bn)
    assert unit_modules(encoder, "block3") == (encoder.block3.conv, encoder.block3.bn)
    assert unit_modules(encoder, "block3.bn") == (encoder.block3.conv, encoder.block3.bn)
    with pytest.raises(ValueError, match="residual"):
        unit_modules(encoder, "Res6")
    with pytest.raises(ValueError, match="valid names: 1, 2, 3"):
        unit_modules(encoder, "9")

    resnet = create("resnet18", width=0.125, in_channels=1)
    assert unit_modules(resnet, "stem") == (resnet.conv1, resnet.bn1)
    block = resnet.layer2[0]
    assert unit_modules(resnet, "layer2.0.conv2") == (block.conv2, block.bn2)
    assert unit_modules(resnet, "layer2.0.bn1") == (block.conv1, block.bn1)
    assert unit_modules(resnet, "layer2.0.downsample.0") == tuple(block.downsample)
    with pytest.raises(ValueError, match="residual"):
        unit_modules(resnet, "layer2.0")

    vit = create("vit_tiny", in_channels=1, depth=2, dim=32, num_heads=2, image_size=16)
    with pytest.raises(NotImplementedError, match="mlp.act"):
        unit_modules(vit, "block1.mlp")
    assert unit_modules(vit, "block2.mlp.act") == (vit.blocks[1].mlp.fc1, None)
    assert unit_modules(vit, "blocks.0.attn.proj") == (vit.blocks[0].attn.proj, None)


def test_pruning_and_training_one_vit_mlp_unit():
    torch.manual_seed(0)
    vit = create("vit_tiny", in_channels=1, depth=2, dim=16, num_heads=2, image_size=8).eval()
    n = vit.blocks[0].mlp.fc1.out_features
    table = pd.DataFrame(
        {"layer": "block1.mlp.act", "unit": range(n), "unitmem": np.linspace(0, 1, n)}
    )
    pruned, chosen = prune_units(vit, table, 0.25, "top")
    assert sorted(chosen["unit"]) == list(range(n - n // 4, n))
    x = torch.rand(3, 1, 8, 8)
    act = record(pruned, x, ["block1.mlp.act"])["block1.mlp.act"][0]  # (B, tokens, hidden)
    assert (act[..., list(chosen["unit"])] == 0).all()
    assert (act[..., : n - n // 4] != 0).any()
    trained = train_one_unit(vit, "block1.mlp.act", 3, torch.rand(1, 8, 8), steps=2, views=4)
    before, after = vit.blocks[0].mlp.fc1.weight, trained.blocks[0].mlp.fc1.weight
    changed = (before != after).any(dim=1)
    assert changed.tolist() == [i == 3 for i in range(n)]


def test_prune_top_per_layer_zeroes_exactly_the_top_units():
    encoder = tiny_encoder()
    before = snapshot(encoder)
    pruned, chosen = prune_units(encoder, hand_table(), 0.25, "top", "per_layer")
    # 4 of 16 units per layer; layer 3's highest defined are 14, 13, 12, 11 (15 is NaN).
    expected = {"3": [11, 12, 13, 14], "4": [12, 13, 14, 15]}
    assert chosen_units(chosen) == expected
    assert list(chosen.columns) == ["layer", "unit", "unitmem", "defined"]
    assert_only_channels_zeroed(encoder, pruned, expected)
    assert_same_state(encoder, before)
    assert pruned is not encoder


def test_prune_low_never_chooses_undefined_units():
    encoder = tiny_encoder()
    pruned, chosen = prune_units(encoder, hand_table(), 0.25, "low", "per_layer")
    expected = {"3": [1, 2, 3, 4], "4": [0, 1, 2, 3]}  # unit 0 of layer 3 is NaN
    assert chosen_units(chosen) == expected
    assert chosen["defined"].all()
    assert_only_channels_zeroed(encoder, pruned, expected)


def test_prune_takes_only_the_defined_units_and_warns_when_too_few():
    table = hand_table()
    table.loc[(table["layer"] == "3") & (table["unit"] > 1), "unitmem"] = np.nan
    table["defined"] = table["unitmem"].notna()
    with pytest.warns(UserWarning, match="only 1 of the 4"):
        _, chosen = prune_units(tiny_encoder(), table, 0.25, "top", layers=["3"])
    assert chosen_units(chosen) == {"3": [1]}


def test_prune_total_ranks_all_layers_together():
    encoder = tiny_encoder()
    pruned, chosen = prune_units(encoder, hand_table(), 0.25, "top", "total")
    # int(0.25 * 32) = 8 units over both layers: layer 4's 0.925 ... 0.685 (units 15 ... 9)
    # and layer 3's 0.70 (unit 14).
    assert chosen_units(chosen) == {"3": [14], "4": [9, 10, 11, 12, 13, 14, 15]}
    assert_only_channels_zeroed(encoder, pruned, chosen_units(chosen))

    _, low = prune_units(encoder, hand_table(), 0.25, "low", "total")
    # Layer 3's 0.05 ... 0.35 (units 1 ... 7; unit 0 is NaN) and layer 4's 0.325 (unit 0).
    assert chosen_units(low) == {"3": [1, 2, 3, 4, 5, 6, 7], "4": [0]}


def test_prune_random_is_seeded_and_draws_from_all_units():
    encoder = tiny_encoder()
    _, first = prune_units(encoder, hand_table(), 0.5, "random", seed=3)
    _, again = prune_units(encoder, hand_table(), 0.5, "random", seed=3)
    _, other = prune_units(encoder, hand_table(), 0.5, "random", seed=4)
    assert first.equals(again)
    assert not first.equals(other)
    counts = first.groupby("layer").size().to_dict()
    assert counts == {"3": 8, "4": 8}  # layers=None skips the residual sum Res2
    # Undefined units may be drawn: over many seeds layer 3's NaN units are chosen sometimes.
    drawn = set()
    for seed in range(20):
        _, chosen = prune_units(encoder, hand_table(), 0.5, "random", layers=["3"], seed=seed)
        drawn |= set(chosen["unit"])
    assert {0, 15} <= drawn


def test_pruned_channel_outputs_exactly_zero_for_any_input():
    encoder = tiny_encoder()
    pruned, chosen = prune_units(encoder, hand_table(), 0.25, "top", layers=["4"])
    units = chosen["unit"].tolist()
    others = [u for u in range(UNITS_4) if u not in units]
    generator = torch.Generator().manual_seed(0)
    inputs = [
        torch.rand(4, 1, 16, 16, generator=generator),
        5 * torch.randn(4, 1, 16, 16, generator=generator),
    ]
    for train_mode in (False, True):
        pruned.train(train_mode)
        for x in inputs:
            out = record(pruned, x, ["4"], reduce=lambda o: o)["4"]
            assert (out[:, units] == 0).all()
            assert (out[:, others] != 0).any()


def test_prune_rejects_bad_arguments():
    encoder, table = tiny_encoder(), hand_table()
    for fraction in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            prune_units(encoder, table, fraction)
    with pytest.raises(ValueError, match="strategy"):
        prune_units(encoder, table, 0.1, strategy="middle")
    with pytest.raises(ValueError, match="scope"):
        prune_units(encoder, table, 0.1, scope="global")
    with pytest.raises(ValueError, match=r"\['7'\] are not in the UnitMem table"):
        prune_units(encoder, table, 0.1, layers=["4", "7"])
    with pytest.raises(ValueError, match="residual"):
        prune_units(encoder, table, 0.1, layers=["Res2"])
    wrong = table.copy()
    wrong.loc[wrong["layer"] == "4", "unit"] += 100
    with pytest.raises(ValueError, match="which has 16 units"):
        prune_units(encoder, wrong, 0.1, layers=["4"])


def test_prune_accepts_fraction_one():
    encoder = tiny_encoder()
    pruned, chosen = prune_units(encoder, hand_table(), 1.0, "random", layers=["4"])
    assert chosen_units(chosen) == {"4": list(range(UNITS_4))}
    assert (pruned.block4.conv.weight == 0).all()


def test_swap_layers_copies_exactly_the_named_layers():
    target, source = tiny_encoder(0), tiny_encoder(1)
    target_before, source_before = snapshot(target), snapshot(source)
    swapped = swap_layers(target, source, ["4", "block6"])
    for name, tensor in swapped.state_dict().items():
        origin = source_before if name.startswith(("block4.", "block6.")) else target_before
        assert torch.equal(tensor, origin[name]), name
    assert_same_state(target, target_before)
    assert_same_state(source, source_before)
    # The swapped copy shares no storage with the source.
    swapped.block4.conv.weight.data.zero_()
    assert_same_state(source, source_before)


def test_swap_layers_reports_mismatches():
    target = tiny_encoder(0)
    wider = tiny_encoder(1, width=0.5)
    with pytest.raises(
        ValueError,
        match=r"'block4.conv.weight' has shape \(16, 16, 3, 3\) in the target but \(32, 32",
    ):
        swap_layers(target, wider, ["4"])
    with pytest.raises(ValueError, match="no layer 'block9'"):
        swap_layers(target, tiny_encoder(1), ["block9"])
    with pytest.raises(ValueError, match="no parameters"):
        swap_layers(target, tiny_encoder(1), ["Res2"])
    resnet = create("resnet18", width=0.125, in_channels=1)
    with pytest.raises(ValueError, match="source encoder has no module 'block4'"):
        swap_layers(target, resnet, ["4"])


def most_active_unit(encoder, image, layer: str) -> int:
    with torch.no_grad():
        return int(record(encoder, image, [layer])[layer][0].argmax())


def test_train_one_unit_changes_only_that_unit():
    encoder = tiny_encoder()
    before = snapshot(encoder)
    image = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    unit = most_active_unit(encoder, image, "8")
    trained = train_one_unit(
        encoder, "8", unit, image[0], policy=AugmentPolicy(), views=8, steps=3, lr=1e-2
    )
    assert_same_state(encoder, before)
    after = trained.state_dict()
    changed_rows = {"block8.conv.weight", "block8.bn.weight", "block8.bn.bias"}
    for name, old in before.items():
        new = after[name]
        if name in changed_rows:
            others = torch.arange(old.shape[0]) != unit
            assert torch.equal(new[others], old[others]), name
        else:
            assert torch.equal(new, old), name  # running statistics included
    assert not torch.equal(after["block8.conv.weight"][unit], before["block8.conv.weight"][unit])
    assert not torch.equal(after["block8.bn.bias"][unit], before["block8.bn.bias"][unit])
    # Flags as in the input: eval mode, every parameter trainable.
    assert not trained.training
    assert all(p.requires_grad for p in trained.parameters())

    again = train_one_unit(
        encoder, "8", unit, image[0], policy=AugmentPolicy(), views=8, steps=3, lr=1e-2
    )
    assert_same_state(again, snapshot(trained))

    # With other images as the batch's negatives: still only that unit, and a different
    # objective, so different weights.
    negatives = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    contrast = train_one_unit(
        encoder,
        "8",
        unit,
        image[0],
        policy=AugmentPolicy(),
        views=4,
        steps=3,
        lr=1e-2,
        negatives=negatives,
    ).state_dict()
    for name, old in before.items():
        if name in changed_rows:
            others = torch.arange(old.shape[0]) != unit
            assert torch.equal(contrast[name][others], old[others]), name
        else:
            assert torch.equal(contrast[name], old), name
    assert not torch.equal(contrast["block8.conv.weight"], after["block8.conv.weight"])
    with pytest.raises(ValueError, match="negatives have shape"):
        train_one_unit(encoder, "8", unit, image[0], steps=1, negatives=negatives[:, :, :8])


def test_train_one_unit_with_a_framework_module_leaves_it_untouched():
    encoder = tiny_encoder()
    torch.manual_seed(0)
    framework = SimCLR(encoder, policy=AugmentPolicy())
    framework_before = snapshot(framework)
    image = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    unit = most_active_unit(encoder, image, "4")
    trained = train_one_unit(
        encoder, "4", unit, image, framework=framework, views=4, steps=2, lr=1e-2
    )
    assert_same_state(framework, framework_before)
    weight_before = framework_before["backbone.block4.conv.weight"]
    weight_after = trained.block4.conv.weight.detach()
    assert not torch.equal(weight_after[unit], weight_before[unit])
    others = torch.arange(weight_before.shape[0]) != unit
    assert torch.equal(weight_after[others], weight_before[others])


def test_train_one_unit_rejects_bad_arguments():
    encoder, image = tiny_encoder(), torch.rand(1, 16, 16)
    with pytest.raises(ValueError, match="out of range"):
        train_one_unit(encoder, "8", 64, image, steps=1)
    with pytest.raises(ValueError, match="residual"):
        train_one_unit(encoder, "Res6", 0, image, steps=1)
    with pytest.raises(ValueError, match="one image"):
        train_one_unit(encoder, "8", 0, image.expand(2, 1, 16, 16), steps=1)
    with pytest.raises(ValueError, match="self-supervised"):
        train_one_unit(encoder, "8", 0, image, framework="supervised", steps=1)


def test_prune_rejects_a_table_of_another_encoder():
    table = hand_table().replace({"layer": {"3": "layer1.0"}})
    with pytest.raises(ValueError, match="no layer 'layer1.0'"):
        prune_units(tiny_encoder(), table, 0.25)
