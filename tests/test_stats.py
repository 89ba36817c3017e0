"""memloc.stats against hand-computed values and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from memloc.stats import (
    bootstrap_ci,
    claim_testability,
    deep_shallow_test,
    holm,
    intersection_union,
    kendall_tau,
    ks_test,
    layer_trend_test,
    linear_layer_test,
    mcnemar_test,
    spearman_trend,
    top_indices,
    topk_overlap,
    welch_one_sided,
)


def test_topk_overlap_hand_computed():
    a = [5, 4, 3, 2, 1]
    b = [5, 1, 4, 2, 3]
    o = topk_overlap(a, b, k=2)  # top of a: {0, 1}; of b: {0, 2}
    assert (o.k, o.n, o.overlap) == (2, 5, 1)
    assert o.fraction == 0.5 and o.chance == pytest.approx(0.4)
    # P(overlap >= 1) = 1 - C(3, 2) / C(5, 2) = 0.7
    assert o.pvalue == pytest.approx(0.7)
    full = topk_overlap(a, a, k=2)
    assert full.overlap == 2 and full.pvalue == pytest.approx(1 / 10)
    least = topk_overlap(a, b, k=2, largest=False)  # bottom of a: {3, 4}; of b: {1, 3}
    assert least.overlap == 1


def test_topk_overlap_aligns_series_and_checks_input():
    a = pd.Series([3.0, 2.0, 1.0], index=[10, 11, 12])
    b = pd.Series([1.0, 2.0, 3.0], index=[12, 11, 10])  # same scores, other order
    assert topk_overlap(a, b, k=1).overlap == 1
    with pytest.raises(ValueError, match="same points"):
        topk_overlap([1, 2, 3], [1, 2], k=1)
    with pytest.raises(ValueError, match="k must be"):
        topk_overlap([1, 2, 3], [1, 2, 3], k=4)
    with pytest.raises(ValueError, match="NaN"):
        topk_overlap([1, np.nan, 3], [1, 2, 3], k=1)
    assert top_indices([1, 3, 3, 2], 2).tolist() == [1, 2]  # ties: earlier position first


def test_kendall_tau():
    x = np.array([1.0, 2, 3, 4, 5, 6])
    assert kendall_tau(x, x).statistic == pytest.approx(1.0)
    assert kendall_tau(x, -x).statistic == pytest.approx(-1.0)
    y = np.array([2.0, 1, 4, 3, 6, 5])
    ref = st.kendalltau(x, y)
    res = kendall_tau(x, y)
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    # 12 concordant, 3 discordant pairs of 15: tau = 9 / 15
    assert res.statistic == pytest.approx(0.6)
    assert kendall_tau(x, y, alternative="greater").pvalue < res.pvalue


def test_welch_one_sided_hand_computed():
    a = np.array([2.0, 4.0, 6.0, 8.0])
    b = np.array([1.0, 2.0, 3.0])
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 3
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    res = welch_one_sided(a, b)
    assert res.statistic == pytest.approx(t) and res.df == pytest.approx(df)
    assert res.pvalue == pytest.approx(st.t.sf(t, df))
    assert res.estimate == pytest.approx(3.0) and res.n == (4, 3)
    assert welch_one_sided(a, b, alternative="less").pvalue == pytest.approx(st.t.cdf(t, df))
    # NaN (undefined units) are dropped
    res_nan = welch_one_sided(np.append(a, np.nan), b)
    assert res_nan.statistic == pytest.approx(t) and res_nan.n == (4, 3)
    with pytest.raises(ValueError, match="at least 2"):
        welch_one_sided([1.0, np.nan], b)
    with pytest.raises(ValueError, match="alternative"):
        welch_one_sided(a, b, alternative="bigger")


def test_ks_test():
    res = ks_test([1.0, 2, 3], [4.0, 5, 6])
    assert res.statistic == 1.0
    assert res.pvalue == pytest.approx(st.ks_2samp([1, 2, 3], [4, 5, 6]).pvalue)
    same = ks_test([1.0, 2, 3], [1.0, 2, 3])
    assert same.statistic == 0.0 and same.pvalue == pytest.approx(1.0)
    # 'less': the first sample's values tend to be larger
    high, low = [4.0, 5, 6, 7, 8, 9], [1.0, 2, 3, 4, 5, 6]
    assert (
        ks_test(high, low, alternative="less").pvalue
        < ks_test(low, high, alternative="less").pvalue
    )
    assert ks_test(high, low, alternative="less").statistic == pytest.approx(0.5)


def test_spearman_trend():
    assert spearman_trend([0.1, 0.2, 0.25, 0.4]).statistic == pytest.approx(1.0)
    res = spearman_trend([0.4, 0.3, 0.2, 0.1, 0.0])
    assert res.statistic == pytest.approx(-1.0) and res.pvalue > 0.9
    ref = st.spearmanr([0, 1, 2, 3, 4], [1, 3, 2, 5, 4], alternative="greater")
    assert spearman_trend([1, 3, 2, 5, 4]).pvalue == pytest.approx(ref.pvalue)


def test_bootstrap_ci():
    ci = bootstrap_ci([2.0, 2.0, 2.0, 2.0])
    assert (ci.estimate, ci.low, ci.high) == (2.0, 2.0, 2.0)
    x = np.random.default_rng(0).normal(1.0, 1.0, 200)
    ci = bootstrap_ci(x, seed=3, n_resamples=500)
    ref = st.bootstrap(
        (x,), np.mean, n_resamples=500, method="percentile", rng=np.random.default_rng(3)
    )
    assert (ci.low, ci.high) == pytest.approx(tuple(ref.confidence_interval))
    assert ci.low < x.mean() < ci.high and ci.estimate == pytest.approx(x.mean())
    half = 1.96 * x.std(ddof=1) / np.sqrt(200)  # close to the normal interval
    assert ci.high - ci.low == pytest.approx(2 * half, rel=0.2)
    assert bootstrap_ci(x, seed=3, n_resamples=500) == ci  # seeded
    med = bootstrap_ci(x, statistic=lambda v: float(np.percentile(v, 90)), n_resamples=200)
    assert med.low <= med.estimate <= med.high
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(x, confidence=95)


def test_holm_by_hand():
    # Sorted: 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept non-decreasing: 0.06.
    out = holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(out[:3], [0.03, 0.06, 0.06])
    assert np.isnan(out[3])
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    assert holm([]).shape == (0,)


def test_intersection_union_takes_the_weakest_component():
    result = intersection_union([2.0, 5.0, 3.0], [0.04, 0.001, 0.01])
    assert (result.statistic, result.pvalue, result.alternative, result.n) == (
        2.0,
        0.04,
        "greater",
        (3,),
    )
    # One component without a test leaves the claim untested; the statistic stays defined.
    undefined = intersection_union([2.0, np.nan], [0.01, np.nan])
    assert undefined.statistic == 2.0 and np.isnan(undefined.pvalue)
    with pytest.raises(ValueError, match="2 statistics but 1 p-values"):
        intersection_union([1.0, 2.0], [0.1])
    with pytest.raises(ValueError, match="no tests"):
        intersection_union([], [])


# ----------------------------------------------------------------------------- per-image tests

# T1's S_C-vs-S_I contrast t per layer at the cpu profile (issue 11): nothing in layers 1-6,
# much in 7-8. Spearman's rho of these ten numbers is 0.52 (p = .064).
STEP_T = np.array([-0.1, 0.2, 0.9, -1.5, -0.8, -1.0, -0.1, 3.9, 7.1, 2.1])


def _step_sets(n: int = 300, seed: int = 1):
    """Candidates and independents (n, 10) whose per-layer mean difference is STEP_T standard
    errors: each set's noise is centred and scaled to sd 1 per layer, then shifted."""
    rng = np.random.default_rng(seed)

    def unit(a):
        a = a - a.mean(axis=0)
        return a / a.std(axis=0, ddof=1)

    cand = unit(rng.normal(size=(n, 10))) + STEP_T * np.sqrt(2 / n)
    return cand, unit(rng.normal(size=(n, 10)))


