"""Build the book: execute the result notebooks with Papermill, then run Jupyter Book.

Run as ``python -m memloc.book --profile quick|cpu|paper [--only NAME] [--force]``
(``make book`` does this) or ``python -m memloc.book --list``.

The list of result notebooks is ``book/_toc.yml`` itself: every entry ``file: results/<name>``
is the executed form of ``notebooks/<name>.py`` (Jupytext percent format). Adding a result is
one notebook file plus one line in the table of contents.

For each result the driver

1. converts ``notebooks/<name>.py`` to a notebook with Jupytext,
2. executes it with Papermill on the ``memloc`` kernel (this interpreter), injecting the
   parameters ``profile`` and ``out_dir`` (plus any ``--param key=value``), into
   ``book/results/<profile>/<name>.ipynb``; the notebook writes its figures, tables and
   ``verdict.json`` into ``out_dir = book/results/<profile>/<name>/``,
3. skips the notebook when a stamp (``<name>.stamp.json``) shows that its inputs are
   unchanged: notebook text, parameters, the resolved profile, memloc's version and the
   content of memloc's Python sources,
4. stops at the first failing notebook with its name and failing cell (``--keep-going`` runs
   the others first); notebooks executed before stay executed.

It then writes the pages the book shows from the profile just built (``book/results/<name>.ipynb``,
the claims table, the profile and timing tables, a table of contents listing only the results
that exist) and runs ``jupyter-book build book/``; the book never executes anything itself.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from memloc.utils import atomic_write_bytes, atomic_write_json, code_digest, repo_root

ROOT = repo_root()
BOOK_DIR = ROOT / "book"
NOTEBOOKS_DIR = ROOT / "notebooks"
PAPER_NUMBERS = ROOT / "data" / "paper_numbers.csv"
KERNEL_NAME = "memloc"
RESULTS_PREFIX = "results/"
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


class NotebookFailed(RuntimeError):
    """A result notebook raised an exception; names the notebook and the failing cell."""

    def __init__(self, name: str, message: str, *, cell: int | None = None, path=None):
        super().__init__(message)
        self.name = name
        self.cell = cell
        self.path = path


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ResultNotebook:
    """One result of the book: ``notebooks/<name>.py`` shown at ``book/results/<name>``."""

    name: str

    @property
    def page(self) -> str:
        return RESULTS_PREFIX + self.name

    @property
    def result_id(self) -> str:
        """The paper's label from the prefix: ``t1_layermem`` -> ``T1``, ``f3b_x`` -> ``F3b``."""
        prefix = self.name.split("_", 1)[0]
        return prefix[:1].upper() + prefix[1:]


def _toc_entries(node):
    """Every ``file:`` value of a Jupyter Book ToC, in reading order."""
    if isinstance(node, dict):
        if "file" in node:
            yield node["file"]
        for key in ("root", "parts", "chapters", "sections"):
            if key == "root" and isinstance(node.get("root"), str):
                yield node["root"]
            elif isinstance(node.get(key), list):
                for child in node[key]:
                    yield from _toc_entries(child)
    elif isinstance(node, list):
        for child in node:
            yield from _toc_entries(child)


def result_notebooks(toc: str | Path | None = None) -> list[ResultNotebook]:
    """The result notebooks the ToC lists (entries ``results/<name>``), in reading order."""
    toc = Path(toc) if toc else BOOK_DIR / "_toc.yml"
    tree = yaml.safe_load(toc.read_text())
    out = []
    for entry in _toc_entries(tree):
        entry = str(entry).removesuffix(".ipynb")
        if entry.startswith(RESULTS_PREFIX) and "/" not in entry[len(RESULTS_PREFIX) :]:
            out.append(ResultNotebook(entry[len(RESULTS_PREFIX) :]))
    return out


# ----------------------------------------------------------------------------- inputs


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def memloc_sources(root: Path = ROOT) -> list[Path]:
    """memloc's Python sources: git's view (tracked plus untracked, not ignored) when the
    checkout is a git repository, else every ``memloc/**/*.py``."""
    package = Path(__file__).resolve().parent
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "memloc"],
            cwd=package.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        files = [package.parent / p for p in listed if p.endswith(".py")]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        files = list(package.rglob("*.py"))
    return sorted(p for p in files if p.is_file())


