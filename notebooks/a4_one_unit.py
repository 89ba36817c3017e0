# %% [markdown]
# # A4: planting memorization in one unit
#
# **The paper's claim:** UnitMem detects memorization where it is put. If a single unit is
# trained to memorize a single image, UnitMem rises for that unit only, and the unit's
# strongest response ($\mu_{\max}$) moves to that image. The paper shows this for a unit
# with high and a unit with low UnitMem of a SimSiam ResNet18.
#
# **What this notebook measures.** In the last convolution layer of the SSL encoder f
# (`layer`; ResNet9's layer 8), we take the defined unit with the highest UnitMem and the one
# with the lowest. One of f's N candidate images is drawn with the seed. It is never the
# $\mu_{\max}$ image of either unit, so a $\mu_{\max}$ that lands on it is a change. Each unit
# is then trained on that image alone, following the authors' scripts (NOTES §3.5). The
# whole layer is fine-tuned on SimCLR's objective for views of the image, with a fresh
# projection head, and every other unit of the layer is restored to its original parameters.
# UnitMem of every unit of the layer is measured before and after, on the same N candidates
# (the planted image is one of them) with the same K views.
#
# **Variant.** We use the profile's SimCLR ResNet9 instead of the paper's SimSiam ResNet18:
# the book has no SimSiam encoders, and the intervention is the same for any self-supervised
# objective. UnitMem as the paper defines it (`rest = mean`). BatchNorm keeps its running
# statistics during the training (`memloc.interventions.train_one_unit`).
#
# **What is by construction and what is measured.** The other units of the layer keep their
# parameters, and their inputs come from layers nobody trained. Their activations, and hence
# their UnitMem, cannot change. The notebook checks this numerically, which checks the
# intervention itself. The measured part is the trained unit: whether training on one image
# raises its UnitMem (it could also fall, or leave the unit dead), and whether its
# $\mu_{\max}$ moves to the planted image. The rank p-value (the share of the layer's units
# whose change is at least the trained unit's, 1/n at best) is valid under exchangeability of
# the units. Here it mostly confirms that the change is positive and exceeds the other units'
# exact zeros.
#
# **What the training objective asks for.** With a single image, SimCLR's negatives are the
# other views of that same image. The loss rewards telling the views apart as much as
# recognising the image. Nothing in it asks the unit to respond to this image more than to
# others. Whether it plants image-specific memorization anyway is what the measurement shows.
# The parameter `negatives = True` runs the other natural reading: each batch holds the image
# once and other candidate images as the negatives, so its term is the one it has in
# ordinary training (`train_one_unit(..., negatives=...)`). In a trial at the `quick` profile
# neither reading raised the high unit's UnitMem or moved its $\mu_{\max}$ to the image.
# The paper's SimSiam objective has no negatives at all.

# %%
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import interventions as I
from memloc.experiments import units as U
from memloc.figures import image_gallery, planted_activations, planted_unit_panels
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
rest = "mean"
layer = None  # None: the last convolution layer ("8" for ResNet9)
views = 32  # pairs of views of the image per training step
steps = 50  # Adam steps
lr = 1e-3
negatives = False  # True: the rest of each batch is other candidates (SimCLR's usual negatives)
image_seed = 0  # draws the planted image
out_dir = "book/results/cpu/a4_one_unit"

# %%
res = Result.start(out_dir, profile, profile_overrides)
pair = encoder_pair(profile, framework, progress=False, **profile_overrides)
p, layer = pair.profile, layer or U.last_conv_layer(pair.f)
before = I.candidate_unitmem(pair, rest=rest)
units = I.extreme_units(before, layer)
image = I.planted_image(before, layer, list(units.values()), seed=image_seed)
planted = I.plant_units(
    pair,
    before,
    layer,
    units,
    image,
    rest=rest,
    views=views,
    steps=steps,
    lr=lr,
    negatives=negatives,
)
Markdown(
    res.describe(
        pair,
        f"Layer {layer} ({len(before.units[before.units['layer'] == layer])} units); "
        f"N = {p.n_points} candidates, K = {p.k_aug} views, rest = `{rest}`. High-UnitMem "
        f"unit: {units['high']}, low-UnitMem unit: {units['low']}; planted image: candidate "
        f"{image}. Training: {steps} Adam steps (lr {lr}) on {views} pairs of views per step"
        + (", the image once and other candidates as the rest of the batch." if negatives else "."),
    )
)

# %% [markdown]
# ## UnitMem before and after, per unit

# %%
changes = I.planted_changes(planted)
res.table(changes, "unitmem_before_after")
summary = I.planted_summaries(planted)
res.table(summary.reset_index(), "summary")
display(res.table(summary.drop(columns=["layer"]), index=True))

# %%
res.figure(planted_unit_panels(changes, planted, layer), "unitmem_before_after")

# %% [markdown]
# ## Where the trained unit's maximum sits
#
# The trained unit's mean activation $\mu_u(x)$ on each of the N images, before and after.
# The planted image is marked. Its rank among the N images (1 = $\mu_{\max}$) is in the
# summary table above.

# %%
res.figure(planted_activations(planted, layer), "mu_per_image")

# %%
images, titles = I.planted_gallery(pair, planted)
res.figure(image_gallery(images, titles, ncols=len(titles), size=1.6), "images")

# %% [markdown]
# ## Did the encoder learn?
#
# Planting one image in one unit of an encoder that learned nothing says little about the paper's
# encoders, so the claims are *not testable here* unless f's linear probe (fitted on the split's
# downstream images, scored on the test split) is significantly above its untrained twin's. f's own
# memorization of its candidates is shown but not required: the experiment plants the memorization
# it then looks for.

# %%
Markdown(res.check(check_pair(pair, memorized=False)) + I.memorization_reference(pair))

# %% [markdown]
# ## Verdict
#
# For each trained unit, two claims:
#
# 1. Its UnitMem rises, and only its UnitMem changes. The statistic is its change, the p-value
#    is the rank p among the layer's defined units, and the check is a positive change with
#    no other unit moving by more than 1e-9.
# 2. Its $\mu_{\max}$ moves to the planted image. This is a plain check. The statistic is the
#    planted image's rank by the unit's mean activation after training, where 1 means it is
#    $\mu_{\max}$.
#
# The rank p-values of the first claim (one per trained unit) are Holm-adjusted together (the
# verdicts use the adjusted ones).

# %%
res.claims(*I.planted_claims(planted), family="rank tests")
Markdown(res.verdicts(I.planted_note(planted)))

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        layer=layer,
        units=units,
        planted_image=image,
        n_points=p.n_points,
        k_aug=p.k_aug,
        rest=rest,
        views=views,
        steps=steps,
        lr=lr,
    )
)
