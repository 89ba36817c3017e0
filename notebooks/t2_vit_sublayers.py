# %% [markdown]
# # T2: Where in a Vision Transformer is memorization: deep or shallow blocks, attention or MLP?
#
# **The paper's claims.** In a ViT trained with a self-supervised framework, LayerMem grows
# in the deeper blocks, and within the blocks the fully-connected (MLP) sublayers carry more
# of it than the attention sublayers.
#
# **What this notebook measures.** T1's measurement on a ViT pair *f*, *g* (SimCLR) at four
# points per block i: the attention sublayer's output (`block{i}.attn`, before its residual
# add), the residual stream after that add (`block{i}.res1`), the MLP sublayer's output
# (`block{i}.mlp`) and the block output (`block{i}`). The block's change in memorization along
# the residual stream splits into an **attention part** (`block{i-1}` → `block{i}.res1`) and
# an **MLP part** (`block{i}.res1` → `block{i}`); the sublayer outputs themselves are compared
# too. The score is T1's S_C-vs-S_I contrast (the f-vs-g offset cancels); the raw normalised
# LayerMem is listed beside it.
#
# Sizes: at the `cpu` profile a ViT-Tiny (dim 192, 12 blocks, 3 heads) with 8×8 patches
# (16 patches and a cls token per 32×32 image) trained 50 epochs on |S_S| = |S_C| = |S_I| = 500
# (the profile file's `t2` table). At patch 4 the same ViT trains at a fifth of the speed
# (measured: 10 against 53 pairs per second on one core), beyond the book's budget. The paper
# uses a ViT-Base on CIFAR-10 at 500+ epochs; its numbers are not on the poster.

# %%
from IPython.display import Markdown, display

from memloc.experiments import architectures as ax
from memloc.experiments import layers as lx
from memloc.experiments.encoders import t2_encoders
from memloc.figures import vit_block_plot
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
arch = None  # None: the ViT of the profile's t2 table (ViT-Tiny)
framework = "simclr"
seed = 0  # seed of the augmented views of the measurement
score = "contrast"  # the T1 score the verdicts use
check_learned = True  # the "learned" check: f's linear probe against an untrained encoder's
out_dir = "book/results/cpu/t2_vit_sublayers"

# %%
res = Result.start(out_dir, profile, profile_overrides)
(request,) = t2_encoders(
    profile,
    framework=framework,
    arch=arch,
    profile_overrides=profile_overrides,
)
pair = request.get()
result = lx.pair_layermem(pair, seed=seed)
res.table(result.table, "layermem_table")
Markdown(res.describe(pair, ax.vit_facts(pair, result)))

# %% [markdown]
# ## Per block: the block output and the two parts of its change
#
# `block_out`: the score at the block output; `after_attn`: at the stream after the attention
# add; `delta_attn` and `delta_mlp`: the two parts of the block's ΔLayerMem; `attn_out`,
# `mlp_out`: the sublayer outputs before their residual adds. Below it, the same for the raw
# normalised LayerMem (the paper's score).

# %%
blocks = ax.vit_blocks(result.table, score)
display(res.table(blocks, f"blocks_{score}", digits=4))
res.table(ax.vit_blocks(result.table, "layermem"), "blocks_layermem", digits=4)

# %%
res.figure(vit_block_plot(blocks, score), "blocks")

# %% [markdown]
# ## Verdicts
#
# Both claims presuppose that f memorized its candidates: they are *not testable here* when
# no measurement point's S_C-vs-S_I contrast is significant after Holm over the points. The
# two p-values of the page are Holm-adjusted together.
#
# 1. **Deeper blocks.** T1's depth test on the block outputs, on the images: each image's
#    slope of its score (raw SSLMem, each block divided by its spread over all images)
#    against the block index, the candidates' slopes against the independent images'
#    (Welch's t, permutation of the S_C/S_I labels over the images, one-sided). Spearman's ρ
#    of the block means is listed beside it as a description.
# 2. **MLP more than attention.** The MLP part of each block's change against the attention
#    part, paired over blocks 2 … N (block 1's attention part has no measured start), with a
#    one-sided Wilcoxon signed-rank test. The unit is the block (11 pairs for 12 blocks), the
#    level at which the claim is stated; the comparison of the sublayer outputs themselves is
#    listed beside it (a second view of the same question, not part of the verdict).

# %%
depth = ax.contrast_depth_trends({pair.profile.arch: (result, pair.f)}, seed=seed)
display(res.table(depth, "depth_test", digits=4))
# Learned (f's linear probe against its untrained twin's) and memorized (a layer's contrast).
res.check(check_pair(pair, learned=check_learned, layermem=result))
tests = ax.sublayer_tests(blocks)
display(res.table(tests, "sublayer_tests", digits=4))
# One family per page: Holm over its two claims.
verdicts = res.claims(*ax.vit_claims(depth, tests, score))
Markdown(res.verdicts(*ax.vit_notes(depth, tests, verdicts, score)))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(framework=framework, measurement=result.config))
