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
import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import per_unit_boxplot, unitmem_distributions
from memloc.metrics import unitmem_forward_shift
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
rest = "mean"
out_dir = "book/results/cpu/f1_unitmem_distributions"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug)
ssl_pair = encoder_pair(profile, framework, progress=False, **overrides)
sl_pair = encoder_pair(profile, "supervised", progress=False, **overrides)
p = ssl_pair.profile
ssl = U.unitmem_with_controls(ssl_pair, rest=rest)
sl = U.unitmem_with_controls(sl_pair, rest=rest, random=ssl.random)
layers, deep = ssl.layers, U.deep_layers(ssl.layers)
Markdown(
    res.describe(
        ssl_pair,
        f"SSL = {framework} ({p.epochs} epochs), SL = supervised ({p.supervised_epochs} "
        f"epochs). N = {ssl.config['n_points']} images per set, K = {ssl.config['k_aug']} "
        f"views, rest = `{rest}`. Deep layers (fixed in advance: the half after the first "
        f"residual connection): {', '.join(deep)}.",
    )
)

# %% [markdown]
# ## Did the encoders learn, and did the SSL pair memorize?
#
# The claims compare how much SSL and SL units memorize, so they say nothing when the SSL
# encoder learned or memorized nothing, or the SL encoder learned nothing. **Learned**: f's
# linear probe (fitted on the split's downstream images, scored on the test split) above the
# untrained twin's. **Memorized** (SSL pair): some layer's S_C-vs-S_I contrast of LayerMem is
# significant after Holm over the layers, T1's measurement of the same pair (cached, so free
# when T1 ran). LayerMem's contrast is used rather than UnitMem's excess over its controls,
# because the third claim below tests that excess: gating a claim on its own statistic would
# decide the verdict twice. Otherwise the claims are *not testable here*.

# %%
checks = {
    "SSL": check_pair(ssl_pair, name="SSL"),
    "SL": check_pair(sl_pair, memorized=False, name="SL"),
}
testable, reason = combine_checks(checks)
Markdown("\n\n".join(c.markdown for c in checks.values()))

# %% [markdown]
# ## The distributions
#
# Each box summarises the units of one layer. SSL and SL are the trained encoders on their
# candidates; "held-out" is the same encoder on images it never saw; "random init" is the
# architecture before training. Units that never fire on these images (UnitMem undefined)
# are left out and counted in the table below.

# %%
long = pd.concat([ssl.long(), sl.long()[lambda d: d["encoder"] != "random init"]])
order = ["SSL", "SSL held-out", "SL", "SL held-out", "random init"]
long = long.sort_values("label", key=lambda c: c.map(order.index), kind="stable")
title = "UnitMem per layer: trained encoders and their controls"
res.figure(
    unitmem_distributions(long, hue="label", kind="box", title=title), "unitmem_distributions"
)

# %%
res.figure(
    unitmem_distributions(
        long[long["label"].isin(["SSL", "SL", "random init"])],
        hue="label",
        kind="violin",
        title="UnitMem per layer, SSL vs SL (violins)",
    ),
    "unitmem_violins",
)

# %% [markdown]
# The memorization part: for every unit, UnitMem on its training images minus UnitMem of the
# same unit on held-out images. Zero means the unit is exactly as selective for images it
# never saw.

# %%
per_unit = pd.concat([ssl.per_unit(), sl.per_unit()], ignore_index=True)
res.figure(
    per_unit_boxplot(
        per_unit,
        "excess_heldout",
        layers=layers,
        ylabel="UnitMem: candidates − held-out",
        title="Excess over the held-out control, per unit",
    ),
    "excess_over_heldout",
)

# %% [markdown]
# ## Per-layer means and the excess over the controls
#
# `mean`: mean UnitMem over the defined units; `random_mean`, `heldout_mean`: the controls;
# `*_excess`: the difference, with a one-sided Welch p-value over units; `excess`: the
# smaller of the two excesses, the part neither control explains.

# %%
excess = pd.concat([ssl.excess(), sl.excess()], ignore_index=True)
counts = (
    long.groupby(["label", "layer"], sort=False)["defined"]
    .agg(n_units="size", n_defined="sum")
    .reset_index()
)
res.table(excess, "unitmem_excess")
res.table(counts, "defined_units")
means = long[long["defined"]].pivot_table(
    index="layer", columns="label", values="unitmem", aggfunc="mean", sort=False
)[order]
for model in ("SSL", "SL"):
    means[f"{model} excess"] = excess[excess["model"] == model].set_index("layer")["excess"]