def test_layer_trend_detects_the_step_that_layer_means_miss():
    cand, indep = _step_sets()
    means = spearman_trend(cand.mean(axis=0) - indep.mean(axis=0))
    assert means.statistic == pytest.approx(0.515, abs=1e-3) and means.pvalue > 0.05
    res = layer_trend_test(cand, indep, n_permutations=999)
    assert res.pvalue == pytest.approx(1 / 1000) and res.statistic > 3
    assert res.estimate > 0 and res.n == (300, 300)
    assert deep_shallow_test(cand, indep).pvalue < 0.01
    # The step reversed in depth is a decreasing trend.
    rev = layer_trend_test(cand[:, ::-1], indep[:, ::-1], n_permutations=999)
    assert rev.pvalue > 0.99
    assert layer_trend_test(cand, indep, order=np.arange(10)[::-1], n_permutations=999) == rev


def test_layer_trend_statistic_is_welch_t_of_the_per_image_slopes():
    rng = np.random.default_rng(0)
    cand, indep = rng.normal(size=(12, 4)), rng.normal(size=(9, 4))
    cand[:, 3] *= 50.0  # layers in other units: standardised by the pooled sd
    sd = np.concatenate([cand, indep]).std(axis=0, ddof=1)
    depth = np.arange(4)
    slope_c = np.polyfit(depth, (cand / sd).T, 1)[0]
    slope_i = np.polyfit(depth, (indep / sd).T, 1)[0]
    ref = st.ttest_ind(slope_c, slope_i, equal_var=False)
    res = layer_trend_test(cand, indep, n_permutations=99)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.estimate == pytest.approx(slope_c.mean() - slope_i.mean())
    one = layer_trend_test(cand, n_permutations=99)
    sd_c = cand.std(axis=0, ddof=1)
    alone = np.polyfit(depth, (cand / sd_c).T, 1)[0]
    assert one.statistic == pytest.approx(st.ttest_1samp(alone, 0.0).statistic)
    assert one.n == (12,)


