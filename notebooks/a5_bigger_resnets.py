# %% [markdown]
# # A5: Does the depth trend hold in bigger ResNets?
#
# **The paper's claim.** LayerMem of ResNet18, ResNet34 and ResNet50 (mean ± std) grows with
# depth as it does in ResNet9.
#
# **What this notebook measures.** T1's measurement on a SimCLR pair *f*, *g* of each ResNet
# (torchvision's blocks with a 3×3 stride-1 stem for small images), at the stem and every block
# output (the residual sums before each block's last ReLU are measured too and listed in the
# saved table). Mean ± std over `n_seeds` measurements with different augmented views: the
# spread of the **measurement**. The paper's std is over training runs; training each ResNet
# several times is beyond the CPU budget, so the spread here does not include training noise.
# The verdict uses T1's S_C-vs-S_I contrast.
#
# Sizes: at the `cpu` profile the ResNets run at width 0.25 (16–32–64–128 channels before the
# bottleneck expansion) on Fashion-MNIST resized to 16×16, 50 epochs on
# |S_S| = |S_C| = |S_I| = 500 (the profile file's `a5` table). Measured on one core: ResNet50
# at width 1 on 32×32 images trains at 6 pairs per second, at width 0.25 on 16×16 at 101.

# %%
from IPython.display import Markdown, display

from memloc.experiments import architectures as ax
from memloc.experiments.encoders import a5_encoders
from memloc.figures import seed_summary_panels
from memloc.regime import quality_table
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
archs = ["resnet18", "resnet34", "resnet50"]
framework = "simclr"
seed = 0  # first seed of the measurements' views
n_seeds = None  # measurements per encoder pair (at least 2); None: 3 (2 at `quick` and toy runs)
score = "contrast"  # the T1 score the verdict uses
check_learned = True  # the "learned" check: each f's linear probe against an untrained twin
out_dir = "book/results/cpu/a5_bigger_resnets"

# %%
res = Result.start(out_dir, profile, profile_overrides)
seeds = ax.measurement_seeds(profile, seed, n_seeds)
requests = a5_encoders(
    profile,
    archs=archs,
    framework=framework,
    profile_overrides=profile_overrides,
)
pairs, measured = ax.measure_pairs(requests, seeds)
first = pairs[archs[0]]
Markdown(res.describe(first, ax.resnet_facts(first, len(seeds)), others=pairs))

# %% [markdown]
# ## LayerMem per block, mean ± std over measurements
#
# The paper's raw normalised LayerMem and the contrast, on the forward path (stem and block
# outputs).

# %%
summaries = ax.seed_summaries(measured, ["layermem", "calibrated", score])
for name, summary in summaries.items():
    res.table(ax.stacked_tables(measured[name][0]), f"all_{name}")
    display(Markdown(f"**{name}**"))
    display(res.table(summary, f"layermem_{name}", digits=4))

# %%
res.figure(seed_summary_panels(summaries, score), "layermem")

# %% [markdown]
# ## Did the encoders learn?
#
# Each ResNet's f against its untrained twin (linear probe and kNN, as on the regime page); a
# ResNet whose probe is not above its twin's makes the claim *not testable here*.

# %%
probes = quality_table(pairs) if check_learned else None
if probes is not None:
    display(res.table(probes.rename_axis("setting"), "encoder_quality", index=True))

# %% [markdown]
# ## Verdict
#
# T1's depth test on each ResNet, on the images: each image's score (raw SSLMem, averaged over the
# measurements, each point of the path divided by its spread over all images) gives a slope against
# the forward position, and the candidates' slopes are compared with the independent images'
# (Welch's t, permutation of the S_C/S_I labels over the images, one-sided). Holm-adjusted over the
# three because the claim is that the trend holds in all of them: supported when every adjusted p is
# below 0.05; *not testable here* when some ResNet did not memorize (no point of its path with a
# significant S_C-vs-S_I contrast after Holm over the points) or did not learn (its f's probe not
# significantly above its untrained twin's). Spearman's ρ of the mean contrast per point is listed
# beside it.

# %%
trends = ax.contrast_depth_trends(measured, seed=seed, probes=probes)
display(res.table(trends, "depth_trends", digits=4))
res.check(ax.every_encoder_check(trends))
text = "The depth trend of memorization holds in bigger ResNets"
(verdict,) = res.claims(
    ax.every_encoder_claim(trends, text, unit="ResNet", measurements=len(seeds))
)
Markdown(res.verdicts(ax.every_encoder_note(trends, verdict, profile, each=True)))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(framework=framework))
