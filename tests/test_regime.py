"""memloc.regime: did an encoder learn (probe, kNN against its untrained twin), did it
memorize (the S_C-vs-S_I contrast per layer), and what did its training cost."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from memloc.experiments.encoders import book_encoders
from memloc.probe import knn_accuracy
from memloc.regime import (
    TARGET_MARGIN,
    TARGET_T,
    check_pair,
    combine_checks,
    encoder_quality,
    memorization_strength,
    quality_markdown,
    regime_claims,
    regime_summary,
    training_cost,
)
from memloc.stats import holm


class Brightness(nn.Module):
    """A toy encoder whose one feature is the image's mean intensity (and a constant)."""

    def forward(self, x):
        return torch.stack([x.mean(dim=(1, 2, 3)), torch.ones(len(x))], dim=1)


class Constant(nn.Module):
    """A toy encoder that sees nothing: the same feature for every image."""

    def forward(self, x):
        return torch.ones(len(x), 2)


def toy_data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 1, 8, 8, generator=g) * 0.3 + 0.6 * labels.view(-1, 1, 1, 1)
    return images, labels


def test_quality_separates_an_informative_encoder_from_a_blind_one():
    x, y = toy_data()
    table = encoder_quality(
        {"brightness": Brightness(), "blind": Constant()}, x[:30], y[:30], x[30:], y[30:], k=5
    )
    assert list(table.index) == ["brightness", "blind"]
    assert table.loc["brightness", "probe"] == 1.0 and table.loc["brightness", "knn"] == 1.0
    # A constant feature carries no information: accuracy is the share of the majority guess.
    assert table.loc["blind", "probe"] == pytest.approx(0.5)
    assert (table["n_train"] == 30).all() and (table["n_test"] == 30).all()
    assert "probe_p" not in table.columns


def test_quality_against_a_reference_tests_each_encoder_on_the_same_images():
    x, y = toy_data()
    encoders = {"brightness": Brightness(), "blind": Constant()}
    table = encoder_quality(encoders, x[:30], y[:30], x[30:], y[30:], k=5, reference="blind")
    # The blind probe gets one class right (15 of 30), brightness all 30: 15 images only
    # brightness gets right, none only the blind one, so p = 0.5 ** 15 (exact McNemar).
    assert table.loc["brightness", "probe_p"] == pytest.approx(0.5**15)
    assert np.isnan(table.loc["blind", "probe_p"])
    reverse = encoder_quality(encoders, x[:30], y[:30], x[30:], y[30:], reference="brightness")
    assert reverse.loc["blind", "probe_p"] == 1.0
    with pytest.raises(ValueError, match="reference 'random' is not one of the encoders"):
        encoder_quality(encoders, x[:30], y[:30], x[30:], y[30:], reference="random")


def test_knn_votes_by_cosine_neighbours_by_hand():
    train = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [0.2, 1.0]])
    labels = [0, 0, 1, 1, 1]
    # Scale does not matter to cosine similarity: (10, 0) is next to the class-0 points.
    test = np.array([[10.0, 0.0], [0.0, 3.0]])
    assert knn_accuracy(train, labels, test, [0, 1], k=1) == 1.0
    # With k = 5 every test point gets the majority class (1): one of two right.
    assert knn_accuracy(train, labels, test, [0, 1], k=5) == 0.5
    with pytest.raises(ValueError, match="k must lie in 1..5"):
        knn_accuracy(train, labels, test, [0, 1], k=6)


def test_memorization_strength_applies_holm_over_layers():
    p = np.array([0.001, 0.04, 0.5])
    table = pd.DataFrame(
        {
            "layer": ["1", "2", "Res2"],
            "contrast": [0.3, 0.1, 0.0],
            "contrast_t": [5.0, 1.8, 0.0],
            "contrast_p": p,
        }
    )
    out = memorization_strength(table)
    assert list(out.index) == ["1", "2", "Res2"]
    np.testing.assert_allclose(out["p_holm"], holm(p))
    # 0.001 * 3 < .05 is significant; 0.04 * 2 = .08 is not, though it is below .05 alone.
    assert out["significant"].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="independent images"):
        memorization_strength(table.drop(columns=["contrast_t"]))


