"""The layer results of the book (T1, T3, A6): LayerMem of a cached pair and the tests on it.

The three notebooks share one measurement, :func:`pair_layermem`: every per-image SSLMem score
of the candidates, the held-out images and the independent images at every measurement point
(one :func:`memloc.metrics.layermem` call). It is stored beside the encoders, keyed by
everything it depends on, so T3 reuses what T1 measured instead of running the encoders again.

On top of it:

- T1: :func:`contrast_depth_test` (the depth claim on the per-image scores: slopes of the
  candidates against those of the independent images, permutation over images),
  :func:`contrast_deep_shallow_test` (deep half against shallow half, per image),
  :func:`pair_testability` (did f memorize at all?), :func:`depth_trend` (Spearman rho of
  the layer means against depth, a description), :func:`residual_step_test` (do the
  residual sums change the score less than the conv layers?), :func:`top_least_tests`
  (cross-fitted Top-k against Least-k, beside the same selection on held-out images),
  :func:`top_least_points` (which images to show); for the page, :func:`layermem_pair` (the
  cached pair or your checkpoints), :func:`layermem_tests` (all of them on one measurement),
  :func:`layermem_claims`, :func:`layermem_notes`, :func:`measurement_facts`,
  :func:`shape_curves`, :func:`top_least_galleries`;
- T3: :func:`layer_agreement` (top-k overlap and Kendall tau of every pair of layers),
  :func:`agreement_matrix`, :func:`adjacent_vs_distant` (do adjacent deep layers agree more
  than distant ones? exact permutation test); for the page, :func:`agreement_by_set`
  (candidates and the held-out control), :func:`agreement_long`, :func:`agreement_matrices`,
  :func:`adjacency_tests`, :func:`adjacency_table`, :func:`adjacency_claim`,
  :func:`adjacency_note`, :func:`agreement_facts`;
- A6: :func:`stability_sizes`, :func:`subset_layermem` (LayerMem re-normalised on a subset,
  as the metric defines it), :func:`stability_sweep`, :func:`stability_summary`,
  :func:`stability_test`; for the page, :func:`stability_run` (the measurements and the
  sweep), :func:`stability_tests`, :func:`stability_claim`, :func:`stability_note`.

The claims are dicts of :func:`memloc.stats.claim`'s fields. Nothing here imports
:mod:`memloc.result`: that would put the book's modules into this module's code fingerprint,
which keys the stored measurements (:mod:`memloc.fingerprint`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as _st
from scipy.stats import spearmanr

from memloc.activations import resolve_layers
from memloc.fingerprint import fingerprint
from memloc.metrics import LayerMemResult, layermem

# The metric's own normaliser (range over the evaluated images, with its guard against a
# range at rounding level): A6 re-normalises subsets exactly as layermem() does.
from memloc.metrics.layermem import normaliser
from memloc.stats import (
    ClaimTestability,
    TestResult,
    claim_testability,
    deep_shallow_test,
    kendall_tau,
    layer_trend_test,
    spearman_trend,
    top_indices,
    topk_overlap,
    welch_one_sided,
)
from memloc.utils import atomic_write_bytes, atomic_write_json

CACHE_PREFIX = "layermem-"


# ----------------------------------------------------------------------------- measurement


def _cache_stem(pair, sizes: dict, k_aug: int, top_k: int, seed: int, variant: str) -> str:
    """``layermem-<measurement>-<code>``: the first hash names what was measured, the second
    the code that measured it (:func:`memloc.fingerprint.fingerprint` of this module and of
    the encoders' and the policy's code: any change to it invalidates the scores)."""
    blob = {
        "hashes": pair.hashes,
        "sizes": sizes,
        "k_aug": k_aug,
        "top_k": top_k,
        "seed": seed,
        "variant": variant,
        "policy": pair.policy.to_dict(),
    }
    text = json.dumps(blob, sort_keys=True, default=str)
    measurement = hashlib.sha256(text.encode()).hexdigest()[:16]
    code = fingerprint(__name__, pair.f, pair.g, pair.policy)
    return f"{CACHE_PREFIX}{measurement}-{code[:12]}"


def _save_result(result: LayerMemResult, stem: Path) -> None:
    for name, df in (("table", result.table), ("points", result.points)):
        atomic_write_bytes(
            stem.with_name(stem.name + f".{name}.csv.gz"),
            gzip.compress(df.to_csv(index=False).encode(), mtime=0),
        )
    # Written last: a stem without its JSON is incomplete and measured again.
    atomic_write_json(stem.with_name(stem.name + ".json"), {**result.config, "notes": result.notes})
    # The same measurement under older code is stale: drop it.
    measurement = stem.name.rsplit("-", 1)[0]
    for old in stem.parent.glob(f"{measurement}-*"):
        if not old.name.startswith(stem.name + "."):
            old.unlink(missing_ok=True)


def _load_result(stem: Path, encoder) -> LayerMemResult | None:
    meta_path = stem.with_name(stem.name + ".json")
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    notes = meta.pop("notes")
    frames = {}
    for name in ("table", "points"):
        path = stem.with_name(stem.name + f".{name}.csv.gz")
        if not path.exists():
            return None
        frames[name] = pd.read_csv(
            io.BytesIO(gzip.decompress(path.read_bytes())),
            dtype={"layer": str, "kind": str, "set": str},
        )
    table, points = frames["table"], frames["points"]
    table.attrs["notes"] = notes
    layers = resolve_layers(encoder, meta["layers"])
    rows = points[points["set"] == "candidate"]
    per_point = rows.pivot(index="point", columns="layer", values="sslmem")[meta["layers"]]
    per_point.columns = pd.Index(meta["layers"], name="layer")
    return LayerMemResult(table, per_point, points, layers, meta, notes)


def per_image_table(result: LayerMemResult, pair) -> pd.DataFrame:
    """Every per-image score of ``result`` (its ``points``, one row per image, set and layer)
    with the image's label and, for an image folder, its file (``pair.files``).

    Example
    -------
    >>> per_image_table(pair_layermem(pair), pair).columns[:4].tolist()  # doctest: +SKIP
    ['set', 'point', 'layer', 'sslmem']
    """
    frames = []
    for which, rows in result.points.groupby("set", sort=False):
        n = int(rows["point"].max()) + 1
        files = pair.files(which, n)
        labels = pair.labels(which, n).numpy()
        rows = rows.assign(label=labels[rows["point"].to_numpy()])
        if files is not None:
            rows = rows.assign(file=[files[i] for i in rows["point"]])
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def pair_layermem(
    pair,
    *,
    n_points: int | None = None,
    k_aug: int | None = None,
    top_k: int | None = None,
    seed: int = 0,
    variant: str = "views",
    n_heldout: int | None = None,
    n_independent: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
) -> LayerMemResult:
    """LayerMem of a cached encoder pair at every measurement point (one batched pass).

    Parameters
    ----------
    pair : a :class:`memloc.artifacts.EncoderPair`; its training augmentations are used.
    n_points : candidates evaluated (the first ``n_points`` of S_C; None: the profile's
        ``n_points``, at most all candidates).
    k_aug, top_k : view pairs per image and the k of Top-k/Least-k (None: the profile's).
    seed : fixes every augmented view.
    variant : ``"views"`` (the paper's definition) or ``"original"`` (the authors' script).
    n_heldout, n_independent : held-out images (for the calibrated score and the Top/Least
        control) and S_I images (for the S_C-vs-S_I contrast); None: as many as candidates,
        at most as many as exist; 0: not measured.
    cache : reuse (and store) the result in the encoder cache folder, in files
        ``layermem-<measurement>-<code>.*`` keyed by the encoders' hashes, the sizes, K, k,
        seed, variant and policy, and by the hash of memloc's code (all of it but the modules
        that only consume measurements: ``book``, ``figures``, ``cli``, the other
        ``experiments``); storing a result removes the same measurement made with older code.

    Returns
    -------
    LayerMemResult
        As :func:`memloc.metrics.layermem` returns it.
    """
    from memloc.artifacts import cache_root

    profile = pair.profile
    n_cand = len(pair.splits.candidate)
    n_points = min(n_cand, profile.n_points if n_points is None else int(n_points))
    k_aug = profile.k_aug if k_aug is None else int(k_aug)
    top_k = profile.top_k if top_k is None else int(top_k)
    n_held_avail = len(pair.splits.heldout) or len(pair.test)
    n_heldout = min(n_held_avail, n_points if n_heldout is None else int(n_heldout))
    n_indep = len(pair.splits.independent)
    n_independent = min(n_indep, n_points if n_independent is None else int(n_independent))
    sizes = {"candidate": n_points, "heldout": n_heldout, "independent": n_independent}

    stem = None
    if cache:
        stem = Path(cache_root(cache_dir)) / _cache_stem(pair, sizes, k_aug, top_k, seed, variant)
        cached = _load_result(stem, pair.f)
        if cached is not None:
            return cached
    result = layermem(
        pair.f,
        pair.g,
        pair.images("candidate", n_points),
        k_aug=k_aug,
        policy=pair.policy,
        variant=variant,
        seed=seed,
        heldout_images=pair.images("heldout", n_heldout) if n_heldout else None,
        independent_images=pair.images("independent", n_independent) if n_independent else None,
        top_k=top_k,
        batch_size=batch_size,
    )
    if stem is not None:
        _save_result(result, stem)
    return result


# ----------------------------------------------------------------------------- T1


PAPER_COLUMNS = [
    "layer",
    "layermem",
    "delta_layermem",
    "top_layermem",
    "delta_top_layermem",
    "least_layermem",
    "heldout_top_layermem",
    "heldout_least_layermem",
]
CORRECTED_COLUMNS = [
    "layer",
    "layermem",
    "heldout_offset",
    "calibrated",
    "delta_calibrated",
    "scale_free",
    "scale_free_calibrated",
    "contrast",
    "delta_contrast",
    "contrast_t",
    "contrast_p",
]


def layer_table(result: LayerMemResult) -> pd.DataFrame:
    """T1's table: the LayerMem table with ``delta_contrast``, the contrast's step from the
    previous measurement point (what the residual-sum claim compares)."""
    table = result.table.copy()
    table["delta_contrast"] = table["contrast"].diff()
    return table


def paper_comparison(table: pd.DataFrame, paper: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """T1 beside the paper: per layer the paper's numbers (``paper``: tidy ``row, column,
    value`` from :func:`memloc.book.paper_numbers`) and ours; and Spearman's ρ between the
    paper's LayerMem and each of our scores across the layers (the shape, not the values)."""
    wide = paper.pivot(index="row", columns="column", values="value").reindex(table["layer"])
    side = pd.DataFrame(
        {
            "layer": table["layer"],
            "paper LayerMem": wide["layermem"].to_numpy(),
            "paper ΔLM": wide["delta_layermem"].to_numpy(),
            "paper Top": wide["top_layermem"].to_numpy(),
            "paper Least": wide["least_layermem"].to_numpy(),
            "ours LayerMem": table["layermem"].to_numpy(),
            "ours calibrated": table["calibrated"].to_numpy(),
            "ours contrast": table["contrast"].to_numpy(),
            "ours Top (x-fit)": table["top_layermem"].to_numpy(),
            "ours Least (x-fit)": table["least_layermem"].to_numpy(),
        }
    )
    shape = pd.DataFrame(
        [
            {
                "our score": col,
                "Spearman rho with paper's LayerMem": spearmanr(
                    wide["layermem"].to_numpy(), table[col].to_numpy()
                ).statistic,
            }
            for col in [
                "layermem",
                "calibrated",
                "scale_free_calibrated",
                "contrast",
                "top_layermem",
            ]
        ]
    )
    return side, shape


