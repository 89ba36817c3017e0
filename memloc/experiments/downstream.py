"""What the downstream notebooks measure: T5 (fine-tuning the most memorizing layers), A7
(swapping layers with an encoder trained on another data set) and A8 (SSL vs SL encoders).

All three choose layers by LayerMem and look at downstream accuracy:

- :func:`layer_scores`: LayerMem and ΔLayerMem of every layer that has parameters, from a
  LayerMem table (by default the S_C-vs-S_I contrast, the score T1's verdict uses);
  :func:`pair_layer_scores` gives them for a profile's cached pair.
- T5: its sizes and downstream data (:func:`finetune_sizes`, :func:`downstream_probe`), the
  layer sets to fine-tune (:func:`finetune_sets`: head only, the last k layers and the
  k most memorizing layers by LayerMem and by ΔLayerMem), their accuracy over seeds
  (:func:`finetune_accuracies`), the paired tests most vs last (:func:`finetune_tests`) and
  the page's claims and notes (:func:`finetune_claims`, :func:`finetune_notes`).
- A7: an encoder of the same architecture trained on another data set
  (:func:`donor_encoder`, :func:`pair_donor`), the most / least / random memorizing layer sets
  (:func:`swap_settings`), the probe accuracy of every swapped encoder
  (:func:`swap_accuracies`), the tests of "most moves accuracy the most"
  (:func:`swap_tests`) and the page's claims (:func:`swap_claims`).
- A8: the probe accuracy of several encoders on several data sets with Wilson intervals and
  exact McNemar tests between two encoders on the same test images (:func:`probe_table`,
  :func:`mcnemar_tests`, :func:`mcnemar_holm`) and the page's context entries
  (:func:`ssl_sl_claims`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats as _st
from torch import nn

from memloc.artifacts import (
    cache_root,
    encoder_pair,
    encoder_spec,
    get_encoder,
    load_encoder,
    random_encoder,
)
from memloc.data import canonical_name, default_donor_dataset, default_other_dataset, load_dataset
from memloc.experiments.interventions import prediction_test, probe_roles
from memloc.experiments.layers import pair_layermem
from memloc.experiments.units import measurement_key
from memloc.interventions import swap_layers
from memloc.models.units import layer_module_path
from memloc.probe import (
    ProbeSet,
    features,
    finetune,
    other_probe_set,
    probe_predictions,
    probe_sets,
)
from memloc.profiles import Profile, donor_profile, is_small
from memloc.stats import claim, holm, intersection_union, mcnemar_test
from memloc.utils import atomic_write_json

FINETUNE_PREFIX = "finetune-"
"""Stored fine-tuning accuracies in the cache folder: ``finetune-<key>.json``."""
FINETUNING = ("memloc.probe",)
"""The code a stored fine-tuning accuracy depends on (:func:`memloc.probe.finetune` and what it
imports; the encoder's own modules are added to it)."""

SCORES = {"LM": "LayerMem", "ΔLM": "ΔLayerMem"}
"""The two rankings of layers the paper uses, by the names its tables give them."""


# ------------------------------------------------------------------------------ layer scores


def layer_scores(table: pd.DataFrame, encoder: nn.Module, score: str = "contrast") -> pd.DataFrame:
    """LayerMem (``LM``) and ΔLayerMem (``ΔLM``) of every layer of ``encoder`` that has
    parameters, in forward order.

    ΔLM of a layer is its score minus the score at the measurement point before it (residual
    sums included, as in the paper's T1); the first layer's ΔLM is its own score. Residual sums
    have no parameters to fine-tune or swap, so they are left out of the result.

    Parameters
    ----------
    table : a LayerMem table (``LayerMemResult.table``): a ``layer`` column in forward order
        and the ``score`` column.
    encoder : the encoder the table was measured on (to tell which layers have parameters).
    score : the table's column to rank by (default ``"contrast"``: S_C vs S_I, free of the
        f-vs-g offset; ``"layermem"`` is the paper's raw score).
    """
    if score not in table:
        raise KeyError(f"the table has no column {score!r}; columns: {list(table.columns)}")
    values = table.set_index("layer")[score].astype(float)
    delta = values.diff()
    delta.iloc[0] = values.iloc[0]
    keep = [
        layer
        for layer in values.index
        if list(encoder.get_submodule(layer_module_path(encoder, str(layer))).parameters())
    ]
    out = pd.DataFrame({"LM": values, "ΔLM": delta}).loc[keep]
    out.index = out.index.astype(str)
    return out.rename_axis("layer")


def pair_layer_scores(
    profile, framework: str = "simclr", *, seed: int = 0, score: str = "contrast", **overrides
):
    """The cached pair of a profile (trained if missing), its T1 LayerMem measurement (the same
    cached result T1 reads, views seeded by ``seed``) and :func:`layer_scores` of its f.

    ``overrides`` are profile keys (None keeps the profile's value). Returns
    ``(pair, layermem_result, scores)``.
    """
    pair = encoder_pair(profile, framework, progress=False, **overrides)
    result = pair_layermem(pair, seed=seed)
    return pair, result, layer_scores(result.table, pair.f, score=score)


def _check_rule(rule: str) -> None:
    if rule not in SCORES:
        raise ValueError(f"unknown ranking {rule!r}; use one of {list(SCORES)}")


def ranked_layers(scores: pd.DataFrame, rule: str, k: int, most: bool = True) -> list[str]:
    """The ``k`` layers with the highest (``most``) or lowest score by ``rule`` (``"LM"`` or
    ``"ΔLM"``), listed in forward order. Ties go to the earlier layer."""
    _check_rule(rule)
    if not 1 <= int(k) <= len(scores):
        raise ValueError(f"k must be between 1 and {len(scores)} layers, got {k}")
    order = np.argsort(-scores[rule].to_numpy() if most else scores[rule].to_numpy(), kind="stable")
    chosen = set(order[: int(k)])
    return [layer for i, layer in enumerate(scores.index) if i in chosen]


def layers_label(layers: Sequence[str]) -> str:
    """``"6,8"`` for layers 6 and 8, ``"head only"`` for none (the paper's T5 labels)."""
    return ",".join(layers) if layers else "head only"


@contextmanager
def _progress_bar(
    progress: bool | Callable[[str], None] | None, total: int, desc: str
) -> Iterator[Callable[[str], None] | None]:
    """The callback a measurement reports each step to: ``progress`` itself when it is a
    callable, a tqdm bar of ``total`` steps when it is True (closed afterwards), else None."""
    if progress is True:
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc) as bar:
            yield lambda _: bar.update()
    else:
        yield progress or None


