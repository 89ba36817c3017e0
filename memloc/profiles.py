"""Run profiles (``quick``, ``cpu``, ``paper``) read from ``profiles.toml`` beside this file.

A profile fixes everything a result depends on: data, split sizes, encoder, training recipe and
metric sizes. ``load_profile("cpu", epochs=50)`` overrides single keys; an unknown profile or
key is an error that lists the valid ones.

Split sizes can follow the data instead of being fixed: ``split_shares`` (S_S, S_C, S_I, H,
downstream as shares of the training images) makes :func:`fit_to_data` derive the ``n_*``
sizes from the number of images there are. The profile ``auto`` is the ``cpu`` recipe with
shares :data:`AUTO_SHARES` and images resized (not padded) to its size: a folder of your own
images needs no arithmetic (``memloc train --profile auto --set dataset=imagefolder:DIR``).

Every profile has a toy twin, ``<name>-toy`` (:func:`toy_table`): the same data set,
architectures, experiments and empty parts, with every size and epoch count small. ``make book
PROFILE=paper-toy`` runs the paper's whole workflow in minutes on a CPU: where its bugs show
up before hours on a GPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from memloc.data import load_dataset

PROFILE_FILE = Path(__file__).with_name("profiles.toml")
SIZE_KEYS = ("n_shared", "n_candidate", "n_independent", "n_heldout", "n_downstream")
# The profile "auto": the cpu profile's recipe with these shares of the training images for
# S_S, S_C, S_I, H and downstream (S_C and S_I as large as H, as in the cpu profile).
AUTO = "auto"
AUTO_BASE = "cpu"
AUTO_SHARES = (0.4, 0.2, 0.2, 0.2, 0.0)
# The fewest images a part may get from shares: f and g must see enough candidates and
# independents for the contrast and Top-k (S_S, S_C, S_I), and H needs two to compare.
MIN_PART = {"n_shared": 10, "n_candidate": 10, "n_independent": 10, "n_heldout": 2}
# A profile's toy twin: "<name>-toy". A part the profile leaves empty stays empty, so that the
# toy run takes the same paths through the code (F3c's held-out images in place of S_I, ...).
TOY = "-toy"
TOY_SIZES = {
    "n_shared": 48,
    "n_candidate": 16,
    "n_independent": 16,
    "n_heldout": 16,
    "n_downstream": 32,
}
TOY_RECIPE = {
    "epochs": 2,
    "supervised_epochs": 2,
    "snapshot_epochs": [1, 2],
    "batch_size": 16,
    "n_points": 16,
    "k_aug": 2,
    "top_k": 4,
}
TOY_MAX_WIDTH = 0.125
# The training settings a framework's recipe (the profile key ``recipes``) may change.
RECIPE_TRAIN_KEYS = ("optimizer", "lr", "weight_decay", "lr_schedule")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    dataset: str
    image_size: int
    resize: str
    n_shared: int
    n_candidate: int
    n_independent: int
    n_heldout: int
    n_downstream: int
    split_seed: int
    arch: str
    width: float
    epochs: int
    supervised_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    temperature: float
    crop_scale: tuple[float, float]
    seed: int
    snapshot_epochs: tuple[int, ...]
    n_points: int
    k_aug: int
    top_k: int
    # Keys that most profiles leave at their default.
    patch_size: int = 4  # ViT patch side
    norm: str = "batch"  # a ResNet's normalisation ("group" for DP-SGD); a ViT ignores it
    # The SSL views' colour jitter: probability, and brightness/contrast/saturation/hue
    # strengths (the paper's SimCLR recipe; 1-channel images use brightness and contrast).
    jitter_p: float = 0.8
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)
    # The SSL views' Gaussian blur (SimCLR's recipe: p 0.5, sigma 0.1-2, kernel a tenth of the
    # image side); 0, the default, blurs nothing.
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int = 3
    # The learning rate over the run: "constant" (the paper) or "cosine" decay to 0.
    lr_schedule: str = "constant"
    # Shares of the training images for S_S, S_C, S_I, H, downstream; () keeps the n_* sizes.
    split_shares: tuple[float, ...] = ()
    # A framework's own recipe, where it differs from the profile's: {framework: {key: value}}
    # with the training's keys (RECIPE_TRAIN_KEYS) or the framework's arguments (DINO's
    # out_dim, ...); e.g. {"simsiam": {"optimizer": "sgd", "lr": 0.03}}. Empty: one recipe.
    recipes: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("split_shares", "recipes"):
            if not out[key]:
                del out[key]  # so that the dicts of the profiles without them do not change
        if out["lr_schedule"] == "constant":
            del out["lr_schedule"]
        if out["blur_p"] == 0:
            for key in ("blur_p", "blur_sigma", "blur_kernel"):
                del out[key]
        return out

    def __hash__(self) -> int:
        # Profiles key sets and dicts (the book's encoder requests); recipes is a dict.
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def recipe(self, framework: str) -> tuple[dict, dict]:
        """``(training overrides, framework arguments)`` of ``framework`` under this profile.

        >>> load_profile("quick", recipes={"dino": {"lr": 3e-4, "out_dim": 256}}).recipe("dino")
        ({'lr': 0.0003}, {'out_dim': 256})
        """
        recipe = self.recipes.get(framework, {})
        train = {k: v for k, v in recipe.items() if k in RECIPE_TRAIN_KEYS}
        return train, {k: v for k, v in recipe.items() if k not in RECIPE_TRAIN_KEYS}

    def replace(self, **overrides) -> Profile:
        """A copy with some keys changed (same checks and None rule as :func:`load_profile`)."""
        return _build(self.name, {**self.to_dict(), **_given(overrides)})


def _given(overrides: dict) -> dict:
    # None keeps the profile's value, so a notebook can pass its parameters as they are; a
    # misspelt key is still an error, None or not.
    known = set(_fields()) - {"name"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise KeyError(f"unknown profile key(s) {unknown}; valid keys: {sorted(known)}")
    return {key: value for key, value in overrides.items() if value is not None}


def _fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Profile)]


def _build(name: str, values: dict) -> Profile:
    known = set(_fields())
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"unknown profile key(s) {unknown}; valid keys: {sorted(known - {'name'})}")
    values = {**values, "name": name}
    required = {
        f.name
        for f in dataclasses.fields(Profile)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(values))
    if missing:
        raise KeyError(f"profile {name!r} lacks key(s) {missing} in {PROFILE_FILE}")
    types = {f.name: f.type for f in dataclasses.fields(Profile)}
    out = {key: _convert(key, value, types[key]) for key, value in values.items()}
    if len(out["crop_scale"]) != 2 or not 0 < out["crop_scale"][0] <= out["crop_scale"][1] <= 1:
        raise ValueError(
            f"profile key crop_scale must be a pair [low, high] with 0 < low <= high <= 1, "
            f"got {list(out['crop_scale'])}"
        )
    if out.get("split_shares"):
        _check_shares(out["split_shares"])
    if any(key in out for key in ("blur_p", "blur_sigma", "blur_kernel")):
        from memloc.augment import AugmentPolicy

        blur = {k: out[k] for k in ("blur_p", "blur_sigma", "blur_kernel") if k in out}
        try:
            AugmentPolicy(**blur)
        except ValueError as err:
            raise ValueError(f"profile {name!r}: {err}") from None
    if out.get("recipes"):
        _check_recipes(out["recipes"])
    from memloc.train import LR_SCHEDULES

    schedules = [out.get("lr_schedule", "constant")]
    schedules += [
        recipe.get("lr_schedule", "constant") for recipe in out.get("recipes", {}).values()
    ]
    if any(schedule not in LR_SCHEDULES for schedule in schedules):
        raise ValueError(f"profile key lr_schedule must be one of {list(LR_SCHEDULES)}")
    if out["snapshot_epochs"] and max(out["snapshot_epochs"]) > out["epochs"]:
        out["snapshot_epochs"] = tuple(e for e in out["snapshot_epochs"] if e <= out["epochs"])
    return Profile(**out)


def _convert(key: str, value, kind: str):
    """``value`` as the type of profile key ``key``; ValueError naming the key otherwise."""
    expected = {"int": "an integer", "float": "a number", "str": "a string"}.get(kind, "a list")
    bad = ValueError(
        f"profile key {key} must be {expected}, got {value!r}"
        + (" (e.g. crop_scale=[0.5,1.0])" if key == "crop_scale" else "")
    )
    if isinstance(value, bool):
        raise bad
    try:
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise bad
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            if not isinstance(value, (list, tuple)):
                raise bad
            item = int if "int" in kind else float
            return tuple(item(v) for v in value)
    except (TypeError, ValueError):
        raise bad from None
    if kind == "str" and not isinstance(value, str):
        raise bad
    if kind == "dict":
        if not isinstance(value, dict):
            raise ValueError(f"profile key {key} must be a table, got {value!r}")
        return {k: dict(v) if isinstance(v, dict) else v for k, v in value.items()}
    return value


def _check_recipes(recipes: dict) -> None:
    """Refuse a recipe of an unknown framework, or with a key its framework does not take."""
    import inspect

    from memloc.ssl import FRAMEWORKS
    from memloc.train import OPTIMIZERS

    for framework, recipe in recipes.items():
        if framework not in FRAMEWORKS:
            raise ValueError(
                f"profile key recipes names an unknown framework {framework!r}; known: "
                f"{sorted(FRAMEWORKS)}"
            )
        if not isinstance(recipe, dict):
            raise ValueError(
                f"profile key recipes.{framework} must be a table of settings, got {recipe!r}"
            )
        arguments = set(inspect.signature(FRAMEWORKS[framework]).parameters)
        arguments -= {"backbone", "policy"}  # given by the profile's arch and augmentations
        unknown = sorted(set(recipe) - set(RECIPE_TRAIN_KEYS) - arguments)
        if unknown:
            raise ValueError(
                f"profile key recipes.{framework} has unknown setting(s) {unknown}; valid: "
                f"{sorted(RECIPE_TRAIN_KEYS)} and {framework}'s arguments {sorted(arguments)}"
            )
        if recipe.get("optimizer", "adam") not in OPTIMIZERS:
            raise ValueError(
                f"profile key recipes.{framework}.optimizer must be one of {list(OPTIMIZERS)}, "
                f"got {recipe['optimizer']!r}"
            )


def _check_shares(shares: tuple[float, ...]) -> None:
    if len(shares) != len(SIZE_KEYS) or any(x < 0 for x in shares) or not 0 < sum(shares) <= 1:
        raise ValueError(
            f"split_shares must be {len(SIZE_KEYS)} non-negative shares of the training images "
            f"(S_S, S_C, S_I, H, downstream) summing to at most 1, got {list(shares)}"
        )


def fit_to_data(profile: Profile, n_total: int) -> Profile:
    """``profile`` with its split sizes derived from ``n_total`` training images.

    A profile without ``split_shares`` comes back unchanged. Otherwise each of S_S, S_C, S_I,
    H and downstream gets ``floor(share * n_total)`` images; a part with a positive share
    must reach :data:`MIN_PART`, else ValueError saying how many images are missing. The
    metric sizes follow the parts: ``n_points`` at most ``|S_C|`` (and ``|H|`` when H is held out),
    ``top_k`` at most half of it, and ``batch_size`` at most half of f's training set, so
    that every epoch takes at least two steps (the last partial batch is dropped).
    """
    if not profile.split_shares:
        return profile
    shares = dict(zip(SIZE_KEYS, profile.split_shares, strict=True))
    sizes = {key: int(share * n_total) for key, share in shares.items()}
    for key, share in shares.items():
        need = MIN_PART.get(key, 1)
        if share > 0 and sizes[key] < need:
            raise ValueError(
                f"{profile.dataset} has {n_total} training images; split_shares "
                f"{list(profile.split_shares)} give {key} = {sizes[key]}, below its minimum "
                f"of {need}: add images (at least {math.ceil(need / share)}) or raise its share"
            )
    n_points = min(profile.n_points, sizes["n_candidate"])
    if sizes["n_heldout"]:
        n_points = min(n_points, sizes["n_heldout"])
    f_train = sizes["n_shared"] + sizes["n_candidate"]
    return profile.replace(
        **sizes,
        n_points=n_points,
        top_k=min(profile.top_k, n_points // 2),
        batch_size=max(1, min(profile.batch_size, f_train // 2)),
    )


def merge_overrides(profile_overrides: dict | None, **values) -> dict:
    """The profile keys a result notebook applies to its profile: the run's
    ``profile_overrides`` (the profile keys of the book's ``--param``, the same the train jobs
    apply) and the notebook's own parameters that are profile keys (``dataset``, ``arch``,
    ``n_points``, ...; None keeps the profile's value). A key given both ways with two values
    is a ValueError naming it."""
    out = dict(profile_overrides or {})
    for key, value in values.items():
        if value is None:
            continue
        if key in out and out[key] != value:
            raise ValueError(
                f"profile key {key} is {out[key]!r} in profile_overrides and {value!r} as a "
                "notebook parameter: give it once"
            )
        out[key] = value
    return out


def profile_names() -> list[str]:
    """The profiles defined in ``profiles.toml``, in file order."""
    with PROFILE_FILE.open("rb") as fh:
        return list(tomllib.load(fh))


def available_profiles() -> list[str]:
    """Every name :func:`load_profile` takes: the file's profiles, ``auto`` and the toy twins."""
    names = profile_names()
    return [*names, AUTO, *(name + TOY for name in names)]


