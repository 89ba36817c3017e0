"""Profiles load, override and reject unknown names and keys."""

import pytest

from memloc.profiles import (
    SIZE_KEYS,
    available_profiles,
    experiment_names,
    load_profile,
    profile_names,
)


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


def test_experiment_tables_override_the_profile_and_the_call_overrides_them():
    from memloc.profiles import experiment_names

    assert {"t2", "t4", "a5", "f3c"} <= set(experiment_names("cpu"))
    cpu, t2 = load_profile("cpu"), load_profile("cpu", experiment="t2")
    assert (t2.name, t2.arch, t2.patch_size) == ("cpu", "vit_tiny", 8)
    assert (t2.n_shared, t2.n_candidate, t2.n_independent) == (500, 500, 500)
    assert t2.crop_scale == cpu.crop_scale  # keys the table does not name stay the profile's
    assert load_profile("cpu", experiment="t2", epochs=7).epochs == 7
    # An experiment without a table runs at the profile's sizes; a Profile object takes one too.
    assert load_profile("cpu", experiment="t1") == cpu
    assert load_profile(cpu, experiment="f3c") == load_profile("cpu", experiment="f3c")


def test_optional_keys_default_and_are_typed():
    p = load_profile("quick")
    assert (p.patch_size, p.norm) == (4, "batch")
    assert load_profile("quick", patch_size="2").patch_size == 2
    assert load_profile("quick", experiment="f3c").norm == "group"


def test_a_misspelt_key_in_an_experiment_table_is_an_error(tmp_path, monkeypatch):
    import memloc.profiles as profiles

    text = profiles.PROFILE_FILE.read_text() + "\n[quick.experiments.bad]\nepoch = 3\n"
    (tmp_path / "profiles.toml").write_text(text)
    monkeypatch.setattr(profiles, "PROFILE_FILE", tmp_path / "profiles.toml")
    with pytest.raises(KeyError, match="epoch"):
        load_profile("quick", experiment="bad")


@pytest.mark.parametrize("profile", profile_names())
@pytest.mark.parametrize("experiment", ["f3a", "f3c"])
def test_unitmem_experiments_keep_enough_held_out_images(profile, experiment):
    # UnitMem's controls compare N candidates with N held-out images.
    p = load_profile(profile, experiment=experiment)
    assert p.n_heldout >= p.n_points and p.n_candidate >= p.n_points


def test_paper_f3a_fits_stl10(monkeypatch):
    from memloc import profiles

    # STL10's labelled training split has 5,000 images; the data set itself is not offline.
    monkeypatch.setattr(profiles, "load_dataset", lambda *a, **k: range(5000))
    base = load_profile("paper", experiment="f3a")
    stl = profiles.dataset_profile(base, "stl10")
    assert (stl.n_shared, stl.n_candidate, stl.n_heldout) == (3000, 1000, 1000)
    assert stl.n_shared + stl.n_candidate + stl.n_heldout <= 5000


# --- sizes from the data (split_shares, the profile "auto") -------------------------------------


def test_split_shares_give_sizes_from_the_number_of_images():
    from memloc.profiles import fit_to_data

    p = load_profile("quick", split_shares=[0.4, 0.2, 0.2, 0.2, 0.0])
    fitted = fit_to_data(p, 360)
    # floor(share * 360): 144 / 72 / 72 / 72 / 0.
    sizes = (fitted.n_shared, fitted.n_candidate, fitted.n_independent, fitted.n_heldout)
    assert sizes == (144, 72, 72, 72) and fitted.n_downstream == 0
    # n_points follows S_C and H (quick asks 150), top_k half of it at most (quick asks 20),
    # and batch_size at most half of f's 216 training images (quick asks 64).
    assert (fitted.n_points, fitted.top_k, fitted.batch_size) == (72, 20, 64)
    tiny = fit_to_data(p, 60)  # 24 / 12 / 12 / 12
    assert (tiny.n_points, tiny.top_k, tiny.batch_size) == (12, 6, 18)
    # A profile of fixed sizes is left alone, whatever the data.
    assert fit_to_data(load_profile("quick"), 360) == load_profile("quick")


def test_split_shares_below_the_minimum_say_how_many_images_are_needed():
    from memloc.profiles import fit_to_data

    p = load_profile("quick", split_shares=[0.4, 0.2, 0.2, 0.2, 0.0])
    with pytest.raises(ValueError, match=r"n_candidate = 8, below its minimum of 10.*at least 50"):
        fit_to_data(p, 40)


