"""The encoder lists the result notebooks and the book's driver share
(memloc.experiments.encoders)."""

from __future__ import annotations

import math

import pytest

from memloc.experiments import encoders as E
from memloc.profiles import load_profile


def _defaults(name: str, profile: str = "quick") -> dict:
    """What the book's workflow passes for notebook ``name`` without --param: the profile
    alone, the encoder functions holding the notebook's defaults (nothing parses the cells)."""
    return {"profile": profile}


def test_t4_lists_the_resnet_and_vit_frameworks_at_their_sizes():
    requests = E.notebook_encoders("t4_frameworks", _defaults("t4_frameworks"))
    labels = [r.label for r in requests]
    resnet = load_profile("quick", experiment="t4").arch
    vit = load_profile("quick", experiment="t2").arch
    assert labels == [f"{resnet} simclr", f"{resnet} simsiam", f"{resnet} dino"] + [
        f"{vit} simclr",
        f"{vit} mae",
    ]
    assert all(r.pair and r.privacy is None for r in requests)
    assert requests[3].profile == load_profile("quick", experiment="t2")


def test_a_toy_twin_plans_the_encoders_of_its_profile():
    # The toy run must take the profile's paths: T4's frameworks, F3c's privacy targets.
    assert [r.label for r in E.t4_encoders("paper-toy")] == [
        r.label for r in E.t4_encoders("paper")
    ]
    assert [r.label for r in E.f3c_encoders("quick-toy")] == [
        r.label for r in E.f3c_encoders("quick")
    ]
    assert [r.label for r in E.f3c_encoders("cpu-toy")] == [r.label for r in E.f3c_encoders("cpu")]


def test_t4_at_paper_is_the_papers_resnet50_and_vit_base():
    labels = [r.label for r in E.t4_encoders("paper")]
    assert labels == [
        "resnet50 simclr",
        "resnet50 dino",
        "vit_base simclr",
        "vit_base dino",
        "vit_base mae",
    ]


def test_a5_one_pair_per_resnet_and_overrides_apply():
    requests = E.a5_encoders("quick", archs=["resnet18"], profile_overrides={"n_points": 7})
    assert [r.label for r in requests] == ["resnet18"]
    assert requests[0].profile.arch == "resnet18" and requests[0].profile.n_points == 7
    assert requests[0].profile == load_profile(
        "quick", experiment="a5", arch="resnet18", n_points=7
    )


def test_f3a_takes_the_offline_second_dataset_and_f_alone():
    requests = E.notebook_encoders("f3a_unitmem_datasets", _defaults("f3a_unitmem_datasets"))
    assert [r.label for r in requests] == ["digits", "fashion-mnist"]
    assert [r.profile.dataset for r in requests] == ["digits", "fashion-mnist"]
    assert not any(r.pair for r in requests)
    # Same recipe and sizes on both data sets: only what the data forces differs.
    a, b = (r.profile for r in requests)
    assert (a.arch, a.n_shared, a.n_candidate, a.epochs) == (
        b.arch,
        b.n_shared,
        b.n_candidate,
        b.epochs,
    )


def test_f3c_sorts_epsilons_and_ends_with_the_non_private_reference():
    requests = E.f3c_encoders("quick", epsilons=[16, 1], delta=1e-6)
    assert [r.epsilon for r in requests] == [1.0, 16.0, math.inf]
    assert [r.label for r in requests] == ["ε=1", "ε=16", "no DP"]
    assert requests[0].privacy.delta == 1e-6 and requests[-1].privacy is None
    assert len({r.profile for r in requests}) == 1 and not any(r.pair for r in requests)
    default = E.notebook_encoders("f3c_unitmem_privacy", _defaults("f3c_unitmem_privacy"))
    assert [r.epsilon for r in default] == [*E.F3C_QUICK_EPSILONS, math.inf]
    cpu = E.notebook_encoders("f3c_unitmem_privacy", _defaults("f3c_unitmem_privacy", "cpu"))
    assert [r.epsilon for r in cpu] == [*E.F3C_EPSILONS, math.inf]


def test_t2_refuses_a_resnet_and_unknown_notebooks_have_none():
    with pytest.raises(ValueError, match="T2 needs a ViT"):
        E.t2_encoders("quick", arch="resnet9")
    assert E.notebook_encoders("t1_layermem", {"profile": "quick"}) == []
    # Parameters a notebook's list does not take (out_dir, score, ...) are ignored.
    params = {**_defaults("t2_vit_sublayers"), "out_dir": "x", "score": "raw"}
    (request,) = E.notebook_encoders("t2_vit_sublayers", params)
    assert request.profile.arch.startswith("vit") and request.framework == "simclr"


def test_a7_declares_its_donor_as_the_notebook_trains_it():
    """The workflow trains A7's donor before the notebook runs (and a bundle carries it): the
    request's cache entry is the one the notebook's donor_encoder asks for."""
    from memloc.artifacts import encoder_spec
    from memloc.data import load_dataset
    from memloc.profiles import donor_profile
    from memloc.workflow import request_specs

    for profile, donor in (("quick", "fashion-mnist"), ("cpu", "digits")):
        (request,) = E.notebook_encoders("a7_swap_layers", {"profile": profile})
        assert not request.pair and request.label == f"donor on {donor}"
        (spec,) = request_specs(request)
        expected = donor_profile(load_profile(profile), donor, epochs=30)
        data = load_dataset(donor, "train", image_size=expected.image_size, resize="resize")
        notebook = encoder_spec(expected, "f", "simclr", n_total=len(data), in_channels=1)
        assert spec.entry_name == notebook.entry_name
    (request,) = E.a7_encoders("quick", donor_dataset="digits", donor_epochs=3)
    assert request.profile.dataset == "digits" and request.profile.epochs == 3
