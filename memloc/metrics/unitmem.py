"""UnitMem, ClassMem and where each unit's maximum comes from.

For a unit u (a conv channel, read as the spatial mean of its map; or a neuron, for token
outputs the mean over tokens) and N images::

    mu_u(x)    = mean of the unit's activation over K augmentations of x
    mu_max     = max over the images, reached at image ``argmax``
    mu_rest    = mean (the paper, default) or median (the authors' scripts) of mu_u over the
                 other N - 1 images
    UnitMem(u) = (mu_max - mu_rest) / (mu_max + mu_rest)

ClassMem is the same ratio over class means mu_u(c) (the mean of mu_u over the images of class
c), with mu_rest taken over the other classes. mu_u is accumulated as running sums over the
augmentations, so memory is O(units x N) whatever K is; all layers come from one forward pass.

The authors' scripts (NOTES.md §3.7), as options beside the paper's definition:

- ``forward="scripts"``: UnitMem.py and ClassMem.py read a ResNet9 through torchvision's
  ``IntermediateLayerGetter``, which calls its children in order and skips both residual
  sums; :func:`unitmem_forward_shift` measures how far that moves UnitMem per layer.
- ``accumulate="running"`` (ClassMem): ClassMem.py never resets its accumulator, so each row
  is the mean over every image read so far rather than over one class.
- ``rest="median"``: both scripts take the median of the other rows.

Two more script details are artefacts of research code, documented but not reproduced: both
scripts keep a ``range(0, 2)`` subset (two images) and read one layer with a hard-coded
``reshape(256, 4)`` (256 channels of a 2x2 map, the last block of a width-1 ResNet9 on 32x32
images). memloc takes the images and layers it is given.

Activations that can be negative. The ratio is a selectivity index for non-negative
activations (after a ReLU), where it lies in [0, 1]. With negative values it is meaningless
(it can exceed 1 or flip sign) and with mu_max = 0 it is 0/0. A unit is therefore *defined*
only when every mu_u(x) >= 0 and mu_max + mu_rest > 0; otherwise its ``unitmem`` is NaN,
``defined`` is False, and one :class:`UndefinedUnitsWarning` per call says how many units of
which layers were affected. This covers dead ReLU units (silent on every image) and units read
before a rectifier or after a GELU whose mean dips below 0. Measure at rectified outputs (a
memloc encoder's ``unit_points()``, the default) to keep units defined.

The baseline. UnitMem is far above 0 even for a network that learned nothing: the max of N
noisy means lies above the mean of the rest. Report it beside two controls (the same
architecture at random initialisation on the same images, and the trained encoder on held-out
images) and read memorization as the excess over them: :func:`excess_over_controls`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import stats as _st
from torch import Tensor, nn

from memloc.activations import (
    check_forward,
    check_images,
    evaluation,
    iter_views,
    model_device,
    recorder,
    resolve_layers,
)
from memloc.models.base import MeasurementPoint
from memloc.stats import welch_one_sided

RESTS = ("mean", "median")

ACCUMULATIONS = ("class", "running")

Policy = Callable[[Tensor, torch.Generator], Tensor]


class UndefinedUnitsWarning(UserWarning):
    """Some units have negative mean activations or never fire; their score is NaN."""


def _check_rest(rest: str) -> None:
    if rest not in RESTS:
        raise ValueError(f"rest must be 'mean' (paper) or 'median' (scripts), got {rest!r}")


def selectivity(mu: np.ndarray, rest: str = "mean") -> dict[str, np.ndarray]:
    """The UnitMem/ClassMem ratio of every column of ``mu`` (groups x units).

    Parameters
    ----------
    mu : (G, U) mean activation of each unit (column) on each group (row: an image for
        UnitMem, a class for ClassMem); G >= 2.
    rest : ``"mean"`` or ``"median"`` of the other G - 1 rows.

    Returns
    -------
    dict of (U,) arrays
        ``value`` (NaN where undefined), ``mu_max``, ``argmax`` (row of the maximum; the first
        on ties), ``mu_rest``, ``mu_min`` and ``defined`` (every mu >= 0 and
        mu_max + mu_rest > 0).
    """
    _check_rest(rest)
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"need at least 2 images (or classes) to compare, got shape {mu.shape}")
    if not np.isfinite(mu).all():
        raise ValueError("mean activations contain NaN or inf; check the encoder's outputs")
    argmax = mu.argmax(axis=0)
    # Sorting makes the rest independent of the images' order: drop one copy of the maximum.
    others = np.sort(mu, axis=0)[:-1]
    mu_max = mu.max(axis=0)
    mu_rest = others.mean(axis=0) if rest == "mean" else np.median(others, axis=0)
    # The mean of equal values can round above them; the rest never exceeds the maximum.
    mu_rest = np.minimum(mu_rest, mu_max)
    mu_min = mu.min(axis=0)
    total = mu_max + mu_rest
    defined = (mu_min >= 0) & (total > 0)
    value = np.full(mu.shape[1], np.nan)
    value[defined] = (mu_max[defined] - mu_rest[defined]) / total[defined]
    return {
        "value": value,
        "mu_max": mu_max,
        "argmax": argmax,
        "mu_rest": mu_rest,
        "mu_min": mu_min,
        "defined": defined,
    }


def mean_activations(
    encoder: nn.Module,
    images: Tensor,
    *,
    layers: str | Iterable[str] | None = None,
    k_aug: int = 10,
    policy: Policy | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    forward: str = "paper",
) -> tuple[list[MeasurementPoint], dict[str, np.ndarray]]:
    """mu_u(x): every unit's activation averaged over K augmentations of every image.

    Parameters
    ----------
    encoder : any ``nn.Module`` (eval mode during the measurement, then restored).
    images : (N, C, H, W), uint8 or float in [0, 1].
    layers : names (None: the encoder's ``unit_points()``, for memloc encoders the
        measurement points of ResNets and the GELU outputs of ViT MLPs).
    k_aug : augmentations per image; 0 means the unaugmented images.
    policy : ``policy(x, generator) -> views`` (required when ``k_aug`` > 0).
    seed : fixes the views, whatever ``batch_size``.
    batch_size : views per forward pass (None: 128 on the CPU, 1024 on a GPU).
    forward : ``"paper"`` (the encoder's forward) or ``"scripts"`` (a ResNet9 read without
        its residual sums, as the authors' scripts did:
        :class:`memloc.activations.SkiplessRecorder`).

    Returns
    -------
    points, mu
        The measurement points, and ``{layer: (N, units) float64 array}``.
    """
    images = check_images(images)
    check_forward(forward)
    if isinstance(k_aug, bool) or int(k_aug) != k_aug or k_aug < 0:
        raise ValueError(f"k_aug must be a non-negative integer, got {k_aug}")
    points = resolve_layers(encoder, layers, units=True)
    names = [p.name for p in points]
    device = model_device(encoder)
    n = images.shape[0]
    sums: dict[str, Tensor] = {}
    with evaluation(encoder), ExitStack() as stack:
        rec = stack.enter_context(recorder(encoder, names, "unit_mean", forward=forward))
        for batch in iter_views(
            images,
            k_aug=int(k_aug),
            policy=policy,
            mode="single",
            seed=seed,
            batch_size=batch_size,
            device=device,
        ):
            for name, acts in rec(batch.views).items():
                if name not in sums:
                    sums[name] = torch.zeros(n, acts.shape[1], dtype=torch.float64, device=device)
                sums[name].index_add_(0, batch.points, acts.double())
    k = max(int(k_aug), 1)
    return points, {name: (sums[name] / k).cpu().numpy() for name in names}


@dataclass
class UnitMemResult:
    """What :func:`unitmem` or :func:`classmem` measured.

    Attributes
    ----------
    units : DataFrame, one row per unit: ``layer``, ``unit``, the score (``unitmem`` or
        ``classmem``, NaN where undefined), ``mu_max``, ``argmax`` (the image's position in
        ``images`` for UnitMem, the class label for ClassMem), ``mu_rest``, ``defined``,
        ``kind``, ``mu_min``.
    mu : ``{layer: (G, units) array}``, the mean activations the scores came from (G images
        for UnitMem, G classes for ClassMem, rows in the order of ``groups``).
    groups : the row labels of ``mu``: image positions 0 ... N-1, or the class labels.
    value : ``"unitmem"`` or ``"classmem"``, the score column.
    layers : the measurement points, in order.
    config : the arguments (k_aug, rest, seed, N, ...).
    """

    units: pd.DataFrame
    mu: dict[str, np.ndarray]
    groups: np.ndarray
    value: str
    layers: list[MeasurementPoint]
    config: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Per layer: ``n_units``, ``n_defined``, and ``mean``, ``median``, ``std`` of the score
        over the defined units."""
        rows = []
        for p in self.layers:
            u = self.units[self.units["layer"] == p.name]
            v = u.loc[u["defined"], self.value]
            rows.append(
                {
                    "layer": p.name,
                    "kind": p.kind,
                    "n_units": len(u),
                    "n_defined": int(u["defined"].sum()),
                    "mean": v.mean(),
                    "median": v.median(),
                    "std": v.std(),
                }
            )
        return pd.DataFrame(rows)

    def dominance(self, defined_only: bool = True) -> pd.DataFrame:
        """How many units of each layer have their mu_max on each image (UnitMem only).

        Returns
        -------
        DataFrame
            Index ``point`` (0 ... N-1, the position in ``images``: joins with
            ``LayerMemResult.per_point`` measured on the same images), one column of counts per
            layer and ``total``. Images that dominate no unit have 0.
        """
        if self.value != "unitmem":
            raise ValueError("dominance counts images; it needs a UnitMem result, not ClassMem")
        units = self.units[self.units["defined"]] if defined_only else self.units
        counts = pd.crosstab(units["argmax"], units["layer"])
        counts = counts.reindex(index=self.groups, columns=[p.name for p in self.layers])
        counts = counts.fillna(0).astype(int)
        counts.index.name = "point"
        counts.columns.name = None
        counts["total"] = counts.sum(axis=1)
        return counts

    @classmethod
    def from_mu(
        cls,
        mu: dict[str, np.ndarray],
        layers: list[MeasurementPoint],
        *,
        groups=None,
        value: str = "unitmem",
        rest: str = "mean",
        config: dict | None = None,
    ) -> UnitMemResult:
        """Scores from stored mean activations (e.g. a cache of :func:`mean_activations`).

        ``groups`` labels the rows of ``mu`` (default: image positions 0 ... G-1); ``value`` is
        ``"unitmem"`` or ``"classmem"``. Warns about undefined units as :func:`unitmem` does.
        """
        if value not in ("unitmem", "classmem"):
            raise ValueError(f"value must be 'unitmem' or 'classmem', got {value!r}")
        _check_rest(rest)
        first = mu[layers[0].name]
        groups = np.arange(first.shape[0]) if groups is None else np.asarray(groups)
        return _result(mu, groups, layers, value, rest, dict(config or {}))

    def rescore(self, rest: str) -> UnitMemResult:
        """The same measurement with ``rest="mean"`` or ``"median"`` (no new forward pass)."""
        return _result(self.mu, self.groups, self.layers, self.value, rest, dict(self.config))


