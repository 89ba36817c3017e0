"""The unit results' shared measurements (memloc.experiments.units): hand-computed values,
agreement with the metrics and scipy, the stored measurements, and the controls."""

from __future__ import annotations

from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from memloc.artifacts import build_encoder, encoder_spec
from memloc.augment import AugmentPolicy
from memloc.experiments import units as U
from memloc.metrics import UnitMemResult, layermem, unitmem
from memloc.models import create
from memloc.models.base import MeasurementPoint
from memloc.profiles import load_profile
from memloc.result import verdict_markdown

pytestmark = pytest.mark.filterwarnings("ignore::memloc.metrics.UndefinedUnitsWarning")

RESNET9 = ["1", "2", "3", "4", "Res2", "5", "6", "7", "8", "Res6"]


def result_from_mu(mu: dict[str, np.ndarray], rest: str = "mean"):
    """A UnitMemResult from hand-written mean activations (layers in dict order)."""
    points = [MeasurementPoint(name, name, "conv") for name in mu]
    n = next(iter(mu.values())).shape[0]
    # The scores of stored mean activations: the public UnitMemResult.rescore, as the
    # measurement store computes them.
    config = {"k_aug": 0, "seed": 0, "n_points": n}
    stored = UnitMemResult(pd.DataFrame(), mu, np.arange(n), "unitmem", points, config)
    return stored.rescore(rest)


def toy_encoder():
    """1x1 conv with three units on a 1-channel image, then ReLU and pooling: unit 0 reads
    the pixel value, unit 1 pixels above 0.5, unit 2 is constant."""
    conv = nn.Conv2d(1, 3, 1)
    conv.weight.data = torch.tensor([1.0, 1.0, 0.0]).view(3, 1, 1, 1)
    conv.bias.data = torch.tensor([0.0, -0.5, 1.0])
    return nn.Sequential(
        OrderedDict(conv=conv, relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten())
    ).eval()


def tiny_resnet(seed: int):
    torch.manual_seed(seed)
    return create("resnet9", in_channels=1, width=0.125).eval()


# ----------------------------------------------------------------------------- basics


def test_deep_layers_is_the_second_half():
    assert U.deep_layers(RESNET9) == ["5", "6", "7", "8", "Res6"]
    points = tiny_resnet(0).measurement_points()
    assert U.deep_layers(points) == ["5", "6", "7", "8", "Res6"]
    assert U.deep_layers(["a", "b", "c"]) == ["b", "c"]
    with pytest.raises(ValueError, match="at least two"):
        U.deep_layers(["a"])


def test_initial_encoder_is_f_before_training():
    profile = load_profile("quick")
    spec = encoder_spec(profile, "f", "simclr", n_total=1797, in_channels=1)
    before = build_encoder(spec).state_dict()
    init = U.initial_encoder(profile, in_channels=1).state_dict()
    assert before.keys() == init.keys()
    for name in before:
        assert torch.equal(before[name], init[name]), name
    assert U.last_conv_layer(U.initial_encoder(profile, 1)) == "8"


def test_unitmem_policy_is_the_ssl_training_policy():
    policy = U.unitmem_policy("quick")
    assert policy.crop_scale == tuple(load_profile("quick").crop_scale)
    assert policy.jitter == AugmentPolicy.simclr().jitter


# ----------------------------------------------------------------------------- stored UnitMem


