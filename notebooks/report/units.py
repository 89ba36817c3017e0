# %% [markdown]
# # UnitMem of your encoder, with its two controls
#
# **What this page measures.** UnitMem (Wang et al., 2024, §3.2) of every unit of one encoder
# f, on N of the images it trained on (the candidates S_C of the split), beside two controls:
# the same units on N images f never saw (**held-out**), and the same architecture at a
# seeded random initialisation on the candidates (**random init**). UnitMem alone cannot say
# that f memorized: a random encoder has units that prefer one image too. The part of f's
# UnitMem that neither control explains, per layer, is the evidence. Then the images that
# give the most units their μ_max, and, when the data have at least two classes, ClassMem
# beside UnitMem per unit (a unit that responds to a whole class scores high on ClassMem).
#
# The `memloc report` command runs this page for your checkpoint (and T1's LayerMem page when
# you also give g); the analyses are those of the book's F1, A3 and F2 pages, for one encoder.

# %%
from IPython.display import Markdown, display

from memloc.artifacts import checkpoint_pair, encoder_pair
from memloc.experiments import units as U
from memloc.figures import image_gallery, scatter_classmem_unitmem, unitmem_distributions
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "auto"
profile_overrides = {}  # profile keys for every encoder, e.g. {"dataset": "imagefolder:DIR"}
checkpoints = {}  # {"f": path, "g": path, "arch": name, "arch_kwargs": {}}; {}: the cache's
framework = "simclr"  # the cached pair to read when no checkpoints are given
seed = None  # seed of the views (None: the profile's)
n_points = None  # N images per set (None: the profile's)
k_aug = None  # views per image (None: the profile's; 0: the images themselves)
rest = "mean"  # "mean" (paper) or "median" (the authors' scripts)
top_fraction = 0.1  # share of each layer's units shown as its top units
classmem_k_aug = 0  # ClassMem's views per image, 0 as in the authors' scripts
out_dir = "book/results/report/units"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(seed=seed, n_points=n_points, k_aug=k_aug)
if checkpoints:
    pair = checkpoint_pair(profile, checkpoints, framework, **overrides)
else:
    pair = encoder_pair(profile, framework, progress=False, **overrides)
p = pair.profile
controls = U.unitmem_with_controls(pair, rest=rest)
n, layers = controls.config["n_points"], controls.layers
Markdown(
    f"Data set `{p.dataset}` ({len(pair.dataset)} training images, {len(pair.dataset.classes)} "
    f"classes), encoder `{pair.f.arch}` ({'your checkpoint' if checkpoints else 'the cache'}). "
    f"N = {n} candidates and {n} held-out images, K = {controls.config['k_aug']} views, "
    f"rest = `{rest}`, {len(layers)} measurement points: {', '.join(layers)}."
)

# %% [markdown]
# ## Did f learn?
#
# f's linear probe and kNN on its pooled features, beside its untrained twin (the random-init
# control), fitted on training images outside the candidates and scored on the test split.
# When f is no better than its twin, what follows describes an encoder that learned nothing.

# %%
Markdown(check_pair(pair, memorized=False, name="f").markdown)

# %% [markdown]
# ## UnitMem per layer and its controls

# %%
long = controls.long()
fig = unitmem_distributions(
    long, hue="label", kind="box", title="UnitMem per layer: f and its controls"
)
res.figure(fig, "unitmem_distributions")

# %% [markdown]
# Per layer: mean UnitMem of f's defined units, the controls' means, f's excess over each with
# a one-sided Welch p-value over the units, and `excess`, the smaller of the two excesses. The
# last column adjusts the larger of the two p-values (both controls must be beaten) by Holm over
# the layers. The per-unit table (`unitmem_per_unit.csv`) holds every unit's scores.

# %%
excess = U.excess_over_both_controls(controls)
res.table(excess, "unitmem_excess")
res.table(controls.per_unit(), "unitmem_per_unit")
display(res.table(excess.drop(columns="model"), digits=4))
Markdown(U.beyond_controls_sentence(excess))

# %% [markdown]
# ## The images behind the most selective units
#
# μ_max is the image a unit responds to most. Per candidate: how many defined units (all
# layers) have it as their μ_max, and in how many of the top units (the `top_fraction` with the
# highest UnitMem per layer). Images that dominate many units are the ones f singled out.

# %%
images_table = U.mu_max_images(pair, controls, top_fraction)
res.table(images_table, "mu_max_images")
shown = images_table[images_table["units"] > 0].head(20)
fig = image_gallery(
    pair.images("candidate", n)[list(shown["image"])],
    [f"{u} units ({t} top)" for u, t in zip(shown["units"], shown["top_units"], strict=True)],
    ncols=10,
    size=1.25,
    title="Candidates that give the most units their μ_max",
)
display(res.figure(fig, "mu_max_images"))
display(res.table(shown.head(10)))

# %% [markdown]
# ## ClassMem beside UnitMem
#
# ClassMem replaces the single image by a class: a unit that fires for one class scores high.
# Units above the diagonal prefer single images, below it whole classes. It needs labels of at
# least two classes (an image folder's class sub-folders).

# %%
scores = U.classmem_of_f_and_random(pair, controls, k_aug=classmem_k_aug, rest=rest)
if scores is None:
    display(Markdown("*One class among the candidates: ClassMem needs at least two.*"))
else:
    res.table(scores, "classmem_per_unit")
    fig = scatter_classmem_unitmem(scores, hue="model", title="ClassMem vs UnitMem per unit")
    display(res.figure(fig, "classmem_vs_unitmem"))
    display(res.table(U.unitmem_minus_classmem(scores, layers), digits=4, index=True))

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        encoder_hashes=pair.hashes,
        checkpoints=pair.checkpoints,
        arch=pair.f.arch,
        n_points=n,
        k_aug=controls.config["k_aug"],
        rest=rest,
    )
)
