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
import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import cache_root, encoder_pair
from memloc.experiments import units as U
from memloc.figures import image_gallery, top_least_panels
from memloc.regime import check_pair
from memloc.result import Result
from memloc.stats import top_indices

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
rest = "mean"
out_dir = "book/results/cpu/a2_top_vs_least_unitmem"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(
    dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug, top_k=top_k
)
pair = encoder_pair(profile, framework, progress=False, **overrides)
p = pair.profile
k, n = p.top_k, p.n_points
sslmem = U.point_sslmem(pair)
last = sslmem.layers[-1].name
s_cand = U.calibrated_sslmem(sslmem, "candidate", last).iloc[:n]
s_held = U.calibrated_sslmem(sslmem, "heldout", last).iloc[:n]
candidates, heldout = pair.images("candidate", n), pair.images("heldout", n)
init = U.initial_encoder(p, pair.dataset.channels)
kw = dict(k_aug=p.k_aug, policy=U.unitmem_policy(p), rest=rest, seed=p.seed, cache_dir=cache_root())
measured = {
    "f, candidates": U.top_least_unitmem(pair.f, candidates, s_cand, k, **kw),
    "random init, candidates": U.top_least_unitmem(init, candidates, s_cand, k, **kw),
    "f, held-out": U.top_least_unitmem(pair.f, heldout, s_held, k, **kw),
}
per_unit = pd.concat([m.assign(encoder=name) for name, m in measured.items()], ignore_index=True)
res.table(per_unit, "unitmem_top_least_per_unit")
layers = list(dict.fromkeys(per_unit["layer"]))
deep = U.deep_layers(layers)
Markdown(
    res.describe(
        pair,
        f"k = {k} of N = {n} images per set; SSLMem with K = {sslmem.config['k_aug']} view "
        f"pairs at layer {last}; UnitMem with K = {p.k_aug} views. Deep layers (fixed in "
        f"advance: the half after the first residual connection): {', '.join(deep)}.",
    )
)

# %% [markdown]
# For context, SSLMem itself: the cross-fitted LayerMem of the Top-k and Least-k candidates
# at the last layer (from the layer results' table), and the same selection on held-out
# images.

# %%
row = sslmem.table.set_index("layer").loc[last]
res.table(
    pd.DataFrame(
        {
            "Top-k": [row["top_layermem"], row["heldout_top_layermem"]],
            "Least-k": [row["least_layermem"], row["heldout_least_layermem"]],
        },
        index=["candidates", "held-out"],
    ).rename_axis(f"LayerMem at {last}"),
    index=True,
)

# %% [markdown]
# ## Mean UnitMem per layer, Top-k against Least-k

# %%
tests = U.top_least_tests(measured, layers)
res.table(tests, "tests")
title = "UnitMem over D' = Top-k vs Least-k images (* one-sided Welch p < 0.05)"
display(res.figure(top_least_panels(tests, k=k, title=title), "top_vs_least"))

# %%
shown = tests.pivot(index="layer", columns="encoder", values=["difference", "t", "welch_p"])
shown = shown.swaplevel(axis=1)[[(e, v) for e in measured for v in ("difference", "t", "welch_p")]]
res.table(shown.reindex(layers), digits=4, index=True)

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# Top-k and Least-k are ranked by SSLMem, which ranks nothing when f learned or memorized
# nothing. **Learned**: f's linear probe (fitted on the split's downstream images, scored on
# the test split) above the untrained twin's. **Memorized**: some layer's S_C-vs-S_I
# contrast of LayerMem is significant after Holm over the layers, on the same measurement
# that ranks the images (T1's, cached); an independent measurement rather than the UnitMem
# gaps tested below. Otherwise the claims are *not testable here*.

# %%
check = check_pair(pair, layermem=sslmem)
Markdown(check.markdown)

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
f_tests = tests[tests["encoder"] == "f, candidates"]
t_top, p_top = U.all_layers_test(f_tests, deep, p="welch_p", statistic="t")
gap_tests = U.gap_against_heldout(measured["f, candidates"], measured["f, held-out"], layers)
res.table(gap_tests, "gap_vs_heldout_tests")
t_gap, p_gap = U.all_layers_test(gap_tests, deep, p="p", statistic="t")
res.claims(
    dict(
        claim="UnitMem is higher on the Top-k than on the Least-k images (deep layers)",
        test=f"one-sided Welch t per deep layer over units, k = {k}; min t, max p",
        statistic=t_top,
        p_value=p_top,
        holds=t_top > 0,
    ),
    dict(
        claim="the Top-k vs Least-k gap exceeds the same gap on held-out images (deep layers)",
        test="paired one-sided t over units of (gap on candidates − gap on held-out) per deep "
        "layer; min t, max p",
        statistic=t_gap,
        p_value=p_gap,
        holds=t_gap > 0,
    ),
    testable=check.testable,
    reason=check.reason,
)
display(
    res.table(
        gap_tests.rename(
            columns={"mean_x": "gap, candidates", "mean_y": "gap, held-out", "n": "units"}
        ),
        digits=4,
    )
)
significant = f_tests[f_tests["welch_p"] < 0.05]["layer"].tolist()
held_sig = tests[(tests["encoder"] == "f, held-out") & (tests["welch_p"] < 0.05)]["layer"]
Markdown(
    ("" if check.testable else f"*{check.reason}*\n\n")
    + res.verdicts()
    + "\n\nLayers with Top-k > Least-k at p < 0.05 (Welch): f on candidates: "
    + (", ".join(significant) or "none")
    + "; f on held-out images (control): "
    + (", ".join(held_sig) or "none")
    + f" (of {len(layers)}). The poster gives no numbers for this figure; compare the shape."
)

# %% [markdown]
# ## The two sets of images

# %%
top = top_indices(s_cand.to_numpy(), k)
least = top_indices(s_cand.to_numpy(), k, largest=False)
show = min(k, 10)
res.figure(
    image_gallery(
        candidates[list(top[:show]) + list(least[:show])],
        [f"top {i + 1}" for i in range(show)] + [f"least {i + 1}" for i in range(show)],
        ncols=show,
        title=f"Most (top row) and least (bottom row) memorized candidates, SSLMem at {last}",
    ),
    "top_least_images",
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        encoder_hashes=pair.hashes,
        top_k=k,
        n_points=n,
        k_aug=p.k_aug,
        sslmem_k_aug=sslmem.config["k_aug"],
        rest=rest,
    )
)
