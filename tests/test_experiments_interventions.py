"""The intervention notebooks' shared measurements (memloc.experiments.interventions): probe
sets, pruning accuracies and their tests (T6), and planting memorization in one unit (A4)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from toys import labelled_images, probe_set, tiny_resnet

from memloc import probe as P
from memloc.augment import AugmentPolicy
from memloc.book import paper_numbers
from memloc.data import default_other_dataset, match_channels
from memloc.experiments import interventions as I
from memloc.experiments import units as U
from memloc.metrics import UnitMemResult, unitmem
from memloc.models.base import MeasurementPoint
from memloc.probe import features, probe_accuracy
from memloc.splits import Splits

pytestmark = [
    pytest.mark.filterwarnings("ignore::memloc.metrics.UndefinedUnitsWarning"),
    pytest.mark.filterwarnings("ignore:only .* units to prune:UserWarning"),
]


def result_from_mu(mu: dict[str, np.ndarray]):
    points = [MeasurementPoint(name, name, "conv") for name in mu]
    n = next(iter(mu.values())).shape[0]
    # The scores of stored mean activations: the public UnitMemResult.rescore, as the
    # measurement store computes them.
    config = {"k_aug": 0, "seed": 0, "n_points": n}
    stored = UnitMemResult(pd.DataFrame(), mu, np.arange(n), "unitmem", points, config)
    return stored.rescore("mean")


# ----------------------------------------------------------------------------- probe sets


def test_subsample_is_seeded_sorted_and_capped():
    a = P.subsample(100, 10, seed=3)
    assert len(a) == 10 and len(set(a)) == 10 and list(a) == sorted(a)
    assert np.array_equal(a, P.subsample(100, 10, seed=3))
    assert not np.array_equal(a, P.subsample(100, 10, seed=4))
    assert np.array_equal(P.subsample(5, None, 0), np.arange(5))
    assert np.array_equal(P.subsample(5, 50, 0), np.arange(5))
    with pytest.raises(ValueError, match="positive"):
        P.subsample(5, 0, 0)


def test_match_channels():
    rgb = torch.tensor([[[[0]], [[30]], [[60]]]], dtype=torch.uint8)
    grey = match_channels(rgb, 1)
    assert grey.shape == (1, 1, 1, 1) and grey.dtype == torch.uint8 and int(grey) == 30
    back = match_channels(grey, 3)
    assert back.shape == (1, 3, 1, 1) and (back == 30).all()
    assert match_channels(rgb, 3) is rgb
    with pytest.raises(ValueError, match="cannot turn"):
        match_channels(torch.zeros(1, 2, 1, 1), 3)


def test_default_other_dataset():
    assert default_other_dataset("fashion-mnist") == "digits"
    assert default_other_dataset("Fashion_MNIST") == "digits"
    assert default_other_dataset("digits") == "fashion-mnist"


def fake_pair(downstream: bool = True):
    """A pair-like object over 40 training images; labels are the image index mod 4."""
    n = 40
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 8, 8).clone()
    data = SimpleNamespace(images=images, labels=torch.arange(n) % 4, channels=1)
    test = SimpleNamespace(images=images[:10], labels=torch.arange(10) % 4)
    parts = dict(shared=range(0, 10), candidate=range(10, 20), independent=range(20, 30))
    parts = {k: list(v) for k, v in parts.items()}
    if downstream:
        parts["downstream"] = list(range(30, 40))
    splits = Splits("toy", n, 0, **parts)
    profile = SimpleNamespace(dataset="digits", image_size=8, seed=0)
    return SimpleNamespace(profile=profile, dataset=data, test=test, splits=splits)


def test_pretraining_probe_set_uses_points_no_encoder_saw():
    s = P.pretraining_probe_set(fake_pair(), n_train=6, n_test=4, seed=0)
    train_ids = s.train_images[:, 0, 0, 0].tolist()
    assert len(train_ids) == 6 and set(train_ids) <= set(range(30, 40))
    assert s.sizes == {"train": 6, "test": 4} and "downstream" in s.source
    assert s.train_labels.tolist() == [i % 4 for i in train_ids]
    # No downstream part: the points in no part of the split (here the same ten).
    s = P.pretraining_probe_set(fake_pair(downstream=False), seed=0, min_train=10)
    assert set(s.train_images[:, 0, 0, 0].tolist()) == set(range(30, 40))
    assert "outside" in s.source
    # Fewer of them than min_train (a small folder): S_S joins them.
    s = P.pretraining_probe_set(fake_pair(downstream=False), seed=0, min_train=11)
    assert set(s.train_images[:, 0, 0, 0].tolist()) == set(range(0, 10)) | set(range(30, 40))
    assert s.source.startswith("train: S_S (both encoders trained on it) and 10 points outside")


def test_probe_sets_adds_the_other_dataset_or_skips_it(monkeypatch, tmp_path):
    pair = fake_pair()
    pair.profile.dataset = "fashion-mnist"
    sets, skipped = P.probe_sets(pair, "digits", n_train=50, n_test=20)
    assert list(sets) == ["fashion-mnist", "digits"] and skipped == {}
    other = sets["digits"]
    assert other.role == "other" and other.train_images.shape == (50, 1, 8, 8)
    assert other.sizes == {"train": 50, "test": 20}
    monkeypatch.setenv("MEMLOC_DATA", str(tmp_path))
    sets, skipped = P.probe_sets(pair, "cifar10", n_train=5, n_test=5)
    assert list(sets) == ["fashion-mnist"] and "cifar10" in skipped
    assert "not available" in skipped["cifar10"]
    sets, skipped = P.probe_sets(pair, "none")
    assert list(sets) == ["fashion-mnist"] and skipped == {}
    sets, skipped = P.probe_sets(pair, ["digits", "cifar10"], n_train=5, n_test=5)
    assert list(sets) == ["fashion-mnist", "digits"] and list(skipped) == ["cifar10"]


def test_probe_set_roles_sizes_and_skipped_paragraphs():
    sets = {"toy": probe_set(), "other": probe_set("other", "other")}
    sets["other"].source = "scikit-learn"
    assert I.probe_roles(sets) == {"toy": "pretraining", "other": "other"}
    sizes = I.probe_set_sizes(sets)
    assert sizes["other"] == {"train": 24, "test": 16, "source": "scikit-learn"}
    table = I.probe_sets_table(sets)
    assert table.index.name == "probe data set" and list(table.index) == ["toy", "other"]
    assert table.loc["other"].tolist() == [24, 16, "scikit-learn"]
    assert I.skipped_markdown({}) == ""
    assert I.skipped_markdown({"svhn": "not here"}, "its column is left out") == (
        "\n\n**svhn is not available here, so its column is left out:** not here"
    )


# ----------------------------------------------------------------------------- T6


def test_prune_setting_labels_are_the_papers_rows():
    parsed = [I.PruneSetting.parse(s) for s in I.PAPER_SETTINGS]
    assert parsed[0] == I.PruneSetting("per_layer", 0.1)
    assert I.PruneSetting.parse("total 20%") == I.PruneSetting("total", 0.2)
    assert I.PruneSetting.parse(("per layer", 0.2)) == I.PruneSetting("per_layer", 0.2)
    labels = {I.row_label(s, p) for p in parsed for s in ("top", "random", "low")}
    labels.add(I.row_label("none", None))
    assert labels == set(paper_numbers("T6")["row"])
    for bad in ("sideways 0.1", "total 0", "total 1.5"):
        with pytest.raises(ValueError):
            I.PruneSetting.parse(bad)


@pytest.fixture(scope="module")
def pruned_accuracies():
    encoder = tiny_resnet(0)
    images, _ = labelled_images(12, 5)
    measured = unitmem(encoder, images, k_aug=0)
    sets = {"toy": probe_set("toy"), "other": probe_set("other", "other", seed=7)}
    acc = I.pruning_accuracies(
        encoder,
        measured,
        sets,
        settings=["per_layer 0.25", "total 1.0"],
        random_seeds=[0, 1, 2],
    )
    return encoder, measured, sets, acc


def test_pruning_accuracies_rows_and_baseline(pruned_accuracies):
    encoder, _, sets, acc = pruned_accuracies
    # Per data set: no pruning + 2 settings x (top + low + 3 random seeds).
    assert len(acc) == 2 * (1 + 2 * 5)
    assert set(acc["row"]) >= {"no pruning", "top per layer 25%", "random total 100%"}
    base = acc[(acc["strategy"] == "none") & (acc["dataset"] == "toy")]["accuracy"].item()
    s = sets["toy"]
    expected = probe_accuracy(
        features(encoder, s.train_images),
        s.train_labels,
        features(encoder, s.test_images),
        s.test_labels,
    )
    assert base == pytest.approx(expected)
    per_layer = acc[(acc["scope"] == "per_layer") & (acc["dataset"] == "toy")]
    assert per_layer["n_pruned"].nunique() == 1 and per_layer["n_pruned"].iloc[0] > 0
    top = per_layer[per_layer["strategy"] == "top"]["pruned_unitmem"].item()
    low = per_layer[per_layer["strategy"] == "low"]["pruned_unitmem"].item()
    assert top > low


def test_pruning_every_unit_leaves_the_class_prior(pruned_accuracies):
    """Random pruning of 100% of all units zeroes every convolution: the features are
    constant, so the probe predicts one class and scores that class's share."""
    _, _, sets, acc = pruned_accuracies
    for name, s in sets.items():
        assert (s.test_labels == 0).float().mean() == 0.5
        rows = acc[(acc["row"] == "random total 100%") & (acc["dataset"] == name)]
        assert len(rows) == 3 and (rows["accuracy"] == 0.5).all()


