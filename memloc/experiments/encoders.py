"""The encoders a result notebook trains beyond the book's shared pair, one function per
notebook.

The notebook and the book's driver ask for the same list: ``make book`` trains the encoders
first, with progress bars in the terminal, and the notebook then finds them in the cache.
Each function takes the notebook's parameters; None means the profile's (or the notebook's
documented) default. ``profile_overrides`` are the run's profile keys (the book's ``--param``
profile keys, :func:`memloc.workflow.resolve_run`; the only way a notebook changes a profile
key): applied to every encoder after the experiment's own sizes, as the notebook applies
them.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from memloc.artifacts import EncoderPair, encoder_pair, f_encoder
from memloc.data import (
    canonical_name,
    default_donor_dataset,
    default_other_dataset,
    load_dataset,
)
from memloc.privacy import PrivacyConfig
from memloc.profiles import (
    Profile,
    base_profile,
    dataset_profile,
    donor_profile,
    fit_to_data,
    load_profile,
    merge_overrides,
)

T4_FRAMEWORKS = ("simclr", "simsiam", "dino")  # on the ResNet of the profile's t4 sizes
T4_VIT_FRAMEWORKS = ("simclr", "mae")  # on the ViT of the profile's t2 sizes
# The paper's T4: ResNet50 (the paper profile's t4 table) under SimCLR and DINO, ViT-Base
# under SimCLR, DINO and MAE.
T4_PAPER_FRAMEWORKS = ("simclr", "dino")
T4_PAPER_VIT_FRAMEWORKS = ("simclr", "dino", "mae")
A5_ARCHS = ("resnet18", "resnet34", "resnet50")
F3A_PAPER_DATASETS = ("svhn", "cifar10", "stl10")
F3C_EPSILONS = (1.0, 4.0, 16.0, 64.0)
F3C_QUICK_EPSILONS = (1.0, 16.0)


@dataclass(frozen=True)
class EncoderRequest:
    """One encoder (or f/g pair) a notebook needs, as the cache names it."""

    label: str
    profile: Profile
    framework: str
    privacy: PrivacyConfig | None = None
    pair: bool = True  # f and g; False: f alone (UnitMem needs no g)

    @property
    def epsilon(self) -> float:
        """The privacy target; infinity for an encoder trained without DP-SGD."""
        return self.privacy.epsilon if self.privacy is not None else math.inf

    def get(self, *, progress: bool = False) -> EncoderPair:
        """Load it from the cache, training it first if it is not there."""
        if self.pair:
            return encoder_pair(self.profile, self.framework, progress=progress)
        return f_encoder(self.profile, self.framework, privacy=self.privacy, progress=progress)


def t2_encoders(
    profile,
    *,
    framework="simclr",
    arch=None,
    profile_overrides=None,
) -> list[EncoderRequest]:
    """T2: one ViT pair at the profile's t2 sizes (``arch`` None: the t2 table's ViT)."""
    p = load_profile(profile, experiment="t2", **merge_overrides(profile_overrides, arch=arch))
    if not p.arch.startswith("vit"):
        raise ValueError(f"T2 needs a ViT; arch={p.arch!r}. Use vit_tiny, vit_small or vit_base")
    return [EncoderRequest(f"{p.arch} {framework}", p, framework)]


def t4_encoders(
    profile,
    *,
    frameworks: Sequence[str] | None = None,
    vit_frameworks: Sequence[str] | None = None,
    profile_overrides=None,
) -> list[EncoderRequest]:
    """T4: the ResNet under each of ``frameworks`` (t4 sizes), the ViT under each of
    ``vit_frameworks`` (t2 sizes). None: the paper's lists at ``paper``, else SimCLR, SimSiam
    and DINO on the ResNet and SimCLR and MAE on the ViT."""
    paper = base_profile(load_profile(profile).name) == "paper"
    if frameworks is None:
        frameworks = T4_PAPER_FRAMEWORKS if paper else T4_FRAMEWORKS
    if vit_frameworks is None:
        vit_frameworks = T4_PAPER_VIT_FRAMEWORKS if paper else T4_VIT_FRAMEWORKS
    resnet = dict(profile_overrides or {})
    # The run's arch is the ResNet's: the ViT side keeps the t2 table's ViT.
    vit_sizes = {k: v for k, v in resnet.items() if k != "arch"}
    settings = [(load_profile(profile, experiment="t4", **resnet), fw) for fw in frameworks]
    settings += [(load_profile(profile, experiment="t2", **vit_sizes), fw) for fw in vit_frameworks]
    return [EncoderRequest(f"{p.arch} {fw}", p, fw) for p, fw in settings]


def a5_encoders(
    profile,
    *,
    archs: Sequence[str] | None = None,
    framework="simclr",
    profile_overrides=None,
) -> list[EncoderRequest]:
    """A5: one pair per ResNet at the profile's a5 sizes (the run's ``arch`` is not used:
    the ResNets are ``archs``)."""
    requests = []
    keys = {k: v for k, v in (profile_overrides or {}).items() if k != "arch"}
    for name in A5_ARCHS if archs is None else archs:
        p = load_profile(profile, experiment="a5", arch=name, **keys)
        requests.append(EncoderRequest(name, p, framework))
    return requests


A7_DONOR_EPOCHS = 30  # the a7 notebook's donor_epochs


def a7_encoders(
    profile,
    *,
    framework="simclr",
    donor_dataset=None,
    donor_epochs=A7_DONOR_EPOCHS,
    profile_overrides=None,
) -> list[EncoderRequest]:
    """A7: the donor, an f of the profile's architecture trained with ``framework`` on another
    data set (:func:`memloc.profiles.donor_profile`; None:
    :func:`memloc.data.default_donor_dataset`, one with f's number of channels), the encoder
    whose layers are swapped into the shared f."""
    p = load_profile(profile, **(profile_overrides or {}))
    data = load_dataset(p.dataset, "train", image_size=p.image_size, resize=p.resize,
                        download=False)  # fmt: skip
    if p.split_shares:  # the notebook's pair.profile: sizes fitted to the data
        p = fit_to_data(p, len(data))
    # The donor's layers must fit f's: its data set has f's number of channels.
    name = donor_dataset or default_donor_dataset(p.dataset, data.channels)
    donor = donor_profile(p, name, epochs=donor_epochs)
    return [EncoderRequest(f"donor on {canonical_name(name)}", donor, framework, pair=False)]


def f3a_encoders(
    profile,
    *,
    datasets: Sequence[str] | None = None,
    framework="simclr",
    profile_overrides=None,
) -> list[EncoderRequest]:
    """F3a: f alone on each data set, with the recipe and sizes of the profile's f3a table.

    ``datasets`` None: SVHN, CIFAR-10 and STL10 at ``paper``; elsewhere the profile's data set
    and the other one available offline.
    """
    base = load_profile(profile, experiment="f3a", **(profile_overrides or {}))
    if datasets is None:
        if base_profile(base.name) == "paper":
            datasets = F3A_PAPER_DATASETS
        else:
            datasets = (base.dataset, default_other_dataset(base.dataset))
    return [
        EncoderRequest(name, dataset_profile(base, name), framework, pair=False)
        for name in datasets
    ]


def f3c_encoders(
    profile,
    *,
    epsilons: Sequence[float] | None = None,
    framework="simsiam",
    delta=1e-5,
    max_grad_norm=1.0,
    profile_overrides=None,
) -> list[EncoderRequest]:
    """F3c: f trained with DP-SGD at each ε (ascending), then the same recipe without DP-SGD
    (ε = ∞) as the reference."""
    p = load_profile(profile, experiment="f3c", **(profile_overrides or {}))
    if epsilons is None:
        epsilons = F3C_QUICK_EPSILONS if base_profile(p.name) == "quick" else F3C_EPSILONS
    requests = [
        EncoderRequest(
            f"ε={eps:g}", p, framework, privacy=PrivacyConfig(eps, delta, max_grad_norm), pair=False
        )
        for eps in sorted(float(e) for e in epsilons)
    ]
    return requests + [EncoderRequest("no DP", p, framework, pair=False)]


def book_encoders(profile, *, profile_overrides=None) -> list[EncoderRequest]:
    """Every encoder the book trains at ``profile`` (with the run's ``profile_overrides``),
    each once: the shared SimCLR and supervised pairs, then each notebook's own (with the
    notebook's defaults). The regime page measures them all."""
    p = load_profile(profile, **(profile_overrides or {}))
    requests = [EncoderRequest("resnet simclr (shared)", p, "simclr")]
    requests.append(EncoderRequest("resnet supervised (shared)", p, "supervised"))
    for name, function in NOTEBOOK_ENCODERS.items():
        if function is book_encoders:
            continue
        prefix = name.split("_", 1)[0].upper()
        own = function(profile, profile_overrides=profile_overrides)
        requests += [dataclasses.replace(r, label=f"{prefix} {r.label}") for r in own]
    unique = {}
    for r in requests:
        unique.setdefault((r.profile, r.framework, r.privacy, r.pair), r)
    return list(unique.values())


# Notebook name -> its encoders. Notebooks not listed use only the book's shared pair.
NOTEBOOK_ENCODERS: dict[str, Callable[..., list[EncoderRequest]]] = {
    "t2_vit_sublayers": t2_encoders,
    "t4_frameworks": t4_encoders,
    "a5_bigger_resnets": a5_encoders,
    "a7_swap_layers": a7_encoders,
    "f3a_unitmem_datasets": f3a_encoders,
    "f3c_unitmem_privacy": f3c_encoders,
    "r0_regime": book_encoders,
}


def notebook_encoders(name: str, parameters: dict) -> list[EncoderRequest]:
    """The encoders notebook ``name`` will ask for when run with ``parameters`` (its parameter
    cell's values; ``profile`` among them). Parameters the notebook's function does not take
    are ignored; a notebook without one gets an empty list."""
    function = NOTEBOOK_ENCODERS.get(name)
    if function is None:
        return []
    accepted = set(inspect.signature(function).parameters) - {"profile"}
    kwargs = {k: v for k, v in parameters.items() if k in accepted}
    return function(parameters.get("profile", "cpu"), **kwargs)