def _result(
    mu: dict[str, np.ndarray],
    groups: np.ndarray,
    points: list[MeasurementPoint],
    value: str,
    rest: str,
    config: dict,
) -> UnitMemResult:
    frames = []
    for p in points:
        s = selectivity(mu[p.name], rest)
        n_units = mu[p.name].shape[1]
        frames.append(
            pd.DataFrame(
                {
                    "layer": p.name,
                    "unit": np.arange(n_units),
                    value: s["value"],
                    "mu_max": s["mu_max"],
                    "argmax": np.asarray(groups)[s["argmax"]],
                    "mu_rest": s["mu_rest"],
                    "defined": s["defined"],
                    "kind": p.kind,
                    "mu_min": s["mu_min"],
                }
            )
        )
    units = pd.concat(frames, ignore_index=True)
    undefined = units[~units["defined"]]
    if len(undefined):
        per_layer = undefined.groupby("layer", sort=False).size()
        detail = ", ".join(f"{layer}: {n}" for layer, n in per_layer.items())
        warnings.warn(
            f"{value} is undefined (NaN, defined=False) for {len(undefined)} of {len(units)} "
            f"units ({detail}): a negative mean activation or a unit that never fires; "
            "measure rectified outputs to avoid this",
            UndefinedUnitsWarning,
            stacklevel=3,
        )
    config = {**config, "rest": rest}
    return UnitMemResult(units, mu, np.asarray(groups), value, points, config)