def test_training_cost_reads_the_entries_logs(tmp_path):
    entry = tmp_path / "f"
    entry.mkdir()
    epochs = [
        {"epoch": e, "loss": 1.0, "pairs_per_s": s, "wall_s": 2.0}
        for e, s in [(1, 100.0), (2, 300.0), (3, 200.0)]
    ]
    (entry / "log.json").write_text(json.dumps({"epochs": epochs, "wall_s": 6.0}))
    private = tmp_path / "dp"
    private.mkdir()  # DP-SGD logs no throughput: wall time from the epochs, speed unknown
    (private / "log.json").write_text(json.dumps({"epochs": [{"epoch": 1, "wall_s": 1.5}]}))
    cost = training_cost({"f": entry, "dp": private})
    assert cost.loc["f"].tolist() == [3, 200.0, 6.0]
    assert cost.loc["dp", "wall_s"] == 1.5 and np.isnan(cost.loc["dp", "pairs_per_s"])
    with pytest.raises(ValueError, match="no readable training log at .*missing"):
        training_cost({"g": tmp_path / "missing"})


def test_the_regime_page_measures_every_encoder_of_the_book_once():
    requests = book_encoders("quick")
    keys = [(r.profile, r.framework, r.privacy, r.pair) for r in requests]
    assert len(keys) == len(set(keys))
    labels = [r.label for r in requests]
    assert labels[:2] == ["resnet simclr (shared)", "resnet supervised (shared)"]
    frameworks = {r.framework for r in requests}
    assert {"simclr", "simsiam", "dino", "mae", "supervised"} <= frameworks
    assert any(r.privacy is not None for r in requests)  # F3c's private encoders
    assert {r.profile.arch for r in requests} >= {"resnet9", "vit_tiny", "resnet18", "resnet50"}


# ------------------------------------------------------- the line and the check of a result page


def _quality(f=0.843, g=0.85, untrained=0.788, knn_f=0.69, knn_untrained=0.713, p=None):
    table = pd.DataFrame(
        {
            "probe": [f, g, untrained],
            "knn": [knn_f, 0.7, knn_untrained],
            "n_train": 2000,
            "n_test": 1000,
        },
        index=["f", "g", "untrained"],
    )
    if p is not None:
        table["probe_p"] = [p, p, np.nan]
    return table


def test_quality_markdown_states_each_encoder_against_the_untrained_twin():
    text = quality_markdown(_quality())
    assert text.startswith(
        "f's linear probe 0.843 vs 0.788 for the untrained twin (+5.5 points); "
        "kNN 0.690 vs 0.713 (-2.3 points)."
    )
    assert "g's linear probe 0.850 vs 0.788 for the untrained twin (+6.2 points)" in text
    assert text.endswith("(Fitted on 2000 images, scored on 1000.)")
    only_f = quality_markdown(_quality(), ["f"])
    assert "g's" not in only_f and "f's" in only_f
    with pytest.raises(ValueError, match="no 'untrained' row"):
        quality_markdown(_quality().drop(index="untrained"))
    with pytest.raises(ValueError, match="no row"):
        quality_markdown(_quality(), ["h"])
    with_p = quality_markdown(_quality(p=0.0012))
    assert "the untrained twin (+5.5 points, one-sided McNemar p = 0.0012); kNN" in with_p


def _memorized_result(shift):
    """Hand-built per-image scores: candidates shifted by ``shift`` at the last 3 of 10 layers."""
    from test_experiments_layers import POINTS, fake_result

    rng = np.random.default_rng(0)
    cand, indep = rng.normal(size=(100, 10)), rng.normal(size=(100, 10))
    cand[:, 7:] += shift
    return fake_result(cand, raw_i=indep, layers=POINTS)


