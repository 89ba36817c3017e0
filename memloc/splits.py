"""The SSLMem data split: S_S (shared), S_C (candidates), S_I (independent), a held-out set H
and points kept aside for downstream probes, as disjoint index arrays into a training set.

Encoder f trains on S_S ∪ S_C, encoder g on S_S ∪ S_I (NOTES §1). ``candidate_split`` draws a
seeded permutation; ``paper_split`` gives the official CIFAR-10 scripts' fixed split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memloc.utils import atomic_write_json

PARTS = ("shared", "candidate", "independent", "heldout", "downstream")
ROLES = ("f", "g")
FORMAT = "memloc-splits/1"


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(eq=False, repr=False)
class Splits:
    """Disjoint index arrays into a dataset's *train* split.

    Each part keeps the order of the permutation it was cut from, so ``part[:k]`` is a uniform
    random sample of the part. ``seed`` is ``None`` for a fixed split (``paper_split``).
    """

    dataset: str
    n_total: int
    seed: int | None
    shared: np.ndarray
    candidate: np.ndarray
    independent: np.ndarray
    heldout: np.ndarray = field(default_factory=_empty)
    downstream: np.ndarray = field(default_factory=_empty)
    # The test split an image folder without train/ and test/ held out (data.ImageDataset's
    # test_holdout: share, seed, test files), recorded so the split file says which images
    # never entered the training split; None for every other dataset.
    test_holdout: dict | None = None

    def __post_init__(self):
        for part in PARTS:
            arr = np.asarray(getattr(self, part))
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"{part} must hold integer indices, got dtype {arr.dtype}")
            setattr(self, part, arr.astype(np.int64).reshape(-1))
        self.n_total = int(self.n_total)
        self._validate()

    def _validate(self) -> None:
        seen = np.zeros(self.n_total, dtype=bool)
        for part in PARTS:
            idx = getattr(self, part)
            bad = idx[(idx < 0) | (idx >= self.n_total)]
            if bad.size:
                raise ValueError(
                    f"{part} holds index {int(bad[0])} outside the dataset's 0..{self.n_total - 1}"
                )
            if np.unique(idx).size != idx.size:
                raise ValueError(f"{part} holds an index twice")
            if seen[idx].any():
                clash = int(idx[seen[idx]][0])
                raise ValueError(f"index {clash} of {part} is also in an earlier part")
            seen[idx] = True

    @property
    def sizes(self) -> dict[str, int]:
        return {part: int(getattr(self, part).size) for part in PARTS}

    def train_indices(self, role: str) -> np.ndarray:
        """Training points of encoder ``"f"`` (S_S ∪ S_C) or ``"g"`` (S_S ∪ S_I)."""
        if role == "f":
            return np.concatenate([self.shared, self.candidate])
        if role == "g":
            return np.concatenate([self.shared, self.independent])
        raise ValueError(f"role must be one of {ROLES} ('f' sees S_C, 'g' sees S_I), got {role!r}")

    def to_dict(self) -> dict:
        """JSON-ready description: identity, sizes, index lists and a checksum of them."""
        indices = {part: getattr(self, part).tolist() for part in PARTS}
        d = {
            "format": FORMAT,
            "dataset": self.dataset,
            "n_total": self.n_total,
            "seed": self.seed,
            "sizes": self.sizes,
            "indices": indices,
        }
        if self.test_holdout is not None:
            d["test_holdout"] = self.test_holdout
        d["checksum"] = _checksum(d)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Splits:
        """Inverse of :meth:`to_dict`; ValueError when the description is inconsistent."""
        if d.get("format") != FORMAT:
            raise ValueError(f"not a memloc splits description (format {d.get('format')!r})")
        if d.get("checksum") != _checksum(d):
            raise ValueError(
                "the split's checksum does not match its contents: it was edited after it was "
                "written; make it again with candidate_split (or paper_split)"
            )
        splits = cls(
            d["dataset"],
            d["n_total"],
            d["seed"],
            **{p: d["indices"][p] for p in PARTS},
            test_holdout=d.get("test_holdout"),
        )
        if splits.sizes != d["sizes"]:
            raise ValueError(f"sizes {d['sizes']} do not match the index lists {splits.sizes}")
        return splits

    def save(self, path: str | Path) -> None:
        """Write the split as JSON (atomically)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Splits:
        """Read a split written by :meth:`save`, checking that it is consistent and untouched."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a valid splits file: {err}") from err

    def __eq__(self, other) -> bool:
        if not isinstance(other, Splits):
            return NotImplemented
        same = (self.dataset, self.n_total, self.seed) == (other.dataset, other.n_total, other.seed)
        return same and all(np.array_equal(getattr(self, p), getattr(other, p)) for p in PARTS)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{p}={n}" for p, n in self.sizes.items())
        return (
            f"Splits(dataset={self.dataset!r}, n_total={self.n_total}, seed={self.seed}, {sizes})"
        )


def _checksum(d: dict) -> str:
    # test_holdout only when present, so that the checksums of earlier split files still hold.
    keys = ("format", "dataset", "n_total", "seed", "sizes", "indices", "test_holdout")
    body = {k: d[k] for k in keys if k in d}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def candidate_split(
    n_total: int,
    *,
    n_shared: int,
    n_candidate: int,
    n_independent: int,
    n_heldout: int = 0,
    n_downstream: int = 0,
    seed: int = 0,
    dataset: str = "",
) -> Splits:
    """Cut a seeded permutation of ``range(n_total)`` into S_S, S_C, S_I, H and downstream.

    The permutation is ``numpy.random.default_rng(seed).permutation(n_total)``; the parts are
    its consecutive slices in that order. Points beyond the requested sizes are left unused.
    """
    sizes = {
        "n_shared": n_shared,
        "n_candidate": n_candidate,
        "n_independent": n_independent,
        "n_heldout": n_heldout,
        "n_downstream": n_downstream,
    }
    for key, n in {"n_total": n_total, **sizes}.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {n!r}")
    need = sum(sizes.values())
    if need > n_total:
        terms = " + ".join(f"{k}={v}" for k, v in sizes.items() if v)
        raise ValueError(
            f"{dataset or 'the dataset'} has {n_total} training points, but the split needs "
            f"{need} ({terms}); lower these sizes by {need - n_total} in total "
            f"(n_downstream and n_heldout first), use a larger dataset, or the profile auto "
            "(sizes from the data)"
        )
    perm = np.random.default_rng(seed).permutation(n_total)
    cuts = np.cumsum(list(sizes.values()))[:-1]
    parts = np.split(perm[:need], cuts)
    return Splits(dataset, n_total, int(seed), **dict(zip(PARTS, parts, strict=True)))


def paper_split(dataset: str = "cifar10") -> Splits:
    """The official CIFAR-10 scripts' fixed split of the 50,000 training images: S_S = 0–39,999,
    S_C = 40,000–44,999, S_I = 45,000–49,999, no held-out or downstream points (NOTES §1)."""
    return Splits(
        dataset,
        50_000,
        None,
        shared=np.arange(0, 40_000),
        candidate=np.arange(40_000, 45_000),
        independent=np.arange(45_000, 50_000),
    )
