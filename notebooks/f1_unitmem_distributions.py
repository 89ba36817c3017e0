# %% [markdown]
# # F1: UnitMem per layer, SSL against supervised learning
#
# **The paper's claim:** units of an encoder trained with self-supervised learning (SSL)
# single out individual training images far more than the units of the same architecture
# trained with labels (supervised learning, SL).
#
# **What this notebook measures:** UnitMem of every unit at every measurement point of two
# encoders f of the same architecture, one trained with SimCLR (SSL) and one with
# cross-entropy (SL), on the same N candidate images, which both trained on. Each
# distribution is shown beside its two controls (methods chapter): the architecture at random
# initialisation on the same images, and each f on N held-out images it never saw. The
# memorization is the part above the controls.
#
# **Variant and score.** UnitMem as the paper defines it: $\mu_{-\max}$ is the *mean* of the
# other $N-1$ images (parameter `rest`; the authors' scripts use the median), over K
# augmented views per image. Every encoder is measured with the same views, the SSL
# encoder's training augmentations, so that only the weights differ. The tests use the raw
# UnitMem and the per-unit excess over the held-out control (the same unit measured on
# held-out images, subtracted). Both encoders share the random-initialisation control (the
# same images, views and initial weights), so the excess over it moves both distributions by
# the same amount per layer and a test on it equals the test on raw UnitMem.

# %%
from IPython.display import Markdown, display

from memloc.experiments import units as U
from memloc.figures import per_unit_boxplot, unitmem_distributions
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"  # the SSL framework; the SL baseline is always "supervised"
rest = "mean"
out_dir = "book/results/cpu/f1_unitmem_distributions"

# %%
res = Result.start(out_dir, profile, profile_overrides)
ssl_pair, sl_pair = U.ssl_sl_pairs(profile, framework, **profile_overrides)
ssl, sl = U.ssl_sl_unitmem(ssl_pair, sl_pair, rest=rest)
p, c, layers = ssl_pair.profile, ssl.config, ssl.layers
Markdown(
    res.describe(
        ssl_pair,
        f"SSL = {framework} ({p.epochs} epochs), SL = supervised ({p.supervised_epochs} "
        f"epochs). N = {c['n_points']} images per set, K = {c['k_aug']} views, rest = "
        f"`{rest}`. {U.deep_layers_sentence(U.deep_layers(layers))}",
        others={"SL": sl_pair},
    )
)

# %% [markdown]
# ## Did the encoders learn, and did the SSL pair memorize?
#
# The claims compare how much SSL and SL units memorize, so they say nothing when the SSL encoder
# learned or memorized nothing, or the SL encoder learned nothing. **Learned**: f's linear probe
# (fitted on the split's downstream images, scored on the test split) significantly above the
# untrained twin's. **Memorized** (SSL pair): some layer's S_C-vs-S_I contrast of LayerMem is
# significant after Holm over the layers, T1's measurement of the same pair (cached, so free when T1
# ran). LayerMem's contrast is used rather than UnitMem's excess over its controls, because the
# third claim below tests that excess: gating a claim on its own statistic would decide the verdict
# twice. Otherwise the claims are *not testable here*.

# %%
Markdown(res.check(U.ssl_sl_checks(ssl_pair, sl_pair)))

# %% [markdown]
# ## The distributions
#
# Each box summarises the units of one layer. SSL and SL are the trained encoders on their
# candidates; "held-out" is the same encoder on images it never saw; "random init" is the
# architecture before training. Units that never fire on these images (UnitMem undefined)
# are left out and counted in the table below.

# %%
long = U.ssl_sl_distributions(ssl, sl)
title = "UnitMem per layer: trained encoders and their controls"
boxes = unitmem_distributions(long, hue="label", kind="box", title=title)
res.figure(boxes, "unitmem_distributions")

# %%
trained = long[long["label"].isin(["SSL", "SL", "random init"])]
title = "UnitMem per layer, SSL vs SL (violins)"
violins = unitmem_distributions(trained, hue="label", kind="violin", title=title)
res.figure(violins, "unitmem_violins")

# %% [markdown]
# The memorization part: for every unit, UnitMem on its training images minus UnitMem of the
# same unit on held-out images. Zero means the unit is exactly as selective for images it
# never saw.

# %%
per_unit = U.ssl_sl_per_unit(ssl, sl)
title, ylabel = "Excess over the held-out control, per unit", "UnitMem: candidates − held-out"
excess_box = per_unit_boxplot(per_unit, "excess_heldout", layers=layers, ylabel=ylabel, title=title)
res.figure(excess_box, "excess_over_heldout")

# %% [markdown]
# ## Per-layer means and the excess over the controls
#
# `mean`: mean UnitMem over the defined units; `random_mean`, `heldout_mean`: the controls;
# `*_excess`: the difference, with a one-sided Welch p-value over units; `excess`: the
# smaller of the two excesses, the part neither control explains.

# %%
excess, counts = U.ssl_sl_excess(ssl, sl), U.defined_units(long)
res.table(excess, "unitmem_excess")
res.table(counts, "defined_units")
intro = "Mean UnitMem per layer; `excess` is the smaller of the excesses over the two controls."
Markdown(f"{intro} {U.undefined_units_sentence(counts)}")

# %%
res.table(U.ssl_sl_means(long, excess, layers), "unitmem_means")

# %% [markdown]
# ## Tests: SSL against SL, per layer
#
# One-sided Welch t-test (mean UnitMem of SSL units > SL units) and one-sided
# Kolmogorov–Smirnov test (the SSL distribution lies to the right of the SL one), on the raw
# UnitMem and on the per-unit excess over the held-out control.

# %%
tests = U.ssl_sl_tests(ssl, sl)
res.table(tests, "ssl_vs_sl_tests")
res.table(U.ssl_sl_tests_view(tests), digits=4)

# %% [markdown]
# ## Verdict
#
# The claim is about the deep layers, so the verdict asks whether SSL units exceed SL units
# in *every* deep layer: an intersection–union test, whose p-value is the largest of the
# per-layer one-sided p-values and whose statistic is the smallest per-layer statistic. The
# three p-values of this page are then Holm-adjusted together (the verdicts use the adjusted
# ones), and the claims are *not testable here* when the checks above fail.

# %%
res.claims(*U.ssl_sl_claims(tests))
Markdown(res.verdicts(U.ssl_sl_note(tests)))

# %% [markdown]
# ## The authors' scripts' reading: ResNet9 without its skip connections
#
# The authors' UnitMem.py reads activations through torchvision's `IntermediateLayerGetter`,
# which calls the network's blocks in order and never adds the residuals (methods chapter).
# The SSL encoder f, the same candidates and the same views, read both ways
# (`memloc.metrics.unitmem_forward_shift`): mean UnitMem per layer under the paper's forward
# and the scripts' skip-less one, their difference, and the mean per-unit change. Layers 1 to
# 4 come before the first sum and cannot move.

# %%
shift = U.skipless_forward_shift(ssl_pair, ssl)
if shift is None:
    display(Markdown(f"No skip-less reading for {ssl_pair.f.arch}: the scripts read ResNet9."))
else:
    display(res.table(shift, "unitmem_forward_shift", digits=4))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(**ssl.config))