@pytest.mark.parametrize(
    "shares", [[0.5, 0.5, 0.5, 0.0, 0.0], [0.4, 0.2, 0.2], [0.4, -0.1, 0.2, 0.2, 0.0]]
)
def test_bad_split_shares_are_refused(shares):
    with pytest.raises(ValueError, match="split_shares must be 5 non-negative shares"):
        load_profile("quick", split_shares=shares)


def test_auto_is_the_cpu_recipe_with_shares_and_resizing():
    from memloc.profiles import AUTO_SHARES

    auto, cpu = load_profile("auto"), load_profile("cpu")
    assert auto.split_shares == AUTO_SHARES and auto.resize == "resize"
    same = ("arch", "width", "epochs", "lr", "batch_size", "k_aug", "image_size", "crop_scale")
    assert all(getattr(auto, key) == getattr(cpu, key) for key in same)
    assert load_profile("auto", dataset="imagefolder:/x").dataset == "imagefolder:/x"
    # The fixed-size profiles' dicts (hashed by the book) do not gain the key.
    assert "split_shares" not in cpu.to_dict() and "split_shares" in auto.to_dict()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("crop_scale", 0.5, r"crop_scale must be a list, got 0.5 \(e.g. crop_scale=\[0.5,1.0\]\)"),
        ("crop_scale", [0.5, 1.5], "crop_scale must be a pair"),
        ("epochs", "abc", "profile key epochs must be an integer, got 'abc'"),
        ("epochs", 2.5, "profile key epochs must be an integer"),
        ("lr", "fast", "profile key lr must be a number"),
        ("dataset", 3, "profile key dataset must be a string"),
    ],
)
def test_override_of_the_wrong_type_names_the_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        load_profile("quick", **{key: value})


@pytest.mark.parametrize("name", profile_names())
def test_every_profile_has_a_toy_twin_of_the_same_structure(name):
    full, toy = load_profile(name), load_profile(name + "-toy")
    assert toy.name == name + "-toy" and toy.description.endswith("(a check of the workflow)")
    same = ("dataset", "arch", "image_size", "resize", "crop_scale", "jitter", "norm", "lr")
    assert [getattr(toy, k) for k in same] == [getattr(full, k) for k in same]
    for key in SIZE_KEYS:  # an empty part stays empty, every other part is small
        assert (getattr(toy, key) == 0) == (getattr(full, key) == 0), key
        assert getattr(toy, key) <= 48
    assert toy.epochs == toy.supervised_epochs == 2 and toy.width <= 0.125
    assert toy.n_points <= toy.n_candidate and 2 * toy.top_k <= toy.n_points
    # The experiments' own tables keep what they change: F3c's held-out images, T2's ViT.
    for experiment in experiment_names(name):
        big = load_profile(name, experiment=experiment)
        small = load_profile(name + "-toy", experiment=experiment)
        assert (small.arch, small.norm, small.dataset) == (big.arch, big.norm, big.dataset)
        assert [getattr(small, k) == 0 for k in SIZE_KEYS] == [
            getattr(big, k) == 0 for k in SIZE_KEYS
        ], experiment
    assert name + "-toy" in available_profiles()
    with pytest.raises(KeyError, match="unknown profile 'nothing-toy'"):
        load_profile("nothing-toy")


# --- a framework's own recipe (the profile key recipes) --------------------------------------


def test_a_recipe_changes_its_frameworks_training_and_arguments_only():
    from memloc.artifacts import encoder_spec
    from memloc.models import create
    from memloc.ssl import create_framework
    from memloc.train import TrainConfig

    plain = load_profile("quick")
    tuned = load_profile("quick", recipes={"dino": {"optimizer": "sgd", "lr": 0.03, "out_dim": 16}})
    dino = encoder_spec(tuned, "f", "dino", n_total=2000, in_channels=1)
    assert TrainConfig(**dino.train).optimizer == "sgd" and dino.train["lr"] == 0.03
    framework = create_framework(
        "dino", create(dino.arch, **dino.arch_kwargs), **dino.framework_kwargs
    )
    assert framework.head.prototypes.out_features == 16
    assert dino.key != encoder_spec(plain, "f", "dino", n_total=2000, in_channels=1).key
    # Every other framework's encoder is the one the profile trains without the recipe.
    for name in ("simclr", "simsiam", "supervised"):
        keys = {encoder_spec(p, "g", name, n_total=2000, in_channels=1).key for p in (plain, tuned)}
        assert len(keys) == 1, name
    # The profiles without recipes keep their dicts (the book hashes them).
    assert "recipes" not in plain.to_dict() and "recipes" in tuned.to_dict()
    # Profiles key the book's encoder requests: equal ones hash alike, recipes or not.
    assert len({tuned, tuned.replace(epochs=tuned.epochs), plain}) == 2


