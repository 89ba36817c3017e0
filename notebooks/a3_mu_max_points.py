# %% [markdown]
# # A3: which images own the units' maxima?
#
# **The paper's claim:** the images that give the most memorizing units their maximum mean
# activation ($\mu_{\max}$) are the images with high SSLMem.
#
# **What this notebook measures.** For every unit of the SSL encoder f, measured on N of its
# candidate images, the image that produces its $\mu_{\max}$ (`argmax` of UnitMem); for every
# image, how many units it dominates. The images are joined with their SSLMem at the last
# layer (the paper's `views` variant, normalised and calibrated by the held-out offset; the
# calibration does not change the ranking). The main number: of the top units of each layer
# (the `top_fraction` with the highest UnitMem), the share whose $\mu_{\max}$ image is among
# the k most memorized images, against the chance level k/N, with a one-sided binomial test.
# The binomial test of memloc's localisation helper treats units as independent; units that
# share an image are not, so a conservative version counts each distinct image once.
#
# Controls: the architecture at random initialisation on the same images (its maxima against
# f's SSLMem ranking), and f on N held-out images ranked by their own SSLMem (f never saw
# them). UnitMem as the paper defines it (`rest = mean`), K views of the SSL encoder's
# training augmentations.

# %%
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import MODEL_COLORS, dominance_scatter, image_gallery, share_bars
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
top_fraction = 0.1
rest = "mean"
out_dir = "book/results/cpu/a3_mu_max_points"

# %%
res = Result.start(out_dir, profile, profile_overrides)
pair = encoder_pair(profile, framework, progress=False, **profile_overrides)
controls, sslmem = U.unitmem_with_controls(pair, rest=rest), U.point_sslmem(pair)
runs = U.sslmem_ranked_runs(controls, sslmem)
k, n, last = pair.profile.top_k, controls.config["n_points"], sslmem.layers[-1].name
Markdown(
    res.describe(
        pair,
        f"N = {n} images per set, Top-k with k = {k} (chance level k/N = {k / n:.3f}); top "
        f"units: the {top_fraction:.0%} with the highest UnitMem in each layer (at least one). "
        f"SSLMem with K = {sslmem.config['k_aug']} view pairs at layer {last}; UnitMem with "
        f"K = {controls.config['k_aug']} views.",
    )
)

# %% [markdown]
# ## Share of the top units' $\mu_{\max}$ images in the Top-k SSLMem set

# %%
shares = U.mu_max_shares(runs, k=k, fraction=top_fraction)
res.table(shares, "mu_max_share")
colors = [MODEL_COLORS["SSL"], MODEL_COLORS["random init"], MODEL_COLORS["held-out"]]
title = f"Top units whose μ_max image is in the Top-{k} by SSLMem"
bars = share_bars(shares, order=controls.layers + ["all"], chance=k / n, colors=colors, title=title)
res.figure(bars, "mu_max_share")

# %%
display(res.table(shares[shares["encoder"] == "f, candidates"].drop(columns="encoder"), digits=4))
res.table(shares[shares["layer"] == "all"].drop(columns="layer"), digits=4)

# %% [markdown]
# ## How many units each image dominates
#
# Per image: the number of units (all layers) whose $\mu_{\max}$ it gives, against its SSLMem
# rank. Spearman's ρ between the count and SSLMem over all N images is shown beside it.

# %%
dominance = U.dominance_with_sslmem(*runs["f, candidates"])
res.table(dominance.reset_index(), "dominance")
rhos = U.dominance_spearman(runs)
rho, xlabel = rhos["f, candidates"], f"calibrated SSLMem (layer {last})"
title = f"Spearman ρ = {rho.statistic:.2f}, one-sided p = {rho.pvalue:.2g}"
display(res.figure(dominance_scatter(dominance, xlabel=xlabel, title=title), "dominance_vs_sslmem"))
res.table(U.dominance_spearman_table(rhos), digits=4, index=True)

# %%
Markdown(U.dominance_sentence(dominance))

# %% [markdown]
# The images that dominate the most units, with the number of units and their SSLMem rank
# (1 = most memorized of the N).

# %%
images, captions = U.dominating_gallery(pair.images("candidate", n), dominance)
title = "Candidates that give the most units their μ_max"
gallery = image_gallery(images, captions, ncols=10, size=1.25, title=title)
res.figure(gallery, "dominating_images")

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# The Top-k images are ranked by SSLMem, which ranks nothing when f learned or memorized
# nothing. **Learned**: f's linear probe (fitted on the split's downstream images, scored on
# the test split) significantly above the untrained twin's. **Memorized**: some layer's S_C-vs-S_I
# contrast of LayerMem is significant after Holm over the layers, on the same measurement
# that ranks the images (T1's, cached). Otherwise the claims are *not testable here*.

# %%
Markdown(res.check(check_pair(pair, layermem=sslmem)))

# %% [markdown]
# ## Verdict
#
# Both claims are one-sided binomial tests against chance (k/N); their two p-values are
# Holm-adjusted together (the verdicts use the adjusted ones).

# %%
res.claims(*U.mu_max_claims(shares, k, n, top_fraction))
Markdown(res.verdicts(U.mu_max_note(shares, k, n)))

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        **controls.config, top_k=k, top_fraction=top_fraction, sslmem_k_aug=sslmem.config["k_aug"]
    )
)
