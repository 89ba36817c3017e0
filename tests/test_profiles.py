"""Profiles load, override and reject unknown names and keys."""

import pytest

from memloc.profiles import load_profile, profile_names


def test_three_profiles_in_order():
    assert profile_names() == ["quick", "cpu", "paper"]


def test_cpu_is_the_default_and_uses_fashion_mnist_padded_to_32():
    p = load_profile()
    assert (p.name, p.dataset, p.image_size, p.resize) == ("cpu", "fashion-mnist", 32, "pad")


def test_paper_profile_has_the_papers_split_and_recipe():
    p = load_profile("paper")
    assert (p.n_shared, p.n_candidate, p.n_independent) == (40_000, 5_000, 5_000)
    assert (p.lr, p.weight_decay, p.temperature, p.batch_size, p.epochs) == (
        1e-3,
        1e-6,
        0.5,
        512,
        500,
    )


def test_overrides_apply_and_are_typed():
    p = load_profile("quick", epochs="3", crop_scale=[0.5, 1.0])
    assert p.epochs == 3 and p.crop_scale == (0.5, 1.0)
    assert max(p.snapshot_epochs) <= 3  # snapshots past the last epoch are dropped


def test_none_keeps_the_profiles_value():
    base = load_profile("quick")
    assert load_profile("quick", seed=None, n_points=None) == base
    assert load_profile("quick", seed=None, epochs=4).epochs == 4
    assert base.replace(k_aug=None) == base
    with pytest.raises(KeyError, match="valid keys"):
        load_profile("quick", epoch=None)  # a misspelt key is an error even when None


def test_unknown_profile_and_key_are_clear_errors():
    with pytest.raises(KeyError, match="known profiles"):
        load_profile("huge")
    with pytest.raises(KeyError, match="valid keys"):
        load_profile("quick", epoch=3)
