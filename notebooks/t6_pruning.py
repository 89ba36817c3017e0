# %% [markdown]
# # T6: pruning units by UnitMem
#
# **The paper's claim:** the units with the highest UnitMem matter most for what the encoder
# is good for. Removing them costs more downstream accuracy than removing the same number of
# random units, and removing the units with the lowest UnitMem costs the least. The paper
# shows this in three settings: 10% and 20% of each layer's units, and 10% of all units
# ranked together.
#
# **What this notebook measures.** UnitMem of every unit of the SSL encoder f, on N of its
# candidate images (the measurement the unit notebooks use; `rest = mean`, K views of the SSL
# training augmentations). For each setting (scope × fraction) three kinds of copies of f are
# pruned:
#
# - `top`: the units with the highest UnitMem are removed;
# - `low`: the units with the lowest UnitMem are removed;
# - `random`: random units are removed, with several seeds (mean ± std).
#
# Pruning a unit sets its convolution and BatchNorm slices to zero, as the authors' scripts
# do (NOTES §3.4). Residual sums are not pruned because no single convolution owns their
# channels. Top and low choose only among units whose UnitMem is defined. For each pruned
# encoder the frozen features are computed once. A new logistic-regression probe is trained on
# standardised features and tested on two data sets:
#
# - **the pre-training data set**: the probe trains on the split's downstream points, which
#   neither f nor g saw, and is tested on the test split;
# - **another data set**, brought to the encoder's input size and channels (parameter
#   `other_dataset`). The paper uses SVHN and STL10. Offline, we use scikit-learn's digits,
#   or Fashion-MNIST when the encoder was pre-trained on digits.
#
# **The test.** Under the null hypothesis that UnitMem says nothing about how much a unit is
# used, the top and low prunings are draws like the random ones. For each setting and data
# set, a one-sided prediction t-test asks whether top's accuracy lies below the random seeds'
# distribution, and another whether low's lies above it:
# $t = (\bar a_{\rm rand} - a_{\rm top}) / (s_{\rm rand}\sqrt{1 + 1/n})$ with $n-1$ degrees
# of freedom. The verdict on each half of the claim requires every setting and data set to
# reject. This is an intersection–union test: its p-value is the largest per-setting p-value.
# With three random seeds (2 degrees of freedom) the test is strict. Even the paper's own
# CIFAR-10 numbers (top 53.04 vs random 58.09 ± 1.76) would give p ≈ 0.07 in one setting.
# The full ordering top < random < low is reported as a plain count.

# %%
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.book import paper_numbers
from memloc.experiments import interventions as I
from memloc.figures import pruning_plot
from memloc.probe import probe_sets
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
rest = "mean"
settings = ["per_layer 0.1", "per_layer 0.2", "total 0.1", "total 0.2"]
n_random = 3  # seeds of the random pruning (at least 3)
other_dataset = None  # None: digits, or fashion-mnist when the profile's data set is digits
n_probe_train = 2000  # probe training images per data set (at most)
n_probe_test = 2000  # probe test images per data set (at most)
out_dir = "book/results/cpu/t6_pruning"

# %%
res = Result.start(out_dir, profile, profile_overrides)
pair = encoder_pair(profile, framework, progress=False, **profile_overrides)
p = pair.profile
if n_random < 3:
    raise ValueError(f"n_random must be at least 3 (mean ± std over seeds), got {n_random}")
unitmem = I.candidate_unitmem(pair, rest=rest)
sets, skipped = probe_sets(pair, other_dataset, n_train=n_probe_train, n_test=n_probe_test)
display(res.table(I.probe_sets_table(sets), index=True))
Markdown(
    res.describe(
        pair,
        f"UnitMem on N = {p.n_points} candidates, K = {p.k_aug} views, rest = `{rest}`. Random "
        f"pruning over {n_random} seeds. ",
    )
    + I.skipped_markdown(skipped, "its column is left out")
)

# %% [markdown]
# ## Linear-probe accuracy after pruning

# %%
acc = I.pruning_accuracies(
    pair.f, unitmem, sets, settings=settings, random_seeds=range(n_random), probe_seed=p.seed
)
res.table(acc, "accuracy_per_encoder")
table = I.pruning_table(acc)
res.table(table.reset_index(), "t6_table", digits=2)

# %% [markdown]
# The paper's numbers beside ours, in %. The paper's CIFAR-10 column stands beside our
# pre-training data set, and its SVHN column beside our other data set. The scales do not
# match: compare the orderings within a column, not the numbers across columns. The paper
# does not report pruning 20% of all units. Its rows are empty there.

# %%
beside = I.paper_beside(table, paper_numbers("T6"), I.probe_roles(sets))
res.table(beside.reset_index(), "paper_beside_ours")

# %% [markdown]
# What each strategy removed: the number of pruned units and their mean UnitMem (for random,
# the mean over seeds), and for top and low the layers the pruned units come from. When all
# units are ranked together (`total`), UnitMem's growth with depth decides where the pruned
# units sit: low takes mostly shallow units and top mostly deep ones. The total rows therefore
# compare layers as much as units.

# %%
per_layer = I.pruned_layers(pair.f, unitmem, settings)
res.table(per_layer.reset_index(), "pruned_units_per_layer")
res.table(I.removed_units(acc, per_layer), index=True)

# %%
parsed = [I.PruneSetting.parse(s) for s in settings]
res.figure(pruning_plot(acc, parsed, I.probe_roles(sets)), "pruning_accuracy")

# %% [markdown]
# ## Did the encoders learn, and did f memorize?
#
# Pruning by UnitMem says something about memorization only when f learned and memorized.
# **Learned**: f's linear probe (fitted on the split's downstream images, scored on the test split)
# significantly above the untrained twin's. **Memorized**: some layer's S_C-vs-S_I contrast of
# LayerMem is significant after Holm over the layers (T1's measurement of the same pair, cached), a
# measurement independent of the UnitMem ranking the prunings use. Otherwise the claims are *not
# testable here*.

# %%
Markdown(res.check(check_pair(pair)))

# %% [markdown]
# ## Verdict
#
# The per-setting tests come first, then one verdict for each half of the claim (every
# setting and data set must reject), then the count of settings where the full ordering
# holds. The two p-values of the halves are Holm-adjusted together (the verdicts use the
# adjusted ones); the count has no p-value.

# %%
tests = I.ordering_tests(acc)
res.table(tests, "ordering_tests")
display(res.table(I.ordering_tests_shown(tests)))
# One family per page: Holm over its two tested claims.
res.claims(*I.pruning_claims(tests, n_random, len(settings), len(sets)), family="tests")
Markdown(res.verdicts(I.pruning_note(tests)))

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        n_points=p.n_points,
        k_aug=p.k_aug,
        rest=rest,
        settings=list(settings),
        n_random=n_random,
        probe_sets=I.probe_set_sizes(sets),
        skipped=skipped,
    )
)
