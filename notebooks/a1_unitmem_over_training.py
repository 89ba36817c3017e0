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
import json
import time

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.book import provenance, record_claim
from memloc.experiments import units as U
from memloc.figures import MODEL_COLORS, new_figure, save_figure, save_table
from memloc.profiles import merge_overrides
from memloc.regime import check_pair
from memloc.stats import holm, spearman_trend

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
start = time.time()
# None keeps the profile's value.
overrides = merge_overrides(
    profile_overrides, dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug
)
pair = encoder_pair(profile, framework, progress=False, **overrides)
p = pair.profile
layer = layer or U.last_conv_layer(pair.f)
per_unit = U.unitmem_over_training(pair, layer=layer, rest=rest)
save_table(per_unit, out_dir, "unitmem_per_unit")
epochs = sorted(per_unit["epoch"].unique())
Markdown(
    f"Profile `{p.name}`: {p.dataset}, {p.arch} (width {p.width}), {framework}, "
    f"{p.epochs} epochs. Layer {layer}; epochs measured: {', '.join(map(str, epochs))} "
    f"(0 = initialisation). N = {p.n_points} images per set, K = {p.k_aug} views."
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
save_table(both, out_dir, "unitmem_over_training")
table = both.assign(value=U.format_ci(both)).pivot(index="epoch", columns="set", values="value")
table["defined units"] = summary[summary["set"] == "candidates"].set_index("epoch")["n"]
table[["candidates", "held-out", "excess", "defined units"]]

# %%
fig, axes = new_figure(2, width=4.6, height=3.4)
ax = axes[0, 0]
for name, color in (("candidates", MODEL_COLORS["SSL"]), ("held-out", MODEL_COLORS["held-out"])):
    part = summary[summary["set"] == name]
    ax.plot(part["epoch"], part["mean"], marker="o", color=color, label=name)
    ax.fill_between(part["epoch"], part["low"], part["high"], color=color, alpha=0.2)
ax.set(xlabel="epoch (0 = initialisation)", ylabel=f"mean UnitMem, layer {layer}")
ax.set_title("UnitMem over training (95% CI)")
ax.legend(fontsize=8)
ax = axes[0, 1]
ax.plot(excess_summary["epoch"], excess_summary["mean"], marker="o", color=MODEL_COLORS["SSL"])
ax.fill_between(
    excess_summary["epoch"],
    excess_summary["low"],
    excess_summary["high"],
    color=MODEL_COLORS["SSL"],
    alpha=0.2,
)
ax.axhline(0, color="0.3", lw=0.8)
ax.set(xlabel="epoch (0 = initialisation)", ylabel="candidates − held-out")
ax.set_title("Excess over the held-out control")
if max(epochs) / max(min(e for e in epochs if e > 0), 1) > 20:
    for a in axes[0]:
        a.set_xscale("symlog", linthresh=1)
save_figure(fig, out_dir, "unitmem_over_training")
display(fig)

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
# One family per page: Holm over its two claims.
p_trend, p_excess = holm([trend.pvalue, trend_excess.pvalue])
holm_note = "; Holm over the page's 2 claims"
entries = [
    record_claim(
        out_dir,
        result="A1",
        claim=f"UnitMem of layer {layer} rises during training",
        test=f"Spearman rho of mean UnitMem vs epoch ({len(cand)} epochs), one-sided" + holm_note,
        statistic=trend.statistic,
        p_value=p_trend,
        holds=trend.statistic > 0,
        profile=profile,
        testable=check.testable,
        reason=check.reason,
    ),
    record_claim(
        out_dir,
        result="A1",
        claim=f"the excess of layer {layer}'s UnitMem over held-out images rises during training",
        test="Spearman rho of mean (candidates − held-out) UnitMem vs epoch, one-sided" + holm_note,
        statistic=trend_excess.statistic,
        p_value=p_excess,
        holds=trend_excess.statistic > 0,
        profile=profile,
        testable=check.testable,
        reason=check.reason,
    ),
]
first, final = cand.iloc[0], cand.iloc[-1]
Markdown(
    ("" if check.testable else f"*{check.reason}*\n\n")
    + U.verdict_markdown(entries)
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
info = provenance(
    profile=profile,
    profile_overrides=profile_overrides,
    encoder_hashes=pair.hashes,
    layer=layer,
    epochs=[int(e) for e in epochs],
    n_points=p.n_points,
    k_aug=p.k_aug,
    rest=rest,
    wall_time_s=round(time.time() - start, 1),
)
Markdown("```json\n" + json.dumps(info, indent=2, default=str) + "\n```")
