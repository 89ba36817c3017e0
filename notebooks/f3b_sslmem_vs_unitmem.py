# %% [markdown]
# # F3b: memorized images and memorizing units
#
# **The paper's claim:** the training images an SSL encoder memorizes most (high SSLMem) are
# the ones that drive its most memorizing units (high UnitMem).
#
# **What this notebook measures:** for each of N candidate images of the SSL encoder f, its
# SSLMem at the last layer and the UnitMem of the units it drives, and the Spearman rank
# correlation between the two.
#
# - **SSLMem** of an image: the per-image LayerMem score at the last measurement point
#   ($m(x) = $ alignment of g − alignment of f, the paper's `views` variant, normalised by
#   the range over the candidates), **calibrated**: minus the mean score of held-out images
#   neither encoder saw, which removes the f-vs-g offset of the layer (methods chapter). The
#   calibration shifts every image equally and so leaves the ranks unchanged.
# - **UnitMem of the units an image drives** (defined here): at a layer, the mean UnitMem of
#   its units weighted by the image's *relative drive* of each unit,
#   $r_u(x) = \mu_u(x) / \overline{\mu_u}$ (1 = the unit's average response over the N
#   images), i.e. $\sum_u r_u(x)\,\mathrm{UnitMem}(u) / \sum_u r_u(x)$. Every image gets a
#   score (unlike "the units whose $\mu_{\max}$ it produces", which most images have none
#   of), and dividing by $\overline{\mu_u}$ removes each unit's activation scale, as UnitMem
#   itself does. UnitMem as the paper defines it (`rest = mean`), K views of the SSL
#   encoder's training augmentations.
#
# Two controls: the architecture at random initialisation (its own UnitMem and drives on the
# same images, against f's SSLMem), and f on N held-out images (their own SSLMem and
# UnitMem; f never saw them, so a correlation there comes from the images, not from
# memorization).

# %%
from IPython.display import Markdown

from memloc.artifacts import encoder_pair
from memloc.experiments import units as U
from memloc.figures import MODEL_COLORS, driven_scatter
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
dataset = None
arch = None
framework = "simclr"
seed = None
n_points = None
k_aug = None
rest = "mean"
out_dir = "book/results/cpu/f3b_sslmem_vs_unitmem"

# %%
res = Result.start(out_dir, profile, profile_overrides)
overrides = res.overrides(dataset=dataset, arch=arch, seed=seed, n_points=n_points, k_aug=k_aug)
pair = encoder_pair(profile, framework, progress=False, **overrides)
p = pair.profile
controls = U.unitmem_with_controls(pair, rest=rest)
sslmem = U.point_sslmem(pair)
last = sslmem.layers[-1].name
layers = controls.layers
s_cand = U.calibrated_sslmem(sslmem, "candidate", last)
s_held = U.calibrated_sslmem(sslmem, "heldout", last)
n = controls.config["n_points"]
if len(s_cand) < n or len(s_held) < n:
    raise ValueError(f"SSLMem was measured on fewer than {n} candidates or held-out images")
s_cand, s_held = s_cand.iloc[:n], s_held.iloc[:n]
driven = {
    "f, candidates": (U.driven_unitmem(controls.trained), s_cand),
    "random init, candidates": (U.driven_unitmem(controls.random), s_cand),
    "f, held-out": (U.driven_unitmem(controls.heldout), s_held),
}
Markdown(
    res.describe(
        pair,
        f"N = {n} images per set; UnitMem with K = {controls.config['k_aug']} views; SSLMem "
        f"with K = {sslmem.config['k_aug']} view pairs at layer {last}.",
    )
)

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# The claims relate two measures of memorization, so they say nothing when f learned or
# memorized nothing. **Learned**: f's linear probe (fitted on the split's downstream images,
# scored on the test split) above the untrained twin's. **Memorized**: some layer's
# S_C-vs-S_I contrast of LayerMem is significant after Holm over the layers, on the same
# measurement as the SSLMem above (T1's, cached). Otherwise both claims are *not testable
# here*.

# %%
check = check_pair(pair, layermem=sslmem)
Markdown(check.markdown)

# %% [markdown]
# ## Rank correlation at every layer
#
# Spearman's ρ between an image's calibrated SSLMem (last layer) and the UnitMem of the units
# it drives at each layer; one-sided p-values (ρ > 0).

# %%
rhos = U.driven_spearman(driven, layers)
res.table(rhos, "spearman_per_layer")
wide = rhos.pivot(index="layer", columns="encoder", values=["rho", "p"]).reindex(layers)
res.table(wide.swaplevel(axis=1)[[(e, v) for e in driven for v in ("rho", "p")]], index=True)

# %% [markdown]
# ## The last layer
#
# One point per image. The verdict uses this layer, where SSLMem is measured.

# %%
colors = [MODEL_COLORS["SSL"], MODEL_COLORS["random init"], MODEL_COLORS["held-out"]]
res.figure(driven_scatter(driven, rhos, last, colors), "sslmem_vs_driven_unitmem")

# %% [markdown]
# ## Verdict
#
# The claim: ρ > 0 for f on its candidates at the last layer (one-sided Spearman test).
# Beside it, whether that correlation exceeds the one on held-out images (Fisher z-test of
# two independent Spearman coefficients, one-sided): a correlation that held-out images show
# just as strongly is a property of the images, not of memorization. The two p-values are
# Holm-adjusted together (the verdicts use the adjusted ones).

# %%
at_last = rhos[rhos["layer"] == last].set_index("encoder")
main = at_last.loc["f, candidates"]
held = at_last.loc["f, held-out"]
z, p_z = U.spearman_difference(main["rho"], int(main["n"]), held["rho"], int(held["n"]))
# One family per page: Holm over its two claims.
res.claims(
    dict(
        claim="images with higher SSLMem drive units with higher UnitMem",
        test=f"Spearman rho, calibrated SSLMem vs activation-weighted UnitMem, layer {last}, "
        "one-sided",
        statistic=main["rho"],
        p_value=main["p"],
        holds=main["rho"] > 0,
    ),
    dict(
        claim="the correlation on training images exceeds that on held-out images",
        test=f"Fisher z of rho(candidates) - rho(held-out), layer {last}, one-sided",
        statistic=z,
        p_value=p_z,
        holds=z > 0,
    ),
    testable=check.testable,
    reason=check.reason,
)
rnd = at_last.loc["random init, candidates"]
Markdown(
    ("" if check.testable else f"*{check.reason}*\n\n")
    + res.verdicts()
    + f"\n\nControls at layer {last}: ρ = {rnd['rho']:.3f} (p = {rnd['p']:.2g}) at random "
    f"initialisation, ρ = {held['rho']:.3f} (p = {held['p']:.2g}) on held-out images. "
    "The poster gives no numbers for this figure; compare the shape."
)

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        encoder_hashes=pair.hashes,
        n_points=n,
        k_aug=controls.config["k_aug"],
        sslmem_k_aug=sslmem.config["k_aug"],
        rest=rest,
    )
)