def test_pruning_table_layout(pruned_accuracies):
    _, _, _, acc = pruned_accuracies
    table = I.pruning_table(acc)
    assert table.index[0] == "no pruning"
    assert list(table.columns) == ["toy", "toy std", "other", "other std"]
    assert math.isnan(table.loc["top per layer 25%", "toy std"])
    random = acc[(acc["row"] == "random per layer 25%") & (acc["dataset"] == "toy")]["accuracy"]
    assert table.loc["random per layer 25%", "toy"] == pytest.approx(100 * random.mean())
    assert table.loc["random per layer 25%", "toy std"] == pytest.approx(100 * random.std())


def hand_accuracies(top, random, low, dataset="d", scope="per_layer", fraction=0.1):
    setting = I.PruneSetting(scope, fraction)
    rows = [dict(strategy="none", scope="", fraction=0.0, seed=-1, accuracy=0.9)]
    rows += [dict(strategy="top", scope=scope, fraction=fraction, seed=-1, accuracy=top)]
    rows += [
        dict(strategy="random", scope=scope, fraction=fraction, seed=i, accuracy=a)
        for i, a in enumerate(random)
    ]
    rows += [dict(strategy="low", scope=scope, fraction=fraction, seed=-1, accuracy=low)]
    df = pd.DataFrame(rows).assign(dataset=dataset)
    df["row"] = [
        I.row_label(s, None if s == "none" else setting) for s in df["strategy"].to_numpy()
    ]
    return df


