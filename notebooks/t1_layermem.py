# %% [markdown]
# # T1: LayerMem per layer of a ResNet9
#
# **The paper's claim.** In a ResNet9 trained with SimCLR, memorization of the training images
# grows as one goes deeper into the encoder (not strictly monotonically), the two residual sums
# add almost nothing to it, and the most memorized images (Top-k) are memorized far more than
# the least memorized ones (Least-k).
#
# **What this notebook measures.** SSLMem at each of the ten measurement points of ResNet9
# (`1` … `4`, `Res2`, `5` … `8`, `Res6`) for the cached SimCLR pair: encoder *f* trained on
# S_S ∪ S_C and encoder *g* trained identically on S_S ∪ S_I. Per image and layer the score is
# the alignment of *g* minus that of *f* (mean L2 distance between the layer outputs of two
# augmented views, the same views for both encoders). From one batched pass we get the paper's
# table (LayerMem, ΔLM, Top-k, ΔLM Top-k, Least-k) and the scores the methods chapter adds
# because the raw one carries an f-vs-g offset that is not memorization: the held-out offset
# per layer, the **calibrated** score (LayerMem minus that offset), the **scale-free** score
# (unit-normalised layer outputs) and the **S_C-vs-S_I contrast** with its Welch t-value.

# %%
from IPython.display import Markdown, display

from memloc.book import paper_numbers
from memloc.experiments import layers as lx
from memloc.figures import image_gallery, layermem_plot, shape_plot
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
checkpoints = {}  # your f and g: {"f": path, "g": path, "arch": name} (memloc report)
seed = 0  # seed of the augmented views of the measurement (training uses the profile's seed)
variant = "views"  # "views": the paper's definition; "original": the authors' script
check_learned = True  # the "learned" check: f's linear probe against an untrained encoder's
out_dir = "book/results/cpu/t1_layermem"

# %%
res = Result.start(out_dir, profile, profile_overrides)
# checkpoints: nothing is trained, your f and g with the profile's data and split.
pair = lx.layermem_pair(profile, framework, checkpoints, **profile_overrides)
result = lx.pair_layermem(pair, seed=seed, variant=variant)
table = lx.layer_table(result)
Markdown(res.describe(pair, lx.measurement_facts(result)))

# %% [markdown]
# ## The paper's table, measured
#
# Columns as in the paper: LayerMem (mean over the candidates of the per-image score divided
# by its range over the candidates, per layer), ΔLM (minus the previous measurement point),
# and the same over the Top-k and Least-k candidates ranked at the last layer. These are the
# paper's **raw normalised** scores. Unlike the paper, Top-k and Least-k are **cross-fitted**:
# the K view pairs are split in two halves, images are ranked on one half and scored on the
# other (both ways, averaged), because ranking and averaging the same noisy numbers would
# manufacture a gap by itself. Beside them, the same selection made on held-out images that
# neither encoder saw: the gap a selection produces without any memorization.

# %%
res.table(table, "layermem_table")
res.table(lx.per_image_table(result, pair), "layermem_per_image")
res.table(table[lx.PAPER_COLUMNS])

# %% [markdown]
# ## The offset and the scores that remove it
#
# `heldout_offset` is the same normalised mean on held-out images: whatever it shows is a
# difference between the two encoders, not memorization. `calibrated` = LayerMem − offset.
# `scale_free` repeats the paper's recipe on unit-normalised layer outputs (its own range),
# `scale_free_calibrated` subtracts its held-out mean. `contrast` is half the difference
# between the mean score on S_C (seen by f only) and on S_I (seen by g only), normalised
# like LayerMem; a constant f-vs-g offset cancels exactly, and `contrast_t`, `contrast_p`
# are its Welch t-value and one-sided p-value (S_C > S_I).

# %%
res.table(table[lx.CORRECTED_COLUMNS], digits=4)

# %% [markdown]
# ## Beside the paper's numbers
#
# The paper's T1 (CIFAR-10, 500 epochs, from the poster) next to ours. The scales are not
# comparable (other data, other training length, other sizes); what can be compared is the
# shape across layers. The second table gives Spearman's ρ between each of our per-layer
# scores and the paper's LayerMem over the ten points (a description of shape, not a test
# of the claim).

# %%
paper = paper_numbers("T1")
side, shape = lx.paper_comparison(table, paper)
display(res.table(side, "paper_vs_ours"))
res.table(shape, "shape_vs_paper")

