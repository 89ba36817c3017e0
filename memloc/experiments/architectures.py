"""What the architecture, framework, data-set and privacy results (T2, T4, A5, F3a, F3c) add
to the layer and unit measurements.

- The depth trend of T1 on any encoder: :func:`main_path` picks the measurement points that
  follow the encoder's forward path (ResNet9: all ten, as T1; torchvision ResNets: the stem and
  every block output; ViT: every block output), and :func:`contrast_depth_trends` tests the
  trend of each of several encoders on the per-image scores, Holm-adjusted because the verdict
  asks that it holds in all of them.
- The ViT split of T2 (:func:`vit_blocks`, :func:`sublayer_tests`): a block's change in
  memorization along the residual stream splits into the attention part (block i-1's output to
  the stream after the attention add) and the MLP part (from there to block i's output).
- Means and spreads over measurement seeds (:func:`seed_summary`, A5).
- The share of units above the random-initialisation control (:func:`units_above`), on the
  data sets of F3a (their profiles: :func:`memloc.profiles.dataset_profile`).
- The pages: T2's :func:`vit_facts`, :func:`vit_claims`, :func:`vit_notes`; T4's and A5's
  :func:`measure_pairs` (every pair, measured per view seed), :func:`first_tables`,
  :func:`main_paths`, :func:`wide_by_architecture`, :func:`seed_summaries`,
  :func:`stacked_tables`, :func:`resnet_facts`, and their one claim that the depth trend
  holds in every encoder, :func:`every_encoder_check`, :func:`every_encoder_claim`,
  :func:`every_encoder_note`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st
from torch import nn

from memloc.experiments.layers import (
    contrast_depth_test,
    depth_trend,
    pair_layermem,
    pair_testability,
)
from memloc.regime import PairCheck
from memloc.stats import claim, holm, intersection_union

_VIT_BLOCK = re.compile(r"^block(\d+)$")


def _point_names(encoder: nn.Module) -> list[str]:
    return [p.name for p in encoder.measurement_points()]


def main_path(table: pd.DataFrame, encoder: nn.Module) -> pd.DataFrame:
    """The rows of a LayerMem table (column ``layer``) on the encoder's forward path, in order.

    ViT: the block outputs (``block1`` … ``blockN``; sublayer outputs and the stream after the
    attention add are steps inside a block). torchvision ResNets: ``stem`` and the block outputs
    (``layerS.B``; the sums ``layerS.B.res`` precede the block's last ReLU). Any other encoder
    (ResNet9): every measurement point, as T1 counts them.
    """
    names = _point_names(encoder)
    if any(_VIT_BLOCK.match(n) for n in names) and any(n.endswith(".attn") for n in names):
        keep = [n for n in names if _VIT_BLOCK.match(n)]
    else:
        keep = [n for n in names if not n.endswith(".res")]
    rows = table.set_index(table["layer"].astype(str))
    missing = [n for n in keep if n not in rows.index]
    if missing:
        raise KeyError(f"the table lacks the measurement points {missing[:5]}")
    return rows.loc[keep].reset_index(drop=True)


def settings_table(pairs: dict) -> pd.DataFrame:
    """T4/A5: per setting (label -> encoder pair) its data, split sizes, epochs, candidates
    evaluated and K."""
    return pd.DataFrame(
        [
            {
                "setting": label,
                "data": pair.profile.dataset,
                "|S_S|, |S_C|, |S_I|": (
                    f"{pair.profile.n_shared}, {pair.profile.n_candidate}, "
                    f"{pair.profile.n_independent}"
                ),
                "epochs": pair.profile.epochs,
                "candidates evaluated": pair.profile.n_points,
                "K": pair.profile.k_aug,
            }
            for label, pair in pairs.items()
        ]
    )


def paths_by_setting(tables: dict, score: str) -> pd.DataFrame:
    """T4/A5: the forward path (:func:`main_path`) of every setting's LayerMem table
    (label -> (table, encoder)), stacked: setting, layer, LayerMem, ΔLM, calibrated, the
    ``score`` and the contrast's t."""
    columns = ["setting", "layer", "layermem", "delta_layermem", "calibrated", score, "contrast_t"]
    frames = [
        main_path(table, enc).assign(setting=label)[list(dict.fromkeys(columns))]
        for label, (table, enc) in tables.items()
    ]
    return pd.concat(frames, ignore_index=True)


def contrast_depth_trends(
    results: Mapping[str, tuple],
    *,
    n_permutations: int = 9999,
    seed: int = 0,
    probes: Mapping[str, tuple] | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """T1's depth test on the per-image scores of each encoder's main path, Holm over encoders.

    ``results`` maps a label to (LayerMemResult, or a list of them measured on the same images
    with other view seeds, averaged per image; encoder). Per encoder:
    :func:`memloc.experiments.layers.contrast_depth_test` on the :func:`main_path` points
    (the candidates' per-image slopes against depth against the independents', permutation
    over images, one-sided) and :func:`memloc.experiments.layers.pair_testability` (did f
    memorize at any point of the path? and, where ``probes`` gives the label's (f's probe
    accuracy, the untrained twin's[, the one-sided McNemar p of f against the twin]), or is
    :func:`memloc.regime.quality_table`'s table itself, did it learn?).

    Returns one row per label: ``points``, ``t``, ``slope`` (difference of the mean slopes,
    standard deviations per point), ``p``, ``p_holm``, ``memorized``, ``learned`` (None
    without probe accuracies), ``reason`` (why the encoder's claim is not testable, or ""),
    ``rho`` and ``rho p`` (Spearman of the layer means of the contrast, for comparison) and
    the contrast at the first and last point.
    """
    if isinstance(probes, pd.DataFrame):
        probes = {
            label: (row["probe f"], row["probe untrained"], row.get("probe p"))
            for label, row in probes.iterrows()
        }
    probes = probes or {}
    rows = []
    for label, (result, encoder) in results.items():
        first = result if not isinstance(result, list | tuple) else result[0]
        path = main_path(first.table, encoder)
        names = path["layer"].astype(str).tolist()
        test = contrast_depth_test(result, names, n_permutations=n_permutations, seed=seed)
        probe, untrained, probe_p = (*probes.get(label, (None, None)), None)[:3]
        check = pair_testability(
            result, names, probe_accuracy=probe, untrained_accuracy=untrained, probe_p=probe_p
        )
        means = depth_trend(path, "contrast")
        rows.append(
            {
                "setting": label,
                "points": len(names),
                "t": test.statistic,
                "slope": test.estimate,
                "p": test.pvalue,
                "memorized": check.memorized,
                "learned": check.learned,
                "reason": check.reason,
                "rho": means.statistic,
                "rho p": means.pvalue,
                "contrast first": float(path["contrast"].iloc[0]),
                "contrast last": float(path["contrast"].iloc[-1]),
            }
        )
    out = pd.DataFrame(rows)
    out.insert(5, "p_holm", holm(out["p"].to_numpy()))
    return out


def all_trends(trends: pd.DataFrame, statistic: str = "rho") -> dict:
    """The verdict of :func:`contrast_depth_trends` (or a table like it) when the claim is
    that the trend holds in every encoder: ``statistic`` (the smallest value of the column
    ``statistic``: ``"rho"``, or ``"t"`` for the per-image test), ``p`` (the largest
    Holm-adjusted p: :func:`memloc.stats.intersection_union`), ``holds`` (every statistic
    positive), ``worst`` (the row with that p) and, when the trends say which encoders
    memorized (and learned), ``testable`` (all of them did) and ``reason`` (which did not and
    why, for a *not testable here* verdict)."""
    overall = intersection_union(trends[statistic], trends["p_holm"])
    worst = trends.loc[trends["p_holm"].idxmax()]
    out = {
        "statistic": overall.statistic,
        "p": overall.pvalue,
        "holds": bool((trends[statistic] > 0).all()),
        "worst": worst,
        "testable": True,
        "reason": "",
    }
    if "memorized" in trends:
        memorized = trends["memorized"].astype(bool)
        learned = trends["learned"] if "learned" in trends else pd.Series(None, trends.index)
        # learned is None where the probe was not measured: that check counts as passed.
        unlearned = learned.map(lambda v: v is False or v is np.False_)
        reasons = []
        if (~memorized).any():
            reasons.append(
                "no point of the main path has a significant S_C-vs-S_I contrast (Holm over "
                f"the points) in {', '.join(trends.loc[~memorized, 'setting'])}"
            )
        if unlearned.any():
            reasons.append(
                "f's linear probe is not above the untrained twin's in "
                f"{', '.join(trends.loc[unlearned, 'setting'])}"
            )
        if reasons:
            out["testable"] = False
            out["reason"] = (
                "Not testable here: " + "; ".join(reasons) + "; the claim is about every encoder."
            )
    return out


def curve_agreement(
    tables: Mapping[str, tuple[pd.DataFrame, nn.Module]], score: str = "contrast"
) -> pd.DataFrame:
    """Spearman's ρ between the main-path curves of every two encoders with the same points
    (two-sided p): do two frameworks rank the layers alike?"""
    curves = {}
    for label, (table, encoder) in tables.items():
        path = main_path(table, encoder)
        curves[label] = (tuple(path["layer"].astype(str)), path[score].to_numpy(float))
    rows = []
    labels = list(curves)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            if curves[a][0] != curves[b][0]:
                continue
            r = _st.spearmanr(curves[a][1], curves[b][1])
            rows.append({"a": a, "b": b, "rho": float(r.statistic), "p": float(r.pvalue)})
    return pd.DataFrame(rows, columns=["a", "b", "rho", "p"])


def vit_blocks(table: pd.DataFrame, score: str = "contrast") -> pd.DataFrame:
    """Per ViT block i: the score of the attention and MLP sublayer outputs (``attn_out``,
    ``mlp_out``), of the residual stream after the attention add (``after_attn``) and of the
    block output (``block``); ``delta_attn`` = after_attn(i) - block(i-1) and ``delta_mlp`` =
    block(i) - after_attn(i), the two parts of the block's ΔLayerMem (``delta_attn`` is NaN for
    block 1: the stream before it is not a measurement point)."""
    values = dict(zip(table["layer"].astype(str), table[score].astype(float), strict=True))
    blocks = sorted(int(m.group(1)) for n in values if (m := _VIT_BLOCK.match(n)))
    if not blocks:
        raise ValueError("the table has no ViT block outputs (block1, block2, ...)")
    rows = []
    for i in blocks:
        names = {
            k: f"block{i}{s}" for k, s in (("attn", ".attn"), ("res1", ".res1"), ("mlp", ".mlp"))
        }
        missing = [n for n in names.values() if n not in values]
        if missing:
            raise KeyError(f"the table lacks {missing}; measure every ViT measurement point")
        after_attn, block = values[names["res1"]], values[f"block{i}"]
        previous = values.get(f"block{i - 1}", np.nan)
        rows.append(
            {
                "block": i,
                "attn_out": values[names["attn"]],
                "mlp_out": values[names["mlp"]],
                "after_attn": after_attn,
                "block_out": block,
                "delta_attn": after_attn - previous,
                "delta_mlp": block - after_attn,
            }
        )
    return pd.DataFrame(rows)


def sublayer_tests(blocks: pd.DataFrame) -> pd.DataFrame:
    """Is there more memorization in the MLP (fully-connected) sublayers than in attention?

    Two paired comparisons over blocks, each a one-sided Wilcoxon signed-rank test (MLP >
    attention): ``"Δ along the stream"`` compares ``delta_mlp`` with ``delta_attn`` (blocks
    2 … N), ``"sublayer outputs"`` compares ``mlp_out`` with ``attn_out`` (all blocks). Columns:
    ``comparison``, ``blocks``, ``mean mlp``, ``mean attention``, ``share mlp larger``, ``W``,
    ``p``.
    """
    rows = []
    for name, mlp, attn in (
        ("Δ along the stream", "delta_mlp", "delta_attn"),
        ("sublayer outputs", "mlp_out", "attn_out"),
    ):
        sub = blocks[[mlp, attn]].dropna()
        a, b = sub[mlp].to_numpy(float), sub[attn].to_numpy(float)
        if len(sub) >= 2 and np.any(a != b):
            w = _st.wilcoxon(a, b, alternative="greater")
            stat, p = float(w.statistic), float(w.pvalue)
        else:
            stat, p = np.nan, np.nan
        rows.append(
            {
                "comparison": name,
                "blocks": len(sub),
                "mean mlp": float(a.mean()) if len(a) else np.nan,
                "mean attention": float(b.mean()) if len(b) else np.nan,
                "share mlp larger": float(np.mean(a > b)) if len(a) else np.nan,
                "W": stat,
                "p": p,
            }
        )
    return pd.DataFrame(rows)


def seed_summary(tables: Sequence[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1) of ``columns`` per layer over several measurements
    of the same encoders (one table per seed), layers in the tables' order."""
    if len(tables) < 2:
        raise ValueError("a spread needs at least two measurements")
    order = list(tables[0]["layer"].astype(str))
    long = pd.concat([t.assign(layer=t["layer"].astype(str)) for t in tables], ignore_index=True)
    grouped = long.groupby("layer", sort=False)[list(columns)]
    out = grouped.mean().add_suffix(" mean").join(grouped.std(ddof=1).add_suffix(" std"))
    out = out.loc[order].reset_index()
    return out[["layer"] + [f"{c} {s}" for c in columns for s in ("mean", "std")]]


def units_above(units: pd.DataFrame, reference: pd.DataFrame, quantile: float = 0.95) -> dict:
    """How many units of a layer exceed the ``quantile`` of the reference's UnitMem (e.g. the
    same layer at random initialisation): ``above``, ``defined``, ``share`` and the
    ``threshold``. Both frames have ``unitmem`` and ``defined`` columns (one layer's units)."""
    ref = reference.loc[reference["defined"], "unitmem"].to_numpy(float)
    if len(ref) == 0:
        raise ValueError("the reference has no defined units")
    threshold = float(np.quantile(ref, quantile))
    values = units.loc[units["defined"], "unitmem"].to_numpy(float)
    above = int((values > threshold).sum())
    return {
        "above": above,
        "defined": len(values),
        "share": above / len(values) if len(values) else np.nan,
        "threshold": threshold,
    }


def unitmem_by_dataset(results: dict, layer: str, quantile: float = 0.95):
    """F3a: per data set (name -> :class:`memloc.experiments.units.UnitMemControls`) the
    layer's mean UnitMem beside its controls and the count of units above the ``quantile`` of
    the random-init units (:func:`units_above`); and the units of every encoder, stacked.
    Returns ``(summary, units)``."""
    rows, long = [], []
    for name, controls in results.items():
        ex = controls.excess().set_index("layer").loc[layer]
        trained = controls.trained.units[controls.trained.units["layer"] == layer]
        random = controls.random.units[controls.random.units["layer"] == layer]
        rows.append({"dataset": name, **ex.drop("model").to_dict(),
                     **units_above(trained, random, quantile)})  # fmt: skip
        long.append(controls.long().query("layer == @layer").assign(dataset=name))
    return pd.DataFrame(rows), pd.concat(long, ignore_index=True)


def share_test(summary: pd.DataFrame) -> tuple[float, float, str]:
    """F3a: whether the share of memorizing units (``above`` of ``defined``) differs between
    the data sets: Fisher's exact test for two (statistic: the odds ratio), else the
    chi-squared test of independence. Returns ``(statistic, p, what was tested)``."""
    from scipy import stats

    table = [[a, d - a] for a, d in summary[["above", "defined"]].to_numpy()]
    if len(table) == 2:
        stat, p = stats.fisher_exact(table)
        return (
            float(stat),
            float(p),
            ("Fisher's exact test on memorizing / other units, two-sided (statistic: odds ratio)"),
        )
    what = "chi-squared test of independence on memorizing / other units"
    if 0 in np.asarray(table).sum(axis=0):
        # No unit memorizes in any data set (or every unit does): every share is the same, the
        # statistic of the table is 0 (scipy refuses the zero expected counts).
        return 0.0, 1.0, what + " (every data set has the same share, so chi-squared is 0)"
    chi = stats.chi2_contingency(table)
    return float(chi.statistic), float(chi.pvalue), what


def unitmem_by_epsilon(results: dict, random, layer: str, quantile: float = 0.95):
    """F3c: per privacy target ε (-> :class:`memloc.experiments.units.UnitMemControls`; ∞:
    the non-private reference) the layer's UnitMem beside its controls and the count of units
    above the ``quantile`` of the shared random-init units; and every unit of the trained
    encoders and of the random initialisation, stacked. Returns ``(summary, units)``."""
    import math

    rows, long = [], []
    for eps, controls in results.items():
        ex = controls.excess().set_index("layer").loc[layer]
        trained = controls.trained.units[controls.trained.units["layer"] == layer]
        count = units_above(trained, random.units[random.units["layer"] == layer], quantile)
        label = "non-private" if math.isinf(eps) else f"ε = {eps:g}"
        rows.append({"encoder": label, "ε": eps, **ex.drop("model").to_dict(), **count})
        long.append(controls.trained.units.assign(encoder=label, eps=eps))
    long.append(random.units.assign(encoder="random init", eps=np.nan))
    return pd.DataFrame(rows), pd.concat(long, ignore_index=True)


def privacy_accounting(pairs: dict) -> pd.DataFrame:
    """F3c: what each encoder (ε target -> pair) spent, from its cache entry's DP-SGD log
    (:func:`memloc.artifacts.privacy_log`; ∞ for the non-private reference)."""
    import math

    from memloc.artifacts import privacy_log

    rows = []
    for eps, pair in pairs.items():
        log = privacy_log(pair.entries["f"])
        rows.append(
            {
                "ε target": eps,
                "ε spent": log.get("epsilon", math.inf),
                "δ": log.get("delta"),
                "noise σ": log.get("noise_multiplier"),
                "sampling rate q": log.get("sample_rate"),
                "steps": log.get("steps"),
                "clip C": log.get("max_grad_norm"),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- T2: ViT


def vit_facts(pair, result) -> str:
    """T2's sentence for the page's header: the ViT's size, its training and the images
    evaluated (``result``: the pair's LayerMemResult)."""
    enc, p, cfg = pair.f, pair.profile, result.config
    return (
        f"t2 sizes; dim {enc.dim}, {enc.depth} blocks, {enc.num_heads} heads, patch "
        f"{enc.patch_size}, {p.epochs} epochs on |S_S| = {p.n_shared}, |S_C| = "
        f"{p.n_candidate}, |S_I| = {p.n_independent}. Evaluated: "
        f"{cfg['n_points']['candidate']} candidates, K = {cfg['k_aug']} pairs of views each."
    )


def vit_claims(depth: pd.DataFrame, tests: pd.DataFrame, score: str = "contrast") -> list[dict]:
    """T2's two claims: the depth trend of the block outputs (the ViT's row of
    :func:`contrast_depth_trends`) and the MLP part of each block's change against the
    attention part (the first row of :func:`sublayer_tests`)."""
    d, stream = depth.iloc[0], tests.iloc[0]
    return [
        claim(
            "In a ViT, memorization increases in the deeper blocks",
            "per-image slope of SSLMem of the block outputs against block index, candidates vs "
            "S_I images, Welch t with a permutation over images, one-sided",
            (float(d["t"]), float(d["p"])),
            holds=bool(d["slope"] > 0),
        ),
        claim(
            "In a ViT, the fully-connected sublayers memorize more than attention",
            f"Δ {score} of the MLP part vs the attention part of each block (blocks 2..N), "
            "Wilcoxon signed-rank, one-sided",
            (float(stream["W"]), float(stream["p"])),
            holds=bool(stream["mean mlp"] > stream["mean attention"]),
        ),
    ]


def vit_notes(
    depth: pd.DataFrame, tests: pd.DataFrame, verdicts: list[dict], score: str = "contrast"
) -> list[str]:
    """T2's paragraphs under the verdicts: the numbers behind the depth and the MLP-vs-attention
    ``verdicts`` (the entries :meth:`memloc.result.Result.claims` recorded for
    :func:`vit_claims`), and the comparison of the sublayer outputs beside them."""
    d, stream, outputs = depth.iloc[0], tests.iloc[0], tests.iloc[1]
    v1, v2 = verdicts
    return [
        f"**Deeper blocks ({v1['verdict']}).** Per image, the candidates' slope against the "
        f"block index exceeds the independents' by {d['slope']:+.4f} standard deviations "
        f"per block (Welch t = {d['t']:.2f}, permutation p = {d['p']:.3g}, Holm "
        f"{v1['p_value']:.3g}); Spearman's ρ of the {d['points']} block means is "
        f"{d['rho']:+.2f} (p = {d['rho p']:.3g}); the contrast is "
        f"{d[f'{score} first']:+.4f} at block 1 and {d[f'{score} last']:+.4f} at the "
        f"last block.",
        f"**MLP more than attention ({v2['verdict']}).** Mean MLP part "
        f"{stream['mean mlp']:+.4f} against attention part {stream['mean attention']:+.4f}; "
        f"the MLP part is the larger in {100 * stream['share mlp larger']:.0f}% of "
        f"{stream['blocks']} blocks (W = {stream['W']:.0f}, p = {stream['p']:.3g}, Holm "
        f"{v2['p_value']:.3g}). The sublayer outputs: MLP {outputs['mean mlp']:+.4f}, "
        f"attention {outputs['mean attention']:+.4f}, MLP larger in "
        f"{100 * outputs['share mlp larger']:.0f}% of blocks (p = {outputs['p']:.3g}).",
    ]


# ----------------------------------------------------------------------------- T4 and A5


def measurement_seeds(profile: str, seed: int = 0, n_seeds: int | None = None) -> list[int]:
    """A5's seeds of the measurements' views: ``n_seeds`` from ``seed`` on (None: 3, or 2 at
    ``quick`` and the toy profiles)."""
    from memloc.profiles import is_small

    n = (2 if is_small(profile) else 3) if n_seeds is None else int(n_seeds)
    return [seed + i for i in range(n)]


def measure_pairs(requests, seeds: Sequence[int] = (0,)):
    """T4/A5: every encoder pair of ``requests`` (:class:`memloc.experiments.encoders.
    EncoderRequest`, trained or from the cache) and its LayerMem measured once per view seed
    (:func:`memloc.experiments.layers.pair_layermem`). Returns ``(pairs, measured)``, both by
    the requests' labels; ``measured[label]`` is (list of LayerMemResult, f), as
    :func:`contrast_depth_trends` takes it."""
    pairs, measured = {}, {}
    for request in requests:
        pair = pairs[request.label] = request.get()
        measured[request.label] = ([pair_layermem(pair, seed=s) for s in seeds], pair.f)
    return pairs, measured


def first_tables(measured: Mapping[str, tuple]) -> dict[str, tuple[pd.DataFrame, nn.Module]]:
    """T4: the LayerMem table of each label's first measurement with its encoder (label ->
    (table, encoder), as :func:`paths_by_setting` and :func:`curve_agreement` take them)."""
    return {label: (results[0].table, encoder) for label, (results, encoder) in measured.items()}


def main_paths(tables: Mapping[str, tuple[pd.DataFrame, nn.Module]]) -> dict[str, pd.DataFrame]:
    """T4: :func:`main_path` of every label's (table, encoder)."""
    return {label: main_path(table, encoder) for label, (table, encoder) in tables.items()}


def wide_by_architecture(paths: pd.DataFrame, score: str) -> dict[str, pd.DataFrame]:
    """T4's tables per architecture (the first word of a setting ``"<arch> <framework>"``):
    ``score`` per point of the forward path (rows, in forward order) and setting (columns),
    from :func:`paths_by_setting`'s stacked table."""
    out = {}
    for arch in dict.fromkeys(label.split()[0] for label in paths["setting"]):
        rows = paths[paths["setting"].str.startswith(arch + " ")]
        wide = rows.pivot(index="layer", columns="setting", values=score)
        order = [layer for layer in paths["layer"] if layer in wide.index]
        out[arch] = wide.loc[list(dict.fromkeys(order))]
    return out


def seed_summaries(measured: Mapping[str, tuple], columns: Sequence[str]) -> dict:
    """A5: per label, :func:`seed_summary` of ``columns`` over its measurements, on the
    encoder's :func:`main_path` (``measured``: as :func:`measure_pairs` returns it)."""
    return {
        label: seed_summary([main_path(r.table, encoder) for r in results], columns)
        for label, (results, encoder) in measured.items()
    }


def stacked_tables(results: Sequence) -> pd.DataFrame:
    """A5's saved table of one encoder: the LayerMem tables of its measurements, one after
    the other (in seed order)."""
    return pd.concat([r.table for r in results], keys=range(len(results)), names=["run"])


def every_encoder_check(trends: pd.DataFrame) -> PairCheck:
    """T4/A5: the page's check for :meth:`memloc.result.Result.check` from
    :func:`contrast_depth_trends`' table: testable when every encoder memorized and (where
    the probe was measured) learned; the reason names those that did not (:func:`all_trends`).
    Its markdown is that reason (empty when testable)."""
    overall = all_trends(trends, statistic="t")
    learned = [bool(v) for v in trends.get("learned", []) if pd.notna(v)]
    return PairCheck(
        overall["testable"],
        overall["reason"],
        bool(all(learned)) if learned else None,
        bool(trends["memorized"].astype(bool).all()),
        float("nan"),
        None,
        f"*{overall['reason']}*" if overall["reason"] else "",
    )


def every_encoder_claim(
    trends: pd.DataFrame, text: str, *, unit: str = "encoder", measurements: int = 1
) -> dict:
    """T4/A5's claim that the depth trend holds in every encoder (``unit``: what an encoder
    is on the page): the per-image test of :func:`contrast_depth_trends`, Holm over the
    encoders, supported when every adjusted p is below 0.05 (:func:`all_trends`: the
    smallest t, the largest adjusted p). ``measurements``: view seeds averaged per image."""
    overall = all_trends(trends, statistic="t")
    mean = f" (mean of {measurements} measurements)" if measurements > 1 else ""
    return claim(
        text,
        f"per-image slope of SSLMem{mean} against depth, candidates vs S_I images, per {unit} "
        f"({', '.join(trends['setting'])}), Welch t with a permutation over images, one-sided, "
        f"Holm over {unit}s; supported if all adjusted p < 0.05 (statistic: the smallest t, "
        f"p: the largest adjusted p); testable if every {unit} memorized and its probe beats "
        "its untrained twin's",
        (overall["statistic"], overall["p"]),
        holds=overall["holds"],
    )


def every_encoder_note(
    trends: pd.DataFrame, verdict: dict, profile: str, *, each: bool = False
) -> str:
    """T4/A5's paragraph under the verdict (``verdict``: the recorded
    :func:`every_encoder_claim`): in how many encoders the trend is significant after Holm and
    the weakest one's numbers (T4), or with ``each`` every encoder's t, adjusted p and ρ of the
    mean contrast (A5)."""
    worst = all_trends(trends, statistic="t")["worst"]
    head = f"**{verdict['verdict'].capitalize()} at profile `{profile}`.** "
    if each:
        return (
            head
            + "; ".join(
                f"{r['setting']}: t = {r['t']:+.2f} over {r['points']} points "
                f"(adjusted p = {r['p_holm']:.3g}; ρ of the mean contrast {r['rho']:+.2f})"
                for _, r in trends.iterrows()
            )
            + f". The weakest is {worst['setting']}."
        )
    held = trends[trends["p_holm"] < 0.05]["setting"].tolist()
    return (
        f"{head}The depth trend is significant after Holm in {len(held)} of {len(trends)} "
        f"encoders{' (' + ', '.join(held) + ')' if held else ''}. The weakest is "
        f"{worst['setting']}: t = {worst['t']:+.2f}, adjusted p = {worst['p_holm']:.3g} "
        f"(Spearman's ρ of its layer means {worst['rho']:+.2f}, p = {worst['rho p']:.3g})."
    )


def resnet_facts(pair, n_measurements: int) -> str:
    """A5's sentence for the page's header: the a5 sizes of ``pair`` (one of the ResNets)
    and the measurements."""
    p = pair.profile
    return (
        f"a5 sizes, {p.image_size}×{p.image_size}, {p.epochs} epochs on |S_S| = {p.n_shared}, "
        f"|S_C| = {p.n_candidate}, |S_I| = {p.n_independent}; {n_measurements} measurements of "
        f"{p.n_points} candidates with K = {p.k_aug} view pairs each."
    )
