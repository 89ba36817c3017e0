"""What the intervention notebooks (T6 pruning, A4 one-unit training) measure, in one place.

Both notebooks change the SSL encoder f where UnitMem says memorization sits
(:mod:`memloc.interventions`) and measure what changed:

- UnitMem of f on its own candidates, the measurement the unit notebooks store
  (:func:`candidate_unitmem`; it reads F1's stored result when the settings match).
- T6: on labelled probe sets (:func:`memloc.probe.probe_sets`: the pre-training data set's
  downstream part and another data set at the encoder's input size), pruned copies of f and
  their linear-probe
  accuracy with features computed once per pruned encoder (:func:`pruning_accuracies`), the
  paper-style table (:func:`pruning_table`) and per-setting tests of the ordering
  top < random < low (:func:`ordering_tests`); the page's claims
  and note (:func:`pruning_claims`, :func:`pruning_note`).
- A4: the units to train (:func:`extreme_units`), the image to plant
  (:func:`planted_image`), the training and the measurement after it (:func:`plant_and_measure`,
  both units: :func:`plant_units`), the per-unit comparison before/after
  (:func:`unit_changes`, :func:`planted_summary`) and the page's claims and note
  (:func:`planted_claims`, :func:`planted_note`).
- Probe sets as the pages of T6, A7 and A8 show them (:func:`probe_roles`,
  :func:`probe_set_sizes`, :func:`skipped_markdown`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import stats as _st
from torch import Tensor, nn

from memloc.artifacts import cache_root
from memloc.experiments.units import measure_unitmem, unitmem_policy
from memloc.interventions import STRATEGIES, prune_units, train_one_unit
from memloc.metrics import UnitMemResult
from memloc.probe import ProbeSet, features, probe_accuracy
from memloc.stats import claim, intersection_union

SCOPE_LABELS = {"per_layer": "per layer", "total": "total"}
"""How tables name a pruning scope (the paper's row labels: "top per layer 10%")."""

PAPER_SETTINGS = ("per_layer 0.1", "per_layer 0.2", "total 0.1")
"""The settings of the paper's T6 (scope and fraction of units)."""

PAPER_DATASET_COLUMNS = {"pretraining": "accuracy_cifar10", "other": "accuracy_svhn"}
"""Which column of the paper's T6 each of our probe sets stands beside: the pre-training data
set (CIFAR-10 in the paper) and the first other data set (SVHN; STL10 has no counterpart)."""


# ------------------------------------------------------------------------------ UnitMem of f


def candidate_unitmem(
    pair,
    *,
    n_points: int | None = None,
    k_aug: int | None = None,
    rest: str = "mean",
    seed: int | None = None,
    cache: bool = True,
) -> UnitMemResult:
    """UnitMem of every unit of ``pair.f`` on its first N candidates, K views of the book's
    UnitMem policy (None: the profile's N, K and seed).

    The same measurement as the trained encoder of
    :func:`memloc.experiments.units.unitmem_with_controls`, so with the same settings it reads
    the unit notebooks' stored mean activations instead of running f again.
    """
    profile = pair.profile
    n = int(n_points or profile.n_points)
    k = int(k_aug if k_aug is not None else profile.k_aug)
    seed = int(profile.seed if seed is None else seed)
    return measure_unitmem(
        pair.f,
        pair.images("candidate", n),
        k_aug=k,
        policy=unitmem_policy(profile),
        rest=rest,
        seed=seed,
        cache_dir=cache_root() if cache else None,
    )


# ------------------------------------------------------------------------------ probe sets


def probe_roles(sets: dict[str, ProbeSet]) -> dict[str, str]:
    """Each probe set's role by name (``"pretraining"`` or ``"other"``): what the figures of
    T6, A7 and A8 take to title their panels."""
    return {name: s.role for name, s in sets.items()}


def probe_set_sizes(sets: dict[str, ProbeSet]) -> dict[str, dict]:
    """Each probe set's numbers of training and test images and where they came from
    (``{name: {"train", "test", "source"}}``): the provenance of T6, A7 and A8."""
    return {name: {**s.sizes, "source": s.source} for name, s in sets.items()}


def probe_sets_table(sets: dict[str, ProbeSet]) -> pd.DataFrame:
    """T6's table of its probe sets: one row per set (index ``probe data set``), its
    ``train`` and ``test`` sizes and ``source`` (:func:`probe_set_sizes`)."""
    return pd.DataFrame(probe_set_sizes(sets)).T.rename_axis("probe data set")


def skipped_markdown(skipped: dict[str, str], consequence: str = "it is left out") -> str:
    """The paragraphs that say which probe data sets are not available here and why (T6, A8):
    ``"**<name> is not available here, so <consequence>:** <why>"``, each after a blank line
    ("" when nothing was skipped)."""
    return "".join(
        f"\n\n**{name} is not available here, so {consequence}:** {why}"
        for name, why in skipped.items()
    )


@dataclass(frozen=True)
class PruneSetting:
    """A pruning scope (``"per_layer"`` or ``"total"``) and the fraction of units pruned."""

    scope: str
    fraction: float

    @classmethod
    def parse(cls, text) -> PruneSetting:
        """``"per_layer 0.1"``, ``"total 20%"``, ``("total", 0.1)`` or a PruneSetting."""
        if isinstance(text, PruneSetting):
            return text
        if isinstance(text, (tuple, list)) and len(text) == 2:
            scope, fraction = text
        else:
            match = re.fullmatch(r"\s*(per[_ ]layer|total)\s+([0-9.]+)\s*(%?)\s*", str(text))
            if match is None:
                raise ValueError(
                    f"cannot read pruning setting {text!r}; write e.g. 'per_layer 0.1' or "
                    "'total 20%'"
                )
            scope, number, percent = match.groups()
            fraction = float(number) / (100 if percent else 1)
        scope = str(scope).replace(" ", "_")
        if scope not in SCOPE_LABELS:
            raise ValueError(f"scope must be one of {list(SCOPE_LABELS)}, got {scope!r}")
        fraction = float(fraction)
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        return cls(scope, fraction)

    @property
    def label(self) -> str:
        """``"per layer 10%"``: the paper's row label without the strategy."""
        return f"{SCOPE_LABELS[self.scope]} {self.fraction * 100:g}%"


def row_label(strategy: str, setting: PruneSetting | None) -> str:
    """The paper's row label: ``"top per layer 10%"``, ``"no pruning"`` for None."""
    return "no pruning" if setting is None else f"{strategy} {setting.label}"


def pruning_accuracies(
    encoder: nn.Module,
    unitmem,
    sets: dict[str, ProbeSet],
    *,
    settings: Sequence = PAPER_SETTINGS,
    strategies: Sequence[str] = STRATEGIES,
    random_seeds: Sequence[int] = (0, 1, 2),
    layers: list[str] | None = None,
    probe_seed: int = 0,
    C: float = 1.0,
    max_iter: int = 1000,
    batch_size: int = 256,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Linear-probe accuracy of ``encoder`` unpruned and pruned by UnitMem (T6).

    For every setting and strategy a pruned copy is made (:func:`memloc.interventions.
    prune_units`; ``"random"`` once per seed of ``random_seeds``); the features of every
    probe set are computed once per encoder (:func:`memloc.probe.features`) and classified by
    a logistic regression on standardised features (:func:`memloc.probe.probe_accuracy`).

    Parameters
    ----------
    encoder : the encoder ``unitmem`` was measured on (not modified).
    unitmem : its :class:`~memloc.metrics.UnitMemResult` (or the ``units`` table).
    sets : probe sets by name (:func:`memloc.probe.probe_sets`).
    settings : pruning settings (:meth:`PruneSetting.parse`).
    layers : the layers to prune (None: every layer owned by a convolution).

    Returns
    -------
    DataFrame
        One row per encoder and probe set: ``row`` (the paper's label), ``strategy``
        (``"none"`` for the unpruned encoder), ``scope``, ``fraction``, ``seed`` (the random
        draw, -1 otherwise), ``n_pruned``, ``pruned_unitmem`` (mean UnitMem of the pruned,
        defined units), ``dataset``, ``accuracy`` (share of the test set).
    """
    settings = [PruneSetting.parse(s) for s in settings]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; use {STRATEGIES}")
    if "random" in strategies and len(random_seeds) < 1:
        raise ValueError("the random strategy needs at least one seed")
    if not sets:
        raise ValueError("no probe set to measure accuracy on")

    variants: list[tuple[dict, Callable[[], tuple[nn.Module, pd.DataFrame | None]]]] = [
        (dict(row="no pruning", strategy="none", scope="", fraction=0.0, seed=-1), None)
    ]
    for setting in settings:
        for strategy in strategies:
            seeds = random_seeds if strategy == "random" else [-1]
            for seed in seeds:
                variants.append(
                    (
                        dict(
                            row=row_label(strategy, setting),
                            strategy=strategy,
                            scope=setting.scope,
                            fraction=setting.fraction,
                            seed=int(seed),
                        ),
                        setting,
                    )
                )
    rows = []
    for info, setting in variants:
        if setting is None:
            model, chosen = encoder, None
        else:
            model, chosen = prune_units(
                encoder,
                unitmem,
                setting.fraction,
                strategy=info["strategy"],
                scope=setting.scope,
                layers=layers,
                seed=max(info["seed"], 0),
            )
        pruned = 0 if chosen is None else len(chosen)
        defined = None if chosen is None else chosen.loc[chosen["defined"], "unitmem"]
        mean_um = float(defined.mean()) if defined is not None and len(defined) else np.nan
        for name, s in sets.items():
            train_x = features(model, s.train_images, batch_size=batch_size).numpy()
            test_x = features(model, s.test_images, batch_size=batch_size).numpy()
            acc = probe_accuracy(
                train_x, s.train_labels, test_x, s.test_labels, probe_seed, C=C, max_iter=max_iter
            )
            rows.append(
                {**info, "n_pruned": pruned, "pruned_unitmem": mean_um, "dataset": name}
                | {"accuracy": acc}
            )
        if progress is not None:
            progress(f"{info['row']} (seed {info['seed']})" if info["seed"] >= 0 else info["row"])
    return pd.DataFrame(rows)


def pruning_table(acc: pd.DataFrame, percent: bool = True) -> pd.DataFrame:
    """The paper's T6 layout: one row per ``row`` label (no pruning first, then per setting
    top, random, low), per data set the accuracy and, for random, the standard deviation over
    seeds (ddof 1; NaN for one seed).

    Returns
    -------
    DataFrame
        Index ``row``; columns ``<dataset>`` and ``<dataset> std`` (in % when ``percent``).
    """
    scale = 100.0 if percent else 1.0
    grouped = acc.groupby(["row", "dataset"], sort=False)["accuracy"]
    mean = grouped.mean().unstack("dataset") * scale
    std = grouped.std(ddof=1).unstack("dataset") * scale
    datasets = list(dict.fromkeys(acc["dataset"]))
    order = list(dict.fromkeys(acc["row"]))
    out = pd.DataFrame(index=pd.Index(order, name="row"))
    for name in datasets:
        out[name] = mean.reindex(order)[name]
        out[f"{name} std"] = std.reindex(order)[name]
    return out


def prediction_test(x: float, sample: np.ndarray, alternative: str) -> tuple[float, float]:
    """One-sided t-test that a single value ``x`` lies below (``"less"``) or above
    (``"greater"``) the distribution the ``sample`` came from (normal, unknown variance):
    ``t = (x - mean) / (s sqrt(1 + 1/n))`` with n - 1 degrees of freedom, the prediction
    interval's statistic. Returns (t oriented so that positive supports the alternative, p);
    NaN when the sample has fewer than two values or no spread."""
    sample = np.asarray(sample, dtype=float)
    n = len(sample)
    if n < 2:
        return float("nan"), float("nan")
    s = float(sample.std(ddof=1))
    if not s > 0:
        return float("nan"), float("nan")
    t = (x - sample.mean()) / (s * math.sqrt(1 + 1 / n))
    t = -t if alternative == "less" else t
    return float(t), float(_st.t.sf(t, df=n - 1))


def ordering_tests(acc: pd.DataFrame) -> pd.DataFrame:
    """Per setting and data set: is pruning the top-UnitMem units worse than pruning random
    ones, and pruning the low-UnitMem units better?

    Each is a one-sided prediction t-test of the single accuracy against the random seeds'
    accuracies (:func:`prediction_test`): under the null hypothesis that UnitMem says nothing
    about a unit's use, top and low are draws like the random ones.

    Returns
    -------
    DataFrame
        ``setting, scope, fraction, dataset, top, random_mean, random_std, n_random, low``,
        ``t_top, p_top`` (top below random), ``t_low, p_low`` (low above random) and
        ``ordered`` (top < random mean < low).
    """
    pruned = acc[acc["strategy"] != "none"]
    rows = []
    for (scope, fraction, dataset), part in pruned.groupby(
        ["scope", "fraction", "dataset"], sort=False
    ):
        by = {s: part.loc[part["strategy"] == s, "accuracy"].to_numpy(float) for s in STRATEGIES}
        rnd = by["random"]
        top = float(by["top"][0]) if len(by["top"]) else np.nan
        low = float(by["low"][0]) if len(by["low"]) else np.nan
        t_top, p_top = prediction_test(top, rnd, "less")
        t_low, p_low = prediction_test(low, rnd, "greater")
        mean = float(rnd.mean()) if len(rnd) else np.nan
        rows.append(
            {
                "setting": PruneSetting(scope, fraction).label,
                "scope": scope,
                "fraction": fraction,
                "dataset": dataset,
                "top": top,
                "random_mean": mean,
                "random_std": float(rnd.std(ddof=1)) if len(rnd) > 1 else np.nan,
                "n_random": len(rnd),
                "low": low,
                "t_top": t_top,
                "p_top": p_top,
                "t_low": t_low,
                "p_low": p_low,
                "ordered": bool(top < mean < low),
            }
        )
    return pd.DataFrame(rows)


def paper_beside(table: pd.DataFrame, paper: pd.DataFrame, roles: dict[str, str]) -> pd.DataFrame:
    """Our T6 table beside the paper's: for each of our data sets (by ``roles``: name ->
    ``"pretraining"``/``"other"``) the paper's column it stands beside
    (:data:`PAPER_DATASET_COLUMNS`), formatted ``mean ± std`` where a std exists.

    ``paper`` is ``memloc.book.paper_numbers("T6")``. Rows the paper does not report are
    blank on its side.
    """

    def fmt(mean, std) -> str:
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            return ""
        return f"{mean:.2f}" + ("" if std is None or math.isnan(std) else f" ± {std:.2f}")

    out = pd.DataFrame(index=table.index)
    for name, role in roles.items():
        if name not in table:
            continue
        column = PAPER_DATASET_COLUMNS[role]
        p = paper[paper["column"] == column].set_index("row")
        out[f"paper {column.removeprefix('accuracy_')}"] = [
            fmt(p["value"].get(r, np.nan), p["std"].get(r, np.nan)) for r in table.index
        ]
        out[f"ours {name}"] = [
            fmt(m, s) for m, s in zip(table[name], table[f"{name} std"], strict=True)
        ]
    return out


# ------------------------------------------------------------------------------ A4: one unit


def extreme_units(result: UnitMemResult, layer: str) -> dict[str, int]:
    """The defined units of ``layer`` with the highest and the lowest UnitMem:
    ``{"high": unit, "low": unit}`` (ties: the lower unit index)."""
    units = result.units[(result.units["layer"] == str(layer)) & result.units["defined"]]
    if len(units) < 2:
        raise ValueError(f"layer {layer!r} has {len(units)} defined units; need two")
    ordered = units.sort_values(["unitmem", "unit"], ascending=[False, True], kind="mergesort")
    low = units.sort_values(["unitmem", "unit"], ascending=[True, True], kind="mergesort")
    return {"high": int(ordered["unit"].iloc[0]), "low": int(low["unit"].iloc[0])}


def planted_image(result: UnitMemResult, layer: str, units: Sequence[int], seed: int = 0) -> int:
    """A position among the measured images, drawn with ``seed``, that is not the mu_max image
    of any of ``units`` (so that a mu_max moving onto it is a change)."""
    table = result.units[result.units["layer"] == str(layer)].set_index("unit")
    taken = {int(table.loc[int(u), "argmax"]) for u in units}
    free = [i for i in range(len(result.groups)) if i not in taken]
    if not free:
        raise ValueError("every image is the mu_max image of one of the units")
    return int(np.random.default_rng(seed).choice(free))


@dataclass
class PlantedUnit:
    """One unit trained on one image: the trained encoder and UnitMem before and after."""

    layer: str
    unit: int
    image: int
    encoder: nn.Module
    before: UnitMemResult
    after: UnitMemResult
    config: dict = field(default_factory=dict)

    def changes(self) -> pd.DataFrame:
        return unit_changes(self.before, self.after, self.layer, self.unit)

    def summary(self) -> dict:
        return planted_summary(self.before, self.after, self.layer, self.unit, self.image)


def plant_and_measure(
    encoder: nn.Module,
    images: Tensor,
    layer: str,
    unit: int,
    image: int,
    *,
    before: UnitMemResult,
    k_aug: int,
    policy,
    rest: str = "mean",
    seed: int = 0,
    cache_dir=None,
    framework: str = "simclr",
    train_policy=None,
    views: int = 32,
    steps: int = 50,
    lr: float = 1e-3,
    train_seed: int = 0,
    **framework_kwargs,
) -> PlantedUnit:
    """Train ``unit`` of ``layer`` on ``images[image]`` (:func:`memloc.interventions.
    train_one_unit`) and measure UnitMem of ``layer`` after it on the same ``images`` with the
    same views (``k_aug``, ``policy``, ``seed``) as ``before``.

    ``before`` is UnitMem of ``encoder`` on ``images`` measured with those settings (any
    layers, ``layer`` among them).
    """
    if len(before.groups) != len(images):
        raise ValueError(f"before scores {len(before.groups)} images, got {len(images)}")
    if str(layer) not in {p.name for p in before.layers}:
        raise ValueError(f"before has no layer {layer!r}")
    if not 0 <= int(image) < len(images):
        raise ValueError(f"image {image} is not one of the {len(images)} measured images")
    trained = train_one_unit(
        encoder,
        str(layer),
        int(unit),
        images[int(image)],
        framework=framework,
        policy=train_policy,
        views=views,
        steps=steps,
        lr=lr,
        seed=train_seed,
        **framework_kwargs,
    )
    after = measure_unitmem(
        trained,
        images,
        k_aug=k_aug,
        policy=policy,
        rest=rest,
        seed=seed,
        layers=[str(layer)],
        cache_dir=cache_dir,
    )
    config = {"views": views, "steps": steps, "lr": lr, "train_seed": train_seed}
    return PlantedUnit(str(layer), int(unit), int(image), trained, before, after, config)


def _layer_units(result: UnitMemResult, layer: str) -> pd.DataFrame:
    u = result.units[result.units["layer"] == str(layer)]
    if u.empty:
        raise ValueError(f"no layer {layer!r} in the UnitMem result")
    return u.set_index("unit").sort_index()


def unit_changes(
    before: UnitMemResult, after: UnitMemResult, layer: str, trained_unit: int
) -> pd.DataFrame:
    """Per unit of ``layer``: UnitMem and its mu_max image before and after, and the change.

    Returns
    -------
    DataFrame
        ``unit, trained, unitmem_before, unitmem_after, change, argmax_before, argmax_after,
        defined`` (defined before and after).
    """
    b, a = _layer_units(before, layer), _layer_units(after, layer)
    if not b.index.equals(a.index):
        raise ValueError("before and after measure different units")
    out = pd.DataFrame(
        {
            "unit": b.index.to_numpy(int),
            "trained": b.index.to_numpy(int) == int(trained_unit),
            "unitmem_before": b["unitmem"].to_numpy(float),
            "unitmem_after": a["unitmem"].to_numpy(float),
            "argmax_before": b["argmax"].to_numpy(int),
            "argmax_after": a["argmax"].to_numpy(int),
            "defined": (b["defined"] & a["defined"]).to_numpy(bool),
        }
    )
    out.insert(4, "change", out["unitmem_after"] - out["unitmem_before"])
    return out


def _rank_of(values: np.ndarray, index: int) -> int:
    """1 + the number of values strictly above ``values[index]`` (1 = the maximum)."""
    return int(1 + (values > values[index]).sum())


def planted_summary(
    before: UnitMemResult, after: UnitMemResult, layer: str, unit: int, image: int
) -> dict:
    """What training ``unit`` on ``image`` did, as numbers the verdicts use.

    - ``change``: the unit's UnitMem after minus before;
    - ``rank_p``: the share of defined units whose change is at least as large (the trained
      unit included): a rank p-value, 1 / n when the trained unit's change is the largest;
    - ``max_other_change``: the largest absolute change of any other defined unit;
    - ``argmax_before``, ``argmax_after``: the unit's mu_max image; ``moved`` whether it is now
      the planted image;
    - ``image_rank_before``, ``image_rank_after``: the planted image's rank among the N images
      by the unit's mean activation (1 = mu_max);
    - ``percentile_before``, ``percentile_after``: the share of the layer's defined units with
      UnitMem at most the trained unit's.
    """
    table = unit_changes(before, after, layer, unit)
    defined = table[table["defined"]]
    row = table.set_index("unit").loc[int(unit)]
    others = defined[~defined["trained"]]
    change = float(row["change"])
    n = len(defined)
    if row["defined"] and n:
        rank_p = float((defined["change"] >= change).sum() / n)
    else:
        rank_p = float("nan")
    mu_b = np.asarray(before.mu[str(layer)], dtype=float)[:, int(unit)]
    mu_a = np.asarray(after.mu[str(layer)], dtype=float)[:, int(unit)]

    def percentile(column: str) -> float:
        values = table.loc[table["unitmem_before" if column == "b" else "unitmem_after"].notna()]
        scores = values["unitmem_before" if column == "b" else "unitmem_after"].to_numpy(float)
        mine = float(row["unitmem_before" if column == "b" else "unitmem_after"])
        return float((scores <= mine).mean()) if not math.isnan(mine) else float("nan")

    return {
        "layer": str(layer),
        "unit": int(unit),
        "image": int(image),
        "unitmem_before": float(row["unitmem_before"]),
        "unitmem_after": float(row["unitmem_after"]),
        "change": change,
        "n_units": n,
        "rank_p": rank_p,
        "max_other_change": float(others["change"].abs().max()) if len(others) else 0.0,
        "argmax_before": int(row["argmax_before"]),
        "argmax_after": int(row["argmax_after"]),
        "moved": bool(int(row["argmax_after"]) == int(image)),
        "image_rank_before": _rank_of(mu_b, int(image)),
        "image_rank_after": _rank_of(mu_a, int(image)),
        "percentile_before": percentile("b"),
        "percentile_after": percentile("a"),
    }


def pruned_layers(
    encoder: nn.Module,
    unitmem,
    settings: Sequence = PAPER_SETTINGS,
    strategies: Sequence[str] = ("top", "low"),
    layers: list[str] | None = None,
) -> pd.DataFrame:
    """How many units each deterministic pruning removes from each layer.

    Returns
    -------
    DataFrame
        Index ``row`` (the paper's label), one column of counts per pruned layer.
    """
    counts = {}
    for setting in (PruneSetting.parse(s) for s in settings):
        for strategy in strategies:
            _, chosen = prune_units(
                encoder,
                unitmem,
                setting.fraction,
                strategy=strategy,
                scope=setting.scope,
                layers=layers,
            )
            counts[row_label(strategy, setting)] = chosen.groupby("layer", sort=False).size()
    table = pd.DataFrame(counts).T.fillna(0).astype(int)
    order = list(dict.fromkeys(getattr(unitmem, "units", unitmem)["layer"].astype(str)))
    table = table[[c for c in order if c in table.columns]]
    table.index.name = "row"
    return table


def removed_units(acc: pd.DataFrame, per_layer: pd.DataFrame) -> pd.DataFrame:
    """T6's table of what each pruning removed: per row label the number of pruned units and
    their mean UnitMem (for random, the means over seeds) from :func:`pruning_accuracies`'
    table, joined with :func:`pruned_layers`' counts per layer (top and low only)."""
    removed = acc.groupby("row", sort=False)[["n_pruned", "pruned_unitmem"]].mean()
    return removed.join(per_layer)


def ordering_tests_shown(tests: pd.DataFrame) -> pd.DataFrame:
    """T6's per-setting tests (:func:`ordering_tests`) as the page shows them: without scope
    and fraction (the ``setting`` label says both) and the accuracies in %."""
    shown = tests.drop(columns=["scope", "fraction"])
    percent = ["top", "random_mean", "random_std", "low"]
    shown[percent] = 100 * shown[percent]
    return shown


def pruning_claims(
    tests: pd.DataFrame, n_random: int, n_settings: int, n_datasets: int
) -> list[dict]:
    """T6's claims from :func:`ordering_tests`: top below random and low above random, each an
    intersection-union over every setting and data set
    (:func:`memloc.stats.intersection_union`), and the count of settings where the full
    ordering top < random < low holds (all must)."""
    if tests.empty:
        raise ValueError("no per-setting tests")
    top = intersection_union(tests["t_top"], tests["p_top"])
    low = intersection_union(tests["t_low"], tests["p_low"])
    n_ordered = int(tests["ordered"].sum())
    where = f"{n_settings} settings × {n_datasets} data set(s)"
    per_setting = f"random seeds, per setting ({where}); intersection-union: min t, max p"
    return [
        claim(
            "pruning the highest-UnitMem units lowers probe accuracy more than pruning "
            "random units",
            f"one-sided prediction t of top against {n_random} {per_setting}",
            top,
            holds=top.statistic > 0,
        ),
        claim(
            "pruning the lowest-UnitMem units lowers probe accuracy less than pruning random units",
            f"one-sided prediction t of low against {n_random} {per_setting}",
            low,
            holds=low.statistic > 0,
        ),
        claim(
            "accuracy orders top < random < low in every setting",
            f"count of settings ({where}) with top < mean random < low; must be all",
            statistic=n_ordered,
            holds=n_ordered == len(tests),
        ),
    ]


def pruning_note(tests: pd.DataFrame) -> str:
    """T6's sentence under the verdicts: in how many settings (and data sets) top lies below
    random and low above it at p < 0.05, and where the full ordering holds."""
    n = len(tests)
    return (
        f"Top below random at p < 0.05 in {int((tests['p_top'] < 0.05).sum())} of {n} "
        f"settings, low above random in {int((tests['p_low'] < 0.05).sum())}; the full "
        f"ordering holds in {int(tests['ordered'].sum())} of {n}."
    )


# ------------------------------------------------------------------------------ A4: the page


def plant_units(
    pair,
    before: UnitMemResult,
    layer: str,
    units: dict[str, int],
    image: int,
    *,
    rest: str = "mean",
    views: int = 32,
    steps: int = 50,
    lr: float = 1e-3,
    negatives: bool = False,
) -> dict[str, PlantedUnit]:
    """A4's interventions: each unit of ``units`` (``{"high": unit, "low": unit}``,
    :func:`extreme_units`) trained on candidate ``image`` and measured after it on the same
    candidates (:func:`plant_and_measure`), with the pair's framework, augmentations,
    temperature and seed and the views of ``before`` (:func:`candidate_unitmem`: UnitMem of
    ``pair.f`` on its first N candidates, the profile's K, seed and policy). ``negatives``:
    the rest of each batch is the other candidates (SimCLR's usual negatives) instead of more
    views of the image."""
    p = pair.profile
    images = pair.images("candidate", len(before.groups))
    others = torch.cat([images[:image], images[image + 1 :]]) if negatives else None
    return {
        which: plant_and_measure(
            pair.f,
            images,
            layer,
            unit,
            image,
            before=before,
            k_aug=p.k_aug,
            policy=unitmem_policy(p),
            rest=rest,
            seed=p.seed,
            cache_dir=cache_root(),
            framework=pair.framework,
            train_policy=pair.policy,
            views=views,
            steps=steps,
            lr=lr,
            train_seed=p.seed,
            temperature=p.temperature,
            negatives=others,
        )
        for which, unit in units.items()
    }


def planted_changes(planted: dict[str, PlantedUnit]) -> pd.DataFrame:
    """A4's per-unit table: :func:`unit_changes` of each intervention of :func:`plant_units`,
    one after the other, with ``trained_unit`` naming the intervention (``high``, ``low``)."""
    return pd.concat(
        [r.changes().assign(trained_unit=which) for which, r in planted.items()],
        ignore_index=True,
    )


def planted_summaries(planted: dict[str, PlantedUnit]) -> pd.DataFrame:
    """A4's summary table: :func:`planted_summary` of each intervention, one row per trained
    unit (index ``trained unit``: ``high``, ``low``)."""
    summary = pd.DataFrame({which: r.summary() for which, r in planted.items()}).T
    summary.index.name = "trained unit"
    return summary


def planted_gallery(pair, planted: dict[str, PlantedUnit]) -> tuple[Tensor, list[str]]:
    """A4's gallery: the planted image and each trained unit's mu_max image before training
    (candidates of ``pair``), and their titles (for :func:`memloc.figures.image_gallery`)."""
    first = next(iter(planted.values()))
    image, images = first.image, pair.images("candidate", len(first.before.groups))
    chosen = [image] + [int(r.summary()["argmax_before"]) for r in planted.values()]
    return images[chosen], ["planted"] + [f"μ_max before, {w} unit" for w in planted]


def memorization_reference(pair) -> str:
    """A4's sentence after its check (which requires only that f learned): the smallest
    Holm-adjusted p of f's per-layer S_C-vs-S_I contrast, for reference ("" without g)."""
    from memloc.regime import check_pair

    if pair.g is None:
        return ""
    memory = check_pair(pair, learned=False)
    return (
        " For reference, not required here: the smallest Holm-adjusted p of f's "
        f"per-layer S_C-vs-S_I contrast is {memory.smallest_p:.3g}."
    )


def planted_claims(planted: dict[str, PlantedUnit]) -> list[dict]:
    """A4's claims, two per trained unit: its UnitMem rises and no other unit's changes
    (statistic: the change; p: the rank p among the layer's defined units), and its mu_max
    moves to the planted image (statistic: the image's rank after training; no p)."""
    claims = []
    for which, r in planted.items():
        s, n_images = r.summary(), len(r.before.groups)
        claims += [
            claim(
                f"training one {which}-UnitMem unit on one image raises its UnitMem and "
                "no other unit's",
                f"UnitMem change of unit {s['unit']} of layer {r.layer}; rank p among "
                f"{s['n_units']} defined units; other units' |change| <= 1e-9",
                (s["change"], s["rank_p"]),
                holds=s["change"] > 0 and s["max_other_change"] <= 1e-9,
            ),
            claim(
                f"the trained {which}-UnitMem unit's mu_max moves to the planted image",
                "rank of the planted image by the unit's mean activation after training "
                f"(1 = mu_max), among N = {n_images}",
                statistic=s["image_rank_after"],
                holds=s["moved"],
            ),
        ]
    return claims


def planted_note(planted: dict[str, PlantedUnit]) -> str:
    """A4's list under the verdicts: per trained unit its UnitMem and percentile in the layer
    before and after, the planted image's rank before and after, and the largest change of
    another unit."""
    lines = []
    for which, r in planted.items():
        s = r.summary()
        lines.append(
            f"- {which} unit {s['unit']}: UnitMem {s['unitmem_before']:.3f} → "
            f"{s['unitmem_after']:.3f} (percentile in the layer {s['percentile_before']:.2f} → "
            f"{s['percentile_after']:.2f}); the planted image ranked {s['image_rank_before']} → "
            f"{s['image_rank_after']} of {len(r.before.groups)}; largest change of another "
            f"unit {s['max_other_change']:.1e}."
        )
    return "\n".join(lines)