def unitmem(
    encoder: nn.Module,
    images: Tensor,
    *,
    layers: str | Iterable[str] | None = None,
    k_aug: int = 10,
    policy: Policy | None = None,
    rest: str = "mean",
    seed: int = 0,
    batch_size: int | None = None,
    forward: str = "paper",
) -> UnitMemResult:
    """UnitMem of every unit of ``layers`` over ``images`` (module docstring: definition and
    the rule for negative activations).

    Parameters
    ----------
    encoder : any ``nn.Module``; one encoder, no labels.
    images : the N images D' (N >= 2), uint8 or float in [0, 1].
    layers : names (None: the encoder's ``unit_points()``).
    k_aug : augmentations per image (the scripts use 10 with
        ``AugmentPolicy.unitmem_scripts()``); 0 means the unaugmented images.
    policy : ``policy(x, generator) -> views``, required when ``k_aug`` > 0.
    rest : ``"mean"`` (paper) or ``"median"`` (scripts) of the other N - 1 images.
    seed : fixes the views, whatever ``batch_size``; same seed -> identical result.
    batch_size : views per forward pass (None: 128 on the CPU, 1024 on a GPU).
    forward : ``"paper"`` (default: the encoder's own forward) or ``"scripts"`` (a memloc
        ResNet9 read without its residual sums, as the authors' UnitMem.py did; other encoders
        are a ValueError).

    Returns
    -------
    UnitMemResult
        ``units`` columns ``layer, unit, unitmem, mu_max, argmax, mu_rest, defined, kind,
        mu_min``; ``argmax`` is the position in ``images`` of the image giving mu_max.

    Example
    -------
    >>> import torch
    >>> from memloc.augment import AugmentPolicy
    >>> from memloc.models import create
    >>> _ = torch.manual_seed(0)
    >>> encoder = create("resnet9", width=0.125).eval()
    >>> result = unitmem(encoder, torch.rand(8, 3, 32, 32), k_aug=2, policy=AugmentPolicy.simclr())
    >>> result.units.groupby("layer", sort=False).size().to_dict()  # units per layer
    {'1': 4, '2': 8, '3': 8, '4': 8, 'Res2': 8, '5': 16, '6': 32, '7': 32, '8': 32, 'Res6': 32}
    """
    _check_rest(rest)
    images = check_images(images)
    if images.shape[0] < 2:
        raise ValueError("UnitMem compares images with each other: pass at least 2")
    points, mu = mean_activations(
        encoder,
        images,
        layers=layers,
        k_aug=k_aug,
        policy=policy,
        seed=seed,
        batch_size=batch_size,
        forward=forward,
    )
    config = {"k_aug": int(k_aug), "seed": seed, "n_points": int(images.shape[0])}
    config["forward"] = forward
    return _result(mu, np.arange(images.shape[0]), points, "unitmem", rest, config)


