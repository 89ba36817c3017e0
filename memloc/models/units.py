"""Which modules own a layer's units: the convolution (and its BatchNorm) behind a point.

Interventions on single units (pruning, training one unit) change the parameter slices of one
output channel: row ``c`` of the convolution's weight and bias and entry ``c`` of the
BatchNorm's weight, bias and running statistics that follow it. :func:`unit_modules` finds
those two modules for a measurement point or a module path:

- ResNet9: ``"1"`` ... ``"8"`` (or ``"block1"`` ... ``"block8"``) -> ``blockK.conv``,
  ``blockK.bn``.
- memloc's torchvision ResNets: ``"stem"`` -> ``conv1``, ``bn1``; inside a block, a
  convolution or BatchNorm by path (``"layer1.0.conv2"`` or ``"layer1.0.bn2"`` ->
  ``layer1.0.conv2``, ``layer1.0.bn2``; ``"layer2.0.downsample.0"`` -> the shortcut's conv
  and BatchNorm).
- Any model: a convolution whose BatchNorm is its sibling by torchvision's naming
  (``conv``/``bn``, ``convN``/``bnN``, or the next entry of an ``nn.Sequential``), or a
  container holding exactly one convolution (and at most one BatchNorm after it).

- ViT: the MLP's hidden units ``"block{i}.mlp.act"`` (the points UnitMem reads) -> the
  ``fc1`` before the GELU, with no BatchNorm: unit ``c`` is row ``c`` of ``fc1``'s weight and
  entry ``c`` of its bias, and zeroing them makes the unit output GELU(0) = 0. Any
  ``nn.Linear`` by path owns its output features the same way.

Residual sums and whole residual blocks have no unit owner: their channel ``c`` is the sum of
two layers' channels, so zeroing one layer's slices does not silence it (ValueError). Other
points without a convolution or linear layer of their own (a whole attention or MLP sublayer)
are not supported (NotImplementedError).
"""

from __future__ import annotations

import re

from torch import nn

from memloc.models.base import Add

_CONV = nn.modules.conv._ConvNd
_BATCHNORM = nn.modules.batchnorm._BatchNorm


def layer_module_path(model: nn.Module, layer: str) -> str:
    """The dotted module path of ``layer``: a measurement (or unit) point name or a path.

    Raises
    ------
    ValueError
        For a name that is neither; the message lists the valid names.
    """
    points = {}
    if hasattr(model, "measurement_points"):
        points.update({p.name: p.module for p in model.measurement_points()})
        if hasattr(model, "unit_points"):
            for p in model.unit_points():
                points.setdefault(p.name, p.module)
    if layer in points:
        return points[layer]
    module_paths = [name for name, _ in model.named_modules() if name]
    if layer in module_paths:
        return layer
    valid = list(points) + [p for p in module_paths if p not in points]
    shown = ", ".join(valid[:60]) + (f", ... ({len(valid) - 60} more)" if len(valid) > 60 else "")
    raise ValueError(f"{type(model).__name__} has no layer {layer!r}; valid names: {shown}")


def _sibling(model: nn.Module, path: str, candidates: list[str], kind: type) -> nn.Module | None:
    """The first module of type ``kind`` among ``candidates`` (names beside ``path``)."""
    parent_path, _, _ = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    children = dict(parent.named_children())
    for name in candidates:
        if isinstance(children.get(name), kind):
            return children[name]
    return None


def _sibling_names(name: str, step: int) -> list[str]:
    """Names of the module that pairs with ``name``: conv <-> bn, convN <-> bnN, i <-> i + step.

    ``step`` is +1 when looking for the BatchNorm after a convolution, -1 for the convolution
    before a BatchNorm.
    """
    if name.isdigit():
        return [str(int(name) + step)]
    match = re.fullmatch(r"(conv|bn)(\d*)", name)
    if match is None:
        return []
    return [("bn" if match.group(1) == "conv" else "conv") + match.group(2)]