def test_measure_unitmem_equals_the_metric_and_reuses_the_stored_result(tmp_path, monkeypatch):
    encoder = tiny_resnet(0)
    images = torch.rand(10, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    policy = AugmentPolicy.simclr()
    expected = unitmem(encoder, images, k_aug=3, policy=policy, seed=5)
    kw = dict(k_aug=3, policy=policy, seed=5)
    fresh = U.measure_unitmem(encoder, images, cache_dir=tmp_path, **kw)
    pd.testing.assert_frame_equal(fresh.units, expected.units)
    assert len(list(tmp_path.glob("unitmem-*.npz"))) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("measured although the result was stored")

    monkeypatch.setattr(U, "mean_activations", refuse)
    stored = U.measure_unitmem(encoder, images, cache_dir=tmp_path, **kw)
    pd.testing.assert_frame_equal(stored.units, expected.units)
    # rest is applied after loading: the median variant needs no new measurement.
    median = U.measure_unitmem(encoder, images, cache_dir=tmp_path, rest="median", **kw)
    pd.testing.assert_frame_equal(median.units, expected.rescore("median").units)
    # Another seed, other weights or other images are other measurements.
    for changed in (
        dict(encoder=encoder, images=images, seed=6),
        dict(encoder=tiny_resnet(1), images=images, seed=5),
        dict(encoder=encoder, images=images[:9], seed=5),
    ):
        with pytest.raises(AssertionError, match="stored"):
            U.measure_unitmem(
                changed["encoder"],
                changed["images"],
                k_aug=3,
                policy=policy,
                seed=changed["seed"],
                cache_dir=tmp_path,
            )


def test_measurement_key_depends_on_weights_images_and_settings():
    a, b = tiny_resnet(0), tiny_resnet(1)
    x = torch.zeros(2, 1, 16, 16)
    key = U.measurement_key("unitmem", [a], [x], {"k": 1})
    assert key == U.measurement_key("unitmem", [tiny_resnet(0)], [x.clone()], {"k": 1})
    assert key != U.measurement_key("unitmem", [b], [x], {"k": 1})
    assert key != U.measurement_key("unitmem", [a], [x + 1], {"k": 1})
    assert key != U.measurement_key("unitmem", [a], [x], {"k": 2})
    assert key != U.measurement_key("sslmem", [a], [x], {"k": 1})


# ----------------------------------------------------------------------------- controls


def test_controls_per_unit_excess_by_hand():
    # Unit 0: [3, 1, 1] -> (3 - 1) / (3 + 1) = 0.5; unit 1: constant -> 0.
    trained = result_from_mu({"a": np.array([[3.0, 1.0], [1.0, 1.0], [1.0, 1.0]])})
    # Held-out: unit 0 [2, 1, 1] -> 1/3; unit 1 [1, 1, 4] -> 0.6.
    heldout = result_from_mu({"a": np.array([[2.0, 1.0], [1.0, 1.0], [1.0, 4.0]])})
    # Random init: unit 0 [5, 1, 1] -> 4/6; unit 1 dead (all 0): undefined, left out of means.
    random = result_from_mu({"a": np.array([[5.0, 0.0], [1.0, 0.0], [1.0, 0.0]])})
    c = U.UnitMemControls("SSL", trained, heldout, random)
    per_unit = c.per_unit()
    np.testing.assert_allclose(per_unit["unitmem"], [0.5, 0.0])
    np.testing.assert_allclose(per_unit["heldout_unitmem"], [1 / 3, 0.6])
    np.testing.assert_allclose(per_unit["excess_heldout"], [0.5 - 1 / 3, -0.6])
    np.testing.assert_allclose(per_unit["random_mean"], [4 / 6, 4 / 6])
    np.testing.assert_allclose(per_unit["excess_random"], [0.5 - 4 / 6, -4 / 6])
    long = c.long()
    assert set(long["label"]) == {"SSL", "SSL held-out", "random init"}
    assert len(long) == 6 and long["defined"].sum() == 5
    excess = c.excess()
    assert excess.loc[0, "mean"] == pytest.approx(0.25)
    assert excess.loc[0, "random_mean"] == pytest.approx(4 / 6)
    assert excess.loc[0, "heldout_mean"] == pytest.approx((1 / 3 + 0.6) / 2)
    assert excess.loc[0, "excess"] == pytest.approx(0.25 - 4 / 6)


def fake_pair(n=8, framework="simclr"):
    """A pair-like object over random 16x16 images, with snapshots at epochs 1 and 12."""
    profile = load_profile("quick", n_points=n, k_aug=2)
    data = torch.rand(3 * n, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    sets = {"candidate": data[:n], "heldout": data[n : 2 * n]}
    snapshots = {1: tiny_like(profile, 1), 12: tiny_like(profile, 12)}
    return SimpleNamespace(
        profile=profile,
        framework=framework,
        f=snapshots[12],
        dataset=SimpleNamespace(channels=1),
        images=lambda which, m=None: sets[which][:m],
        labels=lambda which, m=None: torch.arange(m or n) % 2,
        snapshots=lambda role="f": dict(snapshots),
    )


def tiny_like(profile, seed):
    from memloc.artifacts import random_encoder

    return random_encoder(profile, seed=seed, in_channels=1)


def test_unitmem_with_controls_measures_the_three_encoders(tmp_path):
    pair = fake_pair()
    c = U.unitmem_with_controls(pair, cache=False)
    policy = U.unitmem_policy(pair.profile)
    kw = dict(k_aug=2, policy=policy, seed=0)
    pd.testing.assert_frame_equal(
        c.trained.units, unitmem(pair.f, pair.images("candidate", 8), **kw).units
    )
    pd.testing.assert_frame_equal(
        c.heldout.units, unitmem(pair.f, pair.images("heldout", 8), **kw).units
    )
    init = U.initial_encoder(pair.profile, 1)
    pd.testing.assert_frame_equal(
        c.random.units, unitmem(init, pair.images("candidate", 8), **kw).units
    )
    assert c.model == "SSL" and c.config == {"n_points": 8, "k_aug": 2, "rest": "mean", "seed": 0}
    # The SL pair reuses the random-init control; one measured on other images is refused.
    sl = U.unitmem_with_controls(fake_pair(framework="supervised"), random=c.random, cache=False)
    assert sl.model == "SL" and sl.random is c.random
    with pytest.raises(ValueError, match="random-init control"):
        U.unitmem_with_controls(pair, n_points=4, random=c.random, cache=False)
    with pytest.raises(ValueError, match="held-out"):
        U.unitmem_with_controls(pair, n_points=20, cache=False)


def test_unitmem_over_training_starts_at_the_initialisation():
    pair = fake_pair()
    encoders = U.training_encoders(pair)
    assert list(encoders) == [0, 1, 12]
    df = U.unitmem_over_training(pair, layer="8", cache=False)
    assert sorted(df["epoch"].unique()) == [0, 1, 12]
    assert set(df["set"]) == {"candidates", "held-out"}
    policy = U.unitmem_policy(pair.profile)
    init = unitmem(
        U.initial_encoder(pair.profile, 1),
        pair.images("candidate", 8),
        layers=["8"],
        k_aug=2,
        policy=policy,
    )
    got = df[(df["epoch"] == 0) & (df["set"] == "candidates")]
    np.testing.assert_array_equal(got["unitmem"].to_numpy(), init.units["unitmem"].to_numpy())
    with pytest.raises(KeyError, match="no unit point"):
        U.unitmem_over_training(pair, layer="nope", cache=False)
    excess = U.excess_per_unit(df)
    assert set(excess.columns) == {"epoch", "unit", "excess"}
    both = df[df["defined"]].pivot_table(index=["epoch", "unit"], columns="set", values="unitmem")
    np.testing.assert_allclose(
        excess["excess"], (both["candidates"] - both["held-out"]).dropna().to_numpy()
    )


def test_mean_with_ci_and_format():
    df = pd.DataFrame(
        {"g": ["a"] * 4 + ["b"], "unitmem": [1.0, 2.0, 3.0, np.nan, 5.0], "defined": True}
    )
    out = U.mean_with_ci(df, ["g"])
    a = out[out["g"] == "a"].iloc[0]
    assert a["n"] == 3 and a["mean"] == pytest.approx(2.0) and a["low"] <= 2.0 <= a["high"]
    b = out[out["g"] == "b"].iloc[0]
    assert b["n"] == 1 and np.isnan(b["low"])
    assert U.format_ci(out.iloc[:1]).iloc[0].startswith("2.000 [")


# ----------------------------------------------------------------------------- tests


def two_groups(seed=0):
    rng = np.random.default_rng(seed)
    a = pd.DataFrame({"layer": ["x"] * 30 + ["y"] * 20, "v": rng.normal(1, 1, 50)})
    b = pd.DataFrame({"layer": ["x"] * 25 + ["y"] * 20, "v": rng.normal(0, 1, 45)})
    return a, b


def test_compare_layers_matches_scipy():
    a, b = two_groups()
    table = U.compare_layers(a, b, value="v")
    assert list(table["layer"]) == ["x", "y"]
    for layer in ("x", "y"):
        x, y = a[a["layer"] == layer]["v"], b[b["layer"] == layer]["v"]
        row = table[table["layer"] == layer].iloc[0]
        t = stats.ttest_ind(x, y, equal_var=False, alternative="greater")
        ks = stats.ks_2samp(x, y, alternative="less")  # scipy: "less" = x to the right
        assert row["t"] == pytest.approx(t.statistic) and row["welch_p"] == pytest.approx(t.pvalue)
        assert row["ks_D"] == pytest.approx(ks.statistic)
        assert row["ks_p"] == pytest.approx(ks.pvalue)
        assert row["difference"] == pytest.approx(x.mean() - y.mean())
    # Undefined units are left out; a layer without two values gets no test.
    a["defined"] = True
    a.loc[a.index[:29], "defined"] = False
    table = U.compare_layers(a, b, value="v")
    assert table.loc[0, "n_a"] == 1 and np.isnan(table.loc[0, "t"])


def test_paired_tests_and_all_layers_test():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"layer": ["x"] * 20 + ["y"] * 20, "a": rng.normal(0, 1, 40)})
    df["b"] = df["a"] - 0.5 + rng.normal(0, 0.3, 40)
    table = U.paired_tests(df, "a", "b")
    for layer in ("x", "y"):
        part = df[df["layer"] == layer]
        res = stats.ttest_rel(part["a"], part["b"], alternative="greater")
        row = table[table["layer"] == layer].iloc[0]
        assert row["t"] == pytest.approx(res.statistic) and row["p"] == pytest.approx(res.pvalue)
    both = U.all_layers_test(table, ["x", "y"], p="p", statistic="t")
    assert both.statistic == pytest.approx(table["t"].min())
    assert both.pvalue == pytest.approx(table["p"].max())
    with pytest.raises(ValueError, match="lacks"):
        U.all_layers_test(table, ["x", "z"], p="p")
    table.loc[1, "p"] = np.nan
    assert np.isnan(U.all_layers_test(table, ["x", "y"], p="p").pvalue)


