"""Architectures of other libraries by name: ``create("torchvision:resnet18")``,
``create("timm:vit_tiny_patch16_224", img_size=32)``.

A foreign architecture is built untrained (``weights=None``: nothing is ever downloaded) and
wrapped in a :class:`ForeignEncoder`. The wrapper owns the model's own children under their
own names, so parameter names and module paths are the library's: a state dict saved from
``torchvision.models.resnet18()`` loads as is (:func:`memloc.artifacts.load_checkpoint`), and
layers are addressed by module path (``"layer3.1"``, ``"features.4"``).

The classifier becomes an Identity, so the encoder returns the representation the paper
measures (Wang et al., 2024, §3: the encoder's output, not a head): ``fc`` (ResNets and their
kin), ``heads`` (ViT), or the last Linear of ``classifier`` (VGG, MobileNet, EfficientNet,
ConvNeXt, DenseNet).

Default measurement (and unit) points: the *blocks*. Starting at the root, every
``nn.Sequential`` or ``nn.ModuleList`` container reached without passing through another one
contributes its direct children that hold parameters; the classifier is skipped. For a
torchvision ResNet18 these are the eight residual blocks ``layer1.0`` ... ``layer4.1`` (each
output after its ReLU), for a ViT the encoder layers ``encoder.layers.encoder_layer_<i>``, for
MobileNet/EfficientNet the stages ``features.<i>``, for a timm ViT ``blocks.<i>``. Pooling and
the classifier, which only repeat the last block's units, are not measured unless named.
UnitMem's default points are the same blocks, except a transformer block's: its MLP's hidden
units after the activation (:func:`unit_points_of`), as for memloc's own ViT.

timm (the optional extra ``memloc[timm]``) builds its models with ``num_classes=0`` (no head:
a checkpoint's ``head.*`` keys are ignored) and ``in_chans`` set to the images' channels; its
ViTs take ``img_size`` (e.g. 32) among the keyword arguments.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from memloc.models.base import Encoder, MeasurementPoint, check_in_channels, check_width

LIBRARIES = ("torchvision", "timm")
CLASSIFIERS = ("fc", "heads", "classifier", "head")
# torchvision's ImageNet networks downsample 32-fold; smaller inputs vanish before the end.
MIN_INPUT_SIZE = 32


def is_foreign(name: str) -> bool:
    """Whether ``name`` names another library's architecture (``"<library>:<model>"``)."""
    return ":" in name


def create_foreign(name: str, *, in_channels: int = 3, width: float = 1.0, **kwargs) -> Encoder:
    """The untrained ``<library>:<model>`` architecture as a :class:`ForeignEncoder`.

    ``in_channels`` other than the model's replaces its first convolution by one with that
    many input channels (grayscale data); ``width`` must be 1 (these networks have no width
    multiplier); other ``kwargs`` go to the library's constructor.
    """
    library, _, model_name = name.partition(":")
    if library not in LIBRARIES:
        raise ValueError(
            f"unknown architecture library {library!r} in {name!r}; use one of "
            f"{', '.join(f'{lib}:<name>' for lib in LIBRARIES)} (e.g. torchvision:resnet18)"
        )
    in_channels = check_in_channels(in_channels)
    if check_width(width) != 1.0:
        raise ValueError(
            f"{name} has no width multiplier (width={width!r}); use width=1 or a memloc "
            "architecture (resnet9, resnet18, ...) to scale channels"
        )
    if library == "timm":
        model = _timm_model(model_name, in_channels, kwargs)
        return ForeignEncoder(name, model, in_channels=in_channels, model_kwargs=kwargs)
    from torchvision.models import get_model, list_models

    if model_name not in list_models():
        raise ValueError(
            f"torchvision has no model {model_name!r}; e.g. resnet18, resnet50, vgg11, "
            "mobilenet_v3_small, efficientnet_b0, convnext_tiny, vit_b_16 "
            "(torchvision.models.list_models() lists them all)"
        )
    try:
        model = get_model(model_name, weights=None, **kwargs)
    except TypeError as err:  # an argument the constructor does not take
        raise ValueError(f"{name} does not accept the arguments {kwargs}: {err}") from None
    return ForeignEncoder(name, model, in_channels=in_channels, model_kwargs=kwargs)


def _timm_model(model_name: str, in_channels: int, kwargs: dict) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ValueError(
            f"timm:{model_name} needs timm, an optional dependency: pip install -e '.[timm]'"
        ) from None
    if not timm.is_model(model_name):
        raise ValueError(
            f"timm has no model {model_name!r}; e.g. resnet18, vit_tiny_patch16_224, "
            "convnext_atto (timm.list_models() lists them all)"
        )
    try:  # pretrained=False: nothing is downloaded
        return timm.create_model(
            model_name, pretrained=False, num_classes=0, in_chans=in_channels, **kwargs
        )
    except TypeError as err:
        raise ValueError(
            f"timm:{model_name} does not accept the arguments {kwargs}: {err}"
        ) from None