def test_check_pair_needs_both_learned_and_memorized():
    pair = SimpleNamespace(g=object())
    ok = check_pair(pair, quality=_quality(), layermem=_memorized_result(1.0))
    assert ok.testable and ok.learned and ok.memorized and ok.reason == ""
    assert ok.probe == (0.843, 0.788)
    assert "f's linear probe 0.843" in ok.markdown and "Memorized: yes" in ok.markdown

    unlearned = check_pair(pair, quality=_quality(f=0.70), layermem=_memorized_result(1.0))
    assert not unlearned.testable and unlearned.learned is False and unlearned.memorized
    assert "did not learn (probe accuracy 0.700, untrained 0.788)" in unlearned.reason
    assert f"*{unlearned.reason}*" in unlearned.markdown

    # Above the twin, but not significantly on the same test images: not learned.
    chance = check_pair(pair, quality=_quality(f=0.79, p=0.3), layermem=_memorized_result(1.0))
    assert not chance.testable and chance.learned is False
    assert "(probe accuracy 0.790, untrained 0.788; one-sided McNemar p = 0.3)" in chance.reason
    sure = check_pair(pair, quality=_quality(p=1e-6), layermem=_memorized_result(1.0))
    assert sure.testable and sure.learned

    no_memory = check_pair(pair, quality=_quality(), layermem=_memorized_result(0.0))
    assert not no_memory.testable and no_memory.learned and not no_memory.memorized
    assert "did not memorize" in no_memory.reason and "Memorized: no" in no_memory.markdown


def test_check_pair_learned_only_for_f_alone():
    alone = SimpleNamespace(g=None)
    learned = check_pair(alone, memorized=False, quality=_quality())
    assert learned.testable and learned.memorized is None and np.isnan(learned.smallest_p)
    tied = check_pair(alone, memorized=False, quality=_quality(f=0.788))
    # A probe equal to the untrained twin's is not "above" it.
    assert not tied.testable
    assert tied.reason == (
        "Not testable here: the encoders did not learn (probe accuracy 0.788, untrained 0.788)."
    )
    lucky = check_pair(alone, memorized=False, quality=_quality(f=0.80, p=0.08))
    assert not lucky.testable and "one-sided McNemar p = 0.08" in lucky.reason
    with pytest.raises(ValueError, match="has no g"):
        check_pair(alone, quality=_quality())
    with pytest.raises(ValueError, match="needs learned=True"):
        check_pair(alone, learned=False, memorized=False)


def test_combine_checks_names_the_pairs_that_fail():
    pair = SimpleNamespace(g=object())
    good = check_pair(pair, quality=_quality(), layermem=_memorized_result(1.0))
    bad = check_pair(pair, quality=_quality(f=0.7), layermem=_memorized_result(1.0))
    assert combine_checks({"SSL": good, "SL": good}) == (True, "")
    testable, reason = combine_checks({"SimCLR": good, "DINO": bad})
    assert not testable
    assert reason == (
        "Not testable here: DINO: the encoders did not learn (probe accuracy 0.700, "
        "untrained 0.788)."
    )


