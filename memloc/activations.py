"""Capturing layer outputs with forward hooks, reduced on the fly.

Layers are addressed by name: a memloc :class:`~memloc.models.Encoder`'s measurement point
names (``"1"`` ... ``"8"``, ``"Res2"``, ``"block3.attn"``, and the names of its
``unit_points()``), or the dotted path of any submodule of any ``nn.Module`` (torchvision,
timm or your own model: ``"layer3"``, ``"blocks.2.mlp.act"``). :func:`resolve_layers` turns
names into :class:`~memloc.models.MeasurementPoint` objects; :class:`LayerRecorder` hooks them
and returns every requested layer's output from one forward pass, reduced as soon as it is
produced so that memory stays bounded:

- ``"unit_mean"``: one value per unit. A conv map (B, C, H, W) is averaged over space -> (B, C);
  tokens (B, T, D) are averaged over tokens -> (B, D); (B, D) stays as it is.
- ``"flatten"``: the whole output as one vector per image, (B, -1).
- any callable ``reduce(output) -> Tensor``.

A module whose output is a tuple (``nn.MultiheadAttention``) is read at its first element.

Two forwards (``forward=``): ``"paper"`` (default) runs the model's own ``forward``, residual
sums included; ``"scripts"`` reads a memloc ResNet9 as the authors' UnitMem.py and ClassMem.py
did, through torchvision's ``IntermediateLayerGetter``, which calls the children in order and
skips both residual additions (NOTES.md §3.7; :class:`SkiplessRecorder`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from memloc.models.base import MeasurementPoint

REDUCTIONS = ("unit_mean", "flatten")

FORWARDS = ("paper", "scripts")

Reducer = Callable[[Tensor], Tensor]


def unit_mean(output: Tensor) -> Tensor:
    """One float32 value per unit: ``(B, C, *spatial)`` -> mean over space, (B, T, D) -> mean
    over tokens, (B, D) unchanged. Three-dimensional outputs are read as tokens (B, T, D)."""
    if output.ndim < 2:
        raise ValueError(f"cannot read units from an output of shape {tuple(output.shape)}")
    if output.ndim == 2:
        return output.float()
    if output.ndim == 3:
        return output.mean(dim=1, dtype=torch.float32)
    return output.mean(dim=tuple(range(2, output.ndim)), dtype=torch.float32)


def flatten(output: Tensor) -> Tensor:
    """The whole output as one float32 vector per image: (B, -1)."""
    return output.reshape(output.shape[0], -1).float()


_REDUCERS: dict[str, Reducer] = {"unit_mean": unit_mean, "flatten": flatten}


def get_reducer(reduce: str | Reducer) -> Reducer:
    """The reduction function for ``"unit_mean"``, ``"flatten"`` or a callable."""
    if callable(reduce):
        return reduce
    if reduce not in _REDUCERS:
        raise ValueError(f"unknown reduce {reduce!r}; use one of {REDUCTIONS} or a callable")
    return _REDUCERS[reduce]


def _kind_of(module: nn.Module) -> str:
    """A measurement point kind for a module of an arbitrary model (for tables only)."""
    name = type(module).__name__.lower()
    if isinstance(module, nn.MultiheadAttention) or "attn" in name or "attention" in name:
        return "attention"
    if isinstance(module, nn.Linear) or "mlp" in name:
        return "mlp"
    if "embed" in name:
        return "embed"
    if isinstance(module, nn.modules.conv._ConvNd) or isinstance(
        module, (nn.ReLU, nn.modules.batchnorm._BatchNorm, nn.modules.pooling._MaxPoolNd)
    ):
        return "conv"
    return "block"


def _module_paths(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def valid_layer_names(model: nn.Module) -> list[str]:
    """Names :func:`resolve_layers` accepts for ``model``: measurement points (and unit points)
    of a memloc encoder first, then every dotted submodule path."""
    names = []
    if hasattr(model, "measurement_points"):
        names += [p.name for p in model.measurement_points()]
        if hasattr(model, "unit_points"):
            names += [p.name for p in model.unit_points() if p.name not in names]
    return names + [p for p in _module_paths(model) if p not in names]


def _describe_valid(model: nn.Module, limit: int = 60) -> str:
    names = valid_layer_names(model)
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return shown + more


def resolve_layers(
    model: nn.Module, layers: str | Iterable[str] | None = None, *, units: bool = False
) -> list[MeasurementPoint]:
    """The measurement points named by ``layers``, in the order given.

    Parameters
    ----------
    model : a memloc ``Encoder`` or any ``nn.Module``.
    layers : names, a single name, or None. For a memloc encoder a name is a measurement
        point (``"4"``, ``"Res2"``, ``"block3.attn"``), one of its unit points
        (``"block3.mlp.act"``) or a dotted module path; for any other module a dotted module
        path (``"layer3.1"``). None means every measurement point of a memloc encoder (its
        ``unit_points()`` when ``units`` is true) and every direct child of any other module.
    units : pick the default for unit metrics (UnitMem, ClassMem) rather than LayerMem.

    Returns
    -------
    list of MeasurementPoint
        ``name`` as asked, ``module`` the path for ``get_submodule``, ``kind`` for tables.

    Raises
    ------
    KeyError
        For a name that is neither a point nor a module; the message lists the valid names.
    ValueError
        For an empty list or a name given twice.

    Example
    -------
    >>> from memloc.models import create
    >>> encoder = create("resnet9", width=0.125)
    >>> [(p.name, p.module, p.kind) for p in resolve_layers(encoder, ["4", "Res6"])]
    [('4', 'block4', 'conv'), ('Res6', 'res6', 'residual')]
    """
    is_encoder = hasattr(model, "measurement_points")
    points: dict[str, MeasurementPoint] = {}
    if is_encoder:
        for p in model.measurement_points():
            points[p.name] = p
        if hasattr(model, "unit_points"):
            for p in model.unit_points():
                points.setdefault(p.name, p)
    if layers is None:
        if is_encoder:
            if units and hasattr(model, "unit_points"):
                return list(model.unit_points())
            return list(model.measurement_points())
        return [MeasurementPoint(n, n, _kind_of(m)) for n, m in model.named_children()]
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty; pass None for every measurement point or some names")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers names a layer more than once: {layers}")
    modules = dict(model.named_modules())
    out = []
    for name in layers:
        if not isinstance(name, str):
            raise TypeError(f"layer names are strings, got {name!r}")
        if name in points:
            out.append(points[name])
        elif name and name in modules:
            out.append(MeasurementPoint(name, name, _kind_of(modules[name])))
        else:
            raise KeyError(
                f"{type(model).__name__} has no layer {name!r}; valid names: "
                f"{_describe_valid(model)}"
            )
    return out


class _StopForward(Exception):
    """Raised by a hook once every requested layer is recorded, to skip the rest of forward."""


class LayerRecorder:
    """Forward hooks that record reduced outputs of named layers; a context manager.

    Parameters
    ----------
    model : the network (any ``nn.Module``).
    layers : names for :func:`resolve_layers` (None: every measurement point).
    reduce : ``"unit_mean"``, ``"flatten"`` or a callable applied to each output as soon as it
        is produced (the raw output is not kept).
    units : default to the model's unit points when ``layers`` is None.

    Examples
    --------
    >>> import torch
    >>> from memloc.models import create
    >>> encoder, x = create("resnet9", width=0.125).eval(), torch.rand(2, 3, 32, 32)
    >>> with LayerRecorder(encoder, ["4", "Res6"], reduce="unit_mean") as rec:
    ...     acts = rec(x)            # one forward pass
    >>> {name: tuple(a.shape) for name, a in acts.items()}
    {'4': (2, 8), 'Res6': (2, 32)}

    Calling the recorder runs ``model(x)`` once; for a memloc encoder it stops the forward pass
    as soon as the last requested measurement point has been recorded. The hooks are removed
    when the ``with`` block ends, also on an exception. ``shapes`` holds each layer's raw
    output shape from the last call. A module that runs more than once per forward pass (a
    ReLU reused inside a torchvision ``BasicBlock``) is an error: its output would be
    ambiguous.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Iterable[str] | None = None,
        reduce: str | Reducer = "unit_mean",
        *,
        units: bool = False,
    ):
        self.model = model
        self.points = resolve_layers(model, layers, units=units)
        self.reduce = get_reducer(reduce)
        self.outputs: dict[str, Tensor] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._handles: list = []
        self._stop_early = False
        self._batch: int | None = None  # the batch size of the current __call__
        # Stopping the forward pass early is safe only where every point is declared to run
        # once per forward (memloc's measurement points); elsewhere a module reused later in
        # the pass must be caught by the check in the hook.
        declared = set()
        if hasattr(model, "measurement_points"):
            declared = {p.module for p in model.measurement_points()}
            if hasattr(model, "unit_points"):
                declared |= {p.module for p in model.unit_points()}
        self._may_stop = all(p.module in declared for p in self.points)
        # Several names may address one module (a point and its module path): one hook each.
        self._names_by_module: dict[str, list[str]] = {}
        for p in self.points:
            self._names_by_module.setdefault(p.module, []).append(p.name)

    @property
    def names(self) -> list[str]:
        """The recorded layer names, in the order asked."""
        return [p.name for p in self.points]

    def _hook(self, names: list[str]):
        def hook(module, args, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            if not isinstance(output, Tensor):
                raise TypeError(
                    f"layer {names[0]!r} returned {type(output).__name__}, not a tensor; "
                    "record a submodule that returns a tensor"
                )
            if self._batch is not None and (output.ndim == 0 or output.shape[0] != self._batch):
                raise ValueError(
                    f"layer {names[0]!r} returned shape {tuple(output.shape)} for a batch of "
                    f"{self._batch}: memloc reads outputs whose first axis is the batch "
                    "(batch_first=True for nn.MultiheadAttention and transformer layers)"
                )
            if names[0] in self.outputs:
                raise RuntimeError(
                    f"layer {names[0]!r} (module {type(module).__name__}) ran more than once "
                    "in one forward pass; record a module that runs once, e.g. its parent block"
                )
            reduced = self.reduce(output.detach())
            for name in names:
                self.outputs[name] = reduced
                self.shapes[name] = tuple(output.shape)
            if self._stop_early and len(self.outputs) == len(self.points):
                raise _StopForward

        return hook

    def __enter__(self) -> LayerRecorder:
        try:
            for module_path, names in self._names_by_module.items():
                module = self.model.get_submodule(module_path)
                self._handles.append(module.register_forward_hook(self._hook(names)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook (safe to call twice)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def clear(self) -> None:
        """Forget the recorded outputs (``model(x)`` called by hand needs this between calls)."""
        self.outputs = {}

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        """Run ``model(x)`` once and return ``{name: reduced output}`` in the order asked."""
        if not self._handles:
            raise RuntimeError("use LayerRecorder inside a `with` block (the hooks are not set)")
        self.outputs = {}
        self._stop_early = self._may_stop
        self._batch = x.shape[0]
        try:
            self.model(x)
        except _StopForward:
            pass
        finally:
            self._stop_early = False
            self._batch = None
        missing = [n for n in self.names if n not in self.outputs]
        if missing:
            raise RuntimeError(
                f"layers {missing} did not run in the forward pass of {type(self.model).__name__}"
            )
        outputs, self.outputs = self.outputs, {}
        return {n: outputs[n] for n in self.names}


class SkiplessRecorder:
    """The authors' scripts' reading of a memloc ResNet9: children in order, no residual sums.

    UnitMem.py and ClassMem.py read activations with torchvision's ``IntermediateLayerGetter``,
    which calls a model's children one after the other and ignores its ``forward``; the
    ResNet9 they read adds its residuals in ``forward``, so they measured the network without
    its skip connections (NOTES.md §3.7). This recorder runs the same getter
    (:meth:`~memloc.models.resnet9.ResNet9.skipless_getter`) and returns what
    :class:`LayerRecorder` returns, ``{name: reduced output}``. Points 1 to 4 equal the paper's
    forward; Res2 is block 4's output (its sum is skipped), and 5, 6, 7, 8 and Res6 (block 8's
    output) come from blocks fed without the sums. Usable as a context manager, like
    :class:`LayerRecorder` (it sets no hooks).

    Parameters
    ----------
    model : a memloc ResNet9; any other model is a ValueError (it has no such reading).
    layers, reduce, units : as for :class:`LayerRecorder`; only measurement points and the
        block modules can be read.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Iterable[str] | None = None,
        reduce: str | Reducer = "unit_mean",
        *,
        units: bool = False,
    ):
        if not hasattr(model, "skipless_getter"):
            raise ValueError(
                f"forward='scripts' reproduces the authors' skip-less reading of ResNet9; "
                f"{type(model).__name__} has none: use forward='paper'"
            )
        self.model = model
        self.points = resolve_layers(model, layers, units=units)
        self.reduce = get_reducer(reduce)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._block_of = {p.name: model.skipless_block(p.module) for p in self.points}
        self._getter = model.skipless_getter(dict.fromkeys(self._block_of.values()))

    @property
    def names(self) -> list[str]:
        """The recorded layer names, in the order asked."""
        return [p.name for p in self.points]

    def __enter__(self) -> SkiplessRecorder:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        """Run the blocks in order on ``x`` once and return ``{name: reduced output}``."""
        if hasattr(self.model, "check_input"):
            self.model.check_input(x)
        outputs = self._getter(x)
        reduced = {block: self.reduce(out.detach()) for block, out in outputs.items()}
        for name, block in self._block_of.items():
            self.shapes[name] = tuple(outputs[block].shape)
        return {name: reduced[block] for name, block in self._block_of.items()}


def check_forward(forward: str) -> str:
    """``forward`` if it is ``"paper"`` or ``"scripts"``; a one-line ValueError otherwise."""
    if forward not in FORWARDS:
        raise ValueError(
            f"unknown forward {forward!r}; use 'paper' (the encoder's forward, residual sums "
            "included) or 'scripts' (the authors' skip-less reading of ResNet9)"
        )
    return forward


def recorder(
    model: nn.Module,
    layers: str | Iterable[str] | None = None,
    reduce: str | Reducer = "unit_mean",
    *,
    units: bool = False,
    forward: str = "paper",
) -> LayerRecorder | SkiplessRecorder:
    """A :class:`LayerRecorder` (``forward="paper"``) or a :class:`SkiplessRecorder`
    (``forward="scripts"``) for ``layers``; use it in a ``with`` block."""
    if check_forward(forward) == "scripts":
        return SkiplessRecorder(model, layers, reduce, units=units)
    return LayerRecorder(model, layers, reduce, units=units)


def record(
    model: nn.Module,
    x: Tensor,
    layers: str | Iterable[str] | None = None,
    reduce: str | Reducer = "unit_mean",
    *,
    units: bool = False,
    forward: str = "paper",
) -> dict[str, Tensor]:
    """Reduced outputs of ``layers`` for one batch ``x``: hooks set, one forward, hooks removed.

    Runs under ``torch.no_grad()`` and leaves the model's train/eval mode as it is.
    ``forward="scripts"`` reads a ResNet9 without its residual sums, as the authors' UnitMem
    and ClassMem scripts did (:class:`SkiplessRecorder`).

    Returns
    -------
    dict
        ``{name: Tensor}`` in the order of ``layers``; shapes as :class:`LayerRecorder` says.
    """
    with torch.no_grad(), recorder(model, layers, reduce, units=units, forward=forward) as rec:
        return rec(x)


# ---------------------------------------------------------------------------------------------
# Feeding views: what the metrics share


VIEW_BLOCK = 1024
"""Points per block of random draws. Views are drawn block by block with a generator seeded by
(seed, stream, block), so a seed fixes every view whatever the batch size. Large, because each
draw is ~150 small kernels: on an H200, blocks of 64 made LayerMem (N=1000, K=20) launch-bound,
1.0 s of its 1.07 s spent drawing views."""

VIEW_MODES = ("single", "pairs", "original")

CPU_IMAGES_PER_FORWARD = 128
"""Default images per forward pass on the CPU. Small batches keep a layer's activations in
cache: ResNet9 (width 1, 32x32) ran at 0.23 ms per image in batches of 64-128 against
0.49 ms in batches of 512 (2 threads)."""

GPU_IMAGES_PER_FORWARD = 1024
"""Default images per forward pass on a GPU, where larger batches keep it busy."""


def default_batch_size(device: str | torch.device, images_per_item: int = 1) -> int:
    """Default items per forward pass on ``device``: ``CPU_IMAGES_PER_FORWARD`` images on the
    CPU, ``GPU_IMAGES_PER_FORWARD`` elsewhere, divided by ``images_per_item`` (2 for pairs)."""
    on_cpu = torch.device(device).type == "cpu"
    images = CPU_IMAGES_PER_FORWARD if on_cpu else GPU_IMAGES_PER_FORWARD
    return max(1, images // images_per_item)


@dataclass
class ViewBatch:
    """A batch of views ready for the encoders.

    Attributes
    ----------
    points : (b,) int64, index of each view's image in the images given.
    ks : (b,) int64, which augmentation (0 ... K-1) the view is.
    views : (b, C, H, W) for mode "single"; (2b, C, H, W) for "pairs" and "original", the
        first b rows one view of each pair and the last b rows the other.
    """

    points: Tensor
    ks: Tensor
    views: Tensor


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without any)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def check_images(images: Tensor, name: str = "images") -> Tensor:
    """``images`` as (N, C, H, W): uint8 (read as x / 255) or float in [0, 1]; ValueError else."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(
            f"{name} must be a batch of images (N, C, H, W), got shape {tuple(images.shape)}"
        )
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"{name} must be uint8 or float images in [0, 1], got {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if images.is_floating_point():
        # Float images are read as they are: 0-255 values would silently saturate the encoder.
        low, high = float(images.min()), float(images.max())
        if not (low >= 0 and high <= 1):  # NaN fails too
            raise ValueError(
                f"{name} must be float images in [0, 1], got values from {low:g} to {high:g}; "
                "divide 0-255 images by 255 (or pass them as uint8)"
            )
    return images


def _as_float(x: Tensor) -> Tensor:
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def block_seed(seed: int, stream: int, block: int) -> int:
    """A well-mixed 63-bit seed for one block of views (``numpy.random.SeedSequence``)."""
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    state = np.random.SeedSequence([int(seed), int(stream), int(block)]).generate_state(2)
    return int(state[0]) << 31 ^ int(state[1])


def iter_views(
    images: Tensor,
    *,
    k_aug: int,
    policy: Callable[[Tensor, torch.Generator], Tensor] | None,
    mode: str = "single",
    seed: int = 0,
    stream: int = 0,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
) -> Iterator[ViewBatch]:
    """Every (image, augmentation) view of ``images``, in batches of ``batch_size`` views.

    Parameters
    ----------
    images : (N, C, H, W) uint8 or float in [0, 1]; moved to ``device`` a block at a time.
    k_aug : augmentations per image (K). 0 (mode "single" only) means the image itself, once.
    policy : ``policy(x, generator) -> views`` drawing one random view per image of a batch.
    mode : ``"single"`` one view per augmentation; ``"pairs"`` two independent views
        (LayerMem's ``views`` variant); ``"original"`` the image and one view (the authors'
        script).
    seed, stream : the random draws of block ``b`` come from a generator on ``device`` seeded
        with ``block_seed(seed, stream, b)``: independent of ``batch_size``, different for
        different streams (use one stream per set of images).
    batch_size : views (or pairs) per batch; None: :func:`default_batch_size` for ``device``.

    Yields
    ------
    ViewBatch
        Points in block order, and within a block augmentation by augmentation.
    """
    if mode not in VIEW_MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {VIEW_MODES}")
    k_aug = int(k_aug)
    if k_aug < 0 or (k_aug == 0 and mode != "single"):
        raise ValueError(f"k_aug must be >= 1 (or 0 for unaugmented images), got {k_aug}")
    if k_aug > 0 and not callable(policy):
        raise ValueError(
            "k_aug > 0 needs an augmentation policy(x, generator) -> views, e.g. the encoder's "
            "training policy (pair.policy) or memloc.augment.AugmentPolicy.simclr(); "
            "pass k_aug=0 to use the images unaugmented"
        )
    device = torch.device(device)
    if batch_size is None:
        batch_size = default_batch_size(device, 1 if mode == "single" else 2)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    generator = torch.Generator(device=device)
    n = images.shape[0]
    pending: list[tuple[Tensor, Tensor, Tensor, Tensor | None]] = []
    count = 0

    def flush(size: int) -> ViewBatch:
        nonlocal pending, count
        points = torch.cat([p[0] for p in pending])
        ks = torch.cat([p[1] for p in pending])
        first = torch.cat([p[2] for p in pending])
        second = torch.cat([p[3] for p in pending]) if mode != "single" else None
        rest = (points[size:], ks[size:], first[size:], None if second is None else second[size:])
        pending = [rest] if len(points) > size else []
        count = len(points) - size
        views = first[:size] if second is None else torch.cat([first[:size], second[:size]])
        return ViewBatch(points[:size], ks[:size], views)

    for block, start in enumerate(range(0, n, VIEW_BLOCK)):
        x = _as_float(images[start : start + VIEW_BLOCK].to(device))
        points = torch.arange(start, start + x.shape[0], device=device)
        generator.manual_seed(block_seed(seed, stream, block))
        for k in range(max(k_aug, 1)):
            if mode == "single":
                first, second = (policy(x, generator) if k_aug > 0 else x), None
            elif mode == "pairs":
                first = policy(x, generator)
                second = policy(x, generator)
            else:
                first, second = x, policy(x, generator)
            for view in (first, second):
                if view is not None and view.shape[0] != x.shape[0]:
                    raise ValueError(
                        f"the policy returned {view.shape[0]} views for {x.shape[0]} images; "
                        "it must return one view per image"
                    )
            pending.append((points, torch.full_like(points, k), first, second))
            count += x.shape[0]
            while count >= batch_size:
                yield flush(batch_size)
    if count:
        yield flush(count)


@contextmanager
def evaluation(*models: nn.Module) -> Iterator[None]:
    """Put ``models`` in eval mode under ``torch.inference_mode()``; restore every submodule's
    train/eval flag afterwards (also on an exception).

    Eval mode is what the metrics need: BatchNorm normalises with its running statistics, so an
    image's activations do not depend on the other images in its batch, and dropout is off.
    """
    saved = [(m, m.training) for model in models for m in model.modules()]
    try:
        for model in models:
            model.eval()
        with torch.inference_mode():
            yield
    finally:
        for module, training in saved:
            module.training = training
