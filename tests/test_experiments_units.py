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
    t, p = U.all_layers_test(table, ["x", "y"], p="p", statistic="t")
    assert t == pytest.approx(table["t"].min()) and p == pytest.approx(table["p"].max())
    with pytest.raises(ValueError, match="lacks"):
        U.all_layers_test(table, ["x", "z"], p="p")
    table.loc[1, "p"] = np.nan
    assert np.isnan(U.all_layers_test(table, ["x", "y"], p="p")[1])


def test_spearman_difference():
    z, p = U.spearman_difference(0.3, 50, 0.3, 80)
    assert z == pytest.approx(0.0) and p == pytest.approx(0.5)
    z, p = U.spearman_difference(0.5, 103, 0.0, 103)
    assert z == pytest.approx(np.arctanh(0.5) / np.sqrt(2 * 1.06 / 100))
    assert p == pytest.approx(stats.norm.sf(z))
    with pytest.raises(ValueError):
        U.spearman_difference(0.1, 3, 0.1, 10)


def test_verdict_markdown_lists_each_claim():
    text = U.verdict_markdown(
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