def test_regime_summary_and_claims():
    table = pd.DataFrame(
        {
            "encoder": ["shared", "vit", "sup"],
            "framework": ["simclr", "mae", "supervised"],
            "pair": [True, True, False],
            "margin": [TARGET_MARGIN + 0.1, -0.02, 0.3],
            "probe_p": [1e-5, 0.9, 0.2],
            "t_last": [TARGET_T + 1, TARGET_T - 1, np.nan],
        }
    )
    text = regime_summary(table, "quick")
    assert text.startswith("At the `quick` profile, **1 of 2** SSL encoders beat")
    assert "(smallest margin -2.0 points, `vit`)" in text and "**1 of 2** f/g pairs" in text
    assert text.endswith("say so beside their verdicts.")
    good = table.assign(margin=TARGET_MARGIN, t_last=TARGET_T)
    assert "\n\n" not in regime_summary(good, "quick")
    claims = regime_claims(table)
    # sup is 30 points above its twin on paper, but with p = 0.2 that is no evidence.
    assert [c["holds"] for c in claims] == [True, False, False]
    assert claims[1] == {
        "claim": "context: vit learned (probe above its untrained twin)",
        "test": "linear-probe accuracy minus the untrained encoder's, on the same test images; "
        "exact McNemar test, one-sided",
        "statistic": -0.02,
        "p_value": 0.9,
        "holds": False,
        "context": True,
    }


def test_the_sweep_table_reads_the_last_layer_and_the_changes_from_the_profile(tmp_path):
    from memloc.regime import sweep_table

    fields = ["config", "framework", "overrides", "probe_f", "probe_untrained", "t_max"]
    fields += ["t_by_layer", "train_wall_s"]
    rows = [
        # ResNet9: layer 8 is the last layer proper (Res6, after it, is a residual sum).
        (
            "main-e100",
            "simclr",
            {"epochs": 100, "width": 0.5},
            0.83,
            0.775,
            9.0,
            {"7": 2.0, "8": 6.0, "Res6": 9.0},
            600.4,
        ),
        # ResNet18 in A5's table: its last block's output, not the residual sum before it.
        (
            "a5-r18",
            "simclr",
            {"experiment": "a5", "arch": "resnet18", "snapshot_epochs": [25]},
            0.76,
            0.77,
            3.0,
            {"layer4.1.res": 3.0, "layer4.1": 2.5},
            65.0,
        ),
        # One configuration, two frameworks' recipes: each row shows its own.
        (
            "t4-sgd",
            "dino",
            {"experiment": "t4", "recipes": {"dino": {"lr": 0.03}, "simsiam": {"lr": 0.05}}},
            0.79,
            0.77,
            2.0,
            {"8": 1.0, "Res6": 2.0},
            500.0,
        ),
    ]
    path = tmp_path / "regime.csv"
    pd.DataFrame(
        [
            dict(zip(fields, [c, f, json.dumps(o), *v[:3], json.dumps(t), w], strict=True))
            for c, f, o, *v, t, w in rows
        ]
    ).to_csv(path, index=False)
    table = sweep_table(path, "cpu").set_index("configuration")
    first, second = table.loc["main-e100"], table.loc["a5-r18"]
    assert (first["last layer"], first["t last layer"], first["margin (points)"]) == ("8", 6.0, 5.5)
    assert first["changes"] == "epochs=100"  # the cpu profile's width is 0.5 already
    assert bool(first["meets targets"]) and first["training (s)"] == 600
    assert (second["experiment"], second["last layer"], second["t last layer"]) == (
        "a5",
        "layer4.1",
        2.5,
    )
    assert second["changes"] == 'arch="resnet18"' and not bool(second["meets targets"])
    assert table.loc["t4-sgd", "changes"] == "dino lr=0.03"


def test_the_sweep_in_the_repository_names_configurations_the_benchmark_still_runs():
    import importlib.util

    from memloc.regime import sweep_table
    from memloc.utils import repo_root

    spec = importlib.util.spec_from_file_location(
        "regime_bench", repo_root() / "benchmarks/regime.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    measured = pd.read_csv(repo_root() / "benchmarks/results/regime.csv")
    # A rerun of a row's configuration trains the encoders the row measured.
    for row in measured.itertuples():
        assert json.loads(row.overrides) == json.loads(
            json.dumps(bench.CONFIGS[row.config], sort_keys=True)
        ), row.config
    assert len(sweep_table(repo_root() / "benchmarks/results/regime.csv")) == len(measured)
