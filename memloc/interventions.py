"""Changing encoders where memorization sits: prune units, swap layers, train one unit.

Every function returns a changed *copy* and leaves its input encoder untouched.

- :func:`prune_units` (T6): zero the output channels of the units with the highest, the lowest
  or random UnitMem, per layer or over all layers together.
- :func:`swap_layers` (A7): take some layers' parameters and buffers from another encoder.
- :func:`train_one_unit` (A4): fine-tune a layer on one image's self-supervised objective,
  then restore every other unit of that layer (NOTES §3.5).

A unit is an output channel of a convolution; :func:`memloc.models.units.unit_modules` finds
the convolution and BatchNorm that own a layer's units.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from memloc.activations import check_images, model_device
from memloc.augment import AugmentPolicy
from memloc.models.units import layer_module_path, unit_count, unit_modules
from memloc.ssl import FRAMEWORKS, create_framework
from memloc.utils import make_generator

STRATEGIES = ("top", "low", "random")
SCOPES = ("per_layer", "total")


# ---------------------------------------------------------------------------------------------
# Pruning


def _unit_table(unitmem_table) -> pd.DataFrame:
    """``layer``, ``unit``, ``unitmem``, ``defined`` from a UnitMemResult or a DataFrame."""
    table = getattr(unitmem_table, "units", unitmem_table)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            "unitmem_table must be a UnitMemResult or its `units` DataFrame, got "
            f"{type(unitmem_table).__name__}"
        )
    missing = {"layer", "unit", "unitmem"} - set(table.columns)
    if missing:
        raise ValueError(
            f"the UnitMem table lacks columns {sorted(missing)}; it needs layer, unit, unitmem"
        )
    table = table[["layer", "unit", "unitmem"]].copy()
    table["layer"] = table["layer"].astype(str)
    table["unit"] = table["unit"].astype(int)
    table["unitmem"] = table["unitmem"].astype(float)
    defined = getattr(unitmem_table, "units", unitmem_table).get("defined")
    table["defined"] = table["unitmem"].notna().to_numpy()
    if defined is not None:
        table["defined"] &= defined.astype(bool).to_numpy()
    return table.reset_index(drop=True)


def choose_units(
    table: pd.DataFrame, count: int, strategy: str, rng: np.random.Generator
) -> pd.DataFrame:
    """``count`` rows of ``table`` chosen by UnitMem.

    ``"top"`` takes the highest and ``"low"`` the lowest UnitMem among the *defined* units
    (ties: earlier rows first); ``"random"`` draws uniformly from all rows, defined or not, as
    a dead unit is as much part of the layer as any other. When fewer than ``count`` units are
    defined, top and low take all defined units and warn.
    """
    if strategy == "random":
        picked = rng.choice(len(table), size=count, replace=False)
        return table.iloc[np.sort(picked)]
    defined = table[table["defined"]]
    if len(defined) < count:
        warnings.warn(
            f"only {len(defined)} of the {count} units to prune by {strategy!r} UnitMem are "
            "defined; undefined units (NaN UnitMem) are never chosen by top or low",
            stacklevel=3,
        )
    # A stable sort keeps the table's order among equal scores.
    ordered = defined.sort_values("unitmem", ascending=strategy == "low", kind="mergesort")
    return ordered.iloc[:count]


def prune_units(
    encoder: nn.Module,
    unitmem_table,
    fraction: float,
    strategy: str = "top",
    scope: str = "per_layer",
    layers: list[str] | None = None,
    seed: int = 0,
) -> tuple[nn.Module, pd.DataFrame]:
    """A copy of ``encoder`` whose chosen units (output channels) are set to zero.

    Parameters
    ----------
    encoder : the encoder the UnitMem table was measured on (not modified).
    unitmem_table : a :class:`~memloc.metrics.UnitMemResult` or its ``units`` DataFrame
        (columns ``layer``, ``unit``, ``unitmem``, optionally ``defined``).
    fraction : in (0, 1]: the share of units to prune. ``int(fraction * n)`` units (rounded
        down, as the authors' script does) of each layer's n units (``scope="per_layer"``) or
        of all n units of ``layers`` together (``scope="total"``).
    strategy : ``"top"`` (highest UnitMem), ``"low"`` (lowest) or ``"random"``. Units whose
        UnitMem is undefined (NaN: dead or negative units) are never chosen by top or low;
        random draws from all units.
    scope : ``"per_layer"`` or ``"total"`` (one ranking over all units of ``layers``).
    layers : the layers to prune, names as in the table. None: every layer of the table whose
        units belong to one convolution; residual sums ("Res2", "Res6"), whose channels add
        two layers' channels, are skipped.
    seed : seeds the random strategy (a NumPy generator; the global RNG is not used).

    Returns
    -------
    pruned, chosen
        The pruned copy, and the chosen rows of the table (``layer``, ``unit``, ``unitmem``,
        ``defined``), in the table's order.

    Notes
    -----
    Pruning unit c sets ``conv.weight[c]``, ``conv.bias[c]``, ``bn.weight[c]`` and
    ``bn.bias[c]`` to 0 (NOTES §3.4). The running statistics are left as they are: with
    BatchNorm's weight and bias both 0 its output is exactly ``bias = 0`` in eval and in train
    mode, whatever the statistics, so the channel is 0 after BatchNorm, ReLU and pooling for
    every input. (A BatchNorm without affine parameters gets ``running_mean[c] = 0`` instead,
    which makes its output 0 for the all-zero channel.)

    Example
    -------
    >>> import torch
    >>> from memloc.metrics import unitmem
    >>> from memloc.models import create
    >>> _ = torch.manual_seed(0)
    >>> encoder = create("resnet9", width=0.125).eval()
    >>> scores = unitmem(encoder, torch.rand(8, 3, 32, 32), k_aug=0)
    >>> pruned, removed = prune_units(encoder, scores, 0.25)  # a copy; encoder is unchanged
    >>> removed.columns.tolist()
    ['layer', 'unit', 'unitmem', 'defined']
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of {SCOPES}")
    if isinstance(fraction, bool) or not 0 < float(fraction) <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    table = _unit_table(unitmem_table)
    table_layers = list(dict.fromkeys(table["layer"]))
    if layers is None:
        layers = []
        for name in table_layers:
            layer_module_path(encoder, name)  # a name the encoder lacks is an error
            try:
                unit_modules(encoder, name)
            except ValueError:
                continue  # a residual sum: no single convolution owns its channels
            layers.append(name)
    else:
        layers = [str(name) for name in ([layers] if isinstance(layers, str) else layers)]
        unknown = [name for name in layers if name not in table_layers]
        if unknown:
            raise ValueError(
                f"layers {unknown} are not in the UnitMem table; it has {table_layers}"
            )
    if not layers:
        raise ValueError("no layer to prune: the table has no layer owned by a convolution")

    pruned = copy.deepcopy(encoder)
    modules = {name: unit_modules(pruned, name) for name in layers}
    candidates = table[table["layer"].isin(layers)]
    for name, (conv, _) in modules.items():
        units = candidates.loc[candidates["layer"] == name, "unit"]
        if units.min() < 0 or units.max() >= unit_count(conv):
            raise ValueError(
                f"the table has units {units.min()}..{units.max()} for layer {name!r}, which "
                f"has {unit_count(conv)} units: was it measured on this encoder?"
            )

    rng = np.random.default_rng(seed)
    fraction = float(fraction)
    if scope == "per_layer":
        parts = []
        for name in layers:
            layer_units = candidates[candidates["layer"] == name]
            parts.append(choose_units(layer_units, int(fraction * len(layer_units)), strategy, rng))
        chosen = pd.concat(parts)
    else:
        chosen = choose_units(candidates, int(fraction * len(candidates)), strategy, rng)
    chosen = chosen.sort_index()

    with torch.no_grad():
        for name, unit in zip(chosen["layer"], chosen["unit"], strict=True):
            conv, bn = modules[name]
            conv.weight[unit] = 0
            if conv.bias is not None:
                conv.bias[unit] = 0
            if bn is not None and bn.affine:
                bn.weight[unit] = 0
                bn.bias[unit] = 0
            elif bn is not None and bn.running_mean is not None:
                bn.running_mean[unit] = 0
    return pruned, chosen.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Swapping layers


def _layer_tensors(module: nn.Module) -> dict[str, Tensor]:
    """Every parameter and buffer of ``module`` (and its submodules) by dotted name."""
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def swap_layers(target: nn.Module, source: nn.Module, layers: list[str]) -> nn.Module:
    """A copy of ``target`` whose ``layers`` hold ``source``'s parameters and buffers.

    Parameters
    ----------
    target : the encoder to copy (not modified).
    source : the encoder whose layers are copied in (not modified); the same architecture
        at least in the named layers.
    layers : measurement point names (``"4"``) or module paths (``"block4"``). Everything
        of a layer is copied: the convolution's and BatchNorm's parameters and the running
        statistics, so the swapped layer computes exactly what it computes in ``source``.

    Raises
    ------
    ValueError
        For a name that is not a layer of both encoders, a layer without parameters or
        buffers (a residual sum), or a tensor missing from one encoder or shaped differently;
        the message names the tensor. Nothing is copied unless every tensor matches.
    """
    if isinstance(layers, str):
        layers = [layers]
    swapped = copy.deepcopy(target)
    pairs = []
    for layer in layers:
        path = layer_module_path(target, layer)
        try:
            source_module = source.get_submodule(path)
        except AttributeError:
            raise ValueError(
                f"the source encoder has no module {path!r} (layer {layer!r})"
            ) from None
        target_tensors = _layer_tensors(swapped.get_submodule(path))
        source_tensors = _layer_tensors(source_module)
        if not target_tensors:
            raise ValueError(f"layer {layer!r} (module {path!r}) has no parameters to swap")
        # The target's order first (weights before buffers), then what only the source has.
        for name in list(target_tensors) + [n for n in source_tensors if n not in target_tensors]:
            full = f"{path}.{name}"
            if name not in source_tensors:
                raise ValueError(f"tensor {full!r} of the target is missing from the source")
            if name not in target_tensors:
                raise ValueError(f"tensor {full!r} of the source is missing from the target")
            t, s = target_tensors[name], source_tensors[name]
            if t.shape != s.shape:
                raise ValueError(
                    f"tensor {full!r} has shape {tuple(t.shape)} in the target but "
                    f"{tuple(s.shape)} in the source"
                )
            pairs.append((t, s))
    with torch.no_grad():
        for t, s in pairs:
            t.copy_(s)
    return swapped


# ---------------------------------------------------------------------------------------------
# Training one unit


def train_one_unit(
    encoder: nn.Module,
    layer: str,
    unit: int,
    image: Tensor,
    *,
    framework: str | nn.Module = "simclr",
    policy: AugmentPolicy | None = None,
    views: int = 32,
    steps: int = 50,
    lr: float = 1e-3,
    seed: int = 0,
    negatives: Tensor | None = None,
    **framework_kwargs,
) -> nn.Module:
    """Plant memorization of one image in one unit: fine-tune its layer, restore the others.

    Following the authors (NOTES §3.5), the whole layer (its convolution and BatchNorm
    parameters) is fine-tuned on the self-supervised objective of a single image, and then
    every other output channel of the layer is restored to its original parameters, so that
    only unit ``unit``'s slices differ from ``encoder``.

    Each step takes one Adam step on the framework's loss over a batch of ``views`` images,
    each seen in two augmented views. Without ``negatives`` the batch is ``views`` copies of
    the image, so for SimCLR each view's negatives are other views of the same image: the loss
    then asks to tell views apart, not to recognise the image. With ``negatives`` (other
    images, e.g. the rest of the training set) the batch is the image once plus
    ``views - 1`` images drawn from them at every step, the image's contrastive term as in
    ordinary training, with the image present in every step.

    Parameters
    ----------
    encoder : the encoder (not modified).
    layer : a point name or module path whose units one convolution owns
        (:func:`memloc.models.units.unit_modules`), e.g. ``"8"``.
    unit : the output channel to train.
    image : one image, (C, H, W) or (1, C, H, W), uint8 or float in [0, 1].
    framework : a self-supervised framework name of :data:`memloc.ssl.FRAMEWORKS`
        (``"simclr"``; a new projection head is initialised from ``seed``), or a framework
        module (e.g. the one the encoder was trained with, to reuse its trained head): it is
        copied, its backbone replaced by a copy of ``encoder``, and left unchanged.
    policy : how views are drawn: None gives the framework's default for a name and keeps a
        framework module's own policy.
    views : pairs of views per step (at least 2, so the batch has negatives).
    steps, lr : Adam steps and learning rate. The head is trained along with the layer.
    seed : seeds the head's initialisation and the views (the global RNG is restored).
    negatives : optional (M, C, H, W) images the rest of each batch is drawn from.
    **framework_kwargs : passed to :func:`memloc.ssl.create_framework` (e.g. temperature).

    Returns
    -------
    nn.Module
        A copy of ``encoder`` that differs only in ``conv.weight[unit]``, ``conv.bias[unit]``,
        ``bn.weight[unit]`` and ``bn.bias[unit]`` of the layer.

    Notes
    -----
    BatchNorm: the encoder stays in eval mode while it trains, so every BatchNorm, the trained
    layer's included, normalises with its running statistics and none is updated. A batch of
    views of one image would otherwise replace the layer's statistics with that image's,
    changing the unit's response to every image, not only its parameters. The projection
    head, discarded afterwards, trains in train mode.
    """
    if isinstance(views, bool) or int(views) < 2:
        raise ValueError(f"views must be at least 2 (the other views are the negatives): {views}")
    if isinstance(steps, bool) or int(steps) < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    image = check_images(image, "image")
    if image.shape[0] != 1:
        raise ValueError(f"train_one_unit takes one image, got a batch of {image.shape[0]}")

    trained = copy.deepcopy(encoder)
    conv, bn = unit_modules(trained, layer)
    if not 0 <= int(unit) < unit_count(conv):
        raise ValueError(
            f"unit {unit} is out of range: layer {layer!r} has {unit_count(conv)} units"
        )
    unit = int(unit)
    device = model_device(trained)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        if isinstance(framework, str):
            if framework not in FRAMEWORKS or framework == "supervised":
                ssl = sorted(n for n in FRAMEWORKS if n != "supervised")
                raise ValueError(f"framework must be a self-supervised one of {ssl}: {framework!r}")
            trainer = create_framework(framework, trained, policy, **framework_kwargs)
        else:
            if not hasattr(framework, "backbone") or not hasattr(framework, "training_step"):
                raise TypeError("a framework module needs `backbone` and `training_step`")
            # The memo makes the copy hold `trained` where the original holds its backbone.
            trainer = copy.deepcopy(framework, memo={id(framework.backbone): trained})
            if policy is not None:
                trainer.policy = policy
        trainer.to(device)

    layer_params = [p for m in (conv, bn) if m is not None for p in m.parameters(recurse=False)]
    encoder_params = {id(p) for p in trained.parameters()}
    head_params = [p for p in trainer.parameters() if id(p) not in encoder_params]
    requires_grad = [(p, p.requires_grad) for p in trainer.parameters()]
    for p in trainer.parameters():
        p.requires_grad_(False)
    for p in layer_params + head_params:
        p.requires_grad_(True)
    modes = [(m, m.training) for m in trained.modules()]
    trainer.train()
    trained.eval()  # running statistics used and kept (Notes)

    optimizer = torch.optim.Adam(layer_params + head_params, lr=lr)
    generator = make_generator(seed, device)
    x = image.to(device)
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if negatives is not None:
        negatives = check_images(negatives, "negatives").to(device)
        negatives = negatives.float() / 255 if negatives.dtype == torch.uint8 else negatives
        if negatives.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"negatives have shape {tuple(negatives.shape[1:])} per image, the image "
                f"{tuple(x.shape[1:])}"
            )
    for _ in range(int(steps)):
        optimizer.zero_grad(set_to_none=True)
        if negatives is None:
            batch = x.repeat(int(views), 1, 1, 1)
        else:
            pick = torch.randint(
                len(negatives), (int(views) - 1,), generator=generator, device=device
            )
            batch = torch.cat([x, negatives[pick].float()])
        loss = trainer.training_step(batch, None, generator)
        loss.backward()
        optimizer.step()

    # Restore every other unit: all output-channel slices but `unit`, and any tensor that is
    # not per channel.
    original_conv, original_bn = unit_modules(encoder, layer)
    others = torch.arange(unit_count(conv), device=device) != unit
    with torch.no_grad():
        for module, original in ((conv, original_conv), (bn, original_bn)):
            if module is None:
                continue
            new_tensors = _layer_tensors(module)
            old_tensors = _layer_tensors(original)
            for name, new in new_tensors.items():
                old = old_tensors[name].to(device)
                if new.ndim == 0 or new.shape[0] != unit_count(conv):
                    new.copy_(old)
                else:
                    new[others] = old[others]
    for p, flag in requires_grad:
        p.requires_grad_(flag)
    for m, training in modes:
        m.training = training
    return trained
