"""memloc.experiments.layers: the tests behind T1, T3 and A6, on tiny synthetic inputs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as st

import memloc.experiments.layers as L
from memloc.augment import AugmentPolicy
from memloc.metrics import LayerMemResult, layermem
from memloc.models import create
from memloc.models.base import MeasurementPoint

POINTS = ["1", "2", "3", "4", "Res2", "5", "6", "7", "8", "Res6"]


def fake_result(raw_c, raw_h=None, half_a=None, half_b=None, layers=None, align=10.0, raw_i=None):
    """A LayerMemResult from per-image arrays (n, L): what layermem() would return for them."""
    raw_c = np.asarray(raw_c, float)
    n, n_layers = raw_c.shape
    layers = layers or [str(i + 1) for i in range(n_layers)]
    points = [MeasurementPoint(name, f"m{name}", "conv") for name in layers]
    scale = raw_c.max(axis=0) - raw_c.min(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    sets = {"candidate": (raw_c, half_a, half_b)}
    if raw_h is not None:
        sets["heldout"] = (np.asarray(raw_h, float), None, None)
    if raw_i is not None:
        sets["independent"] = (np.asarray(raw_i, float), None, None)
    frames = []
    for name, (raw, ha, hb) in sets.items():
        m = raw.shape[0]
        ha = raw if ha is None else np.asarray(ha, float)
        hb = raw if hb is None else np.asarray(hb, float)
        frames.append(
            pd.DataFrame(
                {
                    "set": name,
                    "point": np.repeat(np.arange(m), n_layers),
                    "layer": np.tile(layers, m),
                    "sslmem": (raw / scale).reshape(-1),
                    "sslmem_raw": raw.reshape(-1),
                    "sslmem_scale_free": raw.reshape(-1),
                    "sslmem_half_a": ha.reshape(-1),
                    "sslmem_half_b": hb.reshape(-1),
                    "align_f": np.full(m * n_layers, align),
                    "align_g": np.full(m * n_layers, align),
                }
            )
        )
    table = pd.DataFrame({"layer": layers, "kind": "conv", "layermem": raw_c.mean(0) / scale})
    if raw_h is not None:
        table["calibrated"] = table["layermem"] - np.asarray(raw_h).mean(0) / scale
    per_point = pd.DataFrame(raw_c / scale, columns=pd.Index(layers, name="layer"))
    return LayerMemResult(table, per_point, pd.concat(frames, ignore_index=True), points, {}, [])


# ----------------------------------------------------------------------------- T1


def _step_pair(n=200, seed=0, shift=1.0):
    """Candidates memorized at the last three of ten points only (a step), and independents."""
    rng = np.random.default_rng(seed)
    cand, indep = rng.normal(size=(n, 10)), rng.normal(size=(n, 10))
    cand[:, 7:] += shift
    return cand, indep


def test_contrast_depth_test_uses_the_images_of_both_sets():
    cand, indep = _step_pair()
    result = fake_result(cand, raw_i=indep, layers=POINTS)
    res = L.contrast_depth_test(result, n_permutations=999)
    assert res.n == (200, 200) and res.pvalue == pytest.approx(1 / 1000)
    # no memorization: two halves of the same noise give no trend
    flat = fake_result(indep[:100], raw_i=indep[100:], layers=POINTS)
    assert L.contrast_depth_test(flat, n_permutations=999).pvalue > 0.05
    # the main path only (e.g. without the residual sums) and seeds averaged per image
    path = ["1", "2", "3", "4", "5", "6", "7", "8"]
    sub = L.contrast_depth_test(result, path, n_permutations=999)
    assert sub.statistic != res.statistic and sub.pvalue < 0.01
    again = fake_result(cand + 0.01, raw_i=indep - 0.01, layers=POINTS)
    c2, i2 = L.contrast_scores([result, again])
    np.testing.assert_allclose(c2, cand + 0.005)
    np.testing.assert_allclose(i2, indep - 0.005)
    assert L.contrast_deep_shallow_test(result).pvalue < 1e-6
    with pytest.raises(ValueError, match="needs the independent images"):
        L.contrast_depth_test(fake_result(cand, layers=POINTS))
    with pytest.raises(KeyError, match="lacks the measurement points"):
        L.contrast_scores(result, ["1", "9"])


def test_pair_testability_needs_a_significant_layer():
    cand, indep = _step_pair(n=100, shift=0.6)
    memorized = L.pair_testability(fake_result(cand, raw_i=indep, layers=POINTS))
    assert memorized.testable and memorized.memorized and memorized.smallest_p < 0.05
    p_all = [
        st.ttest_ind(cand[:, j], indep[:, j], equal_var=False, alternative="greater").pvalue
        for j in range(10)
    ]
    # Holm's smallest adjusted p over 10 layers: 10 times the smallest p
    assert memorized.smallest_p == pytest.approx(min(1.0, 10 * min(p_all)))
    nothing = L.pair_testability(fake_result(indep[:50], raw_i=indep[50:], layers=POINTS))
    assert not nothing.testable and "did not memorize" in nothing.reason
    unlearned = L.pair_testability(
        fake_result(cand, raw_i=indep, layers=POINTS), probe_accuracy=0.2, untrained_accuracy=0.25
    )
    assert not unlearned.testable and "did not learn" in unlearned.reason


def test_depth_trend_is_spearman_against_forward_order():
    table = pd.DataFrame({"contrast": [0.0, 0.1, 0.05, 0.3, 0.4]})
    res = L.depth_trend(table)
    expected = st.spearmanr(np.arange(5), table["contrast"], alternative="greater")
    assert res.statistic == pytest.approx(0.9)
    assert res.pvalue == pytest.approx(expected.pvalue)
    assert L.depth_trend(table.iloc[::-1].reset_index(drop=True)).statistic == pytest.approx(-0.9)
    with pytest.raises(KeyError, match="no column"):
        L.depth_trend(table, "calibrated")


def test_residual_step_test_exact_values():
    kinds = ["conv", "conv", "conv", "residual", "conv", "residual"]
    # Residual steps smaller than every conv step: the most extreme of C(5, 2) = 10 labelings.
    small = pd.DataFrame({"kind": kinds, "d": [np.nan, 0.3, -0.2, 0.01, 0.4, -0.02]})
    res = L.residual_step_test(small, "d")
    assert res.statistic == 1.0
    assert res.pvalue == pytest.approx(1 / 10)
    assert (res.n_residual, res.n_conv) == (2, 3)
    assert res.residual_mean == pytest.approx(0.015)
    assert res.conv_mean == pytest.approx(0.3)
    # Residual steps the largest: statistic 0, every labeling is at least as extreme.
    large = small.assign(d=[np.nan, 0.01, 0.02, 0.5, 0.03, -0.6])
    res = L.residual_step_test(large, "d")
    assert res.statistic == 0.0 and res.pvalue == 1.0
    # Ties count one half.
    tied = small.assign(d=[np.nan, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert L.residual_step_test(tied, "d").statistic == 0.5
    with pytest.raises(ValueError, match="residual and non-residual"):
        L.residual_step_test(small.assign(kind="conv"), "d")


def test_gap_difference_reduces_to_welch_and_detects_excess():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 30), rng.normal(0, 2, 25)
    res = L.gap_difference_test(a, b, np.zeros(10), np.zeros(12))
    welch = st.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert res.statistic == pytest.approx(welch.statistic)
    assert res.pvalue == pytest.approx(welch.pvalue)
    assert res.df == pytest.approx(welch.df)
    # Same gap in both sets: no excess; a larger gap in the first: a small p.
    same = L.gap_difference_test(a, b, a, b)
    assert same.estimate == pytest.approx(0) and same.pvalue == pytest.approx(0.5)
    big = L.gap_difference_test(a + 3, b, a, b)
    se = math.sqrt(2 * (a.var(ddof=1) / 30 + b.var(ddof=1) / 25))
    assert big.estimate == pytest.approx(3)
    assert big.statistic == pytest.approx(3 / se)
    assert big.pvalue < 1e-4
    with pytest.raises(ValueError, match="constant"):
        L.gap_difference_test(np.ones(3), np.ones(3), np.ones(3), np.ones(3))


def test_cross_fitted_groups_rank_on_one_half_and_score_on_the_other():
    n = 8
    half_a = np.array([[0.0, v] for v in [5, 1, 7, 3, 0, 6, 2, 4]])  # ranks by the last layer
    half_b = np.array([[0.0, 10 * i] for i in range(n)])
    res = fake_result((half_a + half_b) / 2, half_a=half_a, half_b=half_b)
    top, least = L.cross_fitted_groups(res, 2)
    # Top-2 by half_a: points 2 (7) and 5 (6); least-2: points 4 (0) and 1 (1).
    assert top.tolist() == [20, 50]
    assert least.tolist() == [40, 10]
    with pytest.raises(ValueError, match="at least 10"):
        L.cross_fitted_groups(res, 5)


def test_top_least_tests_separate_signal_from_the_heldout_control():
    rng = np.random.default_rng(1)
    n, layers = 200, 2
    # Candidates: a stable per-image effect that both halves share; held-out: noise only.
    effect = rng.normal(0, 1, (n, layers))
    ha, hb = effect + rng.normal(0, 0.3, (n, layers)), effect + rng.normal(0, 0.3, (n, layers))
    noise = rng.normal(0, 1, (n, layers))
    res = fake_result((ha + hb) / 2, raw_h=noise, half_a=ha, half_b=hb)
    tests = L.top_least_tests(res, 20).set_index("set")
    assert list(tests.index) == ["candidate", "heldout", "candidate - heldout"]
    assert tests.loc["candidate", "p"] < 1e-6
    assert tests.loc["candidate", "gap"] > 0
    # The held-out 'halves' are the same array here, so the selection gap is pure selection:
    # the test is still computed the same way; the excess row compares the two gaps.
    assert tests.loc["candidate - heldout", "t"] == pytest.approx(
        L.gap_difference_test(
            *L.cross_fitted_groups(res, 20), *L.cross_fitted_groups(res, 20, set="heldout")
        ).statistic
    )
    top, least = L.top_least_points(res, 5)
    raw_last = ((ha + hb) / 2)[:, -1]
    assert raw_last[top].min() >= np.sort(raw_last)[-5]
    assert raw_last[least].max() <= np.sort(raw_last)[4]


# ----------------------------------------------------------------------------- T3


def test_layer_agreement_identical_reversed_and_rank_invariant():
    rng = np.random.default_rng(2)
    x = rng.normal(size=50)
    scores = pd.DataFrame({"a": x, "b": 3 * x + 7, "c": -x})
    agree = L.layer_agreement(scores, k=10).set_index(["layer_a", "layer_b"])
    assert agree.loc[("a", "b"), "tau"] == pytest.approx(1.0)
    assert agree.loc[("a", "b"), "overlap"] == 10
    assert agree.loc[("a", "c"), "tau"] == pytest.approx(-1.0)
    assert agree.loc[("a", "c"), "overlap"] == 0
    assert (agree["chance"] == 10 / 50).all()
    assert agree.loc[("a", "c"), "distance"] == 2
    m = L.agreement_matrix(agree.reset_index(), "tau")
    assert list(m.index) == ["a", "b", "c"]
    np.testing.assert_allclose(m.to_numpy(), m.to_numpy().T)
    assert np.diag(m.to_numpy()).tolist() == [1.0, 1.0, 1.0]


def test_default_overlap_k():
    assert L.default_overlap_k(150) == 30
    assert L.default_overlap_k(1000) == 100
    assert L.default_overlap_k(5000) == 100


def tau_by_distance(values):
    """A layer_agreement-like frame over POINTS whose tau is values(distance)."""
    rows = []
    for i, a in enumerate(POINTS):
        for j in range(i + 1, len(POINTS)):
            rows.append({"layer_a": a, "layer_b": POINTS[j], "tau": values(j - i, i)})
    return pd.DataFrame(rows)


def test_adjacent_vs_distant_exact_extremes():
    # tau falls with distance: the 4 adjacent deep pairs are the 4 largest of 25 values.
    agree = tau_by_distance(lambda d, i: 1 - 0.1 * d)
    res = L.adjacent_vs_distant(agree)
    assert res.adjacent_pairs == ("5-6", "6-7", "7-8", "8-Res6")
    assert (res.n_adjacent, res.n_distant) == (4, 21)
    assert res.adjacent_mean == pytest.approx(0.9)
    assert res.pvalue == pytest.approx(1 / math.comb(25, 4))
    # No dependence on distance: every labeling ties, p = 1.
    flat = L.adjacent_vs_distant(tau_by_distance(lambda d, i: 0.3))
    assert flat.difference == pytest.approx(0) and flat.pvalue == 1.0
    # Monte Carlo path agrees with the exact one.
    mc = L.adjacent_vs_distant(agree, max_exact=10, n_resamples=5000)
    assert mc.pvalue < 0.005
    with pytest.raises(KeyError, match="not a layer"):
        L.adjacent_vs_distant(agree, deep_from="9")


# ----------------------------------------------------------------------------- A6


def test_stability_sizes():
    assert L.stability_sizes(150) == [25, 50, 100, 150]
    assert L.stability_sizes(1000) == [100, 250, 500, 1000]
    assert L.stability_sizes(5000) == [500, 1000, 2500, 5000]
    assert L.stability_sizes(40) == [25, 40]
    assert L.stability_sizes(16) == [8, 16]  # below the ladder: half, so A6 has two sizes


def test_subset_layermem_renormalises_by_the_subset_range():
    raw_c = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0], [10.0, 0.0]])
    raw_h = np.array([[1.0, 1.0], [0.0, 0.0]])
    res = fake_result(raw_c, raw_h)
    full = L.subset_layermem(res)
    np.testing.assert_allclose(full["layermem"], res.table["layermem"])
    np.testing.assert_allclose(full["calibrated"], res.table["calibrated"])
    sub = L.subset_layermem(res, [0, 1, 2])  # ranges 2 and 2
    np.testing.assert_allclose(sub["layermem"], [1.0 / 2, 2.0 / 2])
    np.testing.assert_allclose(sub["calibrated"], [0.5 - 0.25, 1.0 - 0.25])
    assert (sub["n"] == 3).all()
    np.testing.assert_allclose(sub["range"], [2.0, 2.0])
    # Scaling every raw score of a layer leaves the normalised score unchanged.
    scaled = L.subset_layermem(fake_result(raw_c * [5.0, 0.1], raw_h * [5.0, 0.1]), [0, 1, 2])
    np.testing.assert_allclose(scaled[["layermem", "calibrated"]], sub[["layermem", "calibrated"]])
    with pytest.raises(ValueError, match="at least 2"):
        L.subset_layermem(res, [0])


def test_stability_sweep_and_test():
    rng = np.random.default_rng(3)
    n, layers = 120, 5
    level = np.linspace(-0.5, 0.5, layers)  # a clear layer profile, noise around it
    results = {
        s: fake_result(level + rng.normal(0, 1, (n, layers)), rng.normal(0, 1, (n, layers)))
        for s in (0, 1, 2)
    }
    sizes = [30, 60, 120]
    sweep = L.stability_sweep(results, sizes)
    assert len(sweep) == 3 * len(sizes) * layers
    assert set(sweep["n"]) == set(sizes)
    # The full size uses every candidate: the table's values.
    full = sweep[(sweep["n"] == 120) & (sweep["seed"] == 1)]
    np.testing.assert_allclose(full["layermem"], results[1].table["layermem"])
    # Same seed, same subsets.
    pd.testing.assert_frame_equal(sweep, L.stability_sweep(results, sizes))
    summary = L.stability_summary(sweep, "layermem")
    assert list(summary.columns) == ["layer"] + [
        f"n={s} {w}" for s in sizes for w in ("mean", "std")
    ]
    res = L.stability_test(sweep, "layermem")
    assert (res.n_small, res.n_large) == (30, 120)
    assert res.rho > 0.8 and res.pvalue < 0.05
    assert res.spread_ratio < 1
    with pytest.raises(ValueError, match="exceeds"):
        L.stability_sweep(results, [500])


# ----------------------------------------------------------------------------- measurement


def tiny_pair(n=12, seed=0):
    torch.manual_seed(seed)
    f = create("resnet9", in_channels=1, width=0.125).eval()
    g = create("resnet9", in_channels=1, width=0.125).eval()
    gen = torch.Generator().manual_seed(seed)
    data = torch.rand(4 * n, 1, 16, 16, generator=gen)
    splits = SimpleNamespace(
        candidate=np.arange(n), independent=np.arange(n, 2 * n), heldout=np.arange(2 * n, 3 * n)
    )
    return SimpleNamespace(
        f=f,
        g=g,
        profile=SimpleNamespace(n_points=n, k_aug=2, top_k=2),
        splits=splits,
        test=data[3 * n :],
        hashes={"f": "tiny-f", "g": "tiny-g"},
        policy=AugmentPolicy.simclr(),
        images=lambda which, m=None: data[torch.as_tensor(getattr(splits, which)[:m])],
    )


def test_pair_layermem_caches_the_measurement(tmp_path, monkeypatch):
    pair = tiny_pair()
    first = L.pair_layermem(pair, cache_dir=tmp_path)
    assert first.config["n_points"] == {"candidate": 12, "independent": 12, "heldout": 12}
    assert {"contrast", "calibrated", "top_layermem"} <= set(first.table.columns)
    (stored,) = tmp_path.glob("layermem-*.json")  # layermem-<measurement>-<code>.json
    measurement = stored.stem.rsplit("-", 1)[0]
    written = sorted(p.name for p in tmp_path.glob(f"{measurement}-*"))
    assert len(written) == 3  # json, table, points
    # The same measurement stored by older code (another code hash) is measured again and
    # replaced: its files are renamed to what older code would have written.
    for path in tmp_path.glob(f"{measurement}-*"):
        path.rename(path.with_name(path.name.replace(stored.stem, f"{measurement}-oldcode")))
    renewed = L.pair_layermem(pair, cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob(f"{measurement}-*")) == written
    pd.testing.assert_frame_equal(renewed.table, first.table)  # same seed, same scores

    def refuse(*args, **kwargs):
        raise AssertionError("layermem ran although the result was cached")

    monkeypatch.setattr(L, "layermem", refuse)
    again = L.pair_layermem(pair, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(again.table, first.table, check_exact=True)
    pd.testing.assert_frame_equal(again.points, first.points, check_exact=True)
    pd.testing.assert_frame_equal(again.per_point, first.per_point, check_index_type=False)
    assert [p.name for p in again.layers] == POINTS
    assert again.config == first.config and again.notes == first.notes
    # The cached scores give the same subset LayerMem as the fresh ones.
    pd.testing.assert_frame_equal(L.subset_layermem(again), L.subset_layermem(first))
    np.testing.assert_allclose(L.subset_layermem(first)["layermem"], first.table["layermem"])
    np.testing.assert_allclose(L.subset_layermem(first)["calibrated"], first.table["calibrated"])
    # A different seed is a different measurement.
    with pytest.raises(AssertionError, match="cached"):
        L.pair_layermem(pair, seed=1, cache_dir=tmp_path)
    monkeypatch.setattr(L, "layermem", layermem)
    other = L.pair_layermem(pair, seed=1, n_independent=0, cache=False)
    assert "contrast" not in other.table
    assert len(list(tmp_path.glob("layermem-*.json"))) == 1


def test_stored_measurement_is_keyed_by_the_code_it_depends_on(tmp_path, monkeypatch):
    """The stored LayerMem names the code it depends on (memloc.fingerprint): this module, the
    metric and the encoders' and the policy's code, not the modules that only consume
    measurements (book, figures, the CLI). Unchanged code reads the store; a changed
    fingerprint (simulated) measures again."""
    from memloc.fingerprint import closure

    pair = tiny_pair(n=6)
    L.pair_layermem(pair, cache_dir=tmp_path)
    depends = set(closure("memloc.experiments.layers", pair.f, pair.g, pair.policy))
    assert {"memloc.metrics.layermem", "memloc.activations", "memloc.augment"} <= depends
    assert {type(pair.f).__module__, "memloc.experiments.layers"} <= depends
    assert not {"memloc.book", "memloc.figures", "memloc.cli"} & depends

    def refuse(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(L, "layermem", refuse)
    L.pair_layermem(pair, cache_dir=tmp_path)  # read from the store
    monkeypatch.setattr(L, "fingerprint", lambda *targets: "0" * 64)
    with pytest.raises(AssertionError, match="measured again"):
        L.pair_layermem(pair, cache_dir=tmp_path)


# ----------------------------------------------------------------------------- the pages' functions


def test_layermem_pair_takes_your_checkpoints_or_the_profiles_pair(monkeypatch):
    import memloc.artifacts as artifacts

    calls = []
    monkeypatch.setattr(
        artifacts, "checkpoint_pair", lambda *a, **kw: calls.append(("ckpt", a, kw))
    )
    monkeypatch.setattr(artifacts, "encoder_pair", lambda *a, **kw: calls.append(("cache", a, kw)))
    L.layermem_pair("quick", "simclr", {"f": "f.pt", "g": "g.pt"}, n_points=5)
    L.layermem_pair("quick", "dino", {}, k_aug=3)
    assert calls == [
        ("ckpt", ("quick", {"f": "f.pt", "g": "g.pt"}, "simclr"), {"n_points": 5}),
        ("cache", ("quick", "dino"), {"progress": False, "k_aug": 3}),
    ]


def test_t1_page_functions_on_a_real_measurement():
    pair = tiny_pair()
    result = L.pair_layermem(pair, cache=False)
    assert L.measurement_facts(result) == (
        "Evaluated: 12 candidates, 12 held-out and 12 S_I images, K = 2 pairs of views each, "
        "variant `views` (the paper), Top/Least-k with k = 2."
    )
    # Galleries: the Top/Least-k images by the last layer's score, most memorized first.
    galleries = L.top_least_galleries(result, pair, n_show=1)
    top, least = L.top_least_points(result, 2)
    score = result.per_point["Res6"].to_numpy()
    assert galleries["top"]["title"] == "Top-1 candidates at layer Res6"
    assert galleries["least"]["titles"] == [f"{score[least[0]]:+.2f}"]
    assert torch.equal(galleries["top"]["images"], pair.images("candidate", 12)[top[:1]])

    tests = L.layermem_tests(result, seed=0)
    np.testing.assert_allclose(
        tests.table["delta_contrast"].iloc[1:], np.diff(result.table["contrast"])
    )
    step = L.residual_step_test(tests.table, "delta_contrast")
    assert (tests.residual.statistic, tests.residual.pvalue) == (step.statistic, step.pvalue)
    depth, residual, top_least = L.layermem_claims(tests)
    assert depth["statistic"] == tests.depth.statistic
    assert depth["holds"] == (tests.depth.estimate > 0)
    assert "12 candidates vs 12 S_I images" in depth["test"]
    assert residual["holds"] == (step.residual_mean < step.conv_mean)
    excess = tests.top_least.iloc[2]
    assert top_least["statistic"] == excess["t"] and top_least["p_value"] == excess["p"]
    assert "Top-2 minus Least-2 gap at Res6" in top_least["test"] and "{holm}" in top_least["test"]
    assert top_least["holds"] == (tests.top_least.iloc[0]["p"] < 0.05)

    verdicts = [{"verdict": "supported", "p_value": 0.01}] * 3
    learned = SimpleNamespace(probe=(0.6, 0.5), learned=True, smallest_p=0.01)
    notes = L.layermem_notes(tests, learned, verdicts, "quick")
    assert len(notes) == 4
    assert notes[0].endswith("; linear-probe accuracy of f 0.600, of an untrained encoder 0.500.")
    assert notes[1].startswith("**Depth (supported at profile `quick`).**")
    unchecked = SimpleNamespace(probe=(None, None), learned=None, smallest_p=0.5)
    assert "linear-probe" not in L.layermem_notes(tests, unchecked, verdicts, "quick")[0]


def test_shape_curves_are_the_papers_and_our_scores():
    table = pd.DataFrame({"layermem": [1.0, 2.0], "calibrated": [0.5, 1.5], "contrast": [0.0, 0.2]})
    side = pd.DataFrame({"paper LayerMem": [0.1, 0.3]})
    curves = L.shape_curves(table, side)
    assert list(curves) == [
        "paper LayerMem (CIFAR-10)",
        "ours: LayerMem (raw)",
        "ours: calibrated",
        "ours: contrast",
    ]
    assert curves["paper LayerMem (CIFAR-10)"].tolist() == [0.1, 0.3]
    assert curves["ours: contrast"].tolist() == [0.0, 0.2]


def _agreement_result(n=40, seed=4):
    """Candidates whose layers share a per-image effect; held-out images of pure noise."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(size=(n, 1))
    cand = effect + 0.3 * rng.normal(size=(n, len(POINTS)))
    result = fake_result(cand, raw_h=rng.normal(size=(n, len(POINTS))), layers=POINTS)
    result.config = {"k_aug": 4, "variant": "views"}
    return result