def test_layer_trend_invariances_and_seed():
    rng = np.random.default_rng(4)
    cand, indep = rng.normal(size=(30, 6)), rng.normal(size=(25, 6))
    cand[:, 4:] += 0.3
    res = layer_trend_test(cand, indep, n_permutations=499, seed=7)
    assert layer_trend_test(cand, indep, n_permutations=499, seed=7) == res
    assert layer_trend_test(cand, indep, n_permutations=499, seed=8).pvalue != res.pvalue
    # image order
    shuffled = layer_trend_test(
        cand[rng.permutation(30)], indep[rng.permutation(25)], n_permutations=499, seed=7
    )
    assert shuffled.statistic == pytest.approx(res.statistic)
    assert shuffled.pvalue == res.pvalue
    # a positive scale per layer (layer outputs of other sizes) changes nothing
    scaled = layer_trend_test(
        cand * [1, 10, 100, 0.1, 3, 7], indep * [1, 10, 100, 0.1, 3, 7], n_permutations=499, seed=7
    )
    assert scaled.statistic == pytest.approx(res.statistic) and scaled.pvalue == res.pvalue


def test_layer_trend_and_deep_shallow_keep_their_level_under_noise():
    rejections = {"trend": 0, "trend one-sample": 0, "deep-shallow": 0, "deep-shallow one": 0}
    for s in range(200):
        rng = np.random.default_rng(1000 + s)
        cand, indep = rng.normal(size=(40, 10)), rng.normal(size=(30, 10))
        trend = layer_trend_test(cand, indep, n_permutations=199, seed=s)
        rejections["trend"] += trend.pvalue < 0.05
        rejections["trend one-sample"] += (
            layer_trend_test(cand, n_permutations=199, seed=s).pvalue < 0.05
        )
        rejections["deep-shallow"] += deep_shallow_test(cand, indep).pvalue < 0.05
        rejections["deep-shallow one"] += deep_shallow_test(cand).pvalue < 0.05
    for name, count in rejections.items():
        assert 0.01 <= count / 200 < 0.10, name


def test_deep_shallow_hand_computed():
    rng = np.random.default_rng(2)
    cand, indep = rng.normal(size=(15, 5)), rng.normal(size=(11, 5))
    sd = np.concatenate([cand, indep]).std(axis=0, ddof=1)
    zc, zi = cand / sd, indep / sd
    # 5 layers: shallow = first 2, deep = last 2, the middle one left out
    d_c = zc[:, 3:].mean(1) - zc[:, :2].mean(1)
    d_i = zi[:, 3:].mean(1) - zi[:, :2].mean(1)
    ref = st.mannwhitneyu(d_c, d_i, alternative="greater")
    res = deep_shallow_test(cand, indep)
    assert res.statistic == pytest.approx(ref.statistic / (15 * 11))
    assert res.pvalue == pytest.approx(ref.pvalue)
    assert res.estimate == pytest.approx(d_c.mean() - d_i.mean())
    sd_c = cand.std(axis=0, ddof=1)
    d = (cand / sd_c)[:, 3:].mean(1) - (cand / sd_c)[:, :2].mean(1)
    one = deep_shallow_test(cand, alternative="two-sided")
    assert one.pvalue == pytest.approx(st.wilcoxon(d).pvalue)


