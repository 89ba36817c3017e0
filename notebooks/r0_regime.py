# %% [markdown]
# # Did the encoders learn, and did they memorize?
#
# Every result of this book asks *where* an encoder memorizes. That question has an answer only
# when two things hold, and this page checks both for every encoder the book trains, before
# any result page uses it:
#
# - **It learned.** A self-supervised encoder whose features are no better than those of the
#   same network at random initialisation has learned nothing a result could localize. We fit
#   a linear probe (logistic regression on standardised, spatially averaged features) and a
#   cosine kNN-20 vote on the split's downstream images, which no encoder trained on, and
#   score them on the test split, for the trained encoder *f* and for its untrained twin.
#   *f* learned when its probe gets significantly more test images right than the twin's:
#   an exact McNemar test on the same images, one-sided, p < 0.05.
# - **It memorized.** Encoder *f* trained on S_S ∪ S_C, its twin *g* on S_S ∪ S_I. If *f*
#   memorized its candidates, its LayerMem score is higher on S_C than on S_I (which only *g*
#   saw). The S_C-vs-S_I contrast per layer, as a Welch t with a one-sided p, Holm-adjusted
#   over the layers, measures how strongly; a pair with no significant layer cannot show where
#   memorization sits.
#
# The book's `cpu` profile was chosen so that these checks pass (the sweep behind it is
# `benchmarks/regime.py`, its numbers are in `memloc/profiles.toml`). The targets: every SSL
# encoder's probe at least **5 points** above the untrained one's, and a contrast of **t ≥ 5**
# at the last layer of every f/g pair (the last measurement point that is not a residual sum:
# ResNet9's layer 8, a ViT's last MLP). Encoders trained alone (F3a's data sets,
# F3c's private encoders) have no *g*, so only their probe is shown here; their result pages
# measure memorization with UnitMem and its controls. Result pages whose encoders fail a check
# record their claims as *not testable here*.

# %%
from IPython.display import Markdown, display

from memloc.experiments.encoders import book_encoders
from memloc.figures import contrast_by_layer
from memloc.regime import TARGET_T, regime_claims, regime_summary, regime_table, sweep_table
from memloc.result import Result
from memloc.utils import repo_root

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
n_probe = 2000  # probe training and test images (at most)
sweep_csv = "benchmarks/results/regime.csv"  # the regime sweep's measurements ("": none)
out_dir = "book/results/cpu/r0_regime"

# %%
res = Result.start(out_dir, profile, profile_overrides)
requests = book_encoders(profile, profile_overrides=profile_overrides)
table, t_by_layer, hashes = regime_table(requests, n_probe=n_probe)
res.table(table, "regime")

# %% [markdown]
# ## Quality, memorization and cost of every encoder
#
# `probe_f` and `knn_f` are the trained encoder's accuracy, `probe_untrained` and
# `knn_untrained` its untrained twin's, `margin` the probe difference and `probe_p` its
# one-sided McNemar p (a result page's learned check: p < 0.05 for its own encoders; the
# context claims at the end list it Holm-adjusted over this page's encoders). `t_last` is the
# S_C-vs-S_I contrast t at the last layer (`last_layer`), `t_max` the largest over the layers,
# `layers_significant` the number of layers whose contrast is significant after Holm.

# %%
res.table(table.drop(columns=["framework", "pair"]))

# %%
Markdown(regime_summary(table, profile))

# %% [markdown]
# ## Where the contrast appears
#
# The S_C-vs-S_I contrast t at every measurement point of every pair. The paper's claim that
# memorization grows with depth is about this profile of layers; a pair whose contrast is flat
# at zero has nothing to localize.

# %%
res.figure(contrast_by_layer(t_by_layer, TARGET_T), "contrast_by_layer")

# %% [markdown]
# ## The sweep behind the profile
#
# How the `cpu` profile and its experiment tables were chosen: `benchmarks/regime.py` trained
# f/g pairs under other choices on 2 CPU cores and measured them as above (probe on 2,000 →
# 2,000 test images; t on the experiment's points). One row per configuration and framework:
# what it changes from today's `cpu` profile (`experiment`: the table it starts from, `main`
# the profile itself), f's probe margin, the contrast t at the last layer and its maximum,
# and the training time per encoder. Where a target is missed above, these rows are the levers
# that were tried.

# %%
sweep_path = repo_root() / sweep_csv if sweep_csv else None
if sweep_path is not None and sweep_path.exists():
    display(res.table(sweep_table(sweep_path, "cpu"), "sweep"))

# %%
res.claims(*regime_claims(table))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(encoder_hashes=hashes, n_probe=n_probe))
