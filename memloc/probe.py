"""Downstream evaluation of an encoder: linear probes and fine-tuning chosen layers.

- :func:`features`: frozen features, the global average of a layer's output (by default the
  encoder's representation), in eval mode without gradients.
- :func:`linear_probe`: standardised features -> scikit-learn's logistic regression ->
  test accuracy (T6, A7, A8, the regime page). :func:`probe_accuracy` (and
  :func:`probe_predictions`, the predicted labels) do the same on features computed once, so
  that many probes can share them; :func:`knn_accuracy` is a cosine kNN vote on them.
- :func:`finetune`: train the named layers and a new linear head, everything else frozen,
  and return the test accuracy (T5); :func:`finetune_layers` returns the trained copy and head.
- :func:`mean_std_over_seeds`: mean and standard deviation of a score over seeds.

Images are (N, C, H, W) tensors, uint8 (read as x / 255) or float in [0, 1]; labels are
integer class indices 0 ... K-1. Nothing here modifies the encoder passed in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from memloc.activations import LayerRecorder, check_images, model_device, unit_mean
from memloc.data import (
    DatasetUnavailable,
    canonical_name,
    default_other_dataset,
    load_dataset,
    match_channels,
)
from memloc.models.units import layer_module_path
from memloc.utils import make_generator

Policy = Callable[[Tensor, torch.Generator], Tensor]


def _as_float(x: Tensor) -> Tensor:
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def _labels(labels, n: int, name: str) -> Tensor:
    """``labels`` as a (n,) int64 CPU tensor; ValueError unless there is one per image."""
    labels = torch.as_tensor(np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels))
    if labels.shape != (n,):
        raise ValueError(f"{name} must hold one label per image: {n} images, {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must be integer class indices, got {labels.dtype}")
    if n and labels.min() < 0:
        raise ValueError(f"{name} must be class indices 0 ... K-1, got {labels.min().item()}")
    return labels.long()


def features(
    encoder: nn.Module, images: Tensor, layer: str | None = None, batch_size: int = 256
) -> Tensor:
    """Frozen features of ``images``: one vector per image, computed once.

    Parameters
    ----------
    encoder : a memloc encoder or any ``nn.Module`` (eval mode while it runs, then restored;
        no gradients).
    images : (N, C, H, W), uint8 or float in [0, 1].
    layer : a measurement point name or module path whose output is averaged over space (or
        tokens) per unit; None: the encoder's own output (its representation).
    batch_size : images per forward pass.

    Returns
    -------
    Tensor
        (N, D) float32 on the CPU.
    """
    images = check_images(images)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if layer is not None:
        layer_module_path(encoder, layer)  # ValueError listing the valid names
    device = model_device(encoder)
    modes = [(m, m.training) for m in encoder.modules()]
    encoder.eval()
    chunks = []
    try:
        with torch.no_grad(), ExitStack() as stack:
            recorder = None
            if layer is not None:
                recorder = stack.enter_context(LayerRecorder(encoder, [layer], "unit_mean"))
            for start in range(0, images.shape[0], int(batch_size)):
                x = _as_float(images[start : start + int(batch_size)].to(device))
                out = unit_mean(encoder(x)) if recorder is None else recorder(x)[layer]
                chunks.append(out.float().cpu())
    finally:
        for module, training in modes:
            module.training = training
    return torch.cat(chunks)


def probe_predictions(
    train_features,
    train_labels,
    test_features,
    seed: int = 0,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
) -> np.ndarray:
    """Predicted test labels of a logistic regression fitted on standardised features.

    Parameters
    ----------
    train_features, test_features : (N, D) arrays or tensors.
    train_labels : (N,) integer class labels.
    seed : the regression's ``random_state`` (lbfgs is deterministic; kept for solvers that
        are not).
    C : inverse L2 regularisation strength.
    max_iter : solver iterations.
    """
    train_x = np.asarray(train_features, dtype=np.float64)
    test_x = np.asarray(test_features, dtype=np.float64)
    train_y = _labels(train_labels, len(train_x), "train_labels").numpy()
    # Standardising puts every feature on one scale, so C means the same for every layer.
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    )
    model.fit(train_x, train_y)
    return model.predict(test_x)


def probe_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    seed: int = 0,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Test accuracy of a logistic regression on standardised features
    (:func:`probe_predictions` describes the arguments).

    Returns
    -------
    float
        The share of test points classified correctly.
    """
    test_y = _labels(test_labels, len(test_features), "test_labels").numpy()
    predicted = probe_predictions(
        train_features, train_labels, test_features, seed, C=C, max_iter=max_iter
    )
    return float((predicted == test_y).mean())