def test_ordering_tests_prediction_t():
    acc = hand_accuracies(0.5, [0.6, 0.62, 0.64], 0.7)
    row = I.ordering_tests(acc).iloc[0]
    scale = 0.02 * math.sqrt(1 + 1 / 3)
    assert row["t_top"] == pytest.approx(0.12 / scale)
    assert row["p_top"] == pytest.approx(stats.t.sf(0.12 / scale, df=2))
    assert row["t_low"] == pytest.approx(0.08 / scale)
    assert row["ordered"] and row["setting"] == "per layer 10%" and row["n_random"] == 3
    # A value inside the random spread is not significant; the wrong side gives t < 0.
    row = I.ordering_tests(hand_accuracies(0.63, [0.6, 0.62, 0.64], 0.55)).iloc[0]
    assert row["t_top"] < 0 and row["p_top"] > 0.5 and row["t_low"] < 0 and not row["ordered"]
    # No spread among the random seeds: no test.
    row = I.ordering_tests(hand_accuracies(0.5, [0.6, 0.6, 0.6], 0.7)).iloc[0]
    assert math.isnan(row["p_top"]) and math.isnan(row["t_low"])


def test_paper_beside_formats_both_sides():
    acc = hand_accuracies(0.5, [0.6, 0.62, 0.64], 0.7, dataset="fashion-mnist")
    table = I.pruning_table(acc)
    out = I.paper_beside(table, paper_numbers("T6"), {"fashion-mnist": "pretraining"})
    assert list(out.columns) == ["paper cifar10", "ours fashion-mnist"]
    assert out.loc["random per layer 10%", "paper cifar10"] == "58.09 ± 1.76"
    assert out.loc["random per layer 10%", "ours fashion-mnist"] == "62.00 ± 2.00"
    assert out.loc["top per layer 10%", "ours fashion-mnist"] == "50.00"


