"""What the unit-level result notebooks (F1, F2, F3a-c, A1, A2, A3) measure, in one place.

Those notebooks ask the same questions of the same encoders:

- UnitMem of an encoder f on its own candidates, always beside its two controls (issue 3):
  the same architecture at random initialisation on the same images, and f on held-out images
  it never saw. Memorization is read as the excess over them (:func:`unitmem_with_controls`).
- Per-image SSLMem of the candidates (and of held-out images), to rank images
  (:func:`point_sslmem`).
- Per-layer comparisons with one-sided tests, and one verdict over a group of layers
  (:func:`compare_layers`, :func:`paired_tests`, :func:`all_layers_test`).
- Each page's tables, claims (:func:`memloc.stats.claim`) and notes under its verdicts, so
  that the notebooks hold parameters, calls, figures and prose: F1 ``ssl_sl_*``, F2
  ``classmem_*``, F3a ``dataset_share_*``, F3c ``privacy_*``, F3b ``driven_*``, A1
  ``over_training_*``, A2 ``top_least_*``, A3 ``mu_max_*`` and ``dominance_*``.

Every UnitMem measurement of the book uses the same views for every encoder
(:func:`unitmem_policy`), so SSL, SL and the controls differ only in their weights.

Measurements can be stored on disk (``cache_dir``; the helpers that take a pair use the
encoder cache folder, ``<cache>/unitmem-<key>.npz``). A stored measurement is keyed by a hash
of everything it depends on: the encoder's weights, the images, the settings and the source
code of memloc's activations, augmentations, models and metrics. Several notebooks measure the
same encoders on the same images; the second one reads the first one's result instead of
running the encoder. Per-image SSLMem comes from the layer results' shared, stored measurement
(:func:`memloc.experiments.layers.pair_layermem`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats as _st
from torch import Tensor, nn

from memloc.activations import resolve_layers
from memloc.artifacts import cache_root, profile_policy, random_encoder, untrained_twin
from memloc.augment import AugmentPolicy
from memloc.experiments.layers import pair_layermem
from memloc.fingerprint import fingerprint
from memloc.metrics import (
    LayerMemResult,
    UndefinedUnitsWarning,
    UnitMemResult,
    classmem,
    excess_over_controls,
    mean_activations,
    mu_max_overlap,
)
from memloc.profiles import Profile, load_profile
from memloc.stats import (
    TestResult,
    bootstrap_ci,
    claim,
    holm,
    intersection_union,
    ks_test,
    spearman_trend,
    top_indices,
    welch_one_sided,
)
from memloc.utils import atomic_write_bytes

MODEL_LABELS = {"simclr": "SSL", "supervised": "SL"}
"""How figures and tables name an encoder pair's framework."""

ENCODERS = ("trained", "held-out", "random init")
"""The three UnitMem measurements of one encoder: f on its candidates and the two controls."""

CACHE_PREFIX = "unitmem-"
"""Stored mean activations are ``<cache>/unitmem-<key>.npz`` (beside the encoder entries)."""

# The code that computes the stored mean activations (with the encoders' own modules).
MEASURING = ("memloc.metrics.unitmem", "memloc.augment")


# ------------------------------------------------------------------------------ basics


def unitmem_policy(profile: str | Profile) -> AugmentPolicy:
    """The views of every UnitMem measurement in the book: the profile's SimCLR policy.

    The SSL encoder trained with these views; the SL encoder and both controls are measured
    with the same ones so that only the weights differ between the encoders compared. (On
    grey images the colour jitter is skipped, so the stronger jitter of the authors' UnitMem
    scripts would make no difference there.)
    """
    return profile_policy(load_profile(profile), "simclr")


def initial_encoder(profile: str | Profile, in_channels: int) -> nn.Module:
    """The profile's architecture at random initialisation, seeded with the training seed.

    The cache builds f and g from the same seed before training, so this is exactly f (and g)
    at epoch 0: the random-initialisation control, and the first point of UnitMem over training.
    """
    profile = load_profile(profile)
    return random_encoder(profile, seed=profile.seed, in_channels=in_channels)


