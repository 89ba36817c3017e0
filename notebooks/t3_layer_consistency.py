# %% [markdown]
# # T3: Do the layers agree on which images are memorized?
#
# **The paper's claim.** The images most memorized at one layer are largely the images most
# memorized at the neighbouring layer when both layers are deep, while layers far apart in the
# encoder rank the images differently.
#
# **What this notebook measures.** For every pair of the ten ResNet9 measurement points: the
# overlap of the k most memorized candidates (k = 100 in the paper; here at most a fifth of
# the evaluated images), against the overlap k/N two unrelated rankings would share, and
# Kendall's τ between the two layers' per-image scores, with p-values. The per-image score
# is SSLMem at that layer (the paper's definition, `views` variant), from the same measurement
# as T1. Rankings within a layer do not change when the layer's scores are shifted or scaled,
# so the raw, normalised and calibrated scores give the same answer here; the f-vs-g offset
# does not matter. What does matter is that layers are computed from each other: even without
# any memorization, nearby layers may rank images alike. The same analysis on **held-out
# images** that neither encoder saw is the control for that.

# %%
import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import layers as lx
from memloc.figures import agreement_heatmaps, tau_by_distance
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
dataset = None  # None: the profile's data set
arch = None  # None: the profile's architecture (ResNet9)
framework = "simclr"
seed = 0  # seed of the augmented views of the measurement (training uses the profile's seed)
n_points = None  # candidates evaluated (and as many held-out images); None: the profile's
k_aug = None  # view pairs per image; None: the profile's
top_k = None  # overlap k; None: min(100, n_points // 5)
variant = "views"  # "views": the paper's definition; "original": the authors' script
check_learned = True  # the "learned" check: f's linear probe against an untrained encoder's
out_dir = "book/results/cpu/t3_layer_consistency"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(dataset=dataset, arch=arch, n_points=n_points, k_aug=k_aug)
pair = encoder_pair(profile, framework, progress=False, **overrides)
# The same measurement as T1 (same arguments): reused from the cache when T1 ran first.
result = lx.pair_layermem(pair, seed=seed, variant=variant)
cfg = result.config
scores = {"candidates": result.per_point, "held-out": result.scores("heldout", "sslmem")}
n = len(scores["candidates"])
k = lx.default_overlap_k(n) if top_k is None else int(top_k)
agreement = {name: lx.layer_agreement(s, k) for name, s in scores.items()}
Markdown(
    res.describe(
        pair,
        f"{n} candidates and {len(scores['held-out'])} held-out images, K = {cfg['k_aug']} "
        f"view pairs each, variant `{cfg['variant']}`. Top-k overlap with k = {k}: two "
        f"unrelated rankings share k/N = {k / n:.2f} of their top sets on average.",
    )
)

# %% [markdown]
# ## Overlap and Kendall τ for every pair of layers
#
# One row per pair: the number and share of shared top-k images with the hypergeometric
# p-value of an overlap at least this large by chance, and Kendall's τ-b with its two-sided
# p-value. Candidates first, then the held-out control.

# %%
long = pd.concat([a.assign(images=name) for name, a in agreement.items()], ignore_index=True)
res.table(long, "layer_agreement")
cols = ["layer_a", "layer_b", "distance", "overlap", "overlap_fraction", "chance", "overlap_p"]
cols += ["tau", "tau_p"]
display(res.table(agreement["candidates"][cols], digits=4))
res.table(agreement["held-out"][cols], digits=4)

# %% [markdown]
# ## Heatmaps
#
# Top row: the candidates (images f trained on); bottom row: held-out images. Left: the share
# of the top-k sets two layers share (chance level k/N in the colour bar's label); right:
# Kendall's τ.