def base_profile(name: str) -> str:
    """The profile a toy twin shrinks (``paper-toy`` -> ``paper``); any other name as it is.
    What a profile's structure depends on (T4's frameworks, F3a's data sets, F3c's ε) asks
    this, so that the toy run takes the same paths as the profile.

    >>> base_profile("paper-toy"), base_profile("cpu")
    ('paper', 'cpu')
    """
    return name.removesuffix(TOY)


def is_small(name: str) -> bool:
    """Whether a notebook's own sizes (seeds, downstream images) take their small settings:
    at ``quick`` and the toy profiles."""
    return name == "quick" or name.endswith(TOY)


def toy_table(table: dict) -> dict:
    """A profile's table (as ``profiles.toml`` holds it) at toy sizes.

    The data set, architectures, frameworks, augmentations and the experiments' own tables
    stay; every part that is not empty gets its :data:`TOY_SIZES` size, the recipe the
    :data:`TOY_RECIPE` epochs and metric sizes, and widths at most :data:`TOY_MAX_WIDTH`
    (a ViT-Base or ResNet50 a CPU trains in seconds).

    >>> toy = toy_table({"n_shared": 40000, "n_heldout": 0, "width": 1.0, "epochs": 500})
    >>> toy["n_shared"], toy["n_heldout"], toy["width"], toy["epochs"]
    (48, 0, 0.125, 2)
    """

    def shrink(values: dict, recipe: bool) -> dict:
        out = dict(values)
        for key, size in TOY_SIZES.items():
            if out.get(key):
                out[key] = size
        if "width" in out or recipe:
            out["width"] = min(out.get("width", 1.0), TOY_MAX_WIDTH)
        if recipe:
            out.update(TOY_RECIPE)
        elif "epochs" in out:
            out["epochs"] = TOY_RECIPE["epochs"]
        return out

    out = shrink({k: v for k, v in table.items() if k != "experiments"}, recipe=True)
    if "description" in out:
        out["description"] = f"{out['description']}, at toy sizes (a check of the workflow)"
    if "experiments" in table:
        out["experiments"] = {
            name: shrink(sizes, recipe=False) for name, sizes in table["experiments"].items()
        }
    return out