# %% [markdown]
# ## LayerMem per layer
#
# Left: the paper's numbers. Middle: ours (raw normalised LayerMem, calibrated, cross-fitted
# Top-k and Least-k). Then ΔLayerMem and the S_C-vs-S_I contrast with 95% intervals from its
# t-value. The panel below puts the shapes on one axis, each curve divided by its largest
# absolute value.

# %%
title = f"LayerMem per measurement point ({pair.profile.dataset}, profile {profile})"
res.figure(layermem_plot(table, paper=paper, title=title), "layermem")

# %%
res.figure(shape_plot(lx.shape_curves(table, side), table["layer"]), "shape_vs_paper")

# %% [markdown]
# ## The most and the least memorized candidates
#
# Ranked by the per-image score at the last measurement point over all view pairs (so these
# galleries carry the selection noise that the cross-fitted numbers avoid). Titles: the
# normalised score.

# %%
for name, gallery in lx.top_least_galleries(result, pair).items():
    display(res.figure(image_gallery(**gallery), f"gallery_{name}"))

# %% [markdown]
# ## Verdicts
#
# Each claim is tested on the unit of analysis the data offer, one-sided in the paper's
# direction, and the three p-values of this page are Holm-adjusted together (the verdicts
# use the adjusted ones). All three claims are about memorization in the pair, so they are
# **testable here** only if f memorized its candidates: some layer's S_C-vs-S_I contrast
# must be significant after Holm over the ten layers (and, when the probe accuracies are
# passed, f's linear probe must beat an untrained encoder's). Otherwise the verdicts are
# *not testable here*, with the reason, rather than *not supported*.
#
# 1. **Depth.** On the images, not on ten layer means: every image gets the slope of its
#    score (raw SSLMem, each layer divided by its spread over all images) against the
#    forward position 0 … 9, and the candidates' slopes are compared with the independent
#    images' slopes (Welch's t), with a p-value from 9,999 random relabellings of the images
#    as S_C or S_I. The f-vs-g offset of a layer is common to both sets and cancels, as in
#    the contrast; a contrast that is the same at every layer is not a trend. Two checks are
#    listed beside it, not part of the verdict: the deeper half of the layers against the
#    shallower half per image (Mann-Whitney U of the two sets' differences, no linear shape
#    assumed) and Spearman's ρ of the ten layer means (what this page used to test: it
#    describes the shape but has little power, since ten numbers are ten observations).
# 2. **Residual sums.** The steps into `Res2` and `Res6` against the seven steps into conv
#    layers: the share of (residual, conv) pairs in which the residual step's |Δ contrast| is
#    the smaller, with an exact permutation p-value over the 36 ways to label two of the
#    nine steps as residual (so the smallest possible p is 1/36 ≈ 0.028, and after Holm the
#    claim can hardly be supported at this resolution). The unit is the step, because the
#    claim is about steps; a per-image version would test "no memorization anywhere" rather
#    than "residual steps change it less". "Adds little" is a claim of absence: a rank test
#    says whether the residual steps are smaller than the others, not that they are zero.
# 3. **Top-k ≫ Least-k** at the last layer, on the cross-fitted per-image scores (ranked on
#    the first half of the view pairs, scored on the second). Cross-fitting removes the gap
#    that selection noise alone would create, but not the gap of images that simply differ
#    between the two encoders for reasons unrelated to training on them: the same selection on
#    held-out images measures that. The verdict therefore tests the **excess** of the
#    candidates' Top-vs-Least gap over the held-out gap (a t-test on the difference of the two
#    gaps with Welch-Satterthwaite degrees of freedom, one-sided), and requires in addition
#    that the candidates' own gap is significant (Welch's one-sided t-test, first row below).

# %%
# Learned (f's linear probe against its untrained twin's) and memorized (a layer's contrast).
check = check_pair(pair, learned=check_learned, layermem=result)
res.check(check)
tests = lx.layermem_tests(result, seed=seed)
display(res.table(tests.depth_tests, "depth_tests", digits=4))
display(Markdown("Spearman's ρ of the layer means of each score (a description of shape):"))
display(res.table(tests.trends, "depth_trend", digits=4))
display(res.table(tests.residual_steps, "residual_steps", digits=4))
res.table(tests.top_least, "top_least_tests", digits=4)

# %%
verdicts = res.claims(*lx.layermem_claims(tests))
Markdown(res.verdicts(*lx.layermem_notes(tests, check, verdicts, profile)))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(framework=framework, checkpoints=pair.checkpoints, measurement=result.config))
