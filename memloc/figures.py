"""Figure helpers shared by the result notebooks: one style, files in PNG and SVG.

Importing this module sets the seaborn theme once. The helpers return figures that pyplot
no longer manages (created, then closed): they work under any backend (Agg included), never
open windows or pile up in memory, and a notebook shows one only when a cell returns or
``display()``-s it, so no duplicate inline copies.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

# figure.dpi: a figure shown in a notebook (the book's pages) is drawn at 170 dpi, so a 4.5-inch
# figure is about as wide in pixels as the book's text column (book/_static/memloc.css).
sns.set_theme(
    context="notebook",
    style="whitegrid",
    palette="colorblind",
    rc={"savefig.dpi": 150, "figure.dpi": 170, "svg.fonttype": "none", "axes.titlesize": 11},
)

# One colour per kind of encoder across all figures of the book.
_colorblind = sns.color_palette("colorblind")
MODEL_COLORS = {
    "SSL": _colorblind[0],
    "SL": _colorblind[1],
    "held-out": _colorblind[2],
    "random init": _colorblind[7],
}
LAYERMEM_LABELS = {
    "layermem": "LayerMem",
    "calibrated": "calibrated",
    "top_layermem": "Top-k",
    "least_layermem": "Least-k",
    "scale_free": "scale-free",
}


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.5, height: float = 3.5):
    """A figure in the book's style with a grid of axes (``squeeze=False``: always 2-D).

    Return the figure from a notebook cell, or ``display(fig)``, to show it.
    """
    fig = _figure((width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _figure(figsize) -> Figure:
    # Through pyplot so the figure gets the active backend's canvas (in Jupyter that also
    # registers the inline display formatter), then closed so pyplot forgets it.
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write ``fig`` as ``<out_dir>/<name>.png`` and ``.svg``; returns both paths."""
    if not name or "/" in name or name.endswith((".png", ".svg")):
        raise ValueError(f"name must be a bare file stem like 'layermem', got {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "svg"):
        paths[ext] = out / f"{name}.{ext}"
        fig.savefig(paths[ext], bbox_inches="tight")
    return paths


def save_table(df: pd.DataFrame, out_dir: str | Path, name: str) -> Path:
    """Write ``df`` as ``<out_dir>/<name>.csv`` (no index); returns the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    df.to_csv(path, index=False)
    return path


def _palette(values) -> dict:
    values = list(dict.fromkeys(values))
    spare = iter(c for c in sns.color_palette("colorblind", 10) if c not in MODEL_COLORS.values())
    return {v: MODEL_COLORS.get(str(v)) or next(spare) for v in values}


def _require(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{what} needs column(s) {missing}; got {list(df.columns)}")


def _layer_lines(ax, table: pd.DataFrame, columns: list[str]) -> None:
    x = np.arange(len(table))
    for col in columns:
        ax.plot(x, table[col].to_numpy(float), marker="o", label=LAYERMEM_LABELS.get(col, col))
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks(x, table["layer"].astype(str), rotation=45)
    ax.set_xlabel("measurement point")
    ax.legend(fontsize=8)


def layermem_plot(
    table: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    paper: pd.DataFrame | None = None,
    title: str | None = None,
) -> Figure:
    """LayerMem per measurement point, ΔLayerMem, and the S_C-vs-S_I contrast.

    Parameters
    ----------
    table : ``LayerMemResult.table`` (rows in forward order, column ``layer``).
    columns : score columns drawn as lines; default: those of ``layermem``, ``calibrated``,
        ``top_layermem``, ``least_layermem`` present in ``table``.
    paper : optional tidy paper numbers (``memloc.book.paper_numbers("T1")``), drawn in a
        panel of their own: the scales of different data sets are not comparable.
    """
    _require(table, ["layer"], "layermem_plot")
    if columns is None:
        columns = [c for c in LAYERMEM_LABELS if c in table and c != "scale_free"]
    _require(table, columns, "layermem_plot")
    panels = ["paper"] if paper is not None else []
    panels += ["ours"] + [c for c in ("delta_layermem", "contrast") if c in table]
    # Two panels a row: four in one row are unreadable at the book's text width.
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(ncols, nrows, width=4.2, height=3.4)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat[: len(panels)], panels, strict=True):
        if panel == "paper":
            wide = paper.pivot(index="row", columns="column", values="value")
            wide = wide.reindex([str(v) for v in table["layer"]]).reset_index(names="layer")
            _layer_lines(ax, wide, [c for c in columns if c in wide])
            ax.set_title("paper (CIFAR-10, poster)")
            ax.set_ylabel("LayerMem")
        elif panel == "ours":
            _layer_lines(ax, table, columns)
            ax.set_title("memloc")
            ax.set_ylabel("LayerMem")
        else:
            x = np.arange(len(table))
            values = table[panel].to_numpy(float)
            err = None
            if panel == "contrast" and "contrast_t" in table:
                t = table["contrast_t"].to_numpy(float)
                with np.errstate(divide="ignore", invalid="ignore"):
                    err = np.where(np.abs(t) > 0, 1.96 * np.abs(values / t), 0.0)
            ax.bar(x, np.nan_to_num(values), yerr=err, color=_colorblind[0], capsize=2)
            ax.axhline(0, color="0.4", lw=0.8)
            ax.set_xticks(x, table["layer"].astype(str), rotation=45)
            ax.set_xlabel("measurement point")
            if panel == "delta_layermem":
                ax.set_title("ΔLayerMem")
            else:
                ax.set_title("contrast ½(S_C − S_I), 95% CI")
    if title:
        fig.suptitle(title)
    return fig


def unitmem_distributions(
    df: pd.DataFrame,
    *,
    value: str = "unitmem",
    hue: str = "model",
    layer: str = "layer",
    kind: str = "violin",
    title: str | None = None,
) -> Figure:
    """Distribution of a per-unit score in each layer, one colour per ``hue`` value.

    ``df`` stacks ``UnitMemResult.units`` of several encoders with a ``hue`` column such as
    ``"SSL"``, ``"SL"``, ``"random init"``, ``"held-out"``. Units marked undefined (column
    ``defined`` False) are left out. Layers keep their order of appearance.
    """
    _require(df, [value, hue, layer], "unitmem_distributions")
    if kind not in ("violin", "box"):
        raise ValueError(f"kind must be 'violin' or 'box', got {kind!r}")
    if "defined" in df:
        df = df[df["defined"].astype(bool)]
    order = list(dict.fromkeys(df[layer].astype(str)))
    data = df.assign(**{layer: df[layer].astype(str)})
    fig, axes = new_figure(width=max(5.0, 0.9 * len(order)), height=3.6)
    ax = axes[0, 0]
    common = dict(data=data, x=layer, y=value, hue=hue, order=order, ax=ax)
    common["palette"] = _palette(data[hue])
    if kind == "violin":
        sns.violinplot(**common, cut=0, inner="quart", density_norm="width", linewidth=0.8)
    else:
        sns.boxplot(**common, showfliers=False, linewidth=0.8)
    ax.set_xlabel("layer")
    ax.set_ylabel({"unitmem": "UnitMem", "classmem": "ClassMem"}.get(value, value))
    ax.legend(title=None, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    return fig


def per_unit_boxplot(
    df: pd.DataFrame,
    value: str,
    *,
    layers: list[str],
    hue: str = "model",
    ylabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """A per-unit score (e.g. UnitMem's excess over its held-out control) per layer, one box
    per ``hue`` value (``"SSL"``, ``"SL"``), with a line at zero; defined units only."""
    _require(df, [value, hue, "layer"], "per_unit_boxplot")
    data = df[df["defined"]] if "defined" in df else df
    data = data.assign(layer=data["layer"].astype(str))
    fig, axes = new_figure(width=max(5.0, 0.9 * len(layers)), height=3.4)
    ax = axes[0, 0]
    sns.boxplot(
        data=data,
        x="layer",
        y=value,
        hue=hue,
        order=[str(x) for x in layers],
        palette=_palette(data[hue]),
        showfliers=False,
        linewidth=0.8,
        ax=ax,
    )
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set(xlabel="layer", ylabel=ylabel or value)
    if title:
        ax.set_title(title)
    ax.legend(title=None, fontsize=8)
    return fig


def share_bars(
    shares: pd.DataFrame,
    *,
    order: list[str],
    chance: float,
    value: str = "fraction",
    group: str = "encoder",
    ylabel: str = "share of top units",
    title: str | None = None,
    colors: list | None = None,
) -> Figure:
    """Grouped bars of a share per layer (``order``, e.g. the layers and ``"all"``), one bar
    per ``group`` value in order of appearance (``colors`` in that order), with the chance
    level dashed (A3)."""
    _require(shares, [value, group, "layer"], "share_bars")
    groups = list(dict.fromkeys(shares[group]))
    colors = colors or sns.color_palette("colorblind", len(groups))
    fig, axes = new_figure(width=max(5.0, 0.7 * len(order)), height=3.4)
    ax = axes[0, 0]
    width = 0.8 / len(groups)
    for i, (name, color) in enumerate(zip(groups, colors, strict=True)):
        part = shares[shares[group] == name].set_index("layer").reindex(order)
        offset = (i - (len(groups) - 1) / 2) * width
        ax.bar([j + offset for j in range(len(order))], part[value], width, color=color, label=name)
    ax.axhline(chance, color="0.2", ls="--", lw=1, label=f"chance k/N = {chance:.2f}")
    ax.set_xticks(range(len(order)), order)
    ax.set(xlabel="layer", ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def dominance_scatter(dominance: pd.DataFrame, *, xlabel: str, title: str) -> Figure:
    """Units dominated per image (``total``, symlog) against its SSLMem (``sslmem``) (A3)."""
    _require(dominance, ["sslmem", "total"], "dominance_scatter")
    fig, axes = new_figure(width=4.6, height=3.4)
    ax = axes[0, 0]
    ax.scatter(
        dominance["sslmem"], dominance["total"], s=10, alpha=0.6, color=MODEL_COLORS["SSL"],
        linewidths=0,
    )  # fmt: skip
    ax.set_yscale("symlog", linthresh=10)
    ax.set(xlabel=xlabel, ylabel="units dominated (all layers)")
    ax.set_title(title, fontsize=10)
    return fig


def top_least_panels(tests: pd.DataFrame, *, k: int, title: str | None = None) -> Figure:
    """Mean UnitMem per layer of the Top-k and the Least-k images, one panel per ``encoder``
    of ``tests`` (columns ``encoder, layer, Top-k, Least-k, welch_p``), a star where the
    one-sided Welch p < 0.05 (A2)."""
    _require(tests, ["encoder", "layer", "Top-k", "Least-k", "welch_p"], "top_least_panels")
    encoders = list(dict.fromkeys(tests["encoder"]))
    fig, axes = new_figure(len(encoders), width=4.0, height=3.3)
    for ax, name in zip(axes[0], encoders, strict=True):
        part = tests[tests["encoder"] == name]
        x = range(len(part))
        ax.plot(x, part["Top-k"], marker="o", label=f"Top-{k}")
        ax.plot(x, part["Least-k"], marker="s", label=f"Least-{k}")
        for i, pv in zip(x, part["welch_p"], strict=True):
            if pv < 0.05:
                top = max(part["Top-k"].iloc[i], part["Least-k"].iloc[i])
                ax.annotate("*", (i, top), ha="center", va="bottom", fontsize=12)
        ax.set_xticks(list(x), part["layer"], rotation=45)
        ax.set(xlabel="layer", title=name)
    axes[0, 0].set_ylabel("mean UnitMem")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def shape_plot(curves: dict[str, np.ndarray], layers, *, title: str | None = None) -> Figure:
    """Curves across the measurement points, each scaled to its own maximum ``|value|``, to
    compare shapes measured on different scales (T1: the paper's LayerMem against ours)."""
    fig, axes = new_figure(width=6.5, height=3.4)
    ax = axes[0, 0]
    x = np.arange(len(layers))
    for i, (label, y) in enumerate(curves.items()):
        y = np.asarray(y, dtype=float)
        ax.plot(x, y / np.nanmax(np.abs(y)), marker="o", ls=":" if i == 1 else "-", label=label)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks(x, [str(v) for v in layers])
    ax.set_xlabel("measurement point")
    ax.set_ylabel("score / max |score|")
    ax.set_title(title or "Shape across layers, each curve scaled to its own maximum")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def agreement_heatmaps(matrices: dict[str, tuple], *, k: int, chance: float) -> Figure:
    """T3: per row (``name -> (overlap matrix, tau matrix)``) the share of top-k images two
    layers share (0 to 1) and Kendall's τ (-1 to 1), annotated."""
    fig, axes = new_figure(2, len(matrices), width=5.2, height=4.4)
    for row, (name, (overlap, tau)) in enumerate(matrices.items()):
        for col, (matrix, vmin, cmap, label, what) in enumerate(
            [
                (
                    overlap,
                    0,
                    "viridis",
                    f"top-{k} overlap (chance {chance:.2f})",
                    f"top-{k} overlap",
                ),
                (tau, -1, "vlag", "Kendall τ", "Kendall τ"),
            ]
        ):
            sns.heatmap(
                matrix, ax=axes[row, col], vmin=vmin, vmax=1, cmap=cmap, annot=True, fmt=".2f",
                annot_kws={"size": 7}, square=True, cbar_kws={"label": label},
            )  # fmt: skip
            axes[row, col].set_title(f"{name}: {what}")
    return fig


def tau_by_distance(agreement: dict[str, pd.DataFrame]) -> Figure:
    """T3: mean Kendall τ of the layer pairs the same distance apart (error bars: their
    spread), one curve per image set (candidates against held-out images)."""
    fig, axes = new_figure(width=5.5, height=3.4)
    ax = axes[0, 0]
    colors = {"candidates": MODEL_COLORS["SSL"], "held-out": MODEL_COLORS["held-out"]}
    for off, (name, a) in zip((-0.06, 0.06), agreement.items(), strict=True):
        g = a.groupby("distance")["tau"].agg(["mean", "std"])
        ax.errorbar(
            g.index + off, g["mean"], yerr=g["std"].fillna(0), marker="o", capsize=3, label=name,
            color=colors.get(name),
        )  # fmt: skip
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xlabel("distance in forward order (measurement points)")
    ax.set_ylabel("Kendall τ")
    ax.legend(fontsize=8)
    return fig


def stability_plot(sweep: pd.DataFrame, layers: list[str], sizes: list[int]) -> Figure:
    """A6: raw and calibrated LayerMem per layer, one curve per n (mean ± std over seeds)."""
    fig, axes = new_figure(2, width=5.2, height=3.6)
    x = np.arange(len(layers))
    offsets = np.linspace(-0.2, 0.2, len(sizes))
    panels = (("layermem", "raw normalised LayerMem (paper)"), ("calibrated", "calibrated"))
    for ax, (score, title) in zip(axes[0], panels, strict=True):
        for off, n in zip(offsets, sizes, strict=True):
            g = sweep[sweep["n"] == n].groupby("depth")[score].agg(["mean", "std"])
            ax.errorbar(
                x + off, g["mean"], yerr=g["std"], marker="o", ms=4, capsize=2, lw=1.2,
                label=f"n = {n}",
            )  # fmt: skip
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_xticks(x, layers, rotation=45)
        ax.set_xlabel("measurement point")
        ax.set_title(title)
    axes[0, 0].set_ylabel("LayerMem (mean ± std over seeds)")
    axes[0, 1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def driven_scatter(driven: dict, rhos: pd.DataFrame, layer: str, colors: list) -> Figure:
    """F3b: per encoder one panel of the driven units' UnitMem at ``layer`` against SSLMem,
    titled with the encoder's Spearman ρ there (``rhos``: :func:`memloc.experiments.units.
    driven_spearman`)."""
    fig, axes = new_figure(len(driven), width=3.6, height=3.3)
    for ax, (name, (frame, scores)), color in zip(axes[0], driven.items(), colors, strict=True):
        row = rhos[(rhos["encoder"] == name) & (rhos["layer"] == layer)].iloc[0]
        ax.scatter(scores, frame.loc[scores.index, layer], s=8, alpha=0.6, color=color,
                   linewidths=0)  # fmt: skip
        ax.set_title(f"{name}\nρ = {row['rho']:.2f}, p = {row['p']:.2g}", fontsize=9)
        ax.set_xlabel(f"calibrated SSLMem (layer {layer})")
    axes[0, 0].set_ylabel(f"UnitMem of driven units (layer {layer})")
    return fig


def planted_unit_panels(changes: pd.DataFrame, planted: dict, layer: str) -> Figure:
    """A4: per trained unit, every unit's UnitMem before against after training it on one
    image (the trained unit starred, the diagonal dashed)."""
    fig, axes = new_figure(len(planted), width=4.2, height=3.8)
    for ax, (which, r) in zip(axes[0], planted.items(), strict=True):
        c = changes[changes["trained_unit"] == which]
        others, mine = c[~c["trained"]], c[c["trained"]]
        ax.scatter(others["unitmem_before"], others["unitmem_after"], s=12, color="0.55",
                   label="other units")  # fmt: skip
        ax.scatter(mine["unitmem_before"], mine["unitmem_after"], s=70, color="#d55e00",
                   marker="*", label=f"trained unit {r.unit}", zorder=3)  # fmt: skip
        lim = [0, float(np.nanmax(c[["unitmem_before", "unitmem_after"]].to_numpy())) * 1.05]
        ax.plot(lim, lim, color="0.3", lw=0.8, ls="--")
        ax.set(xlabel="UnitMem before", ylabel="UnitMem after", xlim=lim, ylim=lim,
               title=f"{which}-UnitMem unit trained on image {r.image}")  # fmt: skip
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"UnitMem of every unit of layer {layer}, before vs after training one unit")
    return fig


def planted_activations(planted: dict, layer: str) -> Figure:
    """A4: per trained unit, its mean activation on every candidate before and after training,
    the planted image starred."""
    fig, axes = new_figure(len(planted), width=4.2, height=3.4)
    for ax, (which, r) in zip(axes[0], planted.items(), strict=True):
        mu_b = np.asarray(r.before.mu[layer])[:, r.unit]
        mu_a = np.asarray(r.after.mu[layer])[:, r.unit]
        x = np.arange(len(mu_b))
        ax.scatter(x, mu_b, s=6, color="0.6", label="before")
        ax.scatter(x, mu_a, s=6, color="#0072b2", label="after")
        ax.scatter([r.image], [mu_a[r.image]], s=80, color="#d55e00", marker="*", zorder=3)
        ax.axvline(r.image, color="#d55e00", lw=0.8, ls=":", label=f"planted image {r.image}")
        ax.set(xlabel="candidate image", ylabel=r"$\mu_u(x)$", title=f"{which} unit {r.unit}")
        ax.legend(fontsize=8)
    return fig


def over_training_plot(curves: pd.DataFrame, layer: str) -> Figure:
    """A1: mean UnitMem per epoch on the candidates and on held-out images (95% CI bands), and
    the excess over the held-out control (``curves``: the ``set`` of each row, as
    :func:`memloc.experiments.units.over_training_curves` gives them); a symlog epoch axis
    when the epochs span decades."""
    summary, excess = curves[curves["set"] != "excess"], curves[curves["set"] == "excess"]
    fig, axes = new_figure(2, width=4.6, height=3.4)
    ax = axes[0, 0]
    for name, color in (
        ("candidates", MODEL_COLORS["SSL"]),
        ("held-out", MODEL_COLORS["held-out"]),
    ):
        part = summary[summary["set"] == name]
        ax.plot(part["epoch"], part["mean"], marker="o", color=color, label=name)
        ax.fill_between(part["epoch"], part["low"], part["high"], color=color, alpha=0.2)
    ax.set(xlabel="epoch (0 = initialisation)", ylabel=f"mean UnitMem, layer {layer}")
    ax.set_title("UnitMem over training (95% CI)")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    color = MODEL_COLORS["SSL"]
    ax.plot(excess["epoch"], excess["mean"], marker="o", color=color)
    ax.fill_between(excess["epoch"], excess["low"], excess["high"], color=color, alpha=0.2)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set(xlabel="epoch (0 = initialisation)", ylabel="candidates − held-out")
    ax.set_title("Excess over the held-out control")
    epochs = sorted(summary["epoch"].unique())
    if max(epochs) / max(min(e for e in epochs if e > 0), 1) > 20:
        for a in axes[0]:
            a.set_xscale("symlog", linthresh=1)
    return fig


FINETUNE_COLORS = {
    "head only": "0.45",
    "last": "#0072b2",
    "most LM": "#d55e00",
    "most ΔLM": "#cc79a7",
    "least LM": "#009e73",
    "least ΔLM": "#56b4e9",
}


def finetune_plot(table: pd.DataFrame, ks, *, ylabel: str, title: str) -> Figure:
    """T5: accuracy (mean ± std over seeds) per number of fine-tuned layers k and choice of
    layers; a set is labelled where it differs from the last k layers."""
    last_labels = table[table["choice"] == "last"].set_index("k")["label"].to_dict()
    fig, axes = new_figure(1, width=6.5, height=3.6)
    ax = axes[0, 0]
    for j, (choice, color) in enumerate(FINETUNE_COLORS.items()):
        part = table[table["choice"] == choice]
        if part.empty:
            continue
        x = part["k"] + (j - 2.5) * 0.1
        ax.errorbar(x, part["mean"], yerr=part["std"], fmt="o", color=color, capsize=3,
                    label=choice)  # fmt: skip
        for xi, yi, k, lab in zip(x, part["mean"], part["k"], part["label"], strict=True):
            if choice == "last" or lab != last_labels.get(k):
                ax.annotate(lab, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xticks([0, *ks], ["head", *[str(k) for k in ks]])
    ax.set(xlabel="fine-tuned layers (k)", ylabel=ylabel)
    ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def pruning_plot(acc: pd.DataFrame, settings: list, roles: dict[str, str]) -> Figure:
    r"""T6: probe accuracy (%) after pruning the top, random (mean ± std over seeds) and low
    UnitMem units, per setting (``settings``: parsed ``PruneSetting``\ s), one panel per probe
    data set (``roles``: name -> role), no pruning dashed."""
    colors = {"top": "#d55e00", "random": "0.45", "low": "#0072b2"}
    markers = {"top": "v", "random": "o", "low": "^"}
    fig, axes = new_figure(len(roles), width=4.6, height=3.4)
    for ax, name in zip(axes[0], roles, strict=True):
        part = acc[acc["dataset"] == name]
        base = 100 * part.loc[part["strategy"] == "none", "accuracy"].iloc[0]
        for j, strategy in enumerate(("top", "random", "low")):
            values = part[part["strategy"] == strategy].groupby(["scope", "fraction"], sort=False)
            stats = values["accuracy"].agg(["mean", "std"])
            stats = stats.reindex([(s.scope, s.fraction) for s in settings])
            ax.errorbar(
                [i + (j - 1) * 0.2 for i in range(len(settings))], 100 * stats["mean"],
                yerr=100 * stats["std"] if strategy == "random" else None, fmt=markers[strategy],
                color=colors[strategy], label=strategy, capsize=3, ms=7,
            )  # fmt: skip
        ax.axhline(base, color="k", lw=1, ls="--", label="no pruning")
        ax.set_xticks(range(len(settings)), [s.label for s in settings], rotation=20)
        ax.set_xlim(-0.5, len(settings) - 0.5)
        ax.set(ylabel="probe accuracy (%)", title=f"{name} ({roles[name]})")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Accuracy after pruning by UnitMem (random: mean ± std over seeds)")
    return fig


def accuracy_bars(table: pd.DataFrame, encoders: list[str], datasets: dict[str, str]) -> Figure:
    """A8: linear-probe accuracy (%) with its 95% Wilson interval, one bar per encoder and data
    set (``datasets``: name -> role, e.g. "pre-training", "other")."""
    fig, axes = new_figure(1, width=6.0, height=3.4)
    ax = axes[0, 0]
    width = 0.8 / len(encoders)
    palette = ["#d55e00", "#0072b2", "0.6", "#009e73"]
    for j, name in enumerate(encoders):
        part = table[table["encoder"] == name].set_index("dataset").reindex(list(datasets))
        x = [i + (j - (len(encoders) - 1) / 2) * width for i in range(len(datasets))]
        err = [
            100 * (part["accuracy"] - part["ci_low"]),
            100 * (part["ci_high"] - part["accuracy"]),
        ]
        ax.bar(x, 100 * part["accuracy"], width, yerr=err, capsize=3, color=palette[j % 4],
               label=name)  # fmt: skip
    ax.set_xticks(range(len(datasets)), [f"{n}\n({role})" for n, role in datasets.items()])
    ax.set(ylabel="probe accuracy (%)", ylim=(0, 100))
    ax.legend(fontsize=8)
    fig.suptitle("Linear-probe accuracy with 95% Wilson intervals")
    return fig


def vit_block_plot(blocks: pd.DataFrame, score: str) -> Figure:
    """T2: a score per ViT block (block output, after the attention add, the attention and MLP
    sublayer outputs), and each block's change split into its attention and MLP parts."""
    fig, axes = new_figure(ncols=2, width=9.0, height=3.4)
    x = blocks["block"].to_numpy()
    a0, a1 = axes[0]
    a0.plot(x, blocks["block_out"], marker="o", label="block output")
    a0.plot(x, blocks["after_attn"], marker="s", ls=":", label="after attention add")
    a0.plot(x, blocks["attn_out"], marker="^", ls="--", label="attention sublayer output")
    a0.plot(x, blocks["mlp_out"], marker="v", ls="--", label="MLP sublayer output")
    a0.set(xlabel="block", ylabel=score, title="Memorization per block")
    a0.legend(fontsize=7)
    width = 0.38
    a1.bar(x - width / 2, blocks["delta_attn"], width, label="attention part")
    a1.bar(x + width / 2, blocks["delta_mlp"], width, label="MLP part")
    a1.axhline(0, color="0.4", lw=0.8)
    a1.set(xlabel="block", ylabel=f"Δ {score}", title="A block's change, split")
    a1.legend(fontsize=7)
    return fig


def shapes_by_group(paths: dict[str, pd.DataFrame], score: str) -> Figure:
    """T4: one panel per architecture (the first word of a label ``"<arch> <framework>"``),
    each setting's ``score`` along its forward path scaled to its own maximum ``|value|``,
    filled dots where the contrast is significant (p < 0.05)."""
    groups = list(dict.fromkeys(label.split()[0] for label in paths))
    fig, axes = new_figure(ncols=len(groups), width=4.2 * len(groups), height=3.4)
    for ax, group in zip(axes[0], groups, strict=True):
        for label, path in paths.items():
            if not label.startswith(group + " "):
                continue
            y = path[score].to_numpy(float)
            y = y / np.nanmax(np.abs(y))
            x = np.arange(len(y))
            line = ax.plot(x, y, label=label.split()[1])[0]
            sig = path["contrast_p"].to_numpy(float) < 0.05
            ax.scatter(x[sig], y[sig], color=line.get_color(), zorder=3)
            ax.set_xticks(x, path["layer"].astype(str), rotation=90, fontsize=7)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(title=group, xlabel="measurement point", ylabel=f"{score} / max |{score}|")
        ax.legend(fontsize=8)
    return fig


def seed_summary_panels(summaries: dict[str, pd.DataFrame], score: str) -> Figure:
    """A5: per encoder (name -> :func:`memloc.experiments.architectures.seed_summary`), the raw
    LayerMem and ``score`` per measurement point, mean ± std over the measurements."""
    fig, axes = new_figure(ncols=len(summaries), width=4.0 * len(summaries), height=3.2)
    for ax, (name, s) in zip(axes[0], summaries.items(), strict=True):
        x = np.arange(len(s))
        for col, style in (("layermem", ":"), (score, "-")):
            ax.errorbar(x, s[f"{col} mean"], yerr=s[f"{col} std"], ls=style, marker="o", ms=3,
                        capsize=2, label=col)  # fmt: skip
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(x, s["layer"], rotation=90, fontsize=6)
        ax.set(title=name, xlabel="measurement point")
    axes[0, -1].legend(fontsize=8)
    return fig


def swap_change_panels(
    moved: pd.DataFrame, rules, roles: dict[str, str], ks, *, title: str
) -> Figure:
    """A7: accuracy change (points) after swapping k layers, one row per ranking rule and one
    column per probe data set (name -> role); random sets as dots, the most and least
    memorizing layers as diamonds."""
    colors = {"most": "#d55e00", "random": "0.45", "least": "#0072b2"}
    fig, axes = new_figure(len(roles), len(rules), width=4.4, height=3.0)
    for row, rule in enumerate(rules):
        for col, name in enumerate(roles):
            ax = axes[row, col]
            part = moved[moved["dataset"] == name]
            rnd = part[part["strategy"] == "random"]
            ax.scatter(rnd["k"], rnd["change"], color=colors["random"], s=14, label="random")
            for strategy in ("most", "least"):
                mine = part[(part["rule"] == rule) & (part["strategy"] == strategy)]
                ax.scatter(mine["k"], mine["change"], color=colors[strategy], marker="D", s=30,
                           label=strategy)  # fmt: skip
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(ks)
            ax.set(title=f"by {rule}: {name} ({roles[name]})", xlabel="swapped layers (k)",
                   ylabel="accuracy change (points)")  # fmt: skip
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def contrast_by_layer(t_by_layer: dict[str, pd.Series], target: float) -> Figure:
    """R0: the S_C-vs-S_I contrast's t per measurement point of every f/g pair, the target
    dashed."""
    fig, axes = new_figure(1, width=7.5, height=4.0)
    ax = axes[0, 0]
    for label, t in t_by_layer.items():
        ax.plot(range(len(t)), t.to_numpy(), marker="o", label=label)
        ax.set_xticks(range(len(t)), [str(name) for name in t.index], rotation=0)
    ax.axhline(target, color="0.5", linestyle="--", linewidth=1)
    ax.axhline(0, color="0.8", linewidth=1)
    ax.set(xlabel="measurement point (depth →)", ylabel="contrast t (S_C vs S_I)")
    ax.legend(fontsize=7, ncols=2)
    return fig


def scatter_classmem_unitmem(
    df: pd.DataFrame,
    *,
    hue: str = "model",
    layer: str = "layer",
    ncols: int = 5,
    title: str | None = None,
) -> Figure:
    """ClassMem (x) against UnitMem (y) per unit, one panel per layer, coloured by ``hue``.

    ``df`` has one row per unit with columns ``layer``, ``unitmem``, ``classmem`` and ``hue``.
    Points above the diagonal favour single images, below it whole classes.
    """
    _require(df, ["unitmem", "classmem", hue, layer], "scatter_classmem_unitmem")
    if "defined" in df:
        df = df[df["defined"].astype(bool)]
    layers = list(dict.fromkeys(df[layer].astype(str)))
    ncols = max(1, min(ncols, len(layers)))
    nrows = -(-len(layers) // ncols)
    fig, axes = new_figure(ncols, nrows, width=2.6, height=2.6)
    palette = _palette(df[hue])
    for i, ax in enumerate(axes.flat):
        if i >= len(layers):
            ax.set_visible(False)
            continue
        part = df[df[layer].astype(str) == layers[i]]
        for name, group in part.groupby(hue, sort=False):
            ax.scatter(
                group["classmem"],
                group["unitmem"],
                s=6,
                alpha=0.5,
                color=palette[name],
                label=str(name),
                linewidths=0,
            )
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1), title=f"layer {layers[i]}")
        if i % ncols == 0:
            ax.set_ylabel("UnitMem")
        if i // ncols == nrows - 1:
            ax.set_xlabel("ClassMem")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", markerscale=3, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _as_hwc(images) -> np.ndarray:
    """(N, C, H, W) tensors/arrays (uint8 or float in [0, 1]) or (N, H, W[, C]) arrays as
    float (N, H, W, C) in [0, 1]."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W[, C]), got shape {arr.shape}")
    if arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    return np.clip(arr, 0.0, 1.0)


def image_gallery(
    images,
    titles: list[str] | None = None,
    *,
    ncols: int = 10,
    size: float = 1.1,
    title: str | None = None,
) -> Figure:
    """A grid of images, e.g. the Top-k and Least-k memorized points, with optional titles.

    ``images``: uint8 ``(N, C, H, W)`` as stored by ``memloc.data``, float in [0, 1], or
    numpy ``(N, H, W[, C])``. Grey images are drawn in grey.
    """
    arr = _as_hwc(images)
    n = len(arr)
    if n == 0:
        raise ValueError("image_gallery needs at least one image")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = _figure((size * ncols, size * nrows + (0.3 if title else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        img = arr[i]
        if img.shape[-1] == 1:
            ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