# ------------------------------------------------------------------------------ T5: fine-tuning


def finetune_sets(
    scores: pd.DataFrame, ks: Sequence[int] = (1, 2, 3), *, least: bool = False
) -> pd.DataFrame:
    """The layer sets T5 fine-tunes: the head alone, and for each k the last k layers and the
    k most memorizing layers by LM and by ΔLM; with ``least``, also the k least memorizing
    layers by each (a control: does any layer other than the last do as well?).

    Returns
    -------
    DataFrame
        ``choice`` (``"head only"``, ``"last"``, ``"most LM"``, ``"most ΔLM"``, ``"least LM"``,
        ``"least ΔLM"``), ``k``, ``layers`` (tuple, forward order) and ``label`` (``"6,8"``).
    """
    rows = [{"choice": "head only", "k": 0, "layers": ()}]
    names = list(scores.index)
    kinds = [("most", True)] + ([("least", False)] if least else [])
    for k in ks:
        if not 1 <= int(k) <= len(names):
            raise ValueError(f"k must be between 1 and {len(names)} layers, got {k}")
        rows.append({"choice": "last", "k": int(k), "layers": tuple(names[-int(k) :])})
        for kind, most in kinds:
            for rule in SCORES:
                layers = tuple(ranked_layers(scores, rule, k, most=most))
                rows.append({"choice": f"{kind} {rule}", "k": int(k), "layers": layers})
    out = pd.DataFrame(rows)
    out["label"] = out["layers"].map(layers_label)
    return out