def _class_means(
    mu: np.ndarray, labels: np.ndarray, classes: np.ndarray, accumulate: str
) -> np.ndarray:
    """(G, U) rows for ClassMem: per-class means of ``mu`` (N, U), or running means
    (``accumulate="running"``: :func:`classmem` says how)."""
    if accumulate == "class":
        return np.stack([mu[labels == c].mean(axis=0) for c in classes])
    # ClassMem.py appends every image to one list that it never clears and averages the whole
    # list after each step: a class's row also averages the images of the classes before it.
    read_so_far = np.zeros(len(labels), dtype=bool)
    rows = []
    for c in classes:
        read_so_far |= labels == c
        rows.append(mu[read_so_far].mean(axis=0))
    return np.stack(rows)


def classmem(
    encoder: nn.Module,
    images: Tensor,
    labels,
    *,
    layers: str | Iterable[str] | None = None,
    k_aug: int = 0,
    policy: Policy | None = None,
    rest: str = "mean",
    seed: int = 0,
    batch_size: int | None = None,
    classes: Iterable | None = None,
    forward: str = "paper",
    accumulate: str = "class",
) -> UnitMemResult:
    """ClassMem: the UnitMem ratio over class means instead of images.

    Parameters
    ----------
    encoder, images, layers, policy, rest, seed, batch_size, forward : as for :func:`unitmem`.
    labels : (N,) class label of each image.
    k_aug : augmentations per image; 0 (default, as the authors' scripts) means none.
    classes : the classes to compare (default: the labels present). A class without images
        is an error, and so is an image whose label is not among them.
    accumulate : ``"class"`` (default, the paper): the row of class c is the mean of mu_u
        over the images of c. ``"running"`` (the authors' ClassMem.py, whose accumulator is
        never reset): the classes are read one after the other in the order of ``classes``,
        and the row of the i-th class is the mean over the images of it *and of every class
        before it* (each image weighing the same); the last row is the mean over all images.

    Returns
    -------
    UnitMemResult
        ``units`` columns ``layer, unit, classmem, mu_max, argmax, mu_rest, defined, kind,
        mu_min``; ``argmax`` is the label of the class giving mu_max; ``mu`` holds the class
        means, one row per class of ``groups``.

    Example
    -------
    >>> import torch
    >>> from memloc.models import create
    >>> _ = torch.manual_seed(0)
    >>> encoder = create("resnet9", width=0.125).eval()
    >>> result = classmem(encoder, torch.rand(8, 3, 32, 32), torch.tensor([0, 1] * 4))
    >>> result.units[["layer", "unit", "classmem", "defined"]].shape
    (180, 4)
    """
    _check_rest(rest)
    if accumulate not in ACCUMULATIONS:
        raise ValueError(
            f"accumulate must be 'class' (paper: per-class means) or 'running' (scripts: a "
            f"running mean over the classes read so far), got {accumulate!r}"
        )
    images = check_images(images)
    labels = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"need one label per image: {images.shape[0]} images, {labels.shape}")
    classes = np.unique(labels) if classes is None else np.asarray(list(classes))
    if len(classes) < 2:
        raise ValueError(f"ClassMem compares classes with each other: need 2 or more: {classes}")
    missing = [c.item() for c in classes if not (labels == c).any()]
    if missing:
        raise ValueError(
            f"classes {missing} have no images; ClassMem's class means would be undefined. "
            "Pass images of every class or restrict `classes`"
        )
    stray = sorted(set(labels.tolist()) - set(classes.tolist()))
    if stray:
        raise ValueError(f"labels {stray} are not among classes {classes.tolist()}")
    points, mu = mean_activations(
        encoder,
        images,
        layers=layers,
        k_aug=k_aug,
        policy=policy,
        seed=seed,
        batch_size=batch_size,
        forward=forward,
    )
    class_mu = {name: _class_means(m, labels, classes, accumulate) for name, m in mu.items()}
    config = {
        "k_aug": int(k_aug),
        "seed": seed,
        "n_points": int(images.shape[0]),
        "n_per_class": {str(c): int((labels == c).sum()) for c in classes},
        "forward": forward,
        "accumulate": accumulate,
    }
    return _result(class_mu, classes, points, "classmem", rest, config)