def deep_layers(layers) -> list[str]:
    """The deep half of a list of measurement points (names in forward order).

    For ResNet9 (``1, 2, 3, 4, Res2, 5, 6, 7, 8, Res6``) these are ``5, 6, 7, 8, Res6``: the
    points after the first residual connection. Fixed before looking at any result.
    """
    names = [getattr(p, "name", p) for p in layers]
    if len(names) < 2:
        raise ValueError(f"need at least two layers to split into shallow and deep, got {names}")
    return [str(n) for n in names[len(names) // 2 :]]


def last_conv_layer(encoder: nn.Module) -> str:
    """The last measurement point of kind ``"conv"`` (ResNet9: ``"8"``, the layer of the
    paper's UnitMem-over-training figure); for encoders without one, the last unit point."""
    points = resolve_layers(encoder, None, units=True)
    convs = [p.name for p in points if p.kind == "conv"]
    return convs[-1] if convs else points[-1].name


# ------------------------------------------------------------------------------ disk cache


def _update_tensor(h, t: Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())


def measurement_key(
    kind: str,
    encoders: list[nn.Module],
    images: list[Tensor],
    settings: dict,
    code: tuple[str, ...] = MEASURING,
):
    """A hash of a measurement's inputs: encoder weights (and buffers), images (any tensors:
    labels too), ``settings`` (JSON-able) and the code that measures
    (:func:`memloc.fingerprint.fingerprint` of the modules ``code`` and the encoders')."""
    h = hashlib.sha256(kind.encode() + b"\0" + fingerprint(*code, *encoders).encode())
    for encoder in encoders:
        h.update(type(encoder).__name__.encode())
        for name, t in sorted(encoder.state_dict().items()):
            h.update(name.encode())
            _update_tensor(h, t)
    for x in images:
        _update_tensor(h, x)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def _policy_settings(policy) -> dict | None:
    """The policy as JSON for a cache key, or None when it cannot be described (no caching)."""
    if policy is None:
        return {}
    to_dict = getattr(policy, "to_dict", None)
    return to_dict() if callable(to_dict) else None


def _measurement_cache(cache: bool) -> Path | None:
    return cache_root() if cache else None


# ------------------------------------------------------------------------------ UnitMem


def _unitmem_from_mu(mu, points, n_points: int, config: dict, rest: str) -> UnitMemResult:
    """A UnitMemResult from stored mean activations: the metric's own ``rescore`` computes the
    scores, exactly as :func:`memloc.metrics.unitmem` would."""
    stub = UnitMemResult(pd.DataFrame(), mu, np.arange(n_points), "unitmem", points, config)
    with warnings.catch_warnings():
        # Undefined units (dead ReLUs, common at random initialisation) are counted in the
        # tables (``defined``); the warning would only repeat that on every call.
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        return stub.rescore(rest)


def measure_unitmem(
    encoder: nn.Module,
    images: Tensor,
    *,
    k_aug: int,
    policy,
    rest: str = "mean",
    seed: int = 0,
    layers=None,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
) -> UnitMemResult:
    """:func:`memloc.metrics.unitmem`, reading and writing ``cache_dir`` when given.

    Parameters
    ----------
    encoder, images, k_aug, policy, rest, seed, layers, batch_size : as for
        :func:`memloc.metrics.unitmem` (``layers`` None: the encoder's unit points).
    cache_dir : folder for stored mean activations (None: always measure). Only the mean
        activations are stored, so ``rest`` can change without measuring again.

    Returns
    -------
    UnitMemResult
        Identical to ``unitmem(encoder, images, ...)``; undefined units are not warned about
        (their ``defined`` is False and their score NaN).
    """
    points = resolve_layers(encoder, layers, units=True)
    names = [p.name for p in points]
    n = int(images.shape[0])
    config = {"k_aug": int(k_aug), "seed": seed, "n_points": n}
    path = None
    policy_settings = _policy_settings(policy)
    if cache_dir is not None and policy_settings is not None:
        settings = {"k_aug": int(k_aug), "policy": policy_settings, "seed": seed, "layers": names}
        key = measurement_key("unitmem", [encoder], [images], settings)
        path = Path(cache_dir) / f"{CACHE_PREFIX}{key}.npz"
        if path.exists():
            with np.load(path) as stored:
                mu = {name: stored[name] for name in names}
            return _unitmem_from_mu(mu, points, n, config, rest)
    _, mu = mean_activations(
        encoder, images, layers=names, k_aug=k_aug, policy=policy, seed=seed, batch_size=batch_size
    )
    if path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **mu)
        atomic_write_bytes(path, buffer.getvalue())
    return _unitmem_from_mu(mu, points, n, config, rest)


@dataclass
class UnitMemControls:
    """UnitMem of one encoder on its own training images, beside its two controls.

    Attributes
    ----------
    model : ``"SSL"`` or ``"SL"`` (figure labels).
    trained : f on N of its candidates.
    heldout : f on N held-out images (neither f nor g saw them).
    random : the same architecture at random initialisation on the same N candidates.
    config : N, K, rest, seed.
    """

    model: str
    trained: UnitMemResult
    heldout: UnitMemResult
    random: UnitMemResult
    config: dict = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return [p.name for p in self.trained.layers]

    def long(self) -> pd.DataFrame:
        """One row per unit and measurement: ``model``, ``encoder`` (trained, held-out,
        random init), ``layer``, ``unit``, ``unitmem``, ``defined``, ``argmax``. The
        ``label`` column names the distribution in figures (``"SSL"``, ``"SSL held-out"``,
        ``"random init"``)."""
        frames = []
        for encoder, result in zip(
            ENCODERS, (self.trained, self.heldout, self.random), strict=True
        ):
            u = result.units[["layer", "unit", "unitmem", "defined", "argmax"]].copy()
            label = {"trained": self.model, "held-out": f"{self.model} held-out"}.get(encoder)
            u.insert(0, "label", label or encoder)
            u.insert(0, "encoder", encoder)
            u.insert(0, "model", self.model)
            frames.append(u)
        return pd.concat(frames, ignore_index=True)

    def excess(self) -> pd.DataFrame:
        """Per layer: mean UnitMem, the controls' means, the excess over each (with one-sided
        Welch p-values over units) and ``excess``, the smaller of the two
        (:func:`memloc.metrics.excess_over_controls`)."""
        table = excess_over_controls(self.trained, {"random": self.random, "heldout": self.heldout})
        table.insert(0, "model", self.model)
        return table

    def per_unit(self) -> pd.DataFrame:
        """One row per unit of f: ``unitmem`` on its candidates, ``heldout_unitmem`` (the same
        unit on held-out images), ``random_mean`` (mean over the layer's units at random
        initialisation), ``excess_heldout`` = unitmem - heldout_unitmem (paired: the same
        unit), ``excess_random`` = unitmem - random_mean, ``defined`` (on both image sets)."""
        t = self.trained.units.set_index(["layer", "unit"])
        h = self.heldout.units.set_index(["layer", "unit"]).reindex(t.index)
        r = self.random.units
        random_mean = r[r["defined"]].groupby("layer", sort=False)["unitmem"].mean()
        out = pd.DataFrame(
            {
                "unitmem": t["unitmem"],
                "heldout_unitmem": h["unitmem"],
                "defined": t["defined"] & h["defined"],
            }
        ).reset_index()
        out["random_mean"] = out["layer"].map(random_mean)
        out["excess_heldout"] = out["unitmem"] - out["heldout_unitmem"]
        out["excess_random"] = out["unitmem"] - out["random_mean"]
        out.insert(0, "model", self.model)
        return out


def unitmem_with_controls(
    pair,
    *,
    n_points: int | None = None,
    k_aug: int | None = None,
    rest: str = "mean",
    seed: int | None = None,
    random: UnitMemResult | None = None,
    cache: bool = True,
) -> UnitMemControls:
    """UnitMem of ``pair.f`` on its candidates, on held-out images and at random initialisation.

    Parameters
    ----------
    pair : an :class:`memloc.artifacts.EncoderPair` (SimCLR or supervised).
    n_points, k_aug, seed : N images per set, K augmentations, the seed of the views (None:
        the profile's ``n_points``, ``k_aug`` and ``seed``). Both image sets have N images:
        UnitMem's baseline grows with N, so the sets must be equally large.
    rest : ``"mean"`` (paper) or ``"median"`` (authors' scripts).
    random : an already measured random-initialisation control on the same candidates (the
        SSL and SL pairs of a profile share their split, so one measurement serves both).
    cache : store and reuse the mean activations in the encoder cache folder.

    Raises
    ------
    ValueError
        When fewer than N held-out images exist, or ``random`` was measured on another N.
    """
    profile = pair.profile
    n = int(n_points or profile.n_points)
    k = int(k_aug if k_aug is not None else profile.k_aug)
    seed = int(profile.seed if seed is None else seed)
    policy = unitmem_policy(profile)
    candidates = pair.images("candidate", n)
    heldout = pair.images("heldout", n)
    if len(candidates) < n or len(heldout) < n:
        raise ValueError(
            f"UnitMem with controls needs {n} candidates and {n} held-out images; the profile "
            f"has {len(candidates)} and {len(heldout)}: lower n_points"
        )
    cache_dir = _measurement_cache(cache)
    kwargs = dict(k_aug=k, policy=policy, rest=rest, seed=seed, cache_dir=cache_dir)
    trained = measure_unitmem(pair.f, candidates, **kwargs)
    held = measure_unitmem(pair.f, heldout, **kwargs)
    if random is None:
        # f's own architecture at the training seed: f at epoch 0 for a cached pair.
        init = untrained_twin(pair.f, seed=profile.seed)
        random = measure_unitmem(init, candidates, **kwargs)
    elif len(random.groups) != n:
        raise ValueError(f"the random-init control was measured on {len(random.groups)} images")
    model = MODEL_LABELS.get(pair.framework, pair.framework)
    config = {"n_points": n, "k_aug": k, "rest": rest, "seed": seed}
    return UnitMemControls(model, trained, held, random, config)


def classmem_beside_unitmem(
    encoder: nn.Module,
    images: Tensor,
    labels: Tensor,
    unitmem_result: UnitMemResult,
    *,
    model: str,
    k_aug: int = 0,
    policy=None,
    rest: str = "mean",
    seed: int = 0,
) -> pd.DataFrame:
    """ClassMem and UnitMem of every unit of one encoder, side by side (F2).

    Parameters
    ----------
    encoder, images, labels : the encoder and the images ``unitmem_result`` was measured on,
        with their class labels.
    unitmem_result : UnitMem of ``encoder`` on ``images``.
    model : label for figures (``"SSL"``, ``"SL"``, ``"random init"``).
    k_aug, policy : ClassMem's augmentations; 0 (default) as in the authors' scripts.

    Returns
    -------
    DataFrame
        ``model, layer, unit, unitmem, classmem, difference`` (unitmem - classmem) and
        ``defined`` (both scores defined).
    """
    if len(unitmem_result.groups) != len(images):
        raise ValueError(
            f"unitmem_result scores {len(unitmem_result.groups)} images, got {len(images)}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        cm = classmem(encoder, images, labels, k_aug=k_aug, policy=policy, rest=rest, seed=seed)
    u = unitmem_result.units.set_index(["layer", "unit"])
    c = cm.units.set_index(["layer", "unit"]).reindex(u.index)
    out = pd.DataFrame(
        {
            "unitmem": u["unitmem"],
            "classmem": c["classmem"],
            "defined": u["defined"] & c["defined"],
        }
    ).reset_index()
    out["difference"] = out["unitmem"] - out["classmem"]
    out.insert(0, "model", model)
    return out


def classmem_means(scores: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    """F2's per-layer table: mean UnitMem, ClassMem and their difference over the defined units
    of each model (SSL, SL, random init), one row per layer, columns ``"<model> <score>"``."""
    defined = scores[scores["defined"]]
    means = defined.pivot_table(
        index="layer",
        columns="model",
        values=["unitmem", "classmem", "difference"],
        aggfunc="mean",
        sort=False,
    ).reindex(layers)
    order = [
        (v, m) for m in ("SSL", "SL", "random init") for v in ("unitmem", "classmem", "difference")
    ]
    means = means[[c for c in order if c in means.columns]]
    return means.reset_index().set_axis(["layer"] + [f"{m} {v}" for v, m in means.columns], axis=1)


def classmem_unitmem_tests(scores: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    """F2's tests per layer, over units: paired one-sided t of UnitMem > ClassMem for the SSL
    units and the random-init ones, of ClassMem > UnitMem for the SL units, and a one-sided
    Welch t of UnitMem − ClassMem, SSL units above SL units. One row per layer, with ``deep``."""
    by = {m: scores[scores["model"] == m] for m in ("SSL", "SL", "random init")}
    ssl = paired_tests(by["SSL"], "unitmem", "classmem", layers=layers, alternative="greater")
    sl = paired_tests(by["SL"], "classmem", "unitmem", layers=layers, alternative="greater")
    rnd = paired_tests(
        by["random init"], "unitmem", "classmem", layers=layers, alternative="greater"
    )
    contrast = compare_layers(by["SSL"], by["SL"], value="difference", layers=layers)
    deep = deep_layers(layers)
    return pd.DataFrame(
        {
            "layer": layers,
            "deep": [layer in deep for layer in layers],
            "SSL UM−CM": ssl["mean_difference"],
            "SSL t": ssl["t"],
            "SSL p": ssl["p"],
            "SL CM−UM": sl["mean_difference"],
            "SL t": sl["t"],
            "SL p": sl["p"],
            "random UM−CM": rnd["mean_difference"],
            "SSL−SL t": contrast["t"],
            "SSL−SL p": contrast["welch_p"],
        }
    )


def top_least_tests(measured: dict[str, pd.DataFrame], layers: list[str]) -> pd.DataFrame:
    """A2's tests: per encoder of ``measured`` (name -> :func:`top_least_unitmem`'s table) and
    layer, the one-sided Welch test of UnitMem, Top-k units above Least-k ones
    (:func:`compare_layers`), with columns ``Top-k`` and ``Least-k`` for the two means."""
    frames = [
        compare_layers(m[m["set"] == "Top-k"], m[m["set"] == "Least-k"], layers=layers).assign(
            encoder=name
        )
        for name, m in measured.items()
    ]
    tests = pd.concat(frames, ignore_index=True)
    return tests.rename(columns={"mean_a": "Top-k", "mean_b": "Least-k"})


def gap_against_heldout(trained: pd.DataFrame, heldout: pd.DataFrame, layers) -> pd.DataFrame:
    """A2's control, per unit: the Top-k minus Least-k gap of UnitMem on the candidates
    (``trained``) against the same unit's gap on held-out images (``heldout``), tested per
    layer with a paired one-sided t (:func:`paired_tests`, candidates larger)."""
    gaps = {}
    for name, m in (("f, candidates", trained), ("f, held-out", heldout)):
        wide = m[m["defined"]].pivot_table(index=["layer", "unit"], columns="set", values="unitmem")
        gaps[name] = wide["Top-k"] - wide["Least-k"]
    gap = pd.concat(gaps, axis=1).dropna().reset_index()
    return paired_tests(gap, "f, candidates", "f, held-out", layers=layers)


def driven_spearman(driven: dict[str, tuple[pd.DataFrame, pd.Series]], layers) -> pd.DataFrame:
    """F3b: per encoder (``name -> (driven UnitMem per image and layer, SSLMem per image)``)
    and layer, Spearman's ρ of the driven units' UnitMem against SSLMem, one-sided (greater),
    over the images where both exist."""
    rows = []
    for name, (frame, scores) in driven.items():
        for layer in layers:
            x = pd.concat([scores.rename("sslmem"), frame[layer].rename("driven")], axis=1)
            x = x.dropna()
            r = spearman_trend(x["driven"], x["sslmem"], alternative="greater")
            rows.append({"encoder": name, "layer": layer, "n": len(x), "rho": r.statistic,
                         "p": r.pvalue})  # fmt: skip
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ tests


def _ks_alternative(alternative: str) -> str:
    # scipy's KS convention: "less" means the first sample's CDF lies below, its values larger.
    return {"greater": "less", "less": "greater", "two-sided": "two-sided"}[alternative]


def compare_layers(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    value: str = "unitmem",
    layers=None,
    alternative: str = "greater",
) -> pd.DataFrame:
    """Per layer, a one-sided Welch t-test and a KS test of ``a[value]`` against ``b[value]``.

    Parameters
    ----------
    a, b : one row per unit with columns ``layer`` and ``value`` (rows with ``defined`` False
        and NaN values are left out).
    layers : layer names in order (None: those of ``a`` in order of appearance).
    alternative : ``"greater"``: a's values are larger (Welch: mean; KS: a's distribution
        lies to the right of b's); ``"less"``; ``"two-sided"``.

    Returns
    -------
    DataFrame
        ``layer, n_a, n_b, mean_a, mean_b, difference, t, welch_p, ks_D, ks_p``.
    """
    a, b = _defined(a), _defined(b)
    layers = list(dict.fromkeys(a["layer"].astype(str))) if layers is None else list(layers)
    rows = []
    for layer in layers:
        x = a.loc[a["layer"].astype(str) == str(layer), value].dropna().to_numpy(float)
        y = b.loc[b["layer"].astype(str) == str(layer), value].dropna().to_numpy(float)
        row = {"layer": str(layer), "n_a": len(x), "n_b": len(y)}
        row["mean_a"] = x.mean() if len(x) else np.nan
        row["mean_b"] = y.mean() if len(y) else np.nan
        row["difference"] = row["mean_a"] - row["mean_b"]
        if len(x) >= 2 and len(y) >= 2:
            w = welch_one_sided(x, y, alternative=alternative)
            ks = ks_test(x, y, alternative=_ks_alternative(alternative))
            row.update(t=w.statistic, welch_p=w.pvalue, ks_D=ks.statistic, ks_p=ks.pvalue)
        else:
            row.update(t=np.nan, welch_p=np.nan, ks_D=np.nan, ks_p=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def paired_tests(
    df: pd.DataFrame, x: str, y: str, *, layers=None, alternative: str = "greater"
) -> pd.DataFrame:
    """Per layer, a paired one-sided t-test of ``df[x]`` against ``df[y]`` over the units.

    Returns
    -------
    DataFrame
        ``layer, n, mean_x, mean_y, mean_difference`` (x - y), ``t``, ``p``.
    """
    df = _defined(df)
    layers = list(dict.fromkeys(df["layer"].astype(str))) if layers is None else list(layers)
    rows = []
    for layer in layers:
        part = df[df["layer"].astype(str) == str(layer)][[x, y]].dropna()
        row = {"layer": str(layer), "n": len(part)}
        row["mean_x"], row["mean_y"] = part[x].mean(), part[y].mean()
        row["mean_difference"] = row["mean_x"] - row["mean_y"]
        if len(part) >= 2 and (part[x] - part[y]).std() > 0:
            res = _st.ttest_rel(part[x], part[y], alternative=alternative)
            row.update(t=float(res.statistic), p=float(res.pvalue))
        else:
            row.update(t=np.nan, p=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def all_layers_test(
    table: pd.DataFrame, layers, *, p: str = "welch_p", statistic: str = "t"
) -> TestResult:
    """One verdict for "the effect holds in every one of ``layers``" from the per-layer tests
    of ``table`` (its columns ``p`` and ``statistic``): :func:`memloc.stats.intersection_union`
    over those layers' rows (the largest p, the smallest statistic; a layer without a test
    leaves the claim untested)."""
    rows = table[table["layer"].astype(str).isin([str(x) for x in layers])]
    if len(rows) != len(layers):
        raise ValueError(f"table lacks some of the layers {list(layers)}")
    return intersection_union(rows[statistic], rows[p])


def _defined(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["defined"].astype(bool)] if "defined" in df else df


# ------------------------------------------------------------------------------ SSLMem per image


def point_sslmem(
    pair,
    *,
    n_points: int | None = None,
    k_aug: int | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    cache: bool = True,
) -> LayerMemResult:
    """Per-image SSLMem of the pair's candidates, held-out and independent images at every
    measurement point: the layer results' shared measurement
    (:func:`memloc.experiments.layers.pair_layermem`, the paper's ``views`` variant, the pair's
    training augmentations; None: the profile's N, K, k and seed). With the same arguments as
    T1 it reads T1's stored result.
    """
    seed = int(pair.profile.seed if seed is None else seed)
    return pair_layermem(pair, n_points=n_points, k_aug=k_aug, top_k=top_k, seed=seed, cache=cache)


def calibrated_sslmem(
    result: LayerMemResult, set: str = "candidate", layer: str | None = None
) -> pd.Series:
    """Calibrated per-image SSLMem at ``layer`` (default: the last measured layer).

    The normalised score ``m_l(x) / range_l`` minus the layer's ``heldout_offset`` (the mean
    normalised score of images neither encoder saw): memorization as the excess over unseen
    data. The offset shifts every image equally, so rankings are those of the raw score.

    Returns
    -------
    Series
        Indexed by the image's position in its set (``point``), named ``sslmem``.
    """
    layer = result.layers[-1].name if layer is None else str(layer)
    table = result.table.set_index(result.table["layer"].astype(str))
    if "heldout_offset" not in table:
        raise ValueError("the LayerMem result has no held-out images; measure with heldout")
    wide = result.scores(set, "sslmem")
    if layer not in wide:
        raise KeyError(f"layer {layer!r} not measured; have {list(wide.columns)}")
    s = (wide[layer] - float(table.loc[layer, "heldout_offset"])).astype(float)
    s.name = "sslmem"
    return s.sort_index()


# ------------------------------------------------------------------------------ F3b, A2, A3


def driven_unitmem(result: UnitMemResult, layers=None) -> pd.DataFrame:
    """For each image, the UnitMem of the units it drives: their mean UnitMem weighted by how
    strongly the image activates each unit relative to the unit's usual level.

    For image x and defined unit u of a layer, the relative drive is
    ``r_u(x) = mu_u(x) / mean_x' mu_u(x')`` (1: the unit's average response; the ratio removes
    each unit's activation scale, as UnitMem itself does), and the score is
    ``sum_u r_u(x) UnitMem(u) / sum_u r_u(x)``: high when x drives high-UnitMem units above
    their usual level. An image that silences every unit of a layer scores NaN there.

    Returns
    -------
    DataFrame
        Index ``point`` (position in the measured images), one column per layer.
    """
    if result.value != "unitmem":
        raise ValueError("driven_unitmem needs a UnitMem result (per image), not ClassMem")
    names = [p.name for p in result.layers] if layers is None else [str(x) for x in layers]
    out = {}
    for name in names:
        units = result.units[result.units["layer"] == name].sort_values("unit")
        defined = units["defined"].to_numpy(bool)
        mu = np.asarray(result.mu[name], dtype=float)[:, units["unit"].to_numpy()][:, defined]
        um = units["unitmem"].to_numpy(float)[defined]
        drive = mu / mu.mean(axis=0, keepdims=True)
        total = drive.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(total > 0, drive @ um / total, np.nan)
    frame = pd.DataFrame(out, index=pd.Index(np.asarray(result.groups), name="point"))
    frame.columns.name = "layer"
    return frame


def top_least_unitmem(
    encoder: nn.Module,
    images: Tensor,
    scores,
    k: int,
    *,
    k_aug: int,
    policy,
    rest: str = "mean",
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """UnitMem of every unit over D' = the k highest-scoring images, and over D' = the k
    lowest-scoring ones (A2): two measurements over equally large sets, so UnitMem's baseline
    (which grows with ``|D'|``) is the same for both.

    Parameters
    ----------
    encoder, images : the encoder and the N images ``scores`` refers to.
    scores : one score per image (e.g. calibrated SSLMem at the last layer), array or Series
        indexed by position 0 ... N-1.
    k : size of each set (2k <= N).

    Returns
    -------
    DataFrame
        ``set`` (``"Top-k"`` / ``"Least-k"``), ``layer``, ``unit``, ``unitmem``, ``defined``,
        ``argmax`` (position in ``images``).
    """
    s = np.asarray(scores.sort_index() if isinstance(scores, pd.Series) else scores, dtype=float)
    if s.shape != (len(images),):
        raise ValueError(f"scores must score the {len(images)} images, got shape {s.shape}")
    if not 0 < 2 * k <= len(images):
        raise ValueError(f"k must be in 1 ... {len(images) // 2} (Top-k and Least-k disjoint)")
    frames = []
    for name, idx in (
        ("Top-k", top_indices(s, k)),
        ("Least-k", top_indices(s, k, largest=False)),
    ):
        result = measure_unitmem(
            encoder,
            images[torch.as_tensor(idx)],
            k_aug=k_aug,
            policy=policy,
            rest=rest,
            seed=seed,
            cache_dir=cache_dir,
        )
        u = result.units[["layer", "unit", "unitmem", "defined"]].copy()
        u["argmax"] = idx[result.units["argmax"].to_numpy(int)]
        u.insert(0, "set", name)
        frames.append(u)
    return pd.concat(frames, ignore_index=True)


def top_units(result: UnitMemResult, fraction: float) -> pd.DataFrame:
    """Per layer, the ``ceil(fraction x defined units)`` units with the highest UnitMem
    (at least one), as rows of ``result.units``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    frames = []
    for p in result.layers:
        u = result.units[(result.units["layer"] == p.name) & result.units["defined"]]
        q = max(1, math.ceil(fraction * len(u))) if len(u) else 0
        frames.append(u.sort_values(result.value, ascending=False, kind="stable").head(q))
    return pd.concat(frames, ignore_index=True)


def mu_max_share(result: UnitMemResult, scores, *, k: int, fraction: float = 0.1) -> pd.DataFrame:
    """How often the mu_max image of a layer's top units is among the k most memorized images,
    against the chance level k/N (A3).

    Per layer the top units are the ``fraction`` with the highest UnitMem
    (:func:`top_units`); each row comes from :func:`memloc.metrics.mu_max_overlap`, whose
    binomial test treats units as independent. A last row ``all`` pools the layers and adds
    the conservative count over *distinct* mu_max images (units sharing an image count once):
    ``n_distinct_points``, ``n_distinct_hits``, ``distinct_fraction``, ``distinct_p``.

    Returns
    -------
    DataFrame
        ``layer, n_units, n_hits, fraction, chance, p_value, n_distinct_points`` (+ the
        distinct-image columns, filled on the ``all`` row).
    """
    n = len(result.groups)
    tops = top_units(result, fraction)
    rows = []
    for p in result.layers:
        q = int((tops["layer"] == p.name).sum())
        if q == 0:
            continue
        table = mu_max_overlap(result, scores, k=k, top_units=q)
        rows.append(table[table["layer"] == p.name].iloc[0].to_dict())
    s = np.asarray(scores.reindex(range(n)) if isinstance(scores, pd.Series) else scores, float)
    top_set = set(top_indices(s, k).tolist())
    hits = int(tops["argmax"].isin(top_set).sum())
    distinct = pd.unique(tops["argmax"])
    distinct_hits = int(sum(int(x) in top_set for x in distinct))
    pooled = {
        "layer": "all",
        "n_units": len(tops),
        "n_hits": hits,
        "fraction": hits / len(tops),
        "chance": k / n,
        "p_value": float(_st.binomtest(hits, len(tops), k / n, alternative="greater").pvalue),
        "n_distinct_points": len(distinct),
        "n_distinct_hits": distinct_hits,
        "distinct_fraction": distinct_hits / len(distinct),
        "distinct_p": float(
            _st.binomtest(distinct_hits, len(distinct), k / n, alternative="greater").pvalue
        ),
    }
    return pd.DataFrame(rows + [pooled])


def dominance_with_sslmem(result: UnitMemResult, scores: pd.Series) -> pd.DataFrame:
    """Per image: how many units of each layer have their mu_max on it
    (``UnitMemResult.dominance``), its SSLMem score and its rank (1 = most memorized),
    sorted by the total number of units dominated."""
    table = result.dominance()
    s = scores.reindex(table.index)
    table["sslmem"] = s.to_numpy(float)
    table["sslmem_rank"] = s.rank(ascending=False, method="first").astype(int).to_numpy()
    return table.sort_values(["total", "sslmem"], ascending=False, kind="stable")


# ------------------------------------------------------------------------------ A1


def training_encoders(pair) -> dict[int, nn.Module]:
    """f at every kept epoch: 0 (its initialisation, :func:`initial_encoder`) unless a snapshot
    of epoch 0 exists, every snapshot, and the final weights if no snapshot holds them."""
    snapshots = pair.snapshots("f")
    encoders = {} if 0 in snapshots else {0: initial_encoder(pair.profile, pair.dataset.channels)}
    encoders.update(snapshots)
    profile = pair.profile
    final = profile.supervised_epochs if pair.framework == "supervised" else profile.epochs
    encoders.setdefault(int(final), pair.f)
    return dict(sorted(encoders.items()))


def unitmem_over_training(
    pair,
    *,
    layer: str,
    n_points: int | None = None,
    k_aug: int | None = None,
    rest: str = "mean",
    seed: int | None = None,
    cache: bool = True,
) -> pd.DataFrame:
    """UnitMem of one layer of f at every kept epoch, on N candidates and N held-out images.

    Returns
    -------
    DataFrame
        ``epoch, set`` (``"candidates"`` / ``"held-out"``), ``unit, unitmem, defined``.
        Epoch 0 is f's initialisation (the random-init control).
    """
    profile = pair.profile
    n = int(n_points or profile.n_points)
    k = int(k_aug if k_aug is not None else profile.k_aug)
    seed = int(profile.seed if seed is None else seed)
    policy = unitmem_policy(profile)
    sets = {"candidates": pair.images("candidate", n), "held-out": pair.images("heldout", n)}
    cache_dir = _measurement_cache(cache)
    frames = []
    for epoch, encoder in training_encoders(pair).items():
        for name, images in sets.items():
            # Every unit point costs the same forward pass as one, and the initialisation and
            # the final weights were measured at every point already (F1): reuse them.
            result = measure_unitmem(
                encoder, images, k_aug=k, policy=policy, rest=rest, seed=seed, cache_dir=cache_dir
            )
            units = result.units
            if layer not in set(units["layer"]):
                raise KeyError(
                    f"no unit point {layer!r}; have {list(dict.fromkeys(units['layer']))}"
                )
            u = units[units["layer"] == layer][["unit", "unitmem", "defined"]].copy()
            u.insert(0, "set", name)
            u.insert(0, "epoch", epoch)
            frames.append(u)
    return pd.concat(frames, ignore_index=True)


def mean_with_ci(
    df: pd.DataFrame, by: list[str], value: str = "unitmem", seed: int = 0
) -> pd.DataFrame:
    """Mean of ``value`` over the defined rows of each group, with a 95% bootstrap CI
    (:func:`memloc.stats.bootstrap_ci`): columns ``*by, n, mean, low, high``."""
    rows = []
    for keys, part in _defined(df).groupby(by, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        values = part[value].dropna().to_numpy(float)
        row = dict(zip(by, keys, strict=True))
        if len(values) >= 2:
            ci = bootstrap_ci(values, seed=seed)
            row.update(n=len(values), mean=ci.estimate, low=ci.low, high=ci.high)
        else:
            row.update(n=len(values), mean=values.mean() if len(values) else np.nan)
            row.update(low=np.nan, high=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ reporting


def spearman_difference(rho_a: float, n_a: int, rho_b: float, n_b: int) -> tuple[float, float]:
    """One-sided test that Spearman's rho of sample a exceeds that of an independent sample b.

    Fisher's z-transform with the variance 1.06 / (n - 3) of a Spearman coefficient
    (Fieller, Hartley and Pearson, 1957).

    Returns
    -------
    (z, p_value)
    """
    if n_a < 4 or n_b < 4:
        raise ValueError(f"need at least 4 points per sample, got {n_a} and {n_b}")
    clip = 1 - 1e-12
    z_a, z_b = np.arctanh(np.clip([rho_a, rho_b], -clip, clip))
    z = float((z_a - z_b) / math.sqrt(1.06 / (n_a - 3) + 1.06 / (n_b - 3)))
    return z, float(_st.norm.sf(z))


def excess_per_unit(per_unit: pd.DataFrame) -> pd.DataFrame:
    """Per epoch and unit, UnitMem on the candidates minus UnitMem on held-out images, for the
    units defined on both (the output of :func:`unitmem_over_training`): ``epoch, unit,
    excess``."""
    d = _defined(per_unit)
    wide = d.pivot_table(index=["epoch", "unit"], columns="set", values="unitmem").dropna()
    return (wide["candidates"] - wide["held-out"]).rename("excess").reset_index()


def format_ci(table: pd.DataFrame, digits: int = 3) -> pd.Series:
    """``mean [low, high]`` strings from the columns of :func:`mean_with_ci`, for display."""
    return table.apply(
        lambda r: f"{r['mean']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]",
        axis=1,
    )


# ------------------------------------------------------------------------------ A1: over training


def over_training_curves(per_unit: pd.DataFrame) -> pd.DataFrame:
    """A1's curves from :func:`unitmem_over_training`'s table: per epoch, the mean UnitMem of
    the candidates and of the held-out images with 95% bootstrap CIs over units, and the mean
    per-unit excess of the candidates over the held-out images (:func:`excess_per_unit`):
    columns ``epoch, set, n, mean, low, high`` (``set``: candidates, held-out, excess)."""
    summary = mean_with_ci(per_unit, ["epoch", "set"])
    excess = mean_with_ci(excess_per_unit(per_unit), ["epoch"], value="excess")
    return pd.concat([summary, excess.assign(set="excess")], ignore_index=True)


def over_training_table(curves: pd.DataFrame) -> pd.DataFrame:
    """A1's table for the page: per epoch, ``mean [low, high]`` of the candidates, held-out
    images and the excess, and the number of defined units (index: epoch)."""
    table = curves.assign(value=format_ci(curves)).pivot(
        index="epoch", columns="set", values="value"
    )
    cand = curves[curves["set"] == "candidates"]
    table["defined units"] = cand.set_index("epoch")["n"]
    return table[["candidates", "held-out", "excess", "defined units"]]


def over_training_claims(curves: pd.DataFrame, layer: str) -> list[dict]:
    """A1's claims: Spearman's rho of the mean UnitMem (candidates) against the epoch,
    one-sided (rising), and the same for the excess over the held-out images."""
    cand, excess = (curves[curves["set"] == s] for s in ("candidates", "excess"))
    trend = spearman_trend(cand["mean"], cand["epoch"], alternative="greater")
    trend_excess = spearman_trend(excess["mean"], excess["epoch"], alternative="greater")
    return [
        claim(
            f"UnitMem of layer {layer} rises during training",
            f"Spearman rho of mean UnitMem vs epoch ({len(cand)} epochs), one-sided",
            trend,
            holds=trend.statistic > 0,
        ),
        claim(
            f"the excess of layer {layer}'s UnitMem over held-out images rises during training",
            "Spearman rho of mean (candidates − held-out) UnitMem vs epoch, one-sided",
            trend_excess,
            holds=trend_excess.statistic > 0,
        ),
    ]


def over_training_note(curves: pd.DataFrame) -> str:
    """A1's sentence under the verdicts: the mean UnitMem at initialisation and at the last
    epoch (and on held-out images), and the epoch of the largest mean."""
    cand = curves[curves["set"] == "candidates"]
    first, final = cand.iloc[0], cand.iloc[-1]
    heldout = curves[curves["set"] == "held-out"]["mean"].iloc[-1]
    peak = (
        f"The largest mean was reached at epoch {int(cand.loc[cand['mean'].idxmax(), 'epoch'])}."
        if not np.isclose(cand["mean"].max(), final["mean"])
        else "The last epoch has the largest mean."
    )
    return (
        f"Mean UnitMem went from {first['mean']:.3f} at initialisation to {final['mean']:.3f} "
        f"at epoch {int(final['epoch'])} (held-out images: {heldout:.3f}). {peak}"
    )


# ------------------------------------------------------------------------------ F1, F2: SSL vs SL


DEEP_SENTENCE = "Deep layers (fixed in advance: the half after the first residual connection)"
"""How F1, F2 and A2 introduce their deep layers in the page's header line."""

F1_LABELS = ("SSL", "SSL held-out", "SL", "SL held-out", "random init")
"""F1's distributions in the order of its figures and its means table."""


def deep_layers_sentence(deep: list[str]) -> str:
    """The header line's sentence naming the deep layers (F1, F2, A2): ``"Deep layers (fixed
    in advance: ...): 5, 6, 7, 8, Res6."``."""
    return f"{DEEP_SENTENCE}: {', '.join(deep)}."


def ssl_sl_pairs(profile, framework: str, **overrides):
    """F1's and F2's encoders: the SSL pair of ``framework`` and the supervised (SL) pair of
    the same profile, with the same profile keys ``overrides``. Returns ``(ssl_pair,
    sl_pair)``."""
    from memloc.artifacts import encoder_pair

    ssl = encoder_pair(profile, framework, progress=False, **overrides)
    return ssl, encoder_pair(profile, "supervised", progress=False, **overrides)


def ssl_sl_unitmem(ssl_pair, sl_pair, *, rest: str = "mean"):
    """F1's and F2's measurements: :func:`unitmem_with_controls` of the SSL and the SL pair,
    the SL pair reusing the SSL pair's random-initialisation control (the same split, images
    and initial weights). Returns ``(ssl, sl)``, two :class:`UnitMemControls`."""
    ssl = unitmem_with_controls(ssl_pair, rest=rest)
    return ssl, unitmem_with_controls(sl_pair, rest=rest, random=ssl.random)


def ssl_sl_checks(ssl_pair, sl_pair) -> dict:
    """F1's and F2's checks (:func:`memloc.regime.check_pair`): ``{"SSL": learned and
    memorized, "SL": learned}``, for :meth:`memloc.result.Result.check`."""
    from memloc.regime import check_pair

    return {
        "SSL": check_pair(ssl_pair, name="SSL"),
        "SL": check_pair(sl_pair, memorized=False, name="SL"),
    }


def ssl_sl_distributions(ssl: UnitMemControls, sl: UnitMemControls) -> pd.DataFrame:
    """F1's units in one table (:meth:`UnitMemControls.long` of both encoders, the shared
    random-init control once), sorted by ``label`` in the order of :data:`F1_LABELS`."""
    long = pd.concat([ssl.long(), sl.long()[lambda d: d["encoder"] != "random init"]])
    order = list(F1_LABELS)
    return long.sort_values("label", key=lambda c: c.map(order.index), kind="stable")


def ssl_sl_per_unit(ssl: UnitMemControls, sl: UnitMemControls) -> pd.DataFrame:
    """F1's units of both trained encoders: :meth:`UnitMemControls.per_unit` of the SSL and
    the SL encoder, stacked (``model`` tells them apart)."""
    return pd.concat([ssl.per_unit(), sl.per_unit()], ignore_index=True)


def ssl_sl_excess(ssl: UnitMemControls, sl: UnitMemControls) -> pd.DataFrame:
    """F1's per-layer excess table: :meth:`UnitMemControls.excess` of the SSL and the SL
    encoder, stacked."""
    return pd.concat([ssl.excess(), sl.excess()], ignore_index=True)


def defined_units(long: pd.DataFrame) -> pd.DataFrame:
    """F1's count of units per distribution and layer: ``label, layer, n_units, n_defined``
    (units with a defined UnitMem) from :func:`ssl_sl_distributions`' table."""
    grouped = long.groupby(["label", "layer"], sort=False)["defined"]
    return grouped.agg(n_units="size", n_defined="sum").reset_index()


def undefined_units_sentence(counts: pd.DataFrame) -> str:
    """F1's sentence on the units never active on the images, per distribution, from
    :func:`defined_units`' table."""
    undefined = (counts["n_units"] - counts["n_defined"]).groupby(counts["label"]).sum()
    listed = ", ".join(f"{label} {int(n)}" for label, n in undefined.items())
    return f"Undefined units (never active on these images) per encoder: {listed}."


def ssl_sl_means(long: pd.DataFrame, excess: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    """F1's means table: per layer, the mean UnitMem of every distribution of
    :data:`F1_LABELS` over its defined units, and ``SSL excess``, ``SL excess`` (the smaller
    excess over the two controls, from :meth:`UnitMemControls.excess` of both, stacked)."""
    means = long[long["defined"]].pivot_table(
        index="layer", columns="label", values="unitmem", aggfunc="mean", sort=False
    )[list(F1_LABELS)]
    for model in ("SSL", "SL"):
        means[f"{model} excess"] = excess[excess["model"] == model].set_index("layer")["excess"]
    return means.reindex(layers).reset_index()


def ssl_sl_tests(ssl: UnitMemControls, sl: UnitMemControls) -> pd.DataFrame:
    """F1's tests per layer, SSL units against SL units (:func:`compare_layers`, one-sided):
    on the raw UnitMem (``t, welch_p, ks_D, ks_p``, ...) and on the per-unit excess over the
    held-out control (the same columns with the suffix ``_excess``), with ``deep``."""
    a, b, layers = ssl.per_unit(), sl.per_unit(), ssl.layers
    raw = compare_layers(a, b, value="unitmem", layers=layers)
    excess = compare_layers(a, b, value="excess_heldout", layers=layers)
    tests = raw.merge(excess, on="layer", suffixes=("", "_excess"))
    tests.insert(1, "deep", tests["layer"].isin(deep_layers(layers)))
    return tests


def ssl_sl_tests_view(tests: pd.DataFrame) -> pd.DataFrame:
    """F1's tests as the page shows them: the raw tests and the excess's difference and Welch
    test, the means named ``SSL`` and ``SL``."""
    shown = ["layer", "deep", "mean_a", "mean_b", "t", "welch_p", "ks_D", "ks_p"]
    shown += ["difference_excess", "t_excess", "welch_p_excess"]
    names = {"mean_a": "SSL", "mean_b": "SL", "difference_excess": "excess SSL − SL"}
    return tests[shown].rename(columns=names)


def _deep(tests: pd.DataFrame) -> list[str]:
    return tests.loc[tests["deep"].astype(bool), "layer"].astype(str).tolist()


def ssl_sl_claims(tests: pd.DataFrame) -> list[dict]:
    """F1's claims from :func:`ssl_sl_tests`' table, each an intersection-union test over
    the deep layers (:func:`all_layers_test`): SSL above SL on UnitMem (Welch), on the whole
    distribution (KS), and on the excess over the held-out control (Welch)."""
    deep = _deep(tests)
    welch = all_layers_test(tests, deep, p="welch_p", statistic="t")
    ks = all_layers_test(tests, deep, p="ks_p", statistic="ks_D")
    excess = all_layers_test(tests, deep, p="welch_p_excess", statistic="t_excess")
    text = "SSL units memorize single images more than SL units (deep layers)"
    return [
        claim(
            text,
            f"one-sided Welch t on UnitMem per deep layer ({', '.join(deep)}); min t, max p",
            welch,
            holds=welch.statistic > 0,
        ),
        claim(
            text + ", whole distributions",
            "one-sided KS (SSL to the right of SL) per deep layer; min D, max p",
            ks,
        ),
        claim(
            "SSL units exceed their held-out control more than SL units (deep layers)",
            "one-sided Welch t on the per-unit excess over held-out images per deep layer",
            excess,
            holds=excess.statistic > 0,
        ),
    ]


def ssl_sl_note(tests: pd.DataFrame) -> str:
    """F1's paragraph under the verdicts: the layers where SSL UnitMem exceeds SL UnitMem at
    p < 0.05 (Welch, unadjusted), of all layers."""
    significant = tests[tests["welch_p"] < 0.05]["layer"].tolist()
    return (
        "Layers where SSL UnitMem exceeds SL UnitMem at p < 0.05 (Welch): "
        + (", ".join(significant) if significant else "none")
        + f" (of {len(tests)}). The poster gives no numbers for this figure; compare the shape."
    )


def skipless_forward_shift(pair, controls: UnitMemControls) -> pd.DataFrame | None:
    """F1's last table: UnitMem of ``pair.f`` read with the paper's forward and with the
    authors' scripts' skip-less one (:func:`memloc.metrics.unitmem_forward_shift`), on the
    candidates and views of ``controls``; None when f is not a ResNet9 (the scripts read
    ResNet9 only)."""
    if pair.f.arch != "resnet9":
        return None
    from memloc.metrics import unitmem_forward_shift

    c = controls.config
    return unitmem_forward_shift(
        pair.f,
        pair.images("candidate", c["n_points"]),
        k_aug=c["k_aug"],
        policy=unitmem_policy(pair.profile),
        rest=c["rest"],
        seed=c["seed"],
    )


def candidate_classes_sentence(pair, n: int) -> str:
    """F2's header: ``"N = 100 candidates in 10 classes (7–13 images per class)"``."""
    counts = pair.labels("candidate", n).bincount()
    sizes = counts[counts > 0]
    return (
        f"N = {n} candidates in {len(sizes)} classes ({int(sizes.min())}–{int(sizes.max())} "
        "images per class)"
    )


def classmem_scores(
    ssl_pair, sl_pair, ssl: UnitMemControls, sl: UnitMemControls, *, k_aug: int = 0
) -> pd.DataFrame:
    """F2's scores: :func:`classmem_beside_unitmem` of the SSL f, the SL f and the
    architecture at random initialisation on the SSL pair's candidates (the images, ``rest``
    and UnitMem of ``ssl`` and ``sl``), ClassMem with ``k_aug`` views (0: unaugmented),
    stacked."""
    p, n, rest = ssl_pair.profile, ssl.config["n_points"], ssl.config["rest"]
    images, labels = ssl_pair.images("candidate", n), ssl_pair.labels("candidate", n)
    init = initial_encoder(p, ssl_pair.dataset.channels)
    kw = dict(k_aug=k_aug, policy=unitmem_policy(p), rest=rest, seed=p.seed)
    scores = [
        classmem_beside_unitmem(ssl_pair.f, images, labels, ssl.trained, model="SSL", **kw),
        classmem_beside_unitmem(sl_pair.f, images, labels, sl.trained, model="SL", **kw),
        classmem_beside_unitmem(init, images, labels, ssl.random, model="random init", **kw),
    ]
    return pd.concat(scores, ignore_index=True)


def classmem_claims(tests: pd.DataFrame, checks: dict) -> list[dict]:
    """F2's claims from :func:`classmem_unitmem_tests`' table, each an intersection-union
    test over the deep layers: UnitMem − ClassMem larger for SSL than SL units (the page's
    checks), ClassMem above UnitMem for SL units (testable when ``checks["SL"]`` passes),
    UnitMem above ClassMem for SSL units (``checks["SSL"]``)."""
    deep = _deep(tests)
    contrast = all_layers_test(tests, deep, p="SSL−SL p", statistic="SSL−SL t")
    claims = [
        claim(
            "UnitMem − ClassMem is larger for SSL units than for SL units (deep layers)",
            "one-sided Welch t per deep layer over units; min t, max p",
            contrast,
            holds=contrast.statistic > 0,
        )
    ]
    # Each model's own comparison needs only that model's check.
    for model, text in (
        ("SL", "higher ClassMem than UnitMem"),
        ("SSL", "higher UnitMem than ClassMem"),
    ):
        result = all_layers_test(tests, deep, p=f"{model} p", statistic=f"{model} t")
        claims.append(
            claim(
                f"{model} units have {text} (deep layers)",
                "paired one-sided t over units per deep layer; min t, max p",
                result,
                holds=result.statistic > 0,
                testable=checks[model].testable,
                reason=checks[model].reason,
            )
        )
    return claims


def classmem_note(tests: pd.DataFrame) -> str:
    """F2's paragraph under the verdicts: the range of UnitMem − ClassMem over the deep
    layers at random initialisation (what the third claim gives without learning)."""
    random_deep = tests[tests["deep"]]["random UM−CM"]
    return (
        "At random initialisation the mean UnitMem − ClassMem over the deep layers ranges "
        f"from {random_deep.min():.3f} to {random_deep.max():.3f}: "
        + (
            "UnitMem exceeds ClassMem there too, so the third claim alone says little about "
            "learning."
            if random_deep.min() > 0
            else "it is not positive in every deep layer."
        )
        + " The poster gives no numbers for this figure; compare the shape."
    )


# ------------------------------------------------------------------------------ F3a, F3c


def unitmem_of_requests(
    requests, *, key: str = "label", rest: str = "mean", seed=None, share_random: bool = False
) -> tuple[dict, dict]:
    """F3a's and F3c's encoders and measurements: each request's pair
    (:class:`memloc.experiments.encoders.EncoderRequest`) and its :func:`unitmem_with_controls`,
    in the requests' order, keyed by the request's ``key`` attribute (``"label"``,
    ``"epsilon"``). ``share_random``: the first random-init control serves every encoder (the
    same architecture, seed and images). Returns ``(pairs, results)``."""
    pairs, results, random = {}, {}, None
    for request in requests:
        name = getattr(request, key)
        pairs[name] = request.get()
        results[name] = unitmem_with_controls(pairs[name], rest=rest, seed=seed, random=random)
        if share_random:
            random = results[name].random
    return pairs, results


def dataset_share_claim(summary: pd.DataFrame, layer: str, quantile: float) -> dict:
    """F3a's claim from :func:`memloc.experiments.architectures.unitmem_by_dataset`'s summary:
    the share of memorizing units differs between the data sets
    (:func:`memloc.experiments.architectures.share_test`)."""
    from memloc.experiments.architectures import share_test

    stat, p, test = share_test(summary)
    return claim(
        "The data set changes how many units memorize",
        f"{test}; a unit memorizes above the {quantile:.0%} quantile of the random-init "
        f"units (layer {layer}, {', '.join(summary['dataset'])})",
        (stat, p),
    )


def dataset_share_note(
    entry: dict, summary: pd.DataFrame, units: pd.DataFrame, layer: str, quantile: float
) -> str:
    """F3a's verdict paragraph: the recorded ``entry``'s verdict at its profile, the share of
    memorizing units and the mean UnitMem per data set, and the Kolmogorov-Smirnov distance
    between the trained encoders' UnitMem of the first two data sets."""
    from memloc.experiments.architectures import share_test

    _, p, _ = share_test(summary)
    a, b = summary["dataset"].iloc[:2]
    trained = units[(units["encoder"] == "trained") & units["defined"].astype(bool)]
    by = {name: trained.loc[trained["dataset"] == name, "unitmem"] for name in (a, b)}
    ks = _st.ks_2samp(by[a], by[b])
    rows = list(summary.itertuples())
    shares = ", ".join(f"{r.dataset} {100 * r.share:.0f}%" for r in rows)
    means = ", ".join(f"{r.dataset} {r.mean:.3f}" for r in rows)
    return (
        f"**{entry['verdict'].capitalize()} at profile `{entry['profile']}`.** Units of layer "
        f"`{layer}` above the random-init {quantile:.0%} quantile: {shares} (p = {p:.3g}). "
        f"Mean UnitMem: {means}. KS distance between {a} and {b}: {ks.statistic:.3f} "
        f"(p = {ks.pvalue:.3g})."
    )


def privacy_label(epsilon: float) -> str:
    """F3c's name of an encoder: ``"ε = 4"``, or ``"non-private"`` for ε = ∞."""
    return "non-private" if math.isinf(epsilon) else f"ε = {epsilon:g}"


def privacy_quality(pairs: dict) -> pd.DataFrame:
    """F3c's encoder quality (:func:`memloc.regime.quality_table`), one row per encoder of
    ``pairs`` (ε -> pair) named by :func:`privacy_label`."""
    from memloc.regime import quality_table

    return quality_table({privacy_label(eps): pair for eps, pair in pairs.items()})


def privacy_testability(summary: pd.DataFrame, reference_check, layer: str) -> tuple[bool, str]:
    """F3c's testability: the non-private reference (the last row of
    :func:`memloc.experiments.architectures.unitmem_by_epsilon`'s summary) must memorize at
    ``layer`` (UnitMem on its candidates above held-out images, one-sided p < 0.05) and
    have learned (``reference_check``, :func:`memloc.regime.check_pair`). Returns
    ``(testable, reason)``, the reason "" when testable."""
    reference = summary.iloc[-1]
    reasons = []
    if not _memorizes(reference):
        reasons.append(
            f"the non-private encoder does not memorize at layer {layer} (UnitMem on its "
            f"candidates minus held-out images {reference['heldout_excess']:+.4f}, one-sided "
            f"p = {reference['heldout_p']:.3g}), so there is no memorization for DP-SGD to lower"
        )
    if not reference_check.testable:
        reason = reference_check.reason.removeprefix("Not testable here: ").rstrip(".")
        reasons.append("non-private " + reason)
    return not reasons, ("Not testable here: " + "; ".join(reasons) + ".") if reasons else ""


def _memorizes(reference) -> bool:
    return bool(reference["heldout_excess"] > 0 and reference["heldout_p"] < 0.05)


def _privacy_tests(summary: pd.DataFrame, units: pd.DataFrame, layer: str) -> dict:
    """F3c's tests at ``layer``: the trend of UnitMem over the privacy levels (all encoders,
    and the private ones alone), and the non-private encoder against the smallest ε."""
    targets = summary["ε"].tolist()
    lay = units[(units["layer"] == layer) & units["defined"] & units["eps"].notna()]
    trend = _st.spearmanr(lay["eps"].rank(method="dense"), lay["unitmem"], alternative="greater")
    lowest, nonprivate = lay[lay["eps"] == targets[0]], lay[np.isinf(lay["eps"])]
    ends = _st.ttest_ind(
        nonprivate["unitmem"], lowest["unitmem"], equal_var=False, alternative="greater"
    )
    private = lay[~np.isinf(lay["eps"])]
    private_trend = _st.spearmanr(private["eps"].rank(method="dense"), private["unitmem"])
    gap = nonprivate["unitmem"].mean() - lowest["unitmem"].mean()
    return dict(targets=targets, n=len(lay), trend=trend, ends=ends, gap=gap,
                private_trend=private_trend)  # fmt: skip


def privacy_claims(summary: pd.DataFrame, units: pd.DataFrame, layer: str) -> list[dict]:
    """F3c's claims from :func:`memloc.experiments.architectures.unitmem_by_epsilon`'s tables:
    stronger privacy lowers UnitMem (Spearman's ρ of the units' UnitMem against the privacy
    level, holding if the non-private mean exceeds the smallest ε's), and DP-SGD does not
    remove it (at the smallest ε, the smaller excess over the two controls, the larger p)."""
    t = _privacy_tests(summary, units, layer)
    targets, strongest = t["targets"], summary.iloc[0]
    return [
        claim(
            "Stronger privacy (smaller ε) lowers UnitMem",
            f"Spearman rho of layer-{layer} UnitMem per unit against the privacy level "
            f"(ε = {', '.join(f'{e:g}' for e in targets[:-1])}, non-private), one-sided; "
            "holds if the non-private mean exceeds the smallest ε's",
            (float(t["trend"].statistic), float(t["trend"].pvalue)),
            holds=bool(t["gap"] > 0),
        ),
        claim(
            "DP-SGD does not remove unit memorization",
            f"layer-{layer} UnitMem at ε = {targets[0]:g} vs random init and vs held-out "
            "images, Welch one-sided (statistic: the smaller excess, p: the larger p)",
            (float(strongest["excess"]), float(max(strongest["random_p"], strongest["heldout_p"]))),
            holds=bool(strongest["excess"] > 0),
        ),
    ]


def privacy_note(
    summary: pd.DataFrame, units: pd.DataFrame, layer: str, entries: list[dict], reason: str = ""
) -> str:
    """F3c's verdict paragraphs: ``reason`` (when not testable), whether the non-private
    reference memorizes, the trend among the private encoders alone, and each of the two
    recorded ``entries`` with its numbers."""
    t = _privacy_tests(summary, units, layer)
    reference, strongest, lowest = summary.iloc[-1], summary.iloc[0], t["targets"][0]
    v1, v2 = entries
    means = ", ".join(f"{r['encoder']} {r['mean']:.3f}" for _, r in summary.iterrows())
    paragraphs = [
        f"*{reason}*" if reason else "",
        f"**The non-private reference** "
        f"{'memorizes' if _memorizes(reference) else 'does not memorize'} at layer `{layer}`: "
        "UnitMem on its candidates exceeds the same units on held-out images by "
        f"{reference['heldout_excess']:+.4f} (p = {reference['heldout_p']:.3g}); over random "
        f"initialisation by {reference['random_excess']:+.4f}.",
        "Among the private encoders alone, ρ of UnitMem against ε is "
        f"{t['private_trend'].statistic:+.3f} (two-sided p = {t['private_trend'].pvalue:.3g}).",
        f"**Privacy lowers UnitMem ({v1['verdict']}).** ρ = {t['trend'].statistic:+.3f} over "
        f"{t['n']} units (p = {t['trend'].pvalue:.3g}, Holm {v1['p_value']:.3g}). Mean UnitMem "
        f"of layer `{layer}`: {means}; non-private minus ε = {lowest:g}: {t['gap']:+.3f} "
        f"(Welch t = {t['ends'].statistic:.2f}, p = {t['ends'].pvalue:.3g}).",
        f"**Not removed ({v2['verdict']}).** At ε = {lowest:g}, the excess over random "
        f"initialisation is {strongest['random_excess']:+.3f} (p = "
        f"{strongest['random_p']:.3g}) and over held-out images "
        f"{strongest['heldout_excess']:+.3f} (p = {strongest['heldout_p']:.3g}).",
    ]
    return "\n\n".join(filter(None, paragraphs))


# ------------------------------------------------------------------------------ F3b, A2, A3: pages

CONTROL_RUNS = ("f, candidates", "random init, candidates", "f, held-out")
"""F3b's, A2's and A3's three measurements: f on its candidates and its two controls."""


def calibrated_sslmem_sets(sslmem: LayerMemResult, n: int) -> tuple[pd.Series, pd.Series]:
    """F3b's, A2's and A3's image scores: :func:`calibrated_sslmem` at the last measured layer
    of the first ``n`` candidates and the first ``n`` held-out images. Returns ``(candidates,
    held-out)``.

    Raises
    ------
    ValueError
        When SSLMem was measured on fewer than ``n`` images of either set.
    """
    s_cand = calibrated_sslmem(sslmem, "candidate")
    s_held = calibrated_sslmem(sslmem, "heldout")
    if len(s_cand) < n or len(s_held) < n:
        raise ValueError(f"SSLMem was measured on fewer than {n} candidates or held-out images")
    return s_cand.iloc[:n], s_held.iloc[:n]


def sslmem_ranked_runs(controls: UnitMemControls, sslmem: LayerMemResult) -> dict:
    """F3b's and A3's three runs (:data:`CONTROL_RUNS`), each a UnitMem result with the
    SSLMem scores of its images (:func:`calibrated_sslmem_sets`): f and the random
    initialisation on the candidates (f's SSLMem), f on held-out images (their own)."""
    s_cand, s_held = calibrated_sslmem_sets(sslmem, controls.config["n_points"])
    return {
        "f, candidates": (controls.trained, s_cand),
        "random init, candidates": (controls.random, s_cand),
        "f, held-out": (controls.heldout, s_held),
    }


def driven_runs(runs: dict) -> dict:
    """F3b's input to :func:`driven_spearman`: each run of :func:`sslmem_ranked_runs` with
    :func:`driven_unitmem` of its UnitMem result beside its SSLMem scores."""
    return {name: (driven_unitmem(result), scores) for name, (result, scores) in runs.items()}


def driven_spearman_view(rhos: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    """F3b's page table from :func:`driven_spearman`'s: one row per layer, ``rho`` and ``p``
    of each encoder side by side."""
    encoders = list(dict.fromkeys(rhos["encoder"]))
    wide = rhos.pivot(index="layer", columns="encoder", values=["rho", "p"]).reindex(layers)
    return wide.swaplevel(axis=1)[[(e, v) for e in encoders for v in ("rho", "p")]]


def driven_claims(rhos: pd.DataFrame, layer: str) -> list[dict]:
    """F3b's claims at ``layer`` from :func:`driven_spearman`'s table: ρ > 0 for f on its
    candidates (one-sided Spearman), and that ρ above the held-out images' (Fisher z,
    :func:`spearman_difference`)."""
    at = rhos[rhos["layer"] == layer].set_index("encoder")
    main, held = at.loc["f, candidates"], at.loc["f, held-out"]
    z, p_z = spearman_difference(main["rho"], int(main["n"]), held["rho"], int(held["n"]))
    return [
        claim(
            "images with higher SSLMem drive units with higher UnitMem",
            f"Spearman rho, calibrated SSLMem vs activation-weighted UnitMem, layer {layer}, "
            "one-sided",
            (main["rho"], main["p"]),
            holds=main["rho"] > 0,
        ),
        claim(
            "the correlation on training images exceeds that on held-out images",
            f"Fisher z of rho(candidates) - rho(held-out), layer {layer}, one-sided",
            (z, p_z),
            holds=z > 0,
        ),
    ]


def driven_note(rhos: pd.DataFrame, layer: str) -> str:
    """F3b's paragraph under the verdicts: ρ of the two controls at ``layer``."""
    at = rhos[rhos["layer"] == layer].set_index("encoder")
    rnd, held = at.loc["random init, candidates"], at.loc["f, held-out"]
    return (
        f"Controls at layer {layer}: ρ = {rnd['rho']:.3f} (p = {rnd['p']:.2g}) at random "
        f"initialisation, ρ = {held['rho']:.3f} (p = {held['p']:.2g}) on held-out images. "
        "The poster gives no numbers for this figure; compare the shape."
    )


def top_least_measured(pair, s_cand: pd.Series, s_held: pd.Series, *, rest: str = "mean"):
    """A2's measurements (:func:`top_least_unitmem`, the profile's k, N and K) for the three
    runs of :data:`CONTROL_RUNS`: f and the random initialisation on the candidates ranked by
    ``s_cand``, f on the held-out images ranked by ``s_held``. Returns name -> table."""
    p = pair.profile
    candidates, heldout = pair.images("candidate", p.n_points), pair.images("heldout", p.n_points)
    init = initial_encoder(p, pair.dataset.channels)
    kw = dict(
        k_aug=p.k_aug, policy=unitmem_policy(p), rest=rest, seed=p.seed, cache_dir=cache_root()
    )
    runs = ((pair.f, candidates, s_cand), (init, candidates, s_cand), (pair.f, heldout, s_held))
    return {
        name: top_least_unitmem(encoder, images, scores, p.top_k, **kw)
        for name, (encoder, images, scores) in zip(CONTROL_RUNS, runs, strict=True)
    }


def stack_runs(measured: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A2's per-unit table: the tables of ``measured`` (name -> table) stacked, with the
    name in ``encoder``."""
    frames = [m.assign(encoder=name) for name, m in measured.items()]
    return pd.concat(frames, ignore_index=True)


def top_least_layermem(sslmem: LayerMemResult, layer: str) -> pd.DataFrame:
    """A2's context table: the cross-fitted LayerMem of the Top-k and Least-k candidates at
    ``layer`` and of the same selection on held-out images (rows), from the layer results'
    table."""
    row = sslmem.table.set_index("layer").loc[layer]
    table = pd.DataFrame(
        {
            "Top-k": [row["top_layermem"], row["heldout_top_layermem"]],
            "Least-k": [row["least_layermem"], row["heldout_least_layermem"]],
        },
        index=["candidates", "held-out"],
    )
    return table.rename_axis(f"LayerMem at {layer}")


def top_least_view(tests: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    """A2's page table from :func:`top_least_tests`': one row per layer, the difference, t
    and Welch p of each encoder side by side."""
    encoders = list(dict.fromkeys(tests["encoder"]))
    columns = ("difference", "t", "welch_p")
    shown = tests.pivot(index="layer", columns="encoder", values=list(columns))
    return shown.swaplevel(axis=1)[[(e, v) for e in encoders for v in columns]].reindex(layers)


def top_least_claims(
    tests: pd.DataFrame, gap_tests: pd.DataFrame, deep: list[str], k: int
) -> list[dict]:
    """A2's claims over the ``deep`` layers (intersection-union, :func:`all_layers_test`):
    UnitMem higher on the Top-k than on the Least-k images for f on its candidates
    (:func:`top_least_tests`), and that gap above the held-out images' gap
    (:func:`gap_against_heldout`)."""
    f_tests = tests[tests["encoder"] == "f, candidates"]
    top = all_layers_test(f_tests, deep, p="welch_p", statistic="t")
    gap = all_layers_test(gap_tests, deep, p="p", statistic="t")
    return [
        claim(
            "UnitMem is higher on the Top-k than on the Least-k images (deep layers)",
            f"one-sided Welch t per deep layer over units, k = {k}; min t, max p",
            top,
            holds=top.statistic > 0,
        ),
        claim(
            "the Top-k vs Least-k gap exceeds the same gap on held-out images (deep layers)",
            "paired one-sided t over units of (gap on candidates − gap on held-out) per deep "
            "layer; min t, max p",
            gap,
            holds=gap.statistic > 0,
        ),
    ]


def gap_view(gap_tests: pd.DataFrame) -> pd.DataFrame:
    """A2's page table of :func:`gap_against_heldout`, its columns named for the page."""
    names = {"mean_x": "gap, candidates", "mean_y": "gap, held-out", "n": "units"}
    return gap_tests.rename(columns=names)


def top_least_note(tests: pd.DataFrame) -> str:
    """A2's paragraph under the verdicts: the layers with Top-k above Least-k at p < 0.05
    (Welch, unadjusted) for f on its candidates and on held-out images, of all layers."""

    def significant(encoder: str) -> str:
        rows = tests[(tests["encoder"] == encoder) & (tests["welch_p"] < 0.05)]
        return ", ".join(rows["layer"]) or "none"

    n_layers = tests["layer"].nunique()
    return (
        "Layers with Top-k > Least-k at p < 0.05 (Welch): f on candidates: "
        f"{significant('f, candidates')}; f on held-out images (control): "
        f"{significant('f, held-out')} (of {n_layers}). The poster gives no numbers for this "
        "figure; compare the shape."
    )


def top_least_gallery(images: Tensor, scores: pd.Series, k: int, show: int = 10):
    """A2's gallery: the ``min(k, show)`` highest- and lowest-scoring of ``images`` (top row,
    then bottom row) with their captions. Returns ``(images, captions)``."""
    s = scores.to_numpy()
    show = min(k, show)
    top, least = top_indices(s, k)[:show], top_indices(s, k, largest=False)[:show]
    captions = [f"top {i + 1}" for i in range(show)] + [f"least {i + 1}" for i in range(show)]
    return images[list(top) + list(least)], captions


def mu_max_shares(runs: dict, *, k: int, fraction: float) -> pd.DataFrame:
    """A3's table: :func:`mu_max_share` of every run of :func:`sslmem_ranked_runs`, stacked,
    with the run's name in ``encoder``."""
    frames = [
        mu_max_share(result, scores, k=k, fraction=fraction).assign(encoder=name)
        for name, (result, scores) in runs.items()
    ]
    return pd.concat(frames, ignore_index=True)


def dominance_spearman(runs: dict) -> dict:
    """A3: per run of :func:`sslmem_ranked_runs`, Spearman's ρ of the number of units an image
    dominates (:func:`dominance_with_sslmem`) against its SSLMem, one-sided (greater)."""
    out = {}
    for name, (result, scores) in runs.items():
        d = dominance_with_sslmem(result, scores)
        out[name] = spearman_trend(d["total"], d["sslmem"], alternative="greater")
    return out


def dominance_spearman_table(rhos: dict) -> pd.DataFrame:
    """A3's page table of :func:`dominance_spearman`: ``rho`` and ``p (one-sided)`` per run."""
    table = {name: {"rho": r.statistic, "p (one-sided)": r.pvalue} for name, r in rhos.items()}
    return pd.DataFrame(table).T.rename_axis("units dominated vs SSLMem")


def dominance_sentence(dominance: pd.DataFrame) -> str:
    """A3's sentence on :func:`dominance_with_sslmem`'s table: how many images dominate a unit
    and how many unit maxima the ten most dominating ones hold."""
    dominating = dominance[dominance["total"] > 0]
    return (
        f"{len(dominating)} of {len(dominance)} images dominate at least one unit; the top 10 "
        f"of them hold {dominating['total'].head(10).sum()} of {int(dominance['total'].sum())} "
        "unit maxima."
    )


def dominating_gallery(images: Tensor, dominance: pd.DataFrame, most: int = 20):
    """A3's gallery: the (at most ``most``) images of ``images`` that dominate the most units
    (:func:`dominance_with_sslmem`'s order), captioned with their unit count and SSLMem rank.
    Returns ``(images, captions)``."""
    top = dominance[dominance["total"] > 0].head(most)
    captions = [f"{t} units, rank {r}" for t, r in top[["total", "sslmem_rank"]].values]
    return images[list(top.index)], captions


def mu_max_claims(shares: pd.DataFrame, k: int, n: int, fraction: float) -> list[dict]:
    """A3's claims from :func:`mu_max_shares`' pooled row of f on its candidates: the share of
    top units whose μ_max image is in the Top-k above chance k/N, over units and over distinct
    images (one-sided binomial tests)."""
    pooled = _pooled_share(shares)
    return [
        claim(
            "the top units' μ_max images are high-SSLMem images (above chance)",
            f"share of top-{fraction:.0%} units (all layers) whose μ_max image is in the "
            f"Top-{k} by SSLMem vs chance {k / n:.3f}, one-sided binomial over units",
            (pooled["fraction"], pooled["p_value"]),
            holds=pooled["fraction"] > k / n,
        ),
        claim(
            "the top units' μ_max images are high-SSLMem images (distinct images)",
            f"share of the distinct μ_max images of the top units in the Top-{k} vs chance, "
            "one-sided binomial over images",
            (pooled["distinct_fraction"], pooled["distinct_p"]),
            holds=pooled["distinct_fraction"] > k / n,
        ),
    ]


def _pooled_share(shares: pd.DataFrame) -> pd.Series:
    f_all = (shares["encoder"] == "f, candidates") & (shares["layer"] == "all")
    return shares[f_all].iloc[0]


def mu_max_note(shares: pd.DataFrame, k: int, n: int) -> str:
    """A3's paragraph under the verdicts: f's pooled hits against chance, the range of its
    per-layer shares, and the controls' pooled shares."""
    pooled = _pooled_share(shares)
    others = shares[(shares["layer"] == "all") & (shares["encoder"] != "f, candidates")]
    f_rows = shares[(shares["encoder"] == "f, candidates") & (shares["layer"] != "all")]
    per_layer = f_rows["fraction"]
    controls = "; ".join(
        f"{r.encoder} {r.fraction:.1%} (p = {r.p_value:.2g})" for r in others.itertuples()
    )
    return (
        f"f: {int(pooled['n_hits'])} of {int(pooled['n_units'])} top units "
        f"({pooled['fraction']:.1%}) have their μ_max on a Top-{k} image, against {k / n:.1%} by "
        f"chance; per layer the share ranges from {per_layer.min():.0%} to "
        f"{per_layer.max():.0%}. Controls: {controls}. The poster gives no numbers for this "
        "figure; compare the shape."
    )


# ------------------------------------------------------------------------------ your encoder


def excess_over_both_controls(controls: UnitMemControls) -> pd.DataFrame:
    """:meth:`UnitMemControls.excess` with ``p_both_holm``: per layer, the larger of the two
    controls' one-sided p-values (the excess must beat both), Holm-adjusted over the layers.
    The report's units page."""
    excess = controls.excess()
    p_columns = [c for c in excess.columns if c.endswith("_p")]
    excess["p_both_holm"] = holm(excess[p_columns].max(axis=1).tolist())
    return excess


def beyond_controls_sentence(excess: pd.DataFrame) -> str:
    """The layers whose UnitMem exceeds both controls at Holm-adjusted p < 0.05, as a
    sentence (:func:`excess_over_both_controls`'s table)."""
    beyond = excess.loc[(excess["excess"] > 0) & (excess["p_both_holm"] < 0.05), "layer"]
    names = ", ".join(f"`{x}`" for x in beyond) if len(beyond) else "none"
    return (
        "Layers whose UnitMem exceeds both controls (Holm-adjusted p < 0.05): "
        f"{names} (of {len(excess)})."
    )


def mu_max_images(pair, controls: UnitMemControls, top_fraction: float) -> pd.DataFrame:
    """Per candidate image: its file (None for a data set without files), label, how many
    defined units have their μ_max on it and how many of the top ``top_fraction`` units per
    layer (:func:`top_units`); most top units first."""
    n = controls.config["n_points"]
    trained = controls.trained.units[controls.trained.units["defined"]]
    top = top_units(controls.trained, top_fraction)
    files = pair.files("candidate", n)
    table = pd.DataFrame(
        {
            "image": range(n),
            "file": files if files is not None else [None] * n,
            "label": pair.labels("candidate", n).tolist(),
            "units": trained["argmax"].value_counts().reindex(range(n), fill_value=0).values,
            "top_units": top["argmax"].value_counts().reindex(range(n), fill_value=0).values,
        }
    )
    return table.sort_values(["top_units", "units"], ascending=False, kind="stable")


def classmem_of_f_and_random(
    pair, controls: UnitMemControls, *, k_aug: int = 0, rest: str = "mean"
) -> pd.DataFrame | None:
    """ClassMem beside UnitMem per unit (:func:`classmem_beside_unitmem`) of f and of its
    random-initialisation control on the candidates (``model``: f, random init); None when
    the candidates hold fewer than two classes."""
    n, p = controls.config["n_points"], pair.profile
    images, labels = pair.images("candidate", n), pair.labels("candidate", n)
    if labels.unique().numel() < 2:
        return None
    encoders = [
        ("f", pair.f, controls.trained),
        ("random init", untrained_twin(pair.f, seed=p.seed), controls.random),
    ]
    kw = dict(k_aug=k_aug, policy=unitmem_policy(p), rest=rest, seed=p.seed)
    return pd.concat(
        [
            classmem_beside_unitmem(encoder, images, labels, result, model=model, **kw)
            for model, encoder, result in encoders
        ],
        ignore_index=True,
    )


def unitmem_minus_classmem(scores: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    """Mean UnitMem − ClassMem per layer (rows, in ``layers``' order) and model (columns)
    over the defined units of :func:`classmem_of_f_and_random`'s table."""
    table = scores[scores["defined"]].pivot_table(
        index="layer", columns="model", values="difference", sort=False
    )
    return table.reindex(layers).rename(columns=lambda m: f"{m}: UnitMem − ClassMem")