def depth_tests(result: LayerMemResult, table: pd.DataFrame, seed: int = 0):
    """T1's depth tests: the verdict's per-image slope (:func:`contrast_depth_test`), the deep
    half against the shallow half per image, and Spearman's ρ of the layer means, as one
    table; returns ``(table, slope, halves, means_rho)``."""
    slope = contrast_depth_test(result, seed=seed)
    halves = contrast_deep_shallow_test(result)
    means_rho = depth_trend(table, "contrast")
    n_c, n_i = slope.n
    images = f"{n_c} + {n_i} images"
    rows = [
        ("slope of the contrast against depth, per image (verdict)", images, slope, slope.estimate),
        ("deep half minus shallow half, per image (Mann-Whitney U / n_c n_i)", images, halves,
         halves.estimate),
        ("Spearman rho of the contrast's layer means", f"{len(table)} layers", means_rho, np.nan),
    ]  # fmt: skip
    out = pd.DataFrame(
        [
            {"test": t, "unit": u, "statistic": r.statistic, "effect": e, "p (one-sided)": r.pvalue}
            for t, u, r, e in rows
        ]
    )
    return out, slope, halves, means_rho


def depth_trends(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman's ρ of the layer means of each score against depth (a description of shape)."""
    rows = []
    for col in ["layermem", "calibrated", "scale_free_calibrated", "contrast"]:
        t = depth_trend(table, col)
        rows.append({"score": col, "rho": t.statistic, "p (one-sided)": t.pvalue})
    return pd.DataFrame(rows)


def residual_steps(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`residual_step_test` of each step column (raw, calibrated, contrast)."""
    rows = []
    for col in ["delta_layermem", "delta_calibrated", "delta_contrast"]:
        r = residual_step_test(table, col)
        rows.append(
            {
                "score": col,
                "share residual smaller": r.statistic,
                "p (exact)": r.pvalue,
                "mean |Δ| residual": r.residual_mean,
                "mean |Δ| conv": r.conv_mean,
            }
        )
    return pd.DataFrame(rows)


def stability_cells(sweep: pd.DataFrame, score: str) -> pd.DataFrame:
    """A6's table: per layer (rows, forward order) and n (columns ``n = ...``), the score's
    mean ± standard deviation over the repetitions, as text."""
    g = sweep.groupby(["depth", "layer", "n"])[score].agg(["mean", "std"]).reset_index()
    g["cell"] = [f"{m:+.3f} ± {s:.3f}" for m, s in zip(g["mean"], g["std"], strict=True)]
    wide = g.pivot(index=["depth", "layer"], columns="n", values="cell")
    wide.columns = [f"n = {n}" for n in wide.columns]
    return wide.reset_index().drop(columns="depth")


def range_vs_n(sweep: pd.DataFrame, sizes: list[int]) -> pd.DataFrame:
    """A6: per n, the mean ``|LayerMem|`` and the mean range normaliser relative to the one at the
    largest n (averaged over layers and repetitions)."""
    rel = sweep.pivot_table(index=["seed", "layer"], columns="n", values="range")
    rel = rel.div(rel[sizes[-1]], axis=0).mean().rename("range / range at largest n")
    scale = sweep.groupby("n")["layermem"].apply(lambda v: np.abs(v).mean())
    out = pd.DataFrame({"mean |LayerMem|": scale, rel.name: rel})
    out.index.name = "n"
    return out.reset_index()


def depth_trend(table: pd.DataFrame, column: str = "contrast") -> TestResult:
    """Spearman's rho of ``table[column]`` against depth (the rows' forward order), with its
    one-sided p-value for an increasing trend.

    Ten layer means are ten numbers: this describes the shape, but as a test it has little
    power (a step from layer 7 on misses at p = .06). The verdicts use
    :func:`contrast_depth_test` on the per-image scores."""
    if column not in table:
        raise KeyError(f"table has no column {column!r}; columns: {list(table.columns)}")
    return spearman_trend(table[column].to_numpy(float), alternative="greater")


def contrast_scores(results, layers=None) -> tuple[np.ndarray, np.ndarray]:
    """Raw per-image SSLMem of the candidates and of the independent images, (n, L) each.

    Parameters
    ----------
    results : a LayerMemResult, or several measurements of the same images with other view
        seeds (A5), whose per-image scores are averaged.
    layers : measurement point names, in forward order (None: every measured point).
    """
    results = [results] if isinstance(results, LayerMemResult) else list(results)
    if not results:
        raise ValueError("no LayerMem results given")
    names = [p.name for p in results[0].layers] if layers is None else [str(n) for n in layers]
    cand, indep = [], []
    for result in results:
        if not (result.points["set"] == "independent").any():
            raise ValueError(
                "the S_C-vs-S_I contrast needs the independent images (S_I); measure them "
                "(pair_layermem with n_independent > 0)"
            )
        missing = [n for n in names if n not in [p.name for p in result.layers]]
        if missing:
            raise KeyError(f"the result lacks the measurement points {missing[:5]}")
        cand.append(result.scores("candidate", "sslmem_raw")[names].to_numpy(float))
        indep.append(result.scores("independent", "sslmem_raw")[names].to_numpy(float))
    if len({c.shape for c in cand}) > 1 or len({i.shape for i in indep}) > 1:
        raise ValueError("the results measured different numbers of images; average like ones")
    return np.mean(cand, axis=0), np.mean(indep, axis=0)


def contrast_depth_test(
    results, layers=None, *, n_permutations: int = 9999, seed: int = 0
) -> TestResult:
    """T1's depth claim on the images: does the S_C-vs-S_I contrast grow with depth?

    Per image, the slope of its standardised raw SSLMem against forward position; the
    candidates' slopes against the independents' slopes, Welch's t with a permutation of the
    S_C/S_I labels over the images, one-sided (:func:`memloc.stats.layer_trend_test`). The
    f-vs-g offset of a layer is shared by both sets, so it cancels as in the contrast.

    ``results``, ``layers``: as :func:`contrast_scores` (e.g. the main path of a ResNet).
    """
    cand, indep = contrast_scores(results, layers)
    return layer_trend_test(cand, indep, n_permutations=n_permutations, seed=seed)


def contrast_deep_shallow_test(results, layers=None) -> TestResult:
    """The deeper half of the layers against the shallower half, per image: the candidates'
    deep-minus-shallow difference against the independents', one-sided Mann-Whitney U
    (:func:`memloc.stats.deep_shallow_test`). A check of the depth verdict that assumes no
    linear shape."""
    cand, indep = contrast_scores(results, layers)
    return deep_shallow_test(cand, indep)


def pair_testability(
    results,
    layers=None,
    *,
    probe_accuracy: float | None = None,
    untrained_accuracy: float | None = None,
    probe_p: float | None = None,
    alpha: float = 0.05,
) -> ClaimTestability:
    """Can this pair's claims about where memorization sits be tested?

    Memorized: some layer's S_C-vs-S_I contrast (Welch, one-sided, per image) is significant
    after Holm over the layers. Learned (when the probe accuracies are passed): the SSL
    encoder's probe accuracy is above the untrained encoder's, significantly when ``probe_p``
    (one-sided McNemar on the same test images) is passed. See
    :func:`memloc.stats.claim_testability`. Several results (view seeds) are averaged per image
    first; ``layers`` restricts the check (None: every measured point).
    """
    cand, indep = contrast_scores(results, layers)
    pvalues = [
        welch_one_sided(cand[:, j], indep[:, j], alternative="greater").pvalue
        for j in range(cand.shape[1])
    ]
    return claim_testability(
        pvalues,
        probe_accuracy=probe_accuracy,
        untrained_accuracy=untrained_accuracy,
        probe_p=probe_p,
        alpha=alpha,
    )


@dataclass(frozen=True)
class ResidualStepTest:
    """Are the score changes at residual sums smaller than at conv layers?

    Attributes
    ----------
    statistic : the share of (residual, conv) pairs of steps where the residual step's
        ``|Δ|`` is the smaller one (ties count one half): 1 when every residual step is
        smaller than every conv step, 0.5 when they are alike (Mann-Whitney U / (n_r n_c)).
    pvalue : exact permutation p-value: the share of all ways to label ``n_residual`` of the
        steps as residual whose statistic is at least the observed one.
    residual_mean, conv_mean : mean ``|Δ|`` of the residual and of the conv steps.
    n_residual, n_conv : numbers of steps.
    """

    statistic: float
    pvalue: float
    residual_mean: float
    conv_mean: float
    n_residual: int
    n_conv: int


def _smaller_share(res: np.ndarray, conv: np.ndarray) -> float:
    less = (res[:, None] < conv[None, :]).sum() + 0.5 * (res[:, None] == conv[None, :]).sum()
    return float(less) / (len(res) * len(conv))


def residual_step_test(table: pd.DataFrame, column: str = "delta_layermem") -> ResidualStepTest:
    """Exact permutation test that residual sums change ``column`` less than conv layers do.

    ``column`` holds the change from the previous measurement point (e.g. ``delta_layermem``,
    ``delta_calibrated``); rows without one (the first) are skipped. The steps are split by
    ``table["kind"]`` into ``"residual"`` and the rest. With the paper's ResNet9 (2 residual,
    7 conv steps) the smallest attainable p-value is 1/36.
    """
    for col in (column, "kind"):
        if col not in table:
            raise KeyError(f"table has no column {col!r}; columns: {list(table.columns)}")
    steps = table[table[column].notna()]
    size = np.abs(steps[column].to_numpy(float))
    is_res = (steps["kind"] == "residual").to_numpy()
    n_res, n = int(is_res.sum()), len(size)
    if n_res == 0 or n_res == n:
        raise ValueError(
            f"need residual and non-residual steps in {column!r}; kinds: {steps['kind'].tolist()}"
        )
    observed = _smaller_share(size[is_res], size[~is_res])
    at_least, total = 0, 0
    for chosen in itertools.combinations(range(n), n_res):
        mask = np.zeros(n, bool)
        mask[list(chosen)] = True
        total += 1
        at_least += _smaller_share(size[mask], size[~mask]) >= observed - 1e-12
    return ResidualStepTest(
        observed,
        at_least / total,
        float(size[is_res].mean()),
        float(size[~is_res].mean()),
        n_res,
        n - n_res,
    )


def cross_fitted_groups(
    result: LayerMemResult, k: int, *, set: str = "candidate", layer: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw per-image scores of the Top-k and Least-k images of ``set``, cross-fitted.

    The images are ranked by their score at ``layer`` (default: the last) on the first half
    of the view pairs and scored on the second half, so that noise in the ranking cannot
    inflate the gap. (The table of :func:`memloc.metrics.layermem` averages this direction and
    the reverse one; a test needs one direction, whose two groups are independent.)

    Returns
    -------
    (top, least) : arrays of k raw scores (``sslmem_half_b``) at ``layer``.
    """
    layer = result.layers[-1].name if layer is None else layer
    rank = result.scores(set, "sslmem_half_a")[layer].to_numpy(float)
    score = result.scores(set, "sslmem_half_b")[layer].to_numpy(float)
    if 2 * k > len(rank):
        raise ValueError(f"k={k} needs at least {2 * k} {set} images, have {len(rank)}")
    return score[top_indices(rank, k)], score[top_indices(rank, k, largest=False)]


