"""The book: its registry of result notebooks, the notebook-side API and the pages.

``make book [PROFILE=quick|cpu|paper]`` runs ``python -m memloc.book --profile ...``, which runs
the book's Snakemake workflow (``workflow/Snakefile``, :mod:`memloc.workflow`): one job per
encoder, one Papermill job per result notebook, the claims page, then ``jupyter-book build``.
Snakemake decides what is out of date; the book never executes anything itself.

The list of result notebooks is ``book/_toc.yml`` itself: every entry ``file: results/<name>``
is the executed form of ``notebooks/<name>.py`` (Jupytext percent format). Adding a result is
one notebook file plus one line in the table of contents (plus its encoders, if it trains any
beyond the shared pairs, in :mod:`memloc.experiments.encoders`).

This module holds

- the registry (:func:`result_notebooks`) and the execution of one notebook
  (:func:`run_notebook`: Papermill injects ``profile`` and ``out_dir``; a failing cell raises
  :class:`NotebookFailed` naming the notebook and the cell), defined in
  :mod:`memloc.notebooks`,
- what notebooks call: :func:`record_claim`, :func:`provenance`, :func:`paper_numbers`,
- the pages written from the executed notebooks (:func:`write_pages`: claims table, profile
  and timing tables, the ToC of the results that exist) and :func:`build_html`.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

# The notebook registry and runner live in memloc.notebooks (which the workflow's jobs use
# without this module); they are named here too, as the notebooks' and the book's API.
from memloc.notebooks import (  # noqa: F401
    KERNEL_NAME,
    NOTEBOOKS_DIR,
    RESULTS_PREFIX,
    NotebookFailed,
    ResultNotebook,
    RunRecord,
    ensure_kernel,
    notebook_parameters,
    result_notebooks,
    run_notebook,
)
from memloc.utils import atomic_write_json, parse_key_values, relative_path, repo_root

ROOT = repo_root()
BOOK_DIR = ROOT / "book"
PAPER_NUMBERS = ROOT / "data" / "paper_numbers.csv"
CLAIM_COLUMNS = [
    "result",
    "claim",
    "test",
    "statistic",
    "p_value",
    "alpha",
    "verdict",
    "reason",
    "profile",
    "notebook",
]


# ----------------------------------------------------------------------------- claims


def record_claim(
    out_dir: str | Path,
    *,
    result: str,
    claim: str,
    test: str,
    statistic: float,
    p_value: float | None = None,
    holds: bool | None = None,
    alpha: float = 0.05,
    profile: str = "",
    context: bool = False,
    testable: bool = True,
    reason: str = "",
) -> dict:
    """Record a computed verdict on one of the paper's claims in ``<out_dir>/verdict.json``.

    Called by result notebooks. The verdict is ``"supported"`` when the test says so —
    ``p_value < alpha`` for a test in the claim's direction, and ``holds`` (an ordering or
    sign check computed from the data) when given — else ``"not supported"``. A notebook may
    record several claims; recording the same claim again replaces it.

    Parameters
    ----------
    out_dir : the notebook's ``out_dir`` parameter.
    result : the paper's label, e.g. ``"T1"``.
    claim : the paper's claim in one sentence.
    test : what was computed, e.g. ``"Spearman rho of LayerMem against depth, one-sided"``.
    statistic, p_value : the test's outcome (``p_value`` None for a pure ordering check).
    holds : a check computed from the data that must also be true (e.g. the sign).
    context : the paper makes no claim here (A8 reports numbers as context): the test is
        recorded with the verdict ``"context"`` instead of supported or not.
    testable : False when the data leave nothing to test: the encoders did not learn (probe
        not above the untrained encoder) or did not memorize (no layer's S_C-vs-S_I contrast
        significant; see :func:`memloc.stats.claim_testability`), or T5 when the most
        memorizing layers are the last ones. The verdict is then ``"not testable here"``,
        never ``"not supported"``; the statistic and p-value are still recorded.
    reason : why the claim is not testable, one sentence; shown on the claims page.
    """
    if not testable and not reason.strip():
        raise ValueError("a claim recorded as not testable needs the reason, for the claims page")
    if p_value is None and holds is None and testable:
        raise ValueError("record_claim needs a p_value, a holds check computed from data, or both")
    supported = testable
    if p_value is not None:
        supported = supported and float(p_value) < alpha
    if holds is not None:
        supported = supported and bool(holds)
    entry = {
        "result": result,
        "claim": claim,
        "test": test,
        "statistic": None if statistic is None else float(statistic),
        "p_value": None if p_value is None else float(p_value),
        "alpha": alpha if p_value is not None else None,
        "verdict": (
            "context"
            if context
            else "not testable here"
            if not testable
            else "supported"
            if supported
            else "not supported"
        ),
        "reason": "" if testable else reason.strip(),
        "profile": profile,
    }
    path = Path(out_dir) / "verdict.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [e for e in entries if (e["result"], e["claim"]) != (result, claim)] + [entry]
    atomic_write_json(path, entries)
    return entry


def collect_claims(
    notebooks: list[ResultNotebook],
    profile: str,
    results_dir: Path = BOOK_DIR / "results",
    notebooks_dir: Path = NOTEBOOKS_DIR,
    run: str | None = None,
) -> list[dict]:
    """One row per claim recorded by the notebooks executed at ``profile`` (in the results of
    ``run``, None: the profile's own); a result without an executed notebook or without a
    verdict gets a row saying which."""
    rows = []
    out_root = Path(results_dir) / (run or profile)
    for nb in notebooks:
        verdict = out_root / nb.name / "verdict.json"
        executed = (out_root / f"{nb.name}.ipynb").exists()
        if executed and verdict.exists():
            entries = json.loads(verdict.read_text())
            for entry in entries if isinstance(entries, list) else [entries]:
                rows.append({**{c: entry.get(c) for c in CLAIM_COLUMNS}, "notebook": nb.name})
            continue
        if executed:
            status = "no verdict recorded"
        elif (Path(notebooks_dir) / f"{nb.name}.py").exists():
            status = "not run at this profile"
        else:
            status = "no notebook yet"
        rows.append(
            {c: None for c in CLAIM_COLUMNS}
            | {"result": nb.result_id, "verdict": status, "profile": profile, "notebook": nb.name}
        )
    return rows


def _fmt(value, digits: int = 3) -> str:
    if value is None or value == "":
        return ""
    value = float(value)
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _md_cell(text) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def claims_markdown(
    rows: list[dict],
    profile: str,
    pages: set[str] = frozenset(),
    *,
    dataset: str | None = None,
    run: str | None = None,
    profile_overrides: dict | None = None,
) -> str:
    """The claims table as Markdown; results whose page is in ``pages`` link to it. The header
    names the profile, the data set and, for a run other than the profile's own (your data,
    changed profile keys), the run and the keys it changed."""
    header = f"Profile of this build: **{profile}**"
    if run and run != profile:
        header = f"Run **{run}** of this build: profile `{profile}`"
        if profile_overrides:
            changed = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in profile_overrides.items())
            header += f" with {_md_cell(changed)}"
    if dataset:
        header += f", data set `{_md_cell(dataset)}`"
    lines = [
        header + ".",
        "",
        "| Result | The paper's claim | Test computed | Statistic | p-value | Verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        result, name = row["result"], row.get("notebook")
        if name and RESULTS_PREFIX + name in pages:
            result = f"{{doc}}`{row['result']} </{RESULTS_PREFIX}{name}>`"
        claim = _md_cell(row["claim"]) if row["claim"] else (f"`{name}`" if name else "")
        verdict = row["verdict"]
        verdict = f"**{verdict}**" if verdict in ("supported", "not supported") else f"*{verdict}*"
        if row.get("reason"):
            # Pages state the reason as "Not testable here: ..."; the verdict already says so.
            reason = str(row["reason"])
            if reason.lower().startswith("not testable here:"):
                reason = reason.split(":", 1)[1].strip()
            verdict += f": {_md_cell(reason)}"
        lines.append(
            f"| {result} | {claim} | {_md_cell(row['test'])} | "
            f"{_fmt(row['statistic'])} | {_fmt(row['p_value'])} | {verdict} |"
        )
    if not rows:
        lines.append("| | No result notebooks are listed in the table of contents. | | | | |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- pages


def paper_numbers(result: str | None = None):
    """The paper's reported numbers (``data/paper_numbers.csv``) as a tidy DataFrame.

    Columns ``result, row, column, value, std, source``; ``result`` filters, e.g. ``"T1"``.
    """
    import pandas as pd

    df = pd.read_csv(PAPER_NUMBERS, dtype={"row": str, "column": str})
    if result is not None:
        if result not in set(df["result"]):
            raise KeyError(f"no paper numbers for {result!r}; have {sorted(set(df['result']))}")
        df = df[df["result"] == result].reset_index(drop=True)
    return df


def profiles_markdown() -> str:
    """A table of every profile's settings, read from ``memloc/profiles.toml``."""
    from memloc.profiles import load_profile, profile_names

    names = profile_names()
    profiles = [load_profile(n).to_dict() for n in names]
    keys = [k for k in profiles[0] if k not in ("name", "description")]
    lines = ["| setting | " + " | ".join(f"`{n}`" for n in names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for key in keys:
        cells = []
        for p in profiles:
            v = p[key]
            cells.append(", ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- `{p['name']}`: {p['description']}" for p in profiles]
    return "\n".join(lines) + "\n"


TRAIN_DIR = "_train"  # <results>/_train/: specs and benchmarks of the train jobs (any profile)


def timings_markdown(
    notebooks: list[ResultNotebook],
    results_dir: Path,
    runs: list[str] | None = None,
    cache_dir: str | Path | None = None,
) -> str:
    """Minutes per job of the workflow, from Snakemake's ``benchmark:`` files, for every
    profile with a plan (``<profile>/plan.json``, written by ``workflow/Snakefile``):
    each notebook job (``<profile>/benchmarks/<name>.tsv``), each train job of the profile's
    encoders (``_train/benchmarks/<entry>.tsv``) and their sum (the jobs' CPU-side cost; with
    several cores, jobs run side by side and the build's wall time is shorter).

    ``runs`` None: the profiles' own runs (a run on other data has its own book); else those
    runs (``<run>/plan.json``). An encoder that no train job trained (it was in the cache,
    ``cache_dir`` None: the encoder cache) shows the wall time its training log records,
    marked †."""
    from memloc.artifacts import cache_root
    from memloc.workflow import benchmark_seconds, logged_training_seconds

    results_dir = Path(results_dir)
    notebook_rows, train_rows = {}, {}
    logged = set()  # (label, profile) of times from a training log, not a job
    for plan_path in sorted(results_dir.glob("*/plan.json")):
        profile = plan_path.parent.name
        plan = json.loads(plan_path.read_text())
        own_run = plan.get("run", profile) == plan.get("profile", profile)
        if (profile not in runs) if runs is not None else not own_run:
            continue
        for name in plan["notebooks"]:
            seconds = benchmark_seconds(plan_path.parent / "benchmarks" / f"{name}.tsv")
            if seconds is not None:
                notebook_rows.setdefault(name, {})[profile] = seconds
        for entry, label in plan["encoders"].items():
            seconds = benchmark_seconds(results_dir / TRAIN_DIR / "benchmarks" / f"{entry}.tsv")
            if seconds is None:
                seconds = logged_training_seconds(cache_root(cache_dir) / entry)
                if seconds is not None:
                    logged.add((label, profile))
            if seconds is not None:
                train_rows.setdefault(label, {})[profile] = seconds
    profiles = sorted(
        {p for rows in (notebook_rows, train_rows) for cells in rows.values() for p in cells}
    )
    if not profiles:
        return "*No job of the workflow has run yet, so there are no timings.*\n"
    lines = ["| job | " + " | ".join(f"`{p}` (min)" for p in profiles) + " |"]
    lines.append("|---|" + "---:|" * len(profiles))

    def row(what: str, cells: dict, label: str = "") -> None:
        values = [
            f"{cells[p] / 60:.1f}" + (" †" if (label, p) in logged else "") if p in cells else ""
            for p in profiles
        ]
        lines.append(f"| {what} | " + " | ".join(values) + " |")

    for nb in notebooks:
        if nb.name in notebook_rows:
            row(f"{nb.result_id} `{nb.name}`", notebook_rows[nb.name])
    for label in sorted(train_rows):
        row(f"training {_md_cell(label)}", train_rows[label], label)
    totals = {
        p: sum(cells.get(p, 0.0) for rows in (notebook_rows, train_rows) for cells in rows.values())
        for p in profiles
    }
    lines.append(
        "| **sum of the jobs** | "
        + " | ".join(f"**{totals[p] / 60:.1f}**" for p in profiles)
        + " |"
    )
    if logged:
        lines.append(
            "\n† Trained before this workflow's train jobs (found in the cache): the wall time of "
            "the training loop from the entry's `log.json`."
        )
    return "\n".join(lines) + "\n"


# The API reference follows the pipeline; modules not listed here come after, alphabetically.
API_ORDER = [
    "data",
    "splits",
    "models",
    "augment",
    "ssl",
    "train",
    "artifacts",
    "profiles",
    "activations",
    "metrics",
    "stats",
    "probe",
    "interventions",
    "figures",
    "notebooks",
    "book",
    "report",
    "workflow",
    "utils",
]


def api_modules() -> list[str]:
    """memloc's modules, found on disk (nothing is imported), in pipeline order."""
    package = Path(__file__).resolve().parent
    tops = {p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    tops |= {p.parent.name for p in package.glob("*/__init__.py")}
    ordered = [m for m in API_ORDER if m in tops] + sorted(tops - set(API_ORDER) - {"cli"})
    out = []
    for top in ordered:
        out.append(f"memloc.{top}")
        sub = package / top
        if sub.is_dir():
            out += [
                f"memloc.{top}.{p.stem}"
                for p in sorted(sub.glob("*.py"))
                if not p.stem.startswith("_")
            ]
    return out


def api_markdown() -> str:
    """``automodule`` directives for every memloc module (members documented where defined)."""
    parts = []
    for module in api_modules():
        level = "##" if module.count(".") == 1 else "###"
        # eval-rst: autodoc emits reStructuredText, which a MyST directive would misparse.
        parts.append(f"{level} `{module}`\n\n```{{eval-rst}}\n.. automodule:: {module}\n```\n")
    return "\n".join(parts)


def _filter_toc(node, present: set[str]):
    """A copy of the ToC without ``results/<name>`` entries whose page does not exist."""
    if isinstance(node, list):
        out = [_filter_toc(child, present) for child in node]
        return [child for child in out if child is not None]
    if isinstance(node, dict):
        file = str(node.get("file", "")).removesuffix(".ipynb")
        if file.startswith(RESULTS_PREFIX) and file not in present:
            return None
        out = {}
        for key, value in node.items():
            value = _filter_toc(value, present) if isinstance(value, (list, dict)) else value
            if key in ("parts", "chapters", "sections") and isinstance(value, list) and not value:
                continue
            out[key] = value
        if "caption" in out and not any(k in out for k in ("chapters", "file")):
            return None
        return out
    return node


PARAMETER_TAGS = ("parameters", "injected-parameters")


def reader_page(executed: str | Path, page: str | Path) -> Path:
    """The executed notebook as a reader sees it: code collapsed behind Jupyter Book's toggle
    (``hide-input``: prose, figures and tables show, the code opens on a click), the parameter
    cells removed from the page (``remove-cell``) and the run's parameters listed instead in a
    closed box at the end. Outputs are untouched: the page shows what the notebook computed."""
    import nbformat

    notebook = nbformat.read(str(executed), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        extra = "remove-cell" if set(tags) & set(PARAMETER_TAGS) else "hide-input"
        if extra not in tags and "remove-input" not in tags:
            tags.append(extra)
    parameters = notebook.metadata.get("papermill", {}).get("parameters") or {}
    if parameters:
        rows = "\n".join(
            f"| `{k}` | `{json.dumps(v, default=str)}` |" for k, v in parameters.items()
        )
        notebook.cells.append(
            nbformat.v4.new_markdown_cell(
                ":::{admonition} Parameters of this run\n:class: dropdown\n\n"
                f"| parameter | value |\n|---|---|\n{rows}\n:::"
            )
        )
    nbformat.write(notebook, str(page))
    return Path(page)


def write_pages(
    notebooks: list[ResultNotebook],
    profile: str,
    *,
    book_dir: Path = BOOK_DIR,
    results_dir: Path | None = None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    run: str | None = None,
    pages_dir: Path | None = None,
) -> Path:
    """Write what the book shows for ``profile``; returns the generated ToC's path.

    The executed notebooks are read from ``<results_dir>/<run>/`` (``run`` None: the profile's
    name) and the pages below are written to ``pages_dir`` (None: ``results_dir``, the
    profile's book; a run on other data writes into its own book's ``results/``). The run's
    ``plan.json`` (written by the workflow) gives the data set the claims page names.

    - ``results/<name>.ipynb``: the executed notebook (stable path whatever the profile),
    - ``results/claims.csv`` and ``results/claims_table.md`` (included by ``claims.md``),
    - ``results/profiles_table.md`` and ``results/timings_table.md`` (reproducibility),
    - ``results/api_reference.md`` (the autodoc directives of ``api.md``),
    - ``results/_toc.yml``: ``_toc.yml`` without the results that do not exist.
    """
    book_dir = Path(book_dir)
    results_dir = Path(results_dir) if results_dir else book_dir / "results"
    pages_dir = Path(pages_dir) if pages_dir else results_dir
    pages_dir.mkdir(parents=True, exist_ok=True)
    run = run or profile
    out_root = results_dir / run
    plan_path = out_root / "plan.json"
    plan = json.loads(plan_path.read_text()) if plan_path.exists() else {}
    for stale in pages_dir.glob("*.ipynb"):  # the book shows one profile, never a mix
        stale.unlink()
    present = set()
    for nb in notebooks:
        executed = out_root / f"{nb.name}.ipynb"
        if executed.exists():  # the notebook job writes it only when every cell ran
            reader_page(executed, pages_dir / f"{nb.name}.ipynb")
            present.add(nb.page)
    # Sphinx never deletes output pages, so a result left out of this build would linger.
    for page in (book_dir / "_build" / "html" / "results").glob("*.html"):
        if RESULTS_PREFIX + page.stem not in present:
            page.unlink()

    rows = collect_claims(notebooks, profile, results_dir, notebooks_dir, run=run)
    with (pages_dir / "claims.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CLAIM_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    claims = claims_markdown(
        rows,
        profile,
        present,
        dataset=plan.get("dataset"),
        run=run,
        profile_overrides=plan.get("profile_overrides"),
    )
    (pages_dir / "claims_table.md").write_text(claims)
    (pages_dir / "profiles_table.md").write_text(profiles_markdown())
    timings = timings_markdown(notebooks, results_dir, runs=None if run == profile else [run])
    (pages_dir / "timings_table.md").write_text(timings)
    (pages_dir / "api_reference.md").write_text(api_markdown())

    tree = yaml.safe_load((book_dir / "_toc.yml").read_text())
    toc = pages_dir / "_toc.yml"
    header = "# Generated by memloc.book from book/_toc.yml: edit that file, not this one.\n"
    toc.write_text(header + yaml.safe_dump(_filter_toc(tree, present), sort_keys=False))
    return toc


def check_book_dependencies() -> None:
    """Fail early, with the fix, when a package the book build needs is missing."""
    import importlib.util

    needed = {"jupyter_book": "jupyter-book", "sphinx-mathjax-offline": "sphinx-mathjax-offline"}
    missing = [pkg for mod, pkg in needed.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise SystemExit(
            f"missing {', '.join(missing)}: run `make venv` or `pip install -e '.[book]'`"
        )


def build_html(book_dir: Path = BOOK_DIR, toc: Path | None = None) -> Path:
    """``jupyter-book build`` (execution is off in ``_config.yml``); returns ``index.html``."""
    check_book_dependencies()
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book_dir)]
    if toc is not None:
        cmd += ["--toc", str(toc)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    index = Path(book_dir) / "_build" / "html" / "index.html"
    print(f"The book: {index}")
    return index


def provenance(**extra) -> dict:
    """What a result notebook records at its end: git commit, versions, machine, plus
    ``extra`` (profile, encoder hashes, wall time, ...). Given ``profile`` (and the run's
    ``profile_overrides``) and no ``dataset``, it names the data set of that profile, so
    that every result page says which data it measured."""
    import numpy
    import torch

    from memloc import __version__
    from memloc.profiles import load_profile

    if "profile" in extra and "dataset" not in extra:
        overrides = extra.get("profile_overrides") or {}
        extra = {"dataset": load_profile(extra["profile"], **overrides).dataset, **extra}

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "memloc", "notebooks"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout or no commit yet)"
    return {
        **extra,
        "git_commit": commit,
        "memloc": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": ("cuda: " + torch.cuda.get_device_name()) if torch.cuda.is_available() else "cpu",
        "machine": f"{platform.system()} {platform.machine()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------- CLI


def _notebooks_to_run(dry_run_output: str) -> set[str]:
    """The notebooks a Snakemake dry run would execute (its ``rule notebook:`` blocks)."""
    names = set()
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output):
        if block.startswith("rule notebook:"):
            match = re.search(r"output: .*?([^/\s]+)\.ipynb", block)
            if match:
                names.add(match.group(1))
    return names


def check_only(names: list[str] | None, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """The notebooks to execute: ``names`` (``--only``), each checked against the ToC and the
    notebooks that exist, or all of those. An unknown name is an error before anything runs
    (one line, listing the valid names)."""
    present = [nb.name for nb in result_notebooks() if (notebooks_dir / f"{nb.name}.py").exists()]
    unknown = [name for name in names or [] if name not in present]
    if unknown:
        raise ValueError(
            f"--only {unknown[0]}: no such result notebook; valid names: {', '.join(present)}"
        )
    return [name for name in present if not names or name in names]


def main(argv: list[str] | None = None) -> int:
    """``python -m memloc.book``: runs the book's Snakemake workflow (``workflow/Snakefile``,
    see :mod:`memloc.workflow`) and reports a failing notebook by name and cell.

    ``--only``, ``--param`` and ``--run`` are checked before Snakemake starts
    (:func:`check_only`, :func:`memloc.workflow.resolve_run`), so a misspelt name or a
    parameter no job would use stops the build before anything trains."""
    from memloc import workflow
    from memloc.profiles import AUTO, available_profiles

    parser = argparse.ArgumentParser(
        prog="python -m memloc.book",
        description="Build the book with its Snakemake workflow: train the encoders, execute "
        "the result notebooks with Papermill, write the claims page, run Jupyter Book.",
    )
    # auto: split sizes derived from the data (memloc.profiles.AUTO), for a folder of your own.
    parser.add_argument(
        "--profile",
        default=None,
        choices=available_profiles(),
        help="default: cpu, or auto for --param dataset=imagefolder:DIR; <profile>-toy: the "
        "profile at toy sizes (a check of its workflow in minutes)",
    )
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this notebook")
    parser.add_argument("--force", action="store_true", help="re-execute even if unchanged")
    parser.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a profile key (changes every encoder and notebook, e.g. dataset=imagefolder:DIR) "
        "or a parameter of the notebooks to run",
    )
    parser.add_argument(
        "--run",
        default=None,
        metavar="NAME",
        help="name of the results folder book/results/NAME/ and its own book; default: the "
        "profile, or e.g. quick-imagefolder-<folder> when --param changes profile keys",
    )
    parser.add_argument("--list", action="store_true", help="list the notebooks and their status")
    parser.add_argument("--no-build", action="store_true", help="execute, skip jupyter-book")
    parser.add_argument("--cores", default="all", help="Snakemake's --cores (default: all)")
    parser.add_argument("--executor", default=None, choices=["local", "slurm"])
    parser.add_argument("--dry-run", action="store_true", help="show the jobs, run nothing")
    args = parser.parse_args(argv)
    config = {"params": parse_key_values(args.param, "--param")}
    if args.profile is None:  # a folder of your own: sizes from the data, not cpu's 9,000
        own = str(config["params"].get("dataset", "")).startswith("imagefolder:")
        args.profile = AUTO if own else "cpu"
    try:
        selected = check_only(args.only)
        run = workflow.resolve_run(args.profile, config["params"], selected, run=args.run)
        if not args.list:  # the data must fit the profile's sizes: say so before Snakemake
            present = check_only(None)
            optional = set(present) - set(selected)
            workflow.book_plan(args.profile, present, run=run, optional=optional)
    except (KeyError, ValueError, FileNotFoundError) as err:
        parser.exit(2, f"python -m memloc.book: error: {err.args[0] if err.args else err}\n")
    config["run"] = run.name
    if args.only:
        config["only"] = args.only
    if args.no_build:
        config["build"] = False
    extra = ["--forcerun", "notebook"] if args.force else []

    if args.list:
        cmd = workflow.snakemake_command(args.profile, config=config, dry_run=True, extra=extra)
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout[-2000:] + result.stderr[-2000:], file=sys.stderr)
            return result.returncode
        to_run = _notebooks_to_run(result.stdout + result.stderr)
        notebooks = result_notebooks()
        out_root = BOOK_DIR / "results" / run.name
        print(
            f"{len(notebooks)} result notebooks in book/_toc.yml; at profile {args.profile!r}, "
            f"run {run.name!r} (data set {run.dataset}):"
        )
        for nb in notebooks:
            if not (NOTEBOOKS_DIR / f"{nb.name}.py").exists():
                state = "no source yet"
            elif (out_root / f"{nb.name}.error.txt").exists():
                state = f"failed (see {relative_path(out_root / f'{nb.name}.error.txt', ROOT)})"
            elif nb.name in to_run:
                state = "to run" if (out_root / f"{nb.name}.ipynb").exists() else "not run"
            else:
                state = "up to date"
            print(f"  {nb.result_id:4} {nb.name:32} {state}")
        return 0

    if not args.no_build and not args.dry_run:
        check_book_dependencies()
    cmd = workflow.snakemake_command(
        args.profile,
        config=config,
        cores=args.cores,
        executor=args.executor,
        keep_going=args.keep_going,
        dry_run=args.dry_run,
        extra=extra,
    )
    print("$", " ".join(cmd[2:]), flush=True)
    start = time.time()
    returncode = subprocess.run(cmd, cwd=ROOT).returncode
    if returncode != 0:
        # Snakemake's own report names the job; the notebook's error names the cell.
        out_root = BOOK_DIR / "results" / run.name
        for error in sorted(out_root.glob("*.error.txt")):
            if error.stat().st_mtime >= start:
                print(f"\nbook build stopped: {error.read_text()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
