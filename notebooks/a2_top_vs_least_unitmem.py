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
import json
import time

import pandas as pd
from IPython.display import Markdown, display

from memloc.artifacts import cache_root, encoder_pair
from memloc.book import provenance, record_claim
from memloc.experiments import units as U
from memloc.figures import image_gallery, new_figure, save_figure, save_table
from memloc.profiles import merge_overrides
from memloc.regime import check_pair
from memloc.stats import holm, top_indices

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
sslmem = U.point_sslmem(pair)
last = sslmem.layers[-1].name
n = p.n_points
s_cand = U.calibrated_sslmem(sslmem, "candidate", last).iloc[:n]
s_held = U.calibrated_sslmem(sslmem, "heldout", last).iloc[:n]
candidates = pair.images("candidate", n)
heldout = pair.images("heldout", n)
init = U.initial_encoder(p, pair.dataset.channels)
kw = dict(k_aug=p.k_aug, policy=U.unitmem_policy(p), rest=rest, seed=p.seed, cache_dir=cache_root())
measured = {
    "f, candidates": U.top_least_unitmem(pair.f, candidates, s_cand, k, **kw),
    "random init, candidates": U.top_least_unitmem(init, candidates, s_cand, k, **kw),
    "f, held-out": U.top_least_unitmem(pair.f, heldout, s_held, k, **kw),
}
per_unit = pd.concat([m.assign(encoder=name) for name, m in measured.items()], ignore_index=True)
save_table(per_unit, out_dir, "unitmem_top_least_per_unit")
layers = list(dict.fromkeys(per_unit["layer"]))
deep = U.deep_layers(layers)
Markdown(
    f"Profile `{p.name}`: {p.dataset}, {p.arch} (width {p.width}), {framework}. k = {k} of "
    f"N = {n} images per set; SSLMem with K = {sslmem.config['k_aug']} view pairs at layer "
    f"{last}; UnitMem with K = {p.k_aug} views. Deep layers (fixed in advance: the half after "
    f"the first residual connection): {', '.join(deep)}."
)

# %% [markdown]
# For context, SSLMem itself: the cross-fitted LayerMem of the Top-k and Least-k candidates
# at the last layer (from the layer results' table), and the same selection on held-out
# images.

# %%
row = sslmem.table.set_index("layer").loc[last]
pd.DataFrame(
    {
        "Top-k": [row["top_layermem"], row["heldout_top_layermem"]],
        "Least-k": [row["least_layermem"], row["heldout_least_layermem"]],
    },
    index=["candidates", "held-out"],
).rename_axis(f"LayerMem at {last}").round(3)

# %% [markdown]
# ## Mean UnitMem per layer, Top-k against Least-k

# %%
tests = pd.concat(
    [
        U.compare_layers(m[m["set"] == "Top-k"], m[m["set"] == "Least-k"], layers=layers).assign(
            encoder=name
        )
        for name, m in measured.items()
    ],
    ignore_index=True,
).rename(columns={"mean_a": "Top-k", "mean_b": "Least-k"})
save_table(tests, out_dir, "tests")
fig, axes = new_figure(len(measured), width=4.0, height=3.3)
for ax, name in zip(axes[0], measured, strict=True):
    part = tests[tests["encoder"] == name]
    x = range(len(part))
    ax.plot(x, part["Top-k"], marker="o", label=f"Top-{k}")
    ax.plot(x, part["Least-k"], marker="s", label=f"Least-{k}")
    for i, pv in zip(x, part["welch_p"], strict=True):
        if pv < 0.05:
            ax.annotate(
                "*",
                (i, max(part["Top-k"].iloc[i], part["Least-k"].iloc[i])),
                ha="center",
                va="bottom",
                fontsize=12,
            )
    ax.set_xticks(list(x), part["layer"], rotation=45)
    ax.set(xlabel="layer", title=name)
axes[0, 0].set_ylabel("mean UnitMem")
axes[0, 0].legend(fontsize=8)
fig.suptitle("UnitMem over D' = Top-k vs Least-k images (* one-sided Welch p < 0.05)")
save_figure(fig, out_dir, "top_vs_least")
display(fig)

# %%
shown = tests.pivot(index="layer", columns="encoder", values=["difference", "t", "welch_p"])
shown = shown.swaplevel(axis=1)[[(e, v) for e in measured for v in ("difference", "t", "welch_p")]]
shown.reindex(layers).round(4)

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
gaps = {}
for name in ("f, candidates", "f, held-out"):
    m = measured[name]
    wide = m[m["defined"]].pivot_table(index=["layer", "unit"], columns="set", values="unitmem")
    gaps[name] = wide["Top-k"] - wide["Least-k"]
gap = pd.concat(gaps, axis=1).dropna().reset_index()
gap_tests = U.paired_tests(gap, "f, candidates", "f, held-out", layers=layers)
save_table(gap_tests, out_dir, "gap_vs_heldout_tests")
t_gap, p_gap = U.all_layers_test(gap_tests, deep, p="p", statistic="t")
# One family per page: Holm over its two claims.
p_top, p_gap = holm([p_top, p_gap])
holm_note = "; Holm over the page's 2 claims"
entries = [
    record_claim(
        out_dir,
        result="A2",
        claim="UnitMem is higher on the Top-k than on the Least-k images (deep layers)",
        test=f"one-sided Welch t per deep layer over units, k = {k}; min t, max p" + holm_note,
        statistic=t_top,
        p_value=p_top,
        holds=t_top > 0,
        profile=profile,
        testable=check.testable,
        reason=check.reason,
    ),
    record_claim(
        out_dir,
        result="A2",
        claim="the Top-k vs Least-k gap exceeds the same gap on held-out images (deep layers)",
        test="paired one-sided t over units of (gap on candidates − gap on held-out) per deep "
        "layer; min t, max p" + holm_note,
        statistic=t_gap,
        p_value=p_gap,
        holds=t_gap > 0,
        profile=profile,
        testable=check.testable,
        reason=check.reason,
    ),
]
display(
    gap_tests.rename(
        columns={"mean_x": "gap, candidates", "mean_y": "gap, held-out", "n": "units"}
    ).round(4)
)
significant = f_tests[f_tests["welch_p"] < 0.05]["layer"].tolist()
held_sig = tests[(tests["encoder"] == "f, held-out") & (tests["welch_p"] < 0.05)]["layer"]
Markdown(
    ("" if check.testable else f"*{check.reason}*\n\n")
    + U.verdict_markdown(entries)
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
fig = image_gallery(
    candidates[list(top[:show]) + list(least[:show])],
    [f"top {i + 1}" for i in range(show)] + [f"least {i + 1}" for i in range(show)],
    ncols=show,
    title=f"Most (top row) and least (bottom row) memorized candidates, SSLMem at {last}",
)
save_figure(fig, out_dir, "top_least_images")
display(fig)

# %% [markdown]
# ## Provenance

# %%
info = provenance(
    profile=profile,
    profile_overrides=profile_overrides,
    encoder_hashes=pair.hashes,
    top_k=k,
    n_points=n,
    k_aug=p.k_aug,
    sslmem_k_aug=sslmem.config["k_aug"],
    rest=rest,
    wall_time_s=round(time.time() - start, 1),
)
Markdown("```json\n" + json.dumps(info, indent=2, default=str) + "\n```")