def _candidate_arrays(result: LayerMemResult) -> tuple[np.ndarray, np.ndarray]:
    """Raw per-image scores of the candidates (n, L) and the mean alignment of f and g, the
    reference of the metric's range guard."""
    names = [p.name for p in result.layers]
    raw = result.scores("candidate", "sslmem_raw")[names].to_numpy(float)
    ref = (
        result.scores("candidate", "align_f")[names].to_numpy(float)
        + result.scores("candidate", "align_g")[names].to_numpy(float)
    ) / 2
    return raw, ref


def _range_at(result: LayerMemResult, layer: str) -> float:
    """The normaliser layermem() used at ``layer``: the candidates' range (guarded)."""
    raw, ref = _candidate_arrays(result)
    j = [p.name for p in result.layers].index(layer)
    return float(normaliser(raw, ref)[j])


def gap_difference_test(
    top_a, least_a, top_b, least_b, *, alternative: str = "greater"
) -> TestResult:
    """Is the gap mean(top_a) - mean(least_a) larger than mean(top_b) - mean(least_b)?

    A t-test on the difference of the two gaps from four independent samples, with the
    Welch-Satterthwaite degrees of freedom (with ``top_b``, ``least_b`` constant it is the
    Welch test of ``top_a`` against ``least_a``).
    """
    groups = [np.asarray(g, float) for g in (top_a, least_a, top_b, least_b)]
    if any(len(g) < 2 for g in groups):
        raise ValueError("every group needs at least 2 values")
    v = np.array([g.var(ddof=1) / len(g) for g in groups])
    dof = np.array([len(g) - 1 for g in groups])
    est = (groups[0].mean() - groups[1].mean()) - (groups[2].mean() - groups[3].mean())
    se = math.sqrt(v.sum())
    if se == 0:
        raise ValueError("all four groups are constant; the test is undefined")
    t = est / se
    df = v.sum() ** 2 / np.sum(v**2 / dof)
    if alternative == "greater":
        p = _st.t.sf(t, df)
    elif alternative == "less":
        p = _st.t.cdf(t, df)
    elif alternative == "two-sided":
        p = 2 * _st.t.sf(abs(t), df)
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    n = tuple(len(g) for g in groups)
    return TestResult(float(t), float(p), alternative, df=float(df), estimate=float(est), n=n)