def test_spearman_difference():
    z, p = U.spearman_difference(0.3, 50, 0.3, 80)
    assert z == pytest.approx(0.0) and p == pytest.approx(0.5)
    z, p = U.spearman_difference(0.5, 103, 0.0, 103)
    assert z == pytest.approx(np.arctanh(0.5) / np.sqrt(2 * 1.06 / 100))
    assert p == pytest.approx(stats.norm.sf(z))
    with pytest.raises(ValueError):
        U.spearman_difference(0.1, 3, 0.1, 10)


def test_verdict_markdown_lists_each_claim():
    text = verdict_markdown(
        [
            {
                "claim": "c1",
                "test": "t1",
                "statistic": 2.0,
                "p_value": 0.01,
                "alpha": 0.05,
                "verdict": "supported",
            },
            {"claim": "c2", "test": "t2", "statistic": 0.1, "p_value": None, "verdict": "x"},
        ]
    )
    lines = text.splitlines()
    assert len(lines) == 2 and "**supported**" in lines[0] and "p = 0.01" in lines[0]
    assert "p =" not in lines[1]


# ----------------------------------------------------------------------------- F3b, A2, A3


def test_driven_unitmem_by_hand():
    # unit 0: [3, 1, 1, 1] -> UnitMem 0.5, mean 1.5, drive [2, 2/3, 2/3, 2/3];
    # unit 1: constant 1 -> UnitMem 0, drive 1; unit 2: negative -> undefined, ignored.
    mu = np.array([[3.0, 1.0, -1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    result = result_from_mu({"a": mu})
    assert list(result.units["defined"]) == [True, True, False]
    driven = U.driven_unitmem(result)
    assert list(driven.columns) == ["a"] and driven.index.name == "point"
    np.testing.assert_allclose(driven["a"], [1 / 3, 0.2, 0.2, 0.2])
    # An image that silences every unit has no score.
    silent = result_from_mu({"a": np.array([[2.0, 1.0], [0.0, 0.0], [1.0, 1.0]])})
    assert np.isnan(U.driven_unitmem(silent).loc[1, "a"])


def test_top_least_unitmem_measures_each_set_separately():
    encoder = toy_encoder()
    levels = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.3, 0.7])
    images = levels.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    scores = pd.Series([0.0, 5.0, 1.0, 4.0, 2.0, 3.0])  # top-2: 1, 3; least-2: 0, 2
    out = U.top_least_unitmem(encoder, images, scores, 2, k_aug=0, policy=None)
    top = unitmem(encoder, images[[1, 3]], k_aug=0).units
    least = unitmem(encoder, images[[0, 2]], k_aug=0).units
    got_top = out[out["set"] == "Top-k"].reset_index(drop=True)
    got_least = out[out["set"] == "Least-k"].reset_index(drop=True)
    np.testing.assert_allclose(got_top["unitmem"], top["unitmem"])
    np.testing.assert_allclose(got_least["unitmem"], least["unitmem"])
    # argmax is mapped back to positions among all images: unit 0 peaks at 0.9 and 0.2.
    unit0 = out[(out["layer"] == "conv") & (out["unit"] == 0)]
    assert list(unit0["argmax"]) == [1, 2]
    with pytest.raises(ValueError, match="disjoint"):
        U.top_least_unitmem(encoder, images, scores, 4, k_aug=0, policy=None)
    with pytest.raises(ValueError, match="score"):
        U.top_least_unitmem(encoder, images, scores[:5], 2, k_aug=0, policy=None)


def test_mu_max_share_by_hand():
    # Layer a, 4 units over 5 images. UnitMem: u0 (peak 9 at image 0) > u1 (peak 5 at 1) >
    # u2 (peak 3 at 4) > u3 (constant, 0). The top half of the units: u0, u1.
    mu = np.array(
        [
            [9.0, 1.0, 1.0, 1.0],
            [1.0, 5.0, 1.0, 1.0],
            [1.0, 1.0, 1.0, 1.0],
            [1.0, 1.0, 1.0, 1.0],
            [1.0, 1.0, 3.0, 1.0],
        ]
    )
    result = result_from_mu({"a": mu, "b": mu[:, :2]})
    scores = pd.Series([5.0, 0.0, 1.0, 2.0, 4.0])  # top-2 images: 0 and 4
    table = U.mu_max_share(result, scores, k=2, fraction=0.5).set_index("layer")
    assert table.loc["a", "n_units"] == 2 and table.loc["a", "n_hits"] == 1
    assert table.loc["b", "n_units"] == 1 and table.loc["b", "n_hits"] == 1
    pooled = table.loc["all"]
    assert pooled["n_units"] == 3 and pooled["n_hits"] == 2
    assert pooled["chance"] == pytest.approx(0.4)
    assert pooled["p_value"] == pytest.approx(stats.binomtest(2, 3, 0.4, "greater").pvalue)
    assert pooled["n_distinct_points"] == 2 and pooled["n_distinct_hits"] == 1
    assert pooled["distinct_p"] == pytest.approx(stats.binomtest(1, 2, 0.4, "greater").pvalue)
    tops = U.top_units(result, 0.5)
    assert list(tops[tops["layer"] == "a"]["unit"]) == [0, 1]
    with pytest.raises(ValueError, match="fraction"):
        U.top_units(result, 0)
    dominance = U.dominance_with_sslmem(result, scores)
    assert dominance.index[0] == 0  # image 0 gives u0 of a and b (and the constant u3)
    assert dominance.loc[0, "sslmem_rank"] == 1 and dominance.loc[1, "sslmem_rank"] == 5


def test_calibrated_sslmem_subtracts_the_heldout_offset():
    f, g = tiny_resnet(0), tiny_resnet(1)
    x = torch.rand(24, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    result = layermem(
        f, g, x[:12], k_aug=2, policy=AugmentPolicy.simclr(), heldout_images=x[12:], top_k=0
    )
    offset = result.table.set_index("layer")["heldout_offset"]
    s = U.calibrated_sslmem(result)
    np.testing.assert_allclose(s, result.per_point["Res6"] - offset["Res6"])
    held = U.calibrated_sslmem(result, "heldout", "4")
    assert held.mean() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(KeyError, match="not measured"):
        U.calibrated_sslmem(result, layer="nope")
    no_heldout = layermem(f, g, x[:12], k_aug=2, policy=AugmentPolicy.simclr(), top_k=0)
    with pytest.raises(ValueError, match="held-out"):
        U.calibrated_sslmem(no_heldout)


def test_classmem_beside_unitmem():
    encoder = toy_encoder()
    levels = torch.tensor([0.1, 0.2, 0.8, 0.9])
    images = levels.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    labels = torch.tensor([0, 0, 1, 1])
    um = unitmem(encoder, images, k_aug=0)
    df = U.classmem_beside_unitmem(encoder, images, labels, um, model="SSL")
    conv = df[df["layer"] == "conv"].set_index("unit")
    # Unit 0 reads the pixel value: class means 0.15 and 0.85 -> (0.85 - 0.15) / 1.0 = 0.7.
    assert conv.loc[0, "classmem"] == pytest.approx(0.7)
    # Unit 0 UnitMem: max 0.9, rest mean (0.1 + 0.2 + 0.8) / 3.
    rest = (0.1 + 0.2 + 0.8) / 3
    assert conv.loc[0, "unitmem"] == pytest.approx((0.9 - rest) / (0.9 + rest))
    np.testing.assert_allclose(df["difference"], df["unitmem"] - df["classmem"])
    assert set(df["model"]) == {"SSL"}
    with pytest.raises(ValueError, match="scores"):
        U.classmem_beside_unitmem(encoder, images[:3], labels[:3], um, model="SSL")


def test_point_sslmem_measures_candidates_and_heldout_images():
    n = 8
    f, g = tiny_resnet(0), tiny_resnet(1)
    data = torch.rand(4 * n, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    splits = SimpleNamespace(
        candidate=np.arange(n), independent=np.arange(n, 2 * n), heldout=np.arange(2 * n, 3 * n)
    )
    pair = SimpleNamespace(
        f=f,
        g=g,
        profile=SimpleNamespace(n_points=n, k_aug=2, top_k=2, seed=0),
        splits=splits,
        test=data[3 * n :],
        hashes={"f": "tiny-f", "g": "tiny-g"},
        policy=AugmentPolicy.simclr(),
        images=lambda which, m=None: data[torch.as_tensor(getattr(splits, which)[:m])],
    )
    result = U.point_sslmem(pair, cache=False)
    assert set(result.points["set"]) == {"candidate", "heldout", "independent"}
    expected = layermem(
        f,
        g,
        data[:n],
        k_aug=2,
        policy=pair.policy,
        heldout_images=data[2 * n : 3 * n],
        independent_images=data[n : 2 * n],
        top_k=2,
    )
    np.testing.assert_allclose(U.calibrated_sslmem(result), U.calibrated_sslmem(expected))


# ----------------------------------------------------------------------------- pages: F1, F2


def two_layer_controls(model="SSL", shift=0.0):
    """Controls over two layers (a: shallow, b: deep) of three units on four images; the
    trained units' peaks grow with ``shift``."""
    base = np.array([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    trained = base.copy()
    trained[0] += shift
    held = np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    random = np.array([[1.5, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    results = [result_from_mu({"a": m, "b": m.copy()}) for m in (trained, held, random)]
    config = {"n_points": 4, "k_aug": 0, "rest": "mean", "seed": 0}
    return U.UnitMemControls(model, *results, config)


def test_ssl_sl_tables_by_hand():
    ssl, sl = two_layer_controls("SSL", shift=3.0), two_layer_controls("SL")
    sl.random = ssl.random
    long = U.ssl_sl_distributions(ssl, sl)
    assert list(dict.fromkeys(long["label"])) == list(U.F1_LABELS)
    assert (long["label"] == "random init").sum() == 6  # the shared control once
    counts = U.defined_units(long)
    assert len(counts) == 10 and counts["n_units"].eq(3).all()
    # The random init's third unit is silent (undefined) in both layers.
    assert counts.set_index(["label", "layer"]).loc[("random init", "a"), "n_defined"] == 2
    assert U.undefined_units_sentence(counts) == (
        "Undefined units (never active on these images) per encoder: SL 0, SL held-out 0, "
        "SSL 0, SSL held-out 0, random init 2."
    )
    excess = U.ssl_sl_excess(ssl, sl)
    assert list(excess["model"]) == ["SSL", "SSL", "SL", "SL"]
    means = U.ssl_sl_means(long, excess, ["a", "b"])
    # SSL units of a: (6-1)/(6+1), (5-1)/(5+1), (4-1)/(4+1).
    assert means.loc[0, "SSL"] == pytest.approx(np.mean([5 / 7, 4 / 6, 3 / 5]))
    assert means.loc[0, "SSL excess"] == pytest.approx(excess.loc[0, "excess"])
    assert list(means.columns) == ["layer", *U.F1_LABELS, "SSL excess", "SL excess"]
    per_unit = U.ssl_sl_per_unit(ssl, sl)
    assert len(per_unit) == 12 and list(dict.fromkeys(per_unit["model"])) == ["SSL", "SL"]
    tests = U.ssl_sl_tests(ssl, sl)
    assert list(tests["deep"]) == [False, True]
    raw = U.compare_layers(ssl.per_unit(), sl.per_unit(), layers=["a", "b"])
    assert tests["t"].tolist() == pytest.approx(raw["t"].tolist())
    ex = U.compare_layers(ssl.per_unit(), sl.per_unit(), value="excess_heldout")
    assert tests["welch_p_excess"].tolist() == pytest.approx(ex["welch_p"].tolist())
    view = U.ssl_sl_tests_view(tests)
    assert list(view.columns[:4]) == ["layer", "deep", "SSL", "SL"]
    assert "excess SSL − SL" in view.columns


def ssl_sl_test_table(**overrides):
    table = pd.DataFrame(
        {
            "layer": ["1", "2", "3"],
            "deep": [False, True, True],
            "t": [-1.0, 3.0, 2.0],
            "welch_p": [0.9, 0.001, 0.01],
            "ks_D": [0.1, 0.5, 0.4],
            "ks_p": [0.5, 0.02, 0.03],
            "t_excess": [0.0, -0.5, 1.0],
            "welch_p_excess": [0.5, 0.7, 0.2],
        }
    )
    return table.assign(**overrides)


def test_ssl_sl_claims_and_note():
    c1, c2, c3 = U.ssl_sl_claims(ssl_sl_test_table())
    # Intersection-union over the deep layers 2 and 3: the smallest t, the largest p.
    assert (c1["statistic"], c1["p_value"], c1["holds"]) == (2.0, 0.01, True)
    assert "(2, 3)" in c1["test"] and c2["claim"].endswith(", whole distributions")
    assert (c2["statistic"], c2["p_value"]) == (0.4, 0.03) and "holds" not in c2
    assert (c3["statistic"], c3["p_value"], c3["holds"]) == (-0.5, 0.7, False)
    nan = U.ssl_sl_claims(ssl_sl_test_table(welch_p=[0.9, np.nan, 0.01]))[0]
    assert np.isnan(nan["p_value"])
    assert U.ssl_sl_note(ssl_sl_test_table()).startswith(
        "Layers where SSL UnitMem exceeds SL UnitMem at p < 0.05 (Welch): 2, 3 (of 3)."
    )
    assert "(Welch): none (of 3)" in U.ssl_sl_note(ssl_sl_test_table(welch_p=0.5))
    assert U.deep_layers_sentence(["5", "Res6"]).endswith("connection): 5, Res6.")


def test_ssl_sl_pairs_unitmem_and_checks(tmp_path, monkeypatch):
    import memloc.artifacts
    import memloc.regime

    asked = []
    monkeypatch.setattr(
        memloc.artifacts,
        "encoder_pair",
        lambda profile, framework, **kw: asked.append((profile, framework, kw)) or framework,
    )
    assert U.ssl_sl_pairs("quick", "simsiam", n_points=8) == ("simsiam", "supervised")
    assert asked == [
        ("quick", "simsiam", {"progress": False, "n_points": 8}),
        ("quick", "supervised", {"progress": False, "n_points": 8}),
    ]
    monkeypatch.setenv("MEMLOC_CACHE", str(tmp_path))
    ssl, sl = U.ssl_sl_unitmem(fake_pair(), fake_pair(framework="supervised"), rest="median")
    assert (ssl.model, sl.model, sl.config["rest"]) == ("SSL", "SL", "median")
    assert sl.random is ssl.random
    monkeypatch.setattr(memloc.regime, "check_pair", lambda pair, **kw: (pair, kw))
    checks = U.ssl_sl_checks("ssl", "sl")
    assert checks == {
        "SSL": ("ssl", {"name": "SSL"}),
        "SL": ("sl", {"memorized": False, "name": "SL"}),
    }


def test_skipless_forward_shift_reads_resnet9_only():
    from memloc.metrics import unitmem_forward_shift

    pair = fake_pair()
    controls = SimpleNamespace(config={"n_points": 4, "k_aug": 1, "rest": "mean", "seed": 3})
    got = U.skipless_forward_shift(pair, controls)
    policy = U.unitmem_policy(pair.profile)
    expected = unitmem_forward_shift(
        pair.f, pair.images("candidate", 4), k_aug=1, policy=policy, rest="mean", seed=3
    )
    pd.testing.assert_frame_equal(got, expected)
    vit = SimpleNamespace(f=SimpleNamespace(arch="vit_tiny"))
    assert U.skipless_forward_shift(vit, controls) is None


def test_classmem_scores_stack_the_three_encoders(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOC_CACHE", str(tmp_path))
    ssl_pair, sl_pair = fake_pair(), fake_pair(framework="supervised")
    sl_pair.f = tiny_like(sl_pair.profile, 7)
    ssl, sl = U.ssl_sl_unitmem(ssl_pair, sl_pair)
    scores = U.classmem_scores(ssl_pair, sl_pair, ssl, sl)
    assert list(dict.fromkeys(scores["model"])) == ["SSL", "SL", "random init"]
    images, labels = ssl_pair.images("candidate", 8), ssl_pair.labels("candidate", 8)
    policy = U.unitmem_policy(ssl_pair.profile)
    expected = U.classmem_beside_unitmem(
        sl_pair.f, images, labels, sl.trained, model="SL", policy=policy
    )
    got = scores[scores["model"] == "SL"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert U.candidate_classes_sentence(ssl_pair, 8) == (
        "N = 8 candidates in 2 classes (4–4 images per class)"
    )


def classmem_test_table(random=(0.1, 0.2, -0.1)):
    return pd.DataFrame(
        {
            "layer": ["1", "2", "3"],
            "deep": [False, True, True],
            "SSL t": [0.0, 2.0, 4.0],
            "SSL p": [0.5, 0.02, 0.001],
            "SL t": [1.0, -1.0, 3.0],
            "SL p": [0.2, 0.8, 0.01],
            "random UM−CM": list(random),
            "SSL−SL t": [0.0, 5.0, 6.0],
            "SSL−SL p": [0.5, 0.001, 0.0001],
        }
    )


def test_classmem_claims_use_each_encoders_check():
    checks = {
        "SSL": SimpleNamespace(testable=False, reason="Not testable here: SSL."),
        "SL": SimpleNamespace(testable=True, reason=""),
    }
    contrast, sl, ssl = U.classmem_claims(classmem_test_table(), checks)
    assert (contrast["statistic"], contrast["p_value"], contrast["holds"]) == (5.0, 0.001, True)
    assert "testable" not in contrast  # the page's checks decide
    assert (sl["statistic"], sl["p_value"], sl["holds"]) == (-1.0, 0.8, False)
    assert (sl["testable"], ssl["testable"], ssl["reason"]) == (
        True,
        False,
        "Not testable here: SSL.",
    )
    assert (ssl["statistic"], ssl["p_value"]) == (2.0, 0.02)
    note = U.classmem_note(classmem_test_table())
    assert "ranges from -0.100 to 0.200: it is not positive" in note
    assert "says little" in U.classmem_note(classmem_test_table(random=(-1, 0.2, 0.1)))


# ----------------------------------------------------------------------------- pages: F3a, F3c


def test_unitmem_of_requests_shares_the_random_control_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOC_CACHE", str(tmp_path))
    requests = [
        SimpleNamespace(label=name, epsilon=eps, get=fake_pair)
        for name, eps in (("one", 1.0), ("none", float("inf")))
    ]
    pairs, results = U.unitmem_of_requests(requests)
    assert list(pairs) == list(results) == ["one", "none"]
    assert results["one"].random is not results["none"].random
    pairs, results = U.unitmem_of_requests(requests, key="epsilon", seed=1, share_random=True)
    assert list(results) == [1.0, float("inf")]
    assert results[1.0].random is results[float("inf")].random
    assert results[1.0].config["seed"] == 1


def test_dataset_share_claim_and_note():
    summary = pd.DataFrame(
        {"dataset": ["A", "B"], "above": [8, 2], "defined": [10, 10], "share": [0.8, 0.2],
         "mean": [0.5, 0.25]}
    )  # fmt: skip
    c = U.dataset_share_claim(summary, "8", 0.95)
    odds, p = stats.fisher_exact([[8, 2], [2, 8]])
    assert (c["statistic"], c["p_value"]) == (pytest.approx(odds), pytest.approx(p))
    assert c["test"].endswith("above the 95% quantile of the random-init units (layer 8, A, B)")
    units = pd.DataFrame(
        {"dataset": ["A"] * 3 + ["B"] * 3 + ["A"], "encoder": ["trained"] * 6 + ["random init"],
         "defined": [True] * 7, "unitmem": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 9.0]}
    )  # fmt: skip
    entry = {"verdict": "supported", "profile": "quick"}
    note = U.dataset_share_note(entry, summary, units, "8", 0.95)
    assert note.startswith("**Supported at profile `quick`.** Units of layer `8` above")
    assert "quantile: A 80%, B 20%" in note and "Mean UnitMem: A 0.500, B 0.250." in note
    assert "KS distance between A and B: 1.000" in note  # the random-init unit is left out


def test_dataset_share_claim_over_three_data_sets():
    shares = pd.DataFrame({"dataset": ["A", "B", "C"], "above": [8, 2, 5], "defined": [10] * 3})
    c = U.dataset_share_claim(shares, "8", 0.95)
    chi = stats.chi2_contingency([[8, 2], [2, 8], [5, 5]])
    assert (c["statistic"], c["p_value"]) == (
        pytest.approx(chi.statistic),
        pytest.approx(chi.pvalue),
    )
    # No unit memorizes anywhere (the paper profile's toy run): the same share everywhere.
    none = U.dataset_share_claim(shares.assign(above=0), "8", 0.95)
    assert (none["statistic"], none["p_value"]) == (0.0, 1.0)
    assert "every data set has the same share" in none["test"]


def privacy_tables(reference_excess=0.02, reference_p=0.01):
    """F3c's tables by hand: ε = 1 (UnitMem 0.1, 0.2), ε = 4 (0.2, 0.3), non-private (0.4,
    0.5), and a random-init unit that must be left out."""
    summary = pd.DataFrame(
        {
            "encoder": ["ε = 1", "ε = 4", "non-private"],
            "ε": [1.0, 4.0, float("inf")],
            "mean": [0.15, 0.25, 0.45],
            "excess": [0.05, 0.1, 0.2],
            "random_excess": [0.05, 0.1, 0.2],
            "random_p": [0.01, 0.001, 0.001],
            "heldout_excess": [0.06, 0.01, reference_excess],
            "heldout_p": [0.04, 0.3, reference_p],
        }
    )
    units = pd.DataFrame(
        {
            "layer": ["8"] * 7,
            "defined": [True] * 7,
            "eps": [1.0, 1.0, 4.0, 4.0, np.inf, np.inf, np.nan],
            "unitmem": [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.9],
        }
    )
    return summary, units


def test_privacy_claims_testability_and_note():
    summary, units = privacy_tables()
    trend_claim, remains = U.privacy_claims(summary, units, "8")
    rho = stats.spearmanr([1, 1, 2, 2, 3, 3], [0.1, 0.2, 0.2, 0.3, 0.4, 0.5], alternative="greater")
    assert trend_claim["statistic"] == pytest.approx(rho.statistic)
    assert trend_claim["p_value"] == pytest.approx(rho.pvalue) and trend_claim["holds"] is True
    assert "(ε = 1, 4, non-private)" in trend_claim["test"]
    assert (remains["statistic"], remains["p_value"], remains["holds"]) == (0.05, 0.04, True)
    check = SimpleNamespace(testable=True, reason="")
    assert U.privacy_testability(summary, check, "8") == (True, "")
    failed = SimpleNamespace(testable=False, reason="Not testable here: f learned nothing.")
    testable, reason = U.privacy_testability(privacy_tables(-0.01, 0.6)[0], failed, "8")
    assert not testable and reason.startswith("Not testable here: the non-private encoder does")
    assert reason.endswith("; non-private f learned nothing.")
    entries = [{"verdict": "supported", "p_value": 0.02}, {"verdict": "not supported"}]
    note = U.privacy_note(summary, units, "8", entries, reason)
    paragraphs = note.split("\n\n")
    assert paragraphs[0] == f"*{reason}*" and len(paragraphs) == 5
    assert "**The non-private reference** memorizes at layer `8`" in paragraphs[1]
    assert "(supported).** ρ = " in paragraphs[3] and "non-private minus ε = 1: +0.300" in note
    assert paragraphs[4].startswith("**Not removed (not supported).** At ε = 1")
    assert U.privacy_note(summary, units, "8", entries).startswith("**The non-private")


def test_privacy_label_and_quality(monkeypatch):
    import memloc.regime

    assert (U.privacy_label(4.0), U.privacy_label(float("inf"))) == ("ε = 4", "non-private")
    monkeypatch.setattr(memloc.regime, "quality_table", lambda pairs: pairs)
    assert U.privacy_quality({1.0: "p1", float("inf"): "p0"}) == {
        "ε = 1": "p1",
        "non-private": "p0",
    }


# ----------------------------------------------------------------------------- pages: F3b, A2, A3


def sslmem_of_tiny_pair(n=6):
    f, g = tiny_resnet(0), tiny_resnet(1)
    x = torch.rand(2 * n, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    return layermem(f, g, x[:n], k_aug=2, policy=AugmentPolicy.simclr(), heldout_images=x[n:],
                    top_k=0)  # fmt: skip


def test_calibrated_sslmem_sets_and_ranked_runs():
    sslmem = sslmem_of_tiny_pair()
    s_cand, s_held = U.calibrated_sslmem_sets(sslmem, 4)
    pd.testing.assert_series_equal(s_cand, U.calibrated_sslmem(sslmem).iloc[:4])
    pd.testing.assert_series_equal(s_held, U.calibrated_sslmem(sslmem, "heldout").iloc[:4])
    with pytest.raises(ValueError, match="fewer than 7"):
        U.calibrated_sslmem_sets(sslmem, 7)
    mu = np.array([[3.0, 1.0], [1.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    results = [result_from_mu({"a": mu * s}) for s in (1.0, 2.0, 3.0)]
    controls = U.UnitMemControls("SSL", *results, {"n_points": 4})
    runs = U.sslmem_ranked_runs(controls, sslmem)
    assert list(runs) == list(U.CONTROL_RUNS)
    assert runs["f, candidates"][0] is controls.trained and runs["f, held-out"][0] is results[1]
    assert runs["random init, candidates"][1] is runs["f, candidates"][1]
    pd.testing.assert_series_equal(runs["f, held-out"][1], s_held)
    driven = U.driven_runs(runs)
    pd.testing.assert_frame_equal(driven["f, candidates"][0], U.driven_unitmem(controls.trained))


def rho_table():
    rows = [
        ("f, candidates", "a", 0.2, 0.1),
        ("f, candidates", "b", 0.6, 0.001),
        ("random init, candidates", "a", 0.0, 0.5),
        ("random init, candidates", "b", 0.1, 0.3),
        ("f, held-out", "a", 0.1, 0.2),
        ("f, held-out", "b", 0.2, 0.05),
    ]
    table = pd.DataFrame(rows, columns=["encoder", "layer", "rho", "p"])
    return table.assign(n=50)


def test_driven_page_claims_and_tables():
    rhos = rho_table()
    view = U.driven_spearman_view(rhos, ["b", "a"])
    assert list(view.index) == ["b", "a"] and view.columns[0] == ("f, candidates", "rho")
    assert view.loc["b", ("f, held-out", "p")] == 0.05
    main, versus = U.driven_claims(rhos, "b")
    assert (main["statistic"], main["p_value"], main["holds"]) == (0.6, 0.001, True)
    z, p = U.spearman_difference(0.6, 50, 0.2, 50)
    assert versus["statistic"] == pytest.approx(z) and versus["p_value"] == pytest.approx(p)
    assert versus["holds"] and "layer b" in versus["test"]
    assert U.driven_note(rhos, "b").startswith(
        "Controls at layer b: ρ = 0.100 (p = 0.3) at random initialisation, ρ = 0.200 (p = 0.05)"
    )


def test_top_least_measured_matches_top_least_unitmem(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOC_CACHE", str(tmp_path))
    pair = fake_pair()
    pair.profile = load_profile("quick", n_points=8, k_aug=2, top_k=2)
    s_cand = pd.Series(np.arange(8.0))
    s_held = pd.Series(np.arange(8.0)[::-1])
    measured = U.top_least_measured(pair, s_cand, s_held)
    assert list(measured) == list(U.CONTROL_RUNS)
    policy = U.unitmem_policy(pair.profile)
    expected = U.top_least_unitmem(
        pair.f, pair.images("heldout", 8), s_held, 2, k_aug=2, policy=policy
    )
    pd.testing.assert_frame_equal(measured["f, held-out"], expected)
    stacked = U.stack_runs(measured)
    assert len(stacked) == 3 * len(expected)
    assert list(dict.fromkeys(stacked["encoder"])) == list(U.CONTROL_RUNS)


def test_top_least_tables_claims_and_gallery():
    sslmem = SimpleNamespace(
        table=pd.DataFrame({"layer": ["a", "b"], "top_layermem": [1.0, 2.0],
                            "least_layermem": [0.0, 0.5], "heldout_top_layermem": [0.3, 0.4],
                            "heldout_least_layermem": [0.1, 0.2]})
    )  # fmt: skip
    context = U.top_least_layermem(sslmem, "b")
    assert context.index.name == "LayerMem at b"
    assert context.loc["candidates"].tolist() == [2.0, 0.5]
    assert context.loc["held-out"].tolist() == [0.4, 0.2]
    tests = pd.DataFrame(
        {"encoder": ["f, candidates"] * 2 + ["f, held-out"] * 2, "layer": ["a", "b"] * 2,
         "difference": [0.1, 0.2, 0.0, 0.1], "t": [3.0, 2.5, 0.1, 2.1],
         "welch_p": [0.01, 0.02, 0.4, 0.03]}
    )  # fmt: skip
    view = U.top_least_view(tests, ["b", "a"])
    assert list(view.index) == ["b", "a"]
    assert view.loc["a", ("f, candidates", "t")] == 3.0
    gap_tests = pd.DataFrame({"layer": ["a", "b"], "t": [1.0, -0.5], "p": [0.1, 0.7],
                              "mean_x": [0.2, 0.1], "mean_y": [0.1, 0.2], "n": [5, 5]})  # fmt: skip
    top, gap = U.top_least_claims(tests, gap_tests, ["b"], k=4)
    assert (top["statistic"], top["p_value"], top["holds"]) == (2.5, 0.02, True)
    assert "k = 4" in top["test"]
    assert (gap["statistic"], gap["p_value"], gap["holds"]) == (-0.5, 0.7, False)
    assert list(U.gap_view(gap_tests).columns[-3:]) == ["gap, candidates", "gap, held-out", "units"]
    note = U.top_least_note(tests)
    assert "f on candidates: a, b; f on held-out images (control): b (of 2)." in note
    images = torch.arange(6.0).view(6, 1, 1, 1)
    picked, captions = U.top_least_gallery(images, pd.Series([0.0, 5.0, 1.0, 4.0, 2.0, 3.0]), 2)
    assert picked.flatten().tolist() == [1.0, 3.0, 0.0, 2.0]
    assert captions == ["top 1", "top 2", "least 1", "least 2"]


def test_mu_max_page_tables_and_claims():
    mu = np.array([[9.0, 1.0], [1.0, 5.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    result = result_from_mu({"a": mu})
    scores = pd.Series([5.0, 0.0, 1.0, 2.0, 4.0])
    runs = {
        "f, candidates": (result, scores),
        "f, held-out": (result, scores[::-1].reset_index(drop=True)),
    }
    shares = U.mu_max_shares(runs, k=2, fraction=1.0)
    expected = U.mu_max_share(result, scores, k=2, fraction=1.0)
    pd.testing.assert_frame_equal(
        shares[shares["encoder"] == "f, candidates"].drop(columns="encoder"), expected
    )
    rhos = U.dominance_spearman(runs)
    d = U.dominance_with_sslmem(result, scores)
    expected_rho = U.spearman_trend(d["total"], d["sslmem"], alternative="greater")
    assert rhos["f, candidates"].statistic == pytest.approx(expected_rho.statistic)
    table = U.dominance_spearman_table(rhos)
    assert table.index.name == "units dominated vs SSLMem"
    assert list(table.columns) == ["rho", "p (one-sided)"]
    assert U.dominance_sentence(d) == (
        "2 of 5 images dominate at least one unit; the top 10 of them hold 2 of 2 unit maxima."
    )
    images = torch.arange(5.0).view(5, 1, 1, 1)
    picked, captions = U.dominating_gallery(images, d, most=1)
    assert picked.flatten().tolist() == [0.0] and captions == ["1 units, rank 1"]
    # Pooled over the two units of f on its candidates: one hit (image 0), chance 2/5.
    over_units, over_images = U.mu_max_claims(shares, 2, 5, 1.0)
    assert over_units["statistic"] == 0.5 and over_units["holds"]
    assert over_units["p_value"] == pytest.approx(stats.binomtest(1, 2, 0.4, "greater").pvalue)
    assert "top-100% units" in over_units["test"] and over_images["statistic"] == 0.5
    note = U.mu_max_note(shares, 2, 5)
    assert note.startswith("f: 1 of 2 top units (50.0%) have their μ_max on a Top-2 image")
    assert "Controls: f, held-out 50.0%" in note


def test_the_report_helpers_adjust_both_controls_and_count_mu_max_images():
    """The report's units page: the excess must beat both controls (the larger p, Holm over
    layers); the μ_max table counts each candidate's units; ClassMem needs two classes."""
    excess = pd.DataFrame(
        {
            "layer": ["1", "2"],
            "excess": [0.2, 0.1],
            "random_p": [0.01, 0.001],
            "heldout_p": [0.02, 0.04],
        }
    )
    controls = SimpleNamespace(excess=lambda: excess.copy())
    table = U.excess_over_both_controls(controls)
    # Holm over the larger p of each layer: .02 and .04 -> 2 x .02 = .04, max(.04, .04).
    assert table["p_both_holm"].tolist() == pytest.approx([0.04, 0.04])
    assert U.beyond_controls_sentence(table).startswith(
        "Layers whose UnitMem exceeds both controls (Holm-adjusted p < 0.05): `1`, `2` (of 2)"
    )
    units = pd.DataFrame(
        {
            "layer": ["1"] * 4,
            "unit": range(4),
            "argmax": [2, 2, 0, 1],
            "defined": [True] * 3 + [False],
        }
    )
    units["unitmem"] = [0.9, 0.8, 0.1, 0.5]
    trained = SimpleNamespace(units=units, layers=[SimpleNamespace(name="1")], value="unitmem")
    fake = SimpleNamespace(config={"n_points": 3}, trained=trained)
    pair = SimpleNamespace(
        files=lambda role, n: ["a.png", "b.png", "c.png"],
        labels=lambda role, n: torch.tensor([0, 1, 1]),
    )
    images = U.mu_max_images(pair, fake, 0.5)
    # Units 0, 1 -> image 2, unit 2 -> image 0; the top half of layer 1's defined units (0, 1).
    assert images["image"].tolist()[0] == 2 and images["units"].tolist()[0] == 2
    assert images.set_index("image").loc[0, "units"] == 1
    assert images.set_index("image").loc[1, "units"] == 0
    assert images.set_index("image").loc[2, "file"] == "c.png"
    one_class = SimpleNamespace(
        profile=load_profile("quick"),
        images=lambda role, n: torch.zeros(n, 1, 4, 4),
        labels=lambda role, n: torch.zeros(n, dtype=torch.long),
    )
    assert U.classmem_of_f_and_random(one_class, fake) is None