def experiment_names(name: str) -> list[str]:
    """The experiments with their own sizes in profile ``name`` (``[<name>.experiments.<id>]``)."""
    return list(_table(name).get("experiments", {}))


def _table(name: str) -> dict:
    with PROFILE_FILE.open("rb") as fh:
        table = tomllib.load(fh)
    if name == AUTO:
        # The base's experiment tables too (t2's ViT, f3c's GroupNorm, ...), so that every
        # result of the book has its encoders; split_shares then sets the split sizes.
        base = dict(table[AUTO_BASE])
        return {
            **base,
            "description": f"the {AUTO_BASE} recipe with split sizes derived from the data "
            f"(shares {list(AUTO_SHARES)} of S_S/S_C/S_I/H/downstream), images resized",
            "resize": "resize",
            "split_shares": list(AUTO_SHARES),
        }
    if name.endswith(TOY) and name.removesuffix(TOY) in table:
        return toy_table(table[name.removesuffix(TOY)])
    if name not in table:
        raise KeyError(f"unknown profile {name!r}; known profiles: {available_profiles()}")
    return table[name]


def load_profile(
    name: str | Profile = "cpu", *, experiment: str | None = None, **overrides
) -> Profile:
    """The profile ``name`` with ``overrides`` applied (a Profile passes through, overridden).

    ``experiment`` applies the sizes the profile file gives that experiment
    (``[<name>.experiments.<experiment>]``, e.g. a smaller split for ViTs on the CPU) before
    ``overrides``; an experiment without its own table runs at the profile's sizes. An override
    of None keeps the profile's value; an unknown key is a KeyError.
    """
    overrides = _given(overrides)
    if isinstance(name, Profile):
        if experiment is not None:
            name = name.replace(**_table(name.name).get("experiments", {}).get(experiment, {}))
        return name.replace(**overrides) if overrides else name
    table = dict(_table(name))
    experiments = table.pop("experiments", {})
    sizes = experiments.get(experiment, {}) if experiment is not None else {}
    _given(sizes)  # a misspelt key in the profile file is an error too
    return _build(name, {**table, **sizes, **overrides})