def code_hash() -> str:
    """Hash of memloc's Python sources (any change to their code re-executes notebooks)."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in memloc_sources():
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(code_digest(path) + b"\0")
    return h.hexdigest()


def notebook_inputs(source: Path, parameters: dict, profile: str, code: str | None = None) -> dict:
    """Everything an executed notebook depends on, as a JSON-able dict (hashed into the stamp)."""
    from memloc import __version__
    from memloc.profiles import load_profile

    return {
        "notebook_sha256": _sha256(Path(source).read_bytes()),
        "parameters": parameters,
        "profile": load_profile(profile).to_dict(),
        "memloc_version": __version__,
        "memloc_code_sha256": code if code is not None else code_hash(),
    }


def inputs_hash(inputs: dict) -> str:
    return _sha256(json.dumps(inputs, sort_keys=True, default=str).encode())


# ----------------------------------------------------------------------------- execution


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """A Jupyter kernelspec ``name`` that runs this interpreter (installed into the venv if
    missing or pointing elsewhere), so notebooks see the same memloc as the driver."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        if spec.argv and Path(spec.argv[0]) == Path(sys.executable):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    try:
        install(kernel_name=name, display_name="Python (memloc)", prefix=sys.prefix)
    except PermissionError:
        install(kernel_name=name, display_name="Python (memloc)", user=True)
    return name


def _read_notebook(source: Path):
    import jupytext

    nb = jupytext.read(source, fmt="py:percent")
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in nb.cells):
        raise ValueError(
            f"{source} has no cell tagged 'parameters'; start its parameter cell with "
            '`# %% tags=["parameters"]` so Papermill can inject profile and out_dir'
        )
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python (memloc)",
        "language": "python",
    }
    return nb


def _cell_line(source: Path, cell_source: str) -> int | None:
    """Line of ``notebooks/<name>.py`` where a cell's first non-empty line stands."""
    first = next((ln for ln in cell_source.splitlines() if ln.strip()), None)
    if first is None:
        return None
    for number, line in enumerate(Path(source).read_text().splitlines(), start=1):
        if line.rstrip() == first.rstrip():
            return number
    return None


def _failure(nb: ResultNotebook, source: Path, output: Path, err) -> NotebookFailed:
    """Turn Papermill's error into a message that names the notebook and the failing cell."""
    from papermill.exceptions import strip_color

    index = err.cell_index
    try:  # Papermill's injected-parameters cell is not a cell of the source file
        import nbformat

        cells = nbformat.read(output, as_version=4).cells
        cells = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        for i, cell in enumerate(cells):
            if cell.source == err.source:
                index = i
                injected = sum(
                    "injected-parameters" in c.metadata.get("tags", []) for c in cells[:i]
                )
                index = i - injected
                break
    except Exception:  # the message stays useful without the mapping
        pass
    cell = index + 1
    line = _cell_line(source, err.source)
    where = f"{source.name}, cell {cell}" + (f" (line {line})" if line else "")
    excerpt = "\n".join("    " + ln for ln in err.source.splitlines()[:8])
    message = (
        f"notebook {nb.name!r} failed in {where}, In [{err.exec_count}]:\n{excerpt}\n"
        f"{err.ename}: {strip_color(str(err.evalue))}\n"
        f"The partly executed notebook is {output}; notebooks executed before it are kept."
    )
    return NotebookFailed(nb.name, message, cell=cell, path=output)


@dataclass
class RunRecord:
    name: str
    status: str  # "executed" | "skipped" | "failed" | "missing"
    seconds: float | None = None
    executed_at: str | None = None
    error: str | None = None