def top_least_tests(result: LayerMemResult, k: int, layer: str | None = None) -> pd.DataFrame:
    """Cross-fitted Top-k against Least-k at ``layer`` (default: the last), on the candidates
    and, as the no-memorization control, on the held-out images, plus the excess of the
    candidates' gap over the held-out gap.

    Returns
    -------
    DataFrame
        One row per set (``candidate``, ``heldout`` when measured, ``candidate - heldout``):
        ``top``, ``least``, ``gap`` (normalised by the candidates' range at the layer, like
        the table), Welch ``t``, ``df`` and one-sided ``p`` (top > least; for the last row,
        candidate gap > held-out gap).
    """
    layer = result.layers[-1].name if layer is None else layer
    scale = _range_at(result, layer)
    rows, groups = [], {}
    sets = ["candidate"] + (["heldout"] if (result.points["set"] == "heldout").any() else [])
    for name in sets:
        top, least = cross_fitted_groups(result, k, set=name, layer=layer)
        groups[name] = (top, least)
        test = welch_one_sided(top, least, alternative="greater")
        rows.append(
            {
                "set": name,
                "layer": layer,
                "k": k,
                "top": top.mean() / scale,
                "least": least.mean() / scale,
                "gap": (top.mean() - least.mean()) / scale,
                "t": test.statistic,
                "df": test.df,
                "p": test.pvalue,
            }
        )
    if "heldout" in groups:
        test = gap_difference_test(*groups["candidate"], *groups["heldout"])
        rows.append(
            {
                "set": "candidate - heldout",
                "layer": layer,
                "k": k,
                "top": np.nan,
                "least": np.nan,
                "gap": test.estimate / scale,
                "t": test.statistic,
                "df": test.df,
                "p": test.pvalue,
            }
        )
    return pd.DataFrame(rows)


