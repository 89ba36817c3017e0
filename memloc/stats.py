"""The statistics behind the paper's comparisons, on top of ``scipy.stats``.

- :func:`topk_overlap`: how many of the k highest-scoring points two rankings share, with the
  overlap expected by chance and a hypergeometric p-value (T3).
- :func:`kendall_tau`: rank agreement of two score vectors with its p-value (T3).
- :func:`spearman_trend`: a monotone trend of a score against depth (orderings).
- :func:`welch_one_sided`: one-sided Welch t-test (SSL vs SL, Top vs Least, S_C vs S_I).
- :func:`ks_test`: two-sample Kolmogorov-Smirnov test of whole distributions.
- :func:`bootstrap_ci`: bootstrap confidence interval of a statistic (LayerMem, mean UnitMem).
- :func:`holm`: Holm's adjustment of several p-values tested together (A8, a page's claims).
- :func:`intersection_union`: one verdict for a claim that must hold in every layer, setting
  or data set (the largest p of the one-sided tests; its NaN rule in one place).
- :func:`layer_trend_test`, :func:`deep_shallow_test`, :func:`linear_layer_test`: depth claims
  tested on the per-image scores (the images are the unit of analysis), not on layer means.
- :func:`claim_testability`: whether a pair learned and memorized, so that its claims can be
  tested at all ("not testable here" otherwise).

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


def _floats(x) -> np.ndarray:
    """A tensor, array or sequence as a float array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _array(x, name: str) -> np.ndarray:
    a = _floats(x)
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


def mcnemar_test(right_a, right_b, *, alternative: str = "greater") -> TestResult:
    """Exact McNemar test of two classifiers scored on the same test images: among the images
    exactly one of them gets right, is the split 50/50? One-sided by default (a is better).

    Parameters
    ----------
    right_a, right_b : (N,) booleans, whether each test image was classified correctly.
    alternative : ``"greater"`` tests accuracy(a) > accuracy(b); ``"less"``; ``"two-sided"``.

    Returns
    -------
    TestResult
        ``statistic`` and ``estimate``: accuracy(a) - accuracy(b); ``pvalue`` the exact
        binomial p on the discordant images (1 when there are none); ``n`` (images right only
        for a, only for b).

    >>> a = np.array([True] * 8 + [False] * 2)
    >>> b = np.array([False] * 6 + [True] * 4)
    >>> r = mcnemar_test(a, b)  # 6 images only a gets right, 2 only b: P(X >= 6 | 8, 1/2)
    >>> round(r.statistic, 2), r.pvalue == 37 / 256, r.n
    (0.4, True, (6, 2))
    """
    a, b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"right_a and right_b must be 1-D and of one length, got {a.shape} and {b.shape}"
        )
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    alternative = _alternative(alternative)
    p = _st.binomtest(only_a, only_a + only_b, 0.5, alternative).pvalue if only_a + only_b else 1.0
    difference = float(a.mean() - b.mean())
    return TestResult(difference, float(p), alternative, estimate=difference, n=(only_a, only_b))


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


def intersection_union(statistics, pvalues) -> TestResult:
    """One verdict for a claim that must hold in every one of several one-sided tests (every
    layer, setting, k or data set): the intersection-union test. The claim is supported at
    level alpha when each test rejects at alpha, so its p-value is the largest p-value and no
    multiplicity correction is needed (Berger 1982); the statistic reported is the smallest
    (the weakest component).

    The NaN rule: a component whose test is undefined (NaN p) leaves the claim untested, so
    any NaN p gives a NaN p-value (the statistic is still the smallest defined one). A caller
    whose rows include components with nothing to compare (T5's k where both layer sets are
    the same) drops those rows first.

    Example
    -------
    >>> result = intersection_union([2.5, 4.0], [0.01, 0.03])
    >>> result.statistic, result.pvalue, result.n
    (2.5, 0.03, (2,))
    """
    t, p = _floats(statistics), _floats(pvalues)
    if len(t) != len(p):
        raise ValueError(f"{len(t)} statistics but {len(p)} p-values")
    if len(p) == 0:
        raise ValueError("no tests to combine")
    defined = t[~np.isnan(t)]
    statistic = float(defined.min()) if len(defined) else float("nan")
    pvalue = float("nan") if np.isnan(p).any() else float(p.max())
    return TestResult(statistic, pvalue, "greater", n=(len(p),))


