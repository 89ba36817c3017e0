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
import pandas as pd
from IPython.display import Markdown

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import scatter_classmem_unitmem
from memloc.regime import check_pair, combine_checks
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
dataset = None
arch = None
framework = "simclr"  # the SSL framework; the SL baseline is always "supervised"
seed = None
n_points = None
k_aug = None
classmem_k_aug = 0
rest = "mean"
out_dir = "book/results/cpu/f2_classmem_vs_unitmem"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug)
ssl_pair = encoder_pair(profile, framework, progress=False, **overrides)
sl_pair = encoder_pair(profile, "supervised", progress=False, **overrides)
p = ssl_pair.profile
ssl = U.unitmem_with_controls(ssl_pair, rest=rest)
sl = U.unitmem_with_controls(sl_pair, rest=rest, random=ssl.random)
layers, deep, n = ssl.layers, U.deep_layers(ssl.layers), ssl.config["n_points"]
images, labels = ssl_pair.images("candidate", n), ssl_pair.labels("candidate", n)
init = U.initial_encoder(p, ssl_pair.dataset.channels)
kw = dict(k_aug=classmem_k_aug, policy=U.unitmem_policy(p), rest=rest, seed=p.seed)
scores = pd.concat(
    [
        U.classmem_beside_unitmem(ssl_pair.f, images, labels, ssl.trained, model="SSL", **kw),
        U.classmem_beside_unitmem(sl_pair.f, images, labels, sl.trained, model="SL", **kw),
        U.classmem_beside_unitmem(init, images, labels, ssl.random, model="random init", **kw),
    ],
    ignore_index=True,
)
res.table(scores, "classmem_unitmem_per_unit")
sizes = labels.bincount()[labels.bincount() > 0]
Markdown(
    res.describe(
        ssl_pair,
        f"N = {n} candidates in {len(sizes)} classes ({int(sizes.min())}–{int(sizes.max())} "
        f"images per class); UnitMem with K = {ssl.config['k_aug']} views, ClassMem with "
        f"K = {classmem_k_aug} (0: unaugmented). Deep layers (fixed in advance: the half after "
        f"the first residual connection): {', '.join(deep)}.",
    )
)

# %% [markdown]
# ## Did the encoders learn, and did the SSL pair memorize?
#
# **Learned**: f's linear probe (fitted on the split's downstream images, scored on the test
# split) above the untrained twin's, for the SSL and the SL encoder. **Memorized** (SSL pair):
# some layer's S_C-vs-S_I contrast of LayerMem is significant after Holm over the layers (T1's
# measurement of the same pair, cached). It is LayerMem's contrast rather than UnitMem's
# excess over its controls: an independent measurement, so the gate does not reuse what the
# claims test. Each claim depends on the encoders it is about: the SSL-vs-SL claim on both,
# the SL claim on the SL encoder having learned, the SSL claim on the SSL pair having learned
# and memorized. A claim whose encoders fail is *not testable here*.

# %%
checks = {
    "SSL": check_pair(ssl_pair, name="SSL"),
    "SL": check_pair(sl_pair, memorized=False, name="SL"),
}
testable_both, reason_both = combine_checks(checks)
Markdown("\n\n".join(c.markdown for c in checks.values()))

# %% [markdown]
# ## Every unit: ClassMem (x) against UnitMem (y)
#
# Above the diagonal a unit favours single images, below it whole classes.

# %%
res.figure(
    scatter_classmem_unitmem(
        scores, hue="model", title="ClassMem vs UnitMem per unit (candidates, true labels)"
    ),
    "classmem_vs_unitmem",
)

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
t_contrast, p_contrast = U.all_layers_test(tests, deep, p="SSL−SL p", statistic="SSL−SL t")
t_sl, p_sl = U.all_layers_test(tests, deep, p="SL p", statistic="SL t")
t_ssl, p_ssl = U.all_layers_test(tests, deep, p="SSL p", statistic="SSL t")
res.claims(
    dict(
        claim="UnitMem − ClassMem is larger for SSL units than for SL units (deep layers)",
        test="one-sided Welch t per deep layer over units; min t, max p",
        statistic=t_contrast,
        p_value=p_contrast,
        holds=t_contrast > 0,
        testable=testable_both,
        reason=reason_both,
    ),
    dict(
        claim="SL units have higher ClassMem than UnitMem (deep layers)",
        test="paired one-sided t over units per deep layer; min t, max p",
        statistic=t_sl,
        p_value=p_sl,
        holds=t_sl > 0,
        testable=checks["SL"].testable,
        reason=checks["SL"].reason,
    ),
    dict(
        claim="SSL units have higher UnitMem than ClassMem (deep layers)",
        test="paired one-sided t over units per deep layer; min t, max p",
        statistic=t_ssl,
        p_value=p_ssl,
        holds=t_ssl > 0,
        testable=checks["SSL"].testable,
        reason=checks["SSL"].reason,
    ),
)
random_deep = tests[tests["deep"]]["random UM−CM"]
Markdown(
    ("" if testable_both else f"*{reason_both}*\n\n")
    + res.verdicts()
    + "\n\nAt random initialisation the mean UnitMem − ClassMem over the deep layers ranges "
    f"from {random_deep.min():.3f} to {random_deep.max():.3f}: "
    + (
        "UnitMem exceeds ClassMem there too, so the third claim alone says little about learning."
        if random_deep.min() > 0
        else "it is not positive in every deep layer."
    )
    + " The poster gives no numbers for this figure; compare the shape."
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        encoder_hashes={"SSL": ssl_pair.hashes, "SL": sl_pair.hashes},
        n_points=n,
        k_aug=ssl.config["k_aug"],
        classmem_k_aug=classmem_k_aug,
        rest=rest,
    )
)
