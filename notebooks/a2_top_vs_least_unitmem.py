# %% [markdown]
# # A2: do atypical images cause more unit memorization?
#
# **The paper's claim:** the images an SSL encoder memorizes most (its atypical images) make
# its units more selective than the images it memorizes least: per layer, UnitMem computed
# on the Top-50 images is higher than UnitMem computed on the Least-50.
#
# **What this notebook measures.** The candidates of the SSL encoder f are ranked by their
# SSLMem at the last layer (the paper's `views` variant, normalised and calibrated by the
# held-out offset; the calibration does not change the ranking). UnitMem is a score over a
# set D' of images, so every unit gets two scores: UnitMem over D' = the k most memorized
# candidates (Top-k) and over D' = the k least memorized ones (Least-k). Both sets have k
# images, so UnitMem's baseline (which grows with |D'|) is the same for both. Per layer, a
# one-sided Welch t-test compares the two sets of unit scores (Top-k > Least-k), as the
# paper does.
#
# **Selection and controls.** The images are ranked with SSLMem's own augmentation draws and
# UnitMem is measured on fresh, independent draws, so the ranking noise does not carry into
# the compared scores (the cross-fitting the metrics chapter asks for when a selection is
# scored). Two controls make the same comparison without memorization: the architecture at
# random initialisation on the same Top-k and Least-k images, and f on the k highest and k
# lowest *held-out* images ranked by their own SSLMem (neither encoder saw them, so any gap
# there comes from what the images look like). UnitMem as the paper defines it
# (`rest = mean`), K views of the SSL encoder's training augmentations.

# %%
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import image_gallery, top_least_panels
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
rest = "mean"
out_dir = "book/results/cpu/a2_top_vs_least_unitmem"

# %%
res = Result.start(out_dir, profile, profile_overrides)
pair = encoder_pair(profile, framework, progress=False, **profile_overrides)
p, sslmem = pair.profile, U.point_sslmem(pair)
k, n, last = p.top_k, p.n_points, sslmem.layers[-1].name
s_cand, s_held = U.calibrated_sslmem_sets(sslmem, n)
measured = U.top_least_measured(pair, s_cand, s_held, rest=rest)
per_unit = U.stack_runs(measured)
res.table(per_unit, "unitmem_top_least_per_unit")
layers = list(dict.fromkeys(per_unit["layer"]))
deep = U.deep_layers(layers)
Markdown(
    res.describe(
        pair,
        f"k = {k} of N = {n} images per set; SSLMem with K = {sslmem.config['k_aug']} view "
        f"pairs at layer {last}; UnitMem with K = {p.k_aug} views. {U.deep_layers_sentence(deep)}",
    )
)

# %% [markdown]
# For context, SSLMem itself: the cross-fitted LayerMem of the Top-k and Least-k candidates
# at the last layer (from the layer results' table), and the same selection on held-out
# images.

# %%
res.table(U.top_least_layermem(sslmem, last), index=True)

# %% [markdown]
# ## Mean UnitMem per layer, Top-k against Least-k

# %%
tests = U.top_least_tests(measured, layers)
res.table(tests, "tests")
title = "UnitMem over D' = Top-k vs Least-k images (* one-sided Welch p < 0.05)"
display(res.figure(top_least_panels(tests, k=k, title=title), "top_vs_least"))

# %%
res.table(U.top_least_view(tests, layers), digits=4, index=True)

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# Top-k and Least-k are ranked by SSLMem, which ranks nothing when f learned or memorized
# nothing. **Learned**: f's linear probe (fitted on the split's downstream images, scored on
# the test split) significantly above the untrained twin's. **Memorized**: some layer's S_C-vs-S_I
# contrast of LayerMem is significant after Holm over the layers, on the same measurement
# that ranks the images (T1's, cached); an independent measurement rather than the UnitMem
# gaps tested below. Otherwise the claims are *not testable here*.

# %%
Markdown(res.check(check_pair(pair, layermem=sslmem)))

# %% [markdown]
# ## Verdict
#
# The claim is about every deep layer: an intersection–union test (p-value = the largest
# per-layer one-sided p-value, statistic = the smallest per-layer t). Beside it, the part
# that the held-out control cannot explain: per unit, the Top − Least gap on the candidates
# minus the same unit's gap on held-out images, tested per deep layer with a paired one-sided
# t-test (the same units, measured twice). The two p-values are Holm-adjusted together (the
# verdicts use the adjusted ones).

# %%
gap_tests = U.gap_against_heldout(measured["f, candidates"], measured["f, held-out"], layers)
res.table(gap_tests, "gap_vs_heldout_tests")
res.claims(*U.top_least_claims(tests, gap_tests, deep, k))
display(res.table(U.gap_view(gap_tests), digits=4))
Markdown(res.verdicts(U.top_least_note(tests)))

# %% [markdown]
# ## The two sets of images

# %%
images, captions = U.top_least_gallery(pair.images("candidate", n), s_cand, k)
title = f"Most (top row) and least (bottom row) memorized candidates, SSLMem at {last}"
gallery = image_gallery(images, captions, ncols=min(k, 10), title=title)
res.figure(gallery, "top_least_images")

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(top_k=k, n_points=n, k_aug=p.k_aug, sslmem_k_aug=sslmem.config["k_aug"], rest=rest)
)