# ----------------------------------------------------------------------------- per-image tests
#
# The depth claims of the paper (T1: "memorization increases with layer depth", T2, T4, A5)
# were first tested on a handful of layer means (Spearman's rho of 10 numbers), which throws
# away the images: a step pattern (nothing in layers 1-6, much in 7-8) then misses at
# p = .06. The tests below keep the image as the unit of analysis.


def _per_image(x, name: str) -> np.ndarray:
    """A (n_images, n_layers) float array of per-image scores, without NaN."""
    a = _floats(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be (n_images, n_layers), got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN; drop those images first")
    return a


def _layer_inputs(scores, independent, order, min_layers: int):
    """Check the per-image arrays and the layer order; return (scores, independent, order)."""
    x = _per_image(scores, "scores")
    y = None if independent is None else _per_image(independent, "independent")
    n_layers = x.shape[1]
    if n_layers < min_layers:
        raise ValueError(f"the test needs at least {min_layers} layers, got {n_layers}")
    if y is not None and y.shape[1] != n_layers:
        raise ValueError(
            f"scores and independent must have the same layers; got {n_layers} and {y.shape[1]}"
        )
    if x.shape[0] < 2 or (y is not None and y.shape[0] < 2):
        raise ValueError("every set of images needs at least 2 images")
    o = np.arange(n_layers, dtype=float) if order is None else _array(order, "order")
    if len(o) != n_layers:
        raise ValueError(f"order has {len(o)} entries for {n_layers} layers")
    if np.ptp(o) == 0:
        raise ValueError("order must not be constant (it places the layers by depth)")
    return x, y, o


def _standardise(x: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Divide each layer's scores by their standard deviation over all images of both sets.

    Layer outputs differ in size and scale, so raw SSLMem is in other units at every layer;
    the pooled spread puts the layers on one scale. It does not depend on which images are
    candidates, so it stays fixed under the permutation of the S_C/S_I labels."""
    pooled = x if y is None else np.concatenate([x, y])
    sd = pooled.std(axis=0, ddof=1)
    sd = np.where(sd > 0, sd, 1.0)
    return x / sd, None if y is None else y / sd


def _welch_t(a_sum, a_sq, n_a, b_sum, b_sq, n_b):
    """Welch's t from sums and sums of squares (vectorised over permutations)."""
    mean_a, mean_b = a_sum / n_a, b_sum / n_b
    var_a = (a_sq - n_a * mean_a**2) / (n_a - 1)
    var_b = (b_sq - n_b * mean_b**2) / (n_b - 1)
    se = np.sqrt(np.maximum(var_a / n_a + var_b / n_b, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, (mean_a - mean_b) / se, 0.0)


def _permutation_p(observed: float, null: np.ndarray, alternative: str) -> float:
    """(1 + #{null at least as extreme}) / (1 + B): a valid p-value for B random draws."""
    tol = 1e-9 * max(1.0, abs(observed))  # sums in another order must not flip a tie
    if alternative == "greater":
        extreme = null >= observed - tol
    elif alternative == "less":
        extreme = null <= observed + tol
    else:
        extreme = np.abs(null) >= abs(observed) - tol
    return float((1 + extreme.sum()) / (1 + len(null)))


def linear_layer_test(
    scores,
    independent=None,
    *,
    weights,
    alternative: str = "greater",
    n_permutations: int = 9999,
    seed: int = 0,
) -> TestResult:
    """Permutation test of a weighted sum over layers of per-image scores.

    Each layer's scores are divided by their standard deviation over all images (layers are
    in other units); then every image gets ``u = sum_l weights[l] * score[l]``.

    - With ``independent`` (the S_C-vs-S_I contrast of T1, NOTES §4: candidates seen by f
      only against independent images seen by g only): the statistic is Welch's t of the
      candidates' u against the independents' u, and the p-value comes from
      ``n_permutations`` random relabellings of the pooled images as S_C / S_I. Under the
      null, candidates and independents are exchangeable images (random splits of one data
      set, f and g trained alike), so the p-value is valid for any n; Welch's t as statistic
      keeps it approximately valid when the two sets' spreads differ.
    - Without: a one-sample t of the images' u against 0, with a sign-flip null (valid when
      u is symmetric about 0 under the null).

    Returns
    -------
    TestResult
        ``statistic`` t, ``pvalue`` (permutation, ``(1 + #as extreme) / (1 + B)``, so never
        below ``1 / (n_permutations + 1)``), ``estimate`` the mean u of the candidates minus
        that of the independents (or the mean u), ``n`` the numbers of images. The pooled
        u values are sorted before the permutations are drawn, so the result does not depend
        on the order of the images, and the same ``seed`` gives the same p-value.
    """
    _alternative(alternative)
    x = _per_image(scores, "scores")
    w = _array(weights, "weights")
    if len(w) != x.shape[1]:
        raise ValueError(f"weights has {len(w)} entries for {x.shape[1]} layers")
    if int(n_permutations) < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    x, y, _ = _layer_inputs(x, independent, np.arange(x.shape[1]), 1)
    x, y = _standardise(x, y)
    u_c = x @ w
    rng = np.random.default_rng(seed)
    b, chunk = int(n_permutations), 2000
    null = []
    if y is None:
        n = len(u_c)
        observed = float(_st.ttest_1samp(u_c, 0.0).statistic) if np.ptp(u_c) > 0 else 0.0
        pooled = np.sort(u_c)
        for start in range(0, b, chunk):
            signs = rng.choice([-1.0, 1.0], size=(min(chunk, b - start), n))
            s, sq = signs @ pooled, np.full(len(signs), (pooled**2).sum())
            mean = s / n
            sd = np.sqrt(np.maximum((sq - n * mean**2) / (n - 1), 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                null.append(np.where(sd > 0, mean / (sd / np.sqrt(n)), 0.0))
        estimate, sizes = float(u_c.mean()), (n,)
    else:
        u_i = y @ w
        n_c, n_i = len(u_c), len(u_i)
        observed = float(_welch_t(u_c.sum(), (u_c**2).sum(), n_c, u_i.sum(), (u_i**2).sum(), n_i))
        pooled = np.sort(np.concatenate([u_c, u_i]))
        label = np.zeros(n_c + n_i)
        label[:n_c] = 1.0
        total, total_sq = pooled.sum(), (pooled**2).sum()
        for start in range(0, b, chunk):
            labels = rng.permuted(np.tile(label, (min(chunk, b - start), 1)), axis=1)
            s_c, sq_c = labels @ pooled, labels @ pooled**2
            null.append(_welch_t(s_c, sq_c, n_c, total - s_c, total_sq - sq_c, n_i))
        estimate, sizes = float(u_c.mean() - u_i.mean()), (n_c, n_i)
    p = _permutation_p(observed, np.concatenate(null), alternative)
    return TestResult(observed, p, alternative, estimate=estimate, n=sizes)


def depth_slope_weights(order) -> np.ndarray:
    """Weights that turn an image's scores over layers into its least-squares slope against
    ``order`` (depth): ``(o - mean o) / sum (o - mean o)^2``. They sum to 0, so the same
    standardised score at every layer gives slope 0 (a constant is not a trend)."""
    o = _array(order, "order")
    c = o - o.mean()
    if not np.any(c):
        raise ValueError("order must not be constant (it places the layers by depth)")
    return c / (c**2).sum()


def layer_trend_test(
    scores,
    independent=None,
    *,
    order=None,
    alternative: str = "greater",
    n_permutations: int = 9999,
    seed: int = 0,
) -> TestResult:
    """Does memorization increase with depth? A per-image test of a trend across layers.

    The paper's T1 claim ("memorization increases with layer depth", NOTES §4) is about how
    the S_C-vs-S_I contrast changes from layer to layer. Every image contributes the slope of
    its standardised scores (each layer divided by its spread over all images) against depth;
    the test compares the candidates' slopes with the independents' slopes
    (:func:`linear_layer_test` with :func:`depth_slope_weights`: Welch's t, permutation of
    the S_C/S_I labels over images). A constant contrast at every layer gives equal slopes in
    expectation, so it is not a trend; a step (nothing in the shallow layers, much in the
    deep ones) is one, and with hundreds of images it is detected where Spearman's rho of the
    ten layer means (:func:`spearman_trend`) cannot be.

    Parameters
    ----------
    scores : (n_images, n_layers) per-image scores of the candidates (e.g. raw SSLMem), the
        layers in forward order.
    independent : (n_independent, n_layers) the same for the independent images (S_I); None
        tests the candidates' slopes against 0 with a sign-flip null (which then includes any
        f-vs-g offset that changes with depth: prefer the contrast).
    order : depth of each layer (default 0, 1, ..., n_layers - 1).
    alternative : ``"greater"`` (default, the paper's direction: an increasing trend),
        ``"less"`` or ``"two-sided"``. One claim, one test: the caller corrects over the
        claims of a page (:func:`holm`).
    n_permutations, seed : random relabellings drawn, and the seed that fixes them.

    Returns
    -------
    TestResult
        ``statistic`` Welch's t of the slopes, ``pvalue`` (permutation), ``estimate`` the
        mean slope of the candidates minus that of the independents (standard deviations per
        unit of ``order``), ``n`` the image counts.
    """
    x, y, o = _layer_inputs(scores, independent, order, 3)
    return linear_layer_test(
        x,
        y,
        weights=depth_slope_weights(o),
        alternative=alternative,
        n_permutations=n_permutations,
        seed=seed,
    )


def deep_shallow_test(
    scores, independent=None, *, order=None, alternative: str = "greater"
) -> TestResult:
    """Deep half against shallow half, per image: a rank test that needs no linear trend.

    Each layer's scores are divided by their spread over all images; every image gets
    ``D = mean over the deeper half of the layers - mean over the shallower half`` (by
    ``order``; with an odd number of layers the middle one is left out).

    - With ``independent``: the candidates' D against the independents' D, one-sided
      Mann-Whitney U (candidates and independents are different images, so they cannot be
      paired); ``statistic`` U / (n_c n_i), the probability that a candidate's D exceeds an
      independent's (0.5: no difference).
    - Without: Wilcoxon's signed-rank test of D against 0 (each image paired with itself);
      ``statistic`` the signed-rank W.

    ``estimate``: the mean D of the candidates minus that of the independents (or the mean
    D). ``alternative="greater"``: the deep half memorizes more (the paper's direction).
    """
    _alternative(alternative)
    x, y, o = _layer_inputs(scores, independent, order, 2)
    x, y = _standardise(x, y)
    rank = np.argsort(np.argsort(o, kind="stable"), kind="stable")
    half = len(o) // 2
    shallow, deep = rank < half, rank >= len(o) - half
    d_c = x[:, deep].mean(axis=1) - x[:, shallow].mean(axis=1)
    if y is None:
        if not np.any(d_c):
            raise ValueError("every image has D = 0; the signed-rank test is undefined")
        res = _st.wilcoxon(d_c, alternative=alternative)
        return TestResult(
            float(res.statistic),
            float(res.pvalue),
            alternative,
            estimate=float(d_c.mean()),
            n=(len(d_c),),
        )
    d_i = y[:, deep].mean(axis=1) - y[:, shallow].mean(axis=1)
    res = _st.mannwhitneyu(d_c, d_i, alternative=alternative)
    return TestResult(
        float(res.statistic) / (len(d_c) * len(d_i)),
        float(res.pvalue),
        alternative,
        estimate=float(d_c.mean() - d_i.mean()),
        n=(len(d_c), len(d_i)),
    )


# ----------------------------------------------------------------------------- testability


@dataclass(frozen=True)
class ClaimTestability:
    """Whether a pair of encoders can say anything about where memorization sits.

    Attributes
    ----------
    testable : both checks pass (a check without its numbers counts as passed).
    reason : why not, in one sentence for the result page and the claims page ("" if
        testable).
    learned : the SSL probe accuracy is above the untrained encoder's, significantly when its
        McNemar p is given (None: not given).
    memorized : some layer's S_C-vs-S_I contrast is significant after Holm over the layers.
    smallest_p : the smallest Holm-adjusted contrast p-value.
    """

    testable: bool
    reason: str
    learned: bool | None
    memorized: bool
    smallest_p: float


def claim_testability(
    contrast_pvalues,
    *,
    probe_accuracy: float | None = None,
    untrained_accuracy: float | None = None,
    probe_p: float | None = None,
    alpha: float = 0.05,
) -> ClaimTestability:
    """Decide whether a claim about a pair's memorization can be tested on it.

    A claim about where memorization sits (T1's depth, residual and Top/Least claims, T2,
    T4, A5, ...) presupposes that the encoders learned and that f memorized its candidates.
    When either fails, "not supported" would read as evidence against the paper where the
    data simply have nothing to say: such claims are *not testable here*.

    Parameters
    ----------
    contrast_pvalues : one-sided p-values of the S_C-vs-S_I contrast, one per layer
        (``LayerMemResult.table["contrast_p"]``). Memorized: the smallest Holm-adjusted one
        (over the layers) is below ``alpha``.
    probe_accuracy, untrained_accuracy : linear-probe accuracy of the SSL encoder and of the
        same architecture untrained. Learned: the first is above the second. Pass both or
        neither (neither: the check is skipped).
    probe_p : one-sided p that the SSL encoder's probe beats the untrained one's on the same
        test images (:func:`mcnemar_test`); when given, learned also needs it below ``alpha``.
    alpha : level of both checks.
    """
    if (probe_accuracy is None) != (untrained_accuracy is None):
        raise ValueError("pass both probe_accuracy and untrained_accuracy, or neither")
    p = _array(contrast_pvalues, "contrast_pvalues")
    if len(p) == 0 or np.isnan(p).all():
        raise ValueError("contrast_pvalues is empty; measure the independent images (S_I)")
    smallest = float(np.nanmin(holm(p)))
    memorized = smallest < alpha
    learned = None
    if probe_accuracy is not None:
        learned = float(probe_accuracy) > float(untrained_accuracy)
        if probe_p is not None and not np.isnan(probe_p):
            learned = learned and float(probe_p) < alpha
    reasons = []
    if learned is False:
        p_text = "" if probe_p is None else f"; one-sided McNemar p = {float(probe_p):.3g}"
        reasons.append(
            f"the encoders did not learn (probe accuracy {float(probe_accuracy):.3f}, untrained "
            f"{float(untrained_accuracy):.3f}{p_text})"
        )
    if not memorized:
        reasons.append(
            f"f did not memorize its candidates (no layer's S_C-vs-S_I contrast is "
            f"significant: smallest Holm-adjusted p = {smallest:.3g} over "
            f"{int((~np.isnan(p)).sum())} layers)"
        )
    reason = ("Not testable here: " + "; ".join(reasons) + ".") if reasons else ""
    return ClaimTestability(not reasons, reason, learned, memorized, smallest)


def claim(text: str, test: str, outcome=None, **fields) -> dict:
    """One claim for :meth:`memloc.result.Result.claims`: the claim's sentence, the test's
    description and its outcome, a :class:`TestResult` (statistic and p-value) or a
    ``(statistic, p_value)`` pair; ``fields`` add or replace what
    :func:`memloc.book.record_claim` takes (``holds``, ``testable``, ``reason``, ...).

    >>> rho = spearman_trend([1, 2, 4, 3, 5])
    >>> c = claim("it rises", "Spearman rho, one-sided", rho, holds=True)
    >>> c["claim"], round(c["statistic"], 2), round(c["p_value"], 3), c["holds"]
    ('it rises', 0.9, 0.019, True)
    """
    out = {"claim": text, "test": test}
    if outcome is not None:
        statistic, p_value = (
            (outcome.statistic, outcome.pvalue) if hasattr(outcome, "pvalue") else outcome
        )
        out.update(statistic=statistic, p_value=p_value)
    return {**out, **fields}