def _input_side(model: nn.Module) -> int:
    """The side of the images the model is built for (torchvision ViT: ``image_size``, timm
    ViT: ``patch_embed.img_size``); convolutional networks take any side from 32 on."""
    if isinstance(getattr(model, "image_size", None), int):
        return model.image_size
    img_size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if img_size is not None:
        return int(img_size[0] if isinstance(img_size, (tuple, list)) else img_size)
    return MIN_INPUT_SIZE


def _drop_classifier(model: nn.Module) -> None:
    for attr in CLASSIFIERS:
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear) or (attr == "heads" and isinstance(head, nn.Module)):
            setattr(model, attr, nn.Identity())
            return
        if isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
            head[-1] = nn.Identity()  # keep the pooling/flatten/norm in front of it
            return


def _set_first_conv(model: nn.Module, in_channels: int) -> None:
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels != in_channels:
                new = nn.Conv2d(
                    in_channels,
                    module.out_channels,
                    module.kernel_size,
                    module.stride,
                    module.padding,
                    module.dilation,
                    module.groups,
                    module.bias is not None,
                )
                parent, _, attr = path.rpartition(".")
                setattr(model.get_submodule(parent) if parent else model, attr, new)
            return
    raise ValueError("found no Conv2d to take the images' channels")


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def default_points(model: nn.Module) -> list[MeasurementPoint]:
    """The block points of ``model`` (see the module docstring), in registration order."""
    points = []

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if not prefix and name in CLASSIFIERS:
                continue
            if isinstance(child, (nn.Sequential, nn.ModuleList)):
                points.extend(
                    MeasurementPoint(f"{path}.{n}", f"{path}.{n}", "block")
                    for n, c in child.named_children()
                    if _has_params(c)
                )
            elif _has_params(child):
                visit(child, f"{path}.")

    visit(model, "")
    return points


ACTIVATIONS = (nn.GELU, nn.ReLU, nn.SiLU)


def unit_points_of(model: nn.Module, points: list[MeasurementPoint]) -> list[MeasurementPoint]:
    """UnitMem's default points: a transformer block's MLP hidden units after their activation
    (``blocks.3.mlp.act`` in timm, ``encoder.layers.encoder_layer_3.mlp.1`` in torchvision),
    as memloc's own ViT (its ``unit_points``); any other block as it is. GELU outputs dip
    below zero, so at random initialisation about half of these units have a negative mean
    activation and an undefined UnitMem, as many as on the blocks' outputs."""
    out = []
    for p in points:
        block = model.get_submodule(p.module)
        mlp = getattr(block, "mlp", None)
        modules = mlp.named_modules() if isinstance(mlp, nn.Module) else ()
        act = next((n for n, m in modules if isinstance(m, ACTIVATIONS)), None)
        if act is None:
            out.append(p)
        else:
            out.append(MeasurementPoint(f"{p.name}.mlp.{act}", f"{p.module}.mlp.{act}", "mlp"))
    return out


class ForeignEncoder(Encoder):
    """Another library's network as a memloc :class:`Encoder` (images in [0, 1] -> features).

    The wrapped model is not a submodule: its children are registered on the wrapper under
    their own names (and its root parameters, e.g. a ViT's class token), so ``state_dict()``
    keys and module paths are exactly the library's.
    """

    def __init__(self, arch: str, model: nn.Module, *, in_channels: int, model_kwargs: dict):
        super().__init__()
        self.arch = arch
        self.in_channels = in_channels
        self.min_input_size = MIN_INPUT_SIZE
        self._model_kwargs = dict(model_kwargs)
        _drop_classifier(model)
        _set_first_conv(model, in_channels)
        object.__setattr__(self, "_model", model)  # not registered: its children are ours
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        if any(True for _ in model.named_buffers(recurse=False)):
            raise ValueError(f"{arch} keeps buffers at its root, which memloc cannot wrap")
        self._points = default_points(model)
        self._unit_points = unit_points_of(model, self._points)
        self.feature_dim = self._output_size(_input_side(model))

    @torch.no_grad()
    def _output_size(self, side: int) -> int:
        # The frameworks size their heads from feature_dim: one image tells it (in eval mode,
        # where BatchNorm accepts a batch of one; a ViT needs its own image_size).
        mode = self.training
        self.eval()
        try:
            return int(self._model(torch.zeros(1, self.in_channels, side, side)).shape[1])
        finally:
            self.train(mode)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self._model(x)

    def train(self, mode: bool = True) -> ForeignEncoder:
        super().train(mode)
        self._model.training = mode  # the root is not a child, so set its flag too
        return self

    def measurement_points(self) -> list[MeasurementPoint]:
        return list(self._points)

    def unit_points(self) -> list[MeasurementPoint]:
        """UnitMem's and ClassMem's default points (:func:`unit_points_of`)."""
        return list(self._unit_points)

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "width": 1.0, **self._model_kwargs}