def _relative(path: Path, cwd: Path) -> str:
    try:
        return path.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def run_notebook(
    nb: ResultNotebook,
    profile: str,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    results_dir: Path = BOOK_DIR / "results",
    cwd: Path = ROOT,
    extra_parameters: dict | None = None,
    force: bool = False,
    code: str | None = None,
    verbose: bool = False,
) -> RunRecord:
    """Execute one result notebook unless its stamp shows unchanged inputs.

    Raises
    ------
    NotebookFailed
        When a cell raises; the message names the notebook, the cell and the error.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    source = Path(notebooks_dir) / f"{nb.name}.py"
    if not source.exists():
        return RunRecord(nb.name, "missing")
    out_root = Path(results_dir) / profile
    output = out_root / f"{nb.name}.ipynb"
    stamp_path = out_root / f"{nb.name}.stamp.json"
    error_path = out_root / f"{nb.name}.error.txt"
    out_dir = out_root / nb.name
    parameters = {
        "profile": profile,
        "out_dir": _relative(out_dir, Path(cwd)),
        **(extra_parameters or {}),
    }
    inputs = notebook_inputs(source, parameters, profile, code)
    digest = inputs_hash(inputs)
    if not force and stamp_path.exists() and output.exists():
        stamp = json.loads(stamp_path.read_text())
        if stamp.get("inputs_hash") == digest:
            return RunRecord(nb.name, "skipped", stamp.get("seconds"), stamp.get("executed_at"))

    # A fresh out_dir: figures and verdicts of an earlier run must not survive into this one.
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_path.unlink(missing_ok=True)
    error_path.unlink(missing_ok=True)
    notebook = _read_notebook(source)
    kernel = ensure_kernel()
    start = time.time()
    try:
        papermill.execute_notebook(
            notebook,
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            # Local sockets: the kernel's traffic stays off TCP (and it prints no warning).
            config=Config({"KernelManager": {"transport": "ipc"}}),
            language="python",
            cwd=str(cwd),
            progress_bar=False,
            stdout_file=sys.stdout if verbose else None,
            stderr_file=sys.stderr if verbose else None,
        )
    except PapermillExecutionError as err:
        failure = _failure(nb, source, output, err)
        error_path.write_text(str(failure) + "\n")
        raise failure from None
    seconds = round(time.time() - start, 2)
    executed_at = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_json(
        stamp_path,
        {"inputs_hash": digest, "inputs": inputs, "seconds": seconds, "executed_at": executed_at},
    )
    return RunRecord(nb.name, "executed", seconds, executed_at)


# The encoders the result notebooks share. The driver trains them before the notebooks run,
# so the long step shows its progress bars in the terminal instead of inside a book page.
BOOK_FRAMEWORKS = ("simclr", "supervised")


def train_encoders(
    profile: str, frameworks=BOOK_FRAMEWORKS, extra_parameters: dict | None = None
) -> dict[str, float]:
    """Train (or find in the cache) the f/g pairs the notebooks will ask for.

    Parameters that are profile keys (``dataset``, ``arch``, ``seed``, ...) are applied as the
    notebooks apply them, so the pairs trained here are the ones the notebooks load.
    Returns the seconds spent per framework that had to be trained (cache hits are left out).
    """
    from memloc.artifacts import encoder_pair
    from memloc.profiles import Profile

    keys = {f.name for f in dataclasses.fields(Profile)} - {"name", "description"}
    overrides = {k: v for k, v in (extra_parameters or {}).items() if k in keys and v is not None}
    seconds = {}
    for framework in frameworks:
        start = time.time()
        pair = encoder_pair(profile, framework, **overrides)
        if pair.trained:
            seconds[framework] = round(time.time() - start, 2)
    return seconds


def notebook_parameters(source: Path) -> dict:
    """The values of a notebook's parameters cell (its literal assignments)."""
    cell = next(
        c for c in _read_notebook(source).cells if "parameters" in c.metadata.get("tags", [])
    )
    values = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:  # an expression, not a literal: the notebook evaluates it
                    pass
    return values


def train_notebook_encoders(
    notebooks: list[ResultNotebook],
    profile: str,
    extra_parameters: dict | None = None,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
) -> dict[str, float]:
    """Train (or find in the cache) the encoders the notebooks ask for beyond the shared pair
    (``memloc.experiments.encoders``), with their parameters as Papermill will set them.

    Returns the seconds spent per encoder that had to be trained, keyed ``<notebook> / <label>``.
    """
    from memloc.experiments.encoders import notebook_encoders

    seconds = {}
    for nb in notebooks:
        source = Path(notebooks_dir) / f"{nb.name}.py"
        if not source.exists():
            continue
        parameters = {**notebook_parameters(source), "profile": profile, **(extra_parameters or {})}
        for request in notebook_encoders(nb.name, parameters):
            print(f"encoder for {nb.name}: {request.label}", flush=True)
            start = time.time()
            if request.get(progress=True).trained:
                seconds[f"{nb.name} / {request.label}"] = round(time.time() - start, 2)
    return seconds


