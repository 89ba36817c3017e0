# %% [markdown]
# # F2: ClassMem against UnitMem, unit by unit
#
# **The paper's claim:** in deep layers, units of a supervised (SL) encoder respond to whole
# classes more than to single images (ClassMem above UnitMem), while units of an SSL encoder
# respond to single images more than to classes (UnitMem above ClassMem).
#
# **What this notebook measures:** for every unit of every measurement point of the SSL
# encoder f (SimCLR) and the SL encoder f (cross-entropy, same architecture), UnitMem over N
# candidate images and ClassMem over the classes of the same N images (their true labels).
# The same two scores of the architecture at random initialisation show what the comparison
# gives without any learning.
#
# **Variants.** UnitMem as the paper defines it ($\mu_{-\max}$ = mean of the other images,
# parameter `rest`), over K augmented views with the SSL encoder's training augmentations
# for every encoder. ClassMem the same ratio over class means; as in the authors' scripts its
# activations are read from the unaugmented images (`classmem_k_aug = 0`). Both are raw
# scores. UnitMem compares N images and ClassMem only C classes, each the mean of about N/C
# images, so the two have different baselines: a unit can score UnitMem > ClassMem without
# learning anything. The random-initialisation control shows that baseline, and the SSL vs SL
# comparison of UnitMem − ClassMem, which the paper's claim is really about, does not depend
# on it.

# %%
from IPython.display import Markdown

from memloc.experiments import units as U
from memloc.figures import scatter_classmem_unitmem
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"  # the SSL framework; the SL baseline is always "supervised"
classmem_k_aug = 0
rest = "mean"
out_dir = "book/results/cpu/f2_classmem_vs_unitmem"

# %%
res = Result.start(out_dir, profile, profile_overrides)
ssl_pair, sl_pair = U.ssl_sl_pairs(profile, framework, **profile_overrides)
ssl, sl = U.ssl_sl_unitmem(ssl_pair, sl_pair, rest=rest)
scores = U.classmem_scores(ssl_pair, sl_pair, ssl, sl, k_aug=classmem_k_aug)
res.table(scores, "classmem_unitmem_per_unit")
layers, n = ssl.layers, ssl.config["n_points"]
Markdown(
    res.describe(
        ssl_pair,
        f"{U.candidate_classes_sentence(ssl_pair, n)}; UnitMem with K = {ssl.config['k_aug']} "
        f"views, ClassMem with K = {classmem_k_aug} (0: unaugmented). "
        + U.deep_layers_sentence(U.deep_layers(layers)),
        others={"SL": sl_pair},
    )
)

# %% [markdown]
# ## Did the encoders learn, and did the SSL pair memorize?
#
# **Learned**: f's linear probe (fitted on the split's downstream images, scored on the test split)
# significantly above the untrained twin's, for the SSL and the SL encoder. **Memorized** (SSL
# pair): some layer's S_C-vs-S_I contrast of LayerMem is significant after Holm over the layers
# (T1's measurement of the same pair, cached). It is LayerMem's contrast rather than UnitMem's
# excess over its controls: an independent measurement, so the gate does not reuse what the claims
# test. Each claim depends on the encoders it is about: the SSL-vs-SL claim on both, the SL claim on
# the SL encoder having learned, the SSL claim on the SSL pair having learned and memorized. A claim
# whose encoders fail is *not testable here*.

# %%
checks = U.ssl_sl_checks(ssl_pair, sl_pair)
Markdown(res.check(checks))

# %% [markdown]
# ## Every unit: ClassMem (x) against UnitMem (y)
#
# Above the diagonal a unit favours single images, below it whole classes.

# %%
title = "ClassMem vs UnitMem per unit (candidates, true labels)"
res.figure(scatter_classmem_unitmem(scores, hue="model", title=title), "classmem_vs_unitmem")

# %% [markdown]
# ## Per-layer means
#
# `difference` = UnitMem − ClassMem, averaged over the units of the layer (defined units
# only).

# %%
res.table(U.classmem_means(scores, layers), "means")

# %% [markdown]
# ## Tests
#
# Per layer: a paired one-sided t-test over the units of each encoder (SSL: UnitMem >
# ClassMem; SL: ClassMem > UnitMem), and a one-sided Welch test of the difference
# UnitMem − ClassMem between the SSL and the SL units (SSL larger).

# %%
tests = U.classmem_unitmem_tests(scores, layers)
res.table(tests, "tests", digits=4)

# %% [markdown]
# ## Verdict
#
# Each claim is about every deep layer: an intersection–union test, whose p-value is the
# largest per-layer one-sided p-value and whose statistic the smallest per-layer t. The three
# p-values of this page are then Holm-adjusted together (the verdicts use the adjusted ones).

# %%
res.claims(*U.classmem_claims(tests, checks))
Markdown(res.verdicts(U.classmem_note(tests)))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(**ssl.config, classmem_k_aug=classmem_k_aug))