def test_pruned_layers_counts(pruned_accuracies):
    encoder, measured, _, _ = pruned_accuracies
    table = I.pruned_layers(encoder, measured, ["per_layer 0.25", "total 0.1"])
    assert list(table.index) == [
        "top per layer 25%",
        "low per layer 25%",
        "top total 10%",
        "low total 10%",
    ]
    assert "Res2" not in table.columns and "Res6" not in table.columns
    n_total = int(
        0.1 * sum(encoder.get_submodule(f"block{k}").conv.out_channels for k in range(1, 9))
    )
    assert table.loc["top total 10%"].sum() == n_total


def test_removed_units_means_over_seeds_beside_layer_counts():
    acc = hand_accuracies(0.5, [0.6, 0.62, 0.64], 0.7)
    acc["n_pruned"] = [0, 4, 4, 4, 4, 4]
    acc["pruned_unitmem"] = [np.nan, 0.9, 0.2, 0.4, 0.3, 0.1]
    per_layer = pd.DataFrame(
        {"7": [1, 3], "8": [3, 1]}, index=pd.Index(["top per layer 10%", "low per layer 10%"])
    )
    table = I.removed_units(acc, per_layer)
    assert list(table.index) == [
        "no pruning",
        "top per layer 10%",
        "random per layer 10%",
        "low per layer 10%",
    ]
    assert table.loc["random per layer 10%", "pruned_unitmem"] == pytest.approx(0.3)
    assert table.loc["top per layer 10%", "8"] == 3
    assert np.isnan(table.loc["random per layer 10%", "7"])


def test_ordering_tests_shown_in_percent():
    tests = I.ordering_tests(hand_accuracies(0.5, [0.6, 0.62, 0.64], 0.7))
    shown = I.ordering_tests_shown(tests)
    assert "scope" not in shown and "fraction" not in shown
    row = shown.iloc[0]
    assert (row["top"], row["random_mean"], row["low"]) == pytest.approx((50.0, 62.0, 70.0))
    assert row["random_std"] == pytest.approx(2.0) and row["t_top"] == tests["t_top"].iloc[0]


def test_pruning_claims_and_note():
    acc = pd.concat(
        [
            hand_accuracies(0.5, [0.6, 0.62, 0.64], 0.7, dataset="a"),
            hand_accuracies(0.63, [0.6, 0.62, 0.64], 0.7, dataset="b"),
        ]
    )
    tests = I.ordering_tests(acc)
    top, low, ordering = I.pruning_claims(tests, n_random=3, n_settings=1, n_datasets=2)
    # Data set b's top (0.63) lies above the random mean: the smallest t is negative.
    assert top["statistic"] == tests["t_top"].min() < 0
    assert (top["p_value"], top["holds"]) == (tests["p_top"].max(), False)
    assert top["test"] == (
        "one-sided prediction t of top against 3 random seeds, per setting (1 settings × 2 "
        "data set(s)); intersection-union: min t, max p"
    )
    assert low["claim"].startswith("pruning the lowest-UnitMem units") and low["holds"]
    assert ordering["statistic"] == 1 and not ordering["holds"]
    assert "p_value" not in ordering
    # Random accuracies without spread: the test of low is undefined, so is the claim.
    flat = I.ordering_tests(hand_accuracies(0.5, [0.6, 0.6, 0.6], 0.7))
    assert math.isnan(I.pruning_claims(flat, n_random=3, n_settings=1, n_datasets=1)[1]["p_value"])
    with pytest.raises(ValueError, match="no per-setting tests"):
        I.pruning_claims(tests.iloc[:0], n_random=3, n_settings=1, n_datasets=2)
    assert I.pruning_note(tests) == (
        "Top below random at p < 0.05 in 1 of 2 settings, low above random in 2; the full "
        "ordering holds in 1 of 2."
    )


