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


def test_all_trends_takes_the_weakest_encoder_and_curves_agree():
    trends = pd.DataFrame(
        {"setting": ["up", "down"], "rho": [1.0, -1.0], "p": [0.001, 1.0], "p_holm": [0.002, 1.0]}
    )
    overall = ax.all_trends(trends)
    assert overall["statistic"] == pytest.approx(-1.0) and overall["p"] == pytest.approx(1.0)
    assert not overall["holds"] and overall["worst"]["setting"] == "down"
    assert overall["testable"] and overall["reason"] == ""
    r9 = _encoder("resnet9", width=0.125)
    up = _table(r9)
    down = _table(r9, values=-np.arange(len(up), dtype=float))
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


# ----------------------------------------------------------------------------- the pages' functions


def test_vit_claims_and_notes_read_the_depth_and_sublayer_rows():
    depth = pd.DataFrame(
        [{"t": 3.0, "p": 0.01, "slope": 0.2, "points": 12, "rho": 0.5, "rho p": 0.04,
          "contrast first": 0.1, "contrast last": 0.4}]
    )  # fmt: skip
    tests = pd.DataFrame(
        {
            "comparison": ["Δ along the stream", "sublayer outputs"],
            "blocks": [11, 12],
            "mean mlp": [0.2, 0.1],
            "mean attention": [0.1, 0.3],
            "share mlp larger": [0.75, 0.25],
            "W": [50.0, 10.0],
            "p": [0.03, 0.9],
        }
    )
    deeper, mlp = ax.vit_claims(depth, tests)
    assert (deeper["statistic"], deeper["p_value"], deeper["holds"]) == (3.0, 0.01, True)
    assert (mlp["statistic"], mlp["p_value"], mlp["holds"]) == (50.0, 0.03, True)
    assert mlp["test"].startswith("Δ contrast of the MLP part")
    verdicts = [
        {"verdict": "supported", "p_value": 0.02},
        {"verdict": "not supported", "p_value": 0.03},
    ]
    a, b = ax.vit_notes(depth, tests, verdicts)
    assert a.startswith("**Deeper blocks (supported).**") and "+0.1000 at block 1" in a
    assert "larger in 75% of 11 blocks" in b and "MLP larger in 25% of blocks (p = 0.9)" in b


def _trends(**changes):
    """A contrast_depth_trends-like table of two encoders, ``a`` significant, ``b`` not."""
    table = pd.DataFrame(
        {
            "setting": ["a", "b"],
            "points": [10, 9],
            "t": [4.0, 1.5],
            "slope": [0.2, 0.05],
            "p": [0.001, 0.07],
            "p_holm": [0.002, 0.07],
            "memorized": [True, True],
            "learned": [None, None],
            "reason": ["", ""],
            "rho": [0.9, 0.3],
            "rho p": [0.001, 0.2],
        }
    )
    return table.assign(**changes)


def test_every_encoder_claim_check_and_note():
    trends = _trends()
    claim = ax.every_encoder_claim(trends, "it holds", unit="ResNet", measurements=2)
    assert (claim["claim"], claim["statistic"], claim["p_value"]) == ("it holds", 1.5, 0.07)
    assert claim["holds"] and "testable" not in claim
    assert claim["test"].startswith("per-image slope of SSLMem (mean of 2 measurements) against")
    assert "per ResNet (a, b)" in claim["test"] and "Holm over ResNets;" in claim["test"]
    one = ax.every_encoder_claim(trends.assign(t=[4.0, -1.0]), "it holds")
    assert not one["holds"] and "SSLMem against depth" in one["test"]
    check = ax.every_encoder_check(trends)
    assert check.testable and check.reason == "" and check.markdown == "" and check.learned is None
    failed = ax.every_encoder_check(_trends(memorized=[True, False], learned=[True, False]))
    assert not failed.testable and not failed.learned and not failed.memorized
    assert "in b" in failed.reason and failed.markdown == f"*{failed.reason}*"
    verdict = {"verdict": "not supported"}
    note = ax.every_encoder_note(trends, verdict, "quick")
    assert note.startswith("**Not supported at profile `quick`.** The depth trend is significant")
    assert "in 1 of 2 encoders (a). The weakest is b: t = +1.50, adjusted p = 0.07" in note
    each = ax.every_encoder_note(trends, verdict, "quick", each=True)
    assert (
        "a: t = +4.00 over 10 points (adjusted p = 0.002; ρ of the mean contrast +0.90); b:" in each
    )
    assert each.endswith(". The weakest is b.")


def test_measure_pairs_measures_each_pair_once_per_seed(monkeypatch):
    from types import SimpleNamespace

    seen = []
    monkeypatch.setattr(ax, "pair_layermem", lambda pair, seed: seen.append((pair.f, seed)) or seed)
    requests = [
        SimpleNamespace(label=name, get=lambda name=name: SimpleNamespace(f=name + " f"))
        for name in ("r18", "r34")
    ]
    pairs, measured = ax.measure_pairs(requests, [3, 4])
    assert list(pairs) == ["r18", "r34"] and pairs["r34"].f == "r34 f"
    assert measured == {"r18": ([3, 4], "r18 f"), "r34": ([3, 4], "r34 f")}
    assert seen == [("r18 f", 3), ("r18 f", 4), ("r34 f", 3), ("r34 f", 4)]
    assert ax.measurement_seeds("quick", 5) == [5, 6]
    assert ax.measurement_seeds("cpu") == [0, 1, 2]
    assert ax.measurement_seeds("cpu", 1, n_seeds=2) == [1, 2]


def test_tables_by_setting_architecture_and_seed():
    from types import SimpleNamespace

    r9 = _encoder("resnet9", width=0.125)
    r18 = _encoder("resnet18", width=0.125)
    runs = [
        SimpleNamespace(table=_table(r18)),
        SimpleNamespace(table=_table(r18, 2.0 * np.arange(17))),
    ]
    measured = {
        "resnet9 simclr": ([SimpleNamespace(table=_table(r9))], r9),
        "resnet18 dino": (runs, r18),
    }
    tables = ax.first_tables(measured)
    assert tables["resnet18 dino"][0] is runs[0].table and tables["resnet9 simclr"][1] is r9
    paths = ax.main_paths(tables)
    assert len(paths["resnet18 dino"]) == 9 and len(paths["resnet9 simclr"]) == 10
    long = pd.concat([p.assign(setting=s) for s, p in paths.items()], ignore_index=True)
    wide = ax.wide_by_architecture(long, "contrast")
    assert list(wide) == ["resnet9", "resnet18"]
    assert list(wide["resnet18"].columns) == ["resnet18 dino"]
    assert list(wide["resnet18"].index) == list(paths["resnet18 dino"]["layer"])  # forward order
    summary = ax.seed_summaries({"resnet18": (runs, r18)}, ["contrast"])["resnet18"]
    path = paths["resnet18 dino"]["contrast"].to_numpy()  # the first run's values; the second: 2x
    np.testing.assert_allclose(summary["contrast mean"], 1.5 * path)
    np.testing.assert_allclose(summary["contrast std"], np.sqrt(2) / 2 * path)
    stacked = ax.stacked_tables(runs)
    assert (
        len(stacked) == 2 * 17
        and stacked["contrast"].iloc[17:].tolist() == (2.0 * np.arange(17)).tolist()
    )