undefined = (counts["n_units"] - counts["n_defined"]).groupby(counts["label"]).sum()
Markdown(
    "Mean UnitMem per layer; `excess` is the smaller of the excesses over the two controls. "
    "Undefined units (never active on these images) per encoder: "
    + ", ".join(f"{label} {int(n)}" for label, n in undefined.items())
    + "."
)

# %%
res.table(means.reindex(layers).reset_index(), "unitmem_means")

# %% [markdown]
# ## Tests: SSL against SL, per layer
#
# One-sided Welch t-test (mean UnitMem of SSL units > SL units) and one-sided
# Kolmogorov–Smirnov test (the SSL distribution lies to the right of the SL one), on the raw
# UnitMem and on the per-unit excess over the held-out control.

# %%
raw_tests = U.compare_layers(ssl.per_unit(), sl.per_unit(), value="unitmem", layers=layers)
excess_tests = U.compare_layers(
    ssl.per_unit(), sl.per_unit(), value="excess_heldout", layers=layers
)
tests = raw_tests.merge(excess_tests, on="layer", suffixes=("", "_excess"))
tests.insert(1, "deep", tests["layer"].isin(deep))
shown = ["layer", "deep", "mean_a", "mean_b", "t", "welch_p", "ks_D", "ks_p"]
res.table(tests, "ssl_vs_sl_tests")
res.table(
    tests[shown + ["difference_excess", "t_excess", "welch_p_excess"]].rename(
        columns={"mean_a": "SSL", "mean_b": "SL", "difference_excess": "excess SSL − SL"}
    ),
    digits=4,
)

# %% [markdown]
# ## Verdict
#
# The claim is about the deep layers, so the verdict asks whether SSL units exceed SL units
# in *every* deep layer: an intersection–union test, whose p-value is the largest of the
# per-layer one-sided p-values and whose statistic is the smallest per-layer statistic. The
# three p-values of this page are then Holm-adjusted together (the verdicts use the adjusted
# ones), and the claims are *not testable here* when the checks above fail.

# %%
claim = "SSL units memorize single images more than SL units (deep layers)"
t_min, p_t = U.all_layers_test(raw_tests, deep, p="welch_p", statistic="t")
d_min, p_ks = U.all_layers_test(raw_tests, deep, p="ks_p", statistic="ks_D")
t_excess, p_excess = U.all_layers_test(excess_tests, deep, p="welch_p", statistic="t")
res.claims(
    dict(
        claim=claim,
        test=f"one-sided Welch t on UnitMem per deep layer ({', '.join(deep)}); min t, max p",
        statistic=t_min,
        p_value=p_t,
        holds=t_min > 0,
    ),
    dict(
        claim=claim + ", whole distributions",
        test="one-sided KS (SSL to the right of SL) per deep layer; min D, max p",
        statistic=d_min,
        p_value=p_ks,
    ),
    dict(
        claim="SSL units exceed their held-out control more than SL units (deep layers)",
        test="one-sided Welch t on the per-unit excess over held-out images per deep layer",
        statistic=t_excess,
        p_value=p_excess,
        holds=t_excess > 0,
    ),
    testable=testable,
    reason=reason,
)
significant = raw_tests[raw_tests["welch_p"] < 0.05]["layer"].tolist()
Markdown(
    ("" if testable else f"*{reason}*\n\n")
    + res.verdicts()
    + "\n\nLayers where SSL UnitMem exceeds SL UnitMem at p < 0.05 (Welch): "
    + (", ".join(significant) if significant else "none")
    + f" (of {len(layers)}). The poster gives no numbers for this figure; compare the shape."
)

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
if ssl_pair.f.arch == "resnet9":
    forward_shift = unitmem_forward_shift(
        ssl_pair.f,
        ssl_pair.images("candidate", ssl.config["n_points"]),
        k_aug=ssl.config["k_aug"],
        policy=U.unitmem_policy(p),
        rest=rest,
        seed=ssl.config["seed"],
    )
    display(res.table(forward_shift, "unitmem_forward_shift", digits=4))
else:
    display(Markdown(f"No skip-less reading for {ssl_pair.f.arch}: the scripts read ResNet9."))

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        encoder_hashes={"SSL": ssl_pair.hashes, "SL": sl_pair.hashes},
        n_points=ssl.config["n_points"],
        k_aug=ssl.config["k_aug"],
        rest=rest,
    )
)
