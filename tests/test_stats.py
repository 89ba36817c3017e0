"""memloc.stats against hand-computed values and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from memloc.stats import (
    bootstrap_ci,
    holm,
    kendall_tau,
    ks_test,
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
