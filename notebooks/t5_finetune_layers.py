# %% [markdown]
# # T5: fine-tuning the most memorizing layers
#
# **The paper's claim:** when an SSL encoder is adapted to a new data set, fine-tuning the
# layers where it memorizes most gives higher accuracy than fine-tuning the same number of
# last layers (ResNet9, SimCLR, CIFAR-10 → STL10: layers 6,8 reach 56.7% against 55.3% for
# 7,8, and 4,6,8 reach 57.9% against 56.5% for 6,7,8).
#
# **What this notebook measures.** LayerMem of the SSL encoder f at every layer with
# parameters (the T1 measurement; by default the S_C-vs-S_I contrast, which is free of the
# f-vs-g offset, see the methods chapter). ΔLayerMem of a layer is its score minus the score
# at the measurement point before it. For k = 1, 2, 3 we fine-tune:
#
# - `last`: the last k layers;
# - `most LM`: the k layers with the highest LayerMem;
# - `most ΔLM`: the k layers with the highest ΔLayerMem;
#
# each together with a new linear head, and the head alone (`head only`) as the baseline. As a
# control that the paper does not run, we also fine-tune the k *least* memorizing layers
# (`least LM`, `least ΔLM`): if they beat the last layers as well, what helps is fine-tuning
# a layer other than the last, not memorization.
# Everything else stays frozen. Frozen layers run in eval mode: their BatchNorm uses its
# running statistics and does not update them; fine-tuned layers run in train mode (see
# `memloc.probe.finetune_layers`). Training: Adam, no augmentation, the same epochs and
# learning rate for every set; each seed fixes the head's initialisation and the batch order,
# and the same seed is used for every set.
#
# The downstream data set differs from the pre-training one, as in the paper (CIFAR-10 →
# STL10). Offline we use scikit-learn's digits, brought to the encoder's input size, or
# Fashion-MNIST when the encoder was pre-trained on digits.
#
# **The test.** For each k and each ranking whose k layers differ from the last k, a one-sided
# paired t-test over seeds asks whether the most memorizing set beats the last layers. The
# verdict on each ranking requires every k to reject: an intersection–union test whose
# p-value is the largest per-k p-value. Where the most memorizing layers *are* the last ones,
# there is nothing to compare: the table says so, and a ranking with nothing to compare at any
# k is recorded as *not testable here*.

# %%
from IPython.display import Markdown, display

from memloc.book import paper_numbers
from memloc.experiments import downstream as D
from memloc.figures import finetune_plot
from memloc.regime import check_pair
from memloc.result import Result

# %% tags=["parameters"]
profile = "cpu"
profile_overrides = {}  # the run's profile keys (python -m memloc.book --param): every encoder
framework = "simclr"
seed = 0  # seed of the augmented views of the LayerMem measurement (T1's)
score = "contrast"  # LayerMem column that ranks the layers ("layermem": the paper's raw score)
ks = [1, 2, 3]  # sizes of the fine-tuned layer sets
n_seeds = None  # fine-tuning seeds per layer set (at least 2); None: 5 (3 at `quick` and toy runs)
least = True  # also fine-tune the least memorizing layers (a control)
epochs = 10  # fine-tuning epochs
lr = 1e-3  # Adam's learning rate
downstream = None  # None: digits, or fashion-mnist when the profile's data set is digits
n_train = None  # downstream training images (at most); None: 2000 (500 at `quick` and toy runs)
n_test = None  # downstream test images (at most); None: 2000 (500 at `quick` and toy runs)
out_dir = "book/results/cpu/t5_finetune_layers"

# %%
res = Result.start(out_dir, profile, profile_overrides)
# The quick profile only exercises the code (the tests run it): fewer seeds and images.
n_seeds, n_train, n_test = D.finetune_sizes(profile, n_seeds, n_train, n_test)
pair, result, scores = D.pair_layer_scores(
    profile, framework, seed=seed, score=score, **profile_overrides
)
display(res.table(scores.reset_index(), "layer_scores", digits=4))
probe = D.downstream_probe(pair, downstream, n_train=n_train, n_test=n_test)
Markdown(
    res.describe(
        pair,
        f"Layers ranked by the `{score}` column of the LayerMem table (N = "
        f"{result.config['n_points']['candidate']} candidates, K = {result.config['k_aug']}). "
        f"Downstream: {probe.name} ({probe.sizes['train']} training and {probe.sizes['test']} "
        f"test images; {probe.source}). {n_seeds} seeds, {epochs} epochs, Adam lr {lr}.",
    )
)

# %% [markdown]
# ## Accuracy after fine-tuning

# %%
sets = D.finetune_sets(scores, ks=ks, least=least)
acc = D.finetune_accuracies(
    pair.f, sets, probe, seeds=range(n_seeds), epochs=epochs, lr=lr, progress=True, cache=True
)
res.table(acc, "accuracy_per_seed")
table = D.finetune_table(acc)
res.table(table, "t5_table", digits=2)

# %% [markdown]
# The paper's numbers (CIFAR-10 → STL10, %) beside ours: the paper's layer sets are its own
# most memorizing and last layers; ours are chosen by our measurement, so the labels differ.
# Compare the ordering within each column, not the numbers across them.

# %%
ours, paper = D.finetune_beside_paper(table, paper_numbers("T5"))
display(res.table(ours))
res.table(paper, "paper_numbers")

# %%
title = f"Fine-tuning on {probe.name}: mean ± std over {n_seeds} seeds"
ylabel = f"{probe.name} test accuracy (%)"
res.figure(finetune_plot(table, ks, ylabel=ylabel, title=title), "finetune_accuracy")

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
# Per ranking an intersection-union over k; the two rankings' p-values are then
# Holm-adjusted together (the verdicts use the adjusted ones).

# %%
tests = D.finetune_tests(acc)
display(res.table(tests, "paired_tests", digits=4))
res.claims(*D.finetune_claims(tests, ks, n_seeds, page_reason=res.reason), family="tests")
controls = D.finetune_tests(acc, kind="least") if least else None
if least:
    display(res.table(controls, "control_tests", digits=4))
Markdown(res.verdicts(*D.finetune_notes(tests, controls)))

# %% [markdown]
# ## Provenance

# %%
Markdown(
    res.finish(
        score=score,
        layermem_config=result.config,
        ks=list(ks),
        n_seeds=n_seeds,
        epochs=epochs,
        lr=lr,
        downstream={"name": probe.name, **probe.sizes, "source": probe.source},
    )
)