def test_t3_page_functions():
    result = _agreement_result()
    agreement, k, n = L.agreement_by_set(result)
    assert (k, n) == (L.default_overlap_k(40), 40) == (8, 40)
    assert list(agreement) == ["candidates", "held-out"]
    pd.testing.assert_frame_equal(agreement["candidates"], L.layer_agreement(result.per_point, 8))
    assert L.agreement_by_set(result, top_k=3)[1] == 3
    assert L.agreement_facts(result, k) == (
        "40 candidates and 40 held-out images, K = 4 view pairs each, variant `views`. Top-k "
        "overlap with k = 8: two unrelated rankings share k/N = 0.20 of their top sets on average."
    )
    long = L.agreement_long(agreement)
    assert len(long) == 2 * 45 and long["images"].value_counts().to_dict() == {
        "candidates": 45,
        "held-out": 45,
    }
    overlap, tau = L.agreement_matrices(agreement)["held-out"]
    pd.testing.assert_frame_equal(tau, L.agreement_matrix(agreement["held-out"], "tau"))
    assert np.diag(overlap.to_numpy()).tolist() == [1.0] * 10

    # Hand-made taus: falling with distance on the candidates, flat on the control.
    fake = {
        "candidates": tau_by_distance(lambda d, i: 1 - 0.1 * d),
        "held-out": tau_by_distance(lambda d, i: 0.3),
    }
    for a in fake.values():
        a["distance"] = [
            POINTS.index(b) - POINTS.index(x)
            for x, b in zip(a["layer_a"], a["layer_b"], strict=True)
        ]
        a["overlap_fraction"] = 0.5
        a["chance"] = 0.2
    tests = L.adjacency_tests(fake)
    table = L.adjacency_table(tests)
    assert table["images"].tolist() == ["candidates", "held-out"]
    assert "adjacent_pairs" not in table
    claim = L.adjacency_claim(tests)
    assert claim["statistic"] == pytest.approx(tests["candidates"].difference) and claim["holds"]
    assert claim["test"].endswith("(same difference on held-out images: +0.00)")
    note = L.adjacency_note(fake, tests, 8, {"verdict": "supported"}, "quick")
    assert note.startswith("**Verdict at profile `quick`: supported.**")
    assert "stronger than on images neither encoder saw" in note
    assert note.endswith("four or more apart, chance 0.20.")
    swapped = {"candidates": tests["held-out"], "held-out": tests["candidates"]}
    assert "at least as strong" in L.adjacency_note(fake, swapped, 8, {"verdict": "-"}, "quick")
    rising = {"candidates": L.adjacent_vs_distant(tau_by_distance(lambda d, i: 0.1 * d))}
    rising["held-out"] = tests["held-out"]
    assert not L.adjacency_claim(rising)["holds"]


