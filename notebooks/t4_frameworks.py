# %% [markdown]
# # T4: Does the layer pattern hold across SSL frameworks?
#
# **The paper's claim.** LayerMem and ΔLayerMem of a ResNet50 and of a ViT-Base trained with
# SimCLR, DINO and MAE show the same pattern as T1: memorization grows with depth, whatever
# the framework.
#
# **What this notebook measures.** T1's measurement (per-image SSLMem at every measurement
# point, for a pair *f*, *g* trained on S_S ∪ S_C and S_S ∪ S_I) for encoder pairs trained
# with each framework: on the profile's ResNet (ResNet9) with SimCLR, SimSiam and DINO, and on a
# ViT with SimCLR and MAE (MAE needs a ViT: it masks patches); at the `paper` profile, the
# paper's ResNet50 with SimCLR and DINO and ViT-Base with SimCLR, DINO and MAE. Every pair of
# one architecture shares the split, the sizes, the epochs and the augmentations of the
# measurement: only the framework differs. The score is T1's S_C-vs-S_I **contrast** (the
# f-vs-g offset cancels; see the methods chapter); the depth test runs on each encoder's
# forward path (ResNet9: its ten points; ViT: the twelve block outputs). The paper reports no
# numbers for T4 on the poster, so there is no table to set beside ours.
#
# Sizes: at the `cpu` profile every pair trains on |S_S| = |S_C| = |S_I| = 500 images (the
# profile file's `t4` table; ViT pairs use the `t2` table: ViT-Tiny with 8×8 patches,
# 50 epochs), chosen from measured throughput so that the extra encoders fit the book's
# budget.

# %%
from IPython.display import Markdown, display

from memloc.experiments import architectures as ax
from memloc.experiments.encoders import t4_encoders
from memloc.figures import shapes_by_group
from memloc.regime import quality_table
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = None  # unused (this notebook compares frameworks); kept for the common interface
frameworks = None  # on the ResNet; None: SimCLR, SimSiam, DINO (SimCLR, DINO at `paper`)
vit_frameworks = None  # on the ViT of the `t2` sizes; None: SimCLR, MAE (and DINO at `paper`)
seed = 0  # seed of the augmented views of the measurement
score = "contrast"  # the T1 score the verdict uses
check_learned = True  # the "learned" check: each f's linear probe against an untrained twin
out_dir = "book/results/cpu/t4_frameworks"

# %%
res = Result.start(out_dir, profile, profile_overrides)
requests = t4_encoders(
    profile,
    frameworks=frameworks,
    vit_frameworks=vit_frameworks,
    profile_overrides=profile_overrides,
)
pairs, measured = ax.measure_pairs(requests, [seed])
tables = ax.first_tables(measured)
res.table(ax.settings_table(pairs))

# %% [markdown]
# ## LayerMem per layer and framework
#
# The paper's columns (raw normalised LayerMem and ΔLM) and the contrast with its Welch
# t-value, for every framework. Per architecture, one column per framework.

# %%
long = ax.paths_by_setting(tables, score)
res.table(long, "layermem_by_framework")
for arch_name, wide in ax.wide_by_architecture(long, score).items():
    display(Markdown(f"**{arch_name}**, {score} per point of the forward path"))
    display(res.table(wide, digits=4, index=True))

# %% [markdown]
# ## The shapes side by side
#
# Each curve divided by its largest absolute value, so that frameworks whose scores differ in
# scale can be compared in shape. Filled markers: the contrast is significant at that point
# (one-sided p < 0.05).

# %%
res.figure(shapes_by_group(ax.main_paths(tables), score), "shapes")

# %% [markdown]
# ## Did the encoders learn?
#
# Each encoder's f beside the untrained network of its architecture: linear-probe and kNN
# accuracy on the split's downstream images, scored on the test split
# (`memloc.regime.quality_table`). A claim about where an encoder memorizes says nothing when
# its features are no better than random weights', so an encoder whose probe is not above its
# untrained twin's makes the claim *not testable here*.

# %%
probes = quality_table(pairs) if check_learned else None
if probes is not None:
    display(res.table(probes.rename_axis("setting"), "encoder_quality", index=True))

# %% [markdown]
# ## Verdict
#
# T1's depth test on each encoder, on the images: each image's slope of its score (raw
# SSLMem, each point of the forward path divided by its spread over all images) against the
# forward position, the candidates' slopes against the independent images' (Welch's t,
# permutation of the S_C/S_I labels over the images, one-sided). Holm-adjusted over the
# encoders because the claim is that the trend holds in **all** of them: supported when
# every adjusted p is below 0.05. The claim is *not testable here* when some encoder did not
# memorize (no point of its path with a significant S_C-vs-S_I contrast after Holm over the
# points) or did not learn (its f's linear probe not significantly above its untrained twin's, table
# above). Beside it, Spearman's ρ of each encoder's layer means, and how alike the
# frameworks' curves of one architecture are (Spearman's ρ between curves, two-sided);
# descriptions, not part of the verdict.

# %%
trends = ax.contrast_depth_trends(measured, seed=seed, probes=probes)
display(res.table(trends, "depth_trends", digits=4))
res.table(ax.curve_agreement(tables, score), "curve_agreement", digits=4)

# %%
res.check(ax.every_encoder_check(trends))
text = "The depth pattern of memorization holds across SSL frameworks"
(verdict,) = res.claims(ax.every_encoder_claim(trends, text))
Markdown(res.verdicts(ax.every_encoder_note(trends, verdict, profile)))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(encoder_hashes={label: pair.hashes for label, pair in pairs.items()}))
