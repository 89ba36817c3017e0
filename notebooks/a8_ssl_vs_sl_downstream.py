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
import json
import time

from IPython.display import Markdown, display

from memloc.artifacts import encoder_pair, random_encoder
from memloc.book import provenance, record_claim
from memloc.experiments import downstream as D
from memloc.experiments import interventions as I
from memloc.figures import new_figure, save_figure, save_table
from memloc.profiles import merge_overrides
from memloc.stats import holm

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
dataset = None
arch = None
ssl_framework = "simclr"
other_datasets = None  # None: digits, or fashion-mnist when the profile's data set is digits
n_probe_train = 2000  # probe training images per data set (at most)
n_probe_test = 2000  # probe test images per data set (at most)
out_dir = "book/results/cpu/a8_ssl_vs_sl_downstream"

# %%
start = time.time()
overrides = merge_overrides(profile_overrides, dataset=dataset, arch=arch)
ssl = encoder_pair(profile, ssl_framework, progress=False, **overrides)
sl = encoder_pair(profile, "supervised", progress=False, **overrides)
p = ssl.profile
sets, skipped = I.probe_sets(ssl, other_datasets, n_train=n_probe_train, n_test=n_probe_test)
encoders = {
    f"SSL ({ssl_framework})": ssl.f,
    "SL (supervised)": sl.f,
    "untrained": random_encoder(p, seed=p.seed, in_channels=ssl.dataset.channels),
}
Markdown(
    f"Profile `{p.name}`: {p.dataset}, {p.arch} (width {p.width}); SSL trained "
    f"{p.epochs} epochs, SL {p.supervised_epochs} epochs, both on S_S ∪ S_C "
    f"({p.n_shared + p.n_candidate} images)."
    + "".join(
        f"\n\n**{name} is not available here, so it is left out:** {why}"
        for name, why in skipped.items()
    )
)

# %% [markdown]
# ## Linear-probe accuracy

# %%
table, correct = D.probe_table(encoders, sets, probe_seed=p.seed)
table["role"] = table["dataset"].map({n: s.role for n, s in sets.items()})
save_table(table, out_dir, "a8_table")
shown = table.pivot(index="encoder", columns="dataset", values="accuracy") * 100
display(shown.reindex(list(encoders)).round(2))
table.round(4)

# %%
fig, axes = new_figure(1, width=6.0, height=3.4)
ax = axes[0, 0]
names = list(encoders)
width = 0.8 / len(names)
palette = ["#d55e00", "#0072b2", "0.6"]
for j, name in enumerate(names):
    part = table[table["encoder"] == name].set_index("dataset").reindex(list(sets))
    x = [i + (j - (len(names) - 1) / 2) * width for i in range(len(sets))]
    err = [100 * (part["accuracy"] - part["ci_low"]), 100 * (part["ci_high"] - part["accuracy"])]
    ax.bar(x, 100 * part["accuracy"], width, yerr=err, capsize=3, color=palette[j], label=name)
ax.set_xticks(range(len(sets)), [f"{n}\n({s.role})" for n, s in sets.items()])
ax.set(ylabel="probe accuracy (%)", ylim=(0, 100))
ax.legend(fontsize=8)
fig.suptitle("Linear-probe accuracy with 95% Wilson intervals")
save_figure(fig, out_dir, "probe_accuracy")
display(fig)

# %% [markdown]
# ## SSL against SL on the same test images

# %%
ssl_name, sl_name = names[0], names[1]
tests = D.mcnemar_tests(correct, ssl_name, sl_name)
tests["p_holm"] = holm(tests["p"])
tests["role"] = tests["dataset"].map({n: s.role for n, s in sets.items()})
save_table(tests, out_dir, "mcnemar_ssl_vs_sl")
display(tests.round(4))
entries = [
    record_claim(
        out_dir,
        result="A8",
        claim=f"context (no claim in the paper): SSL minus SL probe accuracy on {row.dataset} "
        f"({row.role} data set)",
        test="exact McNemar test on the same test images, two-sided, Holm-adjusted",
        statistic=row.difference,
        p_value=row.p_holm,
        context=True,
        profile=profile,
    )
    for row in tests.itertuples()
]
Markdown(
    "\n\n".join(
        f"On {row.dataset} ({row.role}), SSL is {100 * abs(row.difference):.1f} points "
        f"{'above' if row.difference > 0 else 'below'} SL ({row.only_a} test images only SSL "
        f"gets right, {row.only_b} only SL; Holm p = {row.p_holm:.3g})."
        for row in tests.itertuples()
    )
)

# %% [markdown]
# ## SSL against the untrained encoder
#
# A linear probe on standardised features of a random convolutional network is a strong
# baseline on small grey-scale images. Where the SSL encoder does not beat it, its downstream
# use is small at this profile, and the interventions (T5, T6, A7) that measure changes in
# probe accuracy have little to work with.

# %%
floor = D.mcnemar_tests(correct, ssl_name, "untrained")
floor["p_holm"] = holm(floor["p"])
save_table(floor, out_dir, "mcnemar_ssl_vs_untrained")
display(floor.round(4))
Markdown(
    "\n\n".join(
        f"On {row.dataset}, SSL is {100 * abs(row.difference):.1f} points "
        f"{'above' if row.difference > 0 else 'below'} the untrained encoder "
        f"(Holm p = {row.p_holm:.3g})."
        for row in floor.itertuples()
    )
)

# %% [markdown]
# ## Provenance

# %%
info = provenance(
    profile=profile,
    profile_overrides=profile_overrides,
    encoder_hashes={"ssl": ssl.hashes, "sl": sl.hashes},
    probe_sets={name: {**s.sizes, "source": s.source} for name, s in sets.items()},
    skipped=skipped,
    wall_time_s=round(time.time() - start, 1),
)
Markdown("```json\n" + json.dumps(info, indent=2, default=str) + "\n```")
