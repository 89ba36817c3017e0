"""The statistics behind the paper's comparisons, on top of ``scipy.stats``.

- :func:`topk_overlap`: how many of the k highest-scoring points two rankings share, with the
  overlap expected by chance and a hypergeometric p-value (T3).
- :func:`kendall_tau`: rank agreement of two score vectors with its p-value (T3).
- :func:`spearman_trend`: a monotone trend of a score against depth (orderings).
- :func:`welch_one_sided`: one-sided Welch t-test (SSL vs SL, Top vs Least, S_C vs S_I).
- :func:`ks_test`: two-sample Kolmogorov-Smirnov test of whole distributions.
- :func:`bootstrap_ci`: bootstrap confidence interval of a statistic (LayerMem, mean UnitMem).
- :func:`holm`: Holm's adjustment of several p-values tested together (A8).

Inputs are array-likes (lists, numpy arrays, pandas Series, CPU tensors). NaN entries
(e.g. undefined UnitMem units) are dropped by the two-sample tests and the bootstrap, and an
error says so when too few values remain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class TestResult:
    """Outcome of a test.

    Attributes
    ----------
    statistic : the test statistic (t, tau, rho, KS D).
    pvalue : its p-value under ``alternative``.
    alternative : ``"two-sided"``, ``"greater"`` or ``"less"``.
    df : degrees of freedom (Welch) or None.
    estimate : the effect the test is about (difference of means for Welch), or None.
    n : sample sizes used, after dropping NaN.
    """

    statistic: float
    pvalue: float
    alternative: str
    df: float | None = None
    estimate: float | None = None
    n: tuple[int, ...] = ()


@dataclass(frozen=True)
class Overlap:
    """Overlap of two top-k sets of the same n points.

    Attributes
    ----------
    k, n : set size and number of points.
    overlap : number of points in both top-k sets.
    fraction : ``overlap / k``.
    chance : expected ``fraction`` for two unrelated rankings, ``k / n``.
    pvalue : P(overlap >= observed) for unrelated rankings (hypergeometric, one-sided).
    """

    k: int
    n: int
    overlap: int
    fraction: float
    chance: float
    pvalue: float


@dataclass(frozen=True)
class ConfidenceInterval:
    """A bootstrap confidence interval: ``estimate`` (the statistic on the data), ``low``,
    ``high``, ``confidence`` level, ``method`` and ``n`` (values used)."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n: int


def _array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _finite(x, name: str, minimum: int = 2) -> np.ndarray:
    a = _array(x, name)
    a = a[~np.isnan(a)]
    if len(a) < minimum:
        raise ValueError(f"{name} has {len(a)} non-NaN values; the test needs at least {minimum}")
    return a