# ----------------------------------------------------------------------------- A4


def test_extreme_units_and_planted_image():
    mu = np.array(
        [
            [5.0, 1.0, 0.0, 1.0],
            [0.0, 1.0, 0.0, 3.0],
            [0.0, 1.2, 0.0, 1.0],
            [0.0, 1.0, 0.0, 1.0],
        ]
    )  # unit 0 fires for image 0 only; unit 1 is flat; unit 2 is dead (undefined)
    result = result_from_mu({"8": mu})
    units = I.extreme_units(result, "8")
    assert units == {"high": 0, "low": 1}
    picks = {I.planted_image(result, "8", [0, 1], seed=s) for s in range(20)}
    assert picks <= {1, 3}  # image 0 is unit 0's mu_max, image 2 unit 1's
    with pytest.raises(ValueError, match="defined units"):
        I.extreme_units(result_from_mu({"8": np.zeros((3, 2))}), "8")


def test_planted_summary_on_hand_made_activations():
    before = result_from_mu({"8": np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 1.5], [1.0, 1.0, 1.0]])})
    after_mu = before.mu["8"].copy()
    after_mu[:, 0] = [1.0, 6.0, 1.0]  # unit 0 now fires for image 1
    after = result_from_mu({"8": after_mu})
    s = I.planted_summary(before, after, "8", unit=0, image=1)
    assert s["unitmem_before"] == pytest.approx(0.0)
    assert s["unitmem_after"] == pytest.approx((6 - 1) / (6 + 1))
    assert s["change"] > 0 and s["rank_p"] == pytest.approx(1 / 3)
    assert s["max_other_change"] == 0.0 and s["moved"]
    assert s["image_rank_after"] == 1 and s["image_rank_before"] == 1  # ties rank first
    table = I.unit_changes(before, after, "8", 0)
    assert table["trained"].tolist() == [True, False, False]
    assert table.loc[1:, "change"].abs().max() == 0
    # A unit whose UnitMem fell: rank p 1 (every unit changed at least as much).
    s = I.planted_summary(after, before, "8", unit=0, image=1)
    assert s["change"] < 0 and s["rank_p"] == 1.0 and not s["moved"]


def test_plant_and_measure_changes_only_the_trained_unit():
    encoder = tiny_resnet(1)
    images, _ = labelled_images(6, 3)
    policy = AugmentPolicy.simclr()
    kw = dict(k_aug=2, policy=policy, seed=0)
    before = U.measure_unitmem(encoder, images, **kw)
    units = I.extreme_units(before, "8")
    r = I.plant_and_measure(
        encoder, images, "8", units["low"], 2, before=before, views=4, steps=3, lr=1e-2, **kw
    )
    assert [p.name for p in r.after.layers] == ["8"]
    table = r.changes()
    others = table[~table["trained"] & table["defined"]]
    assert others["change"].abs().max() < 1e-9
    mine = table[table["trained"]].iloc[0]
    assert not np.allclose(r.before.mu["8"][:, r.unit], r.after.mu["8"][:, r.unit])
    assert mine["unit"] == units["low"] and r.summary()["image"] == 2
    with pytest.raises(ValueError, match="not one of"):
        I.plant_and_measure(encoder, images, "8", 0, 6, before=before, **kw)


def hand_planted() -> dict:
    """Two interventions on layer 8 of three images: unit 0 trained on image 1 (its UnitMem
    rises from 0), unit 1 trained on image 2 (nothing changes)."""
    before = result_from_mu({"8": np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 1.5], [1.0, 1.0, 1.0]])})
    after_mu = before.mu["8"].copy()
    after_mu[:, 0] = [1.0, 6.0, 1.0]
    after = result_from_mu({"8": after_mu})
    return {
        "high": I.PlantedUnit("8", 0, 1, None, before, after),
        "low": I.PlantedUnit("8", 1, 2, None, before, before),
    }