def unitmem_forward_shift(
    encoder: nn.Module,
    images: Tensor,
    *,
    layers: str | Iterable[str] | None = None,
    k_aug: int = 10,
    policy: Policy | None = None,
    rest: str = "mean",
    seed: int = 0,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """How far UnitMem per layer moves when a ResNet9 is read as the authors' scripts read it.

    UnitMem.py reads activations with torchvision's ``IntermediateLayerGetter``, which skips
    the residual sums of ResNet9's ``forward`` (NOTES.md §3.7). This measures :func:`unitmem`
    twice on the same images and the same views (same ``seed``): ``forward="paper"`` and
    ``forward="scripts"``. Points 1 to 4 come before the first sum and agree both ways; Res2
    becomes block 4's output, and 5 to 8 and Res6 come from blocks fed without the sums.

    Parameters
    ----------
    encoder : a memloc ResNet9 (other encoders have no skip-less reading: ValueError).
    images, layers, k_aug, policy, rest, seed, batch_size : as for :func:`unitmem`.

    Returns
    -------
    DataFrame
        Per layer: ``paper`` and ``scripts``, mean UnitMem over the units defined under each
        forward; ``difference`` = scripts - paper; ``mean_abs_unit_change``, the mean over
        units defined both ways of ``|UnitMem(scripts) - UnitMem(paper)|`` (a shift of single
        units that the layer means may hide); ``n_defined_paper``, ``n_defined_scripts``.
    """
    kwargs = dict(
        layers=layers, k_aug=k_aug, policy=policy, rest=rest, seed=seed, batch_size=batch_size
    )
    # The skip-less reading first: an encoder without one fails before any measurement.
    scripts = unitmem(encoder, images, forward="scripts", **kwargs)
    paper = unitmem(encoder, images, forward="paper", **kwargs)
    rows = []
    for p in paper.layers:
        a = paper.units[paper.units["layer"] == p.name].set_index("unit")
        b = scripts.units[scripts.units["layer"] == p.name].set_index("unit")
        both = a["defined"] & b["defined"]
        rows.append(
            {
                "layer": p.name,
                "kind": p.kind,
                "paper": a.loc[a["defined"], "unitmem"].mean(),
                "scripts": b.loc[b["defined"], "unitmem"].mean(),
                "mean_abs_unit_change": (b["unitmem"] - a["unitmem"])[both].abs().mean(),
                "n_defined_paper": int(a["defined"].sum()),
                "n_defined_scripts": int(b["defined"].sum()),
            }
        )
    table = pd.DataFrame(rows)
    table.insert(4, "difference", table["scripts"] - table["paper"])
    return table


def mu_max_overlap(
    result: UnitMemResult,
    point_scores,
    *,
    k: int = 50,
    top_units: int | None = None,
) -> pd.DataFrame:
    """How often a unit's mu_max image is among the k most memorized images, against chance.

    Parameters
    ----------
    result : a UnitMem result measured on the same images as ``point_scores``.
    point_scores : per-image scores indexed by position (a Series such as
        ``LayerMemResult.per_point["Res6"]``, or an array of length N).
    k : size of the top set of images.
    top_units : per layer, only the ``top_units`` units with the highest UnitMem (None: every
        defined unit).

    Returns
    -------
    DataFrame
        Per layer: ``n_units`` considered, ``n_hits`` whose mu_max image is in the top-k,
        ``fraction`` = hits / units, ``chance`` = k / N, ``p_value`` (one-sided binomial test of
        fraction > chance; treats units as independent, which units sharing an image are not),
        ``n_distinct_points`` (different mu_max images among those units).
    """
    if result.value != "unitmem":
        raise ValueError("mu_max_overlap needs a UnitMem result (images), not ClassMem")
    n = len(result.groups)
    scores = np.asarray(
        point_scores.reindex(range(n)) if isinstance(point_scores, pd.Series) else point_scores,
        dtype=float,
    )
    if scores.shape != (n,) or np.isnan(scores).any():
        raise ValueError(
            f"point_scores must score the same {n} images as the UnitMem result (positions "
            f"0 ... {n - 1}, no NaN)"
        )
    if not 0 < k < n:
        raise ValueError(f"k must be in 1 ... {n - 1}, got {k}")
    top = set(np.argsort(-scores, kind="stable")[:k].tolist())
    rows = []
    for p in result.layers:
        u = result.units[(result.units["layer"] == p.name) & result.units["defined"]]
        if top_units is not None:
            u = u.sort_values(result.value, ascending=False, kind="stable").head(top_units)
        hits = int(u["argmax"].isin(top).sum())
        n_units = len(u)
        p_value = (
            float(_st.binomtest(hits, n_units, k / n, alternative="greater").pvalue)
            if n_units
            else np.nan
        )
        rows.append(
            {
                "layer": p.name,
                "n_units": n_units,
                "n_hits": hits,
                "fraction": hits / n_units if n_units else np.nan,
                "chance": k / n,
                "p_value": p_value,
                "n_distinct_points": int(u["argmax"].nunique()),
            }
        )
    return pd.DataFrame(rows)


def excess_over_controls(result: UnitMemResult, controls: dict[str, UnitMemResult]) -> pd.DataFrame:
    """Mean score per layer of ``result`` against its controls, and the excess over them.

    Parameters
    ----------
    result : e.g. UnitMem of f on its own training images.
    controls : ``{name: result}``, e.g. ``"random"``: the same architecture at random init on
        the same images, and ``"heldout"``: f on images it never saw; same layers as ``result``.

    Returns
    -------
    DataFrame
        Per layer: ``mean`` over the defined units of ``result``; per control ``<name>_mean``,
        ``<name>_excess`` (mean - control mean) and ``<name>_p`` (one-sided Welch test of
        result > control over units); ``excess``, the smallest of the excesses: the part
        neither control explains.
    """
    if not controls:
        raise ValueError("pass at least one control, e.g. {'random': ..., 'heldout': ...}")
    names = [p.name for p in result.layers]
    for label, control in controls.items():
        if [p.name for p in control.layers] != names or control.value != result.value:
            raise ValueError(
                f"control {label!r} measured {control.value} at {[p.name for p in control.layers]}"
                f", the result {result.value} at {names}; measure both at the same layers"
            )

    def values(r: UnitMemResult, layer: str) -> pd.Series:
        u = r.units[(r.units["layer"] == layer) & r.units["defined"]]
        return u[r.value]

    rows = []
    for layer in names:
        v = values(result, layer)
        row = {"layer": layer, "mean": v.mean()}
        excesses = []
        for label, control in controls.items():
            c = values(control, layer)
            row[f"{label}_mean"] = c.mean()
            row[f"{label}_excess"] = v.mean() - c.mean()
            row[f"{label}_p"] = (
                welch_one_sided(v, c).pvalue if len(v) >= 2 and len(c) >= 2 else np.nan
            )
            excesses.append(row[f"{label}_excess"])
        row["excess"] = min(excesses)
        rows.append(row)
    return pd.DataFrame(rows)
