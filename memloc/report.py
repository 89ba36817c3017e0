"""``memloc report``: a memorization report on your encoder, as a small standalone HTML book.

The report executes the analyses that apply to what you give, through the same Papermill
notebooks as the book, with your checkpoints in place of the cache's encoders (nothing is
trained):

- ``notebooks/t1_layermem.py`` (the book's T1) when f and g are given: LayerMem, ΔLM,
  Top-k / Least-k and the S_C-vs-S_I contrast per layer;
- ``notebooks/report/units.py`` for f: UnitMem per layer with its two controls (held-out images,
  random init), the μ_max images, and ClassMem beside UnitMem when the data have classes.

It then writes a front page (data set, split sizes, checkpoints with their SHA-256, wall time
of every page, the tables as CSV downloads) and builds the pages with Jupyter Book 1, offline.

Example
-------
>>> build_report("imagefolder:pics", "f.safetensors", checkpoint_g="g.safetensors",
...              arch="resnet9", out="report")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from memloc.book import build_html, reader_page
from memloc.notebooks import BOOK_DIR, NOTEBOOKS_DIR, ResultNotebook, run_notebook

PAGES_DIR = "pages"  # <out>/pages/<name>.ipynb and <out>/pages/<name>/ (tables, figures)


@dataclass(frozen=True)
class ReportPage:
    """One page of the report: a notebook, where it lives, and whether it needs g."""

    name: str
    title: str
    notebooks_dir: Path
    needs_g: bool


REPORT_PAGES = (
    ReportPage("t1_layermem", "LayerMem per layer (f against g)", NOTEBOOKS_DIR, needs_g=True),
    ReportPage("units", "UnitMem, μ_max images, ClassMem (f)", NOTEBOOKS_DIR / "report", False),
)


def report_pages(with_g: bool) -> list[ReportPage]:
    """The pages that apply: all of them with g, those reading f alone without it."""
    return [page for page in REPORT_PAGES if with_g or not page.needs_g]


def _checkpoints(checkpoint_f, checkpoint_g, arch, arch_kwargs) -> dict:
    out = {"f": str(Path(checkpoint_f).resolve())}
    if checkpoint_g:
        out["g"] = str(Path(checkpoint_g).resolve())
    if arch:
        out["arch"] = arch
    if arch_kwargs:
        out["arch_kwargs"] = dict(arch_kwargs)
    return out


def build_report(
    dataset: str,
    checkpoint_f: str | Path,
    *,
    checkpoint_g: str | Path | None = None,
    arch: str | None = None,
    arch_kwargs: dict | None = None,
    out: str | Path = "report",
    profile: str = "auto",
    framework: str = "simclr",
    overrides: dict | None = None,
    parameters: dict | None = None,
    build: bool = True,
) -> Path:
    """Execute the report's notebooks on your checkpoints and build the report in ``out``.

    Parameters
    ----------
    dataset : ``imagefolder:DIR`` (class sub-folders) or a memloc data set name; f must have
        trained on S_S ∪ S_C of the profile's split of it (and g on S_S ∪ S_I) for the scores
        to measure memorization.
    checkpoint_f, checkpoint_g : weights (``.safetensors`` or a ``torch.save`` state dict).
    arch, arch_kwargs : the checkpoints' architecture (a memloc name or ``torchvision:NAME``;
        None: the profile's) and its settings (``{"in_channels": 3, "width": 0.5}``).
    profile : ``auto`` (split sizes from the data) or a profile name.
    overrides : more profile keys (``n_points``, ``k_aug``, ``image_size``, ...).
    parameters : notebook parameters given to every page that has them (e.g. ``rest``).
    build : run Jupyter Book (False: execute the notebooks and write the pages only).

    Returns
    -------
    Path
        ``out/_build/html/index.html`` (``out/index.md`` when ``build`` is False).

    Raises
    ------
    ValueError, FileNotFoundError
        Bad data set, checkpoint or sizes, before any notebook runs (one line each).
    memloc.notebooks.NotebookFailed
        When a page fails; its message names the notebook and the cell.
    """
    from memloc.artifacts import checkpoint_pair

    start = time.time()
    out = Path(out).resolve()
    checkpoints = _checkpoints(checkpoint_f, checkpoint_g, arch, arch_kwargs)
    overrides = {"dataset": dataset, **(overrides or {})}
    # Load everything once before any notebook starts: a wrong file, architecture or folder
    # stops here with one line, not inside a kernel.
    pair = checkpoint_pair(profile, checkpoints, framework, **overrides)
    pages = report_pages(with_g=pair.g is not None)
    (out / PAGES_DIR).mkdir(parents=True, exist_ok=True)
    records = []
    for i, page in enumerate(pages, 1):
        print(f"[{i}/{len(pages)}] {page.title}: executing {page.name} …", flush=True)
        record = run_notebook(
            ResultNotebook(page.name),
            profile,
            notebooks_dir=page.notebooks_dir,
            results_dir=out,
            cwd=out,
            run=PAGES_DIR,
            parameters={
                "profile_overrides": overrides,
                "checkpoints": checkpoints,
                "framework": framework,
                **(parameters or {}),
            },
        )
        print(f"[{i}/{len(pages)}] {page.name} done in {record.seconds:.1f} s", flush=True)
        records.append(record)
    summary = {
        "dataset": dataset,
        "source": pair.dataset.source,
        "profile": pair.profile.name,
        "profile_overrides": overrides,
        "framework": framework,
        "arch": pair.f.arch,
        "arch_kwargs": pair.f.config(),
        "checkpoints": pair.checkpoints,
        "sizes": {
            "train": len(pair.dataset),
            "test": len(pair.test),
            "shared": len(pair.splits.shared),
            "candidate": len(pair.splits.candidate),
            "independent": len(pair.splits.independent),
            "heldout": len(pair.splits.heldout),
        },
        "classes": list(pair.dataset.classes),
        "pages": {r.name: {"seconds": r.seconds, "executed_at": r.executed_at} for r in records},
        "wall_time_s": round(time.time() - start, 1),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    _write_book(out, pages, summary)
    if not build:
        return out / "index.md"
    return build_html(out, toc=out / "_toc.yml")


def _write_book(out: Path, pages: list[ReportPage], summary: dict) -> None:
    """The front page, ``_toc.yml`` and ``_config.yml`` (the book's, retitled) of the report;
    its pages read like the book's (:func:`memloc.book.reader_page`)."""
    for page in pages:
        executed = out / PAGES_DIR / f"{page.name}.ipynb"
        reader_page(executed, executed)
    config = yaml.safe_load((BOOK_DIR / "_config.yml").read_text())
    config["title"] = f"memloc report: {summary['arch']} on {summary['dataset']}"
    config.pop("bibtex_bibfiles", None)  # no citations: the report has no bibliography
    config["sphinx"]["config"].pop("bibtex_reference_style", None)
    config["sphinx"]["extra_extensions"] = [
        e for e in config["sphinx"]["extra_extensions"] if not e.startswith("sphinx.ext.auto")
    ]
    config["exclude_patterns"] = [*config.get("exclude_patterns", []), "**.failed.ipynb"]
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    shutil.copytree(BOOK_DIR / "_static", out / "_static", dirs_exist_ok=True)  # the book's CSS
    toc = {
        "format": "jb-book",
        "root": "index",
        "chapters": [{"file": f"{PAGES_DIR}/{page.name}"} for page in pages],
    }
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (out / "index.md").write_text(front_page(out, pages, summary))


def _cell(value) -> str:
    return str(value).replace("|", "\\|")


def front_page(out: Path, pages: list[ReportPage], summary: dict) -> str:
    """The report's first page: what was measured, on what, in how long, and the downloads."""
    sizes = summary["sizes"]
    rows = [
        ("data set", f"`{summary['dataset']}` ({summary['source']})"),
        ("classes", f"{len(summary['classes'])}: " + ", ".join(summary["classes"][:20])),
        (
            "split",
            f"{sizes['train']} training images: S_S {sizes['shared']}, S_C {sizes['candidate']}"
            f", S_I {sizes['independent']}, held-out {sizes['heldout']}; {sizes['test']} test",
        ),
        ("profile", f"`{summary['profile']}` with {summary['profile_overrides']}"),
        ("architecture", f"`{summary['arch']}` {summary['arch_kwargs']}"),
    ]
    for role, c in summary["checkpoints"].items():
        rows.append((f"checkpoint {role}", f"`{c['path']}` (SHA-256 `{c['sha256']}`)"))
    rows.append(("wall time", f"{summary['wall_time_s']:.1f} s (notebooks and set-up)"))
    rows.append(("date", summary["date"]))
    lines = [
        "# Memorization report",
        "",
        "Made by `memloc report` from your checkpoints; nothing was trained. The scores measure "
        "memorization only if f trained on S_S ∪ S_C of this split (and g on S_S ∪ S_I): "
        "`memloc train --profile auto --set dataset=...` trains such a pair, and "
        "`splits.json` of its cache entries lists the images of each set.",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {_cell(v)} |" for k, v in rows],
        "",
        "## Pages",
        "",
        "| page | what it measures | wall time |",
        "|---|---|---|",
    ]
    for page in pages:
        seconds = summary["pages"][page.name]["seconds"]
        lines.append(f"| [{page.name}]({PAGES_DIR}/{page.name}) | {page.title} | {seconds:.1f} s |")
    if not summary["checkpoints"].get("g"):
        lines += ["", "Without `--checkpoint-g` there is no g: LayerMem (T1's page) is left out."]
    lines += ["", "## Tables (CSV)", ""]
    for page in pages:
        for csv in sorted((out / PAGES_DIR / page.name).glob("*.csv")):
            rel = csv.relative_to(out).as_posix()
            lines.append(f"- {{download}}`{rel} <{rel}>` ({page.name})")
    return "\n".join(lines) + "\n"
