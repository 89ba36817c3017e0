# %% [markdown]
# # F3a: UnitMem of the last conv layer on different data sets
#
# **The paper's claim.** How many units of the last conv layer memorize single images depends
# on the data: UnitMem of ResNet9 (SimCLR) trained on SVHN, CIFAR-10 and STL10 differs with the
# complexity of the data set.
#
# **What this notebook measures.** UnitMem of layer 8 (the last conv layer) of a SimCLR f
# trained on each data set with the same recipe and the same |S_S| and |S_C|, on N of its
# candidates, beside the book's two controls (the same layer at random initialisation on the
# same images, and f on N held-out images). A unit "memorizes" here when its UnitMem exceeds
# the 95th percentile of the random-initialisation units on the same data. The CPU data sets
# are Fashion-MNIST and scikit-learn's digits (8×8 digits resized to 32×32: the simpler
# data); the paper's SVHN, CIFAR-10 and STL10 run at the `paper` profile (they must be
# downloadable there), with |S_S| = 3,000 and |S_C| = 1,000 on each: the sizes STL10's 5,000
# labelled training images allow.
#
# Sizes: at the `cpu` profile T4's sizes (|S_S| = |S_C| = 500, 100 epochs; the Fashion-MNIST
# f is T4's SimCLR f). UnitMem follows the paper's definition (`rest="mean"`).

# %%
from IPython.display import Markdown

from memloc.experiments import architectures as ax
from memloc.experiments import units as U
from memloc.experiments.encoders import f3a_encoders
from memloc.figures import unitmem_distributions
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
# None: SVHN, CIFAR-10, STL10 at `paper`; else the profile's and the other offline one
datasets = None
framework = "simclr"
seed = None  # seed of the views; None: the profile's seed
rest = "mean"  # "mean": the paper's UnitMem; "median": the authors' scripts
quantile = 0.95  # a unit memorizes above this quantile of the random-init units
out_dir = "book/results/cpu/f3a_unitmem_datasets"

# %%
res = Result.start(out_dir, profile, profile_overrides)
requests = f3a_encoders(
    profile, datasets=datasets, framework=framework, profile_overrides=profile_overrides
)
pairs, results = U.unitmem_of_requests(requests, rest=rest, seed=seed)
datasets = list(pairs)
pair, first, base = pairs[datasets[0]], results[datasets[0]].config, requests[0].profile
layer = U.last_conv_layer(pair.f)
Markdown(
    res.describe(
        pair,
        f"f3a sizes, {base.epochs} epochs on |S_S| = {base.n_shared}, |S_C| = "
        f"{base.n_candidate}; UnitMem of layer `{layer}` on N = {first['n_points']} images, "
        f"K = {first['k_aug']}, rest = `{rest}`.",
        others=pairs,
    )
)

# %% [markdown]
# ## UnitMem of the last conv layer per data set
#
# Per data set: mean UnitMem of f on its candidates, of f on held-out images and of the random
# initialisation, the excess over each control (Welch, one-sided) and the share of units above
# the random-initialisation quantile.

# %%
summary, units = ax.unitmem_by_dataset(results, layer, quantile)
res.table(summary, "unitmem_last_layer", digits=4)

# %%
title = f"UnitMem of layer {layer}"
by_dataset = unitmem_distributions(units.assign(layer=units["dataset"]), hue="encoder", title=title)
res.figure(by_dataset, "unitmem_by_dataset")

# %% [markdown]
# ## Did the encoders learn?
#
# Each data set's f beside the untrained network of the same architecture: linear-probe and kNN
# accuracy on that data set's images outside f's training set, scored on its test split. A count of
# memorizing units of an encoder that learned nothing says nothing about how the data shape
# memorization, so the claim is *not testable here* unless every f's probe is significantly above
# its untrained twin's. (f is trained alone on most data sets, so there is no g for the S_C-vs-S_I
# check; the random-initialisation control stands in for it below.)

# %%
checks = {name: check_pair(pair, memorized=False, name=name) for name, pair in pairs.items()}
Markdown(res.check(checks))

# %% [markdown]
# ## Verdict
#
# Does the share of memorizing units differ between the data sets? A test of the (above,
# not above) counts: Fisher's exact test for two data sets, a χ² test of independence for
# more (two-sided: the claim is that the data change it, not in which direction). Beside it,
# the Kolmogorov–Smirnov distance between the UnitMem distributions of the first two data sets.

# %%
(verdict,) = res.claims(U.dataset_share_claim(summary, layer, quantile))
note = U.dataset_share_note(verdict, summary, units, layer, quantile)
Markdown(note if res.testable else f"*{res.reason}*\n\n{note}")

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(framework=framework, unitmem=first))
