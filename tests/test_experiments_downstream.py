"""The downstream notebooks' shared measurements (memloc.experiments.downstream): layer
rankings, fine-tuning sets and their tests (T5), donor encoders and layer swaps (A7), probe
tables and McNemar tests (A8)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from toys import probe_set, tiny_resnet

from memloc.artifacts import cache_root
from memloc.book import paper_numbers
from memloc.experiments import downstream as D
from memloc.probe import features, probe_accuracy, probe_predictions
from memloc.profiles import donor_profile, load_profile
from memloc.stats import holm

LAYERS = ["1", "2", "3", "4", "Res2", "5", "6", "7", "8", "Res6"]


def toy_table(values) -> pd.DataFrame:
    return pd.DataFrame({"layer": LAYERS, "contrast": values, "layermem": np.arange(10.0)})


# ----------------------------------------------------------------------------- layer scores


def test_layer_scores_drop_residual_sums_and_difference_over_every_point():
    values = [0.0, 0.1, 0.3, 0.2, 0.5, 0.6, 1.0, 0.9, 1.4, 1.5]
    scores = D.layer_scores(toy_table(values), tiny_resnet())
    assert list(scores.index) == ["1", "2", "3", "4", "5", "6", "7", "8"]
    assert scores.loc["6", "LM"] == pytest.approx(1.0)
    # ΔLM of 5 is taken from Res2 (0.5), the point before it, as in the paper's T1.
    assert scores.loc["5", "ΔLM"] == pytest.approx(0.1)
    assert scores.loc["4", "ΔLM"] == pytest.approx(-0.1)
    assert scores.loc["1", "ΔLM"] == pytest.approx(0.0)
    raw = D.layer_scores(toy_table(values), tiny_resnet(), score="layermem")
    assert raw.loc["8", "LM"] == 8.0
    with pytest.raises(KeyError, match="no column 'nope'"):
        D.layer_scores(toy_table(values), tiny_resnet(), score="nope")


def test_ranked_layers_forward_order_ties_and_errors():
    scores = pd.DataFrame(
        {"LM": [1.0, 3.0, 2.0, 3.0], "ΔLM": [4.0, 1.0, 0.0, 2.0]}, index=list("abcd")
    )
    assert D.ranked_layers(scores, "LM", 2) == ["b", "d"]
    assert D.ranked_layers(scores, "LM", 1) == ["b"]  # the tie goes to the earlier layer
    assert D.ranked_layers(scores, "ΔLM", 2) == ["a", "d"]
    assert D.ranked_layers(scores, "ΔLM", 1, most=False) == ["c"]
    assert D.ranked_layers(scores, "LM", 3, most=False) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="between 1 and 4"):
        D.ranked_layers(scores, "LM", 5)
    with pytest.raises(ValueError, match="unknown ranking"):
        D.ranked_layers(scores, "UnitMem", 1)


# ----------------------------------------------------------------------------- T5


def test_finetune_sets():
    scores = pd.DataFrame(
        {"LM": [0.0, 0.5, 0.2, 0.1], "ΔLM": [0.0, 0.5, -0.3, -0.1]}, index=["5", "6", "7", "8"]
    )
    sets = D.finetune_sets(scores, ks=(1, 2))
    got = {(r.choice, r.k): r.label for r in sets.itertuples()}
    assert got == {
        ("head only", 0): "head only",
        ("last", 1): "8",
        ("most LM", 1): "6",
        ("most ΔLM", 1): "6",
        ("last", 2): "7,8",
        ("most LM", 2): "6,7",
        ("most ΔLM", 2): "5,6",
    }
    with pytest.raises(ValueError, match="between 1 and 4"):
        D.finetune_sets(scores, ks=(5,))
    controls = D.finetune_sets(scores, ks=(1, 2), least=True)
    got = {(r.choice, r.k): r.label for r in controls.itertuples()}
    assert got[("least LM", 1)] == "5" and got[("least ΔLM", 2)] == "7,8"
    assert len(controls) == len(sets) + 4


def test_finetune_accuracies_trains_each_distinct_set_once(monkeypatch):
    calls = []

    def fake_finetune(encoder, layers, *args, seed, **kwargs):
        calls.append((tuple(layers), seed))
        return 0.5 + 0.1 * len(layers) + 0.01 * seed

    monkeypatch.setattr(D, "finetune", fake_finetune)
    scores = pd.DataFrame({"LM": [0.0, 1.0], "ΔLM": [0.0, 1.0]}, index=["7", "8"])
    sets = D.finetune_sets(scores, ks=(1,))  # last, most LM and most ΔLM are all layer 8
    acc = D.finetune_accuracies(None, sets, probe_set(), seeds=[0, 1], epochs=1, lr=1e-3)
    assert sorted(calls) == [((), 0), ((), 1), (("8",), 0), (("8",), 1)]
    assert len(acc) == len(sets) * 2
    assert acc.loc[(acc["choice"] == "most LM") & (acc["seed"] == 1), "accuracy"].item() == 0.61
    table = D.finetune_table(acc)
    assert table.loc[table["choice"] == "head only", "mean"].item() == pytest.approx(50.5)
    with pytest.raises(ValueError, match="at least one seed"):
        D.finetune_accuracies(None, sets, probe_set(), seeds=[], epochs=1, lr=1e-3)


def test_finetune_accuracies_are_stored_and_read_back(monkeypatch, tmp_path):
    calls = []

    def fake_finetune(encoder, layers, *args, seed, lr, **kwargs):
        calls.append((tuple(layers), seed))
        return 0.5 + 0.1 * len(layers) + 0.01 * seed + lr

    monkeypatch.setattr(D, "finetune", fake_finetune)
    scores = pd.DataFrame({"LM": [0.0, 1.0], "ΔLM": [1.0, 0.0]}, index=["7", "8"])
    sets = D.finetune_sets(scores, ks=(1,))  # head only, 8 (last, most ΔLM), 7 (most LM)
    encoder, probe = tiny_resnet(), probe_set()
    kw = dict(seeds=[0, 1], epochs=1, lr=1e-3, cache=True, cache_dir=tmp_path)
    first = D.finetune_accuracies(encoder, sets, probe, **kw)
    assert len(calls) == 6 and len(list(tmp_path.glob("finetune-*.json"))) == 6
    # Read back: nothing trains, the same table.
    pd.testing.assert_frame_equal(D.finetune_accuracies(encoder, sets, probe, **kw), first)
    assert len(calls) == 6
    # An interrupted run keeps what it finished: only the missing accuracy trains again.
    sorted(tmp_path.glob("finetune-*.json"))[0].unlink()
    pd.testing.assert_frame_equal(D.finetune_accuracies(encoder, sets, probe, **kw), first)
    assert len(calls) == 7
    # Another learning rate or other weights are other measurements.
    D.finetune_accuracies(encoder, sets, probe, **{**kw, "lr": 2e-3})
    assert len(calls) == 13
    other = tiny_resnet()
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    D.finetune_accuracies(other, sets, probe, **kw)
    assert len(calls) == 19


def test_finetune_accuracies_real_run_is_reproducible():
    scores = pd.DataFrame({"LM": [0.0, 1.0], "ΔLM": [1.0, 0.0]}, index=["7", "8"])
    sets = D.finetune_sets(scores, ks=(1,))
    kw = dict(seeds=[0], epochs=1, lr=1e-3, batch_size=8)
    a = D.finetune_accuracies(tiny_resnet(), sets, probe_set(), **kw)
    b = D.finetune_accuracies(tiny_resnet(), sets, probe_set(), **kw)
    pd.testing.assert_frame_equal(a, b)
    assert a["accuracy"].between(0, 1).all()


def test_finetune_tests_paired_and_same_sets():
    rows = []
    most = {0: 0.60, 1: 0.64, 2: 0.61}
    last = {0: 0.55, 1: 0.60, 2: 0.58}
    for seed in range(3):
        rows += [
            dict(choice="last", k=1, label="8", seed=seed, accuracy=last[seed]),
            dict(choice="most LM", k=1, label="6", seed=seed, accuracy=most[seed]),
            dict(choice="most ΔLM", k=1, label="8", seed=seed, accuracy=last[seed]),
        ]
    tests = D.finetune_tests(pd.DataFrame(rows)).set_index("rule")
    expected = stats.ttest_rel(list(most.values()), list(last.values()), alternative="greater")
    assert tests.loc["LM", "t"] == pytest.approx(expected.statistic)
    assert tests.loc["LM", "p"] == pytest.approx(expected.pvalue)
    assert tests.loc["LM", "difference"] == pytest.approx(0.04)
    assert tests.loc["ΔLM", "same"] and np.isnan(tests.loc["ΔLM", "p"])


def test_finetune_accuracies_reports_progress(monkeypatch):
    monkeypatch.setattr(D, "finetune", lambda encoder, layers, *a, seed, **kw: 0.5)
    scores = pd.DataFrame({"LM": [0.0, 1.0], "ΔLM": [1.0, 0.0]}, index=["7", "8"])
    sets = D.finetune_sets(scores, ks=(1,))  # head only, 8 and 7: three distinct sets
    told = []
    D.finetune_accuracies(None, sets, probe_set(), seeds=[0, 1], epochs=1, lr=1e-3,
                          progress=told.append)  # fmt: skip
    assert told == ["head only (seed 0)", "head only (seed 1)", "8 (seed 0)", "8 (seed 1)",
                    "7 (seed 0)", "7 (seed 1)"]  # fmt: skip
    bar = D.finetune_accuracies(None, sets, probe_set(), seeds=[0], epochs=1, lr=1e-3,
                                progress=True)  # fmt: skip
    assert len(bar) == len(sets)


def test_finetune_sizes_small_at_quick_and_toy_runs():
    assert D.finetune_sizes("quick") == (3, 500, 500)
    assert D.finetune_sizes("cpu-toy") == (3, 500, 500)
    assert D.finetune_sizes("cpu") == (5, 2000, 2000)
    assert D.finetune_sizes("quick", 4, 100, 50) == (4, 100, 50)
    with pytest.raises(ValueError, match="at least 2"):
        D.finetune_sizes("cpu", n_seeds=1)


def test_downstream_probe_is_another_data_set_at_the_encoders_input():
    profile = SimpleNamespace(dataset="fashion-mnist", image_size=8, seed=0)
    pair = SimpleNamespace(profile=profile, dataset=SimpleNamespace(channels=3))
    probe = D.downstream_probe(pair, n_train=20, n_test=10)
    assert probe.name == "digits" and probe.role == "other"
    assert probe.train_images.shape == (20, 3, 8, 8) and probe.sizes == {"train": 20, "test": 10}
    again = D.downstream_probe(pair, "digits", n_train=20, n_test=10)
    assert torch.equal(again.train_images, probe.train_images)  # seeded by the profile


def test_finetune_beside_paper_formats_both_sides():
    table = pd.DataFrame(
        {"choice": ["last"], "k": [1], "label": ["8"], "mean": [55.256], "std": [1.5], "n_seeds": 3}
    )
    ours, paper = D.finetune_beside_paper(table, paper_numbers("T5"))
    assert ours.to_dict("records") == [
        {"choice": "last", "k": 1, "label": "8", "ours": "55.26 ± 1.50"}
    ]
    assert list(paper.columns) == ["paper layers", "paper"]
    assert paper.iloc[0].tolist() == ["none", "48.6 ± 1.12"]


def hand_finetune_tests(lm_difference=(0.02, 0.01)):
    """Per-k tests: by LM the sets differ at k = 1, 2; by ΔLM they are the last layers."""
    rows = []
    for k, (t, p, diff) in enumerate(
        zip((2.0, 3.0), (0.04, 0.01), lm_difference, strict=True), start=1
    ):
        rows.append(
            dict(k=k, rule="LM", chosen="6", last="8", same=False, difference=diff, t=t, p=p)
        )
    for k in (1, 2):
        rows.append(
            dict(k=k, rule="ΔLM", chosen="8", last="8", same=True, difference=0.0, t=np.nan,
                 p=np.nan)
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_finetune_claims_intersection_union_and_nothing_to_compare():
    lm, dlm = D.finetune_claims(hand_finetune_tests(), [1, 2], n_seeds=3)
    assert (lm["statistic"], lm["p_value"], lm["holds"]) == (2.0, 0.04, True)
    assert "testable" not in lm  # the page's check decides
    assert lm["test"].startswith(
        "one-sided paired t over 3 seeds per k in [1, 2] where the sets differ (2 of 2)"
    )
    assert lm["claim"] == (
        "fine-tuning the layers with the highest LayerMem beats fine-tuning the same number of "
        "last layers"
    )
    assert dlm["p_value"] is None and np.isnan(dlm["statistic"])
    assert dlm["testable"] is False and "by ΔLayerMem, the most memorizing layers" in dlm["reason"]
    _, dlm = D.finetune_claims(hand_finetune_tests(), [1, 2], 3, page_reason="f learned nothing")
    assert dlm["reason"] == "f learned nothing"
    lm, _ = D.finetune_claims(hand_finetune_tests((0.02, -0.01)), [1, 2], 3)
    assert lm["holds"] is False  # one k goes the wrong way
    # A k whose sets differ but whose test is undefined (no spread over seeds): no verdict.
    undefined = hand_finetune_tests().assign(p=[0.04, np.nan, np.nan, np.nan])
    lm, _ = D.finetune_claims(undefined, [1, 2], 3)
    assert np.isnan(lm["p_value"])


def test_finetune_notes_same_sets_and_control():
    controls = hand_finetune_tests().assign(p=[0.01, 0.2, np.nan, np.nan])
    notes = D.finetune_notes(hand_finetune_tests(), controls)
    assert notes[:2] == [
        "By ΔLM, the 1 most memorizing layer(s) are the last ones (8): nothing to compare.",
        "By ΔLM, the 2 most memorizing layer(s) are the last ones (8): nothing to compare.",
    ]
    assert notes[2].endswith("p < 0.05) in 1 of 2 comparisons where the sets differ.")
    assert len(D.finetune_notes(hand_finetune_tests())) == 2


# ----------------------------------------------------------------------------- A7


def test_donor_profile_sizes():
    donor = donor_profile("quick", "fashion-mnist")
    assert donor.dataset == "fashion-mnist" and donor.resize == "resize"
    assert donor.n_shared == 300 + 150 and donor.n_candidate == donor.n_heldout == 0
    assert donor.arch == "resnet9" and donor.width == 0.25 and donor.image_size == 16
    assert donor_profile("cpu", "digits", epochs=7).n_shared == 1500  # capped at the data
    assert donor_profile("cpu", "digits", epochs=7).epochs == 7


def test_donor_encoder_trains_once_through_the_cache(tmp_path, monkeypatch):
    kw = dict(channels=1, epochs=1, progress=False, cache_dir=tmp_path)
    encoder, entry = D.donor_encoder("quick", "fashion-mnist", **kw)
    assert entry.parent == cache_root(tmp_path) and "fashion-mnist" in entry.name
    quick = tiny_resnet()  # any encoder of another width has other shapes
    assert sum(p.numel() for p in encoder.parameters()) > sum(p.numel() for p in quick.parameters())

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("memloc.artifacts.train", no_training)  # the training loop it calls
    again, entry2 = D.donor_encoder("quick", "fashion-mnist", **kw)
    assert entry2 == entry
    for (n, a), (_, b) in zip(
        encoder.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), n


def test_donor_encoder_channel_mismatch(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="1-channel images but the encoder to swap into takes 3"):
        D.donor_encoder("quick", "digits", channels=3, epochs=1, cache_dir=tmp_path)


def test_swap_settings():
    scores = pd.DataFrame(
        {"LM": [0.1, 0.4, 0.3, 0.2], "ΔLM": [0.3, 0.1, 0.0, 0.2]}, index=["5", "6", "7", "8"]
    )
    s = D.swap_settings(scores, ks=(1, 2), random_seeds=range(4))
    pick = {(r.rule, r.strategy, r.k): r.layers for r in s.itertuples() if r.seed < 0}
    assert pick[("LM", "most", 2)] == ("6", "7")
    assert pick[("LM", "least", 1)] == ("5",)
    assert pick[("ΔLM", "most", 2)] == ("5", "8")
    assert pick[("ΔLM", "least", 2)] == ("6", "7")
    rnd = s[s["strategy"] == "random"]
    assert len(rnd) == 8 and set(rnd["rule"]) == {"random"}
    assert all(len(set(x)) == k for x, k in zip(rnd["layers"], rnd["k"], strict=True))
    pd.testing.assert_frame_equal(s, D.swap_settings(scores, ks=(1, 2), random_seeds=range(4)))


def test_swapping_a_copy_of_itself_changes_nothing():
    encoder = tiny_resnet(0)
    scores = D.layer_scores(toy_table(np.linspace(0, 1, 10)), encoder)
    settings = D.swap_settings(scores, ks=(1, 3), random_seeds=range(2))
    sets = {"toy": probe_set()}
    acc = D.swap_accuracies(encoder, tiny_resnet(0), settings, sets)
    assert acc["accuracy"].nunique() == 1
    other = D.swap_accuracies(encoder, tiny_resnet(1), settings, sets)
    assert list(other["strategy"][:2]) == ["none", "donor"]
    assert len(other) == 2 + len(settings)
    tests = D.swap_tests(other)
    assert set(tests["rule"]) == set(D.SCORES) and set(tests["k"]) == {1, 3}


def hand_swap_accuracies() -> pd.DataFrame:
    """Swap accuracies on one data set at k = 1: f 0.80, the donor 0.30, random 0.70-0.75."""
    rows = [
        dict(rule="", strategy="none", k=0, seed=-1, label="", dataset="a", accuracy=0.80),
        dict(rule="", strategy="donor", k=0, seed=-1, label="", dataset="a", accuracy=0.30),
    ]
    for rule, most, least in (("LM", 0.50, 0.79), ("ΔLM", 0.78, 0.60)):
        rows.append(
            dict(rule=rule, strategy="most", k=1, seed=-1, label="8", dataset="a", accuracy=most)
        )
        rows.append(
            dict(rule=rule, strategy="least", k=1, seed=-1, label="1", dataset="a", accuracy=least)
        )
    for seed, a in enumerate((0.70, 0.75, 0.72)):
        rows.append(
            dict(
                rule="random", strategy="random", k=1, seed=seed, label="x", dataset="a", accuracy=a
            )
        )
    return pd.DataFrame(rows)


def test_swap_tests_by_hand():
    tests = D.swap_tests(hand_swap_accuracies()).set_index("rule")
    rnd = np.array([0.10, 0.05, 0.08])
    assert tests.loc["LM", "most"] == pytest.approx(-0.30)
    assert tests.loc["LM", "random_mean"] == pytest.approx(rnd.mean())
    t = (0.30 - rnd.mean()) / (rnd.std(ddof=1) * np.sqrt(1 + 1 / 3))
    assert tests.loc["LM", "t_most"] == pytest.approx(t)
    assert tests.loc["LM", "p_most"] == pytest.approx(stats.t.sf(t, 2))
    assert tests.loc["LM", "ordered"] and not tests.loc["ΔLM", "ordered"]


def test_swap_summary_and_changes():
    acc = hand_swap_accuracies()
    summary = D.swap_summary(acc)
    random = summary.loc[("random", "random", 1)]
    assert random[("mean", "a")] == pytest.approx(72.333333)
    assert random[("std", "a")] == pytest.approx(100 * np.std([0.70, 0.75, 0.72], ddof=1))
    assert random[("count", "a")] == 3
    changes = D.swap_changes(acc)
    assert set(changes["strategy"]) == {"most", "least", "random"}
    assert changes.set_index(["rule", "strategy"]).loc[("LM", "most"), "change"] == pytest.approx(
        -30.0
    )


def test_swap_claims_and_note():
    tests = D.swap_tests(hand_swap_accuracies())
    claims = D.swap_claims(tests, [1], n_random=3)
    assert [c["claim"] for c in claims[:2]] == [
        "swapping the most memorizing layers by LayerMem moves probe accuracy more than "
        "swapping random layers",
        "swapping the least memorizing layers by LayerMem moves probe accuracy less than "
        "swapping random layers",
    ]
    lm = tests.set_index("rule").loc["LM"]
    assert claims[0]["statistic"] == pytest.approx(lm["t_most"])
    assert claims[0]["p_value"] == pytest.approx(lm["p_most"]) and claims[0]["holds"]
    assert "against 3 random sets, per k in [1] and data set (1 tests)" in claims[0]["test"]
    dlm_most = claims[2]  # ΔLM's most moved 2 points, less than the random sets: t < 0
    assert dlm_most["statistic"] < 0 and not dlm_most["holds"]
    assert D.swap_note(tests).endswith("holds in 1 of 2 settings.")


def test_pair_donor_defaults_to_a_data_set_with_fs_channels(monkeypatch):
    asked = []

    def fake_donor(profile, dataset, *, channels, framework, epochs, progress):
        asked.append((dataset, channels, framework, epochs))
        return "encoder", "entry"

    monkeypatch.setattr(D, "donor_encoder", fake_donor)
    pair = SimpleNamespace(
        profile=SimpleNamespace(dataset="cifar10"), dataset=SimpleNamespace(channels=3)
    )
    assert D.pair_donor(pair, epochs=5) == ("svhn", "encoder", "entry")
    assert D.pair_donor(pair, "stl10", framework="dino")[0] == "stl10"
    assert asked == [("svhn", 3, "simclr", 5), ("stl10", 3, "dino", None)]


def test_donor_probe_sets_require_the_donors_data(monkeypatch):
    monkeypatch.setattr(D, "probe_sets", lambda pair, other, **kw: ({"a": 1, other: 2}, {}))
    assert D.donor_probe_sets(None, "digits", n_train=5, n_test=5) == {"a": 1, "digits": 2}
    monkeypatch.setattr(D, "probe_sets", lambda pair, other, **kw: ({"a": 1}, {other: "gone"}))
    with pytest.raises(RuntimeError, match="must be available"):
        D.donor_probe_sets(None, "svhn")


# ----------------------------------------------------------------------------- A8


def test_probe_predictions_agree_with_probe_accuracy():
    s = probe_set()
    enc = tiny_resnet()
    tr, te = features(enc, s.train_images).numpy(), features(enc, s.test_images).numpy()
    predicted = probe_predictions(tr, s.train_labels, te)
    assert predicted.shape == (16,)
    assert (predicted == s.test_labels.numpy()).mean() == probe_accuracy(
        tr, s.train_labels, te, s.test_labels
    )


def test_probe_table_and_mcnemar():
    sets = {"toy": probe_set()}
    table, correct = D.probe_table({"a": tiny_resnet(0), "b": tiny_resnet(1)}, sets)
    assert list(table["encoder"]) == ["a", "b"] and (table["n_test"] == 16).all()
    assert (table["ci_low"] <= table["accuracy"]).all() and (
        table["accuracy"] <= table["ci_high"]
    ).all()
    assert table["accuracy"].tolist() == [
        correct[("a", "toy")].mean(),
        correct[("b", "toy")].mean(),
    ]

    by_hand = {
        ("a", "x"): np.array([1, 1, 1, 1, 1, 1, 0, 0], bool),
        ("b", "x"): np.array([1, 0, 0, 0, 0, 0, 1, 0], bool),
    }
    m = D.mcnemar_tests(by_hand, "a", "b").iloc[0]
    assert (m["only_a"], m["only_b"]) == (5, 1)
    assert m["difference"] == pytest.approx(0.5)
    assert m["p"] == pytest.approx(stats.binomtest(5, 6).pvalue)


def test_ssl_sl_encoders_names_and_untrained_floor():
    profile = load_profile("quick")
    ssl = SimpleNamespace(profile=profile, framework="simclr", f=tiny_resnet(0),
                          dataset=SimpleNamespace(channels=1))  # fmt: skip
    sl = SimpleNamespace(f=tiny_resnet(1))
    encoders = D.ssl_sl_encoders(ssl, sl)
    assert list(encoders) == ["SSL (simclr)", "SL (supervised)", "untrained"]
    assert encoders["SSL (simclr)"] is ssl.f and encoders["SL (supervised)"] is sl.f
    first = next(encoders["untrained"].parameters())
    again = next(D.ssl_sl_encoders(ssl, sl)["untrained"].parameters())
    assert first.shape[1] == 1 and torch.equal(first, again)  # seeded by the profile


def test_probe_accuracy_table_grid_and_mcnemar_holm():
    sets = {"toy": probe_set(), "other": probe_set("other", "other", seed=3)}
    encoders = {"b": tiny_resnet(1), "a": tiny_resnet(0)}
    table, correct = D.probe_accuracy_table(encoders, sets)
    assert list(table.columns)[-1] == "role"
    assert table.set_index(["encoder", "dataset"])["role"].to_dict() == {
        ("b", "toy"): "pretraining",
        ("b", "other"): "other",
        ("a", "toy"): "pretraining",
        ("a", "other"): "other",
    }
    grid = D.accuracy_grid(table, encoders)
    assert list(grid.index) == ["b", "a"]
    assert grid.loc["a", "other"] == pytest.approx(100 * correct[("a", "other")].mean())

    by_hand = {
        ("a", "x"): np.array([1, 1, 1, 1, 1, 1, 0, 0], bool),
        ("b", "x"): np.array([1, 0, 0, 0, 0, 0, 1, 0], bool),
        ("a", "y"): np.array([1, 1, 0, 0], bool),
        ("b", "y"): np.array([1, 1, 0, 0], bool),
    }
    tests = D.mcnemar_holm(by_hand, "a", "b")
    assert "role" not in tests
    assert tests["p_holm"].tolist() == pytest.approx(holm([stats.binomtest(5, 6).pvalue, 1.0]))
    sets = {"x": probe_set("x"), "y": probe_set("y", "other")}
    assert D.mcnemar_holm(by_hand, "a", "b", sets)["role"].tolist() == ["pretraining", "other"]


def test_ssl_sl_claims_and_notes():
    tests = pd.DataFrame(
        dict(dataset=["x"], difference=[0.05], only_a=[3], only_b=[1], p=[0.625], p_holm=[0.625],
             role=["other"])
    )  # fmt: skip
    (entry,) = D.ssl_sl_claims(tests)
    assert entry == {
        "claim": "context (no claim in the paper): SSL minus SL probe accuracy on x "
        "(other data set)",
        "test": "exact McNemar test on the same test images, two-sided, Holm-adjusted",
        "statistic": 0.05,
        "p_value": 0.625,
        "context": True,
    }
    assert D.ssl_vs_sl_note(tests) == (
        "On x (other), SSL is 5.0 points above SL (3 test images only SSL gets right, 1 only SL; "
        "Holm p = 0.625)."
    )
    below = tests.assign(difference=-0.1)
    assert D.ssl_vs_untrained_note(below) == (
        "On x, SSL is 10.0 points below the untrained encoder (Holm p = 0.625)."
    )