def top_least_points(
    result: LayerMemResult, k: int, *, layer: str | None = None, set: str = "candidate"
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in the evaluated images of ``set``) of the k most and k least memorized
    images by their score over all view pairs at ``layer`` (default: the last), most
    memorized first and least memorized first."""
    layer = result.layers[-1].name if layer is None else layer
    score = result.scores(set, "sslmem_raw")[layer].to_numpy(float)
    return top_indices(score, k), top_indices(score, k, largest=False)


def layermem_pair(profile, framework: str = "simclr", checkpoints: dict | None = None, **overrides):
    """T1's encoder pair: your f and g from ``checkpoints`` when given (``memloc report``:
    nothing is trained, the profile's data and split; :func:`memloc.artifacts.checkpoint_pair`),
    else the profile's cached pair (:func:`memloc.artifacts.encoder_pair`). ``overrides``: the
    profile keys of the page (:meth:`memloc.result.Result.overrides`)."""
    from memloc.artifacts import checkpoint_pair, encoder_pair

    if checkpoints:
        return checkpoint_pair(profile, checkpoints, framework, **overrides)
    return encoder_pair(profile, framework, progress=False, **overrides)


def measurement_facts(result: LayerMemResult) -> str:
    """T1's sentence for the page's header: the images evaluated per set, K, the variant and
    the k of Top-k / Least-k."""
    cfg = result.config
    sizes = cfg["n_points"]
    source = "the paper" if cfg["variant"] == "views" else "the authors’ script"
    return (
        f"Evaluated: {sizes['candidate']} candidates, {sizes['heldout']} held-out and "
        f"{sizes['independent']} S_I images, K = {cfg['k_aug']} pairs of views each, variant "
        f"`{cfg['variant']}` ({source}), Top/Least-k with k = {cfg['top_k']}."
    )


def shape_curves(table: pd.DataFrame, side: pd.DataFrame) -> dict[str, np.ndarray]:
    """T1's curves for :func:`memloc.figures.shape_plot`: the paper's LayerMem (the
    ``paper LayerMem`` column of :func:`paper_comparison`'s side table) and our raw,
    calibrated and contrast scores per layer (``table``: :func:`layer_table`)."""
    return {
        "paper LayerMem (CIFAR-10)": side["paper LayerMem"].to_numpy(float),
        "ours: LayerMem (raw)": table["layermem"].to_numpy(float),
        "ours: calibrated": table["calibrated"].to_numpy(float),
        "ours: contrast": table["contrast"].to_numpy(float),
    }


def top_least_galleries(
    result: LayerMemResult, pair, k: int | None = None, n_show: int = 10
) -> dict:
    """T1's galleries: ``{"top": ..., "least": ...}``, each the keyword arguments of
    :func:`memloc.figures.image_gallery` for the (at most ``n_show``) most or least memorized
    candidates of :func:`top_least_points` (``k`` None: the measurement's Top-k), titled with
    their normalised score at the last measurement point (``pair`` gives the images)."""
    layer = result.layers[-1].name
    k = int(result.config["top_k"]) if k is None else k
    n_show = min(k, n_show)
    images = pair.images("candidate", result.config["n_points"]["candidate"])
    score = result.per_point[layer].to_numpy()
    galleries = {}
    for name, idx in zip(("top", "least"), top_least_points(result, k), strict=True):
        idx = idx[:n_show]
        galleries[name] = {
            "images": images[idx],
            "titles": [f"{score[i]:+.2f}" for i in idx],
            "ncols": n_show,
            "title": f"{name.capitalize()}-{n_show} candidates at layer {layer}",
        }
    return galleries


@dataclass(frozen=True)
class LayerMemTests:
    """T1's tests of its three claims (:func:`layermem_tests`).

    Attributes
    ----------
    table : :func:`layer_table` of the measurement.
    depth_tests : :func:`depth_tests`'s table; ``depth``, ``halves``, ``means_rho``: its
        three tests (the verdict's per-image slope, deep half against shallow half, Spearman's
        ρ of the contrast's layer means).
    trends : :func:`depth_trends` (Spearman's ρ of each score's layer means).
    residual_steps : :func:`residual_steps`; ``residual``: the verdict's test, on the
        contrast's steps (``delta_contrast``).
    top_least : :func:`top_least_tests` at the last layer; ``k``: its k.
    """

    table: pd.DataFrame
    depth_tests: pd.DataFrame
    depth: TestResult
    halves: TestResult
    means_rho: TestResult
    trends: pd.DataFrame
    residual_steps: pd.DataFrame
    residual: ResidualStepTest
    top_least: pd.DataFrame
    k: int


def layermem_tests(result: LayerMemResult, seed: int = 0) -> LayerMemTests:
    """Every test of T1's page on one measurement (``seed``: the depth test's permutations)."""
    table = layer_table(result)
    k = int(result.config["top_k"])
    depth_table, depth, halves, means_rho = depth_tests(result, table, seed=seed)
    return LayerMemTests(
        table,
        depth_table,
        depth,
        halves,
        means_rho,
        depth_trends(table),
        residual_steps(table),
        residual_step_test(table, "delta_contrast"),
        top_least_tests(result, k),
        k,
    )


def layermem_claims(tests: LayerMemTests) -> list[dict]:
    """T1's three claims (depth, residual sums, Top-k against Least-k) for
    :meth:`memloc.result.Result.claims` (the Top-k test's text has the ``{holm}`` mark)."""
    depth, step, k = tests.depth, tests.residual, tests.k
    last = tests.table["layer"].iloc[-1]
    cand, excess = tests.top_least.iloc[0], tests.top_least.iloc[2]
    n_c, n_i = depth.n
    return [
        dict(
            claim="Memorization increases with layer depth",
            test=f"per-image slope of SSLMem against depth, {n_c} candidates vs {n_i} S_I images, "
            "Welch t with a permutation over images, one-sided",
            statistic=depth.statistic,
            p_value=depth.pvalue,
            holds=depth.estimate > 0,
        ),
        dict(
            claim="Residual sums add little memorization",
            test="share of (residual, conv) step pairs with smaller |Δ contrast| at the residual, "
            "exact permutation test over the 9 steps",
            statistic=step.statistic,
            p_value=step.pvalue,
            holds=step.residual_mean < step.conv_mean,
        ),
        dict(
            claim="Top-k candidates are memorized far more than Least-k (last layer)",
            test=f"cross-fitted Top-{k} minus Least-{k} gap at {last}, candidates minus held-out "
            "images, t-test one-sided{holm}; holds if the candidates' own Welch test has p < 0.05",
            statistic=excess["t"],
            p_value=excess["p"],
            holds=cand["p"] < 0.05,
        ),
    ]


def layermem_notes(tests: LayerMemTests, check, verdicts: list[dict], profile: str) -> list[str]:
    """T1's paragraphs under the verdicts: did f memorize (and learn; ``check``:
    :func:`memloc.regime.check_pair`), then the numbers behind each of the three ``verdicts``
    (the entries :meth:`memloc.result.Result.claims` recorded) at ``profile``."""
    table, depth, halves, rho = tests.table, tests.depth, tests.halves, tests.means_rho
    step, k = tests.residual, tests.k
    v1, v2, v3 = verdicts
    last = table["layer"].iloc[-1]
    cand, held, excess = (tests.top_least.iloc[i] for i in range(3))
    probe, untrained = check.probe
    learned = (
        ""
        if check.learned is None
        else f"; linear-probe accuracy of f {probe:.3f}, of an untrained encoder {untrained:.3f}"
    )
    return [
        f"**Memorized?** The smallest Holm-adjusted p of the per-layer S_C-vs-S_I contrast "
        f"is {check.smallest_p:.3g} (contrast t at `1`: {table['contrast_t'].iloc[0]:.2f}, "
        f"at `{last}`: {table['contrast_t'].iloc[-1]:.2f}){learned}.",
        f"**Depth ({v1['verdict']} at profile `{profile}`).** The candidates' per-image slope "
        f"against depth exceeds the independents' by {depth.estimate:+.4f} standard "
        f"deviations per layer (Welch t = {depth.statistic:.2f}, permutation p = "
        f"{depth.pvalue:.3g}, Holm {v1['p_value']:.3g}). Deep half against shallow half: "
        f"P(candidate's difference > independent's) = {halves.statistic:.3f} "
        f"(p = {halves.pvalue:.3g}). For comparison, Spearman's ρ of the ten layer means of "
        f"the contrast is {rho.statistic:+.2f} (p = {rho.pvalue:.3g}); the "
        f"paper's raw LayerMem gives ρ = {tests.trends.iloc[0]['rho']:+.2f} here and the "
        f"calibrated score ρ = {tests.trends.iloc[1]['rho']:+.2f}.",
        f"**Residual sums ({v2['verdict']}).** Mean |Δ contrast| is "
        f"{step.residual_mean:.4f} at the residual sums and {step.conv_mean:.4f} at the "
        f"conv layers; in {100 * step.statistic:.0f}% of the (residual, conv) pairs the "
        f"residual step is the smaller (exact p = {step.pvalue:.3f}, Holm "
        f"{v2['p_value']:.3f}).",
        f"**Top-k vs Least-k ({v3['verdict']}).** Cross-fitted at `{last}`: Top-{k} "
        f"{cand['top']:+.3f}, Least-{k} {cand['least']:+.3f}, gap {cand['gap']:+.3f} "
        f"(t = {cand['t']:.2f}, p = {cand['p']:.3g}). The same selection on held-out images "
        f"gives a gap of {held['gap']:+.3f} (t = {held['t']:.2f}); candidates' gap minus "
        f"held-out gap: {excess['gap']:+.3f} (t = {excess['t']:.2f}, one-sided "
        f"p = {excess['p']:.3g}, Holm {v3['p_value']:.3g}). The paper reports 0.817 against "
        "0.086 at Res6 without cross-fitting or a control.",
    ]


# ----------------------------------------------------------------------------- T3


def default_overlap_k(n: int, cap: int = 100) -> int:
    """The k of T3's top-k overlap: the paper's 100, at most a fifth of the n points."""
    return max(1, min(cap, n // 5))


def layer_agreement(scores: pd.DataFrame, k: int) -> pd.DataFrame:
    """Agreement of the per-image scores of every pair of layers.

    Parameters
    ----------
    scores : (point x layer) per-image scores, columns in forward order (e.g.
        ``LayerMemResult.per_point``). Rankings, so any per-layer shift or positive scale
        (normalisation, calibration) gives the same answer.
    k : size of the top sets compared.

    Returns
    -------
    DataFrame
        One row per pair ``layer_a`` before ``layer_b``: ``distance`` (steps apart in
        forward order), ``overlap`` (points shared by the two top-k sets), ``overlap_fraction``,
        ``chance`` (k / n), ``overlap_p`` (hypergeometric, one-sided), ``tau`` (Kendall's
        tau-b) and ``tau_p`` (two-sided).
    """
    layers = list(scores.columns)
    if len(layers) < 2:
        raise ValueError("need at least two layers to compare")
    rows = []
    for (i, a), (j, b) in itertools.combinations(enumerate(layers), 2):
        ov = topk_overlap(scores[a], scores[b], k)
        tau = kendall_tau(scores[a], scores[b])
        rows.append(
            {
                "layer_a": a,
                "layer_b": b,
                "distance": j - i,
                "overlap": ov.overlap,
                "overlap_fraction": ov.fraction,
                "chance": ov.chance,
                "overlap_p": ov.pvalue,
                "tau": tau.statistic,
                "tau_p": tau.pvalue,
            }
        )
    return pd.DataFrame(rows)


def agreement_matrix(agreement: pd.DataFrame, value: str = "tau", diagonal: float = 1.0):
    """A symmetric (layer x layer) DataFrame of one column of :func:`layer_agreement`."""
    layers = list(dict.fromkeys(list(agreement["layer_a"]) + list(agreement["layer_b"])))
    m = pd.DataFrame(np.nan, index=layers, columns=layers)
    for _, row in agreement.iterrows():
        m.loc[row["layer_a"], row["layer_b"]] = row[value]
        m.loc[row["layer_b"], row["layer_a"]] = row[value]
    for name in layers:
        m.loc[name, name] = diagonal
    return m


@dataclass(frozen=True)
class AdjacencyTest:
    """Adjacent deep layers against distant layers (see :func:`adjacent_vs_distant`)."""

    adjacent_mean: float
    distant_mean: float
    difference: float
    pvalue: float
    n_adjacent: int
    n_distant: int
    adjacent_pairs: tuple[str, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def adjacent_vs_distant(
    agreement: pd.DataFrame,
    *,
    value: str = "tau",
    deep_from: str = "5",
    min_gap: int = 4,
    max_exact: int = 200_000,
    n_resamples: int = 20_000,
    seed: int = 0,
) -> AdjacencyTest:
    """Do adjacent deep layers agree more than distant layers? A permutation test.

    Adjacent deep pairs: neighbours in forward order, both at or after ``deep_from``. Distant
    pairs: ``min_gap`` or more steps apart. The statistic is the difference of the mean
    ``value`` of the two groups; the p-value is the share of all ways to pick as many pairs
    from the pooled groups as "adjacent" whose difference is at least the observed one
    (exact enumeration up to ``max_exact`` ways, else ``n_resamples`` random ones). The pairs
    share layers and points, so they are not independent: read the p-value as how unusual
    the adjacent pairs are among these pairs, not as a test over new data.
    """
    layers = list(dict.fromkeys(list(agreement["layer_a"]) + list(agreement["layer_b"])))
    if deep_from not in layers:
        raise KeyError(f"deep_from={deep_from!r} is not a layer; layers: {layers}")
    start = layers.index(deep_from)
    pos = {name: i for i, name in enumerate(layers)}
    ia = agreement["layer_a"].map(pos).to_numpy()
    ib = agreement["layer_b"].map(pos).to_numpy()
    adjacent = (np.abs(ib - ia) == 1) & (np.minimum(ia, ib) >= start)
    distant = np.abs(ib - ia) >= min_gap
    x, y = agreement[value].to_numpy(float)[adjacent], agreement[value].to_numpy(float)[distant]
    if len(x) == 0 or len(y) == 0:
        raise ValueError(
            f"no adjacent pairs from layer {deep_from!r} on ({len(x)}) or no pairs "
            f"{min_gap}+ apart ({len(y)}); change deep_from or min_gap"
        )
    pooled = np.concatenate([x, y])
    n, m = len(pooled), len(x)
    observed = x.mean() - y.mean()
    total = pooled.sum()

    def diffs(chosen: np.ndarray) -> np.ndarray:  # chosen: (r, m) index sets
        s = pooled[chosen].sum(axis=1)
        return s / m - (total - s) / (n - m)

    if math.comb(n, m) <= max_exact:
        chosen = np.array(list(itertools.combinations(range(n), m)))
    else:
        rng = np.random.default_rng(seed)
        chosen = np.argsort(rng.random((n_resamples, n)), axis=1)[:, :m]
    p = float(np.mean(diffs(chosen) >= observed - 1e-12))
    names = agreement.loc[adjacent, ["layer_a", "layer_b"]].astype(str)
    pairs = tuple(f"{a}-{b}" for a, b in names.itertuples(index=False))
    return AdjacencyTest(float(x.mean()), float(y.mean()), float(observed), p, m, n - m, pairs)


AGREEMENT_COLUMNS = [
    "layer_a",
    "layer_b",
    "distance",
    "overlap",
    "overlap_fraction",
    "chance",
    "overlap_p",
    "tau",
    "tau_p",
]


def agreement_by_set(result: LayerMemResult, top_k: int | None = None):
    """T3's :func:`layer_agreement` of the candidates and, as the control, of the held-out
    images (their normalised per-image scores), with the overlap's k (``top_k``; None:
    :func:`default_overlap_k`). Returns ``({"candidates": ..., "held-out": ...}, k, n)``, n
    the number of candidates."""
    scores = {"candidates": result.per_point, "held-out": result.scores("heldout", "sslmem")}
    n = len(scores["candidates"])
    k = default_overlap_k(n) if top_k is None else int(top_k)
    return {name: layer_agreement(s, k) for name, s in scores.items()}, k, n


def agreement_facts(result: LayerMemResult, k: int) -> str:
    """T3's sentence for the page's header: the images, K, the variant and the overlap's k
    against the k/N two unrelated rankings share."""
    cfg = result.config
    n, n_held = len(result.per_point), len(result.scores("heldout", "sslmem"))
    return (
        f"{n} candidates and {n_held} held-out images, K = {cfg['k_aug']} view pairs each, "
        f"variant `{cfg['variant']}`. Top-k overlap with k = {k}: two unrelated rankings share "
        f"k/N = {k / n:.2f} of their top sets on average."
    )


def agreement_long(agreement: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """T3's saved table: the sets' :func:`layer_agreement` tables stacked, column ``images``
    naming the set."""
    return pd.concat([a.assign(images=name) for name, a in agreement.items()], ignore_index=True)


def agreement_matrices(agreement: dict[str, pd.DataFrame]) -> dict[str, tuple]:
    """T3's heatmaps: per set, the (layer x layer) overlap-fraction and Kendall τ matrices
    (:func:`agreement_matrix`), as :func:`memloc.figures.agreement_heatmaps` takes them."""
    return {
        name: (agreement_matrix(a, "overlap_fraction"), agreement_matrix(a, "tau"))
        for name, a in agreement.items()
    }


def adjacency_tests(agreement: dict[str, pd.DataFrame]) -> dict[str, AdjacencyTest]:
    """T3's :func:`adjacent_vs_distant` on every set (candidates and the held-out control)."""
    return {name: adjacent_vs_distant(a) for name, a in agreement.items()}


def adjacency_table(tests: dict[str, AdjacencyTest]) -> pd.DataFrame:
    """T3's table of :func:`adjacency_tests`: one row per set (``images``), without the list
    of adjacent pairs."""
    rows = [{"images": name, **t.to_dict()} for name, t in tests.items()]
    return pd.DataFrame(rows).drop(columns="adjacent_pairs")


def adjacency_claim(tests: dict[str, AdjacencyTest]) -> dict:
    """T3's claim: adjacent deep layers agree more than distant ones on the candidates (the
    held-out images' difference is named in the test's text)."""
    test, control = tests["candidates"], tests["held-out"]
    return dict(
        claim="Adjacent deep layers agree on the memorized images more than distant layers",
        test="mean Kendall tau of adjacent pairs from layer 5 minus mean tau of pairs >= 4 apart, "
        f"exact permutation test over the pairs (same difference on held-out images: "
        f"{control.difference:+.2f})",
        statistic=test.difference,
        p_value=test.pvalue,
        holds=test.difference > 0,
    )


def adjacency_note(
    agreement: dict[str, pd.DataFrame],
    tests: dict[str, AdjacencyTest],
    k: int,
    verdict: dict,
    profile: str,
) -> str:
    """T3's paragraph under the verdict: the candidates' and the held-out images' adjacency
    test, what the control says about it, and the mean top-k overlaps of neighbouring and of
    distant points against chance (``verdict``: the recorded claim)."""
    test, control = tests["candidates"], tests["held-out"]
    cand = agreement["candidates"]
    adjacent = cand.loc[cand["distance"] == 1, "overlap_fraction"].mean()
    distant = cand.loc[cand["distance"] >= 4, "overlap_fraction"].mean()
    if control.difference >= test.difference:
        control_says = (
            "the pattern is at least as strong on images neither encoder saw: at this profile "
            "the agreement of neighbouring layers cannot be attributed to memorization."
        )
    else:
        control_says = (
            "the candidates' pattern is stronger than on images neither encoder saw "
            f"(by {test.difference - control.difference:+.3f}; this excess is not tested here)."
        )
    return (
        f"**Verdict at profile `{profile}`: {verdict['verdict']}.** On the candidates, adjacent "
        f"deep pairs have mean τ = {test.adjacent_mean:+.3f} and distant pairs "
        f"{test.distant_mean:+.3f} (difference {test.difference:+.3f}, exact p = "
        f"{test.pvalue:.3g}). On held-out images the same difference is "
        f"{control.difference:+.3f} (p = {control.pvalue:.3g}), so {control_says} Top-{k} "
        f"overlaps: {adjacent:.2f} on average between neighbouring points, {distant:.2f} "
        f"between points four or more apart, chance {cand['chance'].iloc[0]:.2f}."
    )


# ----------------------------------------------------------------------------- A6

SIZE_LADDER = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000)


def stability_sizes(n_max: int, count: int = 4) -> list[int]:
    """Point counts for A6: ``n_max`` and up to ``count - 1`` round numbers below it, not
    below ``n_max / 10`` (quick: 150 -> 25, 50, 100, 150; cpu: 1000 -> 100, 250, 500, 1000;
    the paper used 100, 500, 1000, 5000). Below the ladder's first rung (fewer than 25
    points, a toy run), half of ``n_max`` is the one smaller size."""
    if n_max < 2:
        raise ValueError(f"n_max must be at least 2, got {n_max}")
    below = [s for s in SIZE_LADDER if n_max / 10 <= s < n_max] or [int(n_max) // 2]
    return below[-(count - 1) :] + [int(n_max)] if count > 1 else [int(n_max)]


def subset_layermem(result: LayerMemResult, candidates=None, heldout=None) -> pd.DataFrame:
    """LayerMem per layer as :func:`memloc.metrics.layermem` defines it, on a subset.

    The per-image raw scores of the chosen candidates are averaged and divided by their own
    range (the normaliser depends on the evaluated set); ``calibrated`` subtracts the mean of
    the chosen held-out images over the same range. On all images it equals the table's
    ``layermem`` and ``calibrated``.

    Parameters
    ----------
    result : a LayerMemResult (held-out images measured for ``calibrated``).
    candidates, heldout : positions of the images to use (None: all).

    Returns
    -------
    DataFrame
        ``layer``, ``layermem``, ``calibrated`` (when held-out images were measured),
        ``range`` (the normaliser used), ``n`` (candidates used).
    """
    names = [p.name for p in result.layers]
    raw, ref = _candidate_arrays(result)
    idx = np.arange(len(raw)) if candidates is None else np.asarray(candidates)
    if len(idx) < 2:
        raise ValueError("a subset needs at least 2 candidates (the range of 1 image is 0)")
    scale = normaliser(raw[idx], ref[idx])
    out = pd.DataFrame({"layer": names, "layermem": raw[idx].mean(axis=0) / scale})
    if (result.points["set"] == "heldout").any():
        held = result.scores("heldout", "sslmem_raw")[names].to_numpy(float)
        hidx = np.arange(len(held)) if heldout is None else np.asarray(heldout)
        out["calibrated"] = out["layermem"] - held[hidx].mean(axis=0) / scale
    out["range"] = scale
    out["n"] = len(idx)
    return out


def stability_sweep(results: dict[int, LayerMemResult], sizes) -> pd.DataFrame:
    """LayerMem on random subsets of each size, one subset per seed.

    Parameters
    ----------
    results : ``{seed: LayerMemResult}``, each measured on the same candidates with its own
        augmentation seed; the seed also draws the subsets (without replacement; a size equal
        to the number of candidates uses them all).
    sizes : point counts.

    Returns
    -------
    DataFrame
        ``seed``, ``n``, ``layer``, ``depth`` (forward position), ``layermem``,
        ``calibrated`` (held-out images: all that were measured, the same for every size) and
        ``range`` (the normaliser, which grows with the number of images).
    """
    frames = []
    for seed, result in results.items():
        n_all = int((result.points["set"] == "candidate").sum() // len(result.layers))
        rng = np.random.default_rng(seed)
        for n in sizes:
            if n > n_all:
                raise ValueError(f"size {n} exceeds the {n_all} measured candidates")
            idx = np.arange(n_all) if n == n_all else np.sort(rng.choice(n_all, n, replace=False))
            df = subset_layermem(result, idx)
            df.insert(0, "depth", np.arange(len(df)))
            df.insert(0, "seed", seed)
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def stability_summary(sweep: pd.DataFrame, score: str = "calibrated") -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``score`` per size and layer (wide: one row
    per layer in forward order, columns ``n=<size> mean``, ``n=<size> std``)."""
    g = sweep.groupby(["depth", "layer", "n"])[score].agg(["mean", "std"]).reset_index()
    wide = g.pivot(index=["depth", "layer"], columns="n", values=["mean", "std"])
    sizes = sorted(sweep["n"].unique())
    cols = {}
    for n in sizes:
        cols[f"n={n} mean"] = wide[("mean", n)]
        cols[f"n={n} std"] = wide[("std", n)]
    out = pd.DataFrame(cols).reset_index().drop(columns="depth")
    return out


@dataclass(frozen=True)
class StabilityTest:
    """How much LayerMem depends on the number of points (see :func:`stability_test`)."""

    rho: float
    pvalue: float
    spread_ratio: float
    max_cv: float
    max_cv_layer: str
    n_small: int
    n_large: int

    def to_dict(self) -> dict:
        return asdict(self)


def stability_test(sweep: pd.DataFrame, score: str = "calibrated") -> StabilityTest:
    """Is the layer profile of ``score`` the same at every number of points?

    - ``rho``, ``pvalue``: Spearman's rho between the layers' seed-mean scores at the smallest
      and at the largest size, one-sided (the orderings agree).
    - ``spread_ratio``: the mean over layers of the standard deviation across sizes of the
      seed-mean score, divided by the standard deviation across layers of the layers' means
      over all sizes. Below 1: the number of points moves a layer less than layers differ.
    - ``max_cv``: the largest coefficient of variation across sizes (``std / |mean|``) of a
      layer, and which layer; it is large wherever a layer's mean is close to 0.
    """
    means = sweep.groupby(["depth", "layer", "n"])[score].mean().unstack("n")
    sizes = list(means.columns)
    if len(sizes) < 2:
        raise ValueError("need at least two sizes")
    trend = spearman_trend(means[sizes[-1]].to_numpy(), means[sizes[0]].to_numpy())
    across_n = means.std(axis=1, ddof=1)
    across_layers = means.mean(axis=1).std(ddof=1)
    ratio = float(across_n.mean() / across_layers) if across_layers > 0 else math.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = (across_n / means.mean(axis=1).abs()).to_numpy()
    i = int(np.nanargmax(np.where(np.isfinite(cv), cv, np.inf))) if len(cv) else 0
    return StabilityTest(
        trend.statistic,
        trend.pvalue,
        ratio,
        float(cv[i]),
        str(means.index[i][1]),
        int(sizes[0]),
        int(sizes[-1]),
    )


@dataclass(frozen=True)
class StabilityRun:
    """A6's measurements (:func:`stability_run`): ``results`` (seed -> LayerMemResult of all
    ``n_max`` candidates), ``sweep`` (:func:`stability_sweep`), and what they used: the
    ``sizes``, ``seeds``, ``k_aug``, ``n_heldout`` (held-out images measured) and
    ``variant``."""

    results: dict
    sweep: pd.DataFrame
    sizes: list[int]
    seeds: list[int]
    k_aug: int
    n_max: int
    n_heldout: int
    variant: str

    @property
    def layers(self) -> list[str]:
        """The measurement points, in forward order."""
        return [p.name for p in self.results[self.seeds[0]].layers]

    @property
    def facts(self) -> str:
        """A6's sentence for the page's header."""
        return (
            f"Sizes n = {self.sizes} drawn from {self.n_max} candidates; {len(self.seeds)} "
            f"repetitions (seeds {self.seeds}); K = {self.k_aug} view pairs per image; "
            f"{self.n_heldout} held-out images for the calibration; variant `{self.variant}`."
        )

    @property
    def measurement(self) -> dict:
        """A6's settings for the provenance."""
        return {
            "sizes": self.sizes,
            "seeds": self.seeds,
            "k_aug": self.k_aug,
            "n_heldout": self.n_heldout,
            "variant": self.variant,
        }


def stability_run(
    pair,
    *,
    n_points: int | None = None,
    k_aug: int | None = None,
    n_seeds: int = 3,
    sizes=None,
    n_heldout: int | None = None,
    seed: int = 0,
    variant: str = "views",
) -> StabilityRun:
    """A6's measurements: ``n_seeds`` LayerMem measurements of the same candidates (seeds
    ``seed``, ``seed + 1``, ...: their own views and subsets), without Top-k or S_I, and the
    :func:`stability_sweep` over ``sizes``.

    ``n_points``: the largest n (None: the profile's, at most all candidates); ``k_aug``: None
    is half the profile's K (layer means are stable at K = 10; per-image rankings would need
    K >= 20); ``sizes`` None: :func:`stability_sizes`; ``n_heldout``: held-out images for the
    calibration (None: half the largest n)."""
    profile = pair.profile
    n_max = min(len(pair.splits.candidate), profile.n_points if n_points is None else n_points)
    k_aug = max(2, profile.k_aug // 2) if k_aug is None else int(k_aug)
    n_held = n_max // 2 if n_heldout is None else int(n_heldout)
    sizes = stability_sizes(n_max) if sizes is None else sorted(int(s) for s in sizes)
    seeds = [seed + i for i in range(n_seeds)]
    kw = dict(
        n_points=n_max, k_aug=k_aug, top_k=0, variant=variant, n_heldout=n_held, n_independent=0
    )
    results = {s: pair_layermem(pair, seed=s, **kw) for s in seeds}
    n_held = results[seeds[0]].config["n_points"]["heldout"]
    sweep = stability_sweep(results, sizes)
    return StabilityRun(results, sweep, sizes, seeds, k_aug, n_max, n_held, variant)


STABILITY_SCORES = {"layermem": "paper's raw normalised LayerMem", "calibrated": "calibrated"}


def stability_tests(sweep: pd.DataFrame) -> dict[str, StabilityTest]:
    """A6's :func:`stability_test` of each score of :data:`STABILITY_SCORES`."""
    return {score: stability_test(sweep, score) for score in STABILITY_SCORES}


def stability_tests_table(tests: dict[str, StabilityTest]) -> pd.DataFrame:
    """A6's table of :func:`stability_tests`: one row per score."""
    return pd.DataFrame([{"score": s, **t.to_dict()} for s, t in tests.items()])


def stability_claim(test: StabilityTest) -> dict:
    """A6's claim on the calibrated score's :func:`stability_test`: the layer orderings at the
    smallest and largest n agree (Spearman), holding only when the spread across n is below
    the spread across layers."""
    return dict(
        claim="LayerMem is stable in the number of evaluated points",
        test=f"Spearman rho of calibrated LayerMem per layer, n = {test.n_small} vs n = "
        f"{test.n_large} (seed means), one-sided; holds if the spread across n is below the "
        "spread across layers",
        statistic=test.rho,
        p_value=test.pvalue,
        holds=test.spread_ratio < 1,
    )


def stability_note(
    tests: dict[str, StabilityTest], ranges: pd.DataFrame, verdict: dict, profile: str
) -> str:
    """A6's paragraph under the verdict: both scores' tests and how much larger the range
    normaliser is at the smallest n than at the largest (``ranges``: :func:`range_vs_n`)."""
    t, raw = tests["calibrated"], tests["layermem"]
    ratio = ranges["range / range at largest n"].iloc[0]
    return (
        f"**Verdict at profile `{profile}`: {verdict['verdict']}.** Calibrated LayerMem: the "
        f"layer orderings at n = {t.n_small} and n = {t.n_large} have Spearman ρ = "
        f"{t.rho:+.2f} (one-sided p = {t.pvalue:.3g}); the spread across n is "
        f"{t.spread_ratio:.2f} times the spread across layers; the largest coefficient of "
        f"variation across n is {t.max_cv:.2f} (layer `{t.max_cv_layer}`). The paper's raw "
        f"score gives ρ = {raw.rho:+.2f} (p = {raw.pvalue:.3g}) and a spread ratio of "
        f"{raw.spread_ratio:.2f}. The range normaliser at n = {ranges['n'].iloc[0]} is "
        f"{ratio:.2f} times the one at n = {ranges['n'].iloc[-1]}, so the normalised values "
        f"shift in scale with n even where their ordering holds."
    )
