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
framework = "simclr"
rest = "mean"
out_dir = "book/results/cpu/f3b_sslmem_vs_unitmem"

# %%
res = Result.start(out_dir, profile, profile_overrides)
pair = encoder_pair(profile, framework, progress=False, **profile_overrides)
controls, sslmem = U.unitmem_with_controls(pair, rest=rest), U.point_sslmem(pair)
driven = U.driven_runs(U.sslmem_ranked_runs(controls, sslmem))
layers, last, c = controls.layers, sslmem.layers[-1].name, controls.config
Markdown(
    res.describe(
        pair,
        f"N = {c['n_points']} images per set; UnitMem with K = {c['k_aug']} views; SSLMem "
        f"with K = {sslmem.config['k_aug']} view pairs at layer {last}.",
    )
)

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# The claims relate two measures of memorization, so they say nothing when f learned or
# memorized nothing. **Learned**: f's linear probe (fitted on the split's downstream images,
# scored on the test split) significantly above the untrained twin's. **Memorized**: some layer's
# S_C-vs-S_I contrast of LayerMem is significant after Holm over the layers, on the same
# measurement as the SSLMem above (T1's, cached). Otherwise both claims are *not testable
# here*.

# %%
Markdown(res.check(check_pair(pair, layermem=sslmem)))

# %% [markdown]
# ## Rank correlation at every layer
#
# Spearman's ρ between an image's calibrated SSLMem (last layer) and the UnitMem of the units
# it drives at each layer; one-sided p-values (ρ > 0).

# %%
rhos = U.driven_spearman(driven, layers)
res.table(rhos, "spearman_per_layer")
res.table(U.driven_spearman_view(rhos, layers), index=True)

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
res.claims(*U.driven_claims(rhos, last))
Markdown(res.verdicts(U.driven_note(rhos, last)))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(**controls.config, sslmem_k_aug=sslmem.config["k_aug"]))