def _alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two score vectors over the same points; pandas Series are aligned on their index."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        if not a.index.equals(b.index):
            if set(a.index) != set(b.index):
                raise ValueError("the two Series index different points; align them first")
            b = b.reindex(a.index)
    a, b = _array(a, "a"), _array(b, "b")
    if len(a) != len(b):
        raise ValueError(f"a and b must score the same points; got lengths {len(a)} and {len(b)}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("rankings must not contain NaN; drop those points from both")
    return a, b


def top_indices(scores, k: int, *, largest: bool = True) -> np.ndarray:
    """Positions of the ``k`` highest (or lowest) scores; ties go to the earlier position."""
    s = _array(scores, "scores")
    if not 0 < k <= len(s):
        raise ValueError(f"k must be in 1 ... {len(s)}, got {k}")
    order = np.argsort(-s if largest else s, kind="stable")
    return order[:k]


def topk_overlap(a, b, k: int = 100, *, largest: bool = True) -> Overlap:
    """Overlap of the top-k points of two scorings of the same points.

    Parameters
    ----------
    a, b : scores of the same n points (e.g. per-image SSLMem at two layers); Series are
        aligned on their index.
    k : size of each top set.
    largest : rank by the largest scores (most memorized); False for the smallest.

    Returns
    -------
    Overlap
        The count and fraction shared, the chance fraction ``k / n`` and the hypergeometric
        p-value of an overlap at least this large under unrelated rankings.
    """
    a, b = _paired(a, b)
    n = len(a)
    top_a = set(top_indices(a, k, largest=largest).tolist())
    top_b = set(top_indices(b, k, largest=largest).tolist())
    overlap = len(top_a & top_b)
    # Drawing b's k points at random from n, of which k are a's: hypergeometric.
    pvalue = float(_st.hypergeom.sf(overlap - 1, n, k, k))
    return Overlap(k, n, overlap, overlap / k, k / n, pvalue)


def kendall_tau(a, b, *, alternative: str = "two-sided") -> TestResult:
    """Kendall's tau-b between two scorings of the same points (``scipy.stats.kendalltau``).

    Returns
    -------
    TestResult
        ``statistic`` tau in [-1, 1], ``pvalue`` of tau = 0 against ``alternative``.
    """
    a, b = _paired(a, b)
    res = _st.kendalltau(a, b, alternative=_alternative(alternative))
    return TestResult(float(res.statistic), float(res.pvalue), alternative, n=(len(a),))


def spearman_trend(values, order=None, *, alternative: str = "greater") -> TestResult:
    """Spearman's rho of ``values`` against their ``order`` (default 0, 1, 2, ...: depth).

    Returns
    -------
    TestResult
        ``statistic`` rho, ``pvalue`` one-sided for an increasing trend by default
        (``alternative="greater"``).
    """
    values = _array(values, "values")
    order = np.arange(len(values)) if order is None else _array(order, "order")
    if len(order) != len(values) or len(values) < 3:
        raise ValueError("values and order need the same length, at least 3")
    res = _st.spearmanr(order, values, alternative=_alternative(alternative))
    return TestResult(float(res.statistic), float(res.pvalue), alternative, n=(len(values),))


def welch_one_sided(a, b, *, alternative: str = "greater") -> TestResult:
    """Welch's t-test (unequal variances) of mean(a) against mean(b), one-sided by default.

    Parameters
    ----------
    a, b : the two samples; NaN entries are dropped.
    alternative : ``"greater"`` tests mean(a) > mean(b); ``"less"``; ``"two-sided"``.

    Returns
    -------
    TestResult
        ``statistic`` t, ``pvalue``, ``df`` (Welch-Satterthwaite), ``estimate``
        mean(a) - mean(b), ``n`` the two sample sizes.
    """
    a, b = _finite(a, "a"), _finite(b, "b")
    res = _st.ttest_ind(a, b, equal_var=False, alternative=_alternative(alternative))
    return TestResult(
        float(res.statistic),
        float(res.pvalue),
        alternative,
        df=float(res.df),
        estimate=float(a.mean() - b.mean()),
        n=(len(a), len(b)),
    )


def ks_test(a, b, *, alternative: str = "two-sided") -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``); NaN entries dropped.

    Returns
    -------
    TestResult
        ``statistic`` D (the largest gap between the two empirical CDFs), ``pvalue``.
        With ``alternative="less"`` the alternative is that a's values tend to be larger
        (its CDF lies below b's), scipy's convention.
    """
    a, b = _finite(a, "a", 1), _finite(b, "b", 1)
    res = _st.ks_2samp(a, b, alternative=_alternative(alternative))
    return TestResult(float(res.statistic), float(res.pvalue), alternative, n=(len(a), len(b)))


def bootstrap_ci(
    x,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    method: str = "percentile",
) -> ConfidenceInterval:
    """Bootstrap confidence interval of ``statistic`` over the values ``x``
    (``scipy.stats.bootstrap``, resampling the values with replacement).

    Parameters
    ----------
    x : the values (e.g. per-image normalised SSLMem at a layer, or UnitMem of a layer's
        units); NaN entries are dropped.
    statistic : a function of a 1-d array (the mean by default).
    confidence : the interval's level.
    n_resamples, seed : resamples drawn, and the seed that fixes them.
    method : ``"percentile"`` (default), ``"basic"`` or ``"BCa"``.

    Returns
    -------
    ConfidenceInterval
        ``estimate`` = statistic(x), the interval ``low`` ... ``high``.
    """
    values = _finite(x, "x")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    # numpy's reductions take an axis and run vectorised; any other statistic sees one
    # resample at a time.
    vectorized = statistic in (np.mean, np.median, np.std, np.var)
    res = _st.bootstrap(
        (values,),
        statistic,
        vectorized=vectorized,
        confidence_level=confidence,
        n_resamples=int(n_resamples),
        method=method,
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return ConfidenceInterval(
        float(statistic(values)), float(low), float(high), confidence, method, len(values)
    )


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of ``pvalues`` for testing them together: the k-th smallest
    is multiplied by (m - k + 1), made non-decreasing and capped at 1. NaN stays NaN and does
    not count among the m tests."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    keep = np.flatnonzero(~np.isnan(p))
    order = keep[np.argsort(p[keep], kind="stable")]
    m = len(order)
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out
