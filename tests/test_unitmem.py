"""UnitMem/ClassMem: hand-computed values, undefined units, invariances, localisation, controls."""

from __future__ import annotations

import random
import warnings
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn
from toys import channel_mean_resnet9

from memloc.metrics import (
    UndefinedUnitsWarning,
    UnitMemResult,
    classmem,
    excess_over_controls,
    mu_max_overlap,
    selectivity,
    unitmem,
    unitmem_forward_shift,
)
from memloc.models import create

FAST = settings(max_examples=15, deadline=None)
# Random-init test encoders have a few dead units; the tests that expect the warning check it.
pytestmark = pytest.mark.filterwarnings("ignore::memloc.metrics.UndefinedUnitsWarning")


def flip_policy(x, generator):
    """Random horizontal flips: a unit's spatial mean does not change."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def noise_policy(x, generator):
    return x + 0.1 * torch.randn(x.shape, generator=generator, device=x.device)


def toy_encoder():
    """1x1 conv with four units, then ReLU, then a linear layer on the pooled map.

    unit 0 fires on pixels above 0.5 (weight 1, bias -0.5); unit 1 is constant 1; unit 2 is the
    pixel value; unit 3 is dead (always 0 after the ReLU)."""
    conv = nn.Conv2d(1, 4, 1)
    conv.weight.data = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(4, 1, 1, 1)
    conv.bias.data = torch.tensor([-0.5, 1.0, 0.0, -1.0])
    return nn.Sequential(
        OrderedDict(
            conv=conv,
            relu=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            head=nn.Linear(4, 3),
        )
    )


def constant_images(values):
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 3, 3)


# ------------------------------------------------------------------------------ known answers
def test_single_image_unit_constant_unit_and_hand_value():
    images = constant_images([0.1, 0.1, 0.9, 0.1, 0.1])
    with pytest.warns(UndefinedUnitsWarning, match="1 of 4"):
        r = unitmem(toy_encoder(), images, layers=["relu"], k_aug=0)
    u = r.units.set_index("unit")
    assert u.loc[0, "unitmem"] == 1.0 and u.loc[0, "argmax"] == 2
    assert u.loc[0, "mu_max"] == pytest.approx(0.4)
    assert u.loc[1, "unitmem"] == 0.0
    assert u.loc[2, "unitmem"] == pytest.approx((0.9 - 0.1) / (0.9 + 0.1))
    assert not u.loc[3, "defined"] and np.isnan(u.loc[3, "unitmem"])
    assert list(r.units.columns[:7]) == [
        "layer", "unit", "unitmem", "mu_max", "argmax", "mu_rest", "defined"
    ]  # fmt: skip


def test_augmentations_average_over_views():
    images = constant_images([0.1, 0.1, 0.9, 0.1, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        plain = unitmem(toy_encoder(), images, layers=["relu"], k_aug=0)
        flipped = unitmem(toy_encoder(), images, layers=["relu"], k_aug=4, policy=flip_policy)
    pd.testing.assert_frame_equal(plain.units, flipped.units)


def test_three_point_example_mean_and_median():
    mu = np.array([[3.0, 1.0], [1.0, 1.0], [2.0, 4.0]])
    for rest in ("mean", "median"):
        s = selectivity(mu, rest)
        # unit 0: max 3 at 0, rest {1, 2} -> 1.5; unit 1: max 4 at 2, rest {1, 1} -> 1
        np.testing.assert_allclose(s["value"], [(3 - 1.5) / 4.5, (4 - 1) / 5])
        assert s["argmax"].tolist() == [0, 2]
        np.testing.assert_allclose(s["mu_rest"], [1.5, 1.0])
    # Four points, where the median (of an even count: mean of the middle two) and mean differ.
    mu = np.array([[4.0], [0.0], [1.0], [5.0]])
    assert selectivity(mu, "mean")["value"][0] == pytest.approx((5 - 5 / 3) / (5 + 5 / 3))
    assert selectivity(mu, "median")["value"][0] == pytest.approx((5 - 1) / (5 + 1))
    mu = np.array([[4.0], [0.0], [1.0], [5.0], [2.0]])  # rest {4, 0, 1, 2}: median 1.5
    assert selectivity(mu, "median")["value"][0] == pytest.approx((5 - 1.5) / (5 + 1.5))


def test_negative_activations_are_undefined_and_announced():
    images = constant_images([0.1, 0.3, 0.9])
    with pytest.warns(UndefinedUnitsWarning, match="conv: 2"):
        r = unitmem(toy_encoder(), images, layers=["conv"], k_aug=0)  # before the ReLU
    u = r.units.set_index("unit")
    # unit 0 = pixel - 0.5 is negative on two images; unit 3 = pixel - 1 everywhere
    assert u["defined"].tolist() == [False, True, True, False]
    assert u.loc[0, "mu_min"] == pytest.approx(-0.4)
    assert np.isnan(u.loc[[0, 3], "unitmem"]).all() and np.isfinite(u.loc[[1, 2], "unitmem"]).all()
    summary = r.summary().iloc[0]
    assert (summary["n_units"], summary["n_defined"]) == (4, 2)


def test_classmem_hand_computed():
    images = constant_images([0.9, 0.7, 0.1, 0.3, 0.2, 0.2, 0.4, 0.0])
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        mean = classmem(toy_encoder(), images, labels, layers=["relu"])
    # unit 2 (the pixel): class means 0.8, 0.2, 0.2, 0.2; unit 0 (pixel > 0.5): 0.3, 0, 0, 0
    u = mean.units.set_index("unit")
    assert u.loc[2, "classmem"] == pytest.approx((0.8 - 0.2) / (0.8 + 0.2))
    assert u.loc[2, "argmax"] == 0 and u.loc[0, "classmem"] == pytest.approx(1.0)
    assert u.loc[1, "classmem"] == 0.0
    np.testing.assert_allclose(mean.mu["relu"][:, 2], [0.8, 0.2, 0.2, 0.2], atol=1e-7)
    images = constant_images([0.9, 0.7, 0.1, 0.3, 0.2, 0.2, 0.6, 0.0])  # class 3: 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        mean = classmem(toy_encoder(), images, labels, layers=["relu"])
        median = classmem(toy_encoder(), images, labels, layers=["relu"], rest="median")
    rest_mean, rest_median = (0.2 + 0.2 + 0.3) / 3, 0.2
    assert mean.units.loc[2, "classmem"] == pytest.approx((0.8 - rest_mean) / (0.8 + rest_mean))
    assert median.units.loc[2, "classmem"] == pytest.approx((0.8 - rest_median) / 1.0)


def test_classmem_running_accumulator_hand_computed():
    images = constant_images([0.9, 0.7, 0.1, 0.3, 0.2, 0.2, 0.6, 0.0])
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        running = classmem(toy_encoder(), images, labels, layers=["relu"], accumulate="running")
        median = classmem(
            toy_encoder(), images, labels, layers=["relu"], accumulate="running", rest="median"
        )
        # The rows follow the order of `classes`, not of the images.
        order = [6, 2, 0, 4, 7, 3, 1, 5]
        shuffled = classmem(
            toy_encoder(), images[order], labels[order], layers=["relu"], accumulate="running"
        )
        backwards = classmem(
            toy_encoder(),
            images,
            labels,
            layers=["relu"],
            accumulate="running",
            classes=[3, 2, 1, 0],
        )
    # unit 2 (the pixel): the mean over classes 0; 0-1; 0-2; 0-3 (each image weighs the same)
    rows = [0.8, (0.9 + 0.7 + 0.1 + 0.3) / 4, 2.4 / 6, 3.0 / 8]
    np.testing.assert_allclose(running.mu["relu"][:, 2], rows, atol=1e-7)
    rest = np.mean(rows[1:])
    u = running.units.set_index("unit")
    assert u.loc[2, "classmem"] == pytest.approx((0.8 - rest) / (0.8 + rest))
    assert u.loc[2, "argmax"] == 0
    assert median.units.loc[2, "classmem"] == pytest.approx((0.8 - 0.4) / (0.8 + 0.4))
    pd.testing.assert_frame_equal(shuffled.units, running.units)
    # classes 3; 3-2; 3-2-1; all: 0.3, 0.25, 1.4 / 6, 0.375; the maximum is the last row
    rows = [0.3, 0.25, 1.4 / 6, 0.375]
    np.testing.assert_allclose(backwards.mu["relu"][:, 2], rows, atol=1e-7)
    assert backwards.units.loc[2, "argmax"] == 0
    assert backwards.config["accumulate"] == "running"


def test_classmem_errors():
    images = constant_images([0.1, 0.2, 0.3, 0.4])
    labels = [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"classes \[2\] have no images"):
        classmem(toy_encoder(), images, labels, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="2 or more"):
        classmem(toy_encoder(), images, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="not among classes"):
        classmem(toy_encoder(), images, [0, 0, 1, 2], classes=[0, 1])
    with pytest.raises(ValueError, match="one label per image"):
        classmem(toy_encoder(), images, [0, 1])
    with pytest.raises(ValueError, match="accumulate must be 'class'.*got 'cumulative'"):
        classmem(toy_encoder(), images, labels, accumulate="cumulative")


def test_errors():
    images = constant_images([0.1, 0.2])
    with pytest.raises(ValueError, match="rest"):
        unitmem(toy_encoder(), images, rest="max")
    with pytest.raises(ValueError, match="policy"):
        unitmem(toy_encoder(), images, k_aug=3)
    with pytest.raises(ValueError, match="at least 2"):
        unitmem(toy_encoder(), images[:1], k_aug=0)
    with pytest.raises(KeyError, match="relu"):
        unitmem(toy_encoder(), images, layers=["nope"], k_aug=0)


# ------------------------------------------------------------------------------ properties
nonneg = arrays(
    np.float64,
    st.tuples(st.integers(2, 12), st.integers(1, 5)),
    elements=st.floats(0, 10, allow_subnormal=False),
)


@FAST
@given(
    nonneg,
    st.floats(0.01, 100),
    st.randoms(use_true_random=False),
    st.sampled_from(["mean", "median"]),
)
# Found by CI: the mean of ten equal values can round above them (value was -8.9e-17).
@example(np.full((11, 1), 9.350724237877681e-51), 1.0, random.Random(0), "mean")
def test_selectivity_properties(mu, scale, rnd, rest):
    s = selectivity(mu, rest)
    v = s["value"][s["defined"]]
    assert ((v >= 0) & (v <= 1)).all()
    assert (s["defined"] == (mu.max(axis=0) > 0)).all()
    scaled = selectivity(mu * scale, rest)
    np.testing.assert_allclose(scaled["value"], s["value"], rtol=1e-9, atol=1e-12)
    perm = list(range(mu.shape[0]))
    rnd.shuffle(perm)
    permuted = selectivity(mu[perm], rest)
    np.testing.assert_array_equal(permuted["value"], s["value"])
    np.testing.assert_array_equal(mu[perm][permuted["argmax"], range(mu.shape[1])], s["mu_max"])


def relu_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(1, 3, 3, padding=1),
            act=nn.ReLU(),
            flat=nn.Flatten(),
            fc=nn.Linear(48, 4),
            act2=nn.ReLU(),
        )
    ).eval()


@FAST
@given(
    st.integers(0, 1000),
    st.integers(2, 9),
    st.integers(1, 12),
    st.floats(0.1, 10),
    st.sampled_from(["mean", "median"]),
)
def test_unitmem_end_to_end_invariances(seed, n, batch_size, scale, rest):
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 4, 4, generator=gen)
    net = relu_net(seed)
    kwargs = dict(k_aug=3, policy=noise_policy, rest=rest, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        ref = unitmem(net, images, layers=["act", "act2"], batch_size=100, **kwargs)
        # batch size and one-layer-vs-all-layer runs do not change anything
        small = unitmem(net, images, layers=["act", "act2"], batch_size=batch_size, **kwargs)
        alone = unitmem(net, images, layers=["act2"], **kwargs)
        # scaling one unit's activations (ReLU is positively homogeneous) changes nothing
        net.fc.weight.data[1] *= scale
        net.fc.bias.data[1] *= scale
        scaled = unitmem(net, images, layers=["act2"], **kwargs)
        # permuting the images (unaugmented: views are drawn per position) changes nothing
        perm = torch.randperm(n, generator=gen)
        plain = unitmem(net, images, layers=["act2"], k_aug=0, rest=rest)
        permuted = unitmem(net, images[perm], layers=["act2"], k_aug=0, rest=rest)
    tol = dict(rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(small.units["unitmem"], ref.units["unitmem"], **tol)
    last = ref.units[ref.units["layer"] == "act2"].reset_index(drop=True)
    np.testing.assert_allclose(alone.units["unitmem"], last["unitmem"], **tol)
    np.testing.assert_allclose(scaled.units["unitmem"], last["unitmem"], **tol)
    np.testing.assert_allclose(permuted.units["unitmem"], plain.units["unitmem"], **tol)
    v = ref.units.loc[ref.units["defined"], "unitmem"]
    assert ((v >= 0) & (v <= 1 + 1e-12)).all()


def test_same_seed_identical_results():
    torch.manual_seed(0)
    encoder = create("resnet9", in_channels=1, width=0.25)
    images = torch.rand(10, 1, 16, 16)
    kwargs = dict(k_aug=2, policy=noise_policy, layers=["2", "Res6"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        a = unitmem(encoder, images, seed=1, **kwargs)
        b = unitmem(encoder, images, seed=1, **kwargs)
        c = unitmem(encoder, images, seed=2, **kwargs)
    pd.testing.assert_frame_equal(a.units, b.units)
    assert not np.array_equal(a.mu["2"], c.mu["2"])
    pd.testing.assert_frame_equal(a.rescore("median").units, unitmem(
        encoder, images, seed=1, rest="median", **kwargs).units)  # fmt: skip
    assert a.units["layer"].unique().tolist() == ["2", "Res6"]
    stored = UnitMemResult.from_mu(a.mu, a.layers, config=a.config)
    pd.testing.assert_frame_equal(stored.units, a.units)


# ------------------------------------------------------------------------------ forwards


def test_forward_shift_zero_before_the_first_sum_and_where_sums_only_rescale():
    torch.manual_seed(0)
    encoder = create("resnet9", in_channels=1, width=0.25)
    images = torch.rand(12, 1, 16, 16)
    shift = unitmem_forward_shift(encoder, images, k_aug=2, policy=noise_policy, seed=3)
    assert shift["layer"].tolist() == ["1", "2", "3", "4", "Res2", "5", "6", "7", "8", "Res6"]
    early = shift.set_index("layer").loc[["1", "2", "3", "4"]]
    assert (early["difference"] == 0).all() and (early["mean_abs_unit_change"] == 0).all()
    late = shift.set_index("layer").loc[["Res2", "5", "6", "7", "8", "Res6"]]
    assert (late["mean_abs_unit_change"] > 0).all()
    # Without its sum Res2 is block 4: the same units, the same views, the same UnitMem.
    by_layer = shift.set_index("layer")
    assert by_layer.loc["Res2", "scripts"] == by_layer.loc["4", "paper"]
    np.testing.assert_allclose(shift["difference"], shift["scripts"] - shift["paper"])
    # The forwards feed unitmem: its result is one of the two measurements.
    paper = unitmem(encoder, images, k_aug=2, policy=noise_policy, seed=3)
    np.testing.assert_allclose(shift["paper"], paper.summary()["mean"])
    scripts = unitmem(encoder, images, k_aug=2, policy=noise_policy, seed=3, forward="scripts")
    np.testing.assert_allclose(shift["scripts"], scripts.summary()["mean"])
    assert scripts.config["forward"] == "scripts"
    # UnitMem ignores a unit's scale: where the sums only double maps nothing moves.
    hand = unitmem_forward_shift(channel_mean_resnet9(), images.clamp(min=0.05), k_aug=0)
    np.testing.assert_allclose(hand["difference"], 0, atol=1e-6)  # float32 rounding
    np.testing.assert_allclose(hand["mean_abs_unit_change"], 0, atol=1e-6)


def test_classmem_scripts_forward_and_errors():
    torch.manual_seed(0)
    encoder = create("resnet9", in_channels=1, width=0.25)
    images, labels = torch.rand(8, 1, 16, 16), [0, 1] * 4
    paper = classmem(encoder, images, labels, layers=["4", "Res6"])
    scripts = classmem(encoder, images, labels, layers=["4", "Res6"], forward="scripts")
    np.testing.assert_array_equal(scripts.mu["4"], paper.mu["4"])
    assert not np.allclose(scripts.mu["Res6"], paper.mu["Res6"])
    with pytest.raises(ValueError, match="unknown forward 'sequential'"):
        unitmem(encoder, images, k_aug=0, forward="sequential")
    with pytest.raises(ValueError, match="Sequential has none: use forward='paper'"):
        unitmem_forward_shift(toy_encoder(), constant_images([0.1, 0.2]), k_aug=0)


# ------------------------------------------------------------------------------ localisation
def test_dominance_and_overlap_with_chance():
    images = constant_images([0.1, 0.9, 0.2, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        r = unitmem(toy_encoder(), images, layers=["relu", "head"], k_aug=0)
    dom = r.dominance()
    assert dom.index.tolist() == [0, 1, 2, 3]
    assert dom.loc[1, "relu"] == 2  # units 0 and 2 peak on the bright image; unit 3 is dead
    assert dom["relu"].sum() == 3  # the constant unit's argmax is the first image (a tie)
    assert (dom["total"] == dom["relu"] + dom["head"]).all()
    scores = pd.Series([0.0, 1.0, 0.5, 0.2])  # image 1 is the most memorized
    out = mu_max_overlap(r, scores, k=1).set_index("layer")
    assert out.loc["relu", "n_units"] == 3 and out.loc["relu", "n_hits"] == 2
    assert out.loc["relu", "chance"] == 0.25
    assert out.loc["relu", "fraction"] == pytest.approx(2 / 3)
    top = mu_max_overlap(r, scores.to_numpy(), k=1, top_units=1).set_index("layer")
    assert top.loc["relu", "n_units"] == 1 and top.loc["relu", "n_hits"] == 1  # unit 0 (UnitMem 1)
    with pytest.raises(ValueError, match="same 4 images"):
        mu_max_overlap(r, [1.0, 2.0], k=1)


def test_excess_over_controls():
    torch.manual_seed(0)
    trained = create("resnet9", in_channels=1, width=0.25)
    random = create("resnet9", in_channels=1, width=0.25)
    images = torch.rand(8, 1, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedUnitsWarning)
        r = unitmem(trained, images, layers=["4", "8"], k_aug=0)
        rc = unitmem(random, images, layers=["4", "8"], k_aug=0)
    table = excess_over_controls(r, {"self": r, "random": rc}).set_index("layer")
    assert (table["self_excess"] == 0).all()
    np.testing.assert_allclose(table["random_excess"], table["mean"] - table["random_mean"])
    np.testing.assert_allclose(table["excess"], np.minimum(0, table["random_excess"]))
    assert table["self_p"].between(0.4, 0.6).all()  # identical samples: t = 0, p = 0.5
    with pytest.raises(ValueError, match="same layers"):
        excess_over_controls(r, {"x": unitmem(trained, images, layers=["4"], k_aug=0)})