def finetune_accuracies(
    encoder: nn.Module,
    sets: pd.DataFrame,
    probe: ProbeSet,
    *,
    seeds: Sequence[int],
    epochs: int,
    lr: float,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    progress: bool | Callable[[str], None] | None = None,
    cache: bool = False,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Test accuracy on ``probe`` after fine-tuning each layer set of ``sets`` and a new head
    (:func:`memloc.probe.finetune`), once per seed.

    A layer set that appears under several choices (the last layer may also be the most
    memorizing one) is trained once per seed and its accuracy reported under each.
    ``progress``: a callable told each training, or True for a progress bar. ``cache``: store
    each accuracy in the cache folder (``cache_dir``, default the encoder cache's) as
    ``finetune-<key>.json``, the key a hash of the encoder's weights, the probe set, the layer
    set, the seed, the settings and the code they run (:func:`memloc.experiments.units.
    measurement_key`); a later call, or one after an interruption, reads what is stored and
    trains only the rest (T5's fine-tuning is the book's slowest notebook step).

    Returns
    -------
    DataFrame
        ``choice, k, label, seed, accuracy``: one row per row of ``sets`` and seed.
    """
    if len(seeds) < 1:
        raise ValueError("need at least one seed")
    done: dict[tuple[tuple[str, ...], int], float] = {}
    store = cache_root(cache_dir) if cache else None
    probe_tensors = [probe.train_images, probe.test_images]
    probe_tensors += [torch.as_tensor(probe.train_labels), torch.as_tensor(probe.test_labels)]
    settings = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay}

    def stored_key(layers: tuple[str, ...], seed: int) -> str:
        return measurement_key(
            "finetune",
            [encoder],
            probe_tensors,
            {**settings, "layers": list(layers), "seed": seed},
            code=FINETUNING,
        )

    rows = []
    total = len({tuple(x) for x in sets["layers"]}) * len(seeds)
    with _progress_bar(progress, total, "fine-tuning") as report:
        for _, row in sets.iterrows():
            for seed in seeds:
                key = (tuple(row["layers"]), int(seed))
                if key not in done:
                    stored = store / f"{FINETUNE_PREFIX}{stored_key(*key)}.json" if store else None
                    if stored is not None and stored.exists():
                        done[key] = json.loads(stored.read_text())["accuracy"]
                    else:
                        done[key] = finetune(
                            encoder,
                            list(row["layers"]),
                            probe.train_images,
                            probe.train_labels,
                            probe.test_images,
                            probe.test_labels,
                            epochs=epochs,
                            lr=lr,
                            seed=int(seed),
                            batch_size=batch_size,
                            weight_decay=weight_decay,
                        )
                        if stored is not None:
                            atomic_write_json(stored, {"accuracy": done[key], "seed": key[1]})
                    if report is not None:
                        report(f"{layers_label(key[0])} (seed {seed})")
                rows.append(
                    {
                        "choice": row["choice"],
                        "k": row["k"],
                        "label": row["label"],
                        "seed": int(seed),
                        "accuracy": done[key],
                    }
                )
    return pd.DataFrame(rows)


def finetune_table(acc: pd.DataFrame, percent: bool = True) -> pd.DataFrame:
    """Mean and standard deviation over seeds (ddof 1) per choice and k, in % by default."""
    scale = 100.0 if percent else 1.0
    grouped = acc.groupby(["choice", "k", "label"], sort=False)["accuracy"]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out[["mean", "std"]] *= scale
    return out.rename(columns={"count": "n_seeds"})


def finetune_tests(acc: pd.DataFrame, kind: str = "most") -> pd.DataFrame:
    """Per k and ranking: does fine-tuning the k most (``kind="least"``: least) memorizing
    layers beat fine-tuning the last k layers?

    A one-sided paired t-test over seeds (the same seed gives both runs the same head
    initialisation and batch order). Where the two sets are the same layers there is nothing
    to test: the row says so and its t and p are NaN.

    Returns
    -------
    DataFrame
        ``k, rule, chosen`` (the most or least memorizing layers), ``last, same,
        chosen_mean, last_mean, difference`` (chosen minus last), ``t, p``.
    """
    rows = []
    last = acc[acc["choice"] == "last"]
    for rule in SCORES:
        chosen = acc[acc["choice"] == f"{kind} {rule}"]
        for k, part in chosen.groupby("k", sort=True):
            base = last[last["k"] == k].set_index("seed")["accuracy"]
            mine = part.set_index("seed")["accuracy"].reindex(base.index)
            label, label_last = part["label"].iloc[0], last[last["k"] == k]["label"].iloc[0]
            same = label == label_last
            diff = (mine - base).to_numpy(float)
            t = p = np.nan
            if not same and len(diff) >= 2 and diff.std(ddof=1) > 0:
                res = _st.ttest_rel(
                    mine.to_numpy(float), base.to_numpy(float), alternative="greater"
                )
                t, p = float(res.statistic), float(res.pvalue)
            rows.append(
                {
                    "k": int(k),
                    "rule": rule,
                    "chosen": label,
                    "last": label_last,
                    "same": same,
                    "chosen_mean": float(mine.mean()),
                    "last_mean": float(base.mean()),
                    "difference": float(diff.mean()),
                    "t": t,
                    "p": p,
                }
            )
    return pd.DataFrame(rows)


def finetune_sizes(
    profile: str, n_seeds: int | None = None, n_train: int | None = None, n_test: int | None = None
) -> tuple[int, int, int]:
    """T5's fine-tuning seeds and downstream training and test images (at most): the given
    numbers, or where None 5 seeds and 2000 images, 3 seeds and 500 images at ``quick`` and
    the toy profiles (:func:`memloc.profiles.is_small`), whose runs only exercise the code.

    Raises
    ------
    ValueError
        With fewer than 2 seeds: the paired t-test needs two.
    """
    small = is_small(profile)
    n_seeds = (3 if small else 5) if n_seeds is None else n_seeds
    n_train = (500 if small else 2000) if n_train is None else n_train
    n_test = (500 if small else 2000) if n_test is None else n_test
    if n_seeds < 2:
        raise ValueError(f"n_seeds must be at least 2 for the paired test, got {n_seeds}")
    return n_seeds, n_train, n_test


def downstream_probe(
    pair, dataset: str | None = None, *, n_train: int | None = None, n_test: int | None = None
) -> ProbeSet:
    """T5's downstream data set, another than the pair's (None:
    :func:`memloc.data.default_other_dataset`), at the encoder's input size and channels, its
    images drawn with the profile's seed (:func:`memloc.probe.other_probe_set`)."""
    p = pair.profile
    return other_probe_set(
        dataset or default_other_dataset(p.dataset),
        image_size=p.image_size,
        channels=pair.dataset.channels,
        n_train=n_train,
        n_test=n_test,
        seed=p.seed,
    )


def finetune_beside_paper(
    table: pd.DataFrame, paper: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """T5's accuracies beside the paper's: ours (``choice, k, label, ours``: ``mean ± std``
    from :func:`finetune_table`) and the paper's (``paper layers, paper``; ``paper`` is
    ``memloc.book.paper_numbers("T5")``)."""
    ours = table.assign(
        ours=[f"{m:.2f} ± {s:.2f}" for m, s in zip(table["mean"], table["std"], strict=True)]
    )[["choice", "k", "label", "ours"]]
    paper_side = pd.DataFrame(
        {
            "paper layers": paper["row"],
            "paper": [
                f"{v:.1f} ± {s:.2f}" for v, s in zip(paper["value"], paper["std"], strict=True)
            ],
        }
    )
    return ours, paper_side


def finetune_claims(
    tests: pd.DataFrame, ks: Sequence[int], n_seeds: int, *, page_reason: str = ""
) -> list[dict]:
    """T5's claims, one per ranking (LM, ΔLM): fine-tuning its most memorizing layers beats
    fine-tuning the last ones, an intersection-union over the k of :func:`finetune_tests`
    where the two sets differ. A ranking whose most memorizing layers are the last ones at
    every k has nothing to compare: *not testable here*, with ``page_reason`` (the page's
    own, when its check fails) or that as the reason."""
    claims = []
    for rule, name in SCORES.items():
        part = tests[tests["rule"] == rule]
        compared = part[~part["same"]]
        # No k with two different sets: no test (the claim is then not testable, below).
        nothing_to_test = (float("nan"), None)
        result = (
            intersection_union(compared["t"], compared["p"]) if len(compared) else nothing_to_test
        )
        entry = claim(
            f"fine-tuning the layers with the highest {name} beats fine-tuning the same "
            "number of last layers",
            f"one-sided paired t over {n_seeds} seeds per k in {list(ks)} where the sets "
            f"differ ({len(compared)} of {len(part)}); intersection-union: min t, max p",
            result,
            holds=bool((compared["difference"] > 0).all()),
        )
        if compared.empty:
            nothing = (
                f"Not testable here: by {name}, the most memorizing layers are the last "
                f"layers at every k in {list(ks)}, so there is nothing to compare."
            )
            entry.update(testable=False, reason=page_reason or nothing)
        claims.append(entry)
    return claims


def finetune_notes(tests: pd.DataFrame, controls: pd.DataFrame | None = None) -> list[str]:
    """T5's paragraphs under the verdicts: each ranking and k whose most memorizing layers
    are the last ones (nothing to compare), and with ``controls`` (:func:`finetune_tests`
    with ``kind="least"``) in how many comparisons the least memorizing layers beat the last
    ones at p < 0.05."""
    notes = [
        f"By {r.rule}, the {r.k} most memorizing layer(s) are the last ones ({r.last}): "
        "nothing to compare."
        for r in tests[tests["same"]].itertuples()
    ]
    if controls is not None:
        compared = controls[~controls["same"]]
        beats = compared[compared["p"] < 0.05]
        notes.append(
            "**Control:** the least memorizing layers beat the last layers (one-sided paired "
            f"p < 0.05) in {len(beats)} of {len(compared)} comparisons where the sets differ."
        )
    return notes


# ------------------------------------------------------------------------------ A7: swapping


def donor_encoder(
    profile: str | Profile,
    dataset: str,
    *,
    channels: int,
    framework: str = "simclr",
    epochs: int | None = None,
    progress: bool = True,
    cache_dir=None,
):
    """An encoder of ``profile``'s architecture trained with ``framework`` on ``dataset``
    (:func:`memloc.profiles.donor_profile`), through the encoder cache (trained once, then loaded).

    Returns
    -------
    encoder, entry
        The encoder (eval mode) and its cache folder (its name ends with the spec's hash).

    Raises
    ------
    ValueError
        When the data set's images have another number of channels than ``channels`` (the
        encoder to swap into): the first convolution would not fit.
    """
    donor = donor_profile(profile, dataset, epochs=epochs)
    data = load_dataset(donor.dataset, "train", image_size=donor.image_size, resize=donor.resize)
    if data.channels != channels:
        raise ValueError(
            f"{canonical_name(dataset)} has {data.channels}-channel images but the encoder to "
            f"swap into takes {channels}; choose a data set with {channels} channel(s)"
        )
    spec = encoder_spec(donor, "f", framework, n_total=len(data), in_channels=data.channels)
    entry = get_encoder(spec, cache_dir=cache_dir, progress=progress)
    return load_encoder(entry), entry


def swap_settings(
    scores: pd.DataFrame, ks: Sequence[int] = (1, 2, 3), random_seeds: Sequence[int] = range(5)
) -> pd.DataFrame:
    """The layer sets A7 swaps: for each k the k most and least memorizing layers by LM and
    by ΔLM, and ``len(random_seeds)`` random sets of k layers (seeded draws, shared by both
    rankings).

    Returns
    -------
    DataFrame
        ``rule`` (``"LM"``, ``"ΔLM"`` or ``"random"``), ``strategy`` (``"most"``, ``"least"``,
        ``"random"``), ``k``, ``seed`` (-1 unless random), ``layers`` (tuple), ``label``.
    """
    names = list(scores.index)
    rows = []
    for k in ks:
        for rule in SCORES:
            for strategy in ("most", "least"):
                layers = ranked_layers(scores, rule, k, most=strategy == "most")
                rows.append(
                    {
                        "rule": rule,
                        "strategy": strategy,
                        "k": int(k),
                        "seed": -1,
                        "layers": tuple(layers),
                    }
                )
        for seed in random_seeds:
            rng = np.random.default_rng([int(seed), int(k)])
            picked = sorted(rng.choice(len(names), size=int(k), replace=False))
            rows.append(
                {
                    "rule": "random",
                    "strategy": "random",
                    "k": int(k),
                    "seed": int(seed),
                    "layers": tuple(names[i] for i in picked),
                }
            )
    out = pd.DataFrame(rows)
    out["label"] = out["layers"].map(layers_label)
    return out


def _probe(model: nn.Module, probe: ProbeSet, seed: int, batch_size: int) -> np.ndarray:
    """Predicted labels of ``probe``'s test images by a linear probe on ``model``'s features."""
    train_x = features(model, probe.train_images, batch_size=batch_size).numpy()
    test_x = features(model, probe.test_images, batch_size=batch_size).numpy()
    return probe_predictions(train_x, probe.train_labels, test_x, seed)


def swap_accuracies(
    encoder: nn.Module,
    donor: nn.Module,
    settings: pd.DataFrame,
    sets: dict[str, ProbeSet],
    *,
    probe_seed: int = 0,
    batch_size: int = 256,
    progress: bool | Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Linear-probe accuracy of ``encoder``, of ``donor`` and of every swapped copy of
    ``encoder`` (its layers of a row of ``settings`` replaced by ``donor``'s,
    :func:`memloc.interventions.swap_layers`) on each probe set.

    Each distinct layer set is swapped and probed once (``progress``: a callable told each
    swap, or True for a progress bar). Returns one row per setting (plus ``strategy``
    ``"none"`` for the encoder and ``"donor"`` for the donor) and probe set, with the
    ``accuracy`` on the probe set's test images.
    """
    if not sets:
        raise ValueError("no probe set to measure accuracy on")
    done: dict[tuple[str, ...], dict[str, float]] = {}

    def measure(model: nn.Module) -> dict[str, float]:
        return {
            name: float((_probe(model, s, probe_seed, batch_size) == s.test_labels.numpy()).mean())
            for name, s in sets.items()
        }

    rows = []
    base = dict(rule="", k=0, seed=-1, label="")
    for strategy, model in (("none", encoder), ("donor", donor)):
        for name, acc in measure(model).items():
            rows.append({**base, "strategy": strategy, "dataset": name, "accuracy": acc})
    with _progress_bar(progress, len(set(settings["layers"])), "swapped encoders") as report:
        for _, row in settings.iterrows():
            key = tuple(row["layers"])
            if key not in done:
                done[key] = measure(swap_layers(encoder, donor, list(key)))
                if report is not None:
                    report(f"swapped {layers_label(key)}")
            for name, acc in done[key].items():
                info = {c: row[c] for c in ("rule", "strategy", "k", "seed", "label")}
                rows.append({**info, "dataset": name, "accuracy": acc})
    return pd.DataFrame(rows)


def swap_tests(acc: pd.DataFrame) -> pd.DataFrame:
    """Per ranking, k and probe set: does swapping the most memorizing layers move accuracy
    more than swapping random layers, and swapping the least memorizing layers less?

    The movement is the absolute change of accuracy from the unswapped encoder. Each is a
    one-sided prediction t-test of the single value against the random draws' values (as T6
    tests pruning; :func:`memloc.experiments.interventions.prediction_test`).

    Returns
    -------
    DataFrame
        ``rule, k, dataset, most, least`` (their changes), ``random_mean, random_std,
        n_random`` (of the absolute changes), ``most_moves, least_moves, t_most, p_most, t_least,
        p_least`` and ``ordered`` (``|most| > mean |random| > |least|``).
    """
    base = acc[acc["strategy"] == "none"].set_index("dataset")["accuracy"]
    acc = acc[~acc["strategy"].isin(["none", "donor"])].copy()
    acc["change"] = acc["accuracy"] - acc["dataset"].map(base)
    rows = []
    for (k, dataset), part in acc.groupby(["k", "dataset"], sort=False):
        rnd = part.loc[part["strategy"] == "random", "change"].abs().to_numpy(float)
        for rule in SCORES:
            mine = part[part["rule"] == rule].set_index("strategy")["change"]
            most, least = float(mine["most"]), float(mine["least"])
            t_most, p_most = prediction_test(abs(most), rnd, "greater")
            t_least, p_least = prediction_test(abs(least), rnd, "less")
            mean = float(rnd.mean())
            rows.append(
                {
                    "rule": rule,
                    "k": int(k),
                    "dataset": dataset,
                    "most": most,
                    "least": least,
                    "random_mean": mean,
                    "random_std": float(rnd.std(ddof=1)) if len(rnd) > 1 else np.nan,
                    "n_random": len(rnd),
                    "t_most": t_most,
                    "p_most": p_most,
                    "t_least": t_least,
                    "p_least": p_least,
                    "ordered": bool(abs(most) > mean > abs(least)),
                }
            )
    return (
        pd.DataFrame(rows)
        .sort_values(["rule", "dataset", "k"], kind="stable")
        .reset_index(drop=True)
    )


def pair_donor(
    pair,
    dataset: str | None = None,
    *,
    framework: str = "simclr",
    epochs: int | None = None,
    progress: bool = False,
):
    """A7's donor for ``pair``: :func:`donor_encoder` on ``dataset`` (None:
    :func:`memloc.data.default_donor_dataset`, another data set with f's channels) with the
    pair's profile. Returns ``(dataset name, encoder, cache entry)``."""
    channels = pair.dataset.channels
    name = dataset or default_donor_dataset(pair.profile.dataset, channels)
    encoder, entry = donor_encoder(
        pair.profile,
        name,
        channels=channels,
        framework=framework,
        epochs=epochs,
        progress=progress,
    )
    return name, encoder, entry


def donor_probe_sets(
    pair, donor_dataset: str, *, n_train: int | None = None, n_test: int | None = None
) -> dict[str, ProbeSet]:
    """A7's probe sets: the pair's pre-training data set and the donor's
    (:func:`memloc.probe.probe_sets`, images drawn with the profile's seed).

    Raises
    ------
    RuntimeError
        When the donor's data set is not available here for its probe.
    """
    sets, skipped = probe_sets(pair, donor_dataset, n_train=n_train, n_test=n_test)
    if skipped:
        raise RuntimeError(f"the donor's data set must be available for its probe: {skipped}")
    return sets


def swap_summary(acc: pd.DataFrame) -> pd.DataFrame:
    """A7's table of :func:`swap_accuracies`: per ranking, strategy and k, the mean and
    standard deviation of the accuracy (in %) and the number of encoders, one column group
    per probe set."""
    return (
        acc.groupby(["rule", "strategy", "k", "dataset"], sort=False)["accuracy"]
        .agg(["mean", "std", "count"])
        .mul([100, 100, 1])
        .unstack("dataset")
    )


def swap_changes(acc: pd.DataFrame) -> pd.DataFrame:
    """A7's figure data: the rows of :func:`swap_accuracies` for the swapped encoders with
    ``change``, their accuracy minus the unswapped encoder's on the same probe set, in
    points."""
    base = acc[acc["strategy"] == "none"].set_index("dataset")["accuracy"]
    return acc[~acc["strategy"].isin(["none", "donor"])].assign(
        change=lambda d: 100 * (d["accuracy"] - d["dataset"].map(base))
    )


def swap_claims(tests: pd.DataFrame, ks: Sequence[int], n_random: int) -> list[dict]:
    """A7's claims, per ranking (LM, ΔLM): swapping its most memorizing layers moves probe
    accuracy more than swapping random layers, and its least memorizing ones less; each an
    intersection-union over the k and probe sets of :func:`swap_tests`."""
    claims = []
    for rule, name in SCORES.items():
        part = tests[tests["rule"] == rule]
        for which, direction in (("most", "more"), ("least", "less")):
            result = intersection_union(part[f"t_{which}"], part[f"p_{which}"])
            claims.append(
                claim(
                    f"swapping the {which} memorizing layers by {name} moves probe accuracy "
                    f"{direction} than swapping random layers",
                    f"one-sided prediction t of |change| against {n_random} random sets, per "
                    f"k in {list(ks)} and data set ({len(part)} tests); intersection-union: "
                    "min t, max p",
                    result,
                    holds=bool(result.statistic > 0),
                )
            )
    return claims


def swap_note(tests: pd.DataFrame) -> str:
    """A7's sentence under the verdicts: in how many settings of :func:`swap_tests` the full
    ordering ``|most| > mean |random| > |least|`` holds."""
    return (
        "The full ordering |most| > mean |random| > |least| holds in "
        f"{int(tests['ordered'].sum())} of {len(tests)} settings."
    )


# ------------------------------------------------------------------------------ A8: SSL vs SL


def probe_table(
    encoders: dict[str, nn.Module],
    sets: dict[str, ProbeSet],
    *,
    probe_seed: int = 0,
    batch_size: int = 256,
) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Linear-probe accuracy of each encoder on each probe set, with its 95% Wilson interval.

    Returns
    -------
    table, correct
        ``encoder, dataset, accuracy, ci_low, ci_high, n_test``; and per (encoder, data set)
        the boolean array of which test images were classified correctly (for
        :func:`mcnemar_tests`).
    """
    rows, correct = [], {}
    for enc_name, model in encoders.items():
        for set_name, s in sets.items():
            right = _probe(model, s, probe_seed, batch_size) == s.test_labels.numpy()
            n, k = len(right), int(right.sum())
            ci = _st.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
            rows.append(
                {
                    "encoder": enc_name,
                    "dataset": set_name,
                    "accuracy": k / n,
                    "ci_low": float(ci.low),
                    "ci_high": float(ci.high),
                    "n_test": n,
                }
            )
            correct[(enc_name, set_name)] = right
    return pd.DataFrame(rows), correct


def mcnemar_tests(correct: dict[tuple[str, str], np.ndarray], a: str, b: str) -> pd.DataFrame:
    """Exact McNemar test per data set between encoders ``a`` and ``b`` on the same test
    images: among the images exactly one of them gets right, is the split 50/50?

    Returns
    -------
    DataFrame
        ``dataset, difference`` (accuracy of a minus b), ``only_a, only_b`` (images only one
        gets right) and the two-sided ``p``.
    """
    datasets = [d for (enc, d) in correct if enc == a]
    rows = []
    for dataset in datasets:
        test = mcnemar_test(correct[(a, dataset)], correct[(b, dataset)], alternative="two-sided")
        rows.append(
            {
                "dataset": dataset,
                "difference": test.statistic,
                "only_a": test.n[0],
                "only_b": test.n[1],
                "p": test.pvalue,
            }
        )
    return pd.DataFrame(rows)


def ssl_sl_encoders(ssl, sl) -> dict[str, nn.Module]:
    """A8's encoders by the names its tables give them: the SSL pair's f, the supervised
    pair's f and an untrained encoder of the same architecture (the profile's seed), a floor."""
    p = ssl.profile
    return {
        f"SSL ({ssl.framework})": ssl.f,
        "SL (supervised)": sl.f,
        "untrained": random_encoder(p, seed=p.seed, in_channels=ssl.dataset.channels),
    }


def probe_accuracy_table(
    encoders: dict[str, nn.Module], sets: dict[str, ProbeSet], *, probe_seed: int = 0
) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """A8's table: :func:`probe_table` with each probe set's ``role`` (``"pretraining"`` or
    ``"other"``) as the last column; and which test images each encoder got right."""
    table, correct = probe_table(encoders, sets, probe_seed=probe_seed)
    table["role"] = table["dataset"].map(probe_roles(sets))
    return table, correct


def accuracy_grid(table: pd.DataFrame, encoders: Sequence[str]) -> pd.DataFrame:
    """A8's accuracies (%) as a grid: one row per encoder (in the order of ``encoders``), one
    column per probe set."""
    grid = table.pivot(index="encoder", columns="dataset", values="accuracy") * 100
    return grid.reindex(list(encoders))


def mcnemar_holm(
    correct: dict[tuple[str, str], np.ndarray],
    a: str,
    b: str,
    sets: dict[str, ProbeSet] | None = None,
) -> pd.DataFrame:
    """A8's tests of encoder ``a`` against ``b``: :func:`mcnemar_tests` with ``p_holm``, the
    p-values Holm-adjusted over the data sets, and with ``sets`` each data set's ``role``."""
    tests = mcnemar_tests(correct, a, b)
    tests["p_holm"] = holm(tests["p"])
    if sets is not None:
        tests["role"] = tests["dataset"].map(probe_roles(sets))
    return tests


def ssl_sl_claims(tests: pd.DataFrame) -> list[dict]:
    """A8's context entries (the paper makes no claim here), one per data set of
    :func:`mcnemar_holm` (with roles): SSL minus SL accuracy, its Holm-adjusted McNemar p."""
    return [
        claim(
            "context (no claim in the paper): SSL minus SL probe accuracy on "
            f"{row.dataset} ({row.role} data set)",
            "exact McNemar test on the same test images, two-sided, Holm-adjusted",
            (row.difference, row.p_holm),
            context=True,
        )
        for row in tests.itertuples()
    ]


def ssl_vs_sl_note(tests: pd.DataFrame) -> str:
    """A8's paragraphs on SSL against SL, one per data set of :func:`mcnemar_holm`: how many
    points SSL lies above or below SL, the images only one of them gets right, Holm's p."""
    return "\n\n".join(
        f"On {row.dataset} ({row.role}), SSL is {100 * abs(row.difference):.1f} points "
        f"{'above' if row.difference > 0 else 'below'} SL ({row.only_a} test images only SSL "
        f"gets right, {row.only_b} only SL; Holm p = {row.p_holm:.3g})."
        for row in tests.itertuples()
    )


def ssl_vs_untrained_note(tests: pd.DataFrame) -> str:
    """A8's paragraphs on SSL against the untrained encoder, one per data set of
    :func:`mcnemar_holm`: how many points SSL lies above or below it, Holm's p."""
    return "\n\n".join(
        f"On {row.dataset}, SSL is {100 * abs(row.difference):.1f} points "
        f"{'above' if row.difference > 0 else 'below'} the untrained encoder "
        f"(Holm p = {row.p_holm:.3g})."
        for row in tests.itertuples()
    )