def write_training_times(seconds: dict[str, float], out_root: Path) -> Path | None:
    """``training.csv``: wall time of the last run that trained each pair, so the file keeps
    the time of the training that made the cached encoders."""
    trained = dict(seconds)
    if not trained:
        return None
    path = Path(out_root) / "training.csv"
    rows = {}
    if path.exists():
        with path.open() as fh:
            rows = {r["framework"]: r for r in csv.DictReader(fh)}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for framework, secs in trained.items():
        rows[framework] = {"framework": framework, "seconds": f"{secs:.2f}", "trained_at": now}
    lines = ["framework,seconds,trained_at"]
    lines += [f"{r['framework']},{r['seconds']},{r['trained_at']}" for r in rows.values()]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def write_timings(records: list[RunRecord], out_root: Path) -> Path:
    """``timings.csv`` of a profile: the wall time of the run that made each current output."""
    path = Path(out_root) / "timings.csv"
    rows = {}
    if path.exists():
        with path.open() as fh:
            rows = {row["notebook"]: row for row in csv.DictReader(fh)}
    for rec in records:
        if rec.status in ("executed", "skipped") and rec.seconds is not None:
            rows[rec.name] = {
                "notebook": rec.name,
                "seconds": f"{rec.seconds:.2f}",
                "executed_at": rec.executed_at or "",
            }
        elif rec.status in ("failed", "missing"):
            rows.pop(rec.name, None)
    lines = ["notebook,seconds,executed_at"]
    lines += [f"{r['notebook']},{r['seconds']},{r['executed_at']}" for r in rows.values()]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def execute_notebooks(
    notebooks: list[ResultNotebook],
    profile: str,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    results_dir: Path = BOOK_DIR / "results",
    cwd: Path = ROOT,
    only: list[str] | None = None,
    force: bool = False,
    keep_going: bool = False,
    extra_parameters: dict | None = None,
    verbose: bool = False,
) -> list[RunRecord]:
    """Execute (or skip) each notebook in order and record ``timings.csv``.

    Stops at the first failure (after writing the timings of those before it) unless
    ``keep_going``, which runs the rest and then raises for the first failure.
    """
    if only:
        known = {nb.name for nb in notebooks}
        unknown = sorted(set(only) - known)
        if unknown:
            raise KeyError(
                f"--only {unknown}: not in the table of contents; known: {sorted(known)}"
            )
        notebooks = [nb for nb in notebooks if nb.name in only]
    code = code_hash()
    records, failures = [], []
    for i, nb in enumerate(notebooks, start=1):
        print(f"[{i}/{len(notebooks)}] {nb.name}: ", end="", flush=True)
        try:
            rec = run_notebook(
                nb,
                profile,
                notebooks_dir=notebooks_dir,
                results_dir=results_dir,
                cwd=cwd,
                extra_parameters=extra_parameters,
                force=force,
                code=code,
                verbose=verbose,
            )
        except NotebookFailed as err:
            print("FAILED")
            records.append(RunRecord(nb.name, "failed", error=str(err)))
            failures.append(err)
            if not keep_going:
                break
            continue
        records.append(rec)
        if rec.status == "missing":
            print(f"no notebooks/{nb.name}.py yet, left out of the book")
        elif rec.status == "skipped":
            print("inputs unchanged, kept the executed notebook")
        else:
            print(f"executed in {rec.seconds:.1f} s")
    write_timings(records, Path(results_dir) / profile)
    if failures:
        raise failures[0]
    return records


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
) -> list[dict]:
    """One row per claim recorded by the notebooks executed at ``profile``; a result without
    an executed notebook or without a verdict gets a row saying which."""
    rows = []
    out_root = Path(results_dir) / profile
    for nb in notebooks:
        verdict = out_root / nb.name / "verdict.json"
        executed = (out_root / f"{nb.name}.stamp.json").exists()
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