def test_stability_run_measures_each_seed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOC_CACHE", str(tmp_path))
    pair = tiny_pair()
    run = L.stability_run(pair, n_seeds=2)
    assert (run.sizes, run.seeds, run.k_aug, run.n_max, run.n_heldout) == (
        [6, 12],
        [0, 1],
        2,
        12,
        6,
    )
    assert run.layers == POINTS and len(run.sweep) == 2 * 2 * len(POINTS)
    assert "top_layermem" not in run.results[0].table and "contrast" not in run.results[0].table
    assert run.facts.startswith("Sizes n = [6, 12] drawn from 12 candidates; 2 repetitions")
    assert run.measurement == {
        "sizes": [6, 12], "seeds": [0, 1], "k_aug": 2, "n_heldout": 6, "variant": "views"
    }  # fmt: skip


def test_stability_claim_and_note():
    rng = np.random.default_rng(3)
    level = np.linspace(-0.5, 0.5, 5)
    results = {
        s: fake_result(level + rng.normal(0, 1, (120, 5)), rng.normal(0, 1, (120, 5)))
        for s in (0, 1, 2)
    }
    sweep = L.stability_sweep(results, [30, 120])
    tests = L.stability_tests(sweep)
    assert list(tests) == ["layermem", "calibrated"]
    table = L.stability_tests_table(tests)
    assert table["score"].tolist() == ["layermem", "calibrated"]
    assert table.loc[1, "rho"] == tests["calibrated"].rho
    claim = L.stability_claim(tests["calibrated"])
    assert claim["statistic"] == tests["calibrated"].rho
    assert claim["holds"] == (tests["calibrated"].spread_ratio < 1)
    assert "n = 30 vs n = 120" in claim["test"]
    ranges = pd.DataFrame(
        {"n": [30, 120], "mean |LayerMem|": [0.2, 0.1], "range / range at largest n": [0.75, 1.0]}
    )
    note = L.stability_note(tests, ranges, {"verdict": "supported"}, "quick")
    assert note.startswith("**Verdict at profile `quick`: supported.**")
    assert "The range normaliser at n = 30 is 0.75 times the one at n = 120" in note
