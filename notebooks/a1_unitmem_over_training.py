# %% [markdown]
# # A1: UnitMem over training
#
# **The paper's claim:** the UnitMem of the last convolution layer of an SSL encoder rises as
# training goes on.
#
# **What this notebook measures:** UnitMem of every unit of layer 8 (ResNet9's last
# convolution block; parameter `layer`) of the SSL encoder f at each epoch whose weights the
# profile keeps (`snapshot_epochs`), on N of its candidate images. Epoch 0 is f's
# initialisation (the encoder cache seeds f before training, so the architecture at random
# initialisation with the training seed *is* f at epoch 0): the random-initialisation
# control. At every epoch the same units are also measured on N held-out images f never
# sees, the second control: what rises there too is not memorization of the training
# images.
#
# The paper marks the end of its learning-rate warm-up on this figure. Our recipe (Adam at a
# constant learning rate, NOTES §1) has no warm-up, so there is nothing to mark.
#
# **Variant.** UnitMem as the paper defines it (`rest = mean`), K views of the SSL encoder's
# training augmentations; raw UnitMem, with the held-out control beside it and its excess.

# %%
from IPython.display import Markdown

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import over_training_plot
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
layer = None  # None: the last convolution layer ("8" for ResNet9)
rest = "mean"
out_dir = "book/results/cpu/a1_unitmem_over_training"

# %%
res = Result.start(out_dir, profile, profile_overrides)
pair = encoder_pair(profile, framework, progress=False, **profile_overrides)
p, layer = pair.profile, layer or U.last_conv_layer(pair.f)
per_unit = U.unitmem_over_training(pair, layer=layer, rest=rest)
res.table(per_unit, "unitmem_per_unit")
epochs = sorted(per_unit["epoch"].unique())
Markdown(
    res.describe(
        pair,
        f"{p.epochs} epochs. Layer {layer}; epochs measured: {', '.join(map(str, epochs))} "
        f"(0 = initialisation). N = {p.n_points} images per set, K = {p.k_aug} views.",
    )
)

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# Memorization rising over training says nothing when the trained f learned or memorized nothing.
# **Learned**: f's linear probe (fitted on the split's downstream images, scored on the test split)
# significantly above the untrained twin's. **Memorized**: some layer's S_C-vs-S_I contrast of
# LayerMem is significant after Holm over the layers (T1's measurement of the same pair, cached), an
# independent measurement rather than the UnitMem excess tested below. Otherwise the claims are *not
# testable here*.

# %%
Markdown(res.check(check_pair(pair)))

# %% [markdown]
# ## Mean UnitMem per epoch
#
# Mean over the layer's defined units with a 95% bootstrap confidence interval over units.
# `excess` is the mean over units of UnitMem on the candidates minus UnitMem of the same unit
# on held-out images.

# %%
curves = U.over_training_curves(per_unit)
res.table(curves, "unitmem_over_training")
res.table(U.over_training_table(curves), index=True)

# %%
res.figure(over_training_plot(curves, layer), "unitmem_over_training")

# %% [markdown]
# ## Verdict
#
# Spearman's ρ of the mean UnitMem (candidates) against the epoch, one-sided (rising), over
# all measured epochs including the initialisation; and the same for the excess over the
# held-out control. With few epochs the p-value cannot be small even for a perfect ordering
# (with 5 epochs the smallest possible one-sided p is 1/120). The two p-values are
# Holm-adjusted together (the verdicts use the adjusted ones).

# %%
res.claims(*U.over_training_claims(curves, layer))
Markdown(
    res.verdicts(
        U.over_training_note(curves) + " The poster gives no numbers for this figure; compare "
        "the shape."
    )
)

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(layer=layer, epochs=[int(e) for e in epochs], n_points=p.n_points, rest=rest))
