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
dataset = None  # None: the profile's data set
arch = None  # None: the ViT of the profile's t2 table (ViT-Tiny)
framework = "simclr"
seed = 0  # seed of the augmented views of the measurement
n_points = None  # candidates evaluated; None: the profile's
k_aug = None  # view pairs per image; None: the profile's
score = "contrast"  # the T1 score the verdicts use
check_learned = True  # the "learned" check: f's linear probe against an untrained encoder's
out_dir = "book/results/cpu/t2_vit_sublayers"

# %%
res = Result.start(out_dir, profile, profile_overrides)
(request,) = t2_encoders(
    profile,
    framework=framework,
    dataset=dataset,
    arch=arch,
    n_points=n_points,
    k_aug=k_aug,
    profile_overrides=profile_overrides,
)
p = request.profile
pair = request.get()
result = lx.pair_layermem(pair, seed=seed)
table = result.table
cfg = result.config
enc = pair.f
res.table(table, "layermem_table")
Markdown(
    res.describe(
        pair,
        f"t2 sizes; dim {enc.dim}, {enc.depth} blocks, {enc.num_heads} heads, patch "
        f"{enc.patch_size}, {p.epochs} epochs on |S_S| = {p.n_shared}, |S_C| = "
        f"{p.n_candidate}, |S_I| = {p.n_independent}. Evaluated: "
        f"{cfg['n_points']['candidate']} candidates, K = {cfg['k_aug']} pairs of views each.",
    )
)

# %% [markdown]
# ## Per block: the block output and the two parts of its change
#
# `block_out`: the score at the block output; `after_attn`: at the stream after the attention
# add; `delta_attn` and `delta_mlp`: the two parts of the block's ΔLayerMem; `attn_out`,
# `mlp_out`: the sublayer outputs before their residual adds. Below it, the same for the raw
# normalised LayerMem (the paper's score).

# %%
blocks = ax.vit_blocks(table, score)
display(res.table(blocks, f"blocks_{score}", digits=4))
res.table(ax.vit_blocks(table, "layermem"), "blocks_layermem", digits=4)

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
depth_table = ax.contrast_depth_trends({p.arch: (result, enc)}, seed=seed)
display(res.table(depth_table, "depth_test", digits=4))
depth = depth_table.iloc[0]
# Learned (f's linear probe against its untrained twin's) and memorized (a layer's contrast).
check = check_pair(pair, learned=check_learned, layermem=result)
probe_accuracy, untrained_accuracy = check.probe
tests = ax.sublayer_tests(blocks)
display(res.table(tests, "sublayer_tests", digits=4))
stream = tests.iloc[0]
# One family per page: Holm over its two claims.
v1, v2 = res.claims(
    dict(
        claim="In a ViT, memorization increases in the deeper blocks",
        test="per-image slope of SSLMem of the block outputs against block index, candidates vs "
        "S_I images, Welch t with a permutation over images, one-sided",
        statistic=float(depth["t"]),
        p_value=float(depth["p"]),
        holds=bool(depth["slope"] > 0),
    ),
    dict(
        claim="In a ViT, the fully-connected sublayers memorize more than attention",
        test=f"Δ {score} of the MLP part vs the attention part of each block (blocks 2..N), "
        "Wilcoxon signed-rank, one-sided",
        statistic=float(stream["W"]),
        p_value=float(stream["p"]),
        holds=bool(stream["mean mlp"] > stream["mean attention"]),
    ),
    testable=check.testable,
    reason=check.reason,
)
outputs = tests.iloc[1]
Markdown(
    (f"*{check.reason}*\n\n" if not check.testable else "")
    + f"**Deeper blocks ({v1['verdict']}).** Per image, the candidates' slope against the "
    f"block index exceeds the independents' by {depth['slope']:+.4f} standard deviations "
    f"per block (Welch t = {depth['t']:.2f}, permutation p = {depth['p']:.3g}, Holm "
    f"{v1['p_value']:.3g}); Spearman's ρ of the {depth['points']} block means is "
    f"{depth['rho']:+.2f} (p = {depth['rho p']:.3g}); the contrast is "
    f"{depth[f'{score} first']:+.4f} at block 1 and {depth[f'{score} last']:+.4f} at the "
    f"last block.\n\n"
    f"**MLP more than attention ({v2['verdict']}).** Mean MLP part "
    f"{stream['mean mlp']:+.4f} against attention part {stream['mean attention']:+.4f}; "
    f"the MLP part is the larger in {100 * stream['share mlp larger']:.0f}% of "
    f"{stream['blocks']} blocks (W = {stream['W']:.0f}, p = {stream['p']:.3g}, Holm "
    f"{v2['p_value']:.3g}). The "
    f"sublayer outputs: MLP {outputs['mean mlp']:+.4f}, attention "
    f"{outputs['mean attention']:+.4f}, MLP larger in "
    f"{100 * outputs['share mlp larger']:.0f}% of blocks (p = {outputs['p']:.3g})."
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        framework=framework,
        encoder_hashes=pair.hashes,
        measurement=cfg,
    )
)