# ----------------------------------------------------------------------------- derived profiles


def dataset_profile(profile: str | Profile, dataset: str) -> Profile:
    """``profile``'s recipe and sizes on ``dataset``: the same ``|S_S|`` and ``|S_C|`` (what f
    trains on) and image size. Keys that do not fit a smaller data set shrink, in this order: no S_I
    (only f is trained), no downstream points, then as many held-out points as remain. A data
    set with another native size is resized rather than padded.

    Raises
    ------
    ValueError
        When the data set has fewer than ``|S_S| + |S_C| + 1`` training images.
    """
    profile = load_profile(profile) if isinstance(profile, str) else profile
    if dataset == profile.dataset:
        return profile
    n = len(load_dataset(dataset, "train", image_size=profile.image_size, resize="resize"))
    need = profile.n_shared + profile.n_candidate
    if n <= need:
        raise ValueError(
            f"{dataset} has {n} training images; the profile's f trains on {need}. Lower "
            "n_shared and n_candidate"
        )
    sizes = {
        "n_independent": profile.n_independent,
        "n_downstream": profile.n_downstream,
        "n_heldout": profile.n_heldout,
    }
    if need + sum(sizes.values()) > n:
        sizes["n_independent"] = 0
    if need + sum(sizes.values()) > n:
        sizes["n_downstream"] = 0
    sizes["n_heldout"] = min(sizes["n_heldout"], n - need - sizes["n_independent"])
    return profile.replace(dataset=dataset, resize="resize", **sizes)


def donor_profile(profile: str | Profile, dataset: str, *, epochs: int | None = None) -> Profile:
    """The profile of an encoder of ``profile``'s architecture trained on another data set.

    It trains with the profile's recipe on as many points as the profile's f sees
    (``|S_S| + |S_C|``, at most the data set's size), resized to the profile's image size.
    """
    profile = load_profile(profile) if isinstance(profile, str) else profile
    n_total = len(load_dataset(dataset, "train", image_size=profile.image_size, resize="resize"))
    n_train = min(n_total, profile.n_shared + profile.n_candidate)
    return profile.replace(
        dataset=dataset,
        resize="resize",
        n_shared=n_train,
        n_candidate=0,
        n_independent=0,
        n_heldout=0,
        n_downstream=0,
        epochs=epochs,
        snapshot_epochs=[],
        split_shares=(),  # the sizes above, whatever the profile derived from its own data
    )
