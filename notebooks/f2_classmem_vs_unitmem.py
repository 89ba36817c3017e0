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
import json
import time

import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.book import provenance, record_claim
from memloc.experiments import units as U
from memloc.figures import save_figure, save_table, scatter_classmem_unitmem
from memloc.profiles import merge_overrides
from memloc.regime import check_pair, combine_checks
from memloc.stats import holm

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
start = time.time()
# None keeps the profile's value.
overrides = merge_overrides(
    profile_overrides, dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug
)
ssl_pair = encoder_pair(profile, framework, progress=False, **overrides)
sl_pair = encoder_pair(profile, "supervised", progress=False, **overrides)
p = ssl_pair.profile
ssl = U.unitmem_with_controls(ssl_pair, rest=rest)
sl = U.unitmem_with_controls(sl_pair, rest=rest, random=ssl.random)
layers = ssl.layers
deep = U.deep_layers(layers)
n = ssl.config["n_points"]
images = ssl_pair.images("candidate", n)
labels = ssl_pair.labels("candidate", n)
init = U.initial_encoder(p, ssl_pair.dataset.channels)
policy = U.unitmem_policy(p)
kw = dict(k_aug=classmem_k_aug, policy=policy, rest=rest, seed=p.seed)
scores = pd.concat(
    [
        U.classmem_beside_unitmem(ssl_pair.f, images, labels, ssl.trained, model="SSL", **kw),
        U.classmem_beside_unitmem(sl_pair.f, images, labels, sl.trained, model="SL", **kw),
        U.classmem_beside_unitmem(init, images, labels, ssl.random, model="random init", **kw),
    ],
    ignore_index=True,
)
save_table(scores, out_dir, "classmem_unitmem_per_unit")
class_sizes = labels.bincount()
Markdown(
    f"Profile `{p.name}`: {p.dataset}, {p.arch} (width {p.width}). N = {n} candidates in "
    f"{int((class_sizes > 0).sum())} classes ({int(class_sizes[class_sizes > 0].min())}–"
    f"{int(class_sizes.max())} images per class); UnitMem with K = {ssl.config['k_aug']} views, "
    f"ClassMem with K = {classmem_k_aug} (0: unaugmented). Deep layers (fixed in advance: the "
    f"half after the first residual connection): {', '.join(deep)}."
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
fig = scatter_classmem_unitmem(
    scores, hue="model", title="ClassMem vs UnitMem per unit (candidates, true labels)"
)
save_figure(fig, out_dir, "classmem_vs_unitmem")
display(fig)

# %% [markdown]
# ## Per-layer means
#
# `difference` = UnitMem − ClassMem, averaged over the units of the layer (defined units
# only).

# %%
defined = scores[scores["defined"]]
means = defined.pivot_table(
    index="layer",
    columns="model",
    values=["unitmem", "classmem", "difference"],
    aggfunc="mean",
    sort=False,
).reindex(layers)
means = means[
    [(v, m) for m in ("SSL", "SL", "random init") for v in ("unitmem", "classmem", "difference")]
]
save_table(
    means.reset_index().set_axis(["layer"] + [f"{m} {v}" for v, m in means.columns], axis=1),
    out_dir,
    "means",
)
means.round(3)

# %% [markdown]
# ## Tests
#
# Per layer: a paired one-sided t-test over the units of each encoder (SSL: UnitMem >
# ClassMem; SL: ClassMem > UnitMem), and a one-sided Welch test of the difference
# UnitMem − ClassMem between the SSL and the SL units (SSL larger).

# %%
ssl_paired = U.paired_tests(
    scores[scores["model"] == "SSL"], "unitmem", "classmem", layers=layers, alternative="greater"
)
sl_paired = U.paired_tests(
    scores[scores["model"] == "SL"], "classmem", "unitmem", layers=layers, alternative="greater"
)
random_paired = U.paired_tests(
    scores[scores["model"] == "random init"],
    "unitmem",
    "classmem",
    layers=layers,
    alternative="greater",
)
contrast = U.compare_layers(
    scores[scores["model"] == "SSL"],
    scores[scores["model"] == "SL"],
    value="difference",
    layers=layers,
)
tests = pd.DataFrame(
    {
        "layer": layers,
        "deep": [layer in deep for layer in layers],
        "SSL UM−CM": ssl_paired["mean_difference"],
        "SSL t": ssl_paired["t"],
        "SSL p": ssl_paired["p"],
        "SL CM−UM": sl_paired["mean_difference"],
        "SL t": sl_paired["t"],
        "SL p": sl_paired["p"],
        "random UM−CM": random_paired["mean_difference"],
        "SSL−SL t": contrast["t"],
        "SSL−SL p": contrast["welch_p"],
    }
)
save_table(tests, out_dir, "tests")
tests.round(4)

# %% [markdown]
# ## Verdict
#
# Each claim is about every deep layer: an intersection–union test, whose p-value is the
# largest per-layer one-sided p-value and whose statistic the smallest per-layer t. The three
# p-values of this page are then Holm-adjusted together (the verdicts use the adjusted ones).

# %%
t_contrast, p_contrast = U.all_layers_test(contrast, deep, p="welch_p", statistic="t")
t_sl, p_sl = U.all_layers_test(sl_paired, deep, p="p", statistic="t")
t_ssl, p_ssl = U.all_layers_test(ssl_paired, deep, p="p", statistic="t")
# One family per page: Holm over its three claims.
p_contrast, p_sl, p_ssl = holm([p_contrast, p_sl, p_ssl])
holm_note = "; Holm over the page's 3 claims"
entries = [
    record_claim(
        out_dir,
        result="F2",
        claim="UnitMem − ClassMem is larger for SSL units than for SL units (deep layers)",
        test="one-sided Welch t per deep layer over units; min t, max p" + holm_note,
        statistic=t_contrast,
        p_value=p_contrast,
        holds=t_contrast > 0,
        profile=profile,
        testable=testable_both,
        reason=reason_both,
    ),
    record_claim(
        out_dir,
        result="F2",
        claim="SL units have higher ClassMem than UnitMem (deep layers)",
        test="paired one-sided t over units per deep layer; min t, max p" + holm_note,
        statistic=t_sl,
        p_value=p_sl,
        holds=t_sl > 0,
        profile=profile,
        testable=checks["SL"].testable,
        reason=checks["SL"].reason,
    ),
    record_claim(
        out_dir,
        result="F2",
        claim="SSL units have higher UnitMem than ClassMem (deep layers)",
        test="paired one-sided t over units per deep layer; min t, max p" + holm_note,
        statistic=t_ssl,
        p_value=p_ssl,
        holds=t_ssl > 0,
        profile=profile,
        testable=checks["SSL"].testable,
        reason=checks["SSL"].reason,
    ),
]
random_deep = tests[tests["deep"]]["random UM−CM"]
Markdown(
    ("" if testable_both else f"*{reason_both}*\n\n")
    + U.verdict_markdown(entries)
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
info = provenance(
    profile=profile,
    profile_overrides=profile_overrides,
    encoder_hashes={"SSL": ssl_pair.hashes, "SL": sl_pair.hashes},
    n_points=n,
    k_aug=ssl.config["k_aug"],
    classmem_k_aug=classmem_k_aug,
    rest=rest,
    wall_time_s=round(time.time() - start, 1),
)
Markdown("```json\n" + json.dumps(info, indent=2, default=str) + "\n```")
