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
import numpy as np
import pandas as pd
from IPython.display import Markdown

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import over_training_plot
from memloc.regime import check_pair
from memloc.result import Result
from memloc.stats import spearman_trend

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
dataset = None
arch = None
framework = "simclr"
seed = None
n_points = None
k_aug = None
layer = None  # None: the last convolution layer ("8" for ResNet9)
rest = "mean"
out_dir = "book/results/cpu/a1_unitmem_over_training"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug)
pair = encoder_pair(profile, framework, progress=False, **overrides)
p = pair.profile
layer = layer or U.last_conv_layer(pair.f)
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
# Memorization rising over training says nothing when the trained f learned or memorized
# nothing. **Learned**: f's linear probe (fitted on the split's downstream images, scored on
# the test split) above the untrained twin's. **Memorized**: some layer's S_C-vs-S_I contrast
# of LayerMem is significant after Holm over the layers (T1's measurement of the same pair,
# cached), an independent measurement rather than the UnitMem excess tested below.
# Otherwise the claims are *not testable here*.

# %%
check = check_pair(pair)
Markdown(check.markdown)

# %% [markdown]
# ## Mean UnitMem per epoch
#
# Mean over the layer's defined units with a 95% bootstrap confidence interval over units.
# `excess` is the mean over units of UnitMem on the candidates minus UnitMem of the same unit
# on held-out images.

# %%
summary = U.mean_with_ci(per_unit, ["epoch", "set"])
excess = U.excess_per_unit(per_unit)
excess_summary = U.mean_with_ci(excess, ["epoch"], value="excess")
both = pd.concat([summary, excess_summary.assign(set="excess")], ignore_index=True)
res.table(both, "unitmem_over_training")
table = both.assign(value=U.format_ci(both)).pivot(index="epoch", columns="set", values="value")
table["defined units"] = summary[summary["set"] == "candidates"].set_index("epoch")["n"]
res.table(table[["candidates", "held-out", "excess", "defined units"]], index=True)

# %%
res.figure(over_training_plot(summary, excess_summary, layer), "unitmem_over_training")

# %% [markdown]
# ## Verdict
#
# Spearman's ρ of the mean UnitMem (candidates) against the epoch, one-sided (rising), over
# all measured epochs including the initialisation; and the same for the excess over the
# held-out control. With few epochs the p-value cannot be small even for a perfect ordering
# (with 5 epochs the smallest possible one-sided p is 1/120). The two p-values are
# Holm-adjusted together (the verdicts use the adjusted ones).

# %%
cand = summary[summary["set"] == "candidates"]
trend = spearman_trend(cand["mean"], cand["epoch"], alternative="greater")
trend_excess = spearman_trend(
    excess_summary["mean"], excess_summary["epoch"], alternative="greater"
)
res.claims(
    dict(
        claim=f"UnitMem of layer {layer} rises during training",
        test=f"Spearman rho of mean UnitMem vs epoch ({len(cand)} epochs), one-sided",
        statistic=trend.statistic,
        p_value=trend.pvalue,
        holds=trend.statistic > 0,
    ),
    dict(
        claim=f"the excess of layer {layer}'s UnitMem over held-out images rises during training",
        test="Spearman rho of mean (candidates − held-out) UnitMem vs epoch, one-sided",
        statistic=trend_excess.statistic,
        p_value=trend_excess.pvalue,
        holds=trend_excess.statistic > 0,
    ),
    testable=check.testable,
    reason=check.reason,
)
first, final = cand.iloc[0], cand.iloc[-1]
Markdown(
    ("" if check.testable else f"*{check.reason}*\n\n")
    + res.verdicts()
    + f"\n\nMean UnitMem went from {first['mean']:.3f} at initialisation to "
    f"{final['mean']:.3f} at epoch {int(final['epoch'])} (held-out images: "
    f"{summary[summary['set'] == 'held-out']['mean'].iloc[-1]:.3f}). "
    + (
        f"The largest mean was reached at epoch {int(cand.loc[cand['mean'].idxmax(), 'epoch'])}."
        if not np.isclose(cand["mean"].max(), final["mean"])
        else "The last epoch has the largest mean."
    )
    + " The poster gives no numbers for this figure; compare the shape."
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        encoder_hashes=pair.hashes,
        layer=layer,
        epochs=[int(e) for e in epochs],
        n_points=p.n_points,
        k_aug=p.k_aug,
        rest=rest,
    )
)