def claims_markdown(rows: list[dict], profile: str, pages: set[str] = frozenset()) -> str:
    """The claims table as Markdown; results whose page is in ``pages`` link to it."""
    lines = [
        f"Profile of this build: **{profile}**.",
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


def timings_markdown(notebooks: list[ResultNotebook], results_dir: Path) -> str:
    """Minutes per notebook, and per encoder pair trained by the driver, for every profile
    with a ``timings.csv``."""
    tables = {}
    for path in sorted(Path(results_dir).glob("*/timings.csv")):
        with path.open() as fh:
            rows = {r["notebook"]: float(r["seconds"]) for r in csv.DictReader(fh)}
        if rows:
            tables[path.parent.name] = rows
    if not tables:
        return "*No notebook has been executed yet, so there are no timings.*\n"
    profiles = list(tables)
    lines = ["| notebook | " + " | ".join(f"`{p}` (min)" for p in profiles) + " |"]
    lines.append("|---|" + "---:|" * len(profiles))
    for nb in notebooks:
        cells = [f"{tables[p][nb.name] / 60:.1f}" if nb.name in tables[p] else "" for p in profiles]
        lines.append(f"| {nb.result_id} `{nb.name}` | " + " | ".join(cells) + " |")
    training = {}
    for p in profiles:
        path = Path(results_dir) / p / "training.csv"
        if path.exists():
            with path.open() as fh:
                training[p] = {r["framework"]: float(r["seconds"]) for r in csv.DictReader(fh)}
    for framework in sorted({fw for rows in training.values() for fw in rows}):
        cells = [
            f"{training[p][framework] / 60:.1f}" if framework in training.get(p, {}) else ""
            for p in profiles
        ]
        what = (
            f"training `{framework}`"  # a notebook's own encoder: "<notebook> / <label>"
            if " / " in framework
            else f"training the `{framework}` pair (f, g)"
        )
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    totals = [
        f"**{(sum(tables[p].values()) + sum(training.get(p, {}).values())) / 60:.1f}**"
        for p in profiles
    ]
    lines.append("| **total** | " + " | ".join(totals) + " |")
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
    "book",
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


def write_pages(
    notebooks: list[ResultNotebook],
    profile: str,
    *,
    book_dir: Path = BOOK_DIR,
    results_dir: Path | None = None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
) -> Path:
    """Write what the book shows for ``profile``; returns the generated ToC's path.

    - ``results/<name>.ipynb``: the executed notebook (stable path whatever the profile),
    - ``results/claims.csv`` and ``results/claims_table.md`` (included by ``claims.md``),
    - ``results/profiles_table.md`` and ``results/timings_table.md`` (reproducibility),
    - ``results/api_reference.md`` (the autodoc directives of ``api.md``),
    - ``results/_toc.yml``: ``_toc.yml`` without the results that do not exist.
    """
    book_dir = Path(book_dir)
    results_dir = Path(results_dir) if results_dir else book_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    out_root = results_dir / profile
    for stale in results_dir.glob("*.ipynb"):  # the book shows one profile, never a mix
        stale.unlink()
    present = set()
    for nb in notebooks:
        executed = out_root / f"{nb.name}.ipynb"
        if executed.exists() and (out_root / f"{nb.name}.stamp.json").exists():
            shutil.copyfile(executed, results_dir / f"{nb.name}.ipynb")
            present.add(nb.page)
    # Sphinx never deletes output pages, so a result left out of this build would linger.
    for page in (book_dir / "_build" / "html" / "results").glob("*.html"):
        if RESULTS_PREFIX + page.stem not in present:
            page.unlink()

    rows = collect_claims(notebooks, profile, results_dir, notebooks_dir)
    with (results_dir / "claims.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CLAIM_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (results_dir / "claims_table.md").write_text(claims_markdown(rows, profile, present))
    (results_dir / "profiles_table.md").write_text(profiles_markdown())
    (results_dir / "timings_table.md").write_text(timings_markdown(notebooks, results_dir))
    (results_dir / "api_reference.md").write_text(api_markdown())

    tree = yaml.safe_load((book_dir / "_toc.yml").read_text())
    toc = results_dir / "_toc.yml"
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
    ``extra`` (profile, encoder hashes, wall time, ...)."""
    import numpy
    import torch

    from memloc import __version__

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


def status(
    nb: ResultNotebook,
    profile: str,
    code: str,
    *,
    notebooks_dir=NOTEBOOKS_DIR,
    results_dir=BOOK_DIR / "results",
    cwd=ROOT,
    extra_parameters=None,
) -> str:
    """One word or phrase on where a notebook stands at ``profile``."""
    source = Path(notebooks_dir) / f"{nb.name}.py"
    out_root = Path(results_dir) / profile
    if not source.exists():
        return "no source yet"
    if (out_root / f"{nb.name}.error.txt").exists():
        return "failed (see " + _relative(out_root / f"{nb.name}.error.txt", Path(cwd)) + ")"
    stamp_path = out_root / f"{nb.name}.stamp.json"
    if not stamp_path.exists():
        return "not run"
    stamp = json.loads(stamp_path.read_text())
    parameters = {
        "profile": profile,
        "out_dir": _relative(out_root / nb.name, Path(cwd)),
        **(extra_parameters or {}),
    }
    digest = inputs_hash(notebook_inputs(source, parameters, profile, code))
    when = f"{stamp.get('seconds', 0):.0f} s, {stamp.get('executed_at', '')}"
    return ("up to date" if stamp["inputs_hash"] == digest else "stale (inputs changed)") + (
        f" [{when}]"
    )


def _parse_params(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    from memloc.data import DatasetUnavailable
    from memloc.profiles import profile_names

    parser = argparse.ArgumentParser(
        prog="python -m memloc.book",
        description="Execute the result notebooks with Papermill and build the Jupyter Book.",
    )
    parser.add_argument("--profile", default="cpu", choices=profile_names())
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this notebook")
    parser.add_argument("--force", action="store_true", help="re-execute even if unchanged")
    parser.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    parser.add_argument("--param", action="append", metavar="KEY=VALUE", help="extra parameter")
    parser.add_argument("--list", action="store_true", help="list the notebooks and their status")
    parser.add_argument("--no-build", action="store_true", help="execute, skip jupyter-book")
    parser.add_argument("--verbose", action="store_true", help="stream the notebooks' output")
    args = parser.parse_args(argv)
    extra = _parse_params(args.param)
    notebooks = result_notebooks()

    if args.list:
        code = code_hash()
        print(f"{len(notebooks)} result notebooks in book/_toc.yml; at profile {args.profile!r}:")
        for nb in notebooks:
            state = status(nb, args.profile, code, extra_parameters=extra)
            print(f"  {nb.result_id:4} {nb.name:32} {state}")
        return 0

    present = [nb for nb in notebooks if (NOTEBOOKS_DIR / f"{nb.name}.py").exists()]
    if not present:
        print(
            f"0 result notebooks found in notebooks/ (the ToC lists {len(notebooks)}); "
            "building the narrative only"
        )
    else:
        absent = [nb.name for nb in notebooks if nb not in present]
        print(f"{len(present)} of {len(notebooks)} result notebooks found in notebooks/", end="")
        print(f"; not yet written: {', '.join(absent)}" if absent else "")
    if not args.no_build:
        check_book_dependencies()
    try:
        if present and not args.list:
            print(f"encoders for {', '.join(BOOK_FRAMEWORKS)} at profile {args.profile!r}:")
            trained = train_encoders(args.profile, BOOK_FRAMEWORKS, extra)
            print(
                "; ".join(f"{k} trained in {v / 60:.1f} min" for k, v in trained.items())
                or "all found in the cache"
            )
            # The encoders of the notebooks that will run (not those whose outputs are kept).
            code = code_hash()
            to_run = [
                nb
                for nb in present
                if (not args.only or nb.name in args.only)
                and (
                    args.force
                    or not status(nb, args.profile, code, extra_parameters=extra).startswith(
                        "up to date"
                    )
                )
            ]
            more = train_notebook_encoders(to_run, args.profile, extra)
            write_training_times({**trained, **more}, BOOK_DIR / "results" / args.profile)
        execute_notebooks(
            notebooks,
            args.profile,
            only=args.only,
            force=args.force,
            keep_going=args.keep_going,
            extra_parameters=extra,
            verbose=args.verbose,
        )
    except NotebookFailed as err:
        print(f"\nbook build stopped: {err}", file=sys.stderr)
        return 1
    except (KeyError, ValueError, DatasetUnavailable) as err:
        print(f"book build stopped: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    toc = write_pages(notebooks, args.profile)
    if args.no_build:
        print(f"pages written (ToC {toc}); skipped jupyter-book")
        return 0
    try:
        build_html(BOOK_DIR, toc)
    except subprocess.CalledProcessError as err:
        print(f"jupyter-book build failed (exit {err.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