def knn_accuracy(train_features, train_labels, test_features, test_labels, k: int = 20) -> float:
    """Test accuracy of a k-nearest-neighbour vote (cosine similarity, majority of the ``k``
    nearest training points; scikit-learn's ``KNeighborsClassifier``), the standard second
    measure of SSL features beside the linear probe (Wu et al. 2018; DINO).

    Example
    -------
    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> knn_accuracy(x, [0, 0, 1, 1], x, [0, 0, 1, 1], k=1)
    1.0
    """
    train_x = np.asarray(train_features, dtype=np.float64)
    test_x = np.asarray(test_features, dtype=np.float64)
    train_y = _labels(train_labels, len(train_x), "train_labels").numpy()
    test_y = _labels(test_labels, len(test_x), "test_labels").numpy()
    if not 1 <= int(k) <= len(train_x):
        raise ValueError(f"k must lie in 1..{len(train_x)} (the training points), got {k}")
    knn = KNeighborsClassifier(n_neighbors=int(k), metric="cosine").fit(train_x, train_y)
    return float((knn.predict(test_x) == test_y).mean())


def linear_probe(
    encoder: nn.Module,
    train_images: Tensor,
    train_labels,
    test_images: Tensor,
    test_labels,
    seed: int = 0,
    *,
    layer: str | None = None,
    batch_size: int = 256,
    C: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Test accuracy of a linear probe on the encoder's frozen features.

    The features of both sets are computed once (:func:`features`, eval mode, unaugmented
    images), standardised and classified by a logistic regression (:func:`probe_accuracy`).
    The same arguments give the same accuracy.

    Parameters
    ----------
    encoder : the encoder (not modified).
    train_images, test_images : (N, C, H, W), uint8 or float in [0, 1].
    train_labels, test_labels : (N,) integer class labels.
    seed : the regression's ``random_state``.
    layer : the layer to probe (None: the representation).
    batch_size : images per forward pass.
    C, max_iter : passed to ``LogisticRegression``.

    Example
    -------
    >>> import torch
    >>> from memloc.models import create
    >>> _ = torch.manual_seed(0)
    >>> images, labels = torch.rand(40, 3, 32, 32), torch.arange(40) % 2
    >>> images[labels == 1] *= 0.2  # class 1: dark images
    >>> encoder = create("resnet9", width=0.125)
    >>> linear_probe(encoder, images[:20], labels[:20], images[20:], labels[20:])
    1.0
    """
    train_x = features(encoder, train_images, layer, batch_size)
    test_x = features(encoder, test_images, layer, batch_size)
    return probe_accuracy(
        train_x.numpy(), train_labels, test_x.numpy(), test_labels, seed, C=C, max_iter=max_iter
    )


def _trainable_parameters(model: nn.Module, paths: list[str]) -> list[nn.Parameter]:
    """The parameters of the modules at ``paths``, each once, in a fixed order."""
    params: dict[int, nn.Parameter] = {}
    for path in paths:
        for p in model.get_submodule(path).parameters():
            params.setdefault(id(p), p)
    return list(params.values())


def finetune_layers(
    encoder: nn.Module,
    layers: Iterable[str],
    images: Tensor,
    labels,
    *,
    epochs: int,
    lr: float,
    seed: int = 0,
    num_classes: int | None = None,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    policy: Policy | None = None,
) -> tuple[nn.Module, nn.Linear]:
    """Fine-tune ``layers`` of a copy of ``encoder`` and a new linear head on labelled images.

    Parameters
    ----------
    encoder : the encoder (not modified: a deep copy is trained).
    layers : measurement point names (``"6"``) or module paths (``"block6"``,
        ``"layer4.1"``); an empty list trains the head alone on frozen features.
    images : (N, C, H, W), uint8 or float in [0, 1].
    labels : (N,) class indices.
    epochs, lr : passes over the images and Adam's learning rate.
    seed : seeds the head's initialisation (the global RNG is restored afterwards), the
        shuffling and the views.
    num_classes : outputs of the head (default: the largest label + 1).
    batch_size : images per step; a last batch of a single image is skipped (BatchNorm cannot
        normalise one value per channel).
    weight_decay : Adam's weight decay.
    policy : ``policy(x, generator) -> views`` to augment the training images (None: none).

    Returns
    -------
    encoder, head
        The fine-tuned copy (training flags and ``requires_grad`` as in ``encoder``) and the
        head, ``head(encoder(x))`` being the logits.

    Notes
    -----
    BatchNorm: the frozen part of the encoder runs in eval mode, so its BatchNorm layers
    normalise with their running statistics and do not update them; the frozen parameters
    *and* buffers stay exactly as they were. The fine-tuned layers run in train mode: their
    BatchNorm normalises with batch statistics and updates its running statistics, as a layer
    being trained normally does.
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    images = check_images(images)
    labels = _labels(labels, images.shape[0], "labels")
    if isinstance(epochs, bool) or int(epochs) < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    model = copy.deepcopy(encoder)
    paths = [layer_module_path(model, name) for name in layers]
    for name, path in zip(layers, paths, strict=True):
        if not list(model.get_submodule(path).parameters()):
            raise ValueError(f"layer {name!r} (module {path!r}) has no parameters to fine-tune")
    device = model_device(model)
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)

    modes = [(m, m.training) for m in model.modules()]
    requires_grad = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    with torch.no_grad():
        feature_dim = unit_mean(model(_as_float(images[:1].to(device)))).shape[1]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        head = nn.Linear(feature_dim, num_classes).to(device)

    trainable = _trainable_parameters(model, paths)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    for path in paths:
        model.get_submodule(path).train()
    head.train()

    optimizer = torch.optim.Adam(
        trainable + list(head.parameters()), lr=lr, weight_decay=weight_decay
    )
    shuffle = torch.Generator().manual_seed(int(seed))
    augment = make_generator(seed, device) if policy is not None else None
    for _ in range(int(epochs)):
        order = torch.randperm(images.shape[0], generator=shuffle)
        for start in range(0, len(order), int(batch_size)):
            batch = order[start : start + int(batch_size)]
            if len(batch) < 2:
                continue
            x = _as_float(images[batch].to(device))
            if policy is not None:
                x = policy(x, augment)
            loss = F.cross_entropy(head(unit_mean(model(x))), labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    for p, flag in requires_grad:
        p.requires_grad_(flag)
    for m, training in modes:
        m.training = training
    head.eval()
    return model, head


def classifier_accuracy(
    encoder: nn.Module, head: nn.Module, images: Tensor, labels, batch_size: int = 256
) -> float:
    """Share of ``images`` whose ``head(encoder(x))`` argmax is the label (eval mode)."""
    x = features(encoder, images, batch_size=batch_size)
    labels = _labels(labels, x.shape[0], "labels")
    device = model_device(head)
    modes = [(m, m.training) for m in head.modules()]
    head.eval()
    try:
        with torch.no_grad():
            predicted = head(x.to(device)).argmax(dim=1).cpu()
    finally:
        for module, training in modes:
            module.training = training
    return float((predicted == labels).float().mean())


def finetune(
    encoder: nn.Module,
    layers: Iterable[str],
    train_images: Tensor,
    train_labels,
    test_images: Tensor,
    test_labels,
    epochs: int,
    lr: float,
    seed: int = 0,
    *,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    policy: Policy | None = None,
) -> float:
    """Test accuracy after fine-tuning ``layers`` and a new linear head (T5).

    Everything but the named layers and the head is frozen; :func:`finetune_layers` describes
    the arguments and the BatchNorm handling (frozen layers in eval mode with their running
    statistics, fine-tuned layers in train mode). ``encoder`` is not modified; the same
    arguments give the same accuracy on the CPU.

    Raises
    ------
    ValueError
        For a layer name that is neither a measurement point nor a module path; the message
        lists the valid names.
    """
    train_labels = _labels(train_labels, check_images(train_images).shape[0], "train_labels")
    test_labels = _labels(test_labels, check_images(test_images).shape[0], "test_labels")
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    model, head = finetune_layers(
        encoder,
        layers,
        train_images,
        train_labels,
        epochs=epochs,
        lr=lr,
        seed=seed,
        num_classes=num_classes,
        batch_size=batch_size,
        weight_decay=weight_decay,
        policy=policy,
    )
    return classifier_accuracy(model, head, test_images, test_labels)


def mean_std_over_seeds(fn: Callable[[int], float], seeds: Sequence[int]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of ``fn(seed)`` over ``seeds``.

    The standard deviation is NaN for a single seed. Example:
    ``mean_std_over_seeds(lambda s: finetune(enc, ["6"], ..., seed=s), [0, 1, 2])``.
    """
    values = np.array([float(fn(seed)) for seed in seeds])
    if len(values) == 0:
        raise ValueError("need at least one seed")
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return float(values.mean()), std


# ----------------------------------------------------------------------------- probe sets


@dataclass
class ProbeSet:
    """Labelled images for one linear probe: train on ``train``, report accuracy on ``test``.

    ``role`` is ``"pretraining"`` (the encoder's own data set) or ``"other"``; ``source`` says
    where the images came from.
    """

    name: str
    role: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    source: str = ""

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": int(len(self.train_labels)), "test": int(len(self.test_labels))}


def subsample(n_available: int, n: int | None, seed: int) -> np.ndarray:
    """Indices of ``min(n, n_available)`` items drawn without replacement by a seeded
    permutation (all of them, in order, when ``n`` is None or not smaller). A seeded draw, not
    the first n, so that data sets stored in class order still give every class."""
    if n is None or int(n) >= n_available:
        return np.arange(n_available)
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n_available)[: int(n)])


MIN_PROBE_TRAIN = 100  # fewer points outside the split: the probe also fits on S_S


def pretraining_probe_set(
    pair,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    min_train: int = MIN_PROBE_TRAIN,
) -> ProbeSet:
    """The pre-training data set's probe: train on the split's downstream points (neither f
    nor g trained on them), test on the test split.

    A profile that keeps no downstream points (``paper``: the whole CIFAR-10 training set is
    S_S, S_C and S_I) uses the training points in no part of the split, and when there are
    fewer than ``min_train`` of those (a small image folder under ``auto``) the shared set S_S,
    which both encoders trained on, with them (``source`` says which).
    """
    splits, dataset = pair.splits, pair.dataset
    if len(splits.downstream):
        pool, source = np.asarray(splits.downstream), "the split's downstream points"
    else:
        used = np.zeros(splits.n_total, dtype=bool)
        for part in ("shared", "candidate", "independent", "heldout"):
            used[getattr(splits, part)] = True
        pool = np.flatnonzero(~used)
        source = "training points outside S_S, S_C, S_I and H"
        if len(pool) < min_train:  # a probe on a handful of points measures nothing
            pool = np.concatenate([np.asarray(splits.shared), pool])
            source = "S_S (both encoders trained on it)" + (
                f" and {len(pool) - len(splits.shared)} points outside the split"
                if len(pool) > len(splits.shared)
                else ""
            )
    train = pool[subsample(len(pool), n_train, seed)]
    test = subsample(len(pair.test.labels), n_test, seed)
    return ProbeSet(
        name=canonical_name(pair.profile.dataset),
        role="pretraining",
        train_images=dataset.images[torch.as_tensor(train)],
        train_labels=dataset.labels[torch.as_tensor(train)],
        test_images=pair.test.images[torch.as_tensor(test)],
        test_labels=pair.test.labels[torch.as_tensor(test)],
        source=f"train: {source}; test: the test split",
    )


def other_probe_set(
    name: str,
    *,
    image_size: int,
    channels: int,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    resize: str = "resize",
    download: bool = False,
) -> ProbeSet:
    """Another data set's probe, brought to the encoder's input: ``image_size`` (rescaled by
    default, as the paper rescales STL10 to 32x32; ``resize="pad"`` pads instead) and
    ``channels``.

    Raises
    ------
    DatasetUnavailable
        When the data set is not found (nothing is downloaded unless ``download``).
    """
    kw = dict(image_size=image_size, resize=resize, download=download)
    train = load_dataset(name, "train", **kw)
    test = load_dataset(name, "test", **kw)
    tr = torch.as_tensor(subsample(len(train), n_train, seed))
    te = torch.as_tensor(subsample(len(test), n_test, seed))
    return ProbeSet(
        name=canonical_name(name),
        role="other",
        train_images=match_channels(train.images[tr], channels),
        train_labels=train.labels[tr],
        test_images=match_channels(test.images[te], channels),
        test_labels=test.labels[te],
        source=f"{train.source or name}, {resize} to {image_size}x{image_size}",
    )


def probe_sets(
    pair,
    other: str | Sequence[str] | None = None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int | None = None,
    other_resize: str = "resize",
) -> tuple[dict[str, ProbeSet], dict[str, str]]:
    """The probe sets of T6 and A8: the pre-training data set and ``other``, one data set or a
    list (None: :func:`default_other_dataset`; ``""`` or ``"none"``: no second data set).

    Returns
    -------
    sets, skipped
        ``{name: ProbeSet}`` (pre-training first), and ``{name: reason}`` for a data set that is
        not available here (it is left out instead of failing the run).
    """
    seed = int(pair.profile.seed if seed is None else seed)
    base = pretraining_probe_set(pair, n_train=n_train, n_test=n_test, seed=seed)
    sets, skipped = {base.name: base}, {}
    if other is None:
        other = default_other_dataset(pair.profile.dataset)
    others = [other] if isinstance(other, str) else list(other)
    for name in others:
        if not name or name.lower() == "none":
            continue
        try:
            extra = other_probe_set(
                name,
                image_size=pair.profile.image_size,
                channels=pair.dataset.channels,
                n_train=n_train,
                n_test=n_test,
                seed=seed,
                resize=other_resize,
            )
        except DatasetUnavailable as err:
            skipped[name] = str(err).splitlines()[0]
        else:
            if extra.name == base.name:
                raise ValueError(f"the other data set is the pre-training one ({base.name})")
            sets[extra.name] = extra
    return sets, skipped


# ------------------------------------------------------------------------------ T6: pruning
