"""SSLMem per layer: alignment, LayerMem, ΔLayerMem and the scores that correct them.

Definitions (NOTES.md §1-3, book chapter "Methods"). For encoder h, layer l and image x,

    align_l(h, x) = mean over K pairs of views (x', x'') of || h_l(x') - h_l(x'') ||_2

on the flattened layer output. The ``views`` variant (the paper, default) draws two augmented
views per pair; the ``original`` variant (the authors' script) compares the unaugmented image
with one augmented view. The per-image score is

    m_l(x) = align_l(g, x) - align_l(f, x)

where f trained on x and g did not. f and g see exactly the same views (drawn once per batch
and fed to both), so augmentation noise is common to both terms. LayerMem(l) is the mean over
the candidates of m_l(x) / (max - min of m_l over the candidates), ΔLayerMem(l) =
LayerMem(l) - LayerMem(l-1) in forward order.

memloc's additions (issue 3; book, "What the raw scores get wrong"):

- ``calibrated``: LayerMem minus ``heldout_offset``, the same normalised mean on held-out images
  that neither encoder saw; it removes the f-vs-g offset of each layer.
- ``scale_free``: the paper's recipe on unit-L2-normalised flattened outputs.
- ``contrast``: half the difference between the mean score on candidates (seen by f only) and
  on independent images (seen by g only); a constant f-vs-g offset cancels exactly. Its Welch
  t-value and one-sided p-value are beside it.
- Top-k / Least-k are cross-fitted: the K view pairs are split in two halves; images are
  ranked by the last layer's score on one half and scored on the other, and the two ways
  round are averaged. Ranking and scoring on the same draws would manufacture a Top/Least gap
  out of noise (regression to the mean). The same selection made on held-out images is
  reported beside it (``heldout_top_layermem``, ``heldout_least_layermem``) as the no-signal
  control. Per-image rankings need K >= 20 for a stable order; layer means are stable at 10.

All encoders are put in eval mode for the measurement (BatchNorm uses its running statistics,
so an image's score does not depend on its batch) and run without gradients; their train/eval
flags are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memloc.activations import (
    LayerRecorder,
    check_images,
    evaluation,
    iter_views,
    model_device,
    resolve_layers,
)
from memloc.models.base import MeasurementPoint
from memloc.stats import welch_one_sided

VARIANTS = ("views", "original")
SETS = ("candidate", "independent", "heldout")
_STREAMS = {name: i for i, name in enumerate(SETS)}

Policy = Callable[[Tensor, torch.Generator], Tensor]


def pair_distances(output: Tensor) -> Tensor:
    """Reducer for a batch of view pairs (first half of the rows one view, second half the
    other): per pair the L2 distance of the flattened outputs and the distance of the
    unit-L2-normalised ones, as a (b, 2) float32 tensor."""
    b = output.shape[0] // 2
    flat = output.reshape(2 * b, -1).float()
    a, c = flat[:b], flat[b:]
    raw = (a - c).norm(dim=1)
    unit = (F.normalize(a, dim=1) - F.normalize(c, dim=1)).norm(dim=1)
    return torch.stack([raw, unit], dim=1)


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use 'views' (paper) or 'original'")
    return variant


def _check_same_architecture(f: nn.Module, g: nn.Module) -> None:
    arch_f, arch_g = getattr(f, "arch", None), getattr(g, "arch", None)
    if arch_f != arch_g or type(f) is not type(g):
        raise ValueError(
            "f and g must have the same architecture (SSLMem compares the same layer of two "
            f"identically built encoders); got {arch_f or type(f).__name__} and "
            f"{arch_g or type(g).__name__}"
        )
    if hasattr(f, "config") and hasattr(g, "config"):
        try:
            config_f, config_g = f.config(), g.config()
        except NotImplementedError:
            return
        if config_f != config_g:
            raise ValueError(
                f"f and g have different configurations: {config_f} vs {config_g}; build both "
                "with the same arguments"
            )


def _distances(
    encoders: list[nn.Module],
    images: Tensor,
    points: list[MeasurementPoint],
    *,
    k_aug: int,
    policy: Policy,
    variant: str,
    seed: int,
    stream: int,
    batch_size: int | None,
) -> np.ndarray:
    """Distances (E, K, N, L, 2) of every view pair, layer and encoder (raw, unit-normalised).

    The views are drawn once per batch and fed to every encoder; all layers come from one
    forward pass per encoder and batch."""
    devices = {model_device(e) for e in encoders}
    if len(devices) > 1:
        raise ValueError(f"the encoders are on different devices {devices}; move them to one")
    device = devices.pop()
    names = [p.name for p in points]
    n = images.shape[0]
    out = torch.zeros(len(encoders), k_aug, n, len(points), 2, device=device)
    mode = "pairs" if variant == "views" else "original"
    first = True
    with evaluation(*encoders), ExitStack() as stack:
        recorders = [
            stack.enter_context(LayerRecorder(e, names, reduce=pair_distances)) for e in encoders
        ]
        for batch in iter_views(
            images,
            k_aug=k_aug,
            policy=policy,
            mode=mode,
            seed=seed,
            stream=stream,
            batch_size=batch_size,
            device=device,
        ):
            for e, rec in enumerate(recorders):
                outputs = rec(batch.views)
                layer_outputs = [outputs[name] for name in names]
                out[e, batch.ks, batch.points] = torch.stack(layer_outputs, dim=1)
            if first and len(recorders) == 2:
                _check_same_shapes(recorders[0].shapes, recorders[1].shapes)
            first = False
    return out.double().cpu().numpy()


def _check_same_shapes(shapes_f: dict, shapes_g: dict) -> None:
    bad = {n: (s, shapes_g[n]) for n, s in shapes_f.items() if s[1:] != shapes_g[n][1:]}
    if bad:
        detail = "; ".join(f"{n}: f {s[1:]} vs g {t[1:]}" for n, (s, t) in bad.items())
        raise ValueError(
            f"f and g produce outputs of different shapes at layers {list(bad)} ({detail}); "
            "SSLMem compares the same layer of two identically built encoders"
        )


def alignment(
    encoder: nn.Module,
    images: Tensor,
    layers: str | Iterable[str] | None = None,
    k_aug: int = 10,
    policy: Policy | None = None,
    *,
    variant: str = "views",
    seed: int = 0,
    batch_size: int | None = None,
) -> dict[str, Tensor]:
    """Alignment of ``encoder`` on each image at each layer (lower = views closer together).

    Parameters
    ----------
    encoder : any ``nn.Module`` (put in eval mode for the measurement, then restored).
    images : (N, C, H, W), uint8 or float in [0, 1].
    layers : measurement point names or module paths (None: every measurement point).
    k_aug : K, the number of view pairs per image.
    policy : ``policy(x, generator) -> views``, normally the encoder's training augmentations.
    variant : ``"views"`` (two augmented views, the paper) or ``"original"`` (the image and
        one augmented view, the authors' script).
    seed : fixes the views; two encoders measured with the same seed see the same views, so
        ``alignment(g) - alignment(f)`` is the raw per-image SSLMem of :func:`layermem`.
    batch_size : view pairs per forward pass (None: 64 on the CPU, 512 on a GPU; see
        ``memloc.activations.default_batch_size``).

    Returns
    -------
    dict
        ``{layer: Tensor (N,) float64}``, the mean L2 distance between the flattened layer
        outputs of the two views of each pair, in forward order of ``layers``.
    """
    _check_variant(variant)
    images = check_images(images)
    points = resolve_layers(encoder, layers)
    d = _distances(
        [encoder],
        images,
        points,
        k_aug=_check_k(k_aug),
        policy=policy,
        variant=variant,
        seed=seed,
        stream=_STREAMS["candidate"],
        batch_size=batch_size,
    )
    means = d[0, :, :, :, 0].mean(axis=0)
    return {p.name: torch.from_numpy(means[:, i].copy()) for i, p in enumerate(points)}


def _check_finite(d: np.ndarray, points: list[MeasurementPoint], which: str) -> None:
    """ValueError naming the first layer (forward order) where f or g outputs NaN or inf:
    a table of NaN from there on would read as a result."""
    bad = ~np.isfinite(d[..., 0]).all(axis=(1, 2))  # (encoder, layer)
    if bad.any():
        layer = int(bad.any(axis=0).argmax())
        who = " and ".join(e for e, b in zip(("f", "g"), bad[:, layer], strict=False) if b)
        raise ValueError(
            f"{who} outputs NaN or inf at layer {points[layer].name} (the first such layer, on "
            f"the {which} images); check the encoder's weights (a diverged training?)"
        )


def _check_k(k_aug: int) -> int:
    if isinstance(k_aug, bool) or int(k_aug) != k_aug or k_aug < 1:
        raise ValueError(f"k_aug (view pairs per image) must be a positive integer, got {k_aug}")
    return int(k_aug)


@dataclass
class _SetScores:
    """Per-image scores of one set of images, arrays (n, L) in float64."""

    raw: np.ndarray  # m_l(x), the mean over all K pairs
    unit: np.ndarray  # the same on unit-normalised outputs
    half_a: np.ndarray  # m_l(x) over the first half of the pairs
    half_b: np.ndarray  # ... and over the second half
    align_f: np.ndarray
    align_g: np.ndarray
    align_unit: np.ndarray  # mean unit-normalised alignment of f and g

    @classmethod
    def from_distances(cls, d: np.ndarray) -> _SetScores:
        diff = d[1] - d[0]  # (K, n, L, 2): g minus f
        half = d.shape[1] // 2
        return cls(
            raw=diff[..., 0].mean(axis=0),
            unit=diff[..., 1].mean(axis=0),
            half_a=diff[:half, ..., 0].mean(axis=0) if half else np.full(diff.shape[1:3], np.nan),
            half_b=diff[half:, ..., 0].mean(axis=0),
            align_f=d[0, ..., 0].mean(axis=0),
            align_g=d[1, ..., 0].mean(axis=0),
            align_unit=d[..., 1].mean(axis=(0, 1)),
        )


def normaliser(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The normaliser per layer: max - min of the per-image scores ``x`` (n, L) over the images.

    A range at float32 rounding level (at most 1e-5 times ``reference``, the mean alignment of
    the layer) means every image scores the same; dividing by it would blow rounding noise up
    to order 1, so such layers are not rescaled (normaliser 1; identical encoders give 0)."""
    r = x.max(axis=0) - x.min(axis=0)
    return np.where(r > 1e-5 * np.abs(reference).mean(axis=0), r, 1.0)


def _cross_fitted(s: _SetScores, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean raw score (per layer) of the top-k and least-k images, ranked by the last layer's
    score on one half of the view pairs and scored on the other, averaged over both ways."""
    tops, leasts = [], []
    for rank, score in ((s.half_a, s.half_b), (s.half_b, s.half_a)):
        order = np.argsort(-rank[:, -1], kind="stable")
        tops.append(score[order[:k]].mean(axis=0))
        leasts.append(score[order[-k:]].mean(axis=0))
    return np.mean(tops, axis=0), np.mean(leasts, axis=0)


@dataclass
class LayerMemResult:
    """What :func:`layermem` measured.

    Attributes
    ----------
    table : DataFrame, one row per layer in forward order (columns: see :func:`layermem`).
    per_point : DataFrame (point x layer) of the candidates' normalised per-image SSLMem
        ``m_l(x) / range_l``; the index ``point`` is the position in ``images``, so it joins
        with UnitMem's ``argmax`` and :meth:`UnitMemResult.dominance`.
    points : long DataFrame with every per-image number of every set: ``set`` (candidate,
        independent, heldout), ``point``, ``layer``, ``sslmem`` (normalised by the candidates'
        range), ``sslmem_raw``, ``sslmem_scale_free`` (raw, unit-normalised outputs),
        ``sslmem_half_a``, ``sslmem_half_b`` (raw, on each half of the view pairs),
        ``align_f``, ``align_g``.
    layers : the measurement points, in the order of the table.
    config : the arguments that produced it (variant, k_aug, seed, sizes, top_k).
    notes : how the columns were computed, in words (also in ``table.attrs["notes"]``).
    """

    table: pd.DataFrame
    per_point: pd.DataFrame
    points: pd.DataFrame
    layers: list[MeasurementPoint]
    config: dict
    notes: list[str] = field(default_factory=list)

    def scores(self, which: str = "candidate", score: str = "sslmem") -> pd.DataFrame:
        """Wide (point x layer) frame of one per-image ``score`` column of ``points`` for one
        set of images (``which``: candidate, independent, heldout); ``scores()`` equals
        ``per_point``."""
        rows = self.points[self.points["set"] == which]
        if rows.empty:
            measured = self.points["set"].unique().tolist()
            raise ValueError(f"no images of set {which!r}; measured: {measured}")
        wide = rows.pivot(index="point", columns="layer", values=score)
        return wide[[p.name for p in self.layers]]

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 40):
            body = self.table.round(4).to_string(index=False)
        return f"LayerMemResult({self.config})\n{body}\n" + "\n".join(self.notes)


def layermem(
    f: nn.Module,
    g: nn.Module,
    images: Tensor,
    *,
    layers: str | Iterable[str] | None = None,
    k_aug: int = 10,
    policy: Policy,
    variant: str = "views",
    seed: int = 0,
    heldout_images: Tensor | None = None,
    independent_images: Tensor | None = None,
    top_k: int = 50,
    batch_size: int | None = None,
) -> LayerMemResult:
    """LayerMem, ΔLayerMem, cross-fitted Top-k/Least-k and the corrected scores, all layers.

    Parameters
    ----------
    f : the encoder trained on the candidate images (S_S ∪ S_C).
    g : the same architecture trained identically without them (S_S ∪ S_I).
    images : the candidates (N, C, H, W), uint8 or float in [0, 1].
    layers : measurement point names or module paths, in forward order (ΔLayerMem subtracts
        the previous row; None: every measurement point). The last one ranks Top-k/Least-k.
    k_aug : K, view pairs per image (>= 2 when ``top_k`` > 0: the pairs are split in halves).
    policy : ``policy(x, generator) -> views``; use the augmentations f and g trained with.
    variant : ``"views"`` (paper) or ``"original"`` (authors' script).
    seed : fixes every view; the same seed gives identical tables.
    heldout_images : images neither encoder saw; enables ``heldout_offset``, ``calibrated``,
        ``scale_free_calibrated`` and the held-out Top/Least control.
    independent_images : S_I, seen by g only; enables ``contrast``, ``contrast_t``,
        ``contrast_p``.
    top_k : k of Top-k/Least-k (0 skips them); at most half of the images of each set.
    batch_size : view pairs per forward pass (None: 64 on the CPU, 512 on a GPU; see
        ``memloc.activations.default_batch_size``).

    Returns
    -------
    LayerMemResult
        ``table`` columns, one row per layer (normalised columns are divided by ``range``,
        the range of the candidates' raw scores at that layer, or by 1 where that range is
        float32 rounding noise, e.g. for identical encoders):

        - ``layer``, ``kind``
        - ``layermem_raw``: mean raw m_l over the candidates; ``range``: its max - min
        - ``layermem``: the paper's LayerMem; ``delta_layermem``: minus the previous row
        - ``top_layermem``, ``least_layermem``, ``delta_top_layermem``: cross-fitted Top-k /
          Least-k means; ``heldout_top_layermem``, ``heldout_least_layermem``: the same
          selection on held-out images (chance level)
        - ``heldout_offset``: the normalised mean on held-out images; ``calibrated`` =
          ``layermem - heldout_offset``; ``delta_calibrated``
        - ``scale_free`` (normalised by its own range) and ``scale_free_calibrated``
        - ``contrast`` = (mean over candidates - mean over independents) / 2, normalised;
          ``contrast_t``, ``contrast_p``: Welch t and one-sided p (candidates > independents)

        The first row's deltas are NaN (no previous layer).

    Raises
    ------
    ValueError
        f and g of different architectures or layer shapes, a bad variant/k_aug/top_k.

    Example
    -------
    >>> import torch
    >>> from memloc.augment import AugmentPolicy
    >>> from memloc.models import create
    >>> _ = torch.manual_seed(0)
    >>> f, g = create("resnet9", width=0.125).eval(), create("resnet9", width=0.125).eval()
    >>> images = torch.rand(8, 3, 32, 32)  # float in [0, 1]
    >>> result = layermem(f, g, images, k_aug=2, policy=AugmentPolicy.simclr(), top_k=2)
    >>> result.table["layer"].tolist()
    ['1', '2', '3', '4', 'Res2', '5', '6', '7', '8', 'Res6']
    """
    _check_variant(variant)
    k_aug = _check_k(k_aug)
    if not callable(policy):
        raise ValueError("layermem needs policy(x, generator) -> views (e.g. pair.policy)")
    _check_same_architecture(f, g)
    points = resolve_layers(f, layers)
    if [p.name for p in resolve_layers(g, layers)] != [p.name for p in points]:
        raise ValueError("f and g have different measurement points; build both the same way")
    sets = {"candidate": check_images(images)}
    if independent_images is not None:
        sets["independent"] = check_images(independent_images, "independent_images")
    if heldout_images is not None:
        sets["heldout"] = check_images(heldout_images, "heldout_images")
    top_k = int(top_k)
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if top_k > 0:
        if k_aug < 2:
            raise ValueError(
                "cross-fitted Top-k/Least-k split the view pairs in two halves and need "
                f"k_aug >= 2 (got {k_aug}); raise k_aug (>= 20 for stable rankings) or pass "
                "top_k=0"
            )
        for name in ("candidate", "heldout"):
            if name in sets and 2 * top_k > sets[name].shape[0]:
                raise ValueError(
                    f"top_k={top_k} needs at least {2 * top_k} {name} images (Top-k and "
                    f"Least-k must not overlap), got {sets[name].shape[0]}; lower top_k"
                )
    if "independent" in sets and (sets["independent"].shape[0] < 2 or images.shape[0] < 2):
        raise ValueError("the contrast needs at least 2 candidate and 2 independent images")

    scores = {}
    for name, x in sets.items():
        d = _distances(
            [f, g],
            x,
            points,
            k_aug=k_aug,
            policy=policy,
            variant=variant,
            seed=seed,
            stream=_STREAMS[name],
            batch_size=batch_size,
        )
        _check_finite(d, points, name)
        scores[name] = _SetScores.from_distances(d)

    names = [p.name for p in points]
    c = scores["candidate"]
    scale = normaliser(c.raw, (c.align_f + c.align_g) / 2)
    scale_unit = normaliser(c.unit, c.align_unit)
    table = pd.DataFrame({"layer": names, "kind": [p.kind for p in points]})
    table["layermem_raw"] = c.raw.mean(axis=0)
    table["range"] = c.raw.max(axis=0) - c.raw.min(axis=0)
    table["layermem"] = c.raw.mean(axis=0) / scale
    table["delta_layermem"] = table["layermem"].diff()
    notes = [
        f"SSLMem = align(g) - align(f), variant {variant!r}, K = {k_aug} view pairs, "
        f"N = {images.shape[0]} candidates; normalised columns are divided by `range`."
    ]
    if top_k > 0:
        top, least = _cross_fitted(c, top_k)
        table["top_layermem"] = top / scale
        table["least_layermem"] = least / scale
        table["delta_top_layermem"] = table["top_layermem"].diff()
        notes.append(
            f"Top-{top_k}/Least-{top_k}: cross-fitted (ranked by layer {names[-1]!r} on one half "
            "of the view pairs, scored on the other half, both ways averaged)."
        )
    if "heldout" in scores:
        h = scores["heldout"]
        if top_k > 0:
            top_h, least_h = _cross_fitted(h, top_k)
            table["heldout_top_layermem"] = top_h / scale
            table["heldout_least_layermem"] = least_h / scale
            notes.append("heldout_top/least_layermem: the same selection on held-out images.")
        table["heldout_offset"] = h.raw.mean(axis=0) / scale
        table["calibrated"] = table["layermem"] - table["heldout_offset"]
        table["delta_calibrated"] = table["calibrated"].diff()
    table["scale_free"] = c.unit.mean(axis=0) / scale_unit
    if "heldout" in scores:
        table["scale_free_calibrated"] = (
            table["scale_free"] - scores["heldout"].unit.mean(axis=0) / scale_unit
        )
        notes.append(
            "calibrated = layermem - heldout_offset (the mean on images neither encoder saw)."
        )
    if "independent" in scores:
        i = scores["independent"]
        table["contrast"] = 0.5 * (c.raw.mean(axis=0) - i.raw.mean(axis=0)) / scale
        tests = [
            welch_one_sided(c.raw[:, j], i.raw[:, j], alternative="greater")
            for j in range(len(names))
        ]
        table["contrast_t"] = [t.statistic for t in tests]
        table["contrast_p"] = [t.pvalue for t in tests]
        notes.append(
            "contrast = (mean over candidates - mean over independents) / 2; Welch t, "
            "one-sided p (candidates > independents)."
        )
    table.attrs["notes"] = notes

    frames = []
    for name, s in scores.items():
        n = s.raw.shape[0]
        columns = {
            "sslmem": s.raw / scale,
            "sslmem_raw": s.raw,
            "sslmem_scale_free": s.unit,
            "sslmem_half_a": s.half_a,
            "sslmem_half_b": s.half_b,
            "align_f": s.align_f,
            "align_g": s.align_g,
        }
        frame = pd.DataFrame(
            {
                "set": name,
                "point": np.repeat(np.arange(n), len(names)),
                "layer": np.tile(names, n),
                **{k: v.reshape(-1) for k, v in columns.items()},
            }
        )
        frames.append(frame)
    long = pd.concat(frames, ignore_index=True)
    per_point = pd.DataFrame(c.raw / scale, columns=pd.Index(names, name="layer"))
    per_point.index.name = "point"
    config = {
        "variant": variant,
        "k_aug": k_aug,
        "seed": seed,
        "top_k": top_k,
        "n_points": {name: int(x.shape[0]) for name, x in sets.items()},
        "layers": names,
    }
    return LayerMemResult(table, per_point, long, points, config, notes)
