"""T2, T4, A5, F3a helpers: forward paths, the ViT split, Holm over encoders, seed spreads,
one profile on another data set, and units above a control, on hand-computed tables."""

import numpy as np
import pandas as pd
import pytest
import torch

from memloc.experiments import architectures as ax
from memloc.models import create
from memloc.profiles import dataset_profile, load_profile


def _encoder(name, **kwargs):
    torch.manual_seed(0)
    return create(name, in_channels=1, **kwargs).eval()


def _table(encoder, values=None):
    names = [p.name for p in encoder.measurement_points()]
    values = np.arange(len(names), dtype=float) if values is None else values
    return pd.DataFrame({"layer": names, "contrast": values, "layermem": values / 10})


def test_main_path_per_architecture():
    r9 = _encoder("resnet9", width=0.125)
    assert list(ax.main_path(_table(r9), r9)["layer"]) == [p.name for p in r9.measurement_points()]
    r18 = _encoder("resnet18", width=0.125)
    path = list(ax.main_path(_table(r18), r18)["layer"])
    assert path == ["stem"] + [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    vit = _encoder("vit_tiny", image_size=8, patch_size=4, depth=3, dim=12, num_heads=3)
    assert list(ax.main_path(_table(vit), vit)["layer"]) == ["block1", "block2", "block3"]
    with pytest.raises(KeyError, match="lacks"):
        ax.main_path(_table(vit).iloc[:-1], vit)


def test_vit_blocks_split_each_change_into_attention_and_mlp():
    # Points per block: attn, res1, mlp, block (values chosen by hand).
    rows = {
        "block1.attn": 0.5, "block1.res1": 1.0, "block1.mlp": 0.7, "block1": 1.5,
        "block2.attn": 0.2, "block2.res1": 1.7, "block2.mlp": 0.9, "block2": 2.6,
    }  # fmt: skip
    table = pd.DataFrame({"layer": list(rows), "contrast": list(rows.values())})
    blocks = ax.vit_blocks(table)
    assert list(blocks["block"]) == [1, 2]
    assert np.isnan(blocks.loc[0, "delta_attn"])
    assert blocks.loc[0, "delta_mlp"] == pytest.approx(0.5)
    assert blocks.loc[1, "delta_attn"] == pytest.approx(0.2)  # 1.7 - 1.5
    assert blocks.loc[1, "delta_mlp"] == pytest.approx(0.9)  # 2.6 - 1.7
    assert list(blocks["attn_out"]) == [0.5, 0.2] and list(blocks["mlp_out"]) == [0.7, 0.9]
    with pytest.raises(KeyError, match="block2.res1"):
        ax.vit_blocks(table[table["layer"] != "block2.res1"])
    with pytest.raises(ValueError, match="no ViT block"):
        ax.vit_blocks(pd.DataFrame({"layer": ["1", "2"], "contrast": [0.0, 1.0]}))


def test_sublayer_tests_exact_wilcoxon():
    n = 8
    blocks = pd.DataFrame(
        {
            "delta_attn": [np.nan] + [0.1 * i for i in range(1, n)],
            "delta_mlp": [0.3] + [0.1 * i + 0.05 * i for i in range(1, n)],
            "attn_out": [1.0] * n,
            "mlp_out": [0.5] * n,
        }
    )
    t = ax.sublayer_tests(blocks).set_index("comparison")
    stream = t.loc["Δ along the stream"]
    assert stream["blocks"] == n - 1 and stream["share mlp larger"] == 1.0
    assert stream["p"] == pytest.approx(1 / 2 ** (n - 1))  # every sign positive, exact
    outputs = t.loc["sublayer outputs"]
    assert outputs["share mlp larger"] == 0.0 and outputs["p"] == pytest.approx(1.0)


def test_depth_trends_are_holm_adjusted_over_encoders():
    r9 = _encoder("resnet9", width=0.125)
    up = _table(r9)
    down = _table(r9, values=-np.arange(len(up), dtype=float))
    trends = ax.depth_trends({"up": (up, r9), "down": (down, r9)}).set_index("setting")
    assert trends.loc["up", "rho"] == pytest.approx(1.0)
    assert trends.loc["down", "rho"] == pytest.approx(-1.0)
    assert trends.loc["up", "p_holm"] == pytest.approx(2 * trends.loc["up", "p"])
    assert trends.loc["down", "p_holm"] == pytest.approx(1.0)
    overall = ax.all_trends(trends.reset_index())
    assert overall["statistic"] == pytest.approx(-1.0) and overall["p"] == pytest.approx(1.0)
    assert not overall["holds"] and overall["worst"]["setting"] == "down"
    agree = ax.curve_agreement({"up": (up, r9), "down": (down, r9)})
    assert agree.loc[0, "rho"] == pytest.approx(-1.0)


def test_curve_agreement_skips_different_architectures():
    r9 = _encoder("resnet9", width=0.125)
    vit = _encoder("vit_tiny", image_size=8, patch_size=4, depth=3, dim=12, num_heads=3)
    assert ax.curve_agreement({"r9": (_table(r9), r9), "vit": (_table(vit), vit)}).empty


def test_seed_summary_mean_and_std_by_hand():
    a = pd.DataFrame({"layer": ["1", "2"], "contrast": [1.0, 2.0]})
    b = pd.DataFrame({"layer": ["1", "2"], "contrast": [3.0, 2.0]})
    s = ax.seed_summary([a, b], ["contrast"])
    assert list(s.columns) == ["layer", "contrast mean", "contrast std"]
    assert list(s["contrast mean"]) == [2.0, 2.0]
    assert s["contrast std"].tolist() == pytest.approx([np.sqrt(2), 0.0])
    with pytest.raises(ValueError, match="two"):
        ax.seed_summary([a], ["contrast"])


def test_dataset_profile_keeps_what_f_trains_on_and_shrinks_the_rest():
    cpu = load_profile("cpu", experiment="f3a")
    assert dataset_profile(cpu, cpu.dataset) is cpu
    digits = dataset_profile(cpu, "digits")  # 1,500 training images
    assert (digits.n_shared, digits.n_candidate) == (cpu.n_shared, cpu.n_candidate)
    assert (digits.epochs, digits.arch, digits.image_size) == (cpu.epochs, cpu.arch, 32)
    assert digits.resize == "resize" and digits.n_independent == 0 and digits.n_downstream == 0
    assert digits.n_heldout == 1500 - 1000
    with pytest.raises(ValueError, match="n_shared"):
        dataset_profile(load_profile("cpu"), "digits")  # f alone needs 2,000


def test_units_above_counts_against_the_reference_quantile():
    ref = pd.DataFrame({"unitmem": np.linspace(0, 1, 101), "defined": True})
    units = pd.DataFrame(
        {"unitmem": [0.1, 0.96, 0.99, 0.5, 2.0], "defined": [True, True, True, True, False]}
    )
    out = ax.units_above(units, ref, 0.95)
    assert out["threshold"] == pytest.approx(0.95)
    assert (out["above"], out["defined"]) == (2, 4) and out["share"] == 0.5


def _result(encoder, cand, indep):
    """A LayerMemResult holding only what the per-image depth test reads: the raw per-image
    scores of the candidates and independents, and a table with the contrast per point."""
    from memloc.metrics import LayerMemResult

    points = list(encoder.measurement_points())
    names = [p.name for p in points]
    frames = [
        pd.DataFrame(
            {
                "set": name,
                "point": np.repeat(np.arange(len(x)), len(names)),
                "layer": np.tile(names, len(x)),
                "sslmem_raw": x.reshape(-1),
            }
        )
        for name, x in (("candidate", cand), ("independent", indep))
    ]
    table = pd.DataFrame({"layer": names, "contrast": (cand.mean(0) - indep.mean(0)) / 2})
    return LayerMemResult(table, None, pd.concat(frames, ignore_index=True), points, {}, [])


def test_contrast_depth_trends_per_image_with_holm_and_testability():
    r9 = _encoder("resnet9", width=0.125)
    n_points = len(list(r9.measurement_points()))
    rng = np.random.default_rng(0)
    step_c, step_i = rng.normal(size=(150, n_points)), rng.normal(size=(150, n_points))
    step_c[:, -3:] += 1.0  # memorized in the last three points only
    noise = rng.normal(size=(300, n_points))
    results = {
        "step": (_result(r9, step_c, step_i), r9),
        "none": (_result(r9, noise[:150], noise[150:]), r9),
    }
    trends = ax.contrast_depth_trends(results, n_permutations=999).set_index("setting")
    assert trends.loc["step", "p"] == pytest.approx(1 / 1000) and trends.loc["step", "t"] > 3
    assert trends.loc["step", "p_holm"] == pytest.approx(2 / 1000)
    assert trends.loc["step", "memorized"] and trends.loc["step", "reason"] == ""
    assert not trends.loc["none", "memorized"]
    assert "did not memorize" in trends.loc["none", "reason"]
    overall = ax.all_trends(trends.reset_index(), statistic="t")
    assert not overall["testable"] and "none" in overall["reason"]
    only_step = ax.contrast_depth_trends({"step": results["step"]}, n_permutations=999)
    verdict = ax.all_trends(only_step, statistic="t")
    assert verdict["testable"] and verdict["holds"] and verdict["p"] == pytest.approx(1 / 1000)
    # two view seeds of the same images are averaged per image
    twice = ax.contrast_depth_trends(
        {"step": ([results["step"][0], results["step"][0]], r9)}, n_permutations=999
    )
    assert twice.loc[0, "t"] == pytest.approx(only_step.loc[0, "t"])


def test_contrast_depth_trends_not_testable_when_an_encoder_did_not_learn():
    r9 = _encoder("resnet9", width=0.125)
    n_points = len(list(r9.measurement_points()))
    rng = np.random.default_rng(1)
    c, i = rng.normal(size=(150, n_points)), rng.normal(size=(150, n_points))
    c[:, -3:] += 1.0  # both encoders memorized
    results = {"SimCLR": (_result(r9, c, i), r9), "DINO": (_result(r9, c, i), r9)}
    probes = {"SimCLR": (0.85, 0.79), "DINO": (0.78, 0.79)}
    trends = ax.contrast_depth_trends(results, n_permutations=99, probes=probes)
    trends = trends.set_index("setting")
    assert trends["memorized"].all()
    assert trends.loc["SimCLR", "learned"] and trends.loc["SimCLR", "reason"] == ""
    assert not trends.loc["DINO", "learned"]
    assert "did not learn (probe accuracy 0.780, untrained 0.790)" in trends.loc["DINO", "reason"]
    overall = ax.all_trends(trends.reset_index(), statistic="t")
    assert not overall["testable"]
    assert "probe is not above the untrained twin's in DINO" in overall["reason"]
    assert "SimCLR" not in overall["reason"]
    # Without probe accuracies the learned check is skipped: testable on memorization alone.
    unchecked = ax.all_trends(ax.contrast_depth_trends(results, n_permutations=99), statistic="t")
    assert unchecked["testable"]
