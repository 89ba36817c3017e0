# %% [markdown]
# # F3c: UnitMem under differential privacy
#
# **The paper's claim.** Training with DP-SGD lowers UnitMem, the more the stronger the privacy
# (smaller ε), but does not remove it: units still memorize single images.
#
# **What this notebook measures.** UnitMem of the last conv layer of encoders f trained with
# DP-SGD at several ε (δ = 1e-5) and of the same encoder trained without privacy, each on N of
# its candidates, beside the book's controls (the same layer at random initialisation on the
# same images, and f on N held-out images).
#
# How memloc trains privately (the methods chapter has the details): SimSiam, whose loss is a
# sum of per-image terms, so that clipping each image's gradient bounds its influence; the
# SimCLR of the paper is refused because NT-Xent makes every image a negative of every other,
# so per-image clipping would bound nothing and the ε would not hold. BatchNorm is replaced by
# GroupNorm (BatchNorm mixes the images of a batch), in the private encoders **and** in the
# non-private reference, so that only DP-SGD differs between them. The unit of privacy is one
# training image; Opacus's RDP accountant sets the noise for the asked ε over the whole run.
# The paper also trains a private ViT-Base: `arch="vit_base"` (or `vit_tiny` on a CPU) runs
# this notebook on a ViT, whose LayerNorm needs no replacing, with UnitMem of its last MLP
# layer.
#
# Sizes: at the `cpu` profile a GroupNorm ResNet9 at width 0.5 trained 20 epochs (batch 128)
# on |S_S| = |S_C| = 500 (the profile file's `f3c` table). DP-SGD runs at 60 images per second
# on one core at width 0.5 (25 at width 1), against 154 for the same SimSiam without privacy.

# %%
import math

import numpy as np
from IPython.display import Markdown, display
from scipy import stats

from memloc.experiments import architectures as ax
from memloc.experiments import units as U
from memloc.experiments.encoders import f3c_encoders
from memloc.figures import unitmem_distributions
from memloc.regime import check_pair, quality_table
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
dataset = None  # None: the profile's data set
arch = None  # None: the profile's (ResNet9 with GroupNorm); or a ViT
framework = "simsiam"  # a framework DP-SGD can train: simsiam or supervised
epsilons = None  # the private encoders' targets; None: 1, 4, 16, 64 (1, 16 at `quick`)
delta = 1e-5
max_grad_norm = 1.0
seed = None  # seed of the views; None: the profile's seed
n_points = None  # N candidates and N held-out images; None: the profile's (f3c table)
k_aug = None  # augmentations per image; None: the profile's
rest = "mean"  # "mean": the paper's UnitMem; "median": the authors' scripts
quantile = 0.95  # a unit memorizes above this quantile of the random-init units
out_dir = "book/results/cpu/f3c_unitmem_privacy"

# %%
res = Result.start(out_dir, profile, profile_overrides)
requests = f3c_encoders(
    profile,
    epsilons=epsilons,
    framework=framework,
    dataset=dataset,
    arch=arch,
    delta=delta,
    max_grad_norm=max_grad_norm,
    n_points=n_points,
    k_aug=k_aug,
    profile_overrides=profile_overrides,
)
p = requests[0].profile
targets = [request.epsilon for request in requests]  # ascending, then the non-private ∞
pairs, results = {}, {}
random = None
for request, eps in zip(requests, targets, strict=True):
    pairs[eps] = request.get()
    # The same initialisation for every encoder: the random-init control is measured once.
    results[eps] = U.unitmem_with_controls(pairs[eps], rest=rest, seed=seed, random=random)
    random = results[eps].random
accounting = ax.privacy_accounting(pairs)
layer = U.last_conv_layer(pairs[targets[0]].f)
res.table(accounting, "privacy_accounting")
config = results[targets[-1]].config
display(
    Markdown(
        res.describe(
            pairs[targets[0]],
            f"f3c sizes, {'LayerNorm' if p.arch.startswith('vit') else 'GroupNorm'}, "
            f"{p.epochs} epochs, expected batch {p.batch_size}, on |S_S| = {p.n_shared} + "
            f"|S_C| = {p.n_candidate} images. UnitMem of layer `{layer}`, N = "
            f"{config['n_points']}, K = {config['k_aug']}, rest = `{rest}`. The privacy each "
            "encoder spent (∞: the non-private reference):",
        )
    )
)
res.table(accounting)

# %% [markdown]
# ## UnitMem per ε
#
# Mean UnitMem of layer 8 on f's candidates, on held-out images, at random initialisation;
# the excess over each control (Welch, one-sided) and the share of units above the
# random-initialisation quantile.

# %%
summary, units = ax.unitmem_by_epsilon(results, random, layer, quantile)
res.table(summary, "unitmem_by_epsilon", digits=4)

# %%
res.figure(
    unitmem_distributions(units, hue="encoder", title="UnitMem per layer and privacy level"),
    "unitmem_by_epsilon",
)

# %% [markdown]
# ## Did the encoders learn?
#
# Every encoder's f beside the untrained network of the same architecture: linear-probe and
# kNN accuracy on the split's downstream images, scored on the test split. The claims are
# about memorization that DP-SGD lowers in an encoder that is otherwise useful, so they are
# *not testable here* unless the **non-private** reference learned (its probe above the
# untrained twin's). The private encoders are shown, not required to pass: losing accuracy
# is what DP-SGD costs.

# %%
labels = {eps: "non-private" if math.isinf(eps) else f"ε = {eps:g}" for eps in pairs}
quality = quality_table({labels[eps]: pair for eps, pair in pairs.items()})
res.table(quality.rename_axis("encoder").reset_index(), "encoder_quality")
display(res.table(quality, index=True))
reference_check = check_pair(pairs[targets[-1]], memorized=False, name="non-private")
Markdown(reference_check.markdown)

