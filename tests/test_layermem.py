"""SSLMem/LayerMem: known answers, the corrected scores, cross-fitting, errors, determinism."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from memloc.metrics import alignment, layermem
from memloc.models import create

POINTS = ["1", "2", "3", "4", "Res2", "5", "6", "7", "8", "Res6"]


def resnet9(seed=0, width=0.25):
    torch.manual_seed(seed)
    return create("resnet9", in_channels=1, width=width).eval()


def noise_policy(x, generator):
    return x + 0.1 * torch.randn(x.shape, generator=generator, device=x.device)


class Shift:
    """A deterministic 'policy': every call adds ``delta`` to every pixel."""

    def __init__(self, delta):
        self.delta = delta

    def __call__(self, x, generator):
        return x + self.delta


class Alternate:
    """Deterministic pairs: the first view of a pair adds ``delta``, the second subtracts it."""

    def __init__(self, delta):
        self.delta, self.calls = delta, 0

    def __call__(self, x, generator):
        self.calls += 1
        return x + self.delta if self.calls % 2 else x - self.delta


class Poly(nn.Module):
    """(B, 1) output alpha * s**2 + gamma * s of the pixel sum s."""

    def __init__(self, alpha, gamma):
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def forward(self, x):
        s = x.flatten(1).sum(1, keepdim=True).double()
        return (self.alpha * s**2 + self.gamma * s).float()


def poly_encoder(alpha, gamma):
    return nn.Sequential(OrderedDict(poly=Poly(alpha, gamma)))


def linear_encoder(weight):
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    lin.weight.data.copy_(weight)
    return nn.Sequential(OrderedDict(flat=nn.Flatten(), lin=lin, act=nn.ReLU()))


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(1)
    return {k: torch.rand(24, 1, 16, 16, generator=gen) for k in ("c", "i", "h")}


def test_identical_encoders_score_exactly_zero(data):
    f = resnet9()
    for g in (f, copy.deepcopy(f)):
        r = layermem(
            f,
            g,
            data["c"],
            k_aug=2,
            policy=noise_policy,
            heldout_images=data["h"],
            independent_images=data["i"],
            top_k=4,
        )
        assert r.table["layer"].tolist() == POINTS
        numeric = r.table.drop(columns=["layer", "kind", "contrast_t", "contrast_p"])
        assert (numeric.fillna(0).to_numpy() == 0).all()
        assert (r.points["sslmem_raw"] == 0).all() and (r.per_point.to_numpy() == 0).all()


def test_hand_computed_alignment_linear_encoder():
    weight = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    encoder = linear_encoder(weight)
    x = torch.rand(5, 1, 2, 2)
    # original variant: views x and x + 0.5, so the distance is 0.5 * ||W 1|| at the linear layer
    a = alignment(encoder, x, ["flat", "lin"], k_aug=3, policy=Shift(0.5), variant="original")
    assert torch.allclose(a["flat"], torch.full((5,), 0.5 * 2.0, dtype=torch.float64))
    expected = 0.5 * torch.linalg.norm(weight.sum(dim=1))
    assert torch.allclose(a["lin"], expected.double().expand(5), atol=1e-6)
    # views variant: x + 0.25 against x - 0.25
    a = alignment(encoder, x, ["lin"], k_aug=2, policy=Alternate(0.25))
    assert torch.allclose(a["lin"], expected.double().expand(5), atol=1e-6)


def test_layermem_is_normalised_difference_of_alignments(data):
    f, g = resnet9(0), resnet9(1)
    kwargs = dict(k_aug=2, policy=noise_policy, seed=3)
    r = layermem(f, g, data["c"], top_k=0, layers=["2", "Res6"], **kwargs)
    raw = {
        name: (ag - af).numpy()
        for (name, af), ag in zip(
            alignment(f, data["c"], ["2", "Res6"], **kwargs).items(),
            alignment(g, data["c"], ["2", "Res6"], **kwargs).values(),
            strict=True,
        )
    }
    for name, m in raw.items():
        row = r.table.set_index("layer").loc[name]
        assert row["layermem_raw"] == pytest.approx(m.mean(), rel=1e-5)
        assert row["range"] == pytest.approx(m.max() - m.min(), rel=1e-5)
        assert row["layermem"] == pytest.approx(m.mean() / (m.max() - m.min()), rel=1e-5)
        np.testing.assert_allclose(r.per_point[name], m / (m.max() - m.min()), rtol=1e-5)
    delta = r.table["layermem"].iloc[1] - r.table["layermem"].iloc[0]
    assert r.table["delta_layermem"].iloc[1] == pytest.approx(delta)
    assert np.isnan(r.table["delta_layermem"].iloc[0])


def test_contrast_and_calibration_cancel_a_constant_offset():
    # m(x) = align(g) - align(f) = -eps * (2 s D d + D^2 d^2) - gamma * D * d: the gamma term is
    # a constant f-vs-g offset that the contrast and the calibrated score must remove exactly.
    gen = torch.Generator().manual_seed(0)
    c, i, h = (torch.rand(12, 1, 2, 2, generator=gen) for _ in range(3))
    g = poly_encoder(1.0, 0.0)
    settings = dict(layers=["poly"], k_aug=2, policy=Shift(0.25), variant="original", top_k=0)
    tables = {}
    for gamma in (0.0, 3.0):
        f = poly_encoder(1.1, gamma)
        r = layermem(f, g, c, heldout_images=h, independent_images=i, **settings)
        tables[gamma] = r.table.iloc[0]
    offset = -3.0 * 4 * 0.25
    a, b = tables[0.0], tables[3.0]
    assert b["layermem_raw"] - a["layermem_raw"] == pytest.approx(offset, rel=1e-4)
    assert b["range"] == pytest.approx(a["range"], rel=1e-4)
    assert b["contrast"] == pytest.approx(a["contrast"], abs=1e-4)
    assert b["contrast_t"] == pytest.approx(a["contrast_t"], rel=1e-3)
    assert b["calibrated"] == pytest.approx(a["calibrated"], abs=1e-4)
    # Candidates scored against themselves as independents and held-out: exactly no effect.
    f = poly_encoder(1.1, 3.0)
    row = layermem(f, g, c, heldout_images=c, independent_images=c, **settings).table.iloc[0]
    assert row["layermem_raw"] < -2.5
    assert row["contrast"] == 0 and row["calibrated"] == 0


def test_cross_fitting_removes_selection_gap_on_pure_noise():
    # Every candidate is the same image: per-image scores differ by augmentation noise only,
    # so any Top/Least gap is selection bias. Ranking and scoring on the same draws shows a
    # large gap; cross-fitting must not.
    torch.manual_seed(0)
    f, g = linear_encoder(torch.randn(6, 16)), linear_encoder(torch.randn(6, 16))
    images = torch.rand(1, 1, 4, 4).expand(80, 1, 4, 4).contiguous()
    r = layermem(f, g, images, layers=["lin", "act"], k_aug=8, policy=noise_policy, top_k=10)
    long = r.points[r.points["layer"] == "act"]
    m = long["sslmem"].to_numpy()
    order = np.argsort(-m)
    naive_gap = m[order[:10]].mean() - m[order[-10:]].mean()
    row = r.table.set_index("layer").loc["act"]
    crossfit_gap = row["top_layermem"] - row["least_layermem"]
    assert naive_gap > 0.3
    assert abs(crossfit_gap) < 0.5 * naive_gap


def test_cross_fitted_top_k_formula(data):
    f, g = resnet9(0), resnet9(1)
    r = layermem(
        f,
        g,
        data["c"],
        layers=["3", "8"],
        k_aug=4,
        policy=noise_policy,
        top_k=5,
        heldout_images=data["h"],
    )
    for which, group, least_col in (
        ("candidate", "top_layermem", "least_layermem"),
        ("heldout", "heldout_top_layermem", "heldout_least_layermem"),
    ):
        pts = r.points[r.points["set"] == which]
        a = pts.pivot(index="point", columns="layer", values="sslmem_half_a")[["3", "8"]]
        b = pts.pivot(index="point", columns="layer", values="sslmem_half_b")[["3", "8"]]
        tops, leasts = [], []
        for rank, score in ((a, b), (b, a)):
            order = np.argsort(-rank["8"].to_numpy(), kind="stable")
            tops.append(score.to_numpy()[order[:5]].mean(axis=0))
            leasts.append(score.to_numpy()[order[-5:]].mean(axis=0))
        scale = r.table["range"].to_numpy()
        np.testing.assert_allclose(r.table[group], np.mean(tops, axis=0) / scale, rtol=1e-6)
        np.testing.assert_allclose(r.table[least_col], np.mean(leasts, axis=0) / scale, rtol=1e-6)


def test_same_seed_same_tables_and_batch_size_invariance(data):
    f, g = resnet9(0), resnet9(1)
    f.train()  # layermem measures in eval mode (BatchNorm running stats) and restores the mode
    kwargs = dict(k_aug=2, policy=noise_policy, top_k=4, layers=["1", "Res2", "Res6"])
    a = layermem(f, g, data["c"], seed=7, batch_size=64, **kwargs)
    b = layermem(f, g, data["c"], seed=7, batch_size=64, **kwargs)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.points, b.points)
    assert f.training and not g.training
    c = layermem(f, g, data["c"], seed=7, batch_size=5, **kwargs)
    pd.testing.assert_frame_equal(a.table, c.table, rtol=1e-4)
    d = layermem(f, g, data["c"], seed=8, batch_size=64, **kwargs)
    assert not np.allclose(a.table["layermem_raw"], d.table["layermem_raw"])


def test_scale_free_score_ignores_layer_scale():
    # g's layer outputs are f's times 3: the raw score sees a difference, the scale-free none.
    torch.manual_seed(0)
    weight = torch.randn(5, 16)
    f, g = linear_encoder(weight), linear_encoder(3 * weight)
    x = torch.rand(10, 1, 4, 4)
    r = layermem(f, g, x, layers=["lin"], k_aug=2, policy=noise_policy, top_k=0)
    row = r.table.iloc[0]
    assert row["layermem_raw"] > 0
    assert abs(row["scale_free"]) < 1e-5
    assert np.abs(r.points["sslmem_scale_free"]).max() < 1e-5


def test_result_helpers(data):
    f, g = resnet9(0), resnet9(1)
    r = layermem(
        f, g, data["c"], k_aug=2, policy=noise_policy, top_k=3, independent_images=data["i"]
    )
    pd.testing.assert_frame_equal(r.scores(), r.per_point, check_names=False)
    assert r.scores("independent", "sslmem_raw").shape == (24, 10)
    assert set(r.points["set"]) == {"candidate", "independent"}
    assert "cross-fitted" in repr(r)
    assert "heldout_offset" not in r.table and "contrast_t" in r.table


def test_mismatched_encoders_are_errors(data):
    x = data["c"][:4]
    with pytest.raises(ValueError, match="same architecture"):
        layermem(resnet9(), linear_encoder(torch.randn(2, 256)), x, policy=noise_policy, top_k=0)
    with pytest.raises(ValueError, match="configurations"):
        layermem(resnet9(), resnet9(width=0.5), x, policy=noise_policy, top_k=0)
    f = nn.Sequential(OrderedDict(flat=nn.Flatten(), lin=nn.Linear(256, 3)))
    g = nn.Sequential(OrderedDict(flat=nn.Flatten(), lin=nn.Linear(256, 4)))
    with pytest.raises(ValueError, match="different shapes"):
        layermem(f, g, x, policy=noise_policy, top_k=0, k_aug=1)


def test_bad_arguments(data):
    f, g, x = resnet9(0), resnet9(1), data["c"]
    with pytest.raises(ValueError, match="variant"):
        layermem(f, g, x, policy=noise_policy, variant="cosine")
    with pytest.raises(ValueError, match="k_aug >= 2"):
        layermem(f, g, x, policy=noise_policy, k_aug=1, top_k=3)
    with pytest.raises(ValueError, match="lower top_k"):
        layermem(f, g, x, policy=noise_policy, k_aug=2, top_k=13)
    with pytest.raises(ValueError, match="policy"):
        layermem(f, g, x, policy=None)
    with pytest.raises(KeyError, match="Res2"):
        layermem(f, g, x, policy=noise_policy, layers=["9"])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layermem(f, g, x[0], policy=noise_policy)


def _nan_from_layer_b(nan: bool):
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(flat=nn.Flatten(), a=nn.Linear(256, 8), b=nn.Linear(8, 4), c=nn.ReLU())
    )
    if nan:
        model.b.weight.data[0, 0] = float("nan")
    return model.eval()


def test_nan_outputs_are_refused_naming_the_first_layer(data):
    f, g = _nan_from_layer_b(True), _nan_from_layer_b(False)
    # Layer a is finite; b (and every layer after it) is NaN.
    with pytest.raises(ValueError, match="^f outputs NaN or inf at layer b "):
        layermem(f, g, data["c"], policy=noise_policy, k_aug=2, top_k=0)
    with pytest.raises(ValueError, match="^f and g outputs NaN or inf at layer b "):
        layermem(f, f, data["c"], policy=noise_policy, k_aug=2, top_k=0)
    table = layermem(g, g, data["c"], policy=noise_policy, k_aug=2, top_k=0).table
    assert np.isfinite(table["layermem_raw"]).all()


def test_float_images_outside_0_1_are_refused(data):
    from memloc.metrics import unitmem

    f = resnet9()
    x255 = data["c"] * 255  # 0-255 values in a float tensor
    with pytest.raises(ValueError, match=r"\[0, 1\], got values from .* to 25\d"):
        layermem(f, f, x255, policy=noise_policy, k_aug=2, top_k=0)
    with pytest.raises(ValueError, match="heldout_images must be float images in"):
        layermem(f, f, data["c"], policy=noise_policy, k_aug=2, heldout_images=-data["h"])
    with pytest.raises(ValueError, match="divide 0-255 images by 255"):
        unitmem(f, x255, k_aug=0)
    # uint8 images are read as x / 255, so the same pixels as uint8 are accepted.
    assert unitmem(f, x255.round().to(torch.uint8), k_aug=0).units.shape[0] > 0
