# %% [markdown]
# # A8: downstream accuracy of the SSL and the supervised encoder
#
# **What the paper shows.** Beside its memorization results, the paper reports how well its
# SSL and supervised (SL) encoders do downstream on several data sets. It makes no claim of its
# own here: the numbers are context for the SSL/SL contrasts of the unit results (F1, F2),
# showing that both encoders are useful and comparable, so that a difference in how their
# units memorize is not a difference between a working and a broken encoder.
#
# **What this notebook measures.** The linear-probe accuracy of the SSL encoder f and the SL
# encoder f of the same profile (same architecture, same training points S_S ∪ S_C), and of an
# untrained encoder of the same architecture as a floor, on:
#
# - **the pre-training data set**: the probe trains on the split's downstream points, which
#   no encoder saw, and is tested on the test split;
# - **other data sets** (parameter `other_datasets`), brought to the encoder's input size and
#   channels. Offline: scikit-learn's digits (or Fashion-MNIST when the profile is on digits);
#   under the paper profile with the data downloaded, e.g. SVHN and STL10.
#
# The probe is a logistic regression on standardised frozen features, the one T6 uses. Each
# accuracy has its 95% Wilson interval; SSL and SL are compared on the same test images by
# an exact McNemar test (two-sided, Holm-adjusted over the data sets).
#
# **Verdict.** Because the paper states no claim, the claims page lists A8 as *context*: the
# differences and their tests are shown, and no claim is marked supported or not.

# %%
from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair
from memloc.experiments import downstream as D
from memloc.experiments import interventions as I
from memloc.figures import accuracy_bars
from memloc.probe import probe_sets
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
ssl_framework = "simclr"
other_datasets = None  # None: digits, or fashion-mnist when the profile's data set is digits
n_probe_train = 2000  # probe training images per data set (at most)
n_probe_test = 2000  # probe test images per data set (at most)
out_dir = "book/results/cpu/a8_ssl_vs_sl_downstream"

# %%
res = Result.start(out_dir, profile, profile_overrides)
ssl = encoder_pair(profile, ssl_framework, progress=False, **profile_overrides)
sl = encoder_pair(profile, "supervised", progress=False, **profile_overrides)
p = ssl.profile
sets, skipped = probe_sets(ssl, other_datasets, n_train=n_probe_train, n_test=n_probe_test)
encoders = D.ssl_sl_encoders(ssl, sl)
Markdown(
    res.describe(
        ssl,
        f"SSL trained {p.epochs} epochs, SL {p.supervised_epochs} epochs, both on S_S ∪ S_C "
        f"({p.n_shared + p.n_candidate} images).",
        others={"SL": sl},
    )
    + I.skipped_markdown(skipped)
)

# %% [markdown]
# ## Linear-probe accuracy

# %%
table, correct = D.probe_accuracy_table(encoders, sets, probe_seed=p.seed)
res.table(table, "a8_table")
display(res.table(D.accuracy_grid(table, encoders), digits=2, index=True))
res.table(table, digits=4)

# %%
res.figure(accuracy_bars(table, list(encoders), I.probe_roles(sets)), "probe_accuracy")

# %% [markdown]
# ## SSL against SL on the same test images

# %%
ssl_name, sl_name, untrained = encoders
tests = D.mcnemar_holm(correct, ssl_name, sl_name, sets)
display(res.table(tests, "mcnemar_ssl_vs_sl", digits=4))
res.claims(*D.ssl_sl_claims(tests), adjust=False)
Markdown(D.ssl_vs_sl_note(tests))

# %% [markdown]
# ## SSL against the untrained encoder
#
# A linear probe on standardised features of a random convolutional network is a strong
# baseline on small grey-scale images. Where the SSL encoder does not beat it, its downstream
# use is small at this profile, and the interventions (T5, T6, A7) that measure changes in
# probe accuracy have little to work with.

# %%
floor = D.mcnemar_holm(correct, ssl_name, untrained)
display(res.table(floor, "mcnemar_ssl_vs_untrained", digits=4))
Markdown(D.ssl_vs_untrained_note(floor))

# %% [markdown]
# ## Provenance

# %%
Markdown(res.finish(probe_sets=I.probe_set_sizes(sets), skipped=skipped))
