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
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import layers as lx
from memloc.figures import agreement_heatmaps, tau_by_distance
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
seed = 0  # seed of the augmented views of the measurement (training uses the profile's seed)
top_k = None  # overlap k; None: min(100, n_points // 5)
variant = "views"  # "views": the paper's definition; "original": the authors' script
check_learned = True  # the "learned" check: f's linear probe against an untrained encoder's
out_dir = "book/results/cpu/t3_layer_consistency"

# %%
res = Result.start(out_dir, profile, profile_overrides)
pair = encoder_pair(profile, framework, progress=False, **profile_overrides)
# The same measurement as T1 (same arguments): reused from the cache when T1 ran first.
result = lx.pair_layermem(pair, seed=seed, variant=variant)
agreement, k, n = lx.agreement_by_set(result, top_k)
Markdown(res.describe(pair, lx.agreement_facts(result, k)))

# %% [markdown]
# ## Overlap and Kendall τ for every pair of layers
#
# One row per pair: the number and share of shared top-k images with the hypergeometric
# p-value of an overlap at least this large by chance, and Kendall's τ-b with its two-sided
# p-value. Candidates first, then the held-out control.

# %%
res.table(lx.agreement_long(agreement), "layer_agreement")
display(res.table(agreement["candidates"][lx.AGREEMENT_COLUMNS], digits=4))
res.table(agreement["held-out"][lx.AGREEMENT_COLUMNS], digits=4)

# %% [markdown]
# ## Heatmaps
#
# Top row: the candidates (images f trained on); bottom row: held-out images. Left: the share
# of the top-k sets two layers share (chance level k/N in the colour bar's label); right:
# Kendall's τ.

# %%
matrices = lx.agreement_matrices(agreement)
for name, (overlap, tau) in matrices.items():
    res.table(overlap.reset_index(names="layer"), f"overlap_matrix_{name}")
    res.table(tau.reset_index(names="layer"), f"tau_matrix_{name}")
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
tests = lx.adjacency_tests(agreement)
display(res.table(lx.adjacency_table(tests), "adjacent_vs_distant", digits=4))
# Learned (f's linear probe against its untrained twin's) and memorized (a layer's contrast).
res.check(check_pair(pair, learned=check_learned, layermem=result))
(verdict,) = res.claims(lx.adjacency_claim(tests))
Markdown(res.verdicts(lx.adjacency_note(agreement, tests, k, verdict, profile)))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(framework=framework, measurement={**result.config, "overlap_k": k}))