# %%
matrices = {}
for name, a in agreement.items():
    overlap, tau = lx.agreement_matrix(a, "overlap_fraction"), lx.agreement_matrix(a, "tau")
    res.table(overlap.reset_index(names="layer"), f"overlap_matrix_{name}")
    res.table(tau.reset_index(names="layer"), f"tau_matrix_{name}")
    matrices[name] = (overlap, tau)
res.figure(agreement_heatmaps(matrices, k=k, chance=k / n), "heatmaps")

# %% [markdown]
# ## Agreement against distance in the encoder
#
# Mean Kendall τ of all pairs of layers the same number of measurement points apart (error
# bars: the spread over those pairs), candidates against held-out images.

# %%
res.figure(tau_by_distance(agreement), "tau_vs_distance")

# %% [markdown]
# ## Verdict
#
# Adjacent deep pairs are the neighbouring measurement points from layer `5` on (`5-6`,
# `6-7`, `7-8`, `8-Res6`); distant pairs are at least four points apart (21 pairs). The
# statistic is the mean τ of the adjacent deep pairs minus that of the distant pairs; its
# p-value is exact, over every way to pick four of the 25 pairs as "adjacent". The pairs share
# layers and images, so this p-value says how unusual the adjacent pairs are among these
# pairs rather than being a test over new data. The same statistic on held-out images is the
# control: if it is as large there, neighbouring layers agree because they are computed from
# each other, not because they memorized the same images.
#
# "The memorized images" exist only if f memorized: the claim is *not testable here* when no
# layer's S_C-vs-S_I contrast is significant after Holm over the ten layers (T1's check).

# %%
test = lx.adjacent_vs_distant(agreement["candidates"])
control = lx.adjacent_vs_distant(agreement["held-out"])
tests = pd.DataFrame(
    [{"images": "candidates", **test.to_dict()}, {"images": "held-out", **control.to_dict()}]
).drop(columns="adjacent_pairs")
display(res.table(tests, "adjacent_vs_distant", digits=4))
# Learned (f's linear probe against its untrained twin's) and memorized (a layer's contrast).
check = check_pair(pair, learned=check_learned, layermem=result)
(verdict,) = res.claims(
    dict(
        claim="Adjacent deep layers agree on the memorized images more than distant layers",
        test="mean Kendall tau of adjacent pairs from layer 5 minus mean tau of pairs >= 4 apart, "
        f"exact permutation test over the pairs (same difference on held-out images: "
        f"{control.difference:+.2f})",
        statistic=test.difference,
        p_value=test.pvalue,
        holds=test.difference > 0,
    ),
    testable=check.testable,
    reason=check.reason,
)
adj = agreement["candidates"][agreement["candidates"]["distance"] == 1]
far_ov = agreement["candidates"][agreement["candidates"]["distance"] >= 4]
Markdown(
    (f"*{check.reason}*\n\n" if not check.testable else "")
    + f"**Verdict at profile `{profile}`: {verdict['verdict']}.** On the candidates, adjacent "
    f"deep pairs have mean τ = {test.adjacent_mean:+.3f} and distant pairs "
    f"{test.distant_mean:+.3f} (difference {test.difference:+.3f}, exact p = "
    f"{test.pvalue:.3g}). On held-out images the same difference is "
    f"{control.difference:+.3f} (p = {control.pvalue:.3g}), so "
    + (
        "the pattern is at least as strong on images neither encoder saw: at this profile "
        "the agreement of neighbouring layers cannot be attributed to memorization."
        if control.difference >= test.difference
        else "the candidates' pattern is stronger than on images neither encoder saw "
        f"(by {test.difference - control.difference:+.3f}; this excess is not tested "
        "here)."
    )
    + f" Top-{k} overlaps: {adj['overlap_fraction'].mean():.2f} on average between "
    f"neighbouring points, {far_ov['overlap_fraction'].mean():.2f} between points four or "
    f"more apart, chance {k / n:.2f}."
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(framework=framework, encoder_hashes=pair.hashes, measurement={**cfg, "overlap_k": k})
)
