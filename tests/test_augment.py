"""AugmentPolicy: per-image views of a batch, reproducible from a generator, torchvision-exact."""

import json
import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from memloc.augment import (
    AugmentPolicy,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
    gaussian_blur,
    resized_crop,
)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def images(b=8, c=3, size=16, seed=0):
    return torch.rand(b, c, size, size, generator=gen(seed))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("preset", ["simclr", "unitmem_scripts", "supervised", "identity"])
def test_views_keep_shape_dtype_and_range(preset, channels):
    x = images(c=channels)
    out = getattr(AugmentPolicy, preset)()(x, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_same_generator_state_same_views_and_other_seed_other_views():
    policy, x = AugmentPolicy.simclr(), images()
    a, b = policy(x, gen(7)), policy(x, gen(7))
    assert torch.equal(a, b)
    assert not torch.allclose(a, policy(x, gen(8)))
    g = gen(7)
    first, second = policy(x, g), policy(x, g)  # the generator advances: two different views
    assert torch.equal(first, a) and not torch.allclose(first, second)


def test_identity_returns_its_input():
    x = images()
    assert AugmentPolicy.identity().is_identity
    assert AugmentPolicy.identity()(x, gen(0)) is x


def test_full_crop_without_flip_is_the_image_and_with_flip_its_mirror():
    x = images(c=1)
    full = torch.tensor([[0.0, 0.0, 16.0, 16.0]]).repeat(len(x), 1)
    no = torch.zeros(len(x), dtype=torch.bool)
    torch.testing.assert_close(resized_crop(x, full, no), x, atol=1e-6, rtol=0)
    # Through the policy (not short-circuited: the flip makes it a non-identity policy).
    mirror = AugmentPolicy(crop_scale=(1, 1), crop_ratio=(1, 1), hflip=1.0, jitter_p=0.0)
    torch.testing.assert_close(mirror(x, gen(0)), x.flip(-1), atol=1e-6, rtol=0)


def test_crop_matches_torchvision_resized_crop_inside_the_box():
    x, size = images(), 16
    params = AugmentPolicy.simclr().sample_params(len(x), size, size, gen(3))
    out = resized_crop(x, params["box"], torch.zeros(len(x), dtype=torch.bool))
    k = torch.arange(size) + 0.5
    for i in range(len(x)):
        top, left, h, w = (int(v) for v in params["box"][i])
        ref = TF.resized_crop(x[i], top, left, h, w, [size, size], antialias=False)
        # Output pixels whose sample point lies inside the box (at the box's edge torchvision
        # repeats the edge pixel, grid_sample blends in its outside neighbour).
        ys, xs = top + k * h / size - 0.5, left + k * w / size - 0.5
        rows = (ys >= top) & (ys <= top + h - 1)
        cols = (xs >= left) & (xs <= left + w - 1)
        inside = rows[:, None] & cols[None, :]
        assert inside.sum() > 0
        torch.testing.assert_close(out[i][:, inside], ref[:, inside], atol=1e-5, rtol=0)


def test_crop_boxes_follow_scale_and_ratio():
    params = AugmentPolicy(crop_scale=(0.25, 0.25), crop_ratio=(1, 1)).sample_params(
        64, 16, 16, gen(0)
    )
    top, left, h, w = params["box"].T
    assert torch.all(h == 8) and torch.all(w == 8)
    assert torch.all((top >= 0) & (top <= 8) & (left >= 0) & (left <= 8))
    assert len(set(top.tolist())) > 1 and len(set(left.tolist())) > 1


def test_crop_falls_back_to_torchvisions_centre_crop():
    # Ratio 2 at full area never fits a square image: torchvision takes a centre crop of
    # full width and height width / 2.
    params = AugmentPolicy(crop_scale=(1, 1), crop_ratio=(2, 2)).sample_params(4, 16, 16, gen(0))
    assert params["box"].tolist() == [[4.0, 0.0, 8.0, 16.0]] * 4


def test_parameters_differ_within_a_batch():
    x = images(b=1).repeat(32, 1, 1, 1)  # one image, 32 times
    out = AugmentPolicy.simclr()(x, gen(0))
    distinct = {tuple(v.flatten()[:20].tolist()) for v in out}
    assert len(distinct) == 32
    params = AugmentPolicy.simclr().sample_params(256, 32, 32, gen(0))
    assert 0.4 < params["flip"].float().mean() < 0.6
    assert 0.7 < params["jitter"].float().mean() < 0.9
    assert 0.1 < params["gray"].float().mean() < 0.3
    assert len({tuple(o) for o in params["order"].tolist()}) > 10  # many of the 24 orders


@pytest.mark.parametrize(
    "ours, theirs, low, high",
    [
        (adjust_brightness, TF.adjust_brightness, 0.2, 1.8),
        (adjust_contrast, TF.adjust_contrast, 0.2, 1.8),
        (adjust_saturation, TF.adjust_saturation, 0.2, 1.8),
        (adjust_hue, TF.adjust_hue, -0.5, 0.5),
    ],
)
def test_colour_operations_match_torchvision_per_image(ours, theirs, low, high):
    x = images(b=6)
    factors = torch.linspace(low, high, 6)
    out = ours(x, factors)
    for i in range(len(x)):
        torch.testing.assert_close(out[i], theirs(x[i], factors[i].item()), atol=2e-6, rtol=0)


def test_colour_jitter_applies_each_images_own_order():
    x = images(b=2)
    factors = torch.tensor([[1.3, 0.6, 1.5, 0.2], [0.7, 1.4, 0.3, -0.3]])
    order = torch.tensor([[3, 0, 2, 1], [1, 2, 0, 3]])
    apply = torch.tensor([True, True])
    out = color_jitter(x, factors, order, apply, (0.8, 0.8, 0.8, 0.5))
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in range(2):
        ref = x[i]
        for op in order[i].tolist():
            ref = ops[op](ref, factors[i, op].item())
        torch.testing.assert_close(out[i], ref, atol=5e-6, rtol=0)
    # Images not selected for jitter come through untouched.
    untouched = color_jitter(x, factors, order, torch.tensor([False, True]), (0.8,) * 3 + (0.5,))
    assert torch.equal(untouched[0], x[0]) and torch.equal(untouched[1], out[1])


def test_one_channel_images_get_brightness_and_contrast_like_torchvision():
    x = images(b=8, c=1)
    # Full crop, no flip, always jitter and gray: what remains on one channel is torchvision's
    # ColorJitter, which changes brightness and contrast and leaves saturation and hue alone.
    policy = AugmentPolicy(
        crop_scale=(1, 1), crop_ratio=(1, 1), hflip=0.0, jitter=(0.8, 0.8, 0.8, 0.2), jitter_p=1.0
    )
    policy = AugmentPolicy(**{**policy.to_dict(), "grayscale_p": 1.0})
    params = policy.sample_params(len(x), x.shape[-2], x.shape[-1], gen(0))
    out = policy.apply(x, params)
    changed = 0
    for i in range(len(x)):
        ref = x[i]
        for op in params["order"][i].tolist():
            if op == 0:
                ref = TF.adjust_brightness(ref, params["factors"][i, 0].item())
            elif op == 1:
                ref = TF.adjust_contrast(ref, params["factors"][i, 1].item())
            elif op == 2:
                ref = TF.adjust_saturation(ref, params["factors"][i, 2].item())
            else:
                ref = TF.adjust_hue(ref, params["factors"][i, 3].item())
        torch.testing.assert_close(out[i], ref, atol=5e-6, rtol=0)
        changed += not torch.allclose(out[i], x[i])
    assert changed == len(x)  # the jitter really changed every image
    # Without jitter, only the (no-op) crop remains: grayscale does nothing to one channel.
    no_jitter = AugmentPolicy(**{**policy.to_dict(), "jitter_p": 0.0})
    torch.testing.assert_close(no_jitter(x, gen(0)), x, atol=1e-6, rtol=0)
    rgb = policy(images(c=3), gen(0))
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("channels", [1, 3])
def test_blur_matches_torchvision_per_image(kernel, channels):
    x = images(b=6, c=channels)
    sigma = torch.tensor([0.1, 0.4, 0.8, 1.2, 1.6, 2.0])
    out = gaussian_blur(x, sigma, kernel)
    for i in range(len(x)):
        ref = TF.gaussian_blur(x[i], [kernel, kernel], [sigma[i].item()] * 2)
        torch.testing.assert_close(out[i], ref, atol=1e-6, rtol=0)
    # By hand: a unit impulse keeps the square of the kernel's centre weight, which falls as
    # sigma grows (the kernel flattens towards a box).
    impulse = torch.zeros(len(sigma), 1, 9, 9)
    impulse[:, :, 4, 4] = 1
    offsets = torch.arange(kernel) - kernel // 2
    weights = torch.exp(-0.5 * (offsets / sigma.view(-1, 1)) ** 2)
    centre = (weights[:, kernel // 2] / weights.sum(dim=1)) ** 2
    blurred = gaussian_blur(impulse, sigma, kernel)[:, 0, 4, 4]
    torch.testing.assert_close(blurred, centre, atol=1e-6, rtol=0)
    assert torch.all(blurred[1:] < blurred[:-1])


def test_policy_blurs_the_images_it_draws_with_their_own_sigma():
    x = images(b=16, c=1)
    # Full crop, no flip, no jitter: blur is all that happens.
    policy = AugmentPolicy(
        crop_scale=(1, 1),
        crop_ratio=(1, 1),
        hflip=0.0,
        jitter_p=0.0,
        grayscale_p=0.0,
        blur_p=0.5,
        blur_sigma=(0.5, 2.0),
        blur_kernel=3,
    )
    params = policy.sample_params(len(x), 16, 16, gen(3))
    assert 0 < params["blur"].sum() < len(x)
    assert torch.all((params["sigma"] >= 0.5) & (params["sigma"] <= 2.0))
    out = policy.apply(x, params)
    for i in range(len(x)):
        if params["blur"][i]:
            ref = TF.gaussian_blur(x[i], [3, 3], [params["sigma"][i].item()] * 2)
        else:
            ref = x[i]
        torch.testing.assert_close(out[i], ref, atol=1e-6, rtol=0)


def test_a_policy_without_blur_draws_and_saves_what_it_did_before_blur():
    # Without blur nothing is drawn for it (a generator state gives the views it always gave)
    # and the dict has no blur fields (the encoders' keys are those of their policies' dicts).
    policy = AugmentPolicy.simclr()
    assert "blur" not in policy.sample_params(4, 16, 16, gen(0))
    assert not any(key.startswith("blur") for key in policy.to_dict())
    blurred = AugmentPolicy(**{**policy.to_dict(), "blur_p": 0.5})
    with_blur = blurred.sample_params(4, 16, 16, gen(0))
    without = policy.sample_params(4, 16, 16, gen(0))
    for key, value in without.items():
        assert torch.equal(with_blur[key], value)
    assert AugmentPolicy.from_dict(json.loads(json.dumps(blurred.to_dict()))) == blurred
    assert not blurred.is_identity


def test_presets_follow_the_notes():
    simclr = AugmentPolicy.simclr()
    assert simclr.jitter == (0.8, 0.8, 0.8, 0.2) and simclr.jitter_p == 0.8
    assert simclr.grayscale_p == 0.2 and simclr.crop_scale == (0.08, 1.0) and simclr.hflip == 0.5
    scripts = AugmentPolicy.unitmem_scripts()
    assert scripts.jitter == (0.9, 0.9, 0.9, 0.1) and scripts.jitter_p == 0.9
    assert scripts.grayscale_p == 0.1
    assert AugmentPolicy.supervised().jitter_p == 0 and AugmentPolicy.supervised().grayscale_p == 0
    assert math.isclose(AugmentPolicy().crop_ratio[0], 3 / 4)


@pytest.mark.parametrize("preset", ["simclr", "unitmem_scripts", "supervised", "identity"])
def test_dict_round_trip_through_json(preset):
    policy = getattr(AugmentPolicy, preset)()
    d = json.loads(json.dumps(policy.to_dict()))
    assert AugmentPolicy.from_dict(d) == policy
    assert AugmentPolicy.from_dict(d).to_dict() == d


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="crop_scale"):
        AugmentPolicy(crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="hflip"):
        AugmentPolicy(hflip=1.5)
    with pytest.raises(ValueError, match="hue"):
        AugmentPolicy(jitter=(0.4, 0.4, 0.4, 0.7))
    with pytest.raises(ValueError, match="unknown AugmentPolicy fields"):
        AugmentPolicy.from_dict({"crop": [0.1, 1]})
    with pytest.raises(TypeError, match="float"):
        AugmentPolicy.simclr()(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), gen(0))
    with pytest.raises(ValueError, match="B, C, H, W"):
        AugmentPolicy.simclr()(torch.zeros(1, 8, 8), gen(0))
    with pytest.raises(ValueError, match="blur_kernel must be an odd"):
        AugmentPolicy(blur_kernel=4)
    with pytest.raises(ValueError, match="blur_sigma"):
        AugmentPolicy(blur_sigma=(0.0, 1.0))
    with pytest.raises(ValueError, match="blur_p"):
        AugmentPolicy(blur_p=2.0)
    with pytest.raises(ValueError, match="larger than 4 pixels"):
        AugmentPolicy(blur_p=1.0, blur_kernel=9)(torch.rand(2, 1, 4, 4), gen(0))