def test_planted_tables_and_gallery():
    planted = hand_planted()
    changes = I.planted_changes(planted)
    assert changes["trained_unit"].tolist() == ["high"] * 3 + ["low"] * 3
    assert changes.loc[changes["trained"], "unit"].tolist() == [0, 1]
    summary = I.planted_summaries(planted)
    assert summary.index.name == "trained unit" and list(summary.index) == ["high", "low"]
    assert summary.loc["high", "moved"] and summary.loc["low", "change"] == 0
    images = torch.arange(3.0).view(3, 1, 1, 1)
    pair = SimpleNamespace(images=lambda which, n: images[:n])
    chosen, titles = I.planted_gallery(pair, planted)
    # The planted image (1), then unit 0's and unit 1's mu_max images before training (0, 0).
    assert chosen.flatten().tolist() == [1.0, 0.0, 0.0]
    assert titles == ["planted", "μ_max before, high unit", "μ_max before, low unit"]


def test_planted_claims_and_note():
    claims = I.planted_claims(hand_planted())
    assert [c["claim"] for c in claims] == [
        "training one high-UnitMem unit on one image raises its UnitMem and no other unit's",
        "the trained high-UnitMem unit's mu_max moves to the planted image",
        "training one low-UnitMem unit on one image raises its UnitMem and no other unit's",
        "the trained low-UnitMem unit's mu_max moves to the planted image",
    ]
    rises, moves, flat, stays = claims
    assert rises["statistic"] == pytest.approx(5 / 7) and rises["p_value"] == pytest.approx(1 / 3)
    assert rises["holds"] and moves["holds"] and moves["statistic"] == 1
    assert "p_value" not in moves and moves["test"].endswith("among N = 3")
    assert rises["test"] == (
        "UnitMem change of unit 0 of layer 8; rank p among 3 defined units; other units' "
        "|change| <= 1e-9"
    )
    assert not flat["holds"] and not stays["holds"]
    note = I.planted_note(hand_planted()).splitlines()
    assert note[0].startswith("- high unit 0: UnitMem 0.000 → 0.714")
    assert note[1] == (
        "- low unit 1: UnitMem 0.333 → 0.333 (percentile in the layer 1.00 → 1.00); the planted "
        "image ranked 2 → 2 of 3; largest change of another unit 0.0e+00."
    )


def test_plant_units_trains_each_unit_with_the_pairs_settings(monkeypatch):
    calls = []

    def fake_plant(encoder, images, layer, unit, image, **kw):
        calls.append((layer, unit, image, images, kw))
        return unit

    monkeypatch.setattr(I, "plant_and_measure", fake_plant)
    profile = SimpleNamespace(k_aug=4, seed=7, temperature=0.5, dataset="fashion-mnist",
                              image_size=8, arch="resnet9")  # fmt: skip
    monkeypatch.setattr(I, "unitmem_policy", lambda p: ("policy of", p.dataset))
    images = torch.arange(4.0).view(4, 1, 1, 1)
    pair = SimpleNamespace(profile=profile, f="f", framework="simclr", policy="train views",
                           images=lambda which, n: images[:n])  # fmt: skip
    before = SimpleNamespace(groups=np.arange(4))
    out = I.plant_units(pair, before, "8", {"high": 3, "low": 5}, 2, views=6, negatives=True)
    assert out == {"high": 3, "low": 5}
    layer, unit, image, measured, kw = calls[0]
    assert (layer, unit, image) == ("8", 3, 2) and torch.equal(measured, images)
    assert kw["negatives"].flatten().tolist() == [0.0, 1.0, 3.0]  # the other candidates
    assert (kw["k_aug"], kw["seed"], kw["train_seed"], kw["temperature"]) == (4, 7, 7, 0.5)
    assert kw["policy"] == ("policy of", "fashion-mnist") and kw["train_policy"] == "train views"
    assert (kw["framework"], kw["views"], kw["steps"]) == ("simclr", 6, 50)
    I.plant_units(pair, before, "8", {"high": 3}, 2)
    assert calls[-1][4]["negatives"] is None


def test_memorization_reference(monkeypatch):
    import memloc.regime

    assert I.memorization_reference(SimpleNamespace(g=None)) == ""
    seen = {}

    def fake_check(pair, learned=True):
        seen["learned"] = learned
        return SimpleNamespace(smallest_p=0.01234)

    monkeypatch.setattr(memloc.regime, "check_pair", fake_check)
    text = I.memorization_reference(SimpleNamespace(g="g"))
    assert seen == {"learned": False}
    assert text.endswith("per-layer S_C-vs-S_I contrast is 0.0123.")
