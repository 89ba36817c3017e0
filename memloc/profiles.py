"""Run profiles (``quick``, ``cpu``, ``paper``) read from ``profiles.toml`` beside this file.

A profile fixes everything a result depends on: data, split sizes, encoder, training recipe and
metric sizes. ``load_profile("cpu", epochs=50)`` overrides single keys; an unknown profile or
key is an error that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROFILE_FILE = Path(__file__).with_name("profiles.toml")


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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

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
    required = {f.name for f in dataclasses.fields(Profile) if f.default is dataclasses.MISSING}
    missing = sorted(required - set(values))
    if missing:
        raise KeyError(f"profile {name!r} lacks key(s) {missing} in {PROFILE_FILE}")
    types = {f.name: f.type for f in dataclasses.fields(Profile)}
    out = {}
    for key, value in values.items():
        kind = types[key]
        if kind == "int":
            value = int(value)
        elif kind == "float":
            value = float(value)
        elif kind.startswith("tuple"):
            value = tuple(value)
        out[key] = value
    if out["snapshot_epochs"] and max(out["snapshot_epochs"]) > out["epochs"]:
        out["snapshot_epochs"] = tuple(e for e in out["snapshot_epochs"] if e <= out["epochs"])
    return Profile(**out)


def profile_names() -> list[str]:
    """The profiles defined in ``profiles.toml``, in file order."""
    with PROFILE_FILE.open("rb") as fh:
        return list(tomllib.load(fh))


def experiment_names(name: str) -> list[str]:
    """The experiments with their own sizes in profile ``name`` (``[<name>.experiments.<id>]``)."""
    return list(_table(name).get("experiments", {}))


def _table(name: str) -> dict:
    with PROFILE_FILE.open("rb") as fh:
        table = tomllib.load(fh)
    if name not in table:
        raise KeyError(f"unknown profile {name!r}; known profiles: {list(table)}")
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
