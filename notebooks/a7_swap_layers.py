# %% [markdown]
# # A7: swapping layers with an encoder trained on another data set
#
# **The paper's claim:** the layers where an SSL encoder memorizes matter most for what it
# has learned. Replacing f's most memorizing layers with the same layers of an encoder trained
# on another data set changes its downstream accuracy more than replacing random layers, and
# replacing the least memorizing layers changes it least. The paper ranks the layers by
# LayerMem and by ΔLayerMem and swaps 1, 2 and 3 of them.
#
# **What this notebook measures.** The donor: an encoder of f's architecture, trained with the
# same framework and recipe on another data set (scikit-learn's digits resized to f's input,
# or Fashion-MNIST when f was trained on digits), through the encoder cache. Layers are ranked
# by LayerMem and ΔLayerMem of f, the T1 measurement (by default the S_C-vs-S_I contrast).
# For k = 1, 2, 3 we swap into a copy of f:
#
# - `most`: the k layers with the highest score (by LM, and separately by ΔLM);
# - `least`: the k layers with the lowest score;
# - `random`: k layers drawn at random, with several seeds.
#
# A swap copies everything of a layer, the convolution's and BatchNorm's parameters and the
# running statistics (`memloc.interventions.swap_layers`). Every swapped encoder gets a new
# linear probe (logistic regression on standardised frozen features, as in T6) on two data
# sets: f's pre-training data set (the split's downstream points, tested on the test split)
# and the donor's data set.
#
# **The test.** The movement of a swap is the absolute change in probe accuracy from f. Under
# the null hypothesis that memorization says nothing about a layer's role, the most and least
# memorizing sets are draws like the random ones. For each ranking, k and data set, a one-sided
# prediction t-test asks whether the movement of `most` lies above the random draws'
# distribution (and another whether `least` lies below it). The verdict on each ranking
# requires every k and data set to reject (intersection–union, as in T6).

# %%
from IPython.display import Markdown, display

from memloc.experiments import downstream as D
from memloc.experiments import interventions as I
from memloc.figures import swap_change_panels
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
seed = 0  # seed of the augmented views of the LayerMem measurement (T1's)
score = "contrast"  # LayerMem column that ranks the layers ("layermem": the paper's raw score)
ks = [1, 2, 3]  # numbers of swapped layers
n_random = 5  # random layer sets per k (at least 3)
donor_dataset = None  # None: digits (fashion-mnist for digits); svhn for colour images
donor_epochs = 30  # training epochs of the donor encoder
n_probe_train = 2000  # probe training images per data set (at most)
n_probe_test = 2000  # probe test images per data set (at most)
out_dir = "book/results/cpu/a7_swap_layers"

# %%
res = Result.start(out_dir, profile, profile_overrides)
if n_random < 3:
    raise ValueError(f"n_random must be at least 3 (a spread over seeds), got {n_random}")
pair, result, scores = D.pair_layer_scores(
    profile, framework, seed=seed, score=score, **profile_overrides
)
donor_name, donor, donor_entry = D.pair_donor(
    pair, donor_dataset, framework=framework, epochs=donor_epochs
)
sets = D.donor_probe_sets(pair, donor_name, n_train=n_probe_train, n_test=n_probe_test)
display(res.table(scores.reset_index(), "layer_scores", digits=4))
Markdown(
    res.describe(
        pair,
        f"Layers ranked by the `{score}` column of the LayerMem table. Donor: {donor_name}, "
        f"{donor_epochs} epochs (cache entry `{donor_entry.name}`). {n_random} random sets "
        "per k.",
    )
)

# %% [markdown]
# ## Probe accuracy after swapping

# %%
settings = D.swap_settings(scores, ks=ks, random_seeds=range(n_random))
acc = D.swap_accuracies(pair.f, donor, settings, sets, probe_seed=pair.profile.seed, progress=True)
res.table(acc, "accuracy_per_encoder")
res.table(D.swap_summary(acc), digits=2, index=True)

# %%
title = f"Probe accuracy change after swapping f's layers with the {donor_name} encoder's"
panels = swap_change_panels(D.swap_changes(acc), D.SCORES, I.probe_roles(sets), ks, title=title)
res.figure(panels, "swap_accuracy_change")

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# The layers are ranked by how much f memorizes there, which ranks nothing when f learned or
# memorized nothing. **Learned**: f's linear probe (fitted on the split's downstream images,
# scored on the test split) significantly above the untrained twin's. **Memorized**: some layer's
# S_C-vs-S_I contrast of LayerMem is significant after Holm over the layers, on the same
# measurement that ranks the layers (T1's, cached). Otherwise the claims are *not testable
# here*.

# %%
Markdown(res.check(check_pair(pair, layermem=result)))

# %% [markdown]
# ## Verdict
#
# Per claim an intersection-union over k and data set; the page's p-values are then
# Holm-adjusted together (the verdicts use the adjusted ones).

# %%
tests = D.swap_tests(acc)
display(res.table(tests, "swap_tests", digits=4))
res.claims(*D.swap_claims(tests, ks, n_random), family="tests")
Markdown(res.verdicts(D.swap_note(tests)))

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        donor={"dataset": donor_name, "epochs": donor_epochs, "entry": donor_entry.name},
        score=score,
        layermem_config=result.config,
        ks=list(ks),
        n_random=n_random,
        probe_sets=I.probe_set_sizes(sets),
    )
)
