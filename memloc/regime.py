"""Did the encoders learn, and did they memorize? The checks a result needs before its verdict.

A claim about *where* an encoder memorizes says nothing when the encoder learned nothing (its
features are no better than an untrained network's) or memorized nothing (f does not treat its
own candidates S_C differently from the independent images S_I at any layer). This module
measures both for an encoder pair, and what the training cost:

- :func:`encoder_quality`: linear-probe and kNN accuracy of several encoders (f, g, the
  untrained network of the same architecture, the supervised one) on the same labelled images.
- :func:`memorization_strength`: the S_C-vs-S_I contrast of LayerMem at every layer, as Welch t
  and one-sided p (Holm over the layers), from :func:`memloc.metrics.layermem`'s table.
- :func:`training_cost`: epochs, pairs of views per second and wall time of a cached pair.
- :func:`pair_quality`: :func:`encoder_quality` of a cached pair beside its untrained twin.

Whether a claim is testable on a pair follows from the last two
(:func:`memloc.stats.claim_testability`). Each result page runs both in one call,
:func:`check_pair` (with :func:`quality_markdown`, the page's line "f's linear probe ... vs
... for the untrained twin"); :func:`combine_checks` joins several pairs' checks and
:func:`quality_table` tabulates several pairs (T4, A5, F3c). The regime page (R0):
:func:`regime_table` measures every encoder of the book, :func:`regime_summary` and
:func:`regime_claims` are its paragraph and context claims, :func:`sweep_table` shows the sweep
the profile was chosen from.

The paper (Wang et al., NeurIPS 2024) trains its encoders to convergence on CIFAR-10; on a
laptop CPU the book must choose a regime where both checks pass (``benchmarks/regime.py``
sweeps the choices, the regime page of the book shows the book's own encoders).

Example
-------
>>> import torch
>>> from memloc.models import create
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> x, y = torch.rand(40, 1, 16, 16), torch.arange(40) % 2
>>> x[y == 1] *= 0.2  # class 1 is darker: any encoder separates it
>>> table = encoder_quality({"random": create("resnet9", in_channels=1, width=0.25)},
...                         x[:20], y[:20], x[20:], y[20:], k=5)
>>> float(table.loc["random", "probe"])
1.0
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import Tensor, nn

from memloc.probe import features, knn_accuracy, probe_predictions
from memloc.stats import claim, holm, mcnemar_test

ALPHA = 0.05


def encoder_quality(
    encoders: dict[str, nn.Module],
    train_images: Tensor,
    train_labels,
    test_images: Tensor,
    test_labels,
    *,
    layer: str | None = None,
    k: int = 20,
    seed: int = 0,
    reference: str | None = None,
) -> pd.DataFrame:
    """Linear-probe and kNN test accuracy of every encoder on the same images.

    Parameters
    ----------
    encoders : ``{name: encoder}``, e.g. f, g, an untrained one and a supervised one.
    train_images, test_images : (N, C, H, W), uint8 or float in [0, 1]; the probe and the kNN
        vote are fitted on the first and scored on the second.
    train_labels, test_labels : (N,) integer class labels.
    layer : the measurement point whose spatial mean is the feature (None: the representation).
    k : neighbours of the kNN vote (at most the number of training images; ``knn_k`` says).
    seed : the logistic regression's ``random_state``.
    reference : an encoder's name (e.g. the untrained one): then ``probe_p`` is each encoder's
        exact one-sided McNemar p that its probe beats the reference's on the same test images
        (:func:`memloc.stats.mcnemar_test`; NaN for the reference itself).

    Returns
    -------
    DataFrame
        Indexed by encoder name: ``probe`` and ``knn`` accuracy, ``knn_k``, ``n_train``,
        ``n_test`` (and ``probe_p`` with a reference).
    """
    if reference is not None and reference not in encoders:
        raise ValueError(f"reference {reference!r} is not one of the encoders {list(encoders)}")
    test_y = np.asarray(test_labels)
    if test_y.shape != (len(test_images),):
        raise ValueError(f"test_labels must be ({len(test_images)},), got {test_y.shape}")
    rows, right = {}, {}
    for name, encoder in encoders.items():
        train_x = features(encoder, train_images, layer).numpy()
        test_x = features(encoder, test_images, layer).numpy()
        right[name] = probe_predictions(train_x, train_labels, test_x, seed) == test_y
        rows[name] = {
            "probe": float(right[name].mean()),
            "knn": knn_accuracy(train_x, train_labels, test_x, test_labels, k=min(k, len(train_x))),
            "knn_k": min(k, len(train_x)),
            "n_train": len(train_x),
            "n_test": len(test_x),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    if reference is not None:
        table["probe_p"] = [
            float("nan")
            if name == reference
            else mcnemar_test(right[name], right[reference]).pvalue
            for name in table.index
        ]
    return table


def memorization_strength(table: pd.DataFrame) -> pd.DataFrame:
    """The S_C-vs-S_I contrast at every layer of a LayerMem table.

    Parameters
    ----------
    table : :attr:`memloc.metrics.LayerMemResult.table`, measured with independent images
        (columns ``contrast``, ``contrast_t``, ``contrast_p``: Welch t and one-sided p that
        the LayerMem score is higher on f's candidates S_C than on S_I, which g saw instead).

    Returns
    -------
    DataFrame
        Indexed by layer: ``contrast``, ``t``, ``p`` and ``p_holm`` (Holm over the layers), and
        ``significant`` (``p_holm`` < 0.05).
    """
    missing = {"contrast", "contrast_t", "contrast_p"} - set(table.columns)
    if missing:
        raise ValueError(
            f"the LayerMem table has no {sorted(missing)}: measure it with independent images "
            "(layermem(..., independent_images=...) or pair_layermem with n_independent > 0)"
        )
    out = pd.DataFrame(
        {
            "contrast": table["contrast"].to_numpy(float),
            "t": table["contrast_t"].to_numpy(float),
            "p": table["contrast_p"].to_numpy(float),
        },
        index=pd.Index(table["layer"], name="layer") if "layer" in table else table.index,
    )
    out["p_holm"] = holm(out["p"].to_numpy())
    out["significant"] = out["p_holm"] < ALPHA
    return out


def training_cost(entries: dict[str, str | Path]) -> pd.DataFrame:
    """Epochs, pairs of views per second (median over epochs; NaN where the log has none, as
    DP-SGD's) and training wall time of cached encoders, read from their entries' ``log.json``.

    Parameters
    ----------
    entries : ``{name: cache entry folder}``, e.g. :attr:`memloc.artifacts.EncoderPair.entries`.
    """
    rows = {}
    for name, entry in entries.items():
        path = Path(entry) / "log.json"
        try:
            log = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"no readable training log at {path} ({err}); train it") from None
        epochs = log.get("epochs", [])
        # DP-SGD's log (memloc.privacy) records no throughput, only each epoch's wall time.
        speeds = [e["pairs_per_s"] for e in epochs if "pairs_per_s" in e]
        rows[name] = {
            "epochs": len(epochs),
            "pairs_per_s": float(np.median(speeds)) if speeds else float("nan"),
            "wall_s": float(log.get("wall_s", sum(e.get("wall_s", 0.0) for e in epochs))),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def pair_quality(
    pair, *, n_train: int = 2000, n_test: int = 2000, extra: dict[str, nn.Module] | None = None
) -> pd.DataFrame:
    """:func:`encoder_quality` of a pair's f and g (g where it exists), the untrained encoder of
    the same architecture and ``extra`` encoders (e.g. the supervised f), on the pre-training
    data set: probes fitted on the split's downstream points (no encoder trained on them) and
    scored on the test split (:func:`memloc.probe.pretraining_probe_set`). ``probe_p``: each
    encoder's one-sided McNemar p against the untrained twin (the "learned" check)."""
    from memloc.artifacts import untrained_twin
    from memloc.probe import pretraining_probe_set

    probe = pretraining_probe_set(pair, n_train=n_train, n_test=n_test, seed=pair.profile.seed)
    encoders = {"f": pair.f} | ({"g": pair.g} if pair.g is not None else {})
    # f's own architecture (your checkpoint's too), seeded as the cache seeds f and g.
    encoders["untrained"] = untrained_twin(pair.f, seed=pair.profile.seed)
    encoders |= extra or {}
    return encoder_quality(
        encoders,
        probe.train_images,
        probe.train_labels,
        probe.test_images,
        probe.test_labels,
        reference="untrained",
    )


# Targets the book's cpu profile is chosen to meet (issue 11): every SSL encoder's probe at
# least 5 points above the untrained encoder's, and the contrast at the last layer t >= 5.
TARGET_MARGIN = 0.05
TARGET_T = 5.0


def pair_regime(pair, *, n_probe: int = 2000) -> tuple[dict, pd.Series]:
    """Quality, memorization strength and cost of one cached encoder (pair).

    Returns
    -------
    row, t_by_layer
        ``row``: probe and kNN accuracy of f and of the untrained encoder, the probe margin,
        the contrast t at the last layer that is not a residual sum
        (``last_layer``) and its maximum over layers, the number of layers
        whose contrast is significant after Holm, the smallest Holm p (None for an encoder
        without g: no contrast), the training's pairs/s and wall time, and whether the book's
        targets are met. ``t_by_layer``: the contrast t per layer (empty without g).
    """
    from memloc.experiments.layers import pair_layermem

    quality = pair_quality(pair, n_train=n_probe, n_test=n_probe)
    cost = training_cost(pair.entries)
    row = {
        "probe_f": float(quality.loc["f", "probe"]),
        "probe_untrained": float(quality.loc["untrained", "probe"]),
        "margin": float(quality.loc["f", "probe"] - quality.loc["untrained", "probe"]),
        "probe_p": float(quality.loc["f", "probe_p"]),
        "knn_f": float(quality.loc["f", "knn"]),
        "knn_untrained": float(quality.loc["untrained", "knn"]),
        "pairs_per_s": float(cost["pairs_per_s"].mean()),
        "train_wall_s": float(cost["wall_s"].max()),
    }
    t_by_layer = pd.Series(dtype=float)
    if pair.g is not None:
        table = pair_layermem(pair).table
        strength = memorization_strength(table)
        t_by_layer = strength["t"]
        # The last layer proper: the last measurement point that is not a residual sum
        # (ResNet9: 8, ResNet18: layer4.1, a ViT: its last MLP).
        last = table.loc[table["kind"] != "residual", "layer"].iloc[-1]
        row |= {
            "last_layer": last,
            "t_last": float(strength.loc[last, "t"]),
            "t_max": float(strength["t"].max()),
            "layers_significant": int(strength["significant"].sum()),
            "min_p_holm": float(strength["p_holm"].min()),
        }
    row["meets_targets"] = bool(
        row["margin"] >= TARGET_MARGIN and row.get("t_last", TARGET_T) >= TARGET_T
    )
    return row, t_by_layer


# ------------------------------------------------------------------ what a result page reports


def quality_markdown(quality: pd.DataFrame, encoders=None, *, reference: str = "untrained") -> str:
    """One sentence per encoder: its linear-probe and kNN accuracy beside the untrained twin's.

    The "learned" half of the testability check (issue 11): a claim about where an SSL encoder
    memorizes (Wang et al., NeurIPS 2024) says nothing when its features are no better than
    random weights', so every result page shows this line for its encoders.

    Parameters
    ----------
    quality : :func:`encoder_quality` or :func:`pair_quality`'s table (columns ``probe``,
        ``knn``; optional ``n_train``, ``n_test``), with a row ``reference``.
    encoders : rows to report (None: every row but the reference), in that order.
    reference : the row of the untrained encoder of the same architecture.

    Returns
    -------
    str
        e.g. ``"f's linear probe 0.843 vs 0.788 for the untrained twin (+5.5 points); kNN 0.690
        vs 0.713 (-2.3 points)."``, one such sentence per encoder, then the sizes.
    """
    if reference not in quality.index:
        raise ValueError(f"the quality table has no {reference!r} row to compare with")
    names = [n for n in quality.index if n != reference] if encoders is None else list(encoders)
    missing = [n for n in names if n not in quality.index]
    if missing or not names:
        raise ValueError(f"the quality table has no row {missing or 'besides the reference'}")
    base = quality.loc[reference]
    sentences = []
    for name in names:
        row = quality.loc[name]
        probe_gain = 100 * (float(row["probe"]) - float(base["probe"]))
        knn_gain = 100 * (float(row["knn"]) - float(base["knn"]))
        p_text = ""
        if "probe_p" in quality.columns and not np.isnan(float(row["probe_p"])):
            p_text = f", one-sided McNemar p = {float(row['probe_p']):.2g}"
        sentences.append(
            f"{name}'s linear probe {float(row['probe']):.3f} vs {float(base['probe']):.3f} for "
            f"the untrained twin ({probe_gain:+.1f} points{p_text}); kNN "
            f"{float(row['knn']):.3f} vs {float(base['knn']):.3f} ({knn_gain:+.1f} points)."
        )
    if {"n_train", "n_test"} <= set(quality.columns):
        sentences.append(
            f"(Fitted on {int(base['n_train'])} images, scored on {int(base['n_test'])}.)"
        )
    return " ".join(sentences)


def learned_reason(
    probe_accuracy: float, untrained_accuracy: float, probe_p: float | None = None
) -> str:
    """The "did not learn" part of a *not testable here* reason (as
    :func:`memloc.stats.claim_testability` words it), or "" when the probe beats the untrained
    encoder's (significantly, one-sided McNemar p below ``ALPHA``, when ``probe_p`` is given)."""
    better = float(probe_accuracy) > float(untrained_accuracy)
    if probe_p is not None and not np.isnan(probe_p):
        better = better and float(probe_p) < ALPHA
    if better:
        return ""
    p_text = "" if probe_p is None else f"; one-sided McNemar p = {float(probe_p):.3g}"
    return (
        f"the encoders did not learn (probe accuracy {float(probe_accuracy):.3f}, untrained "
        f"{float(untrained_accuracy):.3f}{p_text})"
    )


@dataclass(frozen=True)
class PairCheck:
    """Did a pair learn and memorize? What a result page shows and passes to ``record_claim``.

    Attributes
    ----------
    testable, reason : as :class:`memloc.stats.ClaimTestability` (``reason`` "" if testable).
    learned : f's probe beats the untrained twin's (None: not checked).
    memorized : some layer's S_C-vs-S_I contrast is significant after Holm over the layers
        (None: not checked, e.g. f trained alone).
    smallest_p : the smallest Holm-adjusted contrast p (NaN when not checked).
    quality : :func:`pair_quality`'s table (None when the learned check is skipped).
    markdown : the page's paragraph: the quality sentence, the memorization line and, when not
        testable, the reason.
    """

    testable: bool
    reason: str
    learned: bool | None
    memorized: bool | None
    smallest_p: float
    quality: pd.DataFrame | None
    markdown: str

    @property
    def probe(self) -> tuple[float | None, float | None]:
        """(f's probe accuracy, the untrained twin's), or (None, None) when not measured."""
        if self.quality is None:
            return None, None
        return float(self.quality.loc["f", "probe"]), float(self.quality.loc["untrained", "probe"])


def check_pair(
    pair,
    *,
    learned: bool = True,
    memorized: bool = True,
    layermem=None,
    quality: pd.DataFrame | None = None,
    layers=None,
    seed: int = 0,
    name: str = "",
) -> PairCheck:
    """Both checks a claim about where a pair memorizes needs, in one call per result page.

    - **learned** (``learned=True``): :func:`pair_quality` (f's, g's and the untrained twin's
      linear probe and kNN on the split's downstream images, scored on the test split); f must
      beat the twin's probe.
    - **memorized** (``memorized=True``, needs g): T1's measurement of the pair
      (:func:`memloc.experiments.layers.pair_layermem`, cached, so it is free when T1 ran with
      the same sizes; or ``layermem``, a result already measured) and
      :func:`memloc.experiments.layers.pair_testability`: some layer's S_C-vs-S_I contrast is
      significant after Holm over the layers (``layers``: only those points).

    Parameters
    ----------
    pair : a :class:`memloc.artifacts.EncoderPair`.
    layermem, quality : measurements already made (LayerMemResult, :func:`pair_quality`'s
        table), used instead of measuring them again.
    seed : seed of the views of the LayerMem measurement (T1's default: 0).
    name : what the pair is on the page (e.g. ``"SSL"``), prefixed to the paragraph.
    """
    from memloc.experiments.layers import pair_layermem, pair_testability

    if not (learned or memorized):
        raise ValueError("check_pair needs learned=True, memorized=True or both")
    if memorized and pair.g is None and layermem is None:
        raise ValueError(
            "the pair has no g, so memorization (S_C vs S_I) cannot be checked; "
            "pass memorized=False"
        )
    if learned and quality is None:
        quality = pair_quality(pair)
    quality = quality if learned else None
    probe = untrained = probe_p = None
    if quality is not None:
        probe, untrained = (
            float(quality.loc["f", "probe"]),
            float(quality.loc["untrained", "probe"]),
        )
        if "probe_p" in quality.columns:
            probe_p = float(quality.loc["f", "probe_p"])
    lines = [quality_markdown(quality)] if quality is not None else []
    if memorized:
        result = layermem if layermem is not None else pair_layermem(pair, seed=seed)
        check = pair_testability(
            result, layers, probe_accuracy=probe, untrained_accuracy=untrained, probe_p=probe_p
        )
        testable, reason, is_learned = check.testable, check.reason, check.learned
        is_memorized, smallest = check.memorized, check.smallest_p
        lines.append(
            f"Memorized: {'yes' if is_memorized else 'no'} (smallest Holm-adjusted p of the "
            f"per-layer S_C-vs-S_I contrast: {smallest:.3g})."
        )
    else:
        why = learned_reason(probe, untrained, probe_p)
        testable, is_learned, is_memorized, smallest = not why, not why, None, float("nan")
        reason = f"Not testable here: {why}." if why else ""
    if not testable:
        lines.append(f"*{reason}*")
    prefix = f"**{name}.** " if name else ""
    return PairCheck(
        testable, reason, is_learned, is_memorized, smallest, quality, prefix + " ".join(lines)
    )


def combine_checks(checks: dict) -> tuple[bool, str]:
    """Testable when every pair's check passes; the reason names the pairs that fail.

    ``checks`` maps a page's name for a pair (``"SSL"``, ``"ResNet18"``) to its
    :class:`PairCheck` (or any object with ``testable`` and ``reason``). For claims that need
    every pair, e.g. T4's "in all frameworks".
    """
    failed = {label: c.reason for label, c in checks.items() if not c.testable}
    if not failed:
        return True, ""
    parts = [
        f"{label}: {reason.removeprefix('Not testable here: ').rstrip('.')}"
        for label, reason in failed.items()
    ]
    return False, "Not testable here: " + "; ".join(parts) + "."


def quality_table(pairs: dict) -> pd.DataFrame:
    """:func:`pair_quality` of several pairs in one table (T4, A5): per pair, f's and the
    untrained twin's probe and kNN accuracy, ``probe p`` (one-sided McNemar against the twin),
    the probe margin in points and ``learned`` (margin > 0 and ``probe p`` < ``ALPHA``)."""
    rows = {}
    for label, pair in pairs.items():
        q = pair_quality(pair)
        rows[label] = {
            "probe f": float(q.loc["f", "probe"]),
            "probe untrained": float(q.loc["untrained", "probe"]),
            "probe p": float(q.loc["f", "probe_p"]),
            "knn f": float(q.loc["f", "knn"]),
            "knn untrained": float(q.loc["untrained", "knn"]),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out["probe margin (points)"] = 100 * (out["probe f"] - out["probe untrained"])
    out["learned"] = (out["probe f"] > out["probe untrained"]) & (out["probe p"] < ALPHA)
    return out


def regime_table(requests, *, n_probe: int = 2000):
    """R0: :func:`pair_regime` of every encoder the book trains (``requests``:
    :class:`memloc.experiments.encoders.EncoderRequest` list), one row each with its label,
    framework, architecture, width, training images and epochs. Returns ``(table, t by layer
    per f/g pair, encoder hashes)``."""
    rows, t_by_layer, hashes = [], {}, {}
    for request in requests:
        pair = request.get()
        p = pair.profile
        row, t = pair_regime(pair, n_probe=n_probe)
        rows.append(
            {
                "encoder": request.label,
                "framework": request.framework,
                "arch": p.arch,
                "width": p.width,
                "images": p.n_shared + p.n_candidate,
                "epochs": p.epochs,
                "pair": pair.g is not None,
                **row,
            }
        )
        if len(t):
            t_by_layer[request.label] = t
        hashes[request.label] = pair.hashes
    return pd.DataFrame(rows), t_by_layer, hashes


# ------------------------------------------------------------------------- the R0 page


def regime_summary(table: pd.DataFrame, profile: str) -> str:
    """R0's paragraph: how many SSL encoders beat their untrained twin's probe by the target
    margin and how many f/g pairs reach the target t at the last layer, with the smallest of
    each (``table``: :func:`regime_table`)."""
    ssl = table[table["framework"] != "supervised"]
    learned = ssl["margin"] >= TARGET_MARGIN
    pairs = ssl[ssl["pair"]]
    strong = pairs["t_last"] >= TARGET_T
    text = (
        f"At the `{profile}` profile, **{int(learned.sum())} of {len(ssl)}** SSL encoders beat "
        f"their untrained twin's probe by at least {100 * TARGET_MARGIN:.0f} points (smallest "
        f"margin {100 * ssl['margin'].min():+.1f} points, "
        f"`{ssl.loc[ssl['margin'].idxmin(), 'encoder']}`), and **{int(strong.sum())} of "
        f"{len(pairs)}** f/g pairs reach t ≥ {TARGET_T:g} at the last layer (smallest t = "
        f"{pairs['t_last'].min():.1f}, `{pairs.loc[pairs['t_last'].idxmin(), 'encoder']}`)."
    )
    if not (learned.all() and strong.all()):
        text += (
            "\n\nThe encoders that miss a target are named in the table; the result pages that "
            "use them say so beside their verdicts."
        )
    return text


def regime_claims(table: pd.DataFrame) -> list[dict]:
    """R0's context claims, one per encoder of :func:`regime_table`: it learned (its probe
    is above its untrained twin's on the same test images; statistic: the margin, p: the
    exact one-sided McNemar test, the "learned" check of every result page)."""
    return [
        claim(
            f"context: {row.encoder} learned (probe above its untrained twin)",
            "linear-probe accuracy minus the untrained encoder's, on the same test images; "
            "exact McNemar test, one-sided",
            statistic=row.margin,
            p_value=row.probe_p,
            holds=row.margin > 0 and row.probe_p < ALPHA,
            context=True,
        )
        for row in table.itertuples()
    ]


def sweep_table(path: str | Path, profile: str = "cpu") -> pd.DataFrame:
    """The regime sweep behind a profile (``benchmarks/regime.py``'s CSV at ``path``), one row
    per configuration and framework, for the R0 page.

    Each row: the experiment whose table it starts from (``main``: the profile itself), what it
    changes (``changes``: the overrides whose value differs from the profile's today), f's probe
    and the untrained twin's, the margin in points, the contrast t at the last layer that is not
    a residual sum (as :func:`pair_regime`'s ``t_last``, the layer read from the architecture's
    measurement points) and its maximum, the training's wall time per encoder (f and g ran side
    by side on 2 cores) and whether both targets are met.
    """
    from memloc.artifacts import encoder_spec
    from memloc.models import create
    from memloc.profiles import load_profile

    sweep = pd.read_csv(path)
    rows = []
    for row in sweep.itertuples():
        overrides = json.loads(row.overrides)
        experiment = overrides.pop("experiment", None)
        spec = encoder_spec(
            load_profile(profile, experiment=experiment, **overrides),
            "f",
            row.framework,
            n_total=60_000,  # the split's size does not change the architecture
            in_channels=1,
        )
        points = create(spec.arch, **spec.arch_kwargs).measurement_points()
        last = [point.name for point in points if point.kind != "residual"][-1]
        t_by_layer = json.loads(row.t_by_layer)
        margin = float(row.probe_f) - float(row.probe_untrained)
        t_last = float(t_by_layer[last])
        base = load_profile(profile, experiment=experiment).to_dict()
        changes = {
            k: v
            for k, v in overrides.items()
            if k != "snapshot_epochs" and json.dumps(v) != json.dumps(base.get(k))
        }
        if "recipes" in changes:  # only the row's framework's recipe
            own = changes.pop("recipes").get(row.framework)
            changes |= {f"{row.framework} {k}": v for k, v in (own or {}).items()}
        rows.append(
            {
                "configuration": row.config,
                "framework": row.framework,
                "experiment": experiment or "main",
                "changes": ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(changes.items()))
                or "none (the profile's recipe)",
                "probe f": float(row.probe_f),
                "probe untrained": float(row.probe_untrained),
                "margin (points)": round(100 * margin, 1),
                "last layer": last,
                "t last layer": t_last,
                "t max": float(row.t_max),
                "training (s)": round(float(row.train_wall_s)),
                "meets targets": bool(margin >= TARGET_MARGIN and t_last >= TARGET_T),
            }
        )
    return pd.DataFrame(rows)
