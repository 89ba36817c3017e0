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
import json
import time

import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.book import provenance, record_claim
from memloc.experiments import units as U
from memloc.figures import MODEL_COLORS, image_gallery, new_figure, save_figure, save_table
from memloc.profiles import merge_overrides
from memloc.regime import check_pair
from memloc.stats import holm, spearman_trend

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
start = time.time()
# None keeps the profile's value.
overrides = merge_overrides(
    profile_overrides,
    dataset=dataset,
    arch=arch,
    seed=seed,
    n_points=n_points,
    k_aug=k_aug,
    top_k=top_k,
)
pair = encoder_pair(profile, framework, progress=False, **overrides)
p = pair.profile
k = p.top_k
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
    f"Profile `{p.name}`: {p.dataset}, {p.arch} (width {p.width}), {framework}. N = {n} "
    f"images per set, Top-k with k = {k} (chance level k/N = {k / n:.3f}); top units: the "
    f"{top_fraction:.0%} with the highest UnitMem in each layer (at least one). SSLMem with "
    f"K = {sslmem.config['k_aug']} view pairs at layer {last}; UnitMem with "
    f"K = {controls.config['k_aug']} views."
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
save_table(shares, out_dir, "mu_max_share")
layers = controls.layers
fig, axes = new_figure(width=max(5.0, 0.7 * (len(layers) + 1)), height=3.4)
ax = axes[0, 0]
colors = [MODEL_COLORS["SSL"], MODEL_COLORS["random init"], MODEL_COLORS["held-out"]]
width = 0.27
order = layers + ["all"]
for i, (name, color) in enumerate(zip(runs, colors, strict=True)):
    part = shares[shares["encoder"] == name].set_index("layer").reindex(order)
    ax.bar(
        [j + (i - 1) * width for j in range(len(order))],
        part["fraction"],
        width=width,
        color=color,
        label=name,
    )
ax.axhline(k / n, color="0.2", ls="--", lw=1, label=f"chance k/N = {k / n:.2f}")
ax.set_xticks(range(len(order)), order)
ax.set(xlabel="layer", ylabel="share of top units")
ax.set_title(f"Top units whose μ_max image is in the Top-{k} by SSLMem")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
save_figure(fig, out_dir, "mu_max_share")
display(fig)

# %%
display(
    shares[shares["encoder"] == "f, candidates"].drop(columns="encoder").set_index("layer").round(4)
)
shares[shares["layer"] == "all"].set_index("encoder").drop(columns="layer").round(4)

# %% [markdown]
# ## How many units each image dominates
#
# Per image: the number of units (all layers) whose $\mu_{\max}$ it gives, against its SSLMem
# rank. Spearman's ρ between the count and SSLMem over all N images is shown beside it.

# %%
dominance = U.dominance_with_sslmem(controls.trained, s_cand)
save_table(dominance.reset_index(), out_dir, "dominance")
rhos = {}
for name, (result, scores) in runs.items():
    d = U.dominance_with_sslmem(result, scores)
    rhos[name] = spearman_trend(d["total"], d["sslmem"], alternative="greater")
rho = rhos["f, candidates"]
fig, axes = new_figure(width=4.6, height=3.4)
ax = axes[0, 0]
ax.scatter(
    dominance["sslmem"],
    dominance["total"],
    s=10,
    alpha=0.6,
    color=MODEL_COLORS["SSL"],
    linewidths=0,
)
ax.set_yscale("symlog", linthresh=10)
ax.set(xlabel=f"calibrated SSLMem (layer {last})", ylabel="units dominated (all layers)")
ax.set_title(f"Spearman ρ = {rho.statistic:.2f}, one-sided p = {rho.pvalue:.2g}", fontsize=10)
save_figure(fig, out_dir, "dominance_vs_sslmem")
display(fig)
pd.DataFrame(
    {name: {"rho": r.statistic, "p (one-sided)": r.pvalue} for name, r in rhos.items()}
).T.rename_axis("units dominated vs SSLMem").round(4)

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
images = pair.images("candidate", n)[list(top_images.index)]
fig = image_gallery(
    images,
    [
        f"{t} units, rank {r}"
        for t, r in zip(top_images["total"], top_images["sslmem_rank"], strict=True)
    ],
    ncols=10,
    size=1.25,
    title="Candidates that give the most units their μ_max",
)
save_figure(fig, out_dir, "dominating_images")
display(fig)

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
# One family per page: Holm over its two claims.
p_units, p_images = holm([pooled["p_value"], pooled["distinct_p"]])
holm_note = "; Holm over the page's 2 claims"
entries = [
    record_claim(
        out_dir,
        result="A3",
        claim="the top units' μ_max images are high-SSLMem images (above chance)",
        test=f"share of top-{top_fraction:.0%} units (all layers) whose μ_max image is in the "
        f"Top-{k} by SSLMem vs chance {k / n:.3f}, one-sided binomial over units" + holm_note,
        statistic=pooled["fraction"],
        p_value=p_units,
        holds=pooled["fraction"] > k / n,
        profile=profile,
        testable=check.testable,
        reason=check.reason,
    ),
    record_claim(
        out_dir,
        result="A3",
        claim="the top units' μ_max images are high-SSLMem images (distinct images)",
        test=f"share of the distinct μ_max images of the top units in the Top-{k} vs chance, "
        "one-sided binomial over images" + holm_note,
        statistic=pooled["distinct_fraction"],
        p_value=p_images,
        holds=pooled["distinct_fraction"] > k / n,
        profile=profile,
        testable=check.testable,
        reason=check.reason,
    ),
]
others = shares[(shares["layer"] == "all") & (shares["encoder"] != "f, candidates")]
per_layer_share = shares[(shares["encoder"] == "f, candidates") & (shares["layer"] != "all")][
    "fraction"
]
Markdown(
    ("" if check.testable else f"*{check.reason}*\n\n")
    + U.verdict_markdown(entries)
    + f"\n\nf: {int(pooled['n_hits'])} of {int(pooled['n_units'])} top units "
    f"({pooled['fraction']:.1%}) have their μ_max on a Top-{k} image, against {k / n:.1%} by "
    f"chance; per layer the share ranges from "
    f"{per_layer_share.min():.0%} to {per_layer_share.max():.0%}. "
    + "Controls: "
    + "; ".join(f"{r.encoder} {r.fraction:.1%} (p = {r.p_value:.2g})" for r in others.itertuples())
    + ". The poster gives no numbers for this figure; compare the shape."
)

# %% [markdown]
# ## Provenance

# %%
info = provenance(
    profile=profile,
    profile_overrides=profile_overrides,
    encoder_hashes=pair.hashes,
    top_k=k,
    top_fraction=top_fraction,
    n_points=n,
    k_aug=controls.config["k_aug"],
    sslmem_k_aug=sslmem.config["k_aug"],
    rest=rest,
    wall_time_s=round(time.time() - start, 1),
)
Markdown("```json\n" + json.dumps(info, indent=2, default=str) + "\n```")