@pytest.mark.parametrize(
    "recipes, message",
    [
        ({"byol": {}}, "recipes names an unknown framework 'byol'; known: .*'simsiam'"),
        ({"dino": {"momentum": 0.9}}, r"recipes.dino has unknown setting\(s\) \['momentum'\]"),
        ({"simsiam": {"optimizer": "lamb"}}, "recipes.simsiam.optimizer must be one of"),
        ({"dino": 3}, "recipes.dino must be a table of settings"),
        ("sgd", "profile key recipes must be a table"),
    ],
)
def test_bad_recipes_are_refused_with_what_is_valid(recipes, message):
    with pytest.raises(ValueError, match=message):
        load_profile("quick", recipes=recipes)


def test_a_toy_twin_keeps_its_experiments_recipes(tmp_path, monkeypatch):
    from memloc import profiles

    table = tmp_path / "profiles.toml"
    text = profiles.PROFILE_FILE.read_text()
    table.write_text(
        text + '\n[quick.experiments.t4.recipes.simsiam]\noptimizer = "sgd"\nlr = 0.03\n'
    )
    monkeypatch.setattr(profiles, "PROFILE_FILE", table)
    for name in ("quick", "quick-toy"):
        p = load_profile(name, experiment="t4")
        assert p.recipe("simsiam") == ({"optimizer": "sgd", "lr": 0.03}, {}), name


def test_a_cosine_schedule_reaches_the_training_and_constant_keeps_the_keys():
    from memloc.artifacts import encoder_spec
    from memloc.train import TrainConfig

    def spec(**keys):
        return encoder_spec(load_profile("quick", **keys), "f", n_total=2000, in_channels=1)

    assert TrainConfig(**spec(lr_schedule="cosine").train).lr_schedule == "cosine"
    assert "lr_schedule" not in spec().train and spec(lr_schedule="constant").key == spec().key
    tuned = spec(recipes={"simclr": {"lr_schedule": "cosine"}})
    assert tuned.train["lr_schedule"] == "cosine"
    with pytest.raises(ValueError, match=r"lr_schedule must be one of \['constant', 'cosine'\]"):
        load_profile("quick", recipes={"dino": {"lr_schedule": "step"}})


def test_blur_reaches_the_ssl_views_and_no_blur_keeps_the_keys():
    from memloc.artifacts import encoder_spec
    from memloc.augment import AugmentPolicy

    def spec(framework="simclr", **keys):
        profile = load_profile("quick", **keys)
        return encoder_spec(profile, "f", framework, n_total=2000, in_channels=1)

    blurred = AugmentPolicy.from_dict(spec(blur_p=0.5, blur_sigma=[0.2, 1.0]).policy)
    assert (blurred.blur_p, blurred.blur_sigma, blurred.blur_kernel) == (0.5, (0.2, 1.0), 3)
    assert AugmentPolicy.from_dict(spec("dino", blur_p=0.5).policy).blur_p == 0.5
    # The supervised baseline and MAE keep their own views.
    assert spec("supervised", blur_p=0.5).key == spec("supervised").key
    assert spec("mae", blur_p=0.5).key == spec("mae").key
    # Without blur neither the profile's dict nor an encoder's key changes.
    assert "blur_p" not in load_profile("quick").to_dict()
    assert spec(blur_p=0.0, blur_sigma=[0.5, 1.0]).key == spec().key
    assert spec(blur_p=0.5).key != spec().key


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"blur_p": 0.5, "blur_kernel": 4}, "blur_kernel must be an odd positive int"),
        ({"blur_p": 1.5}, r"blur_p is a probability"),
        ({"blur_sigma": [2.0, 1.0]}, "blur_sigma must satisfy"),
    ],
)
def test_bad_blur_keys_are_refused(keys, message):
    with pytest.raises(ValueError, match=message):
        load_profile("quick", **keys)
