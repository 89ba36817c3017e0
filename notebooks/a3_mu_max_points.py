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
import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import MODEL_COLORS, dominance_scatter, image_gallery, share_bars
from memloc.regime import check_pair
from memloc.result import Result
from memloc.stats import spearman_trend

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
dataset = None
arch = None
framework = "simclr"
seed = None
n_points = None
k_aug = None
top_k = None
top_fraction = 0.1
rest = "mean"
out_dir = "book/results/cpu/a3_mu_max_points"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(
    dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug, top_k=top_k
)
pair = encoder_pair(profile, framework, progress=False, **overrides)
k = pair.profile.top_k
controls = U.unitmem_with_controls(pair, rest=rest)
n = controls.config["n_points"]
sslmem = U.point_sslmem(pair)
last = sslmem.layers[-1].name
s_cand = U.calibrated_sslmem(sslmem, "candidate", last).iloc[:n]
s_held = U.calibrated_sslmem(sslmem, "heldout", last).iloc[:n]
runs = {
    "f, candidates": (controls.trained, s_cand),
    "random init, candidates": (controls.random, s_cand),
    "f, held-out": (controls.heldout, s_held),
}
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
shares = pd.concat(
    [
        U.mu_max_share(result, scores, k=k, fraction=top_fraction).assign(encoder=name)
        for name, (result, scores) in runs.items()
    ],
    ignore_index=True,
)
res.table(shares, "mu_max_share")
res.figure(
    share_bars(
        shares,
        order=controls.layers + ["all"],
        chance=k / n,
        colors=[MODEL_COLORS["SSL"], MODEL_COLORS["random init"], MODEL_COLORS["held-out"]],
        title=f"Top units whose μ_max image is in the Top-{k} by SSLMem",
    ),
    "mu_max_share",
)

# %%
display(res.table(shares[shares["encoder"] == "f, candidates"].drop(columns="encoder"), digits=4))
res.table(shares[shares["layer"] == "all"].drop(columns="layer"), digits=4)

# %% [markdown]
# ## How many units each image dominates
#
# Per image: the number of units (all layers) whose $\mu_{\max}$ it gives, against its SSLMem
# rank. Spearman's ρ between the count and SSLMem over all N images is shown beside it.

# %%
dominance = U.dominance_with_sslmem(controls.trained, s_cand)
res.table(dominance.reset_index(), "dominance")
rhos = {}
for name, (result, scores) in runs.items():
    d = U.dominance_with_sslmem(result, scores)
    rhos[name] = spearman_trend(d["total"], d["sslmem"], alternative="greater")
rho = rhos["f, candidates"]
title = f"Spearman ρ = {rho.statistic:.2f}, one-sided p = {rho.pvalue:.2g}"
xlabel = f"calibrated SSLMem (layer {last})"
display(res.figure(dominance_scatter(dominance, xlabel=xlabel, title=title), "dominance_vs_sslmem"))
res.table(
    pd.DataFrame(
        {name: {"rho": r.statistic, "p (one-sided)": r.pvalue} for name, r in rhos.items()}
    ).T.rename_axis("units dominated vs SSLMem"),
    digits=4,
    index=True,
)

# %%
dominating = dominance[dominance["total"] > 0]
Markdown(
    f"{len(dominating)} of {n} images dominate at least one unit; the top 10 of them hold "
    f"{dominating['total'].head(10).sum()} of {int(dominance['total'].sum())} unit maxima."
)

# %% [markdown]
# The images that dominate the most units, with the number of units and their SSLMem rank
# (1 = most memorized of the N).

# %%
top_images = dominating.head(min(20, len(dominating)))
res.figure(
    image_gallery(
        pair.images("candidate", n)[list(top_images.index)],
        [f"{t} units, rank {r}" for t, r in top_images[["total", "sslmem_rank"]].values],
        ncols=10,
        size=1.25,
        title="Candidates that give the most units their μ_max",
    ),
    "dominating_images",
)

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# The Top-k images are ranked by SSLMem, which ranks nothing when f learned or memorized
# nothing. **Learned**: f's linear probe (fitted on the split's downstream images, scored on
# the test split) above the untrained twin's. **Memorized**: some layer's S_C-vs-S_I
# contrast of LayerMem is significant after Holm over the layers, on the same measurement
# that ranks the images (T1's, cached). Otherwise the claims are *not testable here*.

# %%
check = check_pair(pair, layermem=sslmem)
Markdown(check.markdown)

# %% [markdown]
# ## Verdict
#
# Both claims are one-sided binomial tests against chance (k/N); their two p-values are
# Holm-adjusted together (the verdicts use the adjusted ones).

# %%
pooled = shares[(shares["encoder"] == "f, candidates") & (shares["layer"] == "all")].iloc[0]
res.claims(
    dict(
        claim="the top units' μ_max images are high-SSLMem images (above chance)",
        test=f"share of top-{top_fraction:.0%} units (all layers) whose μ_max image is in the "
        f"Top-{k} by SSLMem vs chance {k / n:.3f}, one-sided binomial over units",
        statistic=pooled["fraction"],
        p_value=pooled["p_value"],
        holds=pooled["fraction"] > k / n,
    ),
    dict(
        claim="the top units' μ_max images are high-SSLMem images (distinct images)",
        test=f"share of the distinct μ_max images of the top units in the Top-{k} vs chance, "
        "one-sided binomial over images",
        statistic=pooled["distinct_fraction"],
        p_value=pooled["distinct_p"],
        holds=pooled["distinct_fraction"] > k / n,
    ),
    testable=check.testable,
    reason=check.reason,
)
others = shares[(shares["layer"] == "all") & (shares["encoder"] != "f, candidates")]
per_layer = shares[(shares["encoder"] == "f, candidates") & (shares["layer"] != "all")]["fraction"]
Markdown(
    ("" if check.testable else f"*{check.reason}*\n\n")
    + res.verdicts()
    + f"\n\nf: {int(pooled['n_hits'])} of {int(pooled['n_units'])} top units "
    f"({pooled['fraction']:.1%}) have their μ_max on a Top-{k} image, against {k / n:.1%} by "
    f"chance; per layer the share ranges from {per_layer.min():.0%} to {per_layer.max():.0%}. "
    + "Controls: "
    + "; ".join(f"{r.encoder} {r.fraction:.1%} (p = {r.p_value:.2g})" for r in others.itertuples())
    + ". The poster gives no numbers for this figure; compare the shape."
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        encoder_hashes=pair.hashes,
        top_k=k,
        top_fraction=top_fraction,
        n_points=n,
        k_aug=controls.config["k_aug"],
        sslmem_k_aug=sslmem.config["k_aug"],
        rest=rest,
    )
)
