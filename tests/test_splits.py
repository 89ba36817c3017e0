"""The SSLMem split: disjoint parts of the asked sizes, reproducible, saved and checked."""

import json

import numpy as np
import pytest

from memloc.splits import PARTS, Splits, candidate_split, paper_split

SIZES = dict(n_shared=40, n_candidate=15, n_independent=15, n_heldout=10, n_downstream=12)


def test_parts_are_disjoint_and_of_the_asked_sizes():
    s = candidate_split(100, **SIZES, seed=3, dataset="toy")
    assert s.sizes == {
        "shared": 40,
        "candidate": 15,
        "independent": 15,
        "heldout": 10,
        "downstream": 12,
    }
    together = np.concatenate([getattr(s, p) for p in PARTS])
    assert len(np.unique(together)) == len(together) == 92
    assert together.min() >= 0 and together.max() < 100
    assert all(getattr(s, p).dtype == np.int64 for p in PARTS)


def test_parts_are_cut_from_the_seeded_permutation():
    s = candidate_split(100, **SIZES, seed=3)
    perm = np.random.default_rng(3).permutation(100)
    np.testing.assert_array_equal(s.shared, perm[:40])
    np.testing.assert_array_equal(s.candidate, perm[40:55])
    np.testing.assert_array_equal(s.independent, perm[55:70])
    np.testing.assert_array_equal(s.heldout, perm[70:80])
    np.testing.assert_array_equal(s.downstream, perm[80:92])


def test_same_seed_same_split_other_seed_other_split():
    a = candidate_split(1000, **SIZES, seed=7)
    b = candidate_split(1000, **SIZES, seed=7)
    c = candidate_split(1000, **SIZES, seed=8)
    assert a == b
    assert a != c
    assert not np.array_equal(a.candidate, c.candidate)


def test_train_indices_of_f_and_g():
    s = candidate_split(100, **SIZES, seed=0)
    f, g = s.train_indices("f"), s.train_indices("g")
    assert set(f) == set(s.shared) | set(s.candidate)
    assert set(g) == set(s.shared) | set(s.independent)
    assert set(f) & set(g) == set(s.shared)
    assert not set(f) & set(s.heldout) and not set(g) & set(s.downstream)
    with pytest.raises(ValueError, match="role"):
        s.train_indices("h")


def test_split_too_large_for_the_dataset_says_what_to_lower():
    with pytest.raises(ValueError, match=r"digits has 50 training points.*needs 92") as err:
        candidate_split(50, **SIZES, dataset="digits")
    assert "lower" in str(err.value) and "n_downstream" in str(err.value)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_sizes_must_be_non_negative_integers(bad):
    with pytest.raises(ValueError, match="n_candidate must be a non-negative integer"):
        candidate_split(100, n_shared=10, n_candidate=bad, n_independent=5)


def test_a_split_may_use_every_point():
    s = candidate_split(30, n_shared=10, n_candidate=10, n_independent=10)
    assert sorted(np.concatenate([s.shared, s.candidate, s.independent])) == list(range(30))
    assert s.sizes["heldout"] == s.sizes["downstream"] == 0


def test_save_load_roundtrip(tmp_path):
    s = candidate_split(200, **SIZES, seed=5, dataset="fashion-mnist")
    s.save(tmp_path / "splits.json")
    d = json.loads((tmp_path / "splits.json").read_text())
    assert (d["dataset"], d["n_total"], d["seed"]) == ("fashion-mnist", 200, 5)
    assert d["sizes"]["candidate"] == 15 and len(d["indices"]["candidate"]) == 15
    loaded = Splits.load(tmp_path / "splits.json")
    assert loaded == s
    np.testing.assert_array_equal(loaded.train_indices("g"), s.train_indices("g"))


def test_an_image_folders_test_holdout_is_recorded_and_checksummed(tmp_path):
    s = candidate_split(200, **SIZES, seed=5, dataset="imagefolder:/pics")
    plain = s.to_dict()
    assert "test_holdout" not in plain  # files without it keep their checksums
    s.test_holdout = {"share": 0.2, "seed": 0, "n_images": 250, "test_files": ["a/1.png"]}
    s.save(tmp_path / "splits.json")
    loaded = Splits.load(tmp_path / "splits.json")
    assert loaded.test_holdout == s.test_holdout
    assert json.loads((tmp_path / "splits.json").read_text())["checksum"] != plain["checksum"]
    _tamper(tmp_path / "splits.json", lambda d: d["test_holdout"]["test_files"].append("b.png"))
    with pytest.raises(ValueError, match="checksum does not match"):
        Splits.load(tmp_path / "splits.json")


def _tamper(path, edit):
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))


@pytest.mark.parametrize(
    "edit",
    [
        # a candidate moved into the independent set (overlap), checksum left as it was
        lambda d: d["indices"]["independent"].append(d["indices"]["candidate"][0]),
        # a different candidate, same size
        lambda d: d["indices"]["candidate"].__setitem__(0, 199),
        lambda d: d["sizes"].__setitem__("shared", 41),
        lambda d: d.__setitem__("n_total", 300),
        lambda d: d.pop("indices"),
    ],
)
def test_load_refuses_a_tampered_file(tmp_path, edit):
    path = tmp_path / "splits.json"
    candidate_split(200, **SIZES, seed=5).save(path)
    _tamper(path, edit)
    with pytest.raises(ValueError, match="not a valid splits file"):
        Splits.load(path)


def test_inconsistent_splits_are_refused_even_with_a_matching_checksum():
    s = candidate_split(100, **SIZES, seed=1)
    # Edited in place after validation, so that to_dict writes a checksum that matches.
    s.heldout[0] = s.shared[0]
    d = s.to_dict()
    with pytest.raises(ValueError, match="also in an earlier part"):
        Splits.from_dict(d)
    with pytest.raises(ValueError, match="outside"):
        Splits("toy", 10, 0, shared=[0, 10], candidate=[], independent=[])
    with pytest.raises(ValueError, match="twice"):
        Splits("toy", 10, 0, shared=[1, 1], candidate=[], independent=[])


def test_paper_split_is_the_official_cifar10_split(tmp_path):
    s = paper_split()
    assert (s.dataset, s.n_total, s.seed) == ("cifar10", 50_000, None)
    np.testing.assert_array_equal(s.shared, np.arange(40_000))
    np.testing.assert_array_equal(s.candidate, np.arange(40_000, 45_000))
    np.testing.assert_array_equal(s.independent, np.arange(45_000, 50_000))
    assert s.sizes["heldout"] == s.sizes["downstream"] == 0
    s.save(tmp_path / "paper.json")
    assert Splits.load(tmp_path / "paper.json") == s