def unit_count(module: nn.Module) -> int:
    """The number of units a unit-owning module has: a convolution's output channels or a
    linear layer's output features."""
    return module.out_channels if isinstance(module, _CONV) else module.out_features


def unit_modules(model: nn.Module, layer: str) -> tuple[nn.Module, nn.Module | None]:
    """The convolution whose output channels are ``layer``'s units, and the BatchNorm after it.

    Parameters
    ----------
    model : a memloc encoder or any ``nn.Module``.
    layer : a measurement point name (``"4"``, ``"stem"``) or a dotted module path
        (``"block4"``, ``"layer1.0.conv2"``); the module docstring lists what is understood.

    Returns
    -------
    conv, bn
        The modules of ``model`` itself (not copies); ``conv`` is a linear layer for a ViT's
        MLP units. Unit ``c`` of the layer is output channel ``c`` of ``conv``:
        ``conv.weight[c]``, ``conv.bias[c]``, and ``bn.weight[c]``, ``bn.bias[c]``,
        ``bn.running_mean[c]``, ``bn.running_var[c]``. ``bn`` is None for a convolution that
        no BatchNorm follows (and for a linear layer).

    Raises
    ------
    ValueError
        For an unknown name, a residual sum or block, or a container whose output channels are
        not those of a single convolution.
    NotImplementedError
        For a layer without any convolution (a ViT's attention or MLP).
    """
    path = layer_module_path(model, layer)
    module = model.get_submodule(path)
    # memloc's ResNets measure the stem at the ReLU after conv1 -> bn1 (torchvision's names).
    if path == "relu" and isinstance(getattr(model, "conv1", None), _CONV):
        bn = getattr(model, "bn1", None)
        return model.conv1, bn if isinstance(bn, _BATCHNORM) else None

    if isinstance(module, _CONV):
        name = path.rpartition(".")[2]
        return module, _sibling(model, path, _sibling_names(name, +1), _BATCHNORM)
    if isinstance(module, nn.Linear):
        return module, None
    # A ViT MLP's hidden units: the GELU ``act`` after ``fc1``.
    if path.rpartition(".")[2] == "act":
        fc1 = _sibling(model, path, ["fc1"], nn.Linear)
        if fc1 is not None:
            return fc1, None
    if isinstance(module, _BATCHNORM):
        name = path.rpartition(".")[2]
        conv = _sibling(model, path, _sibling_names(name, -1), _CONV)
        if conv is None:
            raise ValueError(f"found no convolution before the BatchNorm {path!r}")
        return conv, module

    convs = [m for m in module.modules() if isinstance(m, _CONV)]
    if isinstance(module, Add) or any(isinstance(m, Add) for m in module.modules()):
        raise ValueError(
            f"layer {layer!r} is a residual sum (or contains one): its channel c adds two "
            "layers' channels, so no single convolution owns its units; name one of the "
            "convolutions instead"
        )
    if not convs:
        raise NotImplementedError(
            f"layer {layer!r} ({type(module).__name__}) has no convolution: unit "
            "interventions support conv -> BatchNorm layers (ResNet9, ResNets) and a ViT's MLP "
            "hidden units (e.g. 'block1.mlp.act')"
        )
    children = list(module.children())
    child_convs = [m for m in children if isinstance(m, _CONV)]
    child_bns = [m for m in children if isinstance(m, _BATCHNORM)]
    if len(convs) != 1 or len(child_convs) != 1 or len(child_bns) > 1:
        names = [n for n, m in module.named_modules() if isinstance(m, _CONV)]
        raise ValueError(
            f"layer {layer!r} holds {len(convs)} convolutions ({', '.join(names)}) and no "
            "single one owns its output channels; name one of them, e.g. "
            f"{path + '.' + names[-1]!r}"
        )
    conv = child_convs[0]
    bn = child_bns[0] if child_bns else None
    if bn is not None and children.index(bn) < children.index(conv):
        raise ValueError(f"layer {layer!r} has its BatchNorm before its convolution")
    return conv, bn