# %% [markdown]
# ## Verdicts
#
# 1. **Stronger privacy lowers UnitMem.** Spearman's ρ between the privacy level (ε in
#    increasing order, the non-private encoder last) and the UnitMem of every unit of layer 8,
#    one-sided for UnitMem growing with ε; and it must hold at the extremes: the smallest ε
#    below the non-private encoder (Welch, one-sided, reported beside).
# 2. **Without removing it.** At the smallest ε, UnitMem of layer 8 still exceeds both
#    controls (the smaller excess; p is the larger of the two one-sided Welch p-values).
#
# Both claims are about memorization that DP-SGD lowers, so they can only be tested where the
# **non-private** encoder memorizes: its layer-8 UnitMem on its candidates must exceed the
# same units on held-out images (Welch, one-sided, p < 0.05), and learned (above). Where it
# does not, both verdicts are recorded as *not testable here*, and the numbers are shown all
# the same. (f trains alone here, so there is no g for LayerMem's S_C-vs-S_I check: the
# held-out excess of UnitMem stands in for it.) The two p-values are Holm-adjusted together
# (the verdicts use the adjusted ones).

# %%
reference = summary.iloc[-1]  # the non-private encoder
memorizes = bool(reference["heldout_excess"] > 0 and reference["heldout_p"] < 0.05)
reasons = []
if not memorizes:
    reasons.append(
        f"the non-private encoder does not memorize at layer {layer} (UnitMem on its "
        f"candidates minus held-out images {reference['heldout_excess']:+.4f}, one-sided "
        f"p = {reference['heldout_p']:.3g}), so there is no memorization for DP-SGD to lower"
    )
if not reference_check.testable:
    reasons.append(
        "non-private " + reference_check.reason.removeprefix("Not testable here: ").rstrip(".")
    )
testable = not reasons
untestable = ("Not testable here: " + "; ".join(reasons) + ".") if reasons else ""
lay = units[(units["layer"] == layer) & units["defined"] & units["eps"].notna()]
rank = lay["eps"].rank(method="dense")
trend = stats.spearmanr(rank, lay["unitmem"], alternative="greater")
lowest, private = lay[lay["eps"] == targets[0]], lay[np.isinf(lay["eps"])]
ends = stats.ttest_ind(
    private["unitmem"], lowest["unitmem"], equal_var=False, alternative="greater"
)
strongest = summary.iloc[0]
remain_p = max(strongest["random_p"], strongest["heldout_p"])
# One family per page: Holm over its two claims.
v1, v2 = res.claims(
    dict(
        claim="Stronger privacy (smaller ε) lowers UnitMem",
        test=f"Spearman rho of layer-{layer} UnitMem per unit against the privacy level "
        f"(ε = {', '.join(f'{e:g}' for e in targets[:-1])}, non-private), one-sided; holds if "
        "the non-private mean exceeds the smallest ε's",
        statistic=float(trend.statistic),
        p_value=float(trend.pvalue),
        holds=bool(private["unitmem"].mean() > lowest["unitmem"].mean()),
    ),
    dict(
        claim="DP-SGD does not remove unit memorization",
        test=f"layer-{layer} UnitMem at ε = {targets[0]:g} vs random init and vs held-out "
        "images, Welch one-sided (statistic: the smaller excess, p: the larger p)",
        statistic=float(strongest["excess"]),
        p_value=float(remain_p),
        holds=bool(strongest["excess"] > 0),
    ),
    testable=testable,
    reason=untestable,
)
in_private = lay[~np.isinf(lay["eps"])]
private_trend = stats.spearmanr(in_private["eps"].rank(method="dense"), in_private["unitmem"])
Markdown(
    ("" if testable else f"*{untestable}*\n\n")
    + f"**The non-private reference** {'memorizes' if memorizes else 'does not memorize'} "
    f"at layer `{layer}`: UnitMem on its candidates exceeds the same units on held-out "
    f"images by {reference['heldout_excess']:+.4f} (p = {reference['heldout_p']:.3g}); "
    f"over random initialisation by {reference['random_excess']:+.4f}.\n\n"
    f"Among the private encoders alone, ρ of UnitMem against ε is "
    f"{private_trend.statistic:+.3f} (two-sided p = {private_trend.pvalue:.3g}).\n\n"
    f"**Privacy lowers UnitMem ({v1['verdict']}).** ρ = {trend.statistic:+.3f} over "
    f"{len(lay)} units (p = {trend.pvalue:.3g}, Holm {v1['p_value']:.3g}). "
    f"Mean UnitMem of layer `{layer}`: "
    + ", ".join(f"{r['encoder']} {r['mean']:.3f}" for _, r in summary.iterrows())
    + f"; non-private minus ε = {targets[0]:g}: "
    f"{private['unitmem'].mean() - lowest['unitmem'].mean():+.3f} "
    f"(Welch t = {ends.statistic:.2f}, p = {ends.pvalue:.3g}).\n\n"
    f"**Not removed ({v2['verdict']}).** At ε = {targets[0]:g}, the excess over random "
    f"initialisation is {strongest['random_excess']:+.3f} (p = {strongest['random_p']:.3g}) "
    f"and over held-out images {strongest['heldout_excess']:+.3f} "
    f"(p = {strongest['heldout_p']:.3g})."
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        framework=framework,
        encoder_hashes={f"{e:g}": pair.hashes for e, pair in pairs.items()},
        privacy=accounting.to_dict("records"),
        unitmem=config,
    )
)
