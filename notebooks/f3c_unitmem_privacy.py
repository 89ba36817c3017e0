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
# The paper also trains a private ViT-Base: the profile key `arch=vit_base` (`--param
# arch=vit_base`, or `vit_tiny` on a CPU) runs this notebook on a ViT, whose LayerNorm needs
# no replacing, with UnitMem of its last MLP layer.
#
# Sizes: at the `cpu` profile a GroupNorm ResNet9 at width 0.5 trained 20 epochs (batch 128)
# on |S_S| = |S_C| = 500 (the profile file's `f3c` table). DP-SGD runs at 60 images per second
# on one core at width 0.5 (25 at width 1), against 154 for the same SimSiam without privacy.

# %%
from IPython.display import Markdown, display

from memloc.experiments import architectures as ax
from memloc.experiments import units as U
from memloc.experiments.encoders import f3c_encoders
from memloc.figures import unitmem_distributions
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simsiam"  # a framework DP-SGD can train: simsiam or supervised
epsilons = None  # the private encoders' targets; None: 1, 4, 16, 64 (1, 16 at `quick`)
delta = 1e-5
max_grad_norm = 1.0
seed = None  # seed of the views; None: the profile's seed
rest = "mean"  # "mean": the paper's UnitMem; "median": the authors' scripts
quantile = 0.95  # a unit memorizes above this quantile of the random-init units
out_dir = "book/results/cpu/f3c_unitmem_privacy"

# %%
res = Result.start(out_dir, profile, profile_overrides)
dp = dict(epsilons=epsilons, delta=delta, max_grad_norm=max_grad_norm)
requests = f3c_encoders(profile, framework=framework, profile_overrides=profile_overrides, **dp)
# ε ascending, then the non-private ∞; every encoder has the same initialisation, so the
# random-init control is measured once.
pairs, results = U.unitmem_of_requests(
    requests, key="epsilon", rest=rest, seed=seed, share_random=True
)
targets, p = list(pairs), requests[0].profile
accounting = ax.privacy_accounting(pairs)
layer, config = U.last_conv_layer(pairs[targets[0]].f), results[targets[-1]].config
res.table(accounting, "privacy_accounting")
display(
    Markdown(
        res.describe(
            pairs[targets[0]],
            f"f3c sizes, {'LayerNorm' if p.arch.startswith('vit') else 'GroupNorm'}, "
            f"{p.epochs} epochs, expected batch {p.batch_size}, on |S_S| = {p.n_shared} + "
            f"|S_C| = {p.n_candidate} images. UnitMem of layer `{layer}`, N = "
            f"{config['n_points']}, K = {config['k_aug']}, rest = `{rest}`. The privacy each "
            "encoder spent (∞: the non-private reference):",
            others={f"{eps:g}": pair for eps, pair in pairs.items()},
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
summary, units = ax.unitmem_by_epsilon(results, results[targets[0]].random, layer, quantile)
res.table(summary, "unitmem_by_epsilon", digits=4)

# %%
title = "UnitMem per layer and privacy level"
res.figure(unitmem_distributions(units, hue="encoder", title=title), "unitmem_by_epsilon")

# %% [markdown]
# ## Did the encoders learn?
#
# Every encoder's f beside the untrained network of the same architecture: linear-probe and kNN
# accuracy on the split's downstream images, scored on the test split. The claims are about
# memorization that DP-SGD lowers in an encoder that is otherwise useful, so they are *not testable
# here* unless the **non-private** reference learned (its probe significantly above the untrained
# twin's). The private encoders are shown, not required to pass: losing accuracy is what DP-SGD
# costs.

# %%
quality = U.privacy_quality(pairs)
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
testable, reason = U.privacy_testability(summary, reference_check, layer)
claims = U.privacy_claims(summary, units, layer)
entries = res.claims(*claims, testable=testable, reason=reason)
Markdown(U.privacy_note(summary, units, layer, entries, reason))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(framework=framework, privacy=accounting.to_dict("records"), unitmem=config))