def test_linear_layer_test_weights_pick_the_layers():
    rng = np.random.default_rng(5)
    cand, indep = rng.normal(size=(60, 3)), rng.normal(size=(60, 3))
    cand[:, 1] += 1.0  # memorized at the middle layer only
    middle = linear_layer_test(cand, indep, weights=[0, 1, 0], n_permutations=199)
    first = linear_layer_test(cand, indep, weights=[1, 0, 0], n_permutations=199)
    assert middle.pvalue == pytest.approx(1 / 200) and first.pvalue > 0.05


def test_per_image_tests_reject_bad_input():
    x = np.zeros((5, 4))
    with pytest.raises(ValueError, match=r"must be \(n_images, n_layers\)"):
        layer_trend_test(np.zeros(5))
    with pytest.raises(ValueError, match="same layers"):
        layer_trend_test(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 3 layers"):
        layer_trend_test(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="order has 3 entries for 4 layers"):
        layer_trend_test(x, order=[0, 1, 2])
    with pytest.raises(ValueError, match="NaN"):
        layer_trend_test(np.full((5, 4), np.nan))
    with pytest.raises(ValueError, match="at least 2 images"):
        deep_shallow_test(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="weights has 2 entries"):
        linear_layer_test(x, weights=[1, 2])
    with pytest.raises(ValueError, match="alternative"):
        layer_trend_test(x, x, alternative="up")


def test_testability_learned_and_memorized():
    ok = claim_testability([0.01, 0.5], probe_accuracy=0.6, untrained_accuracy=0.3)
    assert ok.testable and ok.reason == "" and ok.learned and ok.memorized
    assert ok.smallest_p == pytest.approx(0.02)  # Holm over the two layers
    # 0.03 and 0.04 are each below 0.05, but not after Holm (0.06, 0.06)
    flat = claim_testability([0.03, 0.04])
    assert not flat.testable and flat.learned is None and not flat.memorized
    assert flat.reason.startswith("Not testable here: f did not memorize")
    assert "0.06" in flat.reason
    dull = claim_testability([0.001, 0.5], probe_accuracy=0.30, untrained_accuracy=0.31)
    assert not dull.testable and dull.memorized and dull.learned is False
    assert "did not learn" in dull.reason and "did not memorize" not in dull.reason
    with pytest.raises(ValueError, match="both probe_accuracy and untrained_accuracy"):
        claim_testability([0.01], probe_accuracy=0.5)
    # Above the untrained encoder by chance (McNemar p 0.2): not learned, and the reason says so.
    lucky = claim_testability([0.001], probe_accuracy=0.61, untrained_accuracy=0.60, probe_p=0.2)
    assert not lucky.testable and lucky.learned is False
    assert "(probe accuracy 0.610, untrained 0.600; one-sided McNemar p = 0.2)" in lucky.reason
    sure = claim_testability([0.001], probe_accuracy=0.61, untrained_accuracy=0.60, probe_p=0.01)
    assert sure.testable and sure.learned
    # A significant p cannot rescue a probe that is not above the untrained encoder's.
    below = claim_testability([0.001], probe_accuracy=0.6, untrained_accuracy=0.6, probe_p=0.01)
    assert below.learned is False


def test_mcnemar_counts_the_discordant_images_by_hand():
    a = np.array([1, 1, 1, 1, 1, 0, 0, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 1, 1, 0, 1], dtype=bool)
    result = mcnemar_test(a, b)  # 4 images only a gets right, 1 only b
    assert result.n == (4, 1) and result.statistic == pytest.approx(0.75 - 0.375)
    assert result.pvalue == pytest.approx((5 + 1) / 32)  # P(X >= 4 | 5, 1/2)
    assert mcnemar_test(b, a).pvalue == pytest.approx(31 / 32)  # P(X >= 1 | 5, 1/2)
    assert mcnemar_test(a, b, alternative="two-sided").pvalue == pytest.approx(12 / 32)
    assert mcnemar_test(a, a).pvalue == 1.0  # no discordant image: no evidence either way
    with pytest.raises(ValueError, match="one length"):
        mcnemar_test(a, b[:4])
